"""The collector's gatekeeping against a real TLS collector: enrolment tokens, roles, forged,
replayed, stale and cross-agent batches, gaps, idempotent redelivery, content in payloads."""
from __future__ import annotations

import json
import ssl
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from audit_helpers import Collector, baomi

from policies.keys import canonical_json, generate_private_key, public_key_b64, sign
from reports.client import AuditClient, DeliveryError
from reports.events import make_event
from reports.server import is_loopback, parse_listen
from reports.store import open_store


def envelope(client: AuditClient, events: list[dict[str, Any]], *, key: Any = None, agent: str | None = None,
             sent_at: str | None = None) -> dict[str, Any]:
    env = {"agent": agent or client.agent, "nonce": str(uuid.uuid4()),
           "sent_at": sent_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
           "events": events, "gap": None}
    return {"envelope": env, "sig": sign(key or client.key, canonical_json(env))}


def next_event(client: AuditClient, seq: int, prev: str, **payload: Any) -> dict[str, Any]:
    return make_event(client.key, client.agent, seq, prev, "finding", payload or {"path": "/x"}).to_dict()


def stored(c: Collector) -> list[dict[str, Any]]:
    store = open_store(c.data)
    try:
        return [dict(e.record) | {"_kind": e.kind} for e in store.entries()]
    finally:
        store.close()


def test_tls_is_the_default_and_the_ca_is_pinned(collector: Collector) -> None:
    with pytest.raises(httpx.ConnectError), httpx.Client(verify=ssl.create_default_context()) as h:
        h.get(collector.url + "/v1/health")  # the private CA is not in the system store
    with httpx.Client() as h, pytest.raises(httpx.TransportError):
        h.get(collector.url.replace("https:", "http:") + "/v1/health")
    with collector.http() as h:
        assert h.get("/v1/health").json()["ok"] is True


def test_insecure_http_only_on_loopback(sqlite_data: Path) -> None:
    assert parse_listen("0.0.0.0:8443") == ("0.0.0.0", 8443)
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")
    # Refused before any socket is bound.
    res = baomi("server", "run", "--data", str(sqlite_data), "--listen", "0.0.0.0:0", "--insecure-http",
                check=False)
    assert res.returncode == 2 and "loopback" in res.stderr


def test_enrolment_tokens_are_one_time_and_expire(collector: Collector, tmp_path: Path) -> None:
    token = collector.enroll_token()
    AuditClient.enroll(tmp_path / "a", collector.url, token, ca=collector.ca).close()
    with pytest.raises(DeliveryError) as reused:
        AuditClient.enroll(tmp_path / "b", collector.url, token, ca=collector.ca)
    assert reused.value.status == 401
    with pytest.raises(DeliveryError) as bogus:
        AuditClient.enroll(tmp_path / "c", collector.url, "enrol-not-a-token", ca=collector.ca)
    assert bogus.value.status == 401
    expired = collector.enroll_token("0s")
    with pytest.raises(DeliveryError) as old:
        AuditClient.enroll(tmp_path / "d", collector.url, expired, ca=collector.ca)
    assert old.value.status == 401
    kinds = [r["_kind"] for r in stored(collector)]
    assert kinds == ["enrol"]


def test_reads_need_the_officer_role(collector: Collector, tmp_path: Path) -> None:
    client = collector.enroll(tmp_path / "a")
    client.submit("heartbeat", {})
    client.flush()
    with collector.http() as anon:
        for path in ("/v1/entries", "/v1/checkpoints", "/v1/agents", "/v1/query"):
            assert anon.get(path).status_code == 401, path
            assert anon.get(path, headers=client.signed_headers("GET", path)).status_code == 403, path
            assert anon.get(path, headers={"Authorization": "Bearer officer-wrong"}).status_code == 401
        assert anon.post("/v1/checkpoints", headers=client.signed_headers("POST", "/v1/checkpoints")
                         ).status_code == 403
    with collector.http(role="auditor") as off:
        entries = off.get("/v1/entries").json()["entries"]
        assert [e["kind"] for e in entries] == ["enrol", "event"]
        assert off.get("/v1/agents").json()["agents"][0]["agent"] == client.agent
    client.close()


