"""The collector's global hash chain, its signed checkpoints, and the verifier.

Every record the collector accepts becomes an `Entry` with a global sequence number `gseq`
(1, 2, 3…) and `hash = SHA-256(canonical [prev, gseq, kind, received] ‖ canonical record)`, where
`prev` is the hash of entry `gseq - 1`. Kinds:

- `event`: an agent's signed `AuditEvent` (its own per-agent chain lives inside),
- `enrol`: the server's signed statement that agent X holds public key K,
- `gap`: an agent-signed `GapNotice` the server accepted,
- `gap_refused`: the server's note that an agent tried to skip sequence numbers.
- `revoke`: the server's statement that agent X is revoked (no event of X may follow),
- `rotate`: the server's statement that agent X holds key K2 from here on, with X's signature
  (old key) over the change; X's later events verify with K2.

A `Checkpoint` (size, root = hash of entry `size`) is signed with the server's Ed25519 key;
exported checkpoints held by a second party make truncation and wholesale rewriting evident.
`verify_entries` walks a log once and names the first bad entry.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from policies.keys import canonical_json, key_id, load_public_key, sign, verify
from reports.events import GENESIS, AuditEvent, GapNotice, SchemaError
from reports.merkle import AgentHead, MerkleTree, TreeHead, leaf_hash, verify_consistency, verify_inclusion

KINDS = ("event", "enrol", "gap", "gap_refused", "followup", "revoke", "rotate")


def entry_hash(prev: str, gseq: int, kind: str, received: str, record: Mapping[str, Any] | bytes) -> str:
    """SHA-256 of the canonical JSON array [prev, gseq, kind, received] followed by the canonical
    JSON of the record (the array is self-delimiting, so the concatenation is unambiguous).
    `record` may be given as its canonical bytes, which the store has at hand anyway."""
    rec = record if isinstance(record, bytes) else canonical_json(record)
    return hashlib.sha256(canonical_json([prev, gseq, kind, received]) + rec).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One entry of the global chain, as stored and exported (one JSONL line)."""

    gseq: int
    kind: str
    received: str
    record: Mapping[str, Any]
    hash: str
    #: The record's canonical JSON as stored, when the store has it: hashed as is, which spares
    #: re-serialising every record of a 100k-entry walk.
    raw: bytes | None = field(default=None, compare=False, repr=False)
    #: The stored query columns (`reports.store.QUERY_COLS`) when read from a store: verify checks
    #: them against the record, since `audit query` filters on them, not on the record.
    columns: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"gseq": self.gseq, "kind": self.kind, "received": self.received,
                "record": self.record, "hash": self.hash}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Entry:
        return cls(gseq=int(d["gseq"]), kind=str(d["kind"]), received=str(d["received"]),
                   record=d["record"], hash=str(d["hash"]))


def server_signed(key: Ed25519PrivateKey, record: dict[str, Any]) -> dict[str, Any]:
    """A server-authored record with `server_sig` over the rest of it."""
    return {**record, "server_sig": sign(key, canonical_json(record))}


def check_server_signed(key: Ed25519PublicKey, record: Mapping[str, Any]) -> bool:
    body = {k: v for k, v in record.items() if k != "server_sig"}
    return verify(key, canonical_json(body), str(record.get("server_sig", "")))


