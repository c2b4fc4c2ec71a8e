"""Fast versions of the fault scenarios of `bench/audit_faults.py` (issue 14, item 5), with real
processes: a full disk under the agent's spool and under the collector, the SQLite database
locked by another process, PostgreSQL restarted mid-ingest, the agent's clock moved by an hour
(libfaketime), the collector's certificate swapped. Each ends with every event stored exactly
once and the log intact; the kill -9 scenarios are in test_faults.py."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from audit_helpers import Collector, Postgres
from test_faults import assert_exactly_once, stored_events

from reports.client import AuditClient
from reports.client import DeliveryError as CertificateError
from reports.events import parse_time
from reports.server import init_data
from reports.store import open_store
from reports.testing import NoSmallFilesystem, fill_up, small_filesystem
from reports.tls import issue_server_cert, make_ca_and_server_cert

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def watch(client: AuditClient) -> Counter[int]:
    """Count the collector's answers on the client's own connection."""
    seen: Counter[int] = Counter()
    client._http.event_hooks["response"].append(lambda r: seen.update([r.status_code]))
    return seen


@pytest.fixture
def small_dir(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A directory on a 12 MiB file system of its own (tmpfs, else loop ext4)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    cm = small_filesystem(tmp_path / "fs", 12 * 1024)
    try:
        fs = cm.__enter__()
    except NoSmallFilesystem as exc:
        pytest.skip(f"cannot mount a small file system: {exc}")
    try:
        yield fs
    finally:
        cm.__exit__(None, None, None)


def finding(client: AuditClient, i: int) -> str:
    return client.submit("finding", {"path": f"/d/{i}.pdf", "marking": "机密", "level": "secret",
                                     "rule": "BM-M001"}).id


def test_collector_disk_full_answers_503_acknowledges_nothing_and_recovers(small_dir: Path,
                                                                           tmp_path: Path) -> None:
    init_data(small_dir / "srv")
    c = Collector(small_dir / "srv").start()
    try:
        client = c.enroll(tmp_path / "agent", batch_size=50)
        seen = watch(client)
        ids = {finding(client, i) for i in range(20)}
        assert client.flush().pending == 0
        filler = fill_up(small_dir)
        before = len(stored_events(c))
        ids |= {finding(client, i) for i in range(20, 400)}
        res = client.flush(timeout=3, max_backoff=0.2)
        assert res.pending > 0 and res.acked == len(stored_events(c)) - before
        assert seen[503] > 0 and seen[500] == 0, seen  # was 500 (an unhandled "disk is full")
        filler.unlink()
        assert client.flush(timeout=60, max_backoff=0.2).pending == 0
        client.close()
        assert c.proc is not None and c.proc.poll() is None
        assert_exactly_once(c, ids)
        assert "audit store unavailable" in (c.data / "server.log").read_text()
    finally:
        c.stop()


def test_agent_spool_disk_full_fails_clearly_then_spools(collector: Collector, small_dir: Path) -> None:
    client = collector.enroll(small_dir / "agent", batch_size=50)
    collector.stop()  # the spool has to grow
    ids = {finding(client, i) for i in range(30)}
    filler = fill_up(small_dir)
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        for i in range(30, 200):  # the few pages left may take a handful
            ids.add(finding(client, i))
    collector.start(port=collector.port)
    filler.unlink()
    ids |= {finding(client, i) for i in range(200, 230)}  # the spool is not wedged
    assert client.flush(timeout=60, max_backoff=0.2).pending == 0
    client.close()
    assert_exactly_once(collector, ids)


HOLD = ("import sqlite3, sys, time\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n"
        "db.execute('COMMIT')\n")


def test_sqlite_locked_by_another_process_ingest_waits(collector: Collector, tmp_path: Path) -> None:
    client = collector.enroll(tmp_path / "agent", batch_size=20)
    seen = watch(client)
    ids = {finding(client, i) for i in range(40)}
    assert client.flush().pending == 0
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(collector.data / "audit.sqlite"), "3"],
                              stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
    t0 = time.monotonic()
    ids |= {finding(client, i) for i in range(40, 100)}
    assert client.flush(timeout=60).pending == 0
    waited = time.monotonic() - t0
    holder.wait(10)
    client.close()
    assert waited > 1.5, "the lock was not held while ingesting"
    assert set(seen) == {200}, seen  # waited for the lock (busy timeout), no error
    assert_exactly_once(collector, ids)


def test_two_flushes_at_once_while_the_collector_is_slow(collector: Collector, tmp_path: Path) -> None:
    """The daemon's delivery thread and its final flush at shutdown may overlap: with the
    collector held up by a lock, both sent the same events and the second acknowledgement raised
    a false 'collector is at seq N, behind this spool'."""
    client = collector.enroll(tmp_path / "agent", batch_size=50)
    ids = {finding(client, i) for i in range(30)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(collector.data / "audit.sqlite"), "3"],
                              stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
    errors: list[BaseException] = []

    def first() -> None:
        try:
            client.flush(timeout=60)
        except BaseException as exc:  # noqa: BLE001 - checked below
            errors.append(exc)

    t = threading.Thread(target=first)
    t.start()
    time.sleep(0.5)  # its batch is in flight, waiting for the lock
    res = client.flush(timeout=60)
    t.join()
    holder.wait(10)
    client.close()
    assert not errors and res.pending == 0, errors
    assert_exactly_once(collector, ids)


def test_postgres_restarted_mid_ingest(tmp_path: Path) -> None:
    pg = Postgres().start()  # its own cluster: the session's is shared by other tests
    try:
        data = tmp_path / "srv"
        db = pg.new_database()
        init_data(data, db_url=db)
        c = Collector(data, db).start()
        clients = [c.enroll(tmp_path / f"a{i}", batch_size=10) for i in range(3)]
        seen = [watch(cl) for cl in clients]
        ids: set[str] = set()
        lock = threading.Lock()
        stop = threading.Event()

        def run(cl: AuditClient) -> None:
            i = 0
            while not stop.is_set():
                with lock:
                    ids.add(finding(cl, i))
                i += 1
                if i % 5 == 0:
                    cl.flush(timeout=1, max_backoff=0.2)
                time.sleep(0.01)

        threads = [threading.Thread(target=run, args=(cl,)) for cl in clients]
        for t in threads:
            t.start()
        try:
            for _ in range(2):
                time.sleep(1.5)
                pg.restart(down=1.0)
            time.sleep(1.5)
        finally:
            stop.set()
            for t in threads:
                t.join()
        for cl in clients:
            assert cl.flush(timeout=60, max_backoff=0.2).pending == 0
            cl.close()
        answers = sum(seen, Counter())
        assert answers[500] == 0 and answers[503] > 0, answers  # 503 while it was down (was 500)
        assert c.proc is not None and c.proc.poll() is None
        assert_exactly_once(c, ids)
        c.stop()
    finally:
        pg.stop()


CLOCK_AGENT = (
    "import select, sys, time\n"
    # libfaketime with a real monotonic clock fails time.sleep (EINVAL); select sleeps instead
    "time.sleep = lambda s: select.select([], [], [], max(0.0, s))\n"
    "from reports.client import AuditClient\n"
    "c = AuditClient(sys.argv[1])\n"
    "ids = [c.submit('finding', {'path': f'/d/{i}.pdf', 'level': 'secret'}).id for i in range(20)]\n"
    "res = c.flush(timeout=30, max_backoff=0.2)\n"
    "print(res.pending, ' '.join(ids))\n")


@pytest.mark.parametrize("offset", ["-1h", "+1h"])
def test_agent_clock_an_hour_off(collector: Collector, tmp_path: Path, offset: str) -> None:
    """An agent started with its clock an hour off delivers to a collector whose certificate was
    just made (a -1 h clock once found it "not yet valid" and retried forever) and past the
    replay window (it learns the skew); event times stay the agent's own."""
    if not LIBFAKETIME.exists():
        pytest.skip("libfaketime missing (Debian package faketime)")
    state = tmp_path / "agent"
    collector.enroll(state).close()
    env = {**os.environ, "LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", CLOCK_AGENT, str(state)], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    assert out[0] == "0", out
    assert_exactly_once(collector, set(out[1:]))
    store = open_store(collector.data)
    try:  # event times are the agent's clock, an hour off the collector's reception times
        gaps = [(parse_time(e.record["time"]) - parse_time(e.received)).total_seconds()
                for e in store.entries() if e.kind == "event"]
    finally:
        store.close()
    sign = -1 if offset.startswith("-") else 1
    assert len(gaps) == 20 and all(3000 < sign * g < 3700 for g in gaps), gaps


