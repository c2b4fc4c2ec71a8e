"""The store interface on both backends: group commit keeps batches independent, tokens are
single-use, queries filter."""
from __future__ import annotations

import uuid
from pathlib import Path

from policies.keys import generate_private_key, public_key_b64
from reports.chain import verify_entries
from reports.events import GENESIS, AuditEvent, make_event, utcnow
from reports.server import load_data
from reports.store import AgentInfo, Query


def _agent(store, data, name: str):  # type: ignore[no-untyped-def]
    from reports.chain import server_signed

    key = generate_private_key()
    agent = f"a-{name}"
    rec = server_signed(load_data(data).key, {"kind": "enrol", "agent": agent, "public_key": public_key_b64(key),
                                              "hostname": name, "time": utcnow()})
    store.enrol(AgentInfo(agent, public_key_b64(key), name, utcnow(), 0, ""), rec, utcnow())
    return key, agent


def _events(key, agent: str, first: int, n: int, prev: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    out = []
    for seq in range(first, first + n):
        ev = make_event(key, agent, seq, prev, "finding", {"path": f"/{seq}", "level": "secret", "rule": "R1"})
        out.append(ev)
        prev = ev.hash
    return out


def test_group_commit_isolates_refused_batches(server_data: Path, backend: str | None) -> None:
    store = load_data(server_data).open_store(backend)
    try:
        ka, a = _agent(store, server_data, "ws1")
        kb, b = _agent(store, server_data, "ws2")
        ea = _events(ka, a, 1, 3, GENESIS)
        eb = _events(kb, b, 1, 2, GENESIS)
        nonce = str(uuid.uuid4())
        results = store.ingest_many([
            (a, ea[:2], None, nonce, utcnow()),
            (a, ea[2:], None, nonce, utcnow()),                   # replayed nonce
            (b, eb[1:], None, str(uuid.uuid4()), utcnow()),       # gap: seq 2 first
            (b, eb, None, str(uuid.uuid4()), utcnow()),
            (a, ea, None, str(uuid.uuid4()), utcnow()),           # 2 duplicates + 1 new
        ])
        assert [r.status for r in results] == ["ok", "replay", "gap", "ok", "ok"]
        assert (results[4].accepted, results[4].duplicates, results[4].last_seq) == (1, 2, 3)
        assert results[2].expected == 1
        size, _ = store.head()
        assert size == 2 + 3 + 2
        report = verify_entries(store.entries(), load_data(server_data).key.public_key(), [])
        assert report.ok, report
        assert [r["path"] for r in store.query(Query(agent=b))] == ["/1", "/2"]
        assert len(list(store.query(Query(level="top_secret")))) == 0
        assert len(list(store.query(Query(rule="R1", after=4)))) == 3
        assert store.prune_nonces("9999") == 3  # a refused batch leaves no nonce behind
    finally:
        store.close()


def test_tokens_are_single_use(server_data: Path, backend: str | None) -> None:
    store = load_data(server_data).open_store(backend)
    try:
        store.add_token("h1", "2999-01-01T00:00:00Z")
        store.add_token("h2", "2000-01-01T00:00:00Z")
        now = utcnow()
        assert store.consume_token("h1", now) is True
        assert store.consume_token("h1", now) is False
        assert store.consume_token("h2", now) is False  # expired
        assert store.consume_token("nope", now) is False
    finally:
        store.close()
