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
    with c.http(role="auditor") as h:
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


def test_tokens_never_sent_over_plain_http_beyond_loopback(tmp_path: Path) -> None:
    from tests.reports.audit_helpers import baomi

    p = baomi("audit", "enroll", "--server", "http://192.0.2.10:8443", "--token-file", "-", "--state",
              str(tmp_path / "st"), check=False, input="t")  # 192.0.2.0/24 is TEST-NET: refused before any packet
    assert p.returncode == 2 and "https://" in p.stderr and "Traceback" not in p.stderr
    tok = tmp_path / "tok"
    tok.write_text("officer-x")
    p = baomi("audit", "query", "--server", "http://192.0.2.10:8443", "--officer-token-file", str(tok), check=False)
    assert p.returncode == 2 and "https://" in p.stderr


def test_keys_create_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    from policies import keys

    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    target = tmp_path / "k.key"
    # the old code wrote to the fixed path k.key.tmp: plant a symlink there and at likely names
    (tmp_path / "k.key.tmp").symlink_to(victim)
    keys.save_private_key(keys.generate_private_key(), target)
    assert victim.read_text() == "keep"
    assert target.stat().st_mode & 0o777 == 0o600 and b"PRIVATE KEY" in target.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".k.key.")], "no temp file left"


def test_scan_policy_trust(tmp_path: Path) -> None:
    """Issue 14: `scan --policy FILE` loaded a bundle signed by any key, and --trust still loaded an
    unsigned YAML."""
    from tests.reports.audit_helpers import baomi

    for who in ("officer", "mallory"):
        baomi("keys", "create", str(tmp_path / f"{who}.key"))
    bundle = tmp_path / "site.json"
    baomi("policy", "sign", "cn-secrecy", "--key", str(tmp_path / "mallory.key"), "-o", str(bundle))
    doc = tmp_path / "d.txt"
    doc.write_text("机密★10年\n关于某事的通知\n", encoding="utf-8")

    def scan(*args: str):  # noqa: ANN202
        return baomi("scan", "--format", "jsonl", "--no-cache", *args, str(doc), check=False)

    p = scan("--policy", str(bundle))
    assert p.returncode == 2 and "trusted key" in p.stderr, "a bundle signed by anyone is not a policy"
    p = scan("--policy", str(bundle), "--trust", str(tmp_path / "officer.key.pub"))
    assert p.returncode == 2 and "not a trusted key" in p.stderr
    good = tmp_path / "good.json"
    baomi("policy", "sign", "cn-secrecy", "--key", str(tmp_path / "officer.key"), "-o", str(good))
    p = scan("--policy", str(good), "--trust", str(tmp_path / "officer.key.pub"))
    assert p.returncode == 1 and "CN-SEC-001" in p.stdout
    pack = tmp_path / "site.yaml"
    pack.write_text((Path(__file__).resolve().parents[2] / "policies" / "packs" / "cn-secrecy.yaml")
                    .read_text(encoding="utf-8"), encoding="utf-8")
    p = scan("--policy", str(pack), "--trust", str(tmp_path / "officer.key.pub"))
    assert p.returncode == 2 and "unsigned" in p.stderr, "an unsigned YAML beside --trust is refused"
    assert scan("--policy", "cn-secrecy", "--trust", str(tmp_path / "officer.key.pub")).returncode == 1, \
        "shipped packs stay loadable by name"
