"""Issue 14, item 2: after the collector is restored from an older backup, the agent sends again
the acknowledged events the collector lost (kept in its spool until a witnessed tree head covers
them). Real collector over HTTPS, real SQLite files copied and restored."""
from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

from audit_helpers import Collector, baomi

from reports.events import AuditEvent
from reports.store import open_store


def _agent_seqs(data: Path, agent: str) -> list[int]:
    store = open_store(data)
    try:
        return [AuditEvent.from_dict(e.record).seq for e in store.entries()
                if e.kind == "event" and e.record.get("agent") == agent]
    finally:
        store.close()


def _backup(data: Path, to: Path) -> None:
    with sqlite3.connect(data / "audit.sqlite") as src, sqlite3.connect(to) as dst:
        src.backup(dst)  # a consistent copy of the live database


def _restore(data: Path, backup: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (data / f"audit.sqlite{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, data / "audit.sqlite")


def _verify(data: Path) -> None:
    res = baomi("audit", "verify", "--data", str(data), check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_agent_resends_what_a_restored_collector_lost(sqlite_data: Path, tmp_path: Path) -> None:
    n, m, k = 20, 15, 3
    c = Collector(sqlite_data, checkpoint_interval=0).start()
    a = c.enroll(tmp_path / "a", hostname="ws-restore", probe_interval=0)
    backup = tmp_path / "backup.sqlite"
    try:
        for i in range(n):
            a.submit("finding", {"path": f"/home/u/{i}.docx", "level": "secret", "rule": "BM-M001"})
        assert a.flush().pending == 0
        _backup(sqlite_data, backup)
        for i in range(n, n + m):
            a.submit("heartbeat", {"n": i})
        assert a.flush().acked == m
        assert a.acked_kept() == n + m  # no witness: every acknowledged event is kept
        c.stop()
        _restore(sqlite_data, backup)
        assert _agent_seqs(sqlite_data, a.agent) == list(range(1, n + 1))
        c.start(c.port)
        # nothing new to send: the flush asks the collector (an empty batch), learns it holds
        # seq n only, and sends the m lost events again
        res = a.flush()
        assert (res.resent, res.pending) == (m, 0)
        assert _agent_seqs(sqlite_data, a.agent) == list(range(1, n + m + 1))
        assert a.flush().resent == 0  # once only
        c.stop()
        _verify(sqlite_data)

        # the same loss, found by a batch of new events (the collector answers 409 gap)
        _restore(sqlite_data, backup)
        c.start(c.port)
        for i in range(k):
            a.submit("device", {"n": i})
        res = a.flush()
        assert (res.resent, res.pending) == (m, 0)
        seqs = _agent_seqs(sqlite_data, a.agent)
        assert seqs == list(range(1, n + m + k + 1)), "every event once, in order"
    finally:
        a.close()
        c.stop()
    _verify(sqlite_data)


def test_a_witnessed_head_lets_the_agent_prune_and_a_deeper_loss_is_a_gap(sqlite_data: Path,
                                                                          tmp_path: Path) -> None:
    """Kept events go once a head published to the witnesses covers them; a collector restored
    to before that head lost events the agent no longer holds: a signed gap notice (reason
    collector_lost) says so, delivery goes on, and verify against the witness shows the loss."""
    wit = tmp_path / "witness"
    c = Collector(sqlite_data, checkpoint_interval=0.3, extra_args=("--witness", str(wit))).start()
    a = c.enroll(tmp_path / "a", hostname="ws-prune", probe_interval=0)
    backup = tmp_path / "backup.sqlite"
    try:
        _backup(sqlite_data, backup)  # holds the enrolment only
        for i in range(10):
            a.submit("heartbeat", {"n": i})
        assert a.flush().pending == 0
        assert a.acked_kept() <= 10
        deadline = time.monotonic() + 20
        while a.acked_kept() and time.monotonic() < deadline:
            time.sleep(0.4)
            a.flush()  # the probe's answer carries the newest witnessed head
        assert a.acked_kept() == 0
        c.stop()
        _restore(sqlite_data, backup)
        c.start(c.port)
        a.submit("heartbeat", {"n": 10})
        res = a.flush()
        assert res.pending == 0 and res.resent == 1  # the gap notice
        store = open_store(sqlite_data)
        try:
            gaps = [e.record["notice"] for e in store.entries() if e.kind == "gap"]
        finally:
            store.close()
        assert [(g["first"], g["last"], g["reason"]) for g in gaps] == [(1, 10, "collector_lost")]
        assert _agent_seqs(sqlite_data, a.agent) == [11]
    finally:
        a.close()
        c.stop()
    _verify(sqlite_data)  # the database alone is consistent again...
    res = baomi("audit", "verify", "--data", str(sqlite_data), "--witness", str(wit), check=False)
    assert res.returncode == 1, res.stdout  # ...but the witness saw the entries that were lost


def test_a_hole_left_by_a_set_aside_event_does_not_wedge_the_resend(sqlite_data: Path, tmp_path: Path) -> None:
    """Seq 3 was refused for its content and set aside (a signed gap notice covered it); the
    collector then lost everything after seq 1. The agent re-sends 2, covers 3 with a new gap
    notice, re-sends 4..6 and delivers 7: nothing lost that it kept, nothing twice."""
    from test_spool_poison import _spool_raw

    c = Collector(sqlite_data, checkpoint_interval=0).start()
    a = c.enroll(tmp_path / "a", hostname="ws-hole", probe_interval=0)
    backup = tmp_path / "backup.sqlite"
    try:
        a.submit("device", {"n": 1})
        assert a.flush().pending == 0
        _backup(sqlite_data, backup)
        a.submit("device", {"n": 2})
        _spool_raw(a, "2026-12-05T10:00:00", {"id": "naive-time"})  # seq 3: the collector answers 422
        for i in range(4, 7):
            a.submit("device", {"n": i})
        res = a.flush()
        assert (res.pending, res.set_aside) == (0, 1)
        c.stop()
        _restore(sqlite_data, backup)
        c.start(c.port)
        a.submit("device", {"n": 7})
        res = a.flush()
        assert res.pending == 0 and res.resent == 4 + 1  # seq 2, 4, 5, 6 and the gap notice for 3
        assert _agent_seqs(sqlite_data, a.agent) == [1, 2, 4, 5, 6, 7]
        store = open_store(sqlite_data)
        try:
            gaps = [e.record["notice"] for e in store.entries() if e.kind == "gap"]
        finally:
            store.close()
        assert [(g["first"], g["last"], g["reason"]) for g in gaps] == [(3, 3, "collector_lost")]
    finally:
        a.close()
        c.stop()
    _verify(sqlite_data)


def test_without_a_witness_the_kept_events_and_their_marks_stay_bounded(sqlite_data: Path, tmp_path: Path) -> None:
    c = Collector(sqlite_data, checkpoint_interval=0).start()
    a = c.enroll(tmp_path / "a", hostname="ws-bounded", keep_acked=10)
    try:
        for i in range(35):
            a.submit("heartbeat", {"n": i})
            if i % 5 == 4:
                assert a.flush().pending == 0  # seven acknowledgements, each leaving a mark
        assert a.acked_kept() == 10
        with sqlite3.connect(tmp_path / "a" / "spool.sqlite") as db:
            assert [r[0] for r in db.execute("SELECT seq FROM acked ORDER BY seq")] == list(range(26, 36))
            assert all(seq > 25 for (seq,) in db.execute("SELECT seq FROM ack_marks"))
    finally:
        a.close()
        c.stop()
