"""Policy pack format: schema validation with located errors, and composition of packs.

A pack is one YAML file::

    baomi_policy: 1              # format version (required)
    pack: cn-secrecy             # name (required; [a-z0-9-_])
    version: "2026.1"
    title_zh: …  title_en: …
    extends: [cn-secrecy]        # packs applied before this one
    params: {NAME: value}        # site configuration referenced as $params.NAME
    checklist: [{id, clause, text_zh, text_en, enabled}]   # self-attestation items (八不)
    rules:
      - id: CN-SEC-001           # stable id ([A-Z0-9][A-Z0-9._-]*)
        title_zh: …  title_en: …
        source: …                # the clause or regulation the rule enforces
        on: file                 # event kind(s): file | marking | device | posture | attestation
        operations: [copy, move] # optional: only these operations
        when: {…}                # declarative condition (policies.conditions)
        severity: high           # info | low | medium | high | critical
        action: block            # alert | require_approval | quarantine | block
        rationale_zh: "…{file.path}…"   # {FIELD} placeholders are filled from the event
        rationale_en: …
        enabled: true

Precedence: packs are applied in the order given; each pack's `extends` are applied before it
(each pack once). A later pack overrides an earlier one field by field: a rule (or checklist
item) with an existing id replaces only the fields it names (`enabled: false` switches it off;
a new `when` replaces the whole condition); `params` override by name. The merged result is
validated as a whole, and every error names the file, line and field it came from.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policies.conditions import FIELDS, TRUE, Cond, parse_condition
from policies.model import Action, EventKind, Issue, Operation, Severity, unknown_field
from scanner.i18n import tr

FORMAT_VERSION = 1
PACKS_DIR = Path(__file__).parent / "packs"
PACK_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
RULE_ID = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,63}$")
ITEM_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")

PACK_KEYS = {"baomi_policy", "pack", "version", "title_zh", "title_en", "description", "extends",
             "params", "checklist", "rules"}
RULE_KEYS = {"id", "title_zh", "title_en", "source", "on", "operations", "when", "severity",
             "action", "rationale_zh", "rationale_en", "enabled"}
RULE_REQUIRED = ("title_zh", "title_en", "source", "on", "severity", "action", "rationale_zh",
                 "rationale_en")
ITEM_KEYS = {"id", "clause", "text_zh", "text_en", "enabled"}
_KINDS = tuple(k.value for k in EventKind)
_OPS = tuple(o.value for o in Operation)


class PolicyError(ValueError):
    """A policy could not be loaded; `issues` say where and why."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues) or "invalid policy")


@dataclass(frozen=True)
class Located:
    """A value with where it came from."""

    value: Any
    source: str
    container: Any  # the mapping holding it (has .marks)
    key: str

    @property
    def line(self) -> int | None:
        marks = getattr(self.container, "marks", None)
        return marks[self.key][0] if marks and self.key in marks else None


@dataclass(frozen=True)
class PackDoc:
    """One pack file, validated at the top level, before composition."""

    name: str
    source: str
    version: str
    title_zh: str
    title_en: str
    extends: tuple[str, ...]
    params: dict[str, Located]
    checklist: tuple[dict[str, Located], ...]
    rules: tuple[dict[str, Located], ...]
    #: Validation problems of the top level, reported by `compose` with the rest.
    issues: tuple[Issue, ...] = ()


@dataclass(frozen=True)
class RuleDef:
    id: str
    pack: str
    title_zh: str
    title_en: str
    source: str
    on: tuple[str, ...]
    operations: tuple[str, ...] | None
    when: Cond
    severity: Severity
    action: Action
    rationale_zh: str
    rationale_en: str
    enabled: bool
    #: file:line where the rule was (last) defined
    origin: str


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    clause: int
    text_zh: str
    text_en: str


@dataclass(frozen=True)
class Composed:
    packs: tuple[tuple[str, str, str], ...]  # (name, version, source)
    params: dict[str, Any] = field(default_factory=dict)
    rules: tuple[RuleDef, ...] = ()
    checklist: tuple[ChecklistItem, ...] = ()


