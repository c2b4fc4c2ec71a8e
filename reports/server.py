"""The collector: `baomi server init|run|enroll-token` - an ASGI app (starlette) served by uvicorn.

Data directory (`--data DIR`), written by `init_data`:

    config.json      backend URL (when PostgreSQL), checkpoint interval
    server.key/.pub  the server's Ed25519 key: signs enrolments, gap records and checkpoints
    officer.token    an officer-role API token (0600); only its SHA-256 is stored (api_tokens)
    tls/             private CA and server certificate (agents pin tls/ca.pem)
    audit.sqlite     the embedded store (unless config.json names a PostgreSQL URL)

HTTP API (JSON; TLS unless `--insecure-http` on loopback):

    GET  /v1/health                       anyone
    POST /v1/enroll   {token, public_key, hostname} -> 201 {agent, server_key}
    POST /v1/events   {envelope, sig}     agents: signed batch of their own events
    GET  /v1/entries?after=N&limit=M      officer: raw chain entries (for verify/export)
    GET  /v1/checkpoints, POST /v1/checkpoints, GET /v1/agents, GET /v1/query?…   by role
    POST /v1/admin/enroll-token|revoke|rotate-token                             admin

Roles: people present `Authorization: Bearer <API token>` of role officer, auditor or admin
(reports/apitokens.py: which role may call which endpoint; wrong role 403, revoked 401); an agent
is identified by its Ed25519 signature (on the batch envelope, or on `X-Baomi-*` headers for
other requests) and may only append its own events - read endpoints answer 403 to an agent.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import ipaddress
import json
import math
import os
import queue
import re
import secrets
import socket
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from policies.keys import (
    canonical_json,
    generate_private_key,
    key_id,
    load_private_key,
    load_public_key,
    public_key_b64,
    public_key_pem,
    save_private_key,
    verify,
)
from reports.chain import Checkpoint, server_signed
from reports.events import MAX_BATCH, AuditEvent, GapNotice, SchemaError, utcnow
from reports.limits import RateLimiter, ServeLimits
from reports.merkle import CHECKPOINT_KEY
from reports.store import AgentInfo, AuditStore, IngestResult, Query, SqlStore, open_store
from reports.tls import make_ca_and_server_cert
from reports.witness import TreeKeeper, ensure_checkpoint_key

#: A batch whose `sent_at` is further than this from the server clock is refused (replay window).
REPLAY_WINDOW = timedelta(minutes=5)
MAX_BODY = 8 * 1024 * 1024


def sha256_text(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `24h`, `7d` → timedelta."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if not m:
        raise ValueError(f"bad duration {text!r} (use e.g. 30m, 24h, 7d)")
    n, unit = int(m.group(1)), m.group(2)
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: n})


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ServerData:
    """A collector's data directory, loaded."""

    path: Path
    key: Ed25519PrivateKey
    #: The single officer token of data directories made before API roles (migrated into
    #: reports/apitokens.py's table at start); "" for newer ones.
    officer_token_sha256: str
    db_url: str | None
    checkpoint_interval: float
    #: Signs Merkle tree heads (reports.merkle); not the TLS key, not `key` (see README).
    checkpoint_key: Ed25519PrivateKey | None = None

    @property
    def public_key_b64(self) -> str:
        return public_key_b64(self.key)

    def open_store(self, db_url: str | None = None) -> AuditStore:
        return open_store(self.path, db_url or self.db_url)


