"""Issue 14, item 3: enrolment in one transaction, hostnames, revocation and key rotation."""
from __future__ import annotations

import concurrent.futures
from pathlib import Path

import httpx
import pytest

from policies.keys import generate_private_key, public_key_b64
from reports.server import load_data
from tests.reports.audit_helpers import Collector


def _enrol(c: Collector, token: str, host: str, key=None) -> httpx.Response:
    key = key or generate_private_key()
    with c.http() as h:
        return h.post("/v1/enroll", json={"token": token, "public_key": public_key_b64(key), "hostname": host})


def _unused_tokens(c: Collector) -> int:
    store = load_data(c.data).open_store(c.db_url)
    try:
        with store._read() as cur:  # type: ignore[attr-defined]
            cur.execute("SELECT count(*) FROM tokens WHERE used IS NULL")
            return int(cur.fetchone()[0])
    finally:
        store.close()


def test_concurrent_enrolment_no_500_no_burnt_token(server_data: Path, backend: str | None) -> None:
    c = Collector(server_data, db_url=backend).start()
    try:
        tokens = [c.enroll_token() for _ in range(16)]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda i: _enrol(c, tokens[i], f"host-{i}").status_code, range(16)))
        assert codes == [201] * 16, codes
        assert _unused_tokens(c) == 0
        # one key enrolled with two tokens at once: one wins, the other token stays usable
        key = generate_private_key()
        t1, t2 = c.enroll_token(), c.enroll_token()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            codes = sorted(pool.map(lambda t: _enrol(c, t, "same-key", key).status_code, [t1, t2]))
        assert codes == [201, 409], codes
        assert _unused_tokens(c) == 1
    finally:
        c.stop()


def test_hostnames_bound_tokens_and_duplicates(collector: Collector) -> None:
    from reports.identity import enroll_token
    from reports.server import parse_duration

    store = load_data(collector.data).open_store()
    try:
        bound = enroll_token(store, parse_duration("1h"), "ws-07")  # type: ignore[arg-type]
    finally:
        store.close()
    r = _enrol(collector, bound, "ws-99")
    assert r.status_code == 403 and r.json()["error"] == "hostname_mismatch"
    assert _enrol(collector, bound, "WS-07").status_code == 201, "the mismatch did not use the token up"
    # ws-07 is held now: a second agent may not take it, whatever its token
    r = _enrol(collector, collector.enroll_token(), "ws-07")
    assert r.status_code == 409 and r.json()["error"] == "hostname_taken"
    assert _unused_tokens(collector) == 1, "a refused enrolment keeps its token"


def _verify(c: Collector) -> None:
    from tests.reports.audit_helpers import baomi

    out = baomi("audit", "verify", "--data", str(c.data), check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_revoked_agent_is_refused_and_its_host_can_enrol_again(collector: Collector, tmp_path: Path) -> None:
    from tests.reports.audit_helpers import baomi

    a = collector.enroll(tmp_path / "a", hostname="ws-12")
    b = None
    try:
        a.submit("device", {"id": "before"})
        assert a.flush(timeout=30).pending == 0
        out = baomi("server", "agents", "revoke", "ws-12", "--data", str(collector.data))
        assert a.agent in out.stdout
        a.submit("device", {"id": "after"})
        from reports.client import DeliveryError

        with pytest.raises(DeliveryError) as err:
            a.flush(timeout=10)
        assert err.value.status == 403 and a.pending() == 1 and a.rejected() == []
        again = baomi("server", "agents", "revoke", "ws-12", "--data", str(collector.data), check=False)
        assert again.returncode == 2 and "Traceback" not in again.stderr
        # the reinstalled machine enrols afresh under its name
        b = collector.enroll(tmp_path / "b", hostname="ws-12")
        b.submit("device", {"id": "new"})
        assert b.flush(timeout=30).pending == 0
        with collector.http(role="auditor") as h:
            entries = h.get("/v1/entries").json()["entries"]
        assert [e["kind"] for e in entries].count("revoke") == 1
        _verify(collector)
    finally:
        a.close()
        if b:
            b.close()


def test_rotation_accepts_the_new_key_only_and_the_chain_records_it(server_data: Path, backend: str | None,
                                                                     tmp_path: Path) -> None:
    from policies.keys import key_id, load_private_key
    from reports.client import DeliveryError
    from tests.reports.audit_helpers import baomi

    c = Collector(server_data, db_url=backend, workers=2).start()
    a = c.enroll(tmp_path / "a", hostname="ws-30")
    try:
        a.submit("device", {"id": "old-key"})
        assert a.flush(timeout=30).pending == 0
        a.submit("device", {"id": "spooled-before-rotation"})  # signed with the old key, not sent
        old_key = a.key
        db = ("--db", backend) if backend else ()
        token = baomi("server", "agents", "rotate", "ws-30", "--data", str(server_data), *db).stdout.strip()
        tok = tmp_path / "rot.token"
        tok.write_text(token + "\n")
        a.close()
        out = baomi("audit", "rotate-key", "--state", str(tmp_path / "a"), "--token-file", str(tok))
        new_key = load_private_key(tmp_path / "a" / "agent.key")
        assert key_id(new_key) in out.stdout and key_id(new_key) != key_id(old_key)
        assert not (tmp_path / "a" / "agent.key.next").exists()
        # the token is one-time
        from reports.client import AuditClient

        a = AuditClient(tmp_path / "a")
        with pytest.raises(DeliveryError):
            a.rotate_key(token)
        # both collector processes take the new key (the cached old one is refreshed) ...
        for i in range(6):
            a.submit("device", {"id": f"new-key-{i}"})
            assert a.flush(timeout=30).pending == 0
        # ... and refuse the old one, whichever process answers
        from reports.events import make_event

        with a._lock:
            seq, prev = int(a._meta("last_seq", "0")) + 1, a._meta("last_hash", "")
        forged = make_event(old_key, a.agent, seq, prev, "device", {"id": "old-key-again"})
        from tests.reports.test_hostile_agents import _signed_body

        class Old:  # the agent as someone holding its old key would sign
            agent, key = a.agent, old_key

        for _ in range(4):
            with c.http() as h:
                r = h.post("/v1/events", content=_signed_body(Old, [forged.to_dict()]))
            assert r.status_code == 401, r.text
        with c.http(role="auditor") as h:
            rows = h.get("/v1/query").json()["rows"]
            entries = h.get("/v1/entries").json()["entries"]
        assert [r["payload"]["id"] for r in rows] == ["old-key", "spooled-before-rotation"] + [
            f"new-key-{i}" for i in range(6)]
        assert [e["kind"] for e in entries].count("rotate") == 1
        _verify_db(server_data, backend)
    finally:
        a.close()
        c.stop()


def _verify_db(data: Path, backend: str | None) -> None:
    from tests.reports.audit_helpers import baomi

    out = baomi("audit", "verify", "--data", str(data), *(("--db", backend) if backend else ()), check=False)
    assert out.returncode == 0, out.stdout + out.stderr