@dataclass(frozen=True)
class Checkpoint:
    """The server's signed statement: the log had `size` entries and entry `size` hashed `root`."""

    size: int
    root: str
    time: str
    server_key: str  # key id of the signing key
    sig: str = ""

    def body(self) -> dict[str, Any]:
        return {"size": self.size, "root": self.root, "time": self.time, "server_key": self.server_key}

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "sig": self.sig}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Checkpoint:
        return cls(size=int(d["size"]), root=str(d["root"]), time=str(d["time"]),
                   server_key=str(d["server_key"]), sig=str(d.get("sig", "")))

    @classmethod
    def make(cls, key: Ed25519PrivateKey, size: int, root: str, time: str) -> Checkpoint:
        cp = cls(size=size, root=root, time=time, server_key=key_id(key))
        return cls(**{**cp.__dict__, "sig": sign(key, canonical_json(cp.body()))})

    def verify(self, key: Ed25519PublicKey) -> bool:
        return verify(key, canonical_json(self.body()), self.sig)


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of a verification; `first_bad` is the gseq of the first bad entry, if any."""

    ok: bool
    entries: int
    agents: int
    checkpoints: int
    first_bad: int | None = None
    problem: str = ""
    #: Signed Merkle tree heads matched, and pairs of them proven consistent (RFC 9162 proofs).
    tree_heads: int = 0
    consistent_pairs: int = 0


@dataclass(frozen=True)
class Evidence:
    """What a verification holds besides the log: signed tree heads from the database, from
    witnesses and from agents' acknowledgements (each with where it came from), the checkpoint
    keys that may sign them, leaf hashes a witness kept (gseq → (leaf hash, source)), and the
    store's `agents` table, which ingest trusts and verify therefore checks against the chain."""

    heads: Sequence[tuple[TreeHead, str]] = ()
    keys: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)
    leaves: Mapping[int, tuple[bytes, str]] = field(default_factory=dict)
    agent_heads: Sequence[tuple[AgentHead, str]] = ()
    #: Reads the agents table after the walk: (rows, log size before, log size after the read).
    #: Sequence numbers are compared only when the log did not grow meanwhile (a live collector).
    agents_table: Callable[[], tuple[Sequence[Any], int, int]] | None = None


@dataclass
class _AgentState:
    key: Ed25519PublicKey
    seq: int = 0
    hash: str = GENESIS
    revoked: bool = False


def rotation_statement(agent: str, public_key: str, time: str) -> bytes:
    """What an agent signs with its current key to ask for `public_key` in its place."""
    return canonical_json({"kind": "rotate", "agent": agent, "public_key": public_key, "time": time})


@dataclass
class _Walk:
    server_key: Ed25519PublicKey
    checkpoints: dict[int, list[Checkpoint]]
    agents: dict[str, _AgentState] = field(default_factory=dict)
    prev: str = GENESIS
    n: int = 0
    cps_checked: int = 0
    #: agent → (gseq, public key, hostname, time) of its enrolment entry, resumed entries included.
    enrolled: dict[str, tuple[int, str, str, str]] = field(default_factory=dict)


def _column_problem(w: _Walk, e: Entry) -> str | None:
    """A stored query column that says something else than the signed record, or None."""
    from reports.store import QUERY_COLS, entry_columns, followup_columns  # the store imports this module

    assert e.columns is not None
    if e.kind == "followup":
        expected: tuple[Any, ...] = followup_columns(dict(e.record))
    elif e.kind != "event":
        expected = (None,) * len(QUERY_COLS)
    else:
        ev = AuditEvent.from_dict(e.record)
        host = w.enrolled.get(ev.agent, (0, "", "", ""))[2]
        expected = entry_columns(ev, host)
    for name, stored, want in zip(QUERY_COLS, e.columns, expected, strict=True):
        if stored != want and not (isinstance(want, int) and str(stored) == str(want)):
            return (f"stored column {name} = {stored!r} but the signed record says {want!r} "
                    "(the database was edited: queries filtering on it would be misled)")
    return None


def _agents_table_problem(w: _Walk, table: Sequence[Any], same_log: bool) -> tuple[int | None, str] | None:
    """The `agents` table against the chain: ingest accepts batches by the key in this table, so
    a swapped key, a moved sequence or a row for an agent never enrolled is tampering."""
    rows = {r.agent: r for r in table}
    for agent, (gseq, pub, host, _t) in sorted(w.enrolled.items(), key=lambda x: x[1][0]):
        r = rows.pop(agent, None)
        if r is None:
            return gseq, f"agent {agent} enrolled at entry {gseq} has no row in the agents table (erased)"
        if r.public_key != pub:
            return gseq, (f"agents table holds another public key for {agent} than its signed enrolment "
                          f"(entry {gseq}): ingest would accept batches signed by that key")
        if r.hostname != host:
            return gseq, f"agents table names {agent} {r.hostname!r}, its signed enrolment {host!r}"
        st = w.agents.get(agent)
        if same_log and st is not None and (int(r.last_seq), str(r.last_hash)) != (st.seq, st.hash):
            return gseq, (f"agents table puts {agent} at seq {r.last_seq}, its chain ends at seq {st.seq}")
    for agent in rows:
        return None, f"agents table lists {agent}, which the log never enrolled"
    return None


