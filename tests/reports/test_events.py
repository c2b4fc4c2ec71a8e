"""Event schema, signatures, per-agent chaining, checkpoints and the verifier on in-memory logs."""
from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from policies.keys import generate_private_key, public_key_b64
from reports.chain import Checkpoint, Entry, entry_hash, server_signed, verify_entries
from reports.events import (
    GENESIS,
    MAX_STRING,
    AuditEvent,
    GapNotice,
    SchemaError,
    check_payload,
    make_event,
)


def test_event_roundtrip_signature_and_chain() -> None:
    key = generate_private_key()
    e1 = make_event(key, "a-1", 1, GENESIS, "finding", {"path": "/a", "marking": "机密★5年"})
    e2 = make_event(key, "a-1", 2, e1.hash, "heartbeat", {})
    assert AuditEvent.from_dict(e1.to_dict()) == e1
    assert e1.verify(key.public_key()) and e2.prev == e1.hash
    assert not e1.verify(generate_private_key().public_key())
    assert not replace(e1, payload={"path": "/b", "marking": "机密★5年"}).verify(key.public_key())
    assert e1.hash != replace(e1, seq=3).hash


@pytest.mark.parametrize("bad", [
    {"v": 2}, {"seq": 0}, {"seq": True}, {"id": "nope"}, {"time": "yesterday"}, {"type": "Finding"},
    {"prev": "xyz"}, {"payload": []}, {"extra": 1},
])
def test_schema_rejects(bad: dict[str, object]) -> None:
    good = make_event(generate_private_key(), "a-1", 1, GENESIS, "finding", {}).to_dict()
    with pytest.raises(SchemaError):
        AuditEvent.from_dict({**good, **bad})


def test_payload_rules() -> None:
    check_payload({"path": "/a", "hashes": ["ab", "cd"], "n": 3, "ok": True, "x": None})
    for payload in ({"Content": "x"}, {"a": [{"snippet": "x"}]}, {"a": "x" * (MAX_STRING + 1)},
                    {"a": {"b": {"c": object()}}}):
        with pytest.raises(SchemaError):
            check_payload(payload)


def _log(n_events: int = 4) -> tuple[list[Entry], object, object, list[AuditEvent]]:
    server, agent = generate_private_key(), generate_private_key()
    entries: list[Entry] = []
    prev = GENESIS

    def add(kind: str, record: dict) -> None:
        nonlocal prev
        g = len(entries) + 1
        h = entry_hash(prev, g, kind, "2026-01-01T00:00:00Z", record)
        entries.append(Entry(g, kind, "2026-01-01T00:00:00Z", record, h))
        prev = h

    add("enrol", server_signed(server, {"kind": "enrol", "agent": "a-1", "public_key": public_key_b64(agent),
                                        "hostname": "h", "time": "2026-01-01T00:00:00Z"}))
    events, last = [], GENESIS
    for i in range(1, n_events + 1):
        ev = make_event(agent, "a-1", i, last, "heartbeat", {"i": i}, event_id=str(uuid.uuid4()))
        events.append(ev)
        last = ev.hash
        add("event", ev.to_dict())
    return entries, server, agent, events


def test_verifier_accepts_and_names_problems() -> None:
    entries, server, _, _ = _log()
    pub = server.public_key()  # type: ignore[attr-defined]
    assert verify_entries(entries, pub).ok
    cp = Checkpoint.make(server, len(entries), entries[-1].hash, "2026-01-01T00:00:00Z")  # type: ignore[arg-type]
    assert verify_entries(entries, pub, [cp]).checkpoints == 1
    r = verify_entries(entries[:3], pub, [cp])
    assert not r.ok and r.first_bad == 4 and "truncated" in r.problem
    forged = Checkpoint.make(generate_private_key(), len(entries), entries[-1].hash, "t")
    assert not verify_entries(entries, pub, [forged]).ok
    swapped = [entries[0], replace(entries[2], gseq=2), replace(entries[1], gseq=3), *entries[3:]]
    assert verify_entries(swapped, pub).first_bad == 2


def test_gap_notice_continues_the_agent_chain() -> None:
    entries, server, agent, _events = _log(2)
    ghost = make_event(agent, "a-1", 5, GENESIS, "heartbeat", {})  # seqs 3..5 were dropped
    notice = GapNotice("a-1", 3, 5, ghost.hash, "spool_full").signed(agent)  # type: ignore[arg-type]
    after = make_event(agent, "a-1", 6, ghost.hash, "heartbeat", {})  # type: ignore[arg-type]
    prev = entries[-1].hash
    for kind, rec in (("gap", server_signed(server, {"kind": "gap", "agent": "a-1",  # type: ignore[arg-type]
                                                     "notice": notice.to_dict(), "time": "t"})),
                      ("event", after.to_dict())):
        g = len(entries) + 1
        h = entry_hash(prev, g, kind, "r", rec)
        entries.append(Entry(g, kind, "r", rec, h))
        prev = h
    assert verify_entries(entries, server.public_key()).ok  # type: ignore[attr-defined]
    bad = GapNotice("a-1", 3, 5, ghost.hash, "spool_full").signed(generate_private_key())
    assert not bad.verify(agent.public_key())  # type: ignore[attr-defined]
