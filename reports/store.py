"""The audit log store: one interface, two backends (SQLite by default, PostgreSQL at scale).

`AuditStore` owns the global chain (see `reports.chain`): appends happen in one transaction that
locks the chain head, so several collector processes can share one database. `SqlStore` holds
the SQL common to both backends (written with `?` placeholders); `SQLiteStore` runs it on an
embedded WAL database with synchronous writes, `reports.store_pg.PostgresStore` on PostgreSQL.
An acknowledgement is sent only after the commit returned, so an acknowledged event survives
`kill -9` of the collector.

Use `open_store(data_dir, db_url)` rather than the classes.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from policies.keys import canonical_json
from reports.chain import Checkpoint, Entry, entry_hash
from reports.events import GENESIS, AuditEvent, GapNotice, utcnow
from reports.merkle import TreeHead
from scanner.model import level_rank

SCHEMA = [
    ("CREATE TABLE IF NOT EXISTS head (id INTEGER PRIMARY KEY CHECK (id = 1), size BIGINT NOT NULL,"
    " root TEXT NOT NULL)"),
    ("CREATE TABLE IF NOT EXISTS entries (gseq BIGINT PRIMARY KEY, kind TEXT NOT NULL,"
    " received TEXT NOT NULL, record TEXT NOT NULL, hash TEXT NOT NULL, agent TEXT, aseq BIGINT,"
    " event_id TEXT UNIQUE, etype TEXT, etime TEXT, host TEXT, level INTEGER, rule TEXT, ehash TEXT)"),
    "CREATE UNIQUE INDEX IF NOT EXISTS entries_agent_seq ON entries (agent, aseq)",
    "CREATE INDEX IF NOT EXISTS entries_etime ON entries (etime)",
    "CREATE INDEX IF NOT EXISTS entries_etype ON entries (etype)",
    ("CREATE TABLE IF NOT EXISTS agents (agent TEXT PRIMARY KEY, public_key TEXT NOT NULL,"
    " hostname TEXT NOT NULL, enrolled TEXT NOT NULL, last_seq BIGINT NOT NULL, last_hash TEXT NOT NULL)"),
    "CREATE TABLE IF NOT EXISTS tokens (token_hash TEXT PRIMARY KEY, expires TEXT NOT NULL, used TEXT)",
    "CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, agent TEXT NOT NULL, seen TEXT NOT NULL)",
    ("CREATE TABLE IF NOT EXISTS checkpoints (size BIGINT NOT NULL, root TEXT NOT NULL,"
    " time TEXT NOT NULL, server_key TEXT NOT NULL, sig TEXT NOT NULL, PRIMARY KEY (size, time))"),
    # the officer console (reports/console): the violation list pages by (etype, gseq)
    "CREATE INDEX IF NOT EXISTS entries_etype_gseq ON entries (etype, gseq)",
    ("CREATE TABLE IF NOT EXISTS console_users (name TEXT PRIMARY KEY, role TEXT NOT NULL,"
    " pwhash TEXT NOT NULL, tz TEXT NOT NULL, lang TEXT NOT NULL, created TEXT NOT NULL, disabled TEXT)"),
    ("CREATE TABLE IF NOT EXISTS console_sessions (sid_hash TEXT PRIMARY KEY, name TEXT NOT NULL,"
    " csrf TEXT NOT NULL, created TEXT NOT NULL, seen TEXT NOT NULL)"),
    # Identity (reports/identity.py): what a token is bound to (an enrolment token to a hostname,
    # a rotation token to an agent), and revoked agents (their batches are refused).
    ("CREATE TABLE IF NOT EXISTS token_bindings (token_hash TEXT PRIMARY KEY, purpose TEXT NOT NULL,"
    " hostname TEXT, agent TEXT)"),
    "CREATE TABLE IF NOT EXISTS revoked (agent TEXT PRIMARY KEY, time TEXT NOT NULL)",
    # Merkle tree heads signed by the checkpoint key (reports.merkle); published to witnesses too.
    ("CREATE TABLE IF NOT EXISTS tree_heads (size BIGINT NOT NULL, root TEXT NOT NULL,"
    " time TEXT NOT NULL, key TEXT NOT NULL, sig TEXT NOT NULL, PRIMARY KEY (size, time))"),
    # Role-separated API tokens (reports/apitokens.py): only their SHA-256 is stored.
    ("CREATE TABLE IF NOT EXISTS api_tokens (token_hash TEXT PRIMARY KEY, name TEXT NOT NULL,"
    " role TEXT NOT NULL, created TEXT NOT NULL, revoked TEXT)"),
]

#: Entry kinds an officer's query reads: agents' events and the console's follow-up steps (督办),
#: which carry the columns of the violation they follow so that filters keep them together.
QUERY_KINDS = ("event", "followup")
#: The columns `row_dict` reads, in its order.
ROW_COLS = "gseq, received, etime, agent, host, aseq, event_id, etype, rule, record"

_ENTRY_COLS = "gseq, kind, received, record, hash"
#: The columns a query filters on, derived from the record at ingest: verify checks each against it.
QUERY_COLS = ("agent", "aseq", "event_id", "etype", "etime", "host", "level", "rule", "ehash")


@dataclass(frozen=True)
class AgentInfo:
    agent: str
    public_key: str
    hostname: str
    enrolled: str
    last_seq: int
    last_hash: str


@dataclass(frozen=True)
class IngestResult:
    """What happened to one batch. `status` is ok, replay, conflict or gap."""

    status: str
    accepted: int = 0
    duplicates: int = 0
    last_seq: int = 0
    expected: int | None = None
    message: str = ""


@dataclass(frozen=True)
class Query:
    """Filters of `baomi audit query|export`; None means no filter."""

    since: str | None = None
    until: str | None = None
    host: str | None = None
    level: str | None = None  # at least this level
    rule: str | None = None
    type: str | None = None
    agent: str | None = None
    after: int | None = None  # gseq cursor (forwarding)
    limit: int | None = None


def entry_columns(ev: AuditEvent, host: str) -> tuple[Any, ...]:
    """Query columns derived from an event (never chained: the record is the truth)."""
    p = ev.payload
    level = SqlStore.level_column(p.get("level"))
    rule = p.get("rule") or p.get("rule_id")
    return (ev.agent, ev.seq, ev.id, ev.type, ev.time, host, level,
            str(rule) if rule is not None else None, ev.hash)


def followup_columns(record: dict[str, Any]) -> tuple[Any, ...]:
    """Query columns of a console follow-up step (reports.followup): the violation's host, level
    and rule, all in the signed record, so that `verify` can check them like an event's."""
    p = record.get("payload") or {}
    return (None, None, None, record.get("type"), record.get("time"), p.get("host"),
            SqlStore.level_column(p.get("level")), p.get("rule"), None)