def _issue(issues: list[Issue], source: str, container: Any, key: Any, path: str, msg: str) -> None:
    issues.append(Issue.at(source, container, key, path, msg))


def read_pack_doc(data: Any, source: str) -> PackDoc:
    """Read the top level of a pack (after YAML parsing); its problems travel in `issues`."""
    issues: list[Issue] = []
    if not isinstance(data, dict):
        raise PolicyError([Issue(source, 1, 1, "", tr("策略包应为 YAML 映射", "a policy pack must be a YAML mapping"))])
    for k in data:
        if k not in PACK_KEYS:
            _issue(issues, source, data, k, str(k), unknown_field(PACK_KEYS))
    fv = data.get("baomi_policy")
    if fv != FORMAT_VERSION:
        _issue(issues, source, data, "baomi_policy", "baomi_policy",
               tr(f"必填，应为 {FORMAT_VERSION}（格式版本）", f"required, must be {FORMAT_VERSION} (format version)") if fv is None
               else tr(f"不支持的格式版本 {fv!r}（本程序读取 {FORMAT_VERSION}）", f"unsupported format version {fv!r} (this baomi reads {FORMAT_VERSION})"))
    name = data.get("pack")
    if not isinstance(name, str) or not PACK_NAME.match(name):
        _issue(issues, source, data, "pack", "pack", tr("必填：由小写字母、数字、- 和 _ 组成的名称", "required: a name of lowercase letters, digits, - and _"))
        name = "?"
    version = data.get("version", "")
    if not isinstance(version, (str, int, float)):
        _issue(issues, source, data, "version", "version", tr("应为字符串", "expected a string"))
    for k in ("title_zh", "title_en", "description"):
        if k in data and not isinstance(data[k], str):
            _issue(issues, source, data, k, k, tr("应为字符串", "expected a string"))
    ext = data.get("extends", [])
    if isinstance(ext, str):
        ext = [ext]
    if not isinstance(ext, list) or not all(isinstance(e, str) and e for e in ext):
        _issue(issues, source, data, "extends", "extends", tr("应为策略包名称或路径的列表", "expected a list of pack names or paths"))
        ext = []
    params: dict[str, Located] = {}
    pr = data.get("params", {})
    if pr is None:
        pr = {}
    if not isinstance(pr, dict):
        _issue(issues, source, data, "params", "params", tr("应为 名称: 值 的映射", "expected a mapping of NAME: value"))
    else:
        for k, v in pr.items():
            if not isinstance(k, str) or not re.match(r"^[a-z_][a-z0-9_]*$", k):
                _issue(issues, source, pr, k, f"params.{k}", tr("参数名应为小写标识符", "parameter names are lowercase identifiers"))
            else:
                params[k] = Located(v, source, pr, k)
    rules = _entries(data, "rules", RULE_KEYS, RULE_ID, source, issues)
    checklist = _entries(data, "checklist", ITEM_KEYS, ITEM_ID, source, issues)
    # problems found here are reported together with those of the composed rules
    return PackDoc(name=name, source=source, version=str(version), title_zh=data.get("title_zh", ""),
                   title_en=data.get("title_en", ""), extends=tuple(ext), params=params,
                   checklist=tuple(checklist), rules=tuple(rules), issues=tuple(issues))


