"""Periodic signed self-attestation (八不 checklist) and its translation into policy events.

A user answers every checklist item of the loaded packs (zh-CN wording by default) yes or no;
the answers, the exact wording attested and the time are signed with the user's Ed25519 key and
appended to a JSONL store. `attestation_events` turns the store into one ``attestation`` event
per member of the attested group: status ``missing`` (nothing valid on record), ``invalid``
(only records whose signature fails or whose key is not the user's), ``overdue`` (the last valid
record is older than ``params.attest_period_days``) or ``ok``, and the items answered no (an
item not answered counts as no). The rules of the ``babu`` pack decide from there.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policies import keys
from policies.model import Actor, AttestationFacts, Event, Issue
from policies.packs import ChecklistItem, PolicyError
from scanner.i18n import tr

ATTEST_FORMAT = 1
_YES = {"y", "yes", "true", "1", "是", "是的", "对", "t"}
_NO = {"n", "no", "false", "0", "否", "不是", "f"}


def checklist_digest(items: Iterable[ChecklistItem]) -> str:
    """Short hash of the wording attested, so a record shows which checklist it answered."""
    return hashlib.sha256(keys.canonical_json([[i.id, i.text_zh] for i in items])).hexdigest()[:16]


def make_record(user: str, answers: Mapping[str, bool], items: Iterable[ChecklistItem],
                key: Ed25519PrivateKey, *, when: datetime | None = None) -> dict[str, Any]:
    items = tuple(items)
    when = when or datetime.now(UTC)
    body: dict[str, Any] = {
        "baomi_attestation": ATTEST_FORMAT, "user": user,
        "time": when.replace(microsecond=0).isoformat(),
        "checklist": checklist_digest(items),
        "items": [{"id": i.id, "clause": i.clause, "text_zh": i.text_zh, "answer": bool(answers.get(i.id))}
                  for i in items],
        "key_id": keys.key_id(key), "public_key": keys.public_key_b64(key),
    }
    body["signature"] = keys.sign(key, keys.canonical_json(body))
    return body


def append_record(store: str | Path, record: dict[str, Any]) -> None:
    p = Path(store)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")


def read_records(store: str | Path) -> list[Any]:
    """Every line of the store, parsed; unparsable lines become None (they never count)."""
    p = Path(store)
    if not p.exists():
        return []
    out: list[Any] = []
    for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            out.append(None)
    return out


def verify_record(rec: Any, user_keys: Mapping[str, str] | None = None) -> bool:
    """Signature valid, and (when known) made with the user's registered key id."""
    if not isinstance(rec, dict) or rec.get("baomi_attestation") != ATTEST_FORMAT:
        return False
    sig = rec.get("signature")
    if not isinstance(sig, str) or not isinstance(rec.get("user"), str):
        return False
    try:
        pub = keys.load_public_key(str(rec.get("public_key", "")))
    except (ValueError, TypeError):
        return False
    kid = keys.key_id(pub)
    if kid != rec.get("key_id"):
        return False
    if user_keys is not None and user_keys.get(rec["user"]) != kid:
        return False
    body = {k: v for k, v in rec.items() if k != "signature"}
    return keys.verify(pub, keys.canonical_json(body), sig)


def _rec_date(rec: dict[str, Any]) -> str:
    return str(rec.get("time", ""))[:10]


def facts_for_user(user: str, records: Iterable[Any], *, today: str, period_days: int,
                   items: Iterable[ChecklistItem], user_keys: Mapping[str, str] | None = None) -> AttestationFacts:
    mine = [r for r in records if isinstance(r, dict) and r.get("user") == user]
    valid = [r for r in mine if verify_record(r, user_keys)]
    if not valid:
        return AttestationFacts(status="invalid" if mine else "missing")
    last = max(valid, key=_rec_date)
    last_day = _rec_date(last)
    raw = last.get("items")
    answered = {i.get("id"): i.get("answer") for i in (raw if isinstance(raw, list) else [])
                if isinstance(i, dict) and isinstance(i.get("id"), str)}
    failed = tuple(i.id for i in items if answered.get(i.id) is not True)
    try:
        age = (date.fromisoformat(today[:10]) - date.fromisoformat(last_day)).days
    except ValueError:
        return AttestationFacts(status="invalid", last=None, failed=failed)
    status = "overdue" if age > period_days else "ok"
    return AttestationFacts(status=status, last=last_day, failed=failed)


def attestation_events(records: Iterable[Any], *, roster: Mapping[str, Iterable[str]], today: str,
                       period_days: int, items: Iterable[ChecklistItem],
                       user_keys: Mapping[str, str] | None = None) -> list[Event]:
    """One `attestation` event per user of the roster (user → groups)."""
    records = list(records)
    items = tuple(items)
    return [Event(kind="attestation", operation="observe", actor=Actor(user=u, groups=tuple(g)),
                  attestation=facts_for_user(u, records, today=today, period_days=period_days,
                                             items=items, user_keys=user_keys), time=today)
            for u, g in sorted(roster.items())]


def parse_answers(data: Any, items: Iterable[ChecklistItem], source: str) -> dict[str, bool]:
    """Answers from a file: a mapping item id → yes/no (是/否, true/false); every item required."""
    issues: list[Issue] = []
    ids = [i.id for i in items]
    if not isinstance(data, dict):
        raise PolicyError([Issue(source, 1, 1, "", tr("答案应为映射：条目编号 → 是/否", "answers must be a mapping: item id → yes/no"))])
    out: dict[str, bool] = {}
    marks = getattr(data, "marks", {})
    for k, v in data.items():
        line, col = marks.get(k, (None, None))
        if k not in ids:
            issues.append(Issue(source, line, col, str(k), tr(f"未知的自查条目（条目：{', '.join(ids)}）", f"unknown checklist item (items: {', '.join(ids)})")))
            continue
        if isinstance(v, bool):
            out[k] = v
        elif isinstance(v, (str, int)) and str(v).strip().lower() in _YES | _NO:
            out[k] = str(v).strip().lower() in _YES
        else:
            issues.append(Issue(source, line, col, str(k), tr("答案应为 是/否（yes/no）", "answer must be yes or no (是/否)")))
    for i in ids:
        if i not in data:
            issues.append(Issue(source, None, None, i, tr("未作答", "not answered")))
    if issues:
        raise PolicyError(issues)
    return out
