"""Issue 14: what a hostile or broken agent sends is refused with a 4xx and never takes the
collector down — NaN, deep nesting, naive times, out-of-range sequence numbers and gap bounds."""
from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import pytest

from policies.keys import canonical_json, sign
from reports.events import GENESIS, GapNotice, SchemaError, check_payload, utcnow
from tests.reports.audit_helpers import Collector


def _post(c: Collector, body: bytes | str) -> int:
    with c.http() as h:
        r = h.post("/v1/events", content=body if isinstance(body, bytes) else body.encode(),
                   headers={"content-type": "application/json"})
        return r.status_code


def _still_serving(c: Collector) -> None:
    with c.http(officer=True) as h:
        assert h.get("/v1/query").status_code == 200
        assert h.get("/v1/entries").status_code == 200


def _signed_body(client, events: list[dict], gap: dict | None = None, sent_at: str | None = None) -> str:
    env = {"agent": client.agent, "nonce": str(uuid.uuid4()), "sent_at": sent_at or utcnow(), "events": events,
           "gap": gap}
    return json.dumps({"envelope": env, "sig": sign(client.key, canonical_json(env))})


def _event(client, seq: int = 1, time: str | None = None, payload: dict | None = None) -> dict:
    from reports.events import AuditEvent

    ev = AuditEvent(v=1, id=str(uuid.uuid4()), agent=client.agent, seq=seq, time=time or utcnow(), type="device",
                    payload=payload or {"id": "usb"}, prev=GENESIS)
    return dataclasses.replace(ev, sig=sign(client.key, ev.body_bytes())).to_dict()


def test_nan_and_infinity_refused_on_both_ends(collector: Collector, tmp_path: Path) -> None:
    client = collector.enroll(tmp_path / "st")
    try:
        with pytest.raises(SchemaError, match="NaN"):
            check_payload({"x": float("nan")})
        with pytest.raises(SchemaError):
            client.submit("device", {"size": float("inf")})
        body = _signed_body(client, [_event(client, payload={"x": 1.5})]).replace("1.5", "NaN")
        assert _post(collector, body) == 400
        _still_serving(collector)
        # and the agent's next good event is accepted
        client.submit("device", {"id": "usb-ok"})
        assert client.flush(timeout=30).pending == 0
    finally:
        client.close()


def test_deep_nesting_and_garbage_are_4xx(collector: Collector) -> None:
    assert _post(collector, "[" * 200_000 + "]" * 200_000) == 400
    assert _post(collector, '{"envelope": ' * 5000 + "1" + "}" * 5000) in (400, 422)
    assert _post(collector, b"\xff\xfe not json") == 400
    _still_serving(collector)


def test_naive_times_are_refused_not_500(collector: Collector, tmp_path: Path) -> None:
    client = collector.enroll(tmp_path / "st")
    try:
        assert _post(collector, _signed_body(client, [_event(client)], sent_at="2026-12-05T10:00:00")) == 401
        assert _post(collector, _signed_body(client, [_event(client, time="2026-12-05T10:00:00")])) == 422
        _still_serving(collector)
    finally:
        client.close()


def test_out_of_range_seq_and_gap_do_not_fail_other_agents(collector: Collector, tmp_path: Path) -> None:
    bad = collector.enroll(tmp_path / "bad")
    good = collector.enroll(tmp_path / "good")
    try:
        assert _post(collector, _signed_body(bad, [_event(bad, seq=2 ** 63)])) == 422
        gap = GapNotice(agent=bad.agent, first=1, last=2 ** 63, last_hash=GENESIS, reason="spool_full")
        gap = gap.signed(bad.key).to_dict()
        assert _post(collector, _signed_body(bad, [], gap=gap)) == 422
        good.submit("device", {"id": "innocent"})
        assert good.flush(timeout=30).pending == 0, "an innocent agent is not refused"
        _still_serving(collector)
    finally:
        bad.close()
        good.close()