def init_data(data_dir: str | Path, names: list[str] | None = None, db_url: str | None = None,
              checkpoint_interval: float = 30.0) -> str:
    """Create keys, CA, certificate, config and an empty store; return the officer token."""
    path = Path(data_dir)
    if (path / "config.json").exists():
        raise FileExistsError(f"{path} is already initialised")
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    key = generate_private_key()
    save_private_key(key, path / "server.key")
    (path / "server.pub").write_bytes(public_key_pem(key))
    make_ca_and_server_cert(path / "tls", (names or []) + ["localhost", "127.0.0.1", "::1"])
    ensure_checkpoint_key(path)
    config = {"version": 1, "db": db_url,
              "checkpoint_interval": checkpoint_interval, "server_key_id": key_id(key)}
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    from reports.apitokens import LEGACY_NAME, add_token, write_token_file

    store = open_store(path, db_url)
    try:  # an officer-role API token (reports/apitokens.py); auditors and admins get their own
        token = add_token(store, "officer", LEGACY_NAME)  # type: ignore[arg-type]
    finally:
        store.close()
    write_token_file(path / "officer.token", token)
    return token


def load_data(data_dir: str | Path, checkpoint_key: str | Path | None = None) -> ServerData:
    """A data directory; `checkpoint_key` loads the tree-head signing key from elsewhere than
    DATA/checkpoint.key (kept off the collector's disk, see README)."""
    path = Path(data_dir)
    cfg = json.loads((path / "config.json").read_text())
    if checkpoint_key is None:
        ensure_checkpoint_key(path)
    return ServerData(path=path, key=load_private_key(path / "server.key"),
                      officer_token_sha256=cfg.get("officer_token_sha256", ""), db_url=cfg.get("db"),
                      checkpoint_interval=float(cfg.get("checkpoint_interval", 30.0)),
                      checkpoint_key=load_private_key(checkpoint_key or path / CHECKPOINT_KEY))


def new_enroll_token(store: AuditStore, expires: timedelta) -> str:
    token = "enrol-" + secrets.token_urlsafe(24)
    store.add_token(sha256_text(token), iso(datetime.now(UTC) + expires))
    return token


def make_checkpoint(store: AuditStore, key: Ed25519PrivateKey, force: bool = False) -> Checkpoint | None:
    """Sign the current head, unless the last checkpoint already covers it."""
    size, root = store.head()
    cps = store.checkpoints()
    if not force and cps and max(c.size for c in cps) >= size:
        return None
    cp = Checkpoint.make(key, size, root, utcnow())
    store.add_checkpoint(cp)
    return cp


class GroupWriter:
    """One thread that appends batches for the whole process, several per transaction.

    A commit costs a disk flush (milliseconds); batches that arrive while one commits are
    appended together in the next transaction (each in its own savepoint), so the flush cost is
    shared instead of queued. Answers go back through futures, after the commit.
    """

    MAX_GROUP = 64

    def __init__(self, store: AuditStore):
        self.store = store
        self.queue: queue.Queue[tuple[tuple[Any, ...], concurrent.futures.Future[IngestResult]] | None] = (
            queue.Queue())
        self.thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self.thread.start()

    def submit(self, *batch: Any) -> concurrent.futures.Future[IngestResult]:
        fut: concurrent.futures.Future[IngestResult] = concurrent.futures.Future()
        self.queue.put((batch, fut))
        return fut

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            group = [item]
            while len(group) < self.MAX_GROUP:
                try:
                    nxt = self.queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self.queue.put(None)
                    break
                group.append(nxt)
            try:
                results = self.store.ingest_many([b for b, _ in group])
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
                for _, fut in group:
                    fut.set_exception(exc)
                continue
            for (_, fut), res in zip(group, results, strict=True):
                fut.set_result(res)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()