class AuditStore(ABC):
    """Storage interface of the collector and the officer's tools."""

    backend: str = ""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def add_token(self, token_hash: str, expires: str) -> None: ...

    @abstractmethod
    def consume_token(self, token_hash: str, now: str) -> bool:
        """Mark an unexpired, unused token used; False if it was not valid."""

    @abstractmethod
    def enrol(self, info: AgentInfo, record: dict[str, Any], received: str) -> Entry: ...

    @abstractmethod
    def agent(self, agent_id: str) -> AgentInfo | None: ...

    @abstractmethod
    def agents(self) -> list[AgentInfo]: ...

    @abstractmethod
    def ingest(self, agent: str, events: Sequence[AuditEvent], gap_record: dict[str, Any] | None,
               nonce: str, received: str) -> IngestResult: ...

    @abstractmethod
    def ingest_many(self, batches: Sequence[tuple[str, Sequence[AuditEvent], dict[str, Any] | None,
                                                  str, str]]) -> list[IngestResult]:
        """Several `ingest` calls in one transaction, each result independent of the others."""

    @abstractmethod
    def append_record(self, kind: str, record: dict[str, Any], received: str) -> Entry:
        """Append a server-authored record (gap_refused…) to the chain."""

    @abstractmethod
    def entries(self, after: int = 0, limit: int | None = None) -> Iterator[Entry]: ...

    @abstractmethod
    def head(self) -> tuple[int, str]: ...

    @abstractmethod
    def add_checkpoint(self, cp: Checkpoint) -> None: ...

    @abstractmethod
    def checkpoints(self) -> list[Checkpoint]: ...

    @abstractmethod
    def query(self, q: Query) -> Iterator[dict[str, Any]]: ...

    def add_tree_head(self, th: TreeHead) -> None:
        raise NotImplementedError

    def tree_heads(self) -> list[TreeHead]:
        raise NotImplementedError

    def leaf_rows(self, after: int = 0) -> Iterator[tuple[int, str, str | None, int | None, str | None]]:
        """(gseq, hash, agent, aseq, ehash) of the entries after `after`, in order (the Merkle leaves)."""
        raise NotImplementedError

    @abstractmethod
    def prune_nonces(self, before: str) -> int: ...


