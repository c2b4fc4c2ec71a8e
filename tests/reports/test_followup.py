"""Follow-up (督办) steps as server-signed chain entries on a real SQLite store: the state is
derived from the chain, wrong transitions and non-officers are refused, concurrent steps on one
item cannot both pass their state check, the chain verifies, and a forged step is caught."""
from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pytest

from policies.keys import generate_private_key, public_key_b64
from reports.chain import server_signed, verify_entries
from reports.events import GENESIS, make_event, utcnow
from reports.followup import FollowupError, derive, record_step
from reports.server import load_data
from reports.store import AgentInfo, Query


def _violation_store(sqlite_data: Path):  # type: ignore[no-untyped-def]
    data = load_data(sqlite_data)
    store = data.open_store()
    akey = generate_private_key()
    pub = public_key_b64(akey)
    store.enrol(AgentInfo("a-1", pub, "ws1", utcnow(), 0, GENESIS),
                server_signed(data.key, {"kind": "enrol", "agent": "a-1", "public_key": pub,
                                         "hostname": "ws1", "time": utcnow()}), utcnow())
    e1 = make_event(akey, "a-1", 1, GENESIS, "violation", {"path": "/d/x.docx", "level": "secret",
                                                           "rule": "CN-SEC-001"})
    e2 = make_event(akey, "a-1", 2, e1.hash, "heartbeat", {})
    assert store.ingest("a-1", [e1, e2], None, "n1", utcnow()).status == "ok"
    return data, store


def test_steps_are_checked_signed_derived_and_verify(sqlite_data: Path) -> None:
    data, store = _violation_store(sqlite_data)
    try:
        with pytest.raises(FollowupError, match="only an officer"):
            record_step(store, data.key, "assign", 2, "aud", "auditor", owner="张三", deadline="2026-12-31")
        with pytest.raises(FollowupError, match="not a violation"):
            record_step(store, data.key, "assign", 3, "off", "officer", owner="张三", deadline="2026-12-31")
        with pytest.raises(FollowupError, match="only an assigned"):
            record_step(store, data.key, "rectify", 2, "off", "officer", rectification="done")
        with pytest.raises(FollowupError, match="deadline"):
            record_step(store, data.key, "assign", 2, "off", "officer", owner="张三", deadline="next week")
        record_step(store, data.key, "assign", 2, "off", "officer", owner="张三", deadline="2026-12-31")
        record_step(store, data.key, "rectify", 2, "off", "officer", rectification="已删除", explanation="误存")
        record_step(store, data.key, "close", 2, "off", "officer", conclusion="同意")
        with pytest.raises(FollowupError, match="closed"):
            record_step(store, data.key, "assign", 2, "off", "officer", owner="李四", deadline="2027-01-31")
        fu = derive(store.followup_rows(("followup_assign", "followup_rectify", "followup_close")))[2]
        assert (fu.status, fu.owner, fu.deadline) == ("closed", "张三", "2026-12-31")
        assert [s.step for s in fu.steps] == ["assign", "rectify", "close"]
        assert fu.steps[1].fields["rectification"] == "已删除"
        assert not fu.overdue(date(2030, 1, 1))  # closed items are never overdue
        # the steps carry the violation's columns: a level or host filter keeps them together
        rows = list(store.query(Query(level="secret", host="ws1")))
        assert [r["type"] for r in rows] == ["violation", "followup_assign", "followup_rectify", "followup_close"]
        assert verify_entries(store.entries(), data.key.public_key(), store.checkpoints()).ok
    finally:
        store.close()


def test_concurrent_closes_one_wins(sqlite_data: Path) -> None:
    data, store = _violation_store(sqlite_data)
    try:
        record_step(store, data.key, "assign", 2, "off", "officer", owner="张三", deadline="2026-12-31")
        outcomes: list[str] = []
        barrier = threading.Barrier(4)

        def close(i: int) -> None:
            s = data.open_store()
            try:
                barrier.wait()
                record_step(s, data.key, "close", 2, f"off{i}", "officer")
                outcomes.append("ok")
            except FollowupError:
                outcomes.append("refused")
            finally:
                s.close()

        threads = [threading.Thread(target=close, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["ok", "refused", "refused", "refused"]
        assert sum(1 for e in store.entries() if e.kind == "followup") == 2
    finally:
        store.close()


def test_forged_or_unsigned_step_fails_verification(sqlite_data: Path) -> None:
    data, store = _violation_store(sqlite_data)
    try:
        forged = server_signed(generate_private_key(), {"kind": "followup", "type": "followup_close", "time": utcnow(),
                                                        "payload": {"violation_gseq": 2, "officer": "mallory"}})
        store.append_record("followup", forged, utcnow())
        v = verify_entries(store.entries(), data.key.public_key(), store.checkpoints())
        assert not v.ok and v.first_bad == 4 and "not signed by the server key" in v.problem
    finally:
        store.close()


def test_followup_and_console_queries_on_both_backends(server_data: Path) -> None:
    """The same steps and console queries on SQLite and a real PostgreSQL."""
    from reports.console import accounts
    from reports.console import data as cdata

    d, store = _violation_store(server_data)
    try:
        record_step(store, d.key, "assign", 2, "off", "officer", owner="张三", deadline="2000-01-01")
        today = date(2026, 12, 5)
        for f, n in ((cdata.Filters(), 1), (cdata.Filters(level="secret"), 1), (cdata.Filters(level="top_secret"), 0),
                     (cdata.Filters(status="overdue"), 1), (cdata.Filters(status="unassigned"), 0),
                     (cdata.Filters(q="x.do"), 1), (cdata.Filters(q="%"), 0), (cdata.Filters(host="ws1"), 1),
                     (cdata.Filters(since="2999-01-01"), 0)):
            page = cdata.violations(store, f, None, today, "Asia/Shanghai")
            assert page.total == n == len(page.rows), f
        dash = cdata.dashboard(store, today)
        assert dash.status["overdue"] == 1 and dict(dash.by_level) == {"secret": 1}
        accounts.add_user(store, "off", "officer", "a-long-password")
        with pytest.raises(accounts.AccountError):
            accounts.add_user(store, "off", "auditor", "a-long-password")
        assert accounts.login(store, "off", "wrong-password") is None
        sid, sess = accounts.login(store, "off", "a-long-password")  # type: ignore[misc]
        assert accounts.session(store, sid) == sess and sess.user.role == "officer"
        accounts.disable_user(store, "off")
        assert accounts.session(store, sid) is None
    finally:
        store.close()
