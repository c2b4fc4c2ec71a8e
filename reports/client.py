"""Client library of the audit log: what the agent (and `baomi audit enroll|send`) calls.

    from reports.client import AuditClient

    client = AuditClient.enroll(state_dir, "https://collector:8443", token, ca="ca.pem")
    client = AuditClient(state_dir)            # later runs: the identity is in state_dir
    client.submit("finding", {"path": "/home/u/a.docx", "sha256": "…", "marking": "机密★10年",
                              "level": "secret", "rule": "BM-M001"})
    result = client.flush(timeout=60)          # FlushResult(acked=…, pending=…)

`submit` signs the event, chains it to the agent's previous one and commits it to a durable
SQLite spool (`state_dir/spool.sqlite`, WAL, synchronous) before returning, so it survives a
crash or a power cut. `flush` delivers spooled events in signed batches with at-least-once
semantics: on a network error or a 5xx it retries with exponential backoff and jitter; the
collector stores a redelivered event once. Events leave the outbox only when acknowledged, so
delivery resumes after any restart. An acknowledged event moves to the `acked` table and stays
there until a tree head the collector published to its witnesses covers it (the acknowledgement
carries that head): a collector restored from an older backup answers with a last seq below
what it acknowledged, and the agent then sends the lost events again (`_collector_lost`). With
no witness configured, the newest `keep_acked` acknowledged events are kept. The spool is bounded (`max_events`): when full, the oldest
undelivered events are dropped and a signed gap notice tells the collector exactly which ones.
A refused batch that retrying cannot fix raises `DeliveryError`, except two cases handled here:
too large a request (413: the batch is halved) and a clock off by more than the replay window
(the collector's time in its answer sets `skew` for envelope times; event times stay local).
A collector certificate that does not verify against the pinned CA raises `CertificateError`
(a `DeliveryError`) at once: a replaced CA or an impostor is not a transient fault to retry
silently; the events stay spooled.

Thread-safe: one lock around the spool; `flush` may run in a background thread.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import httpx

from policies.keys import (
    canonical_json,
    generate_private_key,
    key_id,
    load_private_key,
    load_public_key,
    public_key_b64,
    save_private_key,
    sign,
)
from reports.events import GENESIS, MAX_BATCH, AuditEvent, GapNotice, make_event
from reports.merkle import AGENT_HEAD_FILE, AgentHead, TreeHead
from reports.tls import client_context

log = logging.getLogger("baomi.audit")

DEFAULT_MAX_EVENTS = 200_000
DEFAULT_BATCH = 200
#: Acknowledged events kept for a re-send when no witnessed head covers them yet.
DEFAULT_KEEP_ACKED = 100_000
#: Seconds between checks (an empty batch) that the collector still holds what it acknowledged,
#: made by `flush` when nothing else is to be sent and unwitnessed acknowledged events are kept.
DEFAULT_PROBE_INTERVAL = 60.0


class DeliveryError(RuntimeError):
    """The collector refused a batch for a reason retrying cannot fix (4xx)."""

    def __init__(self, status: int, body: Any):
        super().__init__(f"collector answered {status}: {body}")
        self.status = status
        self.body = body


class CertificateError(DeliveryError):
    """The collector's TLS certificate does not verify against the CA this agent pinned (the
    collector's CA was replaced, or someone else answers): not retried, since retrying cannot
    fix it; the events stay spooled until the right CA is pinned."""

    def __init__(self, ca: Path | None, reason: str):
        pinned = f"the pinned CA {ca}" if ca else "the system CAs"
        message = f"the collector's TLS certificate does not verify against {pinned}: {reason}"
        super().__init__(0, message)
        self.args = (message,)  # no "collector answered 0": it did not answer


def _certificate_refused(exc: BaseException) -> str | None:
    """The verification failure behind a transport error, if that is what it is."""
    import ssl

    seen: BaseException | None = exc
    for _ in range(8):  # httpx wraps httpcore's error, which wraps the ssl module's
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return str(seen.verify_message or seen)
        seen = seen.__cause__ or seen.__context__
    return None


@dataclass(frozen=True)
class FlushResult:
    #: Events the collector acknowledged during this flush (stored now or earlier).
    acked: int
    #: Events still in the spool.
    pending: int
    #: Delivery attempts that failed and were retried.
    retries: int = 0
    #: Events the collector already had (a redelivery after a lost answer).
    duplicates: int = 0
    #: Events set aside during this flush: refused for their content (see `rejected()`).
    set_aside: int = 0
    #: Acknowledged events sent again because the collector had lost them (restored from a backup).
    resent: int = 0


@dataclass(frozen=True)
class ClientState:
    server: str
    agent: str
    ca: str | None
    server_key: str
    hostname: str
    #: The collector's tree-head signing key (base64), when it said so at enrolment.
    checkpoint_key: str | None = None


def _now(skew: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=skew)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def require_tls(server: str) -> None:
    """Tokens and events travel over HTTPS; plain http:// only to this machine (tests, demos)."""
    from urllib.parse import urlparse

    u = urlparse(server)
    if u.scheme == "https":
        return
    host = (u.hostname or "").lower()
    if u.scheme == "http" and (host == "localhost" or host.startswith("127.") or host == "::1"):
        return
    raise ValueError(f"refusing {server}: use https:// (plain http:// only to loopback)")