def test_certificate_swapped(collector: Collector, tmp_path: Path) -> None:
    client = collector.enroll(tmp_path / "agent", batch_size=50)
    ids = {finding(client, i) for i in range(30)}
    assert client.flush().pending == 0
    tls = collector.data / "tls"
    issue_server_cert(tls, ["localhost", "127.0.0.1", "::1"])  # re-issued by the same CA
    collector.stop()
    collector.start(port=collector.port)
    ids |= {finding(client, i) for i in range(30, 60)}
    assert client.flush().pending == 0
    make_ca_and_server_cert(tls, ["localhost", "127.0.0.1", "::1"])  # a new CA
    collector.stop()
    collector.start(port=collector.port)
    ids |= {finding(client, i) for i in range(60, 90)}
    t0 = time.monotonic()
    with pytest.raises(CertificateError, match="does not verify against the pinned CA"):
        client.flush(timeout=60)
    assert time.monotonic() - t0 < 10  # at once, not after retrying for the whole timeout
    assert client.pending() == 30  # kept
    client.close()
    shutil.copy(tls / "ca.pem", tmp_path / "agent" / "ca.pem")  # the operator re-pins the new CA
    client = AuditClient(tmp_path / "agent")
    assert client.flush().pending == 0
    client.close()
    assert_exactly_once(collector, ids)
