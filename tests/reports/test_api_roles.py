"""Issue 14, item 3: role-separated API tokens (officer reads, auditor verifies and exports, admin
manages identities) against a real collector over HTTPS on loopback, SQLite and PostgreSQL."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from audit_helpers import Collector, baomi

from reports.server import load_data

#: What each role may do, written out here independently of reports/apitokens.py's table:
#: (method, path, body) → roles allowed.
MATRIX: list[tuple[str, str, dict[str, object] | None, set[str]]] = [
    ("GET", "/v1/query", None, {"officer", "auditor"}),
    ("GET", "/v1/agents", None, {"officer", "auditor", "admin"}),
    ("GET", "/v1/agents/status", None, {"officer", "auditor", "admin"}),
    ("GET", "/v1/entries", None, {"auditor"}),
    ("GET", "/v1/checkpoints", None, {"auditor"}),
    ("POST", "/v1/checkpoints", None, {"auditor"}),
    ("GET", "/v1/tree-heads", None, {"auditor"}),
    ("POST", "/v1/admin/enroll-token", {"expires": "1h"}, {"admin"}),
    ("POST", "/v1/admin/rotate-token", {"who": "ws-roles", "expires": "1h"}, {"admin"}),
]
ROLES = ("officer", "auditor", "admin")


def _call(c: Collector, token: str, method: str, path: str, body: dict[str, object] | None) -> int:
    with c.http(token=token) as h:
        return h.request(method, path, json=body).status_code


def test_each_role_against_each_endpoint(server_data: Path, backend: str | None, tmp_path: Path) -> None:
    c = Collector(server_data, db_url=backend).start()
    agent = c.enroll(tmp_path / "agent", hostname="ws-roles")
    try:
        agent.submit("finding", {"path": "/a.docx", "marking": "机密", "level": "secret", "rule": "BM-M001"})
        assert agent.flush().pending == 0
        tokens = {role: c.role_token(role, f"{role}-1") for role in ROLES}
        for method, path, body, allowed in MATRIX:
            for role in ROLES:
                code = _call(c, tokens[role], method, path, body)
                if role in allowed:
                    assert code in (200, 201), (role, method, path, code)
                else:
                    assert code == 403, (role, method, path, code)
        # the init-time officer token is an officer-role token like any other
        assert _call(c, c.token, "GET", "/v1/query", None) == 200
        assert _call(c, c.token, "GET", "/v1/entries", None) == 403
        # revoked: 401 on every endpoint, at once (no cache outlives the revocation)
        for role in ROLES:
            baomi("server", "token", "revoke", f"{role}-1", "--data", str(c.data), *(["--db", backend] if backend else []))
            for method, path, body, _ in MATRIX:
                assert _call(c, tokens[role], method, path, body) == 401, (role, path)
        listed = baomi("server", "token", "list", "--data", str(c.data), *(["--db", backend] if backend else [])).stdout
        assert all(f"{r}-1\t{r}\t" in listed for r in ROLES) and listed.count("revoked") == 3
        assert "officer\tofficer\t" in listed  # the init token, still active
        # nothing secret in the store: hashes only
        store = load_data(c.data).open_store(backend)
        try:
            with store._read() as cur:  # type: ignore[attr-defined]
                cur.execute("SELECT token_hash FROM api_tokens")
                stored = {r[0] for r in cur.fetchall()}
        finally:
            store.close()
        assert not any(t in stored for t in tokens.values())
        assert {hashlib.sha256(t.encode()).hexdigest() for t in tokens.values()} <= stored
    finally:
        agent.close()
        c.stop()


def test_admin_token_enrols_revokes_and_rotates(collector: Collector, tmp_path: Path) -> None:
    admin = tmp_path / "admin.token"
    baomi("server", "token", "add", "--role", "admin", "--name", "wang.admin", "--data", str(collector.data),
          "--out", str(admin))
    assert admin.stat().st_mode & 0o777 == 0o600
    remote = ("--server", collector.url, "--ca", str(collector.ca))
    # the admin token from stdin, the enrolment token from a file: neither on the command line
    enrol = baomi("audit", "admin", "enroll-token", *remote, "--token-file", "-", "--hostname", "ws-9",
                  input=admin.read_text()).stdout.strip()
    assert enrol.startswith("enrol-")
    (tmp_path / "enrol.token").write_text(enrol + "\n")
    baomi("audit", "enroll", "--server", collector.url, "--token-file", str(tmp_path / "enrol.token"),
          "--ca", str(collector.ca), "--state", str(tmp_path / "st"), "--hostname", "ws-9")
    rot = baomi("audit", "admin", "rotate", "ws-9", *remote, "--token-file", str(admin)).stdout.strip()
    assert rot.startswith("rotate-")
    out = baomi("--lang", "en", "audit", "admin", "revoke", "ws-9", *remote, "--token-file", str(admin)).stdout
    assert "revoked" in out
    from reports.client import AuditClient, DeliveryError

    with AuditClient(tmp_path / "st") as client:
        client.submit("heartbeat", {})
        with pytest.raises(DeliveryError) as err:
            client.flush(timeout=5)
        assert err.value.status == 403
    # an officer token cannot do any of it
    denied = baomi("--lang", "en", "audit", "admin", "enroll-token", *remote, "--token-file",
                   str(collector.data / "officer.token"), check=False)
    assert denied.returncode == 1 and "403" in denied.stderr
    unknown = baomi("--lang", "en", "audit", "admin", "revoke", "nobody", *remote, "--token-file", str(admin),
                    check=False)
    assert unknown.returncode == 1 and "404" in unknown.stderr


def test_tokens_never_from_argv(collector: Collector, tmp_path: Path) -> None:
    remote = ("--server", collector.url, "--ca", str(collector.ca))
    for cmd in (("audit", "query"), ("audit", "verify"), ("audit", "export"), ("audit", "checkpoint"),
                ("audit", "admin", "enroll-token"), ("audit", "admin", "revoke", "x")):
        p = baomi(*cmd, *remote, "--token", collector.token, check=False)
        assert p.returncode == 2 and "No such option" in p.stderr, (cmd, p.stderr)
    # stdin works where a file does
    rows = baomi("audit", "query", *remote, "--token-file", "-", "--format", "jsonl", input=collector.token + "\n")
    assert rows.returncode == 0
    # enrolment too: the one-time token is read from a file or stdin only
    p = baomi("--lang", "en", "audit", "enroll", "--server", collector.url, "--ca", str(collector.ca),
              "--state", str(tmp_path / "s1"), "--hostname", "ws-argv", "--token", collector.enroll_token(),
              check=False)
    assert p.returncode == 2 and "No such option" in p.stderr
    p = baomi("--lang", "en", "audit", "enroll", "--server", collector.url, "--ca", str(collector.ca),
              "--state", str(tmp_path / "s2"), check=False)
    assert p.returncode == 2 and "--token-file" in p.stderr


def test_token_files_exclusive_and_symlink_safe(sqlite_data: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    planted = tmp_path / "planted.token"
    os.symlink(victim, planted)
    for out in (planted, victim):
        p = baomi("--lang", "en", "server", "token", "add", "--role", "auditor", "--name", f"a-{out.name}",
                  "--data", str(sqlite_data), "--out", str(out), check=False)
        assert p.returncode == 2 and "exists" in p.stderr
    assert victim.read_text() == "keep me\n" and planted.is_symlink()
    from reports.apitokens import write_token_file

    with pytest.raises(FileExistsError):  # the race: the symlink appears after the check
        write_token_file(planted, "secret")
    assert victim.read_text() == "keep me\n"
    assert not list(tmp_path.glob(".planted.token.*"))  # no temp left behind
    p = baomi("--lang", "en", "server", "token", "add", "--role", "boss", "--name", "x", "--data",
              str(sqlite_data), check=False)
    assert p.returncode == 2
    baomi("server", "token", "add", "--role", "officer", "--name", "zhang", "--data", str(sqlite_data))
    dup = baomi("--lang", "en", "server", "token", "add", "--role", "auditor", "--name", "zhang", "--data",
                str(sqlite_data), check=False)
    assert dup.returncode == 2 and "exists" in dup.stderr
    assert (sqlite_data / "officer.token").stat().st_mode & 0o777 == 0o600


def test_single_officer_token_of_older_data_dirs_is_migrated(sqlite_data: Path, tmp_path: Path) -> None:
    """A data directory from before roles: one token, its hash in config.json, no api_tokens row."""
    old = "officer-legacy-" + "x" * 30
    cfg = json.loads((sqlite_data / "config.json").read_text())
    cfg["officer_token_sha256"] = hashlib.sha256(old.encode()).hexdigest()
    (sqlite_data / "config.json").write_text(json.dumps(cfg))
    c = Collector(sqlite_data).start()
    try:
        assert _call(c, old, "GET", "/v1/query", None) == 200
        assert _call(c, old, "GET", "/v1/entries", None) == 403  # it no longer reads everything
        listed = baomi("server", "token", "list", "--data", str(sqlite_data)).stdout
        assert "officer-legacy\tofficer" in listed  # the name 'officer' is taken by init's token
        baomi("server", "token", "revoke", "officer-legacy", "--data", str(sqlite_data))
        assert _call(c, old, "GET", "/v1/query", None) == 401
    finally:
        c.stop()
    c = Collector(sqlite_data).start()  # a restart does not bring a revoked legacy token back
    try:
        assert _call(c, old, "GET", "/v1/query", None) == 401
    finally:
        c.stop()