class AuditClient:
    """An enrolled agent identity with its spool (see the module docstring)."""

    def __init__(self, state_dir: str | Path, *, max_events: int = DEFAULT_MAX_EVENTS,
                 batch_size: int = DEFAULT_BATCH, timeout: float = 30.0,
                 keep_acked: int = DEFAULT_KEEP_ACKED, probe_interval: float = DEFAULT_PROBE_INTERVAL):
        self.dir = Path(state_dir)
        cfg = json.loads((self.dir / "state.json").read_text())
        self.state = ClientState(**cfg)
        self.key = load_private_key(self.dir / "agent.key")
        self.max_events = max_events
        self.keep_acked = keep_acked
        self.probe_interval = probe_interval
        self._last_probe: float | None = None
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
        #: Seconds to add to this clock for envelope times, learnt from a "stale" refusal.
        self.skew = 0.0
        self._lock = threading.RLock()
        self._flushing = threading.Lock()  # see flush
        self._db = sqlite3.connect(self.dir / "spool.sqlite", isolation_level=None,
                                   check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, record TEXT NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS sources (source TEXT PRIMARY KEY, lines INTEGER NOT NULL)")
        # Events the collector refused for their content, kept for the operator (see _set_aside).
        self._db.execute("CREATE TABLE IF NOT EXISTS rejected (seq INTEGER PRIMARY KEY, record TEXT NOT NULL,"
                         " status INTEGER NOT NULL, answer TEXT NOT NULL, time TEXT NOT NULL)")
        # Acknowledged events not yet covered by a witnessed tree head (re-sent if the collector
        # loses them), and where each acknowledgement put this agent's last event (seq → gseq).
        self._db.execute("CREATE TABLE IF NOT EXISTS acked (seq INTEGER PRIMARY KEY, record TEXT NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS ack_marks (seq INTEGER PRIMARY KEY, gseq INTEGER NOT NULL)")
        require_tls(self.state.server)
        verify: Any = True
        if self.state.server.startswith("https:"):
            verify = client_context(self.dir / "ca.pem" if self.state.ca else None)
        self._http = httpx.Client(base_url=self.state.server, verify=verify, timeout=timeout)

    # enrolment
    @classmethod
    def enroll(cls, state_dir: str | Path, server: str, token: str, *, ca: str | Path | None = None,
               hostname: str | None = None, **kwargs: Any) -> AuditClient:
        """Create a key, enrol it with a one-time token and write the identity to `state_dir`."""
        d = Path(state_dir)
        if (d / "state.json").exists():
            raise FileExistsError(f"{d} already holds an enrolled identity")
        require_tls(server)
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        key = generate_private_key()
        verify: Any = client_context(ca) if server.startswith("https:") else True
        host = hostname or socket.gethostname()
        with httpx.Client(base_url=server, verify=verify, timeout=30) as http:
            resp = http.post("/v1/enroll", json={"token": token, "public_key": public_key_b64(key),
                                                 "hostname": host})
        if resp.status_code != 201:
            raise DeliveryError(resp.status_code, _body(resp))
        reply = resp.json()
        save_private_key(key, d / "agent.key")
        if ca:
            (d / "ca.pem").write_bytes(Path(ca).read_bytes())
        state = {"server": server, "agent": reply["agent"], "ca": "ca.pem" if ca else None,
                 "server_key": reply["server_key"], "hostname": host,
                 "checkpoint_key": reply.get("checkpoint_key")}
        tmp = d / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, d / "state.json")
        return cls(d, **kwargs)

    @property
    def agent(self) -> str:
        return self.state.agent

    def close(self) -> None:
        self._http.close()
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # spooling
    def _meta(self, k: str, default: str) -> str:
        row = self._db.execute("SELECT v FROM meta WHERE k = ?", (k,)).fetchone()
        return row[0] if row else default

    def _set(self, k: str, v: str | int) -> None:
        self._db.execute("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                         (k, str(v)))

    def _append(self, etype: str, payload: Mapping[str, Any], when: str | None) -> AuditEvent:
        seq = int(self._meta("last_seq", "0")) + 1
        ev = make_event(self.key, self.agent, seq, self._meta("last_hash", GENESIS), etype, payload,
                        time=when)
        (count,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        if count >= self.max_events:
            self._drop_oldest(count - self.max_events + 1)
        self._db.execute("INSERT INTO outbox (seq, record) VALUES (?, ?)",
                         (seq, json.dumps(ev.to_dict(), ensure_ascii=False)))
        self._set("last_seq", seq)
        self._set("last_hash", ev.hash)
        return ev

    def _drop_oldest(self, n: int) -> None:
        rows = self._db.execute("SELECT seq, record FROM outbox ORDER BY seq LIMIT ?", (n,)).fetchall()
        if not rows:
            return
        last = AuditEvent.from_dict(json.loads(rows[-1][1]))
        first = int(self._meta("gap_first", str(rows[0][0])))
        self._set("gap_first", first)
        self._set("gap_last", last.seq)
        self._set("gap_last_hash", last.hash)
        self._gap_reason("spool_full")
        self._db.execute("DELETE FROM outbox WHERE seq <= ?", (last.seq,))

    def _gap_reason(self, reason: str) -> None:
        reasons = [r for r in self._meta("gap_reason", "").split("+") if r]
        self._set("gap_reason", "+".join(dict.fromkeys([*reasons, reason])))

    def _set_aside(self, seq: int, record: str, status: int, answer: Any) -> None:
        """Take a poison event (refused for its content, alone in its batch) out of the outbox
        into `rejected`, and cover its sequence number with the signed gap notice, so that the
        events after it flow (one such event once wedged the whole spool)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            # Its hash is what the next event chains to (the record itself may not even parse).
            nxt = self._db.execute("SELECT record FROM outbox WHERE seq > ? ORDER BY seq LIMIT 1",
                                   (seq,)).fetchone()
            if nxt is not None:
                h = str(json.loads(nxt[0])["prev"])
            else:
                h = self._meta("last_hash", GENESIS)
            self._db.execute("INSERT OR REPLACE INTO rejected (seq, record, status, answer, time)"
                             " VALUES (?, ?, ?, ?, ?)",
                             (seq, record, status, json.dumps(answer, ensure_ascii=False)[:2000], _now()))
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            if not self._meta("gap_first", ""):
                self._set("gap_first", seq)
            self._set("gap_last", seq)
            self._set("gap_last_hash", h)
            self._gap_reason("rejected")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def rejected(self) -> list[dict[str, Any]]:
        """Events set aside: {seq, record (the spooled JSON text), status, answer, time}."""
        with self._lock:
            rows = self._db.execute("SELECT seq, record, status, answer, time FROM rejected ORDER BY seq")
            return [{"seq": q, "record": r, "status": st, "answer": json.loads(a), "time": t}
                    for q, r, st, a, t in rows.fetchall()]

    def submit(self, etype: str, payload: Mapping[str, Any], *, time: str | None = None) -> AuditEvent:
        """Sign, chain and durably spool one event; returns it. Raises SchemaError on bad input."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                ev = self._append(etype, payload, time)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return ev

    def submit_source(self, source: str, items: Iterable[tuple[str, Mapping[str, Any], str | None] | None],
                      chunk: int = 500) -> tuple[int, int]:
        """Spool the items of a named source (e.g. a file's identity) once, even across crashes.

        Items already spooled in an earlier run of the same source are skipped: progress is
        committed in the same transaction as the events. A None item (a blank line) counts
        towards progress and records nothing. Returns (spooled now, skipped).
        """
        batch: list[tuple[str, Mapping[str, Any], str | None]]
        with self._lock:
            row = self._db.execute("SELECT lines FROM sources WHERE source = ?", (source,)).fetchone()
            done = int(row[0]) if row else 0
            new = 0
            batch = []
            index = 0

            def commit() -> None:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for etype, payload, when in batch:
                        self._append(etype, payload, when)
                    self._db.execute("INSERT INTO sources (source, lines) VALUES (?, ?) ON CONFLICT"
                                     " (source) DO UPDATE SET lines = excluded.lines", (source, index))
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                batch.clear()

            for item in items:
                index += 1
                if index <= done or item is None:
                    continue
                batch.append(item)
                new += 1
                if len(batch) >= chunk:
                    commit()
            if batch or index > done:
                commit()  # trailing blank lines are progress too
            return new, min(done, index)

    def pending(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    # delivery
    def _envelope(self, rows: list[tuple[int, str]]) -> tuple[dict[str, Any], int]:
        gap = None
        gap_last = 0
        if self._meta("gap_first", ""):
            gap_last = int(self._meta("gap_last", "0"))
            gap = GapNotice(agent=self.agent, first=int(self._meta("gap_first", "0")), last=gap_last,
                            last_hash=self._meta("gap_last_hash", GENESIS),
                            reason=self._meta("gap_reason", "spool_full")).signed(self.key).to_dict()
        env = {"agent": self.agent, "nonce": str(uuid.uuid4()), "sent_at": _now(self.skew),
               "events": [json.loads(r) for _, r in rows], "gap": gap}
        return {"envelope": env, "sig": sign(self.key, canonical_json(env))}, gap_last

    def flush(self, timeout: float | None = 60.0, *, max_backoff: float = 10.0) -> FlushResult:
        """Deliver everything spooled; retry transient failures until `timeout` seconds pass.

        One flush at a time per client: two at once (the daemon's delivery thread and its final
        flush at shutdown) sent the same events, and the second acknowledgement, finding them
        already removed, raised a false "collector is behind this spool" DeliveryError."""
        t0 = time.monotonic()
        if not self._flushing.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            return FlushResult(0, self.pending())
        try:
            left = None if timeout is None else max(0.0, timeout - (time.monotonic() - t0))
            return self._flush(left, max_backoff=max_backoff)
        finally:
            self._flushing.release()

    def _flush(self, timeout: float | None, *, max_backoff: float) -> FlushResult:
        deadline = None if timeout is None else time.monotonic() + timeout
        acked = retries = dups = aside = resent = 0
        delay = 0.1
        size = self.batch_size
        skew_learnt = probed = probe_retried = False
        while True:
            probe = False
            with self._lock:
                rows = self._db.execute("SELECT seq, record FROM outbox ORDER BY seq LIMIT ?",
                                        (size,)).fetchall()
                # A batch stops at a hole in the sequence (an event set aside before a collector
                # restore, re-queued around it): the collector refuses a whole batch that skips, so
                # the events before the hole go first, then the hole is covered (_collector_lost).
                cut = next((i for i in range(1, len(rows)) if rows[i][0] != rows[i - 1][0] + 1), len(rows))
                rows = rows[:cut]
                if not rows and not self._meta("gap_first", ""):
                    if probed or not self._probe_due():
                        return FlushResult(acked, 0, retries, dups, aside, resent)
                    # Nothing to send, but acknowledged events wait for a witness: an empty batch
                    # asks the collector whether it still holds them (restored from a backup?).
                    probe = probed = True
                    self._last_probe = time.monotonic()
                try:
                    body, _gap_last = self._envelope(rows)
                    content = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
                except (ValueError, TypeError) as exc:  # a spooled record that is not JSON
                    content, local = None, str(exc)
            if content is None:
                resp = None
            else:
                try:
                    resp = self._http.post("/v1/events", content=content,
                                           headers={"content-type": "application/json"})
                except httpx.TransportError as exc:
                    if (why := _certificate_refused(exc)) is not None:
                        raise CertificateError(self.dir / "ca.pem" if self.state.ca else None, why) from exc
                    resp = None
            refused = None if resp is None else resp.status_code
            if probe and refused != 200:
                if resp is None and not probe_retried:  # a kept-alive connection the collector closed
                    probe_retried, probed = True, False
                # otherwise the check waits for the next flush; nothing is pending meanwhile
                continue
            if refused == 409 and resp is not None and isinstance(answer := _body(resp), dict) and answer.get("error") == "gap" \
                    and (lost := self._collector_lost(int(answer.get("last_seq") or 0))):  # type: ignore[arg-type]
                resent += lost
                continue
            if content is None or (refused in (400, 413, 422) and rows):
                # Refused for what it holds: halve the batch until the one event to blame is alone,
                # then set it aside, provided the collector takes an empty batch (else the fault is
                # not that event's, and nothing is set aside).
                if len(rows) > 1:
                    size = max(1, len(rows) // 2)
                    continue
                answer = local if content is None else _body(resp)  # type: ignore[arg-type]
                if content is not None and not self._empty_batch_accepted():
                    raise DeliveryError(refused or 0, answer)
                with self._lock:
                    self._set_aside(rows[0][0], rows[0][1], refused or 0, answer)
                aside += 1
                size = self.batch_size
                continue
            if resp is not None and resp.status_code == 200:
                reply = resp.json()
                last_seq = int(reply["last_seq"])
                dups += int(reply.get("duplicates", 0))
                lost = self._collector_lost(last_seq)
                resent += lost
                removed, progressed = self._acknowledged(last_seq)
                acked += removed
                self._keep_head(reply.get("tree_head"), reply.get("witnessed_head"))
                if probe or lost:
                    continue
                if not progressed:
                    raise DeliveryError(200, f"collector is at seq {last_seq}, behind this spool")
                delay = 0.1
                continue
            if resp is not None and resp.status_code == 413 and size > 1:
                size = max(1, size // 2)  # big payloads: smaller batches
                continue
            if resp is not None and resp.status_code == 401 and not skew_learnt:
                reply = _body(resp)
                if isinstance(reply, dict) and reply.get("error") == "stale" and reply.get("server_time"):
                    # This machine's clock is off: send envelope times in the collector's clock.
                    server = datetime.fromisoformat(str(reply["server_time"]))
                    self.skew = (server - datetime.now(UTC)).total_seconds()
                    skew_learnt = True
                    continue
            if resp is not None and resp.status_code < 500 and resp.status_code != 429:
                raise DeliveryError(resp.status_code, _body(resp))
            retries += 1
            pause = delay * (0.5 + random.random() / 2)
            if resp is not None and resp.status_code == 429:
                pause = max(pause, _retry_after(resp))  # the collector's rate limit says when
            if deadline is not None and time.monotonic() + pause > deadline:
                return FlushResult(acked, self.pending(), retries, dups, aside)
            time.sleep(pause)
            delay = min(delay * 2, max_backoff)

    def _probe_due(self) -> bool:
        if self._db.execute("SELECT 1 FROM acked LIMIT 1").fetchone() is None:
            return False
        return self._last_probe is None or time.monotonic() - self._last_probe >= self.probe_interval

    def _collector_lost(self, last_seq: int) -> int:
        """The collector says it holds this agent's events up to `last_seq`, below what it once
        acknowledged: it was restored from an older backup (or truncated). Move the kept
        acknowledged events after `last_seq` back into the outbox, to be sent again; events no
        longer kept (pruned under a witnessed head, or beyond `keep_acked`) are covered by a
        signed gap notice (reason `collector_lost`) so that delivery does not wedge on the hole.
        The same notice covers a hole left in the outbox by an event set aside before the restore
        (found by the next refusal, one hole at a time).
        Returns how many events (plus one for a gap notice) were queued again; 0 if nothing was lost."""
        with self._lock:
            if last_seq >= int(self._meta("acked_seq", "0")):
                if self._meta("gap_first", ""):
                    return 0
                first = self._db.execute("SELECT min(seq) FROM outbox").fetchone()[0]
                if first is None or first <= last_seq + 1:
                    return 0
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute("SELECT seq, record FROM acked WHERE seq > ? ORDER BY seq",
                                        (last_seq,)).fetchall()
                nxt = rows[0] if rows else self._db.execute(
                    "SELECT seq, record FROM outbox ORDER BY seq LIMIT 1").fetchone()
                first_kept = int(nxt[0]) if nxt else int(self._meta("last_seq", "0")) + 1
                hole = first_kept > last_seq + 1
                if hole:
                    if self._meta("gap_first", ""):
                        raise DeliveryError(409, f"collector lost seq {last_seq + 1}..{first_kept - 1}, "
                                                 "no longer kept here, while a gap notice is pending")
                    h = str(json.loads(nxt[1])["prev"]) if nxt else self._meta("last_hash", GENESIS)
                    self._set("gap_first", last_seq + 1)
                    self._set("gap_last", first_kept - 1)
                    self._set("gap_last_hash", h)
                    self._gap_reason("collector_lost")
                self._db.execute("INSERT OR REPLACE INTO outbox (seq, record) SELECT seq, record FROM acked"
                                 " WHERE seq > ?", (last_seq,))
                self._db.execute("DELETE FROM acked WHERE seq > ?", (last_seq,))
                self._db.execute("DELETE FROM ack_marks WHERE seq > ?", (last_seq,))
                self._set("acked_seq", last_seq)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        log.warning("the collector holds events of %s up to seq %d only, below what it acknowledged: "
                    "sending %d kept events again%s", self.agent, last_seq, len(rows),
                    f"; seq {last_seq + 1}..{first_kept - 1} no longer kept (gap notice)" if hole else "")
        return len(rows) + int(hole)

    def acked_kept(self) -> int:
        """Acknowledged events kept until a witnessed tree head covers them."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM acked").fetchone()[0])

    def _acknowledged(self, last_seq: int) -> tuple[int, int]:
        """The collector holds this agent's events up to `last_seq`: move them from the outbox to
        `acked` (kept until witnessed). Returns (events removed from the outbox, events removed + 1
        if a pending gap notice was taken)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT OR REPLACE INTO acked (seq, record) SELECT seq, record FROM outbox"
                             " WHERE seq <= ?", (last_seq,))
            cur = self._db.execute("DELETE FROM outbox WHERE seq <= ?", (last_seq,))
            removed = progressed = cur.rowcount
            top = max(last_seq, int(self._meta("acked_seq", "0")))
            if top == last_seq:
                self._set("acked_seq", last_seq)
            # Bounded: events more than keep_acked seqs behind the newest acknowledged one go (a
            # restore older than them shows as a gap), with their marks. Seqs are this agent's own
            # dense numbering, so the bound is one indexed range, not a count at every acknowledgement.
            self._db.execute("DELETE FROM acked WHERE seq <= ?", (top - max(self.keep_acked, 0),))
            self._db.execute("DELETE FROM ack_marks WHERE seq <= ?", (top - max(self.keep_acked, 0),))
            if self._meta("gap_first", ""):
                # The gap may have been widened by a drop while this batch was in flight.
                if last_seq >= int(self._meta("gap_last", "0")):
                    self._db.execute("DELETE FROM meta WHERE k LIKE 'gap_%'")
                    progressed += 1
                elif last_seq >= int(self._meta("gap_first", "0")):
                    self._set("gap_first", last_seq + 1)
            self._db.execute("COMMIT")
        return removed, progressed

    def rotate_key(self, token: str) -> str:
        """Replace this agent's key, with a one-time token from `baomi server agents rotate`.

        The request is signed with the current key and the new one; once the collector has
        recorded the rotation it accepts only the new key, so the spooled events it has not
        received are re-signed with it (their chain hashes do not cover signatures) in the same
        local transaction that installs the key. Returns the new key's id."""
        from policies.keys import key_id
        from reports.chain import rotation_statement

        with self._lock:
            new = generate_private_key()
            pub, when = public_key_b64(new), _now(self.skew)
            statement = rotation_statement(self.agent, pub, when)
            staged = self.dir / "agent.key.next"  # kept if we die before installing it
            save_private_key(new, staged)
            resp = self._http.post("/v1/rotate", json={
                "token": token, "agent": self.agent, "public_key": pub, "time": when,
                "agent_sig": sign(self.key, statement), "proof": sign(new, statement)})
            if resp.status_code != 200:
                staged.unlink(missing_ok=True)
                raise DeliveryError(resp.status_code, _body(resp))
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # the kept acknowledged events too: a collector restore makes them be sent again
                for table in ("outbox", "acked"):
                    for seq, record in self._db.execute(f"SELECT seq, record FROM {table}").fetchall():
                        try:
                            ev = AuditEvent.from_dict(json.loads(record))
                        except (ValueError, TypeError, KeyError):
                            continue  # a poison record: set aside when sent
                        resigned = dataclasses.replace(ev, sig=sign(new, ev.body_bytes()))
                        self._db.execute(f"UPDATE {table} SET record = ? WHERE seq = ?",  # noqa: S608 - fixed names
                                         (json.dumps(resigned.to_dict(), ensure_ascii=False), seq))
                os.replace(staged, self.dir / "agent.key")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self.key = new
            return key_id(new)

    def _empty_batch_accepted(self) -> bool:
        """Does the collector take a batch without events (with the pending gap notice, if any)?
        If not, the refusal of a single event is not that event's fault."""
        with self._lock:
            body, _ = self._envelope([])
        try:
            resp = self._http.post("/v1/events", json=body)
        except httpx.TransportError:
            return False
        if resp.status_code != 200:
            return False
        reply = resp.json()
        self._acknowledged(int(reply["last_seq"]))
        self._keep_head(reply.get("tree_head"), reply.get("witnessed_head"))
        return True

    def _keep_head(self, obj: Any, witnessed: Any = None) -> None:
        """Keep the signed tree head of an acknowledgement in `state_dir/tree-head.json`: with it,
        `baomi audit verify --agent-state` proves that a collector lost acknowledged events
        (restored from a backup, truncated). A head that goes backwards is kept beside it as
        `tree-head-rollback-<size>.json`, the evidence the newer head would otherwise replace."""
        if not isinstance(obj, dict):
            return
        try:
            new = AgentHead.from_dict(obj)
        except (KeyError, TypeError, ValueError):
            return
        if new.agent != self.agent:
            return
        if self.state.checkpoint_key and new.head.key == key_id(self.state.checkpoint_key):
            ring = {new.head.key: load_public_key(self.state.checkpoint_key)}
            if not new.head.verify(ring):
                return  # a bad signature: nothing worth keeping
        # A head under another key id (the collector rotated its checkpoint key since this agent
        # enrolled) is kept unchecked: `audit verify` checks it against the keys it trusts.
        path = self.dir / AGENT_HEAD_FILE
        try:
            old = AgentHead.from_dict(json.loads(path.read_text()))
        except (OSError, KeyError, TypeError, ValueError):
            old = None
        if old is not None and (new.head.size < old.head.size or new.last_seq < old.last_seq):
            path.replace(self.dir / f"tree-head-rollback-{old.head.size}.json")
        tmp = self.dir / f".{AGENT_HEAD_FILE}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(new.to_dict(), indent=1) + "\n")
        os.replace(tmp, path)
        self._prune_witnessed(new, witnessed)

    def _prune_witnessed(self, new: AgentHead, witnessed: Any) -> None:
        """Note where this acknowledgement put the agent's last event; drop the acknowledged events
        that a head published to the collector's witnesses covers (a restore cannot lose those
        without the witnesses showing it)."""
        with self._lock:
            if new.last_seq > 0:
                self._db.execute("INSERT OR REPLACE INTO ack_marks (seq, gseq) VALUES (?, ?)",
                                 (new.last_seq, new.last_gseq))
            if not isinstance(witnessed, dict):
                return
            try:
                head = TreeHead.from_dict(witnessed)
            except (KeyError, TypeError, ValueError):
                return
            ck = self.state.checkpoint_key
            if not ck or not head.verify({key_id(ck): load_public_key(ck)}):
                return  # no key learnt at enrolment, or not under it: keep everything
            row = self._db.execute("SELECT max(seq) FROM ack_marks WHERE gseq <= ?", (head.size,)).fetchone()
            if row and row[0] is not None:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("DELETE FROM acked WHERE seq <= ?", (row[0],))
                self._db.execute("DELETE FROM ack_marks WHERE seq < ?", (row[0],))
                self._db.execute("COMMIT")

    def signed_headers(self, method: str, path: str) -> dict[str, str]:
        """Headers identifying this agent on a non-batch request (reads are refused to agents)."""
        when = _now(self.skew)
        sig = sign(self.key, canonical_json({"method": method, "path": path, "time": when}))
        return {"X-Baomi-Agent": self.agent, "X-Baomi-Time": when, "X-Baomi-Signature": sig}


def _retry_after(resp: httpx.Response) -> float:
    """Seconds from a 429's Retry-After (delta-seconds form; capped so a wrong one cannot stall)."""
    try:
        return min(60.0, max(0.0, float(resp.headers.get("retry-after", "0"))))
    except ValueError:
        return 0.0


def _body(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text[:500]
