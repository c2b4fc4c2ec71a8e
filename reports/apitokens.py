"""Role-separated bearer tokens of the collector's HTTP API (issue 14, item 3).

Three roles, each with its own credentials (the console's roles, reports/console/accounts.py):

- `officer` (保密员): reads findings - `GET /v1/query`, the agent list and status;
- `auditor` (审计员): verifies and exports - the raw chain (`/v1/entries`), checkpoints and tree
  heads (and signing a checkpoint now), plus the officer's reads;
- `admin` (管理员): identities - enrolment tokens, agent revocation and rotation tokens
  (`/v1/admin/…`), plus the agent list. An admin reads no event.

`baomi server token add --role R --name N` makes a random token whose SHA-256 alone is stored
(table `api_tokens`, SQLite or PostgreSQL); `token revoke N` ends it at once (every collector
process reads the table on each request: no cache to outlive a revocation); `token list`.
A wrong role gets 403, an unknown or revoked token 401.

The single officer token of older data directories (its hash in config.json) is migrated, the
first time the collector or a `token` command opens the store, into an officer-role token named
`officer`: it keeps working for officer reads, no longer reads the raw chain, and is revoked like
any other. `server init` makes that `officer` token too (DATA/officer.token).
"""
from __future__ import annotations

import hashlib
import os
import secrets
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reports.store import SqlStore

ROLES = ("officer", "auditor", "admin")
LEGACY_NAME = "officer"

#: Which roles may call which endpoint (path prefix → roles); the first matching prefix wins.
#: One table, so the tests can walk every endpoint against every role.
ENDPOINT_ROLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/v1/query", ("officer", "auditor")),
    ("/v1/agents", ("officer", "auditor", "admin")),  # also /v1/agents/status
    ("/v1/entries", ("auditor",)),
    ("/v1/checkpoints", ("auditor",)),
    ("/v1/tree-heads", ("auditor",)),
    ("/v1/admin/", ("admin",)),
)


class TokenError(ValueError):
    """Bad input to a token command (role, name, an unknown token)."""


@dataclass(frozen=True)
class ApiToken:
    name: str
    role: str
    created: str
    revoked: str | None = None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def roles_for(path: str) -> tuple[str, ...]:
    """The roles allowed on `path`; () for a path no token role may use."""
    for prefix, roles in ENDPOINT_ROLES:
        base = prefix.rstrip("/")
        if path == base or path.startswith(base + "/"):
            return roles
    return ()


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() or not c.isprintable() for c in name):
        raise TokenError("a token name is 1-64 printable characters without spaces")
    return name


def add_token(store: SqlStore, role: str, name: str) -> str:
    """A new random token of `role`, named `name` (unique among tokens not revoked); returns it."""
    if role not in ROLES:
        raise TokenError(f"role must be one of {', '.join(ROLES)}")
    name = _check_name(name)
    token = f"baomi-{role}-" + secrets.token_urlsafe(32)
    _insert(store, token_hash(token), name, role)
    return token


def _insert(store: SqlStore, h: str, name: str, role: str) -> None:
    with store._tx() as cur:  # noqa: SLF001 - the token table lives in the collector's store
        cur.execute(store._sql("SELECT 1 FROM api_tokens WHERE name = ? AND revoked IS NULL"), (name,))  # noqa: SLF001
        if cur.fetchone() is not None:
            raise TokenError(f"a token named {name!r} exists (revoke it first, or choose another name)")
        cur.execute(store._sql("INSERT INTO api_tokens (token_hash, name, role, created) VALUES (?, ?, ?, ?)"),  # noqa: SLF001
                    (h, name, role, _now()))


def migrate_legacy(store: SqlStore, legacy_sha256: str) -> None:
    """Make the single officer token of an older data directory an officer-role token, once
    (a revoked one stays revoked: its row is kept)."""
    if not legacy_sha256:
        return
    with store._tx() as cur:  # noqa: SLF001
        cur.execute(store._sql("SELECT 1 FROM api_tokens WHERE token_hash = ?"), (legacy_sha256,))  # noqa: SLF001
        if cur.fetchone() is not None:
            return
        cur.execute(store._sql("SELECT 1 FROM api_tokens WHERE name = ? AND revoked IS NULL"), (LEGACY_NAME,))  # noqa: SLF001
        name = LEGACY_NAME if cur.fetchone() is None else f"{LEGACY_NAME}-legacy"
        cur.execute(store._sql("INSERT INTO api_tokens (token_hash, name, role, created) VALUES (?, ?, ?, ?)"  # noqa: SLF001
                               " ON CONFLICT (token_hash) DO NOTHING"), (legacy_sha256, name, "officer", _now()))


