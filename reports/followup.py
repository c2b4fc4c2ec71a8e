"""Follow-up of violations (督办): assign → rectify → close, each step a server-signed chain entry.

An officer assigns a violation (an agent's `violation` event in the chain) to a named owner with
a deadline; the owner's rectification (整改) and explanation are recorded; an officer closes it.
Every step is appended to the global chain as an entry of kind `followup` whose record is signed
by the collector's key (`reports.chain.server_signed`), so `baomi audit verify` checks it like the
collector's other records. The record's `type` is `followup_assign|rectify|close` and its
`payload` names the violation by event id (what the inspection report reads), chain position and
hash. The entry carries the violation's host, level and rule in its query columns, so an
officer's filters keep a violation and its steps together.

The state of a violation is derived from these entries (`derive`), never kept anywhere else; a
step is checked against that state inside the transaction that appends it (two officers closing
the same item at once: one wins, the other gets a clear refusal).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reports.chain import Entry, server_signed
from reports.events import utcnow
from reports.store import SqlStore, followup_columns

STEPS = ("assign", "rectify", "close")
TYPES = tuple(f"followup_{s}" for s in STEPS)
MAX_TEXT = 1000
MAX_NAME = 100


class FollowupError(ValueError):
    """A step that does not fit the violation's current state, or bad input."""


@dataclass(frozen=True)
class Step:
    gseq: int
    step: str  # assign | rectify | close
    officer: str
    time: str
    fields: Mapping[str, str]


@dataclass(frozen=True)
class Followup:
    """The derived state of one violation's follow-up."""

    violation: int  # gseq of the violation entry
    status: str  # assigned | rectified | closed
    owner: str
    deadline: str  # ISO date
    steps: tuple[Step, ...]

    def overdue(self, today: date) -> bool:
        """Past its deadline and not rectified yet (a rectified item waits on the officer)."""
        return self.status == "assigned" and date.fromisoformat(self.deadline) < today


_STATUS = {"assign": "assigned", "rectify": "rectified", "close": "closed"}


def derive(rows: Iterable[Mapping[str, Any]]) -> dict[int, Followup]:
    """Follow-up state per violation gseq, from follow-up rows (`SqlStore.row_dict`) in order."""
    out: dict[int, Followup] = {}
    for r in sorted(rows, key=lambda r: int(r["gseq"])):
        etype = str(r.get("type") or "")
        p = r.get("payload") or {}
        if etype not in TYPES or "violation_gseq" not in p:
            continue
        step = etype[len("followup_"):]
        v = int(p["violation_gseq"])
        cur = out.get(v)
        fields = {k: str(val) for k, val in p.items()
                  if k not in ("violation", "violation_gseq", "violation_hash")}
        s = Step(int(r["gseq"]), step, str(p.get("officer", "")), str(r.get("time") or ""), fields)
        if step == "assign":
            out[v] = Followup(v, "assigned", fields.get("owner", ""), fields.get("deadline", ""),
                              (*(cur.steps if cur else ()), s))
        elif cur is not None:
            out[v] = Followup(v, _STATUS[step], cur.owner, cur.deadline, (*cur.steps, s))
    return out


def _text(value: str | None, name: str, limit: int = MAX_TEXT, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise FollowupError(f"{name} is required")
    if len(value) > limit:
        raise FollowupError(f"{name} is longer than {limit} characters")
    return value


def _check(step: str, state: Followup | None, fields: Mapping[str, str]) -> dict[str, str]:
    """The step's own fields, validated against the current state."""
    if step == "assign":
        if state is not None and state.status == "closed":
            raise FollowupError("the follow-up is closed")
        try:
            deadline = date.fromisoformat((fields.get("deadline") or "").strip()).isoformat()
        except ValueError:
            raise FollowupError("deadline must be a date (YYYY-MM-DD)") from None
        return {"owner": _text(fields.get("owner"), "owner", MAX_NAME), "deadline": deadline,
                "note": _text(fields.get("note"), "note", required=False)}
    if step == "rectify":
        if state is None or state.status != "assigned":
            raise FollowupError("only an assigned violation can be rectified")
        return {"rectification": _text(fields.get("rectification"), "rectification"),
                "explanation": _text(fields.get("explanation"), "explanation", required=False)}
    if state is None or state.status == "closed":
        raise FollowupError("only an open follow-up can be closed")
    return {"conclusion": _text(fields.get("conclusion"), "conclusion", required=False)}


def record_step(store: SqlStore, key: Ed25519PrivateKey, step: str, violation: int, officer: str,
                role: str, **fields: str) -> Entry:
    """Check the step against the state derived from the chain and append it (server-signed),
    both inside one write transaction."""
    if step not in STEPS:
        raise FollowupError(f"unknown follow-up step {step!r}")
    if role != "officer":
        raise FollowupError("only an officer may record follow-up steps")
    officer = _text(officer, "officer", MAX_NAME)

    def make(target: Mapping[str, Any] | None, target_hash: str,
             steps: list[dict[str, Any]]) -> tuple[dict[str, Any], tuple[Any, ...]]:
        if target is None or target["type"] != "violation":
            raise FollowupError(f"entry {violation} is not a violation")
        state = derive(steps).get(violation)
        own = _check(step, state, fields)
        now = utcnow()
        rec = server_signed(key, {"kind": "followup", "type": f"followup_{step}", "time": now,
                                  "payload": {"violation": target["event_id"], "violation_gseq": violation,
                                              "violation_hash": target_hash, "officer": officer,
                                              "level": target["level"], "host": target["host"],
                                              "rule": target["rule"], **own}})
        return rec, followup_columns(rec)

    return store.append_followup(violation, TYPES, make)