def _err(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


@dataclass
class _Collector:
    data: ServerData
    store: AuditStore
    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    refused: set[tuple[str, int, int]] = field(default_factory=set)

    def agent_key(self, agent: str, fresh: bool = False) -> Ed25519PublicKey | None:
        key = None if fresh else self.keys.get(agent)
        if key is None:
            info = self.store.agent(agent)
            if info is None:
                return None
            key = self.keys[agent] = load_public_key(info.public_key)
        return key

    def forget(self, agent: str) -> None:
        """Drop a cached key (rotated, here or by another collector process)."""
        self.keys.pop(agent, None)

    def role(self, request: Request) -> tuple[str, str] | None:
        """(role, id) of the caller: officer/auditor/admin by API token, agent by signed headers."""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            from reports.apitokens import lookup

            tok = lookup(self.store, auth[7:].strip())  # type: ignore[arg-type]
            if tok is None or tok.revoked:
                return None
            return (tok.role, tok.name)
        agent = request.headers.get("x-baomi-agent")
        if agent:
            key = self.agent_key(agent)
            when = request.headers.get("x-baomi-time", "")
            body = canonical_json({"method": request.method, "path": request.url.path, "time": when})
            if key is not None and _fresh(when) and verify(key, body,
                                                           request.headers.get("x-baomi-signature", "")):
                return ("agent", agent)
        return None


def _fresh(when: str) -> bool:
    try:
        t = datetime.fromisoformat(when)
    except ValueError:
        return False
    if t.tzinfo is None:  # a naive time cannot be placed in the replay window (it was a 500)
        return False
    return abs(datetime.now(UTC) - t) <= REPLAY_WINDOW


class BodyTooLarge(ValueError):
    pass


class BodyTimeout(ValueError):
    pass


async def _json(request: Request, timeout: float = ServeLimits.body_timeout) -> Any:
    """The JSON body, read up to MAX_BODY bytes within `timeout` seconds (ValueError beyond, or
    when not JSON; BodyTimeout when the client sends it too slowly)."""
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise BodyTooLarge("body too large")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    raise BodyTooLarge("body too large")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeout(f"body not received within {timeout:g} s") from None
    return strict_json(b"".join(chunks))


def _too_slow(exc: BodyTimeout) -> JSONResponse:
    # The rest of the body may still be on its way: close rather than read it.
    return JSONResponse({"error": "timeout", "message": str(exc)}, status_code=408,
                        headers={"connection": "close"})


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(raw: bytes) -> Any:
    """JSON as RFC 8259 has it: NaN/Infinity refused (they made every later query answer 500),
    nesting beyond the parser's depth a ValueError, not a RecursionError."""
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _int_param(request: Request, name: str, default: int) -> int:
    try:
        return int(request.query_params.get(name, default))
    except ValueError:
        return default


def create_app(data: ServerData, db_url: str | None = None, store: AuditStore | None = None,
               checkpoint_interval: float | None = None, limits: ServeLimits | None = None,
               secure_cookies: bool = True, witnesses: tuple[str, ...] = ()) -> Starlette:
    c = _Collector(data, store or data.open_store(db_url))
    lim = limits or ServeLimits()
    rate = RateLimiter(lim.agent_rate, lim.agent_burst)
    interval = checkpoint_interval if checkpoint_interval is not None else data.checkpoint_interval
    # Signature checks run on two dedicated threads rather than the default pool of 40: many
    # threads doing CPU work starve the event loop of the GIL, and throughput collapsed with 200
    # concurrent agents. Appends go through the group writer.
    workers = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="verify")

    writer = GroupWriter(c.store)
    keeper = TreeKeeper(c.store, data.checkpoint_key or data.key, witnesses)

    def checkpoint_all() -> None:
        make_checkpoint(c.store, data.key)
        keeper.checkpoint()  # stored, then published to every witness

    async def on_workers(fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(workers, fn, *args)

    from reports.apitokens import migrate_legacy, roles_for

    if isinstance(c.store, SqlStore):
        migrate_legacy(c.store, data.officer_token_sha256)

    def officer_only(request: Request) -> JSONResponse | None:
        """Refuse a caller whose role may not use this endpoint (reports/apitokens.py)."""
        who = c.role(request)
        if who is None:
            return _err(401, "unauthenticated", "a valid, unrevoked API token is required")
        if who[0] == "agent":
            return _err(403, "forbidden", "agents may only append their own events")
        allowed = roles_for(request.url.path)
        if who[0] not in allowed:
            return _err(403, "forbidden", f"role {who[0]} may not use {request.url.path} "
                                          f"(needs {' or '.join(allowed) or 'none'})")
        return None

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "server_key": data.public_key_b64})

    async def enroll(request: Request) -> Response:
        try:
            body = await _json(request, lim.body_timeout)
            token, pub, host = str(body["token"]), str(body["public_key"]), str(body["hostname"])[:255]
            pub = public_key_b64(load_public_key(pub))  # one spelling: the store compares it
        except BodyTimeout as exc:
            return _too_slow(exc)
        except (ValueError, KeyError, TypeError):
            return _err(400, "bad_request", "need token, public_key (base64 Ed25519) and hostname")
        now = utcnow()
        agent = "a-" + key_id(pub)
        record = server_signed(data.key, {"kind": "enrol", "agent": agent, "public_key": pub,
                                          "hostname": host, "time": now})
        info = AgentInfo(agent, pub, host, now, 0, "")
        # One transaction (token, hostname, agent row, chain entry): concurrent enrolments of one
        # key with several tokens once raced into a 500 that had used up a token.
        status = await run_in_threadpool(c.store.enrol_with_token, sha256_text(token), info, record, now)  # type: ignore[attr-defined]
        refusals = {"already_enrolled": (409, f"{agent} is already enrolled"),
                    "bad_token": (401, "enrolment token unknown, used or expired"),
                    "hostname_mismatch": (403, "this enrolment token is bound to another hostname"),
                    "hostname_taken": (409, f"hostname {host!r} is held by another agent (revoke it first:"
                                            " baomi server agents revoke HOST)")}
        if status in refusals:
            return _err(refusals[status][0], status, refusals[status][1])
        return JSONResponse({"agent": agent, "server_key": data.public_key_b64,
                             "checkpoint_key": public_key_b64(keeper.key)}, status_code=201)

    def check_batch(body: Any) -> tuple[int, dict[str, Any]] | tuple[str, list[AuditEvent],
                                                                     dict[str, Any] | None, str]:
        """CPU part of ingest (run in a worker thread): shape, signatures, ownership."""
        try:
            env, sig = body["envelope"], str(body["sig"])
            agent, nonce, sent_at = str(env["agent"]), str(env["nonce"]), str(env["sent_at"])
            raw_events = env["events"]
            if not isinstance(raw_events, list):
                raise TypeError
        except (KeyError, TypeError):
            return 400, {"error": "bad_request", "message": "need {envelope: {agent, nonce, sent_at,"
                                                             " events}, sig}"}
        if len(raw_events) > MAX_BATCH:
            return 413, {"error": "too_large", "message": f"at most {MAX_BATCH} events a batch"}
        key = c.agent_key(agent)
        if key is None:
            return 401, {"error": "unknown_agent", "message": f"{agent} is not enrolled"}
        if not verify(key, canonical_json(env), sig):
            key = c.agent_key(agent, fresh=True)  # rotated since it was cached?
            if key is None or not verify(key, canonical_json(env), sig):
                return 401, {"error": "bad_signature", "message": "batch signature does not verify"}
        if not _fresh(sent_at):
            return 401, {"error": "stale", "message": "batch outside the replay window",
                         "server_time": utcnow()}
        # Counted once the signature holds: nobody else can spend an agent's allowance.
        wait = rate.take(agent)
        if wait > 0:
            return 429, {"error": "rate_limited", "retry_after": wait,
                         "message": f"{agent} sends faster than {lim.agent_rate:g} batches a second"}
        try:
            return _check_events(agent, key, raw_events, env, nonce)
        except (SchemaError, ValueError, TypeError, KeyError, OverflowError, RecursionError) as exc:
            # whatever a hostile or broken agent sends is its error (4xx), never the server's (500)
            return 422, {"error": "schema", "message": f"{type(exc).__name__}: {exc}"[:300]}

    def _check_events(agent: str, key: Ed25519PublicKey, raw_events: list[Any], env: dict[str, Any],
                      nonce: str) -> Any:
        events: list[AuditEvent] = []
        try:
            for raw in raw_events:
                ev = AuditEvent.from_dict(raw)
                if ev.agent != agent:
                    return 403, {"error": "cross_agent",
                                 "message": f"{agent} may not submit events of {ev.agent}"}
                if not ev.verify(key):
                    return 401, {"error": "bad_signature",
                                 "message": f"event seq {ev.seq} signature does not verify"}
                events.append(ev)
            gap_record = None
            if env.get("gap") is not None:
                notice = GapNotice.from_dict(env["gap"])
                if notice.agent != agent or not notice.verify(key):
                    return 401, {"error": "bad_signature", "message": "gap notice does not verify"}
                gap_record = server_signed(data.key, {"kind": "gap", "agent": agent,
                                                      "notice": notice.to_dict(), "time": utcnow()})
        except SchemaError as exc:
            return 422, {"error": "schema", "message": str(exc)}
        if [e.seq for e in events] != sorted({e.seq for e in events}):
            return 422, {"error": "schema", "message": "events must be in increasing seq order"}
        # the key this batch was verified with: the store refuses it if no longer the agent's
        return agent, events, gap_record, nonce, public_key_b64(key)

    async def events(request: Request) -> Response:
        try:
            body = await _json(request, lim.body_timeout)
        except BodyTooLarge:
            return _err(413, "too_large", f"at most {MAX_BODY} bytes a request")
        except BodyTimeout as exc:
            return _too_slow(exc)
        except ValueError:
            return _err(400, "bad_request", "body is not JSON")
        checked = await on_workers(check_batch, body)
        if isinstance(checked[0], int):
            retry = checked[1].get("retry_after") if checked[0] == 429 else None
            return JSONResponse(checked[1], status_code=checked[0],
                                headers={"retry-after": str(max(1, math.ceil(retry)))} if retry else None)
        agent, evs, gap_record, nonce, verified_with = checked  # type: ignore[misc]
        res = await asyncio.wrap_future(writer.submit(agent, evs, gap_record, nonce, utcnow(), verified_with))
        if res.status in ("revoked", "key_rotated"):  # reports/identity.py
            c.forget(agent)
            return _err(403 if res.status == "revoked" else 401, res.status, res.message)
        if res.status == "ok":
            reply: dict[str, Any] = {"accepted": res.accepted, "duplicates": res.duplicates,
                                     "last_seq": res.last_seq}
            try:  # a signed tree head covering the agent's events, which the agent keeps
                reply["tree_head"] = await run_in_threadpool(keeper.ack, agent)
                if keeper.witnessed is not None:  # the agent may drop what witnesses hold
                    reply["witnessed_head"] = keeper.witnessed.to_dict()
            except Exception as exc:  # noqa: BLE001 - the events are committed: acknowledge anyway
                print(f"baomi server: no tree head for this acknowledgement: {exc}", file=sys.stderr)
            return JSONResponse(reply)
        if res.status == "gap" and evs:
            key = (agent, res.expected or 0, evs[0].seq)
            if key not in c.refused:
                c.refused.add(key)
                rec = server_signed(data.key, {"kind": "gap_refused", "agent": agent,
                                               "expected": res.expected, "got": evs[0].seq,
                                               "time": utcnow()})
                await run_in_threadpool(c.store.append_record, "gap_refused", rec, utcnow())
        return _err(409, res.status, res.message, last_seq=res.last_seq, expected=res.expected)

    async def entries(request: Request) -> Response:
        if (denied := officer_only(request)) is not None:
            return denied
        after = _int_param(request, "after", 0)
        limit = max(1, min(_int_param(request, "limit", 5000), 20000))
        rows = await run_in_threadpool(lambda: [e.to_dict() for e in c.store.entries(after, limit)])
        return JSONResponse({"entries": rows})

    async def checkpoints(request: Request) -> Response:
        if (denied := officer_only(request)) is not None:
            return denied
        if request.method == "POST":
            await run_in_threadpool(checkpoint_all)
        cps = await run_in_threadpool(c.store.checkpoints)
        return JSONResponse({"checkpoints": [cp.to_dict() for cp in cps]})

    async def agents(request: Request) -> Response:
        if (denied := officer_only(request)) is not None:
            return denied
        infos = await run_in_threadpool(c.store.agents)
        return JSONResponse({"agents": [{"agent": a.agent, "hostname": a.hostname,
                                         "enrolled": a.enrolled, "last_seq": a.last_seq}
                                        for a in infos]})

    async def query(request: Request) -> Response:
        if (denied := officer_only(request)) is not None:
            return denied
        p = request.query_params
        # One page at a time (at most lim.page_limit rows), keyset-paged on the chain position:
        # `next` is the gseq of the page's last row, to be passed back as `after`.
        want = _int_param(request, "limit", 0)
        page = min(want, lim.page_limit) if want > 0 else lim.page_limit
        q = Query(since=p.get("since"), until=p.get("until"), host=p.get("host"),
                  level=p.get("level"), rule=p.get("rule"), type=p.get("type"),
                  agent=p.get("agent"), after=_int_param(request, "after", 0) or None, limit=page)
        try:
            rows = await run_in_threadpool(lambda: list(c.store.query(q)))
        except ValueError as exc:
            return _err(400, "bad_request", str(exc))
        return JSONResponse({"rows": rows, "next": rows[-1]["gseq"] if len(rows) == page else None})

    async def housekeeping() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await run_in_threadpool(checkpoint_all)
                cutoff = iso(datetime.now(UTC) - 2 * REPLAY_WINDOW)
                await run_in_threadpool(c.store.prune_nonces, cutoff)
            except Exception as exc:  # noqa: BLE001 - a transient DB error must not stop checkpoints
                print(f"baomi server: housekeeping failed: {exc}", file=sys.stderr)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(housekeeping()) if interval > 0 else None
        try:
            await run_in_threadpool(keeper.current)  # reads the chain into the Merkle tree once
            yield
        finally:
            if task:
                task.cancel()
            workers.shutdown(wait=True)
            writer.close()
            try:
                await run_in_threadpool(checkpoint_all)
            finally:
                c.store.close()

    routes: list[BaseRoute] = [Route("/v1/health", health), Route("/v1/enroll", enroll, methods=["POST"]),
              Route("/v1/events", events, methods=["POST"]), Route("/v1/entries", entries),
              Route("/v1/checkpoints", checkpoints, methods=["GET", "POST"]),
              Route("/v1/agents", agents), Route("/v1/query", query)]

    async def tree_heads(request: Request) -> Response:
        if (denied := officer_only(request)) is not None:
            return denied
        ths = await run_in_threadpool(c.store.tree_heads)
        return JSONResponse({"tree_heads": [t.to_dict() for t in ths]})

    routes.append(Route("/v1/tree-heads", tree_heads))
    from reports.fleet import fleet_routes  # endpoint agents: status and the served policy bundle

    routes += fleet_routes(data.path, c.store, c.role, officer_only)
    from reports.identity import identity_routes  # key rotation

    routes += identity_routes(data.key, c.store, c.agent_key, c.forget,  # type: ignore[arg-type]
                              lambda r: _json(r, lim.body_timeout), _fresh)
    from reports.apitokens import admin_routes  # enrolment, revocation, rotation by an admin token

    routes += admin_routes(data.key, c.store, officer_only,  # type: ignore[arg-type]
                           lambda r: _json(r, lim.body_timeout), c.forget)
    if isinstance(c.store, SqlStore):  # the officer console (reports/console) at /
        from reports.console.app import console_routes

        routes += console_routes(c.store, data.key, data.path, secure_cookies)
    from reports.store import unavailable_errors  # disk full, database locked or restarting: 503

    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers=dict.fromkeys(unavailable_errors(), _store_unavailable))


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """The store failed in a way a retry may cure: 503 with Retry-After (agents retry), logged;
    a 500 here once read as a collector bug and said nothing about the cause."""
    print(f"baomi server: audit store unavailable ({request.url.path}): {type(exc).__name__}: {exc}",
          file=sys.stderr, flush=True)
    return JSONResponse({"error": "unavailable", "message": f"audit store unavailable: {exc}"[:300]},
                        status_code=503, headers={"retry-after": "1"})