class SqlStore(AuditStore):
    """SQL shared by both backends; subclasses provide connections and transactions."""

    #: appended to the head SELECT in a write transaction (PostgreSQL row lock).
    lock_clause = ""

    @abstractmethod
    def _tx(self) -> Any:
        """Context manager: a cursor inside a write transaction, committed on exit."""

    @abstractmethod
    def _read(self) -> Any:
        """Context manager: a cursor for reading."""

    def _sql(self, sql: str) -> str:
        return sql

    def init_schema(self) -> None:
        with self._tx() as cur:
            for stmt in SCHEMA:
                cur.execute(self._sql(stmt))
            cur.execute(self._sql("SELECT size FROM head WHERE id = 1"))
            if cur.fetchone() is None:
                cur.execute(self._sql("INSERT INTO head (id, size, root) VALUES (1, 0, ?)"), (GENESIS,))

    # tokens and agents
    def add_token(self, token_hash: str, expires: str) -> None:
        with self._tx() as cur:
            cur.execute(self._sql("INSERT INTO tokens (token_hash, expires) VALUES (?, ?)"),
                        (token_hash, expires))

    def consume_token(self, token_hash: str, now: str) -> bool:
        with self._tx() as cur:
            cur.execute(self._sql("UPDATE tokens SET used = ? WHERE token_hash = ? AND used IS NULL"
                                  " AND expires > ?"), (now, token_hash, now))
            return bool(cur.rowcount == 1)

    def enrol(self, info: AgentInfo, record: dict[str, Any], received: str) -> Entry:
        with self._tx() as cur:
            size, root = self._lock_head(cur)
            cur.execute(self._sql("INSERT INTO agents (agent, public_key, hostname, enrolled, last_seq,"
                                  " last_hash) VALUES (?, ?, ?, ?, ?, ?)"),
                        (info.agent, info.public_key, info.hostname, info.enrolled, 0, GENESIS))
            entry = self._append(cur, size, root, "enrol", record, received, None)
            return entry

    def agent(self, agent_id: str) -> AgentInfo | None:
        with self._read() as cur:
            cur.execute(self._sql("SELECT agent, public_key, hostname, enrolled, last_seq, last_hash"
                                  " FROM agents WHERE agent = ?"), (agent_id,))
            row = cur.fetchone()
        return AgentInfo(*row) if row else None

    def agents(self) -> list[AgentInfo]:
        with self._read() as cur:
            cur.execute(self._sql("SELECT agent, public_key, hostname, enrolled, last_seq, last_hash"
                                  " FROM agents ORDER BY enrolled"))
            return [AgentInfo(*r) for r in cur.fetchall()]

    # the chain
    def _lock_head(self, cur: Any) -> tuple[int, str]:
        cur.execute(self._sql("SELECT size, root FROM head WHERE id = 1" + self.lock_clause))
        size, root = cur.fetchone()
        return int(size), str(root)

    def _append(self, cur: Any, size: int, root: str, kind: str, record: dict[str, Any],
                received: str, cols: tuple[Any, ...] | None) -> Entry:
        gseq = size + 1
        rec = canonical_json(record)
        h = entry_hash(root, gseq, kind, received, rec)
        cur.execute(self._sql(
            "INSERT INTO entries (gseq, kind, received, record, hash, agent, aseq, event_id, etype,"
            " etime, host, level, rule, ehash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            (gseq, kind, received, rec.decode(), h, *(cols or (None,) * 9)))
        cur.execute(self._sql("UPDATE head SET size = ?, root = ? WHERE id = 1"), (gseq, h))
        return Entry(gseq, kind, received, record, h)

    def append_record(self, kind: str, record: dict[str, Any], received: str,
                      cols: tuple[Any, ...] | None = None) -> Entry:
        """Append a server-authored record; `cols` (agent, aseq, event_id, etype, etime, host,
        level, rule, ehash) make it visible to the officer's filters."""
        with self._tx() as cur:
            size, root = self._lock_head(cur)
            return self._append(cur, size, root, kind, record, received, cols)

    @staticmethod
    def level_column(level: Any) -> int | None:
        try:
            return level_rank(level) or None
        except ValueError:
            return None

    def followup_rows(self, types: Sequence[str]) -> list[dict[str, Any]]:
        """Every follow-up step (few beside the events; read through the etype index)."""
        with self._read() as cur:
            cur.execute(self._sql(f"SELECT {ROW_COLS} FROM entries WHERE kind = 'followup' AND etype IN"
                                  f" ({', '.join('?' * len(types))}) ORDER BY gseq"), list(types))
            return [self.row_dict(r) for r in cur.fetchall()]

    def append_followup(self, violation: int, types: Sequence[str],
                        make: Callable[[dict[str, Any] | None, str, list[dict[str, Any]]],
                                       tuple[dict[str, Any], tuple[Any, ...]]]) -> Entry:
        """Append the follow-up record `make(target, target_hash, steps)` builds from the target
        entry and the steps so far, read under the chain head lock: the state it checks cannot
        change before the append."""
        with self._tx() as cur:
            size, root = self._lock_head(cur)
            cur.execute(self._sql(f"SELECT {ROW_COLS}, kind, hash FROM entries WHERE gseq = ?"), (violation,))
            row = cur.fetchone()
            target = self.row_dict(row[:10]) if row is not None and row[10] == "event" else None
            cur.execute(self._sql(f"SELECT {ROW_COLS} FROM entries WHERE kind = 'followup' AND etype IN"
                                  f" ({', '.join('?' * len(types))}) ORDER BY gseq"), list(types))
            steps = [self.row_dict(r) for r in cur.fetchall()]
            record, cols = make(target, str(row[11]) if row is not None else "", steps)
            return self._append(cur, size, root, "followup", record, utcnow(), cols)

    def ingest(self, agent: str, events: Sequence[AuditEvent], gap_record: dict[str, Any] | None,
               nonce: str, received: str) -> IngestResult:
        return self.ingest_many([(agent, events, gap_record, nonce, received)])[0]

    def ingest_many(self, batches: Sequence[tuple[str, Sequence[AuditEvent], dict[str, Any] | None,
                                                  str, str]]) -> list[IngestResult]:
        """Ingest several batches in one transaction (group commit: one disk flush for all).

        Each batch runs inside its own savepoint, so a refused batch leaves the others intact.
        """
        results: list[IngestResult] = []
        with self._tx() as cur:
            size, root = self._lock_head(cur)
            verified_with: list[Any]  # the key a batch was verified with, when the server says
            for agent, events, gap_record, nonce, received, *verified_with in batches:
                cur.execute("SAVEPOINT batch")
                try:
                    self._check_identity(cur, agent, verified_with[0] if verified_with else None)
                    res, size, root = self._ingest(cur, size, root, agent, events, gap_record, nonce,
                                                   received)
                except _Rollback as rb:
                    cur.execute("ROLLBACK TO SAVEPOINT batch")
                    res = rb.result
                cur.execute("RELEASE SAVEPOINT batch")
                results.append(res)
        return results

    def _check_identity(self, cur: Any, agent: str, public_key: str | None) -> None:
        """Inside the append transaction: a revoked agent is refused, and so is a batch verified
        with a key the agent no longer holds (another collector process rotated it)."""
        cur.execute(self._sql("SELECT a.public_key, r.time FROM agents a LEFT JOIN revoked r"
                              " ON r.agent = a.agent WHERE a.agent = ?"), (agent,))
        row = cur.fetchone()
        if row is not None and row[1] is not None:
            raise _Rollback(IngestResult("revoked", message=f"{agent} was revoked at {row[1]}"))
        if row is not None and public_key is not None and row[0] != public_key:
            raise _Rollback(IngestResult("key_rotated", message=f"{agent} holds a new key since its rotation"))

    # identity (reports/identity.py)
    def add_bound_token(self, token_hash: str, expires: str, purpose: str, hostname: str | None = None,
                        agent: str | None = None) -> None:
        with self._tx() as cur:
            cur.execute(self._sql("INSERT INTO tokens (token_hash, expires) VALUES (?, ?)"), (token_hash, expires))
            cur.execute(self._sql("INSERT INTO token_bindings (token_hash, purpose, hostname, agent)"
                                  " VALUES (?, ?, ?, ?)"), (token_hash, purpose, hostname, agent))

    def _take_token(self, cur: Any, token_hash: str, now: str, purpose: str) -> tuple[str | None, str | None]:
        """Check a token inside a transaction: (bound hostname, bound agent); _Refused if unusable.
        Marked used only by the caller's UPDATE, in the same transaction as what it grants."""
        cur.execute(self._sql("SELECT b.purpose, b.hostname, b.agent FROM tokens t LEFT JOIN token_bindings b"
                              " ON b.token_hash = t.token_hash WHERE t.token_hash = ? AND t.used IS NULL"
                              " AND t.expires > ?"), (token_hash, now))
        row = cur.fetchone()
        if row is None or (row[0] or "enrol") != purpose:
            raise _Refused("bad_token")
        return row[1], row[2]

    def enrol_with_token(self, token_hash: str, info: AgentInfo, record: dict[str, Any], received: str) -> str:
        """Enrol in one transaction: the token checked and used, the hostname checked, the agent
        row and the chain entry written, or nothing at all. Returns "ok" or why not:
        bad_token, already_enrolled, hostname_mismatch (the token is bound to another name),
        hostname_taken (an agent that is not revoked holds it)."""
        try:
            with self._tx() as cur:
                size, root = self._lock_head(cur)  # serialises enrolments across processes
                cur.execute(self._sql("SELECT 1 FROM agents WHERE agent = ?"), (info.agent,))
                if cur.fetchone() is not None:
                    raise _Refused("already_enrolled")
                bound_host, _ = self._take_token(cur, token_hash, received, "enrol")
                if bound_host is not None and bound_host.lower() != info.hostname.lower():
                    raise _Refused("hostname_mismatch")
                cur.execute(self._sql("SELECT a.agent FROM agents a LEFT JOIN revoked r ON r.agent = a.agent"
                                      " WHERE lower(a.hostname) = lower(?) AND r.agent IS NULL"), (info.hostname,))
                if cur.fetchone() is not None:
                    raise _Refused("hostname_taken")
                cur.execute(self._sql("UPDATE tokens SET used = ? WHERE token_hash = ?"), (received, token_hash))
                cur.execute(self._sql("INSERT INTO agents (agent, public_key, hostname, enrolled, last_seq,"
                                      " last_hash) VALUES (?, ?, ?, ?, ?, ?)"),
                            (info.agent, info.public_key, info.hostname, info.enrolled, 0, GENESIS))
                self._append(cur, size, root, "enrol", record, received, None)
        except _Refused as r:
            return r.reason
        return "ok"

    def revoke(self, agent: str, record: dict[str, Any], received: str) -> Entry:
        """Refuse the agent's batches from now on; the chain records it (kind `revoke`)."""
        with self._tx() as cur:
            size, root = self._lock_head(cur)
            cur.execute(self._sql("INSERT INTO revoked (agent, time) VALUES (?, ?)"), (agent, received))
            return self._append(cur, size, root, "revoke", record, received, None)

    def is_revoked(self, agent: str) -> bool:
        with self._read() as cur:
            cur.execute(self._sql("SELECT 1 FROM revoked WHERE agent = ?"), (agent,))
            return cur.fetchone() is not None

    def rotate_with_token(self, token_hash: str, agent: str, old_key: str, new_key: str,
                          record: dict[str, Any], received: str) -> str:
        """Replace the agent's key in one transaction with its rotation token used and the chain
        entry (kind `rotate`) written. "ok" or why not: bad_token, revoked, key_rotated (the
        request was signed with a key the agent no longer holds)."""
        try:
            with self._tx() as cur:
                size, root = self._lock_head(cur)
                _, bound_agent = self._take_token(cur, token_hash, received, "rotate")
                if bound_agent != agent:
                    raise _Refused("bad_token")
                try:
                    self._check_identity(cur, agent, old_key)
                except _Rollback as rb:
                    raise _Refused(rb.result.status) from None
                cur.execute(self._sql("UPDATE tokens SET used = ? WHERE token_hash = ?"), (received, token_hash))
                cur.execute(self._sql("UPDATE agents SET public_key = ? WHERE agent = ?"), (new_key, agent))
                self._append(cur, size, root, "rotate", record, received, None)
        except _Refused as r:
            return r.reason
        return "ok"

    def _ingest(self, cur: Any, size: int, root: str, agent: str, events: Sequence[AuditEvent],
                gap_record: dict[str, Any] | None, nonce: str,
                received: str) -> tuple[IngestResult, int, str]:
        cur.execute(self._sql("SELECT 1 FROM nonces WHERE nonce = ?"), (nonce,))
        if cur.fetchone() is not None:
            raise _Rollback(IngestResult("replay", message="batch already received"))
        cur.execute(self._sql("INSERT INTO nonces (nonce, agent, seen) VALUES (?, ?, ?)"),
                    (nonce, agent, received))
        cur.execute(self._sql("SELECT hostname, last_seq, last_hash FROM agents WHERE agent = ?"),
                    (agent,))
        host, last_seq, last_hash = cur.fetchone()
        rows: list[tuple[Any, ...]] = []
        if gap_record is not None:
            notice = GapNotice.from_dict(gap_record["notice"])
            if notice.first == last_seq + 1:
                rows.append(self._row(size + len(rows), root if not rows else rows[-1][4],
                                      "gap", gap_record, received, None))
                last_seq, last_hash = notice.last, notice.last_hash
            elif notice.last > last_seq:
                raise _Rollback(IngestResult(
                    "gap", last_seq=last_seq, expected=last_seq + 1,
                    message=f"gap notice starts at {notice.first}, expected {last_seq + 1}"))
        dups = 0
        for ev in events:
            if ev.seq <= last_seq:
                cur.execute(self._sql("SELECT ehash FROM entries WHERE agent = ? AND aseq = ?"),
                            (agent, ev.seq))
                found = cur.fetchone()
                if found is not None and found[0] == ev.hash:
                    dups += 1
                    continue
                raise _Rollback(IngestResult(
                    "conflict", last_seq=last_seq, expected=last_seq + 1,
                    message=f"seq {ev.seq} differs from the event already stored"))
            if ev.seq != last_seq + 1:
                raise _Rollback(IngestResult(
                    "gap", last_seq=last_seq, expected=last_seq + 1,
                    message=f"seq {ev.seq} skips from {last_seq}"))
            if ev.prev != last_hash:
                raise _Rollback(IngestResult(
                    "conflict", last_seq=last_seq, expected=last_seq + 1,
                    message=f"seq {ev.seq} does not chain to seq {last_seq}"))
            rows.append(self._row(size + len(rows), root if not rows else rows[-1][4], "event",
                                  ev.to_dict(), received, entry_columns(ev, host)))
            last_seq, last_hash = ev.seq, ev.hash
        if rows:
            cur.executemany(self._sql(
                "INSERT INTO entries (gseq, kind, received, record, hash, agent, aseq, event_id,"
                " etype, etime, host, level, rule, ehash) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"), rows)
            cur.execute(self._sql("UPDATE head SET size = ?, root = ? WHERE id = 1"),
                        (rows[-1][0], rows[-1][4]))
            cur.execute(self._sql("UPDATE agents SET last_seq = ?, last_hash = ? WHERE agent = ?"),
                        (last_seq, last_hash, agent))
        accepted = sum(1 for r in rows if r[1] == "event")
        if rows:
            size, root = rows[-1][0], rows[-1][4]
        return IngestResult("ok", accepted=accepted, duplicates=dups, last_seq=last_seq), size, root

    @staticmethod
    def _row(size: int, root: str, kind: str, record: dict[str, Any], received: str,
             cols: tuple[Any, ...] | None) -> tuple[Any, ...]:
        gseq = size + 1
        rec = canonical_json(record)
        return (gseq, kind, received, rec.decode(), entry_hash(root, gseq, kind, received, rec),
                *(cols or (None,) * 9))

    def entries(self, after: int = 0, limit: int | None = None) -> Iterator[Entry]:
        """Entries with gseq > after, in order, read in pages (constant memory)."""
        remaining = limit
        while remaining is None or remaining > 0:
            page = 2000 if remaining is None else min(2000, remaining)
            with self._read() as cur:
                cur.execute(self._sql(f"SELECT {_ENTRY_COLS}, {', '.join(QUERY_COLS)} FROM entries"
                                      " WHERE gseq > ? ORDER BY gseq LIMIT ?"), (after, page))
                rows = cur.fetchall()
            for gseq, kind, received, record, h, *cols in rows:
                yield Entry(int(gseq), kind, received, json.loads(record), h, record.encode(), tuple(cols))
            if len(rows) < page:
                return
            after = int(rows[-1][0])
            if remaining is not None:
                remaining -= len(rows)

    def head(self) -> tuple[int, str]:
        with self._read() as cur:
            cur.execute(self._sql("SELECT size, root FROM head WHERE id = 1"))
            size, root = cur.fetchone()
        return int(size), str(root)

    def add_checkpoint(self, cp: Checkpoint) -> None:
        with self._tx() as cur:
            cur.execute(self._sql("INSERT INTO checkpoints (size, root, time, server_key, sig)"
                                  " VALUES (?, ?, ?, ?, ?)"),
                        (cp.size, cp.root, cp.time, cp.server_key, cp.sig))

    def checkpoints(self) -> list[Checkpoint]:
        with self._read() as cur:
            cur.execute(self._sql("SELECT size, root, time, server_key, sig FROM checkpoints"
                                  " ORDER BY size, time"))
            return [Checkpoint(int(s), r, t, k, g) for s, r, t, k, g in cur.fetchall()]

    def add_tree_head(self, th: TreeHead) -> None:
        with self._tx() as cur:
            cur.execute(self._sql("INSERT INTO tree_heads (size, root, time, key, sig) VALUES (?, ?, ?, ?, ?)"),
                        (th.size, th.root, th.time, th.key, th.sig))

    def tree_heads(self) -> list[TreeHead]:
        with self._read() as cur:
            cur.execute(self._sql("SELECT size, root, time, key, sig FROM tree_heads ORDER BY size, time"))
            return [TreeHead(int(s), r, t, k, g) for s, r, t, k, g in cur.fetchall()]

    def leaf_rows(self, after: int = 0) -> Iterator[tuple[int, str, str | None, int | None, str | None]]:
        while True:
            with self._read() as cur:
                cur.execute(self._sql("SELECT gseq, hash, agent, aseq, ehash FROM entries WHERE gseq > ?"
                                      " ORDER BY gseq LIMIT 5000"), (after,))
                rows = cur.fetchall()
            for gseq, h, agent, aseq, ehash in rows:
                yield int(gseq), str(h), agent, None if aseq is None else int(aseq), ehash
            if len(rows) < 5000:
                return
            after = int(rows[-1][0])

    @staticmethod
    def query_filters(q: Query) -> tuple[list[str], list[Any]]:
        """The WHERE terms and arguments of an officer's query (one definition for `query` and
        the report's aggregates)."""
        where: list[str] = [f"kind IN ({', '.join(repr(k) for k in QUERY_KINDS)})"]
        args: list[Any] = []
        for col, op, val in (("etime", ">=", q.since), ("etime", "<", q.until), ("host", "=", q.host),
                             ("rule", "=", q.rule), ("etype", "=", q.type), ("agent", "=", q.agent),
                             ("gseq", ">", q.after)):
            if val is not None:
                where.append(f"{col} {op} ?")
                args.append(val)
        if q.level is not None:
            where.append("level >= ?")
            args.append(level_rank(q.level))
        return where, args

    @staticmethod
    def row_dict(row: Sequence[Any]) -> dict[str, Any]:
        """An officer's view of one entry read as `ROW_COLS` (queries, reports, the console)."""
        gseq, received, etime, agent, host, aseq, event_id, etype, rule, record = row
        payload = json.loads(record)["payload"]
        return {"gseq": int(gseq), "received": received, "time": etime, "agent": agent,
                "host": host, "seq": int(aseq) if aseq is not None else None, "event_id": event_id,
                "type": etype, "level": payload.get("level"), "rule": rule, "path": payload.get("path"),
                "marking": payload.get("marking"), "payload": payload}

    def query(self, q: Query) -> Iterator[dict[str, Any]]:
        """Matching events in chain order, read in keyset pages on gseq (constant memory: a
        query over the whole log once fetched every row at once)."""
        remaining, after = q.limit or None, q.after
        while remaining is None or remaining > 0:
            page = 2000 if remaining is None else min(2000, remaining)
            where, args = self.query_filters(replace(q, after=after))
            sql = f"SELECT {ROW_COLS} FROM entries WHERE {' AND '.join(where)} ORDER BY gseq LIMIT {int(page)}"
            with self._read() as cur:
                cur.execute(self._sql(sql), args)
                rows = cur.fetchall()
            for row in rows:
                yield self.row_dict(row)
            if len(rows) < page:
                return
            after = int(rows[-1][0])
            if remaining is not None:
                remaining -= len(rows)

    def prune_nonces(self, before: str) -> int:
        with self._tx() as cur:
            cur.execute(self._sql("DELETE FROM nonces WHERE seen < ?"), (before,))
            return int(cur.rowcount)


def unavailable_errors() -> tuple[type[BaseException], ...]:
    """Store errors a retry may cure - the disk full, the database locked by another process
    beyond the busy timeout, the PostgreSQL server restarting or unreachable: the collector
    answers 503 to them, never 500 (nothing was stored, nothing is acknowledged)."""
    errors: list[type[BaseException]] = [sqlite3.OperationalError]
    try:
        import psycopg
    except ImportError:
        return tuple(errors)
    return (*errors, psycopg.OperationalError, psycopg.InterfaceError)


class _Refused(Exception):
    """Raised inside a write transaction to roll it back and refuse with a reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Rollback(Exception):
    """Raised inside a write transaction to roll it back and return a result."""

    def __init__(self, result: IngestResult):
        super().__init__(result.message)
        self.result = result


class SQLiteStore(SqlStore):
    """Embedded store: one file, WAL, `synchronous=FULL` so a commit is on disk when it returns."""

    backend = "sqlite"

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._lock = threading.Lock()
        self._conn = self._connect()
        self.init_schema()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            # IMMEDIATE takes the write lock now: other collector processes wait (busy_timeout).
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            yield self._conn.cursor()


def open_store(data_dir: str | Path | None = None, db_url: str | None = None) -> AuditStore:
    """The store of a collector: PostgreSQL when `db_url` is given, else `DATA/audit.sqlite`."""
    if db_url:
        from reports.store_pg import PostgresStore

        return PostgresStore(db_url)
    if data_dir is None:
        raise ValueError("need a data directory or a database URL")
    return SQLiteStore(Path(data_dir) / "audit.sqlite")
