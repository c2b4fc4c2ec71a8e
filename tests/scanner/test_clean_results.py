"""A file with nothing to report: the short cut for cleared plain text gives the record the
full path gives (scanner.engine.Scanner.scan_fd, scanner.model.clean_result)."""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from scanner.config import ScanConfig
from scanner.engine import Scanner
from scanner.model import FileResult, clean_result


def test_clean_result_is_the_constructor_s_result() -> None:
    for sha in (None, "ab" * 32):
        made, built = clean_result("a/b.txt", 12, "text/plain", sha), FileResult("a/b.txt", size=12, mime="text/plain",
                                                                                 sha256=sha)
        assert made == built and made.__dict__ == built.__dict__ and made.to_record() == built.to_record()
        assert made.extra == {} and made.extra is not clean_result("x", 1, "text/plain", None).extra
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.size = 3  # type: ignore[misc]
    # clean_result fills these fields and no others: a field added to FileResult must be added there.
    assert [f.name for f in dataclasses.fields(FileResult)] == list(clean_result("x", 1, "t", None).__dict__)


@pytest.mark.parametrize("hash_files", ["flagged", "all", "none"])
def test_cleared_text_gets_the_full_path_s_record(tmp_path: Path, hash_files: str) -> None:
    data = "会议纪要\n本周工作安排如下。\n".encode() * 50
    p = tmp_path / "notes.txt"
    p.write_bytes(data)
    scanner = Scanner(ScanConfig(hash_files=hash_files))
    assert scanner.scan_bytes(data, "notes.txt") == ([], [], "text/plain"), "cleared by the prefilter"
    sha = hashlib.sha256(data).hexdigest() if hash_files == "all" else None
    res = scanner.scan_path(str(p), "shown/notes.txt")
    assert res == FileResult("shown/notes.txt", size=len(data), mime="text/plain", sha256=sha)
    assert res.to_record() == FileResult("shown/notes.txt", size=len(data), mime="text/plain", sha256=sha).to_record()


def test_marked_and_binary_files_still_take_the_full_path(tmp_path: Path) -> None:
    (tmp_path / "m.txt").write_text("000001\n秘密★1年\n标题\n", encoding="utf-8")
    (tmp_path / "b.bin").write_bytes(b"\x00\x01" * 100)
    scanner = Scanner()
    assert scanner.scan_path(str(tmp_path / "m.txt")).to_record()["level"] == "confidential"
    assert scanner.scan_path(str(tmp_path / "b.bin")).mime != "text/plain"