def test_forged_unknown_stale_and_cross_agent_batches_are_refused(collector: Collector, tmp_path: Path) -> None:
    a = collector.enroll(tmp_path / "a")
    b = collector.enroll(tmp_path / "b")
    ev = next_event(a, 1, "0" * 64)
    with collector.http() as h:
        def post(body: dict[str, Any]) -> httpx.Response:
            return h.post("/v1/events", content=json.dumps(body))

        # unauthenticated / unknown agent
        stranger = generate_private_key()
        r = post(envelope(a, [ev], key=stranger, agent="a-0000000000000000"))
        assert (r.status_code, r.json()["error"]) == (401, "unknown_agent")
        # forged: right agent id, wrong key
        r = post(envelope(a, [ev], key=stranger))
        assert (r.status_code, r.json()["error"]) == (401, "bad_signature")
        # a valid envelope around an event whose own signature was altered
        bad = dict(ev, payload={"path": "/y"})
        r = post(envelope(a, [bad]))
        assert (r.status_code, r.json()["error"]) == (401, "bad_signature")
        # b signs a batch carrying a's event: cross-agent
        r = post(envelope(b, [ev], agent=b.agent))
        assert (r.status_code, r.json()["error"]) == (403, "cross_agent")
        # stale: outside the replay window
        old = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        r = post(envelope(a, [ev], sent_at=old))
        assert (r.status_code, r.json()["error"]) == (401, "stale")
        assert post({"nonsense": 1}).status_code == 400
        from reports.server import MAX_BODY

        assert h.post("/v1/events", content=b"[" + b" " * MAX_BODY + b"]").status_code == 413
        assert h.post("/v1/events", content=b"not json").status_code == 400
    assert [r["_kind"] for r in stored(collector)] == ["enrol", "enrol"]
    a.close()
    b.close()


def test_replay_is_refused_and_redelivery_is_stored_once(collector: Collector, tmp_path: Path) -> None:
    a = collector.enroll(tmp_path / "a")
    e1 = next_event(a, 1, "0" * 64)
    e2 = make_event(a.key, a.agent, 2, make_event_hash(e1), "heartbeat", {}).to_dict()
    with collector.http() as h:
        body = envelope(a, [e1, e2])
        first = h.post("/v1/events", json=body)
        assert first.status_code == 200 and first.json()["accepted"] == 2
        replay = h.post("/v1/events", json=body)  # the same signed envelope again
        assert (replay.status_code, replay.json()["error"]) == (409, "replay")
        again = h.post("/v1/events", json=envelope(a, [e1, e2]))  # a retry: fresh envelope
        assert again.status_code == 200
        ack = again.json()
        assert {k: ack[k] for k in ("accepted", "duplicates", "last_seq")} == \
            {"accepted": 0, "duplicates": 2, "last_seq": 2}
        assert ack["tree_head"]["last_seq"] == 2  # the signed tree head the agent keeps
        # a different event claiming an already used seq is a conflict, not a duplicate
        other = make_event(a.key, a.agent, 2, make_event_hash(e1), "heartbeat", {"n": 1}).to_dict()
        r = h.post("/v1/events", json=envelope(a, [other]))
        assert (r.status_code, r.json()["error"]) == (409, "conflict")
    events = [r for r in stored(collector) if r["_kind"] == "event"]
    assert [e["seq"] for e in events] == [1, 2]
    a.close()


def make_event_hash(ev: dict[str, Any]) -> str:
    from reports.events import AuditEvent

    return AuditEvent.from_dict(ev).hash


def test_unexplained_gap_is_refused_and_recorded(collector: Collector, tmp_path: Path) -> None:
    a = collector.enroll(tmp_path / "a")
    e1 = next_event(a, 1, "0" * 64)
    e3 = next_event(a, 3, "f" * 64)
    with collector.http() as h:
        assert h.post("/v1/events", json=envelope(a, [e1])).status_code == 200
        r = h.post("/v1/events", json=envelope(a, [e3]))
        assert r.status_code == 409 and r.json()["error"] == "gap" and r.json()["expected"] == 2
    recs = stored(collector)
    refused = [r for r in recs if r["_kind"] == "gap_refused"]
    assert len(refused) == 1 and refused[0]["expected"] == 2 and refused[0]["got"] == 3
    assert [r["seq"] for r in recs if r["_kind"] == "event"] == [1]
    a.close()


def test_document_content_is_refused_by_client_and_server(collector: Collector, tmp_path: Path) -> None:
    from reports.events import AuditEvent, SchemaError

    a = collector.enroll(tmp_path / "a")
    with pytest.raises(SchemaError):
        a.submit("finding", {"path": "/x", "content": "全文……"})
    with pytest.raises(SchemaError):
        a.submit("finding", {"path": "/x", "marking": "秘" * 5000})
    # A modified client that skips the check: the server still refuses it.
    raw = AuditEvent(v=1, id=str(uuid.uuid4()), agent=a.agent, seq=1, time="2026-01-01T00:00:00Z",
                     type="finding", payload={"text": "正文"}, prev="0" * 64)
    ev = dict(raw.to_dict(), sig=sign(a.key, raw.body_bytes()))
    with collector.http() as h:
        r = h.post("/v1/events", json=envelope(a, [ev]))
    assert (r.status_code, r.json()["error"]) == (422, "schema")
    a.close()


def test_enrolment_key_must_be_fresh(collector: Collector) -> None:
    key = generate_private_key()
    with collector.http() as h:
        body = {"token": collector.enroll_token(), "public_key": public_key_b64(key), "hostname": "ws"}
        assert h.post("/v1/enroll", json=body).status_code == 201
        body["token"] = collector.enroll_token()
        assert h.post("/v1/enroll", json=body).status_code == 409
        assert h.post("/v1/enroll", json={"token": "x"}).status_code == 400
