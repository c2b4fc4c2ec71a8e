"""The approvals register: a small, signed record of approved copies, transfers and destructions.

Rules consult it through the `approved` field, so a legitimate 销毁 (destruction), copy or
transfer is not a violation. Format (YAML, signed with a detached `FILE.sig`)::

    baomi_approvals: 1
    approvals:
      - id: AP-2026-001
        operation: destroy          # copy | transfer | destroy
        sha256: 9f86d0…             # the file content approved
        who: zhangsan               # the account allowed to act ("*": anyone)
        to: USB-0042                # medium id or location class ("*": anywhere); unused for destroy
        until: 2026-12-31           # last day the approval is valid
        approved_by: 李四            # the approving officer
        note: 年度清退销毁

An operation maps to an approval kind: copy and print → copy (复制/翻印); move and send, and a
file created on a medium → transfer; delete → destroy.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policies.model import Event, Issue, unknown_field
from policies.packs import PolicyError
from scanner.i18n import tr

REGISTER_FORMAT = 1
APPROVAL_KINDS = ("copy", "transfer", "destroy")
_KEYS = {"id", "operation", "sha256", "who", "to", "until", "approved_by", "note"}
_SHA = re.compile(r"^[0-9a-f]{64}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MEDIA = ("classified_medium", "removable_medium")


@dataclass(frozen=True)
class Approval:
    id: str
    operation: str
    sha256: str
    who: str
    to: str
    until: str
    approved_by: str
    note: str = ""

    def to_dict(self) -> dict[str, str]:
        d = {"id": self.id, "operation": self.operation, "sha256": self.sha256, "who": self.who,
             "to": self.to, "until": self.until, "approved_by": self.approved_by}
        if self.note:
            d["note"] = self.note
        return d


def approval_kind(ev: Event) -> str | None:
    op = ev.operation
    if op in ("copy", "print"):
        return "copy"
    if op in ("move", "send"):
        return "transfer"
    if op == "delete":
        return "destroy"
    if op in ("create", "modify") and ev.location.kind in _MEDIA:
        return "transfer"
    return None


@dataclass(frozen=True)
class ApprovalRegister:
    approvals: tuple[Approval, ...] = ()
    source: str = ""
    _by_hash: dict[str, tuple[Approval, ...]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, approvals: list[Approval] | tuple[Approval, ...], source: str = "") -> ApprovalRegister:
        idx: dict[str, list[Approval]] = {}
        for a in approvals:
            idx.setdefault(a.sha256, []).append(a)
        return cls(tuple(approvals), source, {k: tuple(v) for k, v in idx.items()})

    def merged(self, other: ApprovalRegister) -> ApprovalRegister:
        return ApprovalRegister.of(self.approvals + other.approvals, self.source or other.source)

    def covering(self, ev: Event, today: str) -> Approval | None:
        """The approval that covers this event's operation on this content, if any."""
        f = ev.file
        if f is None or not f.sha256:
            return None
        cands = self._by_hash.get(f.sha256)
        if not cands:
            return None
        kind = approval_kind(ev)
        if kind is None:
            return None
        day = ev.time or today
        user = ev.actor.user
        targets = {ev.location.kind, ev.location.medium_id}
        for a in cands:
            if a.operation != kind or a.until < day[:10]:
                continue
            if a.who != "*" and a.who != user:
                continue
            if kind != "destroy" and a.to != "*" and a.to not in targets:
                continue
            return a
        return None


def _err(issues: list[Issue], source: str, container: Any, key: Any, path: str, msg: str) -> None:
    issues.append(Issue.at(source, container, key, path, msg))


def parse_register(data: Any, source: str) -> ApprovalRegister:
    """Validate a register document (located YAML); raise PolicyError with every problem."""
    issues: list[Issue] = []
    if not isinstance(data, dict) or data.get("baomi_approvals") != REGISTER_FORMAT:
        raise PolicyError([Issue(source, 1, 1, "baomi_approvals",
                                 tr(f"不是审批登记簿（需要 baomi_approvals: {REGISTER_FORMAT}）", f"not an approvals register (needs baomi_approvals: {REGISTER_FORMAT})"))])
    for k in data:
        if k not in ("baomi_approvals", "approvals"):
            _err(issues, source, data, k, str(k), unknown_field(("approvals", "baomi_approvals")))
    raw = data.get("approvals") or []
    if not isinstance(raw, list):
        _err(issues, source, data, "approvals", "approvals", tr("应为列表", "expected a list"))
        raw = []
    out: list[Approval] = []
    ids: set[str] = set()
    for i, a in enumerate(raw):
        p = f"approvals[{i}]"
        if not isinstance(a, dict):
            _err(issues, source, raw, i, p, tr("应为映射", "expected a mapping"))
            continue
        n = len(issues)
        for k in a:
            if k not in _KEYS:
                _err(issues, source, a, k, f"{p}.{k}", unknown_field(_KEYS))
        for k in ("id", "operation", "sha256", "who", "until", "approved_by"):
            if not isinstance(a.get(k), str) or not a.get(k):
                _err(issues, source, a, k if k in a else None, f"{p}.{k}", tr("必填字符串", "required string"))
        if a.get("operation") not in APPROVAL_KINDS and isinstance(a.get("operation"), str):
            _err(issues, source, a, "operation", f"{p}.operation", tr(f"应为以下之一：{', '.join(APPROVAL_KINDS)}", f"expected one of {', '.join(APPROVAL_KINDS)}"))
        if isinstance(a.get("sha256"), str) and not _SHA.match(a["sha256"]):
            _err(issues, source, a, "sha256", f"{p}.sha256", tr("应为 64 位小写十六进制数", "expected 64 lowercase hex digits"))
        if isinstance(a.get("until"), str) and not _DATE.match(a["until"]):
            _err(issues, source, a, "until", f"{p}.until", tr("应为日期 YYYY-MM-DD", "expected a date YYYY-MM-DD"))
        for k in ("to", "note"):
            if k in a and not isinstance(a[k], str):
                _err(issues, source, a, k, f"{p}.{k}", tr("应为字符串", "expected a string"))
        if isinstance(a.get("id"), str) and a["id"] in ids:
            _err(issues, source, a, "id", f"{p}.id", tr(f"编号 {a['id']!r} 重复", f"duplicate id {a['id']!r}"))
        if len(issues) == n:
            ids.add(a["id"])
            out.append(Approval(a["id"], a["operation"], a["sha256"], a["who"], a.get("to", "*"),
                                a["until"], a["approved_by"], a.get("note", "")))
    if issues:
        raise PolicyError(issues)
    return ApprovalRegister.of(out, source)


def dump_register(reg: ApprovalRegister) -> str:
    import yaml

    body = {"baomi_approvals": REGISTER_FORMAT, "approvals": [a.to_dict() for a in reg.approvals]}
    return str(yaml.safe_dump(body, allow_unicode=True, sort_keys=False))


def write_register(path: str | Path, reg: ApprovalRegister) -> None:
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(dump_register(reg), encoding="utf-8")
    tmp.replace(p)
