"""The audit event schema (version 1): what an agent records, signs and chains.

An event is a frozen `AuditEvent`; its wire form is a JSON object with the fields below plus
`sig`, the agent's Ed25519 signature over the canonical JSON of every other field. `prev` is the
hash of the same agent's previous event (`GENESIS` for seq 1), so an agent's events form a hash
chain that the collector and `baomi audit verify` walk.

Payloads hold paths, hashes, marking text and rule ids - never document content: `check_payload`
refuses content-like keys and long strings, on the agent and again on the server.
"""
from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from policies.keys import canonical_json, sign, verify

#: Version of the event wire format. Bump on any incompatible change.
SCHEMA_VERSION = 1

#: `prev` of an agent's first event.
GENESIS = "0" * 64

#: Event types of the schema; sites may add their own with an `x_` prefix.
EVENT_TYPES: frozenset[str] = frozenset({
    "finding",         # a marking found in a file
    "violation",       # a policy decision against a file, device or user action
    "action",          # what the agent did about it (quarantine, block, notify)
    "device",          # removable media, printers, network state
    "scan_summary",    # totals of a scan run
    "attestation",     # a user's or officer's signed statement
    "agent_start",
    "agent_stop",
    "heartbeat",
    "policy_loaded",
    "officer_action",  # an officer's decision recorded through an agent or tool
    "spool_overflow",  # the agent's spool dropped events (the gap notice says which)
    "copy",            # a copy of a classified file elsewhere (exact, near, or stripped of its marking)
    "destroy",         # a classified file that disappeared (销毁: judged against the approvals)
    "trace",           # a usage trace read by a check (recent documents, browser history…)
})
_X_TYPE = re.compile(r"^x_[a-z0-9_]{1,40}$")

#: Payload keys that would carry document content; refused anywhere in a payload.
FORBIDDEN_KEYS: frozenset[str] = frozenset({
    "content", "text", "body", "excerpt", "snippet", "context", "data", "raw", "document",
})
#: Longest string value in a payload: enough for a path or a marking line, not for a document.
MAX_STRING = 1024
#: Largest canonical payload, in bytes.
MAX_PAYLOAD = 16 * 1024
#: Most events in one batch sent to the collector.
MAX_BATCH = 1000
#: Largest sequence number (and gap bound) accepted: far beyond any agent's life, and within
#: every database's 64-bit integer (2**63 made a whole group commit fail).
MAX_SEQ = 2 ** 53

_FIELDS = ("v", "id", "agent", "seq", "time", "type", "payload", "prev")


class SchemaError(ValueError):
    """An event or payload that does not fit the schema."""