def _fail(w: _Walk, gseq: int | None, problem: str) -> VerifyReport:
    return VerifyReport(ok=False, entries=w.n, agents=len(w.agents), checkpoints=w.cps_checked,
                        first_bad=gseq, problem=problem)


def _check_entry(w: _Walk, e: Entry) -> str | None:
    """Problem with entry `e` (already in place in the chain), or None."""
    rec = e.record
    if e.kind == "enrol":
        if not check_server_signed(w.server_key, rec):
            return "enrolment record not signed by the server key"
        try:
            key = load_public_key(str(rec["public_key"]))
        except (KeyError, ValueError):
            return "enrolment record without a valid public key"
        agent = str(rec.get("agent"))
        if agent in w.agents:
            return f"agent {agent} enrolled twice"
        w.agents[agent] = _AgentState(key)
        return None
    if e.kind == "event":
        try:
            ev = AuditEvent.from_dict(rec)
        except (SchemaError, TypeError) as exc:
            return f"malformed event: {exc}"
        st = w.agents.get(ev.agent)
        if st is None:
            return f"event of unknown agent {ev.agent}"
        if st.revoked:
            return f"event of agent {ev.agent} after its revocation"
        if not ev.verify(st.key):
            return f"signature of agent {ev.agent} seq {ev.seq} does not verify with its enrolled key"
        if ev.seq != st.seq + 1:
            return (f"agent {ev.agent}: expected seq {st.seq + 1}, found {ev.seq} "
                    "(entries deleted, inserted or reordered)")
        if ev.prev != st.hash:
            return f"agent {ev.agent} seq {ev.seq}: prev hash does not match the agent's chain"
        st.seq, st.hash = ev.seq, ev.hash
        return None
    if e.kind in ("revoke", "rotate"):
        if not check_server_signed(w.server_key, rec):
            return f"{e.kind} record not signed by the server key"
        st = w.agents.get(str(rec.get("agent")))
        if st is None or st.revoked:
            return f"{e.kind} of an unknown or revoked agent {rec.get('agent')}"
        if e.kind == "revoke":
            st.revoked = True
            return None
        try:
            new_key = load_public_key(str(rec["public_key"]))
        except (KeyError, ValueError):
            return "rotation record without a valid public key"
        statement = rotation_statement(str(rec["agent"]), str(rec["public_key"]), str(rec.get("time")))
        if not verify(st.key, statement, str(rec.get("agent_sig", ""))):
            return f"rotation of {rec['agent']} not signed with the agent's previous key"
        st.key = new_key
        return None
    if e.kind in ("gap", "gap_refused"):
        if not check_server_signed(w.server_key, rec):
            return f"{e.kind} record not signed by the server key"
        if e.kind == "gap":
            try:
                notice = GapNotice.from_dict(rec["notice"])
            except (KeyError, SchemaError, TypeError):
                return "gap record without a valid notice"
            st = w.agents.get(notice.agent)
            if st is None or not notice.verify(st.key):
                return f"gap notice not signed by agent {notice.agent}"
            if notice.first != st.seq + 1:
                return f"gap notice of {notice.agent} starts at {notice.first}, expected {st.seq + 1}"
            st.seq, st.hash = notice.last, notice.last_hash
        return None
    if e.kind == "followup":  # 督办 steps recorded by the console (reports.followup)
        if not check_server_signed(w.server_key, rec):
            return "followup record not signed by the server key"
        violation = (rec.get("payload") or {}).get("violation_gseq")
        if not isinstance(violation, int) or not 0 < violation < e.gseq:
            return "followup record does not name an earlier violation"
        return None
    return f"unknown entry kind {e.kind!r}"


