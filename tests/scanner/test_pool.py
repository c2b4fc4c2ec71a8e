"""Worker isolation: a hanging or dying parser costs one file an error record, never the scan."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from scanner import engine
from scanner.config import Limits, PoolOptions, ScanConfig
from scanner.pool import WorkerPool


@pytest.fixture()
def files(tmp_path: Path) -> list[Path]:
    out = []
    for name in ("a.txt", "hang.txt", "die.txt", "b.txt"):
        p = tmp_path / name
        p.write_text("000001\n秘密★1年\n标题\n", encoding="utf-8")
        out.append(p)
    return out


def test_hang_and_crash_become_error_records(files: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    real = engine.Scanner.scan_path

    def sabotaged(self, path, display=None):  # type: ignore[no-untyped-def]
        if str(path).endswith("hang.txt"):
            while True:  # a parser stuck in a loop (the deadline must still hold)
                time.sleep(1)
        if str(path).endswith("die.txt"):
            os._exit(9)  # a parser that takes the process down (segfault, OOM kill)
        return real(self, path, display)

    monkeypatch.setattr(engine.Scanner, "scan_path", sabotaged)  # workers are forked: they inherit it
    pool = WorkerPool(ScanConfig(), PoolOptions(jobs=2, timeout=2.0))
    t = time.monotonic()
    recs = {Path(r["path"]).name: r for _i, r in pool.run((i, str(p), str(p)) for i, p in enumerate(files))}
    assert time.monotonic() - t < 20
    assert recs["hang.txt"]["errors"][0]["error"] == "timeout"
    assert recs["die.txt"]["errors"][0]["error"] == "crash"
    assert recs["a.txt"]["level"] == "confidential" and recs["b.txt"]["level"] == "confidential"


def test_memory_cap_turns_a_balloon_into_an_error(files: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    real = engine.Scanner.scan_path

    def balloon(self, path, display=None):  # type: ignore[no-untyped-def]
        if str(path).endswith("hang.txt"):
            b = bytearray(2 * 1024 ** 3)  # beyond the cap below
            return real(self, path, display + str(len(b)))
        return real(self, path, display)

    monkeypatch.setattr(engine.Scanner, "scan_path", balloon)
    pool = WorkerPool(ScanConfig(), PoolOptions(jobs=1, timeout=30, max_memory=1024 ** 3))
    recs = {Path(r["path"]).name: r for _i, r in pool.run((i, str(p), str(p)) for i, p in enumerate(files))}
    assert recs["hang.txt"]["errors"][0]["error"] == "too_large"
    assert recs["b.txt"]["level"] == "confidential", "the scan goes on after the failure"


def test_memory_cap_respects_a_lower_hard_limit() -> None:
    """Under a hard limit below --max-memory (a service manager's, a ulimit -Hv) the worker is
    capped at that limit instead of failing to set its own and running uncapped."""
    import subprocess
    import sys

    code = (
        "import resource; from scanner.pool import cap_memory\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 * 1024 ** 3, 2 * 1024 ** 3))\n"
        "print(cap_memory(3 * 1024 ** 3), cap_memory(1024 ** 3), resource.getrlimit(resource.RLIMIT_AS))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    two, one = 2 * 1024 ** 3, 1024 ** 3
    assert out.stdout.split(None, 2) == [str(two), str(one), f"({one}, {one})\n"]


def test_every_file_of_many_batches_gets_one_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several batches queued per worker: a crash and a hang in the middle cost their own file
    only; the files queued behind them in the same worker are scanned by others, none twice."""
    real = engine.Scanner.scan_path
    names = [f"f{i:03d}.txt" for i in range(300)]
    for i, name in enumerate(names):
        text = "000001\n秘密★1年\n标题\n" if i % 7 == 0 else "会议纪要\n"
        (tmp_path / name).write_text(text, encoding="utf-8")

    def sabotaged(self, path, display=None):  # type: ignore[no-untyped-def]
        if str(path).endswith(("f101.txt", "f217.txt")):
            os._exit(9)
        if str(path).endswith("f150.txt"):
            while True:
                time.sleep(1)
        return real(self, path, display)

    monkeypatch.setattr(engine.Scanner, "scan_path", sabotaged)
    pool = WorkerPool(ScanConfig(), PoolOptions(jobs=2, timeout=2.0))
    out = list(pool.run((i, str(tmp_path / n), n) for i, n in enumerate(names)))
    assert sorted(i for i, _ in out) == list(range(300)), "one record per file, none lost or doubled"
    recs = {r["path"]: r for _, r in out}
    assert recs["f101.txt"]["errors"][0]["error"] == "crash"
    assert recs["f217.txt"]["errors"][0]["error"] == "crash"
    assert recs["f150.txt"]["errors"][0]["error"] == "timeout"
    for i, n in enumerate(names):
        if n in ("f101.txt", "f217.txt", "f150.txt"):
            continue
        assert not recs[n]["errors"], recs[n]
        assert recs[n]["level"] == ("confidential" if i % 7 == 0 else None), n


def test_clean_files_are_counted_not_yielded_when_the_caller_asks(tmp_path: Path) -> None:
    """`baomi scan --format jsonl` prints files with findings or errors: without a cache,
    run_scan(clean_records=False) leaves the clean ones out and counts them through on_clean."""
    from scanner.runner import run_scan
    from scanner.walk import WalkOptions

    for i in range(40):
        (tmp_path / f"c{i}.txt").write_text("会议纪要\n", encoding="utf-8")
    (tmp_path / "m.txt").write_text("000001\n秘密★1年\n标题\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "big.txt").write_bytes(b"x" * 5000)  # above the size limit: an error record
    config = ScanConfig(limits=Limits(max_file_size=4096))
    counted: list[int] = []
    recs = list(run_scan([str(tmp_path)], config, WalkOptions(), PoolOptions(jobs=2, timeout=30),
                         clean_records=False, on_clean=counted.append))
    every = list(run_scan([str(tmp_path)], config, WalkOptions(), PoolOptions(jobs=2, timeout=30)))
    flagged = sorted(r["path"] for r in every if r["findings"] or r["errors"])
    assert sorted(r["path"] for r in recs) == flagged
    assert {str(tmp_path / n) for n in ("m.txt", "sub/big.txt")} <= set(flagged)
    assert sum(counted) == len(every) - len(flagged) == 40