def utcnow() -> str:
    """Now as ISO 8601 UTC with microseconds and a `Z` (the one time format of the log)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def check_type(etype: str) -> None:
    if etype not in EVENT_TYPES and not _X_TYPE.match(etype):
        raise SchemaError(f"unknown event type {etype!r}")


def check_payload(payload: Any, _path: str = "payload") -> None:
    """Refuse payloads that could carry document content (keys, sizes, types)."""
    if _path == "payload":
        if not isinstance(payload, dict):
            raise SchemaError("payload must be a JSON object")
        try:
            size = len(canonical_json(payload))
        except (TypeError, ValueError):
            raise SchemaError("payload is not plain JSON") from None
        if size > MAX_PAYLOAD:
            raise SchemaError(f"payload larger than {MAX_PAYLOAD} bytes")
    if isinstance(payload, dict):
        for key, value in payload.items():
            if not isinstance(key, str):
                raise SchemaError(f"{_path}: keys must be strings")
            if key.lower() in FORBIDDEN_KEYS:
                raise SchemaError(f"{_path}.{key}: document content is never recorded")
            check_payload(value, f"{_path}.{key}")
    elif isinstance(payload, list):
        for i, value in enumerate(payload):
            check_payload(value, f"{_path}[{i}]")
    elif isinstance(payload, str):
        if len(payload) > MAX_STRING:
            raise SchemaError(f"{_path}: string longer than {MAX_STRING} characters")
    elif isinstance(payload, float) and not math.isfinite(payload):
        raise SchemaError(f"{_path}: NaN and Infinity are not JSON")
    elif payload is not None and not isinstance(payload, (bool, int, float)):
        raise SchemaError(f"{_path}: unsupported value type {type(payload).__name__}")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class AuditEvent:
    """One signed event of one agent."""

    #: Schema version (`SCHEMA_VERSION`).
    v: int
    #: UUID of the event, unique across the whole log.
    id: str
    #: Enrolled agent id (`a-` + key id of the agent's public key).
    agent: str
    #: Per-agent sequence number, 1, 2, 3… without holes.
    seq: int
    #: Agent's clock when the event was recorded (ISO 8601 UTC).
    time: str
    #: One of `EVENT_TYPES` or `x_…`.
    type: str
    #: Paths, hashes, marking text, rule ids, levels; never document content.
    payload: Mapping[str, Any] = field(default_factory=dict)
    #: `hash` of the agent's previous event (`GENESIS` for seq 1).
    prev: str = GENESIS
    #: Base64 Ed25519 signature over `body_bytes()`.
    sig: str = ""

    def body(self) -> dict[str, Any]:
        return {"v": self.v, "id": self.id, "agent": self.agent, "seq": self.seq, "time": self.time,
                "type": self.type, "payload": dict(self.payload), "prev": self.prev}

    @cached_property
    def _body_bytes(self) -> bytes:
        # Cached: the collector needs these bytes for the signature and the hash of every event.
        return canonical_json(self.body())

    def body_bytes(self) -> bytes:
        return self._body_bytes

    @cached_property
    def hash(self) -> str:
        """What the agent's next event puts in `prev`."""
        return sha256_hex(self.body_bytes())

    def to_dict(self) -> dict[str, Any]:
        d = self.body()
        d["sig"] = self.sig
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AuditEvent:
        """Parse a wire event, checking shape and schema (not the signature)."""
        if not isinstance(d, Mapping):
            raise SchemaError("event must be a JSON object")
        extra = set(d) - set(_FIELDS) - {"sig"}
        if extra:
            raise SchemaError(f"unknown event fields: {sorted(extra)}")
        try:
            ev = cls(v=d["v"], id=d["id"], agent=d["agent"], seq=d["seq"], time=d["time"],
                     type=d["type"], payload=d["payload"], prev=d["prev"], sig=d.get("sig", ""))
        except KeyError as exc:
            raise SchemaError(f"missing event field {exc.args[0]!r}") from None
        ev.check()
        return ev

    def check(self) -> None:
        if self.v != SCHEMA_VERSION:
            raise SchemaError(f"unsupported schema version {self.v!r}")
        if not isinstance(self.seq, int) or isinstance(self.seq, bool) or not 1 <= self.seq <= MAX_SEQ:
            raise SchemaError(f"seq must be an integer from 1 to {MAX_SEQ}")
        for name in ("id", "agent", "time", "type", "prev", "sig"):
            if not isinstance(getattr(self, name), str):
                raise SchemaError(f"{name} must be a string")
        try:
            uuid.UUID(self.id)
            t = parse_time(self.time)
        except ValueError:
            raise SchemaError("bad event id or time") from None
        if t.tzinfo is None:
            raise SchemaError("event time needs a time zone (UTC: Z)")
        if not re.fullmatch(r"[0-9a-f]{64}", self.prev):
            raise SchemaError("prev must be a SHA-256 hex digest")
        check_type(self.type)
        check_payload(self.payload)

    def verify(self, key: Ed25519PublicKey) -> bool:
        return bool(self.sig) and verify(key, self.body_bytes(), self.sig)


def make_event(key: Ed25519PrivateKey, agent: str, seq: int, prev: str, etype: str,
               payload: Mapping[str, Any], *, time: str | None = None,
               event_id: str | None = None) -> AuditEvent:
    """Build, check and sign the agent's next event."""
    unsigned = AuditEvent(v=SCHEMA_VERSION, id=event_id or str(uuid.uuid4()), agent=agent, seq=seq,
                          time=time or utcnow(), type=etype, payload=dict(payload), prev=prev)
    unsigned.check()
    return replace(unsigned, sig=sign(key, unsigned.body_bytes()))


@dataclass(frozen=True)
class GapNotice:
    """An agent's signed admission that events `first..last` will never arrive (spool overflow).

    The collector accepts the gap only when `first` is the next seq it expects, records it in the
    global chain, and continues the agent's chain at `last + 1` with `prev == last_hash`.
    """

    agent: str
    first: int
    last: int
    last_hash: str
    reason: str
    sig: str = ""

    def body(self) -> dict[str, Any]:
        return {"kind": "gap_notice", "agent": self.agent, "first": self.first, "last": self.last,
                "last_hash": self.last_hash, "reason": self.reason}

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "sig": self.sig}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GapNotice:
        try:
            g = cls(agent=str(d["agent"]), first=int(d["first"]), last=int(d["last"]),
                    last_hash=str(d["last_hash"]), reason=str(d["reason"])[:200], sig=str(d["sig"]))
        except (KeyError, TypeError, ValueError):
            raise SchemaError("bad gap notice") from None
        if g.first < 1 or g.last < g.first or g.last > MAX_SEQ:
            raise SchemaError(f"bad gap range (1 <= first <= last <= {MAX_SEQ})")
        return g

    def signed(self, key: Ed25519PrivateKey) -> GapNotice:
        return GapNotice(**{**self.__dict__, "sig": sign(key, canonical_json(self.body()))})

    def verify(self, key: Ed25519PublicKey) -> bool:
        return bool(self.sig) and verify(key, canonical_json(self.body()), self.sig)