def lookup(store: SqlStore, token: str) -> ApiToken | None:
    """The token's record (revoked ones included: the caller refuses those), or None."""
    if not token or len(token) > 200:
        return None
    with store._read() as cur:  # noqa: SLF001
        cur.execute(store._sql("SELECT name, role, created, revoked FROM api_tokens WHERE token_hash = ?"),  # noqa: SLF001
                    (token_hash(token),))
        row = cur.fetchone()
    return ApiToken(*row) if row else None


def revoke_token(store: SqlStore, name: str) -> int:
    """Revoke the live token(s) named `name`; returns how many (0: none)."""
    with store._tx() as cur:  # noqa: SLF001
        cur.execute(store._sql("UPDATE api_tokens SET revoked = ? WHERE name = ? AND revoked IS NULL"),  # noqa: SLF001
                    (_now(), name))
        return int(cur.rowcount)


def tokens(store: SqlStore) -> list[ApiToken]:
    with store._read() as cur:  # noqa: SLF001
        cur.execute(store._sql("SELECT name, role, created, revoked FROM api_tokens ORDER BY created"))  # noqa: SLF001
        return [ApiToken(*r) for r in cur.fetchall()]


# ---------------------------------------------------------------- token files
def write_token_file(path: str | Path, token: str) -> None:
    """Write a token to a new file, mode 0600: a private temp (O_EXCL|O_NOFOLLOW, fsynced) hard-
    linked into place, so an existing file or a planted symlink at `path` is never written through."""
    from policies.keys import write_temp_beside

    path = Path(path)
    tmp = write_temp_beside(path, (token + "\n").encode(), 0o600)
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_token_file(path: str) -> str:
    """A token from a file or, for `-`, the first line of stdin (never from the command line);
    TokenError when there is none to read."""
    where = "stdin" if path == "-" else path
    try:
        text = sys.stdin.readline() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenError(f"cannot read a token from {where}: {exc}") from None
    token = text.strip()
    if not token:
        raise TokenError(f"no token in {where}")
    return token


# ---------------------------------------------------------------- admin endpoints
def admin_routes(server_key: Any, store: SqlStore, deny: Any, read_json: Any, forget: Any) -> list[Any]:
    """POST /v1/admin/enroll-token {expires, hostname?} → {token};
    POST /v1/admin/revoke {who} → {agent, hostname};
    POST /v1/admin/rotate-token {who, expires} → {agent, hostname, token}. Admin role only."""
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from reports.identity import enroll_token, revoke_agent, rotation_token
    from reports.server import parse_duration

    def err(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse({"error": code, "message": message}, status_code=status)

    async def body_of(request: Request) -> dict[str, Any] | Response:
        if (denied := deny(request)) is not None:
            return denied  # type: ignore[no-any-return]
        try:
            body = await read_json(request)
        except ValueError:
            return err(400, "bad_request", "body is not JSON")
        if not isinstance(body, dict):
            return err(400, "bad_request", "body must be a JSON object")
        return body

    def ttl(body: dict[str, Any]) -> Any:
        return parse_duration(str(body.get("expires") or "24h"))

    async def new_enroll_token(request: Request) -> Response:
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        try:
            expires = ttl(body)
            host = body.get("hostname")
            host = str(host)[:255] if host else None
        except ValueError as exc:
            return err(400, "bad_request", str(exc))
        token = await run_in_threadpool(enroll_token, store, expires, host)
        return JSONResponse({"token": token}, status_code=201)

    async def revoke(request: Request) -> Response:
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        try:
            info = await run_in_threadpool(revoke_agent, store, server_key, str(body.get("who") or ""))
        except LookupError as exc:
            return err(404, "not_found", str(exc.args[0]))
        forget(info.agent)
        return JSONResponse({"agent": info.agent, "hostname": info.hostname})

    async def rotate(request: Request) -> Response:
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        try:
            expires = ttl(body)
            info, token = await run_in_threadpool(rotation_token, store, str(body.get("who") or ""), expires)
        except ValueError as exc:
            return err(400, "bad_request", str(exc))
        except LookupError as exc:
            return err(404, "not_found", str(exc.args[0]))
        return JSONResponse({"agent": info.agent, "hostname": info.hostname, "token": token}, status_code=201)

    return [Route("/v1/admin/enroll-token", new_enroll_token, methods=["POST"]),
            Route("/v1/admin/revoke", revoke, methods=["POST"]),
            Route("/v1/admin/rotate-token", rotate, methods=["POST"])]