def parse_listen(listen: str) -> tuple[str, int]:
    m = re.fullmatch(r"\[?([^\]]*?)\]?:(\d+)", listen.strip())
    if not m:
        raise ValueError(f"bad --listen {listen!r}; use HOST:PORT")
    return m.group(1) or "127.0.0.1", int(m.group(2))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _die_with_parent(parent: int) -> None:
    """Linux: have the kernel SIGKILL this worker when the supervising process dies (even by
    SIGKILL), so no orphan keeps serving the port."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(0)


def serve(data_dir: str | Path, listen: str, db_url: str | None = None, insecure_http: bool = False,
          port_file: str | Path | None = None, checkpoint_interval: float | None = None,
          workers: int = 1, limits: ServeLimits | None = None, witnesses: tuple[str, ...] = (),
          checkpoint_key: str | None = None) -> None:
    """Run the collector until SIGINT/SIGTERM.

    `workers > 1` pre-forks that many processes accepting on one socket, each with its own store
    connection (the chain head lock in the database serialises their appends); signature checks
    then use every core. Only the first process writes periodic checkpoints.
    """
    import signal

    import uvicorn

    data = load_data(data_dir, checkpoint_key)
    host, port = parse_listen(listen)
    if insecure_http and not is_loopback(host):
        raise ValueError("--insecure-http is allowed on loopback addresses only")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    actual = sock.getsockname()[1]
    tls = {} if insecure_http else {"ssl_certfile": str(data.path / "tls" / "server.pem"),
                                    "ssl_keyfile": str(data.path / "tls" / "server.key")}
    from reports.limits import connection_cap, deadline_protocol, raise_nofile

    lim = limits or ServeLimits()
    cap = connection_cap(lim, raise_nofile())

    def run(interval: float | None) -> None:
        # The app (and its database connections) is created after any fork.
        app = create_app(data, db_url, checkpoint_interval=interval, limits=lim,
                         secure_cookies=not insecure_http, witnesses=witnesses)
        # Slow clients: a header deadline (deadline_protocol), a body deadline (in the app), a
        # connection cap answering 503 (see reports/limits.py).
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=5, backlog=1024,
                                timeout_keep_alive=60, http=deadline_protocol(lim.header_timeout),
                                limit_concurrency=cap, **tls)  # type: ignore[arg-type]
        uvicorn.Server(config).run(sockets=[sock])

    children: list[int] = []
    parent = os.getpid()
    for _ in range(max(workers, 1) - 1):
        pid = os.fork()
        if pid == 0:
            _die_with_parent(parent)
            try:
                run(0)
            finally:
                os._exit(0)
        children.append(pid)
    scheme = "http" if insecure_http else "https"
    url = f"{scheme}://{'[' + host + ']' if ':' in host else host}:{actual}"
    if port_file:
        tmp = Path(str(port_file) + ".tmp")
        tmp.write_text(f"{actual}\n")
        os.replace(tmp, port_file)
    print(f"baomi server: listening on {url}", flush=True)
    try:
        run(checkpoint_interval)
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in children:
            os.waitpid(pid, 0)


def new_nonce() -> str:
    return str(uuid.uuid4())