def _entries(data: Any, key: str, allowed: set[str], id_re: re.Pattern[str], source: str,
             issues: list[Issue]) -> list[dict[str, Located]]:
    raw = data.get(key, [])
    if raw is None:
        return []
    if not isinstance(raw, list):
        _issue(issues, source, data, key, key, tr("应为列表", "expected a list"))
        return []
    out: list[dict[str, Located]] = []
    seen: set[str] = set()
    for i, r in enumerate(raw):
        path = f"{key}[{i}]"
        if not isinstance(r, dict):
            _issue(issues, source, raw, i, path, tr("应为映射", "expected a mapping"))
            continue
        bad = False
        for k in r:
            if k not in allowed:
                _issue(issues, source, r, k, f"{path}.{k}", unknown_field(allowed))
                bad = True
        rid = r.get("id")
        if not isinstance(rid, str) or not id_re.match(rid):
            _issue(issues, source, r, "id", f"{path}.id", tr(f"必填，格式应为 {id_re.pattern}", f"required, must match {id_re.pattern}"))
            continue
        if rid in seen:
            _issue(issues, source, r, "id", f"{path}.id", tr(f"本包内编号 {rid!r} 重复", f"duplicate id {rid!r} in this pack"))
            continue
        seen.add(rid)
        if not bad:
            out.append({k: Located(v, source, r, k) for k, v in r.items()})
    return out


def compose(docs: list[PackDoc]) -> Composed:
    """Merge packs in precedence order (later wins) and validate the result."""
    params: dict[str, Located] = {}
    rules: dict[str, dict[str, Located]] = {}
    rule_pack: dict[str, str] = {}
    items: dict[str, dict[str, Located]] = {}
    for doc in docs:
        params.update(doc.params)
        for r in doc.rules:
            rid = r["id"].value
            if rid in rules:
                rules[rid] = {**rules[rid], **r}
            else:
                rules[rid] = dict(r)
                rule_pack[rid] = doc.name
        for it in doc.checklist:
            iid = it["id"].value
            items[iid] = {**items.get(iid, {}), **it}
    plain_params = {k: v.value for k, v in params.items()}
    issues: list[Issue] = [i for d in docs for i in d.issues]
    out_rules = [r for r in (_rule(rid, rule_pack[rid], f, plain_params, issues) for rid, f in rules.items())
                 if r is not None]
    out_items = [c for c in (_item(iid, f, issues) for iid, f in items.items()) if c is not None]
    if "registered_media" in params:
        _check_media_register(params["registered_media"], issues)
    if issues:
        raise PolicyError(issues)
    return Composed(packs=tuple((d.name, d.version, d.source) for d in docs), params=plain_params,
                    rules=tuple(out_rules), checklist=tuple(out_items))


