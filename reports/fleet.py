"""The collector's view of its endpoint agents: who is alive, and the signed policy they fetch.

- `agent_statuses(store, silent_after)`: per enrolled agent, its last heartbeat (agent clock),
  the last time the collector heard from it, the policy version it reported, and whether it is
  *silent* (nothing received for longer than `silent_after` although its last lifecycle event
  is not a clean `agent_stop`) — an agent killed or disabled shows up here
  (`baomi audit agents`, GET /v1/agents/status).
- `publish_policy(data_dir, bundle)`: the officer puts the current signed bundle where the
  collector serves it (GET /v1/policy, agents and officers). The collector does not judge trust:
  each agent verifies the signature against its own configured officer keys.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from policies.signing import MAX_BUNDLE_BYTES, SignatureError, verify_bundle
from reports.store import AuditStore

#: Default silence after which an agent is flagged (three missed 60 s heartbeats).
DEFAULT_SILENT_AFTER = timedelta(minutes=3)
_LIFECYCLE = ("heartbeat", "agent_start", "agent_stop")


@dataclass(frozen=True)
class AgentStatus:
    agent: str
    hostname: str
    #: Agent-clock time of its last heartbeat / start / stop event (None: never).
    last_heartbeat: str | None
    #: Which of those it was.
    last_event: str | None
    #: Collector-clock time the last event of this agent was received.
    last_received: str | None
    #: Policy version reported with it.
    policy: str | None
    #: Nothing heard for longer than the interval, and not stopped cleanly.
    silent: bool
    #: Its last lifecycle event is a clean `agent_stop`.
    stopped: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _parse(t: str | None) -> datetime | None:
    if not t:
        return None
    try:
        v = datetime.fromisoformat(t)
    except ValueError:
        return None
    return v if v.tzinfo else v.replace(tzinfo=UTC)


def agent_statuses(store: AuditStore, silent_after: timedelta = DEFAULT_SILENT_AFTER,
                   now: datetime | None = None) -> list[AgentStatus]:
    now = now or datetime.now(UTC)
    sql = store._sql  # type: ignore[attr-defined] # SqlStore: both backends
    out = []
    for info in store.agents():
        with store._read() as cur:  # type: ignore[attr-defined]
            marks = ", ".join("?" for _ in _LIFECYCLE)
            cur.execute(sql(f"SELECT etype, etime, record FROM entries WHERE kind = 'event' AND agent = ?"
                            f" AND etype IN ({marks}) ORDER BY aseq DESC LIMIT 1"), (info.agent, *_LIFECYCLE))
            life = cur.fetchone()
            cur.execute(sql("SELECT max(received) FROM entries WHERE kind = 'event' AND agent = ?"), (info.agent,))
            got = cur.fetchone()
        last_received = got[0] if got else None
        etype = etime = policy = None
        if life:
            etype, etime = life[0], life[1]
            payload = json.loads(life[2]).get("payload", {})
            policy = payload.get("policy") if isinstance(payload.get("policy"), str) else None
        heard = _parse(last_received) or _parse(info.enrolled)
        stopped = etype == "agent_stop"
        silent = not stopped and (heard is None or now - heard > silent_after)
        out.append(AgentStatus(info.agent, info.hostname, etime, etype, last_received, policy, silent, stopped))
    return out


def policy_file(data_dir: str | Path) -> Path:
    return Path(data_dir) / "policy" / "bundle.json"


def publish_policy(data_dir: str | Path, bundle: str | Path) -> dict[str, Any]:
    """Check that `bundle` is a well-formed, self-consistent signed bundle and serve it from now on."""
    raw = Path(bundle).read_bytes()
    if len(raw) > MAX_BUNDLE_BYTES:
        raise SignatureError("bundle too large")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SignatureError(f"not a bundle: {exc}") from None
    verify_bundle(body, {}, str(bundle))  # signature against its embedded key: catches damage
    dest = policy_file(data_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_bytes(raw)
    os.replace(tmp, dest)
    return {"created": body.get("created"), "key_id": body.get("key_id"), "files": len(body.get("files", []))}


def fleet_routes(data_dir: Path, store: AuditStore, role: Callable[[Any], tuple[str, str] | None],
                 officer_only: Callable[[Any], Any]) -> list[Any]:
    """Routes added to the collector app: GET /v1/policy (agents, officers) and
    GET /v1/agents/status?silent_after=SECONDS (officers)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def policy(request: Request) -> Response:
        if role(request) is None:
            return JSONResponse({"error": "unauthenticated", "message": "agent or officer credentials required"},
                                status_code=401)
        p = policy_file(data_dir)
        if not p.is_file():
            return JSONResponse({"error": "not_found", "message": "no policy bundle published"}, status_code=404)
        return Response(p.read_bytes(), media_type="application/json")

    async def status(request: Request) -> Response:
        if (denied := officer_only(request)) is not None:
            return denied  # type: ignore[no-any-return]
        try:
            secs = float(request.query_params.get("silent_after", DEFAULT_SILENT_AFTER.total_seconds()))
        except ValueError:
            return JSONResponse({"error": "bad_request", "message": "silent_after: seconds"}, status_code=400)
        rows = await run_in_threadpool(agent_statuses, store, timedelta(seconds=secs))
        return JSONResponse({"agents": [r.to_dict() for r in rows]})

    return [Route("/v1/policy", policy), Route("/v1/agents/status", status)]
