"""Agent identities on the collector (issue 14, item 3): hostname-bound enrolment tokens,
revocation and key rotation.

- An enrolment token may be bound to a hostname (`baomi server enroll-token --hostname H`): only an
  agent declaring H can use it. Whatever the token, a hostname held by an agent that is not revoked
  is refused to a second one (409 hostname_taken): officers select events by host, and a second
  agent under the same name could plant events there. A reinstalled machine is revoked first.
- `baomi server agents revoke HOST|AGENT`: the agent's batches are refused (403) from then on; the
  chain records a server-signed `revoke` entry, after which `audit verify` refuses any event of it.
- `baomi server agents rotate HOST|AGENT` prints a one-time rotation token bound to that agent; on
  the agent, `baomi audit rotate-key` makes a new key and sends POST /v1/rotate signed with the old
  key (and the new one, as proof of possession). The collector swaps the key in one transaction
  with a `rotate` chain entry; events not yet delivered are re-signed with the new key, so from the
  rotation on the collector accepts the new key only.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from policies.keys import load_public_key, public_key_b64, verify
from reports.chain import rotation_statement, server_signed
from reports.events import utcnow
from reports.store import AgentInfo, SqlStore


def _sha(token: str) -> str:
    from reports.server import sha256_text

    return sha256_text(token)


def _expiry(expires: timedelta) -> str:
    from reports.server import iso

    return iso(datetime.now(UTC) + expires)


def enroll_token(store: SqlStore, expires: timedelta, hostname: str | None = None) -> str:
    """A one-time enrolment token, bound to `hostname` when given."""
    token = "enrol-" + secrets.token_urlsafe(24)
    store.add_bound_token(_sha(token), _expiry(expires), "enrol", hostname=hostname)
    return token


def find_agent(store: SqlStore, who: str) -> AgentInfo:
    """The agent named by its id or its hostname (case-insensitive; revoked agents only by id)."""
    infos = store.agents()
    exact = [a for a in infos if a.agent == who]
    if exact:
        return exact[0]
    named = [a for a in infos if a.hostname.lower() == who.lower() and not store.is_revoked(a.agent)]
    if not named:
        raise LookupError(f"no enrolled agent {who!r} (give its hostname or its agent id)")
    if len(named) > 1:  # enrolled before hostnames were unique
        raise LookupError(f"{who!r} names {len(named)} agents: give the agent id "
                          f"({', '.join(a.agent for a in named)})")
    return named[0]


def revoke_agent(store: SqlStore, server_key: Any, who: str) -> AgentInfo:
    info = find_agent(store, who)
    if store.is_revoked(info.agent):
        raise LookupError(f"{info.agent} ({info.hostname}) is already revoked")
    now = utcnow()
    store.revoke(info.agent, server_signed(server_key, {"kind": "revoke", "agent": info.agent,
                                                        "hostname": info.hostname, "time": now}), now)
    return info


def rotation_token(store: SqlStore, who: str, expires: timedelta) -> tuple[AgentInfo, str]:
    info = find_agent(store, who)
    if store.is_revoked(info.agent):
        raise LookupError(f"{info.agent} ({info.hostname}) is revoked: enrol the machine afresh")
    token = "rotate-" + secrets.token_urlsafe(24)
    store.add_bound_token(_sha(token), _expiry(expires), "rotate", agent=info.agent)
    return info, token


def rotate_request(body: Any) -> tuple[str, str, str, str, str, str]:
    """(token, agent, public_key, time, agent_sig, proof) of a POST /v1/rotate body; ValueError."""
    try:
        fields = tuple(str(body[k]) for k in ("token", "agent", "public_key", "time", "agent_sig", "proof"))
        canonical = public_key_b64(load_public_key(fields[2]))
    except (KeyError, TypeError, ValueError):
        raise ValueError("need token, agent, public_key, time, agent_sig, proof") from None
    if canonical != fields[2]:  # the store compares keys as text: one spelling only
        raise ValueError("public_key must be the base64 of the raw 32-byte Ed25519 key")
    return fields  # type: ignore[return-value]


def identity_routes(server_key: Any, store: SqlStore, agent_key: Callable[..., Any],
                    forget: Callable[[str], None], read_json: Callable[..., Any],
                    fresh: Callable[[str], bool]) -> list[Any]:
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def err(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse({"error": code, "message": message}, status_code=status)

    async def rotate(request: Request) -> Response:
        try:
            token, agent, pub, when, agent_sig, proof = rotate_request(await read_json(request))
        except ValueError as exc:
            return err(400, "bad_request", str(exc))
        old = await run_in_threadpool(agent_key, agent, True)
        statement = rotation_statement(agent, pub, when)
        if old is None or not verify(old, statement, agent_sig):
            return err(401, "bad_signature", "rotation not signed with the agent's current key")
        if not verify(load_public_key(pub), statement, proof):
            return err(401, "bad_signature", "rotation not signed with the new key (proof of possession)")
        if not fresh(when):
            return err(401, "stale", "rotation request outside the replay window")
        info = await run_in_threadpool(store.agent, agent)
        now = utcnow()
        record = server_signed(server_key, {"kind": "rotate", "agent": agent, "public_key": pub,
                                            "previous_key": info.public_key if info else None,
                                            "time": when, "agent_sig": agent_sig, "received": now})
        status = await run_in_threadpool(store.rotate_with_token, _sha(token), agent,
                                         info.public_key if info else "", pub, record, now)
        forget(agent)
        if status == "ok":
            return JSONResponse({"agent": agent, "public_key": pub})
        codes = {"bad_token": (401, "rotation token unknown, used, expired or for another agent"),
                 "revoked": (403, f"{agent} is revoked"),
                 "key_rotated": (409, "the key changed meanwhile: retry")}
        code, message = codes.get(status, (409, status))
        return err(code, status, message)

    return [Route("/v1/rotate", rotate, methods=["POST"])]
