"""The worker boundary: each limit of `scanner.pool` meets a parser that would break it, and the
scan still yields an error record for that one file while the parent and the other files go on.
(Time and address space: tests/scanner/test_pool.py.)"""
from __future__ import annotations

import glob
import os
import socket
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from scanner import engine
from scanner.config import PoolOptions, ScanConfig
from scanner.pool import MAX_OPEN_FILES, WorkerPool, confine


def _scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hostile) -> dict[str, dict]:  # type: ignore[no-untyped-def,type-arg]
    """Scan a.txt, evil.txt, b.txt with `hostile(self)` run in the worker for evil.txt."""
    real = engine.Scanner.scan_path

    def sabotaged(self, path, display=None):  # type: ignore[no-untyped-def]
        if str(path).endswith("evil.txt"):
            hostile()
        return real(self, path, display)

    files = []
    for name in ("a.txt", "evil.txt", "b.txt"):
        p = tmp_path / name
        p.write_text("000001\n秘密★1年\n标题\n", encoding="utf-8")
        files.append(p)
    monkeypatch.setattr(engine.Scanner, "scan_path", sabotaged)  # forked workers inherit it
    pool = WorkerPool(ScanConfig(), PoolOptions(jobs=1, timeout=20))
    recs = {Path(r["path"]).name: r for _i, r in pool.run((i, str(p), str(p)) for i, p in enumerate(files))}
    assert recs["a.txt"]["level"] == "confidential" and recs["b.txt"]["level"] == "confidential"
    return recs


def test_ten_thousand_open_files_fail_in_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def hog() -> None:
        held = [open(os.devnull, "rb") for _ in range(10_000)]  # noqa: SIM115 - the point is to hoard
        raise AssertionError(f"opened {len(held)} files")  # not reached: EMFILE first

    recs = _scan(tmp_path, monkeypatch, hog)
    err = recs["evil.txt"]["errors"][0]
    assert err["error"] == "crash" and "Too many open files" in err["detail"]
    assert MAX_OPEN_FILES < 10_000


def test_writing_outside_the_worker_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = Path(tempfile.gettempdir()) / f"baomi-escape-{uuid.uuid4().hex}"

    def write() -> None:
        with open(target, "wb") as fh:
            fh.write(b"exfiltrated" * 1000)

    try:
        recs = _scan(tmp_path, monkeypatch, write)
        err = recs["evil.txt"]["errors"][0]
        assert err["error"] == "crash" and "File too large" in err["detail"]
        # RLIMIT_FSIZE stops every byte; an empty file may be created (docs/security.md says so).
        assert not target.exists() or target.stat().st_size == 0
    finally:
        target.unlink(missing_ok=True)


def test_worker_temp_dir_is_private_and_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "baomi-worker-*")))
    seen: list[str] = []

    def report_tmp() -> None:
        raise RuntimeError(f"tmp={tempfile.gettempdir()} env={os.environ.get('TMPDIR')}")

    recs = _scan(tmp_path, monkeypatch, report_tmp)
    detail = recs["evil.txt"]["errors"][0]["detail"]
    seen.append(detail)
    assert "baomi-worker-" in detail and detail.count("baomi-worker-") == 2
    after = set(glob.glob(os.path.join(tempfile.gettempdir(), "baomi-worker-*")))
    assert after <= before, "the worker's temporary directory outlives the scan"


def _can_unshare_net() -> bool:
    pid = os.fork()
    if pid == 0:
        os._exit(0 if confine().no_network else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def test_worker_cannot_reach_the_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not _can_unshare_net():
        pytest.skip("this kernel/user may not create a network namespace (needs root or unprivileged user "
                    "namespaces): the worker keeps network access here")
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.5)
    port = srv.getsockname()[1]

    def connect() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(b"leak")

    try:
        recs = _scan(tmp_path, monkeypatch, connect)
        err = recs["evil.txt"]["errors"][0]
        assert err["error"] == "crash" and "unreachable" in err["detail"], err
        time.sleep(0.2)
        with pytest.raises(TimeoutError):
            srv.accept()  # nothing came through
    finally:
        srv.close()