def _rule(rid: str, pack: str, f: dict[str, Located], params: dict[str, Any],
          issues: list[Issue]) -> RuleDef | None:
    n = len(issues)
    idl = f["id"]
    where = f"rule {rid}"

    def err(loc: Located | None, key: str, msg: str) -> None:
        if loc is None:
            _issue(issues, idl.source, idl.container, "id", f"{where}.{key}", msg)
        else:
            _issue(issues, loc.source, loc.container, loc.key, f"{where}.{key}", msg)

    for k in RULE_REQUIRED:
        if k not in f:
            err(None, k, tr("缺少必填字段", "required field missing"))
    strs: dict[str, str] = {}
    for k in ("title_zh", "title_en", "source", "rationale_zh", "rationale_en"):
        if k in f:
            if not isinstance(f[k].value, str) or not f[k].value.strip():
                err(f[k], k, tr("应为非空字符串", "expected a non-empty string"))
            else:
                strs[k] = f[k].value
    for k in ("rationale_zh", "rationale_en"):
        for m in PLACEHOLDER.finditer(strs.get(k, "")):
            if m.group(1) not in FIELDS:
                err(f[k], k, tr(f"未知占位符 {{{m.group(1)}}}", f"unknown placeholder {{{m.group(1)}}}"))
    on: tuple[str, ...] = ()
    if "on" in f:
        v = f["on"].value
        vals = [v] if isinstance(v, str) else v
        if not isinstance(vals, list) or not vals or not all(isinstance(x, str) and x in _KINDS for x in vals):
            err(f["on"], "on", tr(f"应为事件类别：{', '.join(_KINDS)}", f"expected event kind(s): {', '.join(_KINDS)}"))
        else:
            on = tuple(vals)
    ops: tuple[str, ...] | None = None
    if "operations" in f:
        v = f["operations"].value
        vals = [v] if isinstance(v, str) else v
        if not isinstance(vals, list) or not vals or not all(isinstance(x, str) and x in _OPS for x in vals):
            err(f["operations"], "operations", tr(f"应为操作：{', '.join(_OPS)}", f"expected operation(s): {', '.join(_OPS)}"))
        else:
            ops = tuple(vals)
    sev = act = None
    if "severity" in f:
        try:
            sev = Severity(f["severity"].value)
        except ValueError:
            err(f["severity"], "severity", tr(f"应为以下之一：{', '.join(s.value for s in Severity)}", f"expected one of {', '.join(s.value for s in Severity)}"))
    if "action" in f:
        try:
            act = Action(f["action"].value)
        except ValueError:
            err(f["action"], "action", tr(f"应为以下之一：{', '.join(a.value for a in Action)}", f"expected one of {', '.join(a.value for a in Action)}"))
    enabled = True
    if "enabled" in f:
        if not isinstance(f["enabled"].value, bool):
            err(f["enabled"], "enabled", tr("应为 true 或 false", "expected true or false"))
        else:
            enabled = f["enabled"].value
    when: Cond = TRUE
    if "when" in f:
        w = f["when"]
        when = parse_condition(w.value, source=w.source, path=f"{where}.when", params=params,
                               issues=issues, parent=w.container, key=w.key)
    if len(issues) != n:
        return None
    assert sev is not None and act is not None
    origin = f"{idl.source}:{idl.line}"  # `id` comes from the last pack that named the rule
    return RuleDef(id=rid, pack=pack, title_zh=strs["title_zh"], title_en=strs["title_en"],
                   source=strs["source"], on=on, operations=ops, when=when, severity=sev, action=act,
                   rationale_zh=strs["rationale_zh"], rationale_en=strs["rationale_en"],
                   enabled=enabled, origin=origin)


def _item(iid: str, f: dict[str, Located], issues: list[Issue]) -> ChecklistItem | None:
    n = len(issues)
    idl = f["id"]
    for k in ("clause", "text_zh", "text_en"):
        if k not in f:
            _issue(issues, idl.source, idl.container, "id", f"checklist {iid}.{k}", tr("缺少必填字段", "required field missing"))
    for k in ("text_zh", "text_en"):
        if k in f and (not isinstance(f[k].value, str) or not f[k].value.strip()):
            _issue(issues, f[k].source, f[k].container, k, f"checklist {iid}.{k}", tr("应为非空字符串", "expected a non-empty string"))
    if "clause" in f and (not isinstance(f["clause"].value, int) or isinstance(f["clause"].value, bool)):
        _issue(issues, f["clause"].source, f["clause"].container, "clause", f"checklist {iid}.clause",
               tr("应为整数", "expected an integer"))
    if "enabled" in f and not isinstance(f["enabled"].value, bool):
        _issue(issues, f["enabled"].source, f["enabled"].container, "enabled", f"checklist {iid}.enabled",
               tr("应为 true 或 false", "expected true or false"))
    if len(issues) != n or ("enabled" in f and f["enabled"].value is False):
        return None
    return ChecklistItem(iid, f["clause"].value, f["text_zh"].value, f["text_en"].value)


def _check_media_register(loc: Located, issues: list[Issue]) -> None:
    """`params.registered_media` (policies.media) is checked when the policy loads, so a signed
    bundle with a bad register is refused as a whole rather than half-applied on an agent."""
    from policies.media import PARAM, registry_problems

    value = loc.value
    for i, k, msg in registry_problems(value):
        path = f"params.{PARAM}" + (f"[{i}]" if i is not None else "") + (f".{k}" if k else "")
        if i is None:
            _issue(issues, loc.source, loc.container, loc.key, path, msg)
        elif k is None or not isinstance(value[i], dict):
            _issue(issues, loc.source, value, i, path, msg)
        else:
            _issue(issues, loc.source, value[i], k if k in value[i] else None, path, msg)
