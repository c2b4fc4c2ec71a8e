"""Privilege separation: root opens (O_NOFOLLOW), confined workers scan the passed descriptor.

The confinement is read back from the kernel (/proc/PID/status, limits, stat, ns/net), not from
what the worker says about itself; network isolation is probed by running a connection attempt
inside the worker's own network namespace (nsenter) against a listener of this test."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.privsep import ScanBroker, WorkerLimits

MARKED = "机密★10年\n关于某某工作的通知\n各单位：现将有关事项通知如下。\n"
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="privilege drop and network namespaces need root")
NOBODY = 65534


@pytest.fixture(scope="module")
def broker() -> Iterator[ScanBroker]:
    if not ROOT:
        pytest.skip("the confined broker needs root (uid drop, network namespace)")
    b = ScanBroker(WorkerLimits(user="nobody", workers=2, max_memory=1536 * 1024 ** 2, nice=12,
                                max_open_files=48), keywords=["青松计划"])
    yield b
    b.close()


@pytest.fixture
def secret_dir(tmp_path: Path) -> Path:
    d = tmp_path / "private"
    d.mkdir(mode=0o700)
    f = d / "通知.txt"
    f.write_text(MARKED, encoding="utf-8")
    f.chmod(0o600)
    return d


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def _limit(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith(name):
            return line[len(name):].split()[0]
    raise AssertionError(name)


@needs_root
def test_workers_are_confined(broker: ScanBroker) -> None:
    ws = broker.workers
    assert len(ws) == 2
    for w in ws:
        pid = w["pid"]
        st = _status(pid)
        assert st["Uid"].split() == [str(NOBODY)] * 4
        assert st["Gid"].split() == [str(NOBODY)] * 4
        assert st["Groups"] == ""
        assert st["NoNewPrivs"] == "1"
        assert st["CapEff"] == "0000000000000000"
        assert _limit(pid, "Max address space") == str(1536 * 1024 ** 2)
        assert _limit(pid, "Max open files") == "48"
        assert _limit(pid, "Max core file size") == "0"
        nice = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
        assert nice == 12


@needs_root
def test_workers_have_no_network(broker: ScanBroker) -> None:
    w = broker.workers[0]
    if not w["net_isolated"]:
        pytest.skip("unshare(CLONE_NEWNET) is not permitted here (no CAP_SYS_ADMIN)")
    pid = w["pid"]
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    devs = [ln.split(":")[0].strip() for ln in Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]]
    assert devs == ["lo"]
    if shutil.which("nsenter") is None:
        pytest.skip("nsenter (util-linux) missing: the connection probe cannot run")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        probe = ("import socket,sys\n"
                 f"try:\n socket.create_connection(('127.0.0.1',{port}),timeout=2)\nexcept OSError as e:\n"
                 " print('refused', e.errno); sys.exit(0)\nprint('connected'); sys.exit(1)")
        here = subprocess.run(["python3", "-c", probe], capture_output=True, text=True, timeout=20)
        assert here.stdout.startswith("connected")  # positive control: the listener is reachable
        there = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "python3", "-c", probe],
                               capture_output=True, text=True, timeout=20)
        assert there.returncode == 0 and there.stdout.startswith("refused"), there.stdout + there.stderr
    finally:
        srv.close()


@needs_root
def test_root_only_file_is_scanned_through_the_descriptor(broker: ScanBroker, secret_dir: Path) -> None:
    f = secret_dir / "通知.txt"
    # The worker's account cannot open it by name (the directory is 0700 root) ...
    denied = subprocess.run(["cat", str(f)], user=NOBODY, group=NOBODY, extra_groups=[],
                            capture_output=True, timeout=20)
    assert denied.returncode != 0 and b"\xe6\x9c\xba\xe5\xaf\x86" not in denied.stdout
    # ... yet the descriptor the broker opened is scanned.
    rec = broker.scan_path(str(f)).to_record()
    assert rec["path"] == str(f)
    assert rec["level"] == "secret"
    assert [x["text"] for x in rec["findings"]] == ["机密★10年"]
    assert rec["sha256"] and rec["size"] == len(MARKED.encode())


@needs_root
def test_a_planted_symlink_and_a_fifo_are_not_followed(broker: ScanBroker, secret_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "Outbox"
    out.mkdir()
    (out / "a.txt").symlink_to(secret_dir / "通知.txt")
    rec = broker.scan_path(str(out / "a.txt")).to_record()
    assert rec["findings"] == [] and rec["errors"][0]["error"] == "skipped"
    os.mkfifo(out / "pipe.txt")
    t0 = time.monotonic()
    rec = broker.scan_path(str(out / "pipe.txt")).to_record()
    assert rec["errors"][0]["error"] == "skipped" and time.monotonic() - t0 < 5
    rec = broker.scan_path(str(out / "missing.txt")).to_record()
    assert rec["errors"][0]["error"] == "unreadable"


@needs_root
def test_site_keywords_reach_the_worker_only_in_memory(broker: ScanBroker, tmp_path: Path) -> None:
    f = tmp_path / "plan.txt"
    f.write_text("本项目代号青松计划，按期推进。\n", encoding="utf-8")
    rec = broker.scan_path(str(f)).to_record()
    assert [x["kind"] for x in rec["findings"]] == ["keyword"]
    for w in broker.workers:
        fds = [os.readlink(p) for p in Path(f"/proc/{w['pid']}/fd").iterdir()]
        assert not any("baomi-keywords" in x for x in fds), fds  # the memory file is closed after compiling


@needs_root
def test_concurrent_scans_are_capped_and_all_answered(broker: ScanBroker, secret_dir: Path) -> None:
    f = str(secret_dir / "通知.txt")
    results: list[str | None] = []
    lock = threading.Lock()

    def one() -> None:
        r = broker.scan_path(f).to_record()
        with lock:
            results.append(r["level"])

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == ["secret"] * 8
    assert len(broker.workers) == 2


@needs_root
def test_dead_or_hung_worker_is_replaced(secret_dir: Path) -> None:
    f = str(secret_dir / "通知.txt")
    with ScanBroker(WorkerLimits(workers=1, timeout=3.0)) as b:
        first = b.workers[0]["pid"]
        os.kill(first, signal.SIGKILL)  # dies while idle: not the next file's fault
        time.sleep(0.2)
        assert b.scan_path(f).to_record()["level"] == "secret"
        second = b.workers[0]["pid"]
        assert second != first
        os.kill(second, signal.SIGSTOP)  # hangs: the deadline applies to the file it holds
        t0 = time.monotonic()
        rec = b.scan_path(f).to_record()
        assert rec["errors"][0]["error"] == "timeout" and time.monotonic() - t0 < 10
        third = b.workers[0]["pid"]
        assert third not in (first, second)
        with pytest.raises(ProcessLookupError):
            os.kill(second, 0)  # killed and reaped
        assert b.scan_path(f).to_record()["level"] == "secret"


def test_unprivileged_broker_runs_workers_as_its_own_user(tmp_path: Path) -> None:
    """Without root (an agent run by a user) the same protocol works with rlimits and niceness."""
    f = tmp_path / "a.txt"
    f.write_text(MARKED, encoding="utf-8")
    with ScanBroker(WorkerLimits(user=None, workers=1, isolate_network=False, max_open_files=40)) as b:
        w = b.workers[0]
        assert w["uid"] == os.getuid() and not w["net_isolated"]
        assert _limit(w["pid"], "Max open files") == "40"
        assert b.scan_path(str(f)).to_record()["level"] == "secret"


def test_unknown_worker_account_is_a_clear_error() -> None:
    if not ROOT:
        pytest.skip("the account is resolved only when the broker is root")
    from agents.privsep import PrivsepError

    with pytest.raises(PrivsepError, match="no such account"):
        ScanBroker(WorkerLimits(user="no-such-user-baomi"))
    with pytest.raises(PrivsepError, match="must not run as root"):
        ScanBroker(WorkerLimits(user="root"))