@dataclass(frozen=True)
class Verified:
    """What a completed verification established, so that a later one can resume from it: entry
    `size` hashed `root`, and each agent's (public key, last seq, last hash) at that point.

    Resuming re-hashes entries 1..size (a SHA-256 each) instead of re-checking every signature:
    if they still chain to `root`, they are byte for byte what was verified. Whoever can write
    this state can vouch for a forged prefix, so it is kept on the officer's machine, never beside
    the log (see `reports.render.verifycache`)."""

    size: int
    root: str
    agents: Mapping[str, tuple[str, int, str]]

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "root": self.root, "agents": {a: list(v) for a, v in self.agents.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verified:
        return cls(int(d["size"]), str(d["root"]),
                   {str(a): (str(v[0]), int(v[1]), str(v[2])) for a, v in dict(d["agents"]).items()})


def verify_entries(entries: Iterable[Entry], server_key: Ed25519PublicKey | str,
                   checkpoints: Iterable[Checkpoint] = (), *, resume: Verified | None = None,
                   on_verified: Callable[[Verified], None] | None = None,
                   evidence: Evidence | None = None) -> VerifyReport:
    """Walk the whole log in gseq order; stop at the first bad entry or checkpoint.

    With `resume`, entries up to `resume.size` are only re-hashed (their signatures were checked
    before); if entry `resume.size` no longer hashes to `resume.root` the report says so and the
    caller verifies afresh to name the first bad entry. `on_verified` receives the state of a
    successful walk. Entries read from a store carry their query columns, checked against the
    record. With `evidence`, the signed tree heads it holds are checked against the log's
    Merkle tree (every pair of them proven consistent), witnessed leaves entry by entry, each
    agent's acknowledged event for inclusion, and the agents table against the chain."""
    if isinstance(server_key, str):
        server_key = load_public_key(server_key)
    cps: dict[int, list[Checkpoint]] = {}
    for cp in checkpoints:
        cps.setdefault(cp.size, []).append(cp)
    w = _Walk(server_key, cps)
    keys: dict[str, str] = {}
    if resume is not None:
        keys = {a: k for a, (k, _, _) in resume.agents.items()}
    for size in sorted(cps):
        for cp in cps[size]:
            if not cp.verify(server_key):
                return _fail(w, None, f"checkpoint at size {size} is not signed by the server key")
    ev_ = evidence or Evidence()
    for th, src in ev_.heads:
        if not th.verify(ev_.keys):
            return _fail(w, None, f"forged tree head: size {th.size} signed {th.time} ({src}) is not "
                                  "signed by a trusted checkpoint key")
    tree = MerkleTree() if ev_.heads else None
    acked = {ah.last_gseq: (ah, src) for ah, src in ev_.agent_heads if ah.last_gseq > 0}
    acked_hash: dict[int, str] = {}
    for e in entries:
        expected = w.n + 1
        if e.gseq != expected:
            if e.gseq > expected:
                return _fail(w, expected, f"entry {expected} is missing (deleted)")
            return _fail(w, e.gseq, f"entry {e.gseq} appears out of order or twice")
        # The stored bytes first (the usual case, no re-serialising); the hash is defined over the
        # record's canonical JSON, so a record stored in another spelling is judged by that.
        if (e.raw is None or entry_hash(w.prev, e.gseq, e.kind, e.received, e.raw) != e.hash) and \
                entry_hash(w.prev, e.gseq, e.kind, e.received, e.record) != e.hash:
            return _fail(w, e.gseq, f"entry {e.gseq} does not hash to its chain value "
                                    "(modified, inserted or reordered)")
        if e.kind == "enrol":
            r = e.record
            w.enrolled.setdefault(str(r.get("agent")), (e.gseq, str(r.get("public_key")),
                                                        str(r.get("hostname")), str(r.get("time"))))
        elif e.kind == "rotate" and str(e.record.get("agent")) in w.enrolled:
            # a rotation (checked below like any entry) changes the key the agents table must hold
            g, _pub, host, t = w.enrolled[str(e.record.get("agent"))]
            w.enrolled[str(e.record.get("agent"))] = (g, str(e.record.get("public_key")), host, t)
        if resume is not None and e.gseq <= resume.size:
            if e.gseq == resume.size:
                if e.hash != resume.root:
                    return _fail(w, None, f"entries 1..{resume.size} differ from those verified before")
                w.agents = {a: _AgentState(load_public_key(k), seq, h) for a, (k, seq, h) in resume.agents.items()}
        else:
            problem = _check_entry(w, e)
            if problem:
                return _fail(w, e.gseq, f"entry {e.gseq}: {problem}")
            if e.kind in ("enrol", "rotate"):
                keys[str(e.record.get("agent"))] = str(e.record.get("public_key"))
        if e.columns is not None:
            try:
                problem = _column_problem(w, e)
            except (SchemaError, TypeError, ValueError) as exc:
                problem = f"malformed event: {exc}"
            if problem:
                return _fail(w, e.gseq, f"entry {e.gseq}: {problem}")
        try:
            leaf = bytes.fromhex(e.hash)
        except ValueError:
            return _fail(w, e.gseq, f"entry {e.gseq}: chain hash is not hexadecimal")
        held = ev_.leaves.get(e.gseq)
        if held is not None and leaf_hash(leaf) != held[0]:
            return _fail(w, e.gseq, f"entry {e.gseq} differs from the copy witnessed in {held[1]} "
                                    "(changed, inserted, deleted or reordered)")
        if e.gseq in acked:
            ah, src = acked[e.gseq]
            try:
                ev = AuditEvent.from_dict(e.record) if e.kind == "event" else None
            except (SchemaError, TypeError):
                ev = None
            if ev is None or (ev.agent, ev.seq, ev.hash) != (ah.agent, ah.last_seq, ah.last_hash):
                return _fail(w, e.gseq, f"entry {e.gseq} is not the event {ah.agent} seq {ah.last_seq} "
                                        f"that the collector acknowledged under the tree head of size "
                                        f"{ah.head.size} kept in {src}")
            acked_hash[e.gseq] = e.hash
        if tree is not None:
            tree.append(leaf)
        w.prev, w.n = e.hash, e.gseq
        for cp in cps.get(e.gseq, ()):
            if cp.root != e.hash:
                earlier = [s for s in cps if s < e.gseq]
                start = max(earlier) + 1 if earlier else 1
                return _fail(w, start, f"log differs from the server's checkpoint at size {cp.size} "
                                       f"(signed {cp.time}): entries {start}..{cp.size} were rewritten")
            w.cps_checked += 1
    beyond = [s for s in cps if s > w.n]
    if beyond:
        return _fail(w, w.n + 1, f"log truncated: it ends at entry {w.n} but a checkpoint signed "
                                 f"by the server attests {max(beyond)} entries")
    if resume is not None and w.n < resume.size:
        return _fail(w, None, f"log truncated: it ends at entry {w.n}, {resume.size} were verified before")
    pairs = 0
    if tree is not None:
        heads = sorted(ev_.heads, key=lambda x: x[0].size)
        good = 0
        for th, src in heads:
            if th.size > w.n:
                return _fail(w, w.n + 1, f"log truncated: it ends at entry {w.n} but the tree head "
                                         f"signed {th.time} ({src}) attests {th.size} entries")
            if tree.root(th.size).hex() != th.root:
                return _fail(w, good + 1, f"log differs from the tree head of size {th.size} signed "
                                          f"{th.time} ({src}): entries {good + 1}..{th.size} were "
                                          "changed, inserted, deleted or reordered")
            good = th.size
        # Every pair of held heads is consistent when each adjacent pair is (the relation is
        # transitive); each is proven the RFC 9162 way, as a party holding only heads would.
        distinct = sorted({(th.size, th.root) for th, _ in heads})
        for (m, rm), (n, rn) in zip(distinct, distinct[1:], strict=False):
            if m == n or not verify_consistency(m, n, bytes.fromhex(rm), bytes.fromhex(rn),
                                                tree.consistency_proof(m, n) if m else []):
                return _fail(w, m + 1, f"tree heads of sizes {m} and {n} are not consistent")
            pairs += 1
        for gseq, (ah, src) in acked.items():
            if gseq > ah.head.size or gseq not in acked_hash or not verify_inclusion(
                    bytes.fromhex(acked_hash[gseq]), gseq - 1, ah.head.size,
                    tree.inclusion_proof(gseq - 1, ah.head.size), bytes.fromhex(ah.head.root)):
                return _fail(w, gseq, f"event {ah.agent} seq {ah.last_seq} (entry {gseq}) is not "
                                      f"included in the tree head kept in {src}")
    if ev_.agents_table is not None:
        rows, before, after = ev_.agents_table()
        found = _agents_table_problem(w, rows, before == after == w.n)
        if found:
            return _fail(w, found[0], found[1])
    if on_verified is not None:
        on_verified(Verified(w.n, w.prev, {a: (keys[a], st.seq, st.hash) for a, st in w.agents.items()}))
    return VerifyReport(ok=True, entries=w.n, agents=len(w.agents), checkpoints=w.cps_checked,
                        tree_heads=len(ev_.heads), consistent_pairs=pairs)
