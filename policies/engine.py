"""The policy engine: load (and verify) policy packs, decide events, explain decisions.

Entry points for other packages
-------------------------------
``load_policy(paths_or_pack_names, *, require_signature=False, trusted_keys=()) -> PolicySet``
    Each item is a shipped pack name (``cn-secrecy``, ``babu``, ``capco-basic``: resolved in
    ``policies/packs/``), a pack YAML file, an approvals register YAML file, or a signed bundle
    (``*.json`` from ``baomi policy sign``). Items are applied in order (later overrides
    earlier; see `policies.packs`). With ``require_signature=True`` every item must be a bundle,
    or a YAML file with a detached ``FILE.sig``, signed by one of ``trusted_keys`` (PEM paths,
    base64 raw keys or key objects); shipped packs are then only accepted from inside a signed
    bundle. Raises `PolicyError` (located issues) or `SignatureError`.

``violations_for_scan_record(policy, record, *, host_role, host_level=None,
location="local_disk", operation="create") -> list[dict]``
    Decide one JSONL record of ``baomi scan`` (markings.md §5): one ``file`` event for the file
    and one ``marking`` event per finding of kind ``marking``. Returns JSON-able dicts with
    ``rule``, ``pack``, ``severity``, ``action``, ``title_zh``/``title_en``,
    ``rationale_zh``/``rationale_en``, ``source`` and ``subject`` (path, member, marking),
    most severe first. Optional record keys ``sha256``, ``mode`` (octal string or int),
    ``owner``, ``group``, ``acl_readers`` and, per finding, ``superseded`` are used when present.

``PolicySet.evaluate(event) -> list[Violation]``, ``PolicySet.decide(event) -> Decision``
(violations + strongest action) and ``PolicySet.explain(event)`` work on a
`policies.model.Event` directly. Rules are indexed by event kind and operation, and their
conditions are compiled to closures once, at load time.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from policies.approvals import Approval, ApprovalRegister, parse_register
from policies.conditions import (
    FIELDS,
    Pred,
    Trace,
    compile_condition,
    explain_condition,
    getter,
    static_domain,
    without_indexed,
)
from policies.hwm import check_and_record
from policies.model import (
    Action,
    Actor,
    Event,
    EventKind,
    FileFacts,
    Host,
    HostRole,
    Issue,
    Location,
    LocationKind,
    MarkingFacts,
    Operation,
    Violation,
    parse_mode,
)
from policies.packs import (
    PACKS_DIR,
    PLACEHOLDER,
    ChecklistItem,
    Composed,
    PackDoc,
    PolicyError,
    RuleDef,
    compose,
    read_pack_doc,
)
from policies.signing import SignatureError, read_bundle, trusted_key_map, verify_file
from policies.yamlload import YamlError, load_located, load_located_file
from scanner.i18n import get_lang, tr
from scanner.model import Level

__all__ = [
    "Decision",
    "EvalContext",
    "PolicyError",
    "PolicySet",
    "RuleTrace",
    "SignatureError",
    "events_for_scan_record",
    "load_policy",
    "shipped_packs",
    "violations_for_scan_record",
]


def shipped_packs() -> list[str]:
    return sorted(p.stem for p in PACKS_DIR.glob("*.yaml"))


class EvalContext:
    """What a decision needs besides the event: the evaluation date and the approvals register."""

    __slots__ = ("last_approval", "register", "today")

    def __init__(self, today: str, register: ApprovalRegister):
        self.today = today
        self.register = register
        self.last_approval: Approval | None = None

    def approved(self, ev: Event) -> bool:
        a = self.register.covering(ev, self.today)
        self.last_approval = a
        return a is not None


@dataclass(frozen=True)
class RuleTrace:
    rule: RuleDef
    applies: bool  # event kind and operation match
    fired: bool
    steps: tuple[Trace, ...]


@dataclass(frozen=True)
class Decision:
    violations: tuple[Violation, ...]
    #: Strongest action (block > quarantine > require_approval > alert); None: compliant.
    action: Action | None

    @property
    def compliant(self) -> bool:
        return not self.violations


_EMPTY_REGISTER = ApprovalRegister()


class PolicySet:
    """Composed, validated and compiled rules, ready to decide events."""

    def __init__(self, composed: Composed, register: ApprovalRegister | None = None,
                 signers: tuple[str, ...] = ()):
        self.composed = composed
        self.rules: tuple[RuleDef, ...] = tuple(r for r in composed.rules if r.enabled)
        self.params = composed.params
        self.checklist: tuple[ChecklistItem, ...] = composed.checklist
        self.register = register or _EMPTY_REGISTER
        self.signers = signers
        self._compiled = {r.id: compile_condition(r.when) for r in self.rules}
        self._templates = {r.id: (_template(r.rationale_zh, True), _template(r.rationale_en, False))
                           for r in self.rules}
        # Rules indexed by (event kind, operation) and, more finely, by host role and location
        # class as far as a rule's top-level conjuncts pin them down.
        roles = frozenset(x.value for x in HostRole)
        locs = frozenset(x.value for x in LocationKind)
        domains = {r.id: (static_domain(r.when, "host.role", roles),
                          static_domain(r.when, "location.kind", locs)) for r in self.rules}
        reduced = {r.id: compile_condition(without_indexed(r.when)) for r in self.rules}
        self._index: dict[tuple[str, str], tuple[tuple[RuleDef, Pred], ...]] = {}
        self._fine: dict[tuple[str, str, str, str], tuple[tuple[RuleDef, Pred], ...]] = {}
        for kind in EventKind:
            for op in Operation:
                coarse = tuple((r, self._compiled[r.id]) for r in self.rules
                               if kind.value in r.on and (r.operations is None or op.value in r.operations))
                self._index[(kind.value, op.value)] = coarse
                for role in roles:
                    for loc in locs:
                        self._fine[(kind.value, op.value, role, loc)] = tuple(
                            (r, reduced[r.id]) for r, _ in coarse
                            if role in domains[r.id][0] and loc in domains[r.id][1])

    @property
    def pack_names(self) -> tuple[str, ...]:
        return tuple(p[0] for p in self.composed.packs)

    def rule(self, rule_id: str) -> RuleDef | None:
        return next((r for r in self.composed.rules if r.id == rule_id), None)

    def context(self, today: str | None = None) -> EvalContext:
        return EvalContext(today or date.today().isoformat(), self.register)

    def evaluate(self, ev: Event, ctx: EvalContext | None = None) -> list[Violation]:
        """Violations of this event, most severe first (empty list: compliant)."""
        rules = self._rules_for(ev)
        if not rules:
            return []
        ctx = ctx or self.context()
        out = [self._violation(r, ev, ctx) for r, pred in rules if pred(ev, ctx)]
        if len(out) > 1:
            out.sort(key=lambda v: (-v.severity.rank, -v.action.rank, v.rule_id))
        return out

    def decide(self, ev: Event, ctx: EvalContext | None = None) -> Decision:
        """Violations plus the strongest action among them (what an agent should do)."""
        vs = tuple(self.evaluate(ev, ctx))
        action = max((v.action for v in vs), key=lambda a: a.rank, default=None)
        return Decision(vs, action)

    def _rules_for(self, ev: Event) -> tuple[tuple[RuleDef, Pred], ...]:
        rules = self._fine.get((ev.kind, ev.operation, ev.host.role, ev.location.kind))
        if rules is None:  # an event built in code with values outside the enums
            rules = self._index.get((ev.kind, ev.operation), ())
        return rules

    def fired(self, ev: Event, ctx: EvalContext | None = None, *, coarse: bool = False) -> list[str]:
        """Ids of the rules that fire, in rule order, without rendering rationales. `coarse`
        skips the role/location index (tests check both ways agree)."""
        ctx = ctx or self.context()
        rules = self._index.get((ev.kind, ev.operation), ()) if coarse else self._rules_for(ev)
        return [r.id for r, pred in rules if pred(ev, ctx)]

    def _violation(self, r: RuleDef, ev: Event, ctx: EvalContext) -> Violation:
        zh, en = self._templates[r.id]
        return Violation(rule_id=r.id, pack=r.pack, severity=r.severity, action=r.action,
                         title_zh=r.title_zh, title_en=r.title_en, source=r.source,
                         render=lambda in_zh: _rationale(r, zh if in_zh else en, ev, ctx, in_zh),
                         describe=lambda: _subject(ev))

    def explain(self, ev: Event, ctx: EvalContext | None = None) -> list[RuleTrace]:
        ctx = ctx or self.context()
        applicable = {r.id for r, _ in self._index.get((ev.kind, ev.operation), ())}
        out = []
        for r in self.rules:
            if r.id in applicable:
                res, steps = explain_condition(r.when, ev, ctx)
                out.append(RuleTrace(r, True, res, tuple(steps)))
            else:
                out.append(RuleTrace(r, False, False, ()))
        return out


def _rationale(r: RuleDef, tpl: tuple[bool, _Template], ev: Event, ctx: EvalContext, zh: bool) -> str:
    """`[RULE-ID] what happened（依据：source）`: every rationale names its rule and source."""
    text = _render(tpl, ev, ctx)
    return f"[{r.id}] {text}（依据：{r.source}）" if zh else f"[{r.id}] {text} (source: {r.source})"


#: A rationale template split into literal text and (getter, field type) placeholders.
_Template = tuple[Any, ...]


def _template(text: str, zh: bool) -> tuple[bool, _Template]:
    parts: list[Any] = []
    pos = 0
    for m in PLACEHOLDER.finditer(text):
        name = m.group(1)
        if name not in FIELDS:
            continue
        parts.append(text[pos:m.start()])
        parts.append((getter(name), FIELDS[name].type))
        pos = m.end()
    parts.append(text[pos:])
    return zh, tuple(parts)


def _show(v: Any, ftype: str, zh: bool) -> str:
    if v is None or v == ():
        return "—"
    if ftype == "level":
        return str(Level(v).zh) if zh else str(v).replace("_", " ")
    if isinstance(v, tuple):
        return ", ".join(str(x) for x in v)
    if isinstance(v, bool):
        return ("是" if v else "否") if zh else ("yes" if v else "no")
    return str(v)


def _render(tpl: tuple[bool, _Template], ev: Event, ctx: EvalContext) -> str:
    zh, parts = tpl
    if len(parts) == 1:
        return str(parts[0])
    return "".join(p if isinstance(p, str) else _show(p[0](ev, ctx), p[1], zh) for p in parts)


def _subject(ev: Event) -> dict[str, Any]:
    s: dict[str, Any] = {}
    if ev.file is not None and ev.file.path:
        s["path"] = ev.file.path
    if ev.marking is not None:
        s["marking"] = ev.marking.text
        if ev.marking.member:
            s["member"] = ev.marking.member
    if ev.device is not None:
        s["device"] = ev.device.id
    if ev.kind == EventKind.ATTESTATION.value and ev.actor.user:
        s["user"] = ev.actor.user
    if ev.kind == EventKind.POSTURE.value and ev.host.id:
        s["host"] = ev.host.id
    return s


# --------------------------------------------------------------------------- loading

def _classify_doc(data: Any) -> str:
    if isinstance(data, dict):
        if "baomi_approvals" in data:
            return "approvals"
        if "baomi_policy" in data or "pack" in data or "rules" in data:
            return "pack"
    return "pack"  # let the pack validator explain what is wrong


class _Loader:
    def __init__(self, require_signature: bool, trusted_keys: Iterable[Any]):
        self.require = require_signature
        self.trusted = trusted_key_map(trusted_keys)
        # With trusted keys configured every policy *file* must be signed by one of them: an
        # unsigned YAML beside `--trust KEY` was loaded as if it were trusted. Shipped packs, installed
        # with the code, stay loadable by name unless signatures are required outright.
        self.require_files = self.require or bool(self.trusted)
        if self.require and not self.trusted:
            raise SignatureError(tr("要求已签名的策略，但未提供受信任公钥", "a signed policy is required but no trusted key was given"))
        self.docs: list[PackDoc] = []
        self.by_name: dict[str, str] = {}
        self.register = ApprovalRegister()
        self.signers: list[str] = []
        #: pack name → (source label, text) of members of bundles already read
        self.bundle_packs: dict[str, tuple[str, Any]] = {}
        #: member file name → (source label, data) of bundles already read
        self.bundle_files: dict[str, tuple[str, Any]] = {}
        self.stack: list[str] = []

    def item(self, item: str, base: Path | None = None, from_bundle: bool = False) -> None:
        p = Path(item)
        if from_bundle and p.name in self.bundle_files:  # `extends: [file.yaml]` inside a bundle
            label, data = self.bundle_files[p.name]
            self.doc(data, label, None, from_bundle=True)
            return
        if base is not None and not p.is_absolute():
            p = base / p
        if p.suffix == ".json" and p.is_file():
            self.bundle(p)
            return
        if p.suffix in (".yaml", ".yml") or p.is_file():
            data = self.read_yaml_file(p)
            self.doc(data, str(p), p.parent)
            return
        name = item
        if name in self.bundle_packs:
            label, data = self.bundle_packs[name]
            self.doc(data, label, None, from_bundle=True)
            return
        shipped = PACKS_DIR / f"{name}.yaml"
        if shipped.is_file() and "/" not in name:
            if self.require:
                raise SignatureError(
                    tr(f"策略包 {name!r} 不在已签名的签名包中；请用 `baomi policy sign` 签名打包", f"pack {name!r} is not inside a signed bundle; sign it into one with `baomi policy sign`"))
            self.doc(load_located_file(shipped), str(shipped), None)
            return
        known = ", ".join(shipped_packs())
        raise PolicyError([Issue(item, None, None, "", tr(f"没有这个策略包文件或内置策略包（内置：{known}）",
                                                          f"no such pack file or shipped pack (shipped: {known})"))])

    def read_yaml_file(self, p: Path) -> Any:
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise PolicyError([Issue(str(p), None, None, "", tr(f"无法读取：{exc.strerror or exc}", f"cannot read: {exc.strerror or exc}"))]) from None
        kid = verify_file(p, data, self.trusted, require_signature=self.require_files)
        if kid:
            self.signers.append(kid)
        return load_located(data, str(p))

    def bundle(self, p: Path) -> None:
        if not self.trusted:
            # A bundle verified against the key it carries itself proves only that someone signed it.
            raise SignatureError(tr(f"{p}：签名包只在给出受信任公钥（--trust 签发人公钥）时加载",
                                    f"{p}: a signed bundle is loaded only against a trusted key (--trust SIGNER.pub)"))
        b = read_bundle(p, list(self.trusted.values()), require_signature=True)
        check_and_record(b.key_id, b.version, str(p))  # an older signed bundle is a rollback
        self.signers.append(b.key_id)
        parsed = []
        for f in b.files:
            label = f"{p}!{f.name}"
            data = load_located(f.text, label)
            parsed.append((label, data))
            self.bundle_files.setdefault(f.name, (label, data))
            if _classify_doc(data) == "pack" and isinstance(data, dict) and isinstance(data.get("pack"), str):
                self.bundle_packs.setdefault(data["pack"], (label, data))
        for label, data in parsed:
            self.doc(data, label, None, from_bundle=True)

    def doc(self, data: Any, label: str, base: Path | None, from_bundle: bool = False) -> None:
        if _classify_doc(data) == "approvals":
            self.register = self.register.merged(parse_register(data, label))
            return
        doc = read_pack_doc(data, label)
        if doc.name in self.by_name:
            if self.by_name[doc.name] == label:
                return  # already applied (named twice, or pulled in by `extends`)
            raise PolicyError([Issue(label, None, None, "pack",
                                     tr(f"策略包 {doc.name!r} 已从 {self.by_name[doc.name]} 载入", f"pack {doc.name!r} is already loaded from {self.by_name[doc.name]}"))])
        if doc.name in self.stack:
            raise PolicyError([Issue(label, None, None, "extends", tr(f"extends 循环引用：{' → '.join(self.stack)}", f"circular extends: {' → '.join(self.stack)}"))])
        self.stack.append(doc.name)
        try:
            for ext in doc.extends:
                if ext not in self.by_name:
                    self.item(ext, base, from_bundle)
        finally:
            self.stack.pop()
        self.by_name[doc.name] = label
        self.docs.append(doc)


def load_policy(paths_or_pack_names: list[str] | tuple[str, ...], *, require_signature: bool = False,
                trusted_keys: Iterable[Any] = ()) -> PolicySet:
    """Load, verify, compose and compile policy packs (see the module docstring)."""
    if not paths_or_pack_names:
        raise PolicyError([Issue("<policy>", None, None, "", tr("未指定策略包", "no policy pack given"))])
    loader = _Loader(require_signature, trusted_keys)
    try:
        for item in paths_or_pack_names:
            loader.item(str(item))
    except YamlError as exc:
        raise PolicyError([exc.issue]) from None
    if not loader.docs:
        raise PolicyError([Issue(str(paths_or_pack_names[0]), None, None, "", tr("输入中没有策略包", "no policy pack among the inputs"))])
    composed = compose(loader.docs)
    return PolicySet(composed, loader.register, tuple(dict.fromkeys(loader.signers)))


# --------------------------------------------------------------------------- scan records

def _s(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _strs(v: Any) -> tuple[str, ...]:
    return tuple(x for x in v if isinstance(x, str)) if isinstance(v, (list, tuple)) else ()


def _date(v: Any) -> str | None:
    return v[:10] if isinstance(v, str) and len(v) >= 10 else None


def _marking_from_finding(f: dict[str, Any]) -> MarkingFacts:
    """A finding of a scan record, read defensively: records come from other processes."""
    lv = f.get("level")
    return MarkingFacts(
        level=lv if isinstance(lv, str) and lv in _LEVELS else None, kind=_s(f.get("kind")) or "marking", text=_s(f.get("text")) or "",
        member=_s(f.get("member")), period=f.get("period"), declassify_date=_date(f.get("declassify_date")),
        declassify_condition=_s(f.get("declassify_condition")), nonstandard=f.get("nonstandard") is True,
        declassified=f.get("declassified") is True, superseded=f.get("superseded") is True,
        caveats=_strs(f.get("caveats")), rule=_s(f.get("rule")) or "")


_LEVELS = {lv.value for lv in Level}


def events_for_scan_record(record: dict[str, Any], *, host_role: str, host_level: str | None = None,
                           location: str = "local_disk", operation: str = "create",
                           actor_user: str | None = None, actor_groups: tuple[str, ...] = (),
                           medium_id: str | None = None, medium_level: str | None = None) -> list[Event]:
    """The events a scan record stands for: the file, then each of its markings."""
    raw = record.get("findings")
    findings = [f for f in raw if isinstance(f, dict)] if isinstance(raw, list) else []
    markings = tuple(_marking_from_finding(f) for f in findings if f.get("kind", "marking") == "marking")
    try:
        mode = parse_mode(record.get("mode"))
    except ValueError:
        mode = None
    raw = record.get("errors")
    errors = tuple(str(e.get("error")) for e in raw if isinstance(e, dict)) if isinstance(raw, list) else ()
    # the level is recomputed from the markings so that struck-out (superseded) marks yield
    declared = None
    lv = record.get("level")
    if not any(m.kind == "marking" for m in markings) and isinstance(lv, str) and lv in _LEVELS:
        declared = lv  # a record carrying its level without the findings
    copies = record.get("known_copies")
    file = FileFacts(path=_s(record.get("path")), sha256=_s(record.get("sha256")), mode=mode,
                     declared_level=declared, owner=_s(record.get("owner")), group=_s(record.get("group")),
                     acl_readers=_strs(record.get("acl_readers")),
                     known_copies=copies if isinstance(copies, int) and not isinstance(copies, bool) else 1,
                     markings=markings, errors=errors)
    host = Host(role=host_role, level=host_level)
    loc = Location(kind=location, medium_id=medium_id, medium_level=medium_level, path=file.path)
    actor = Actor(user=actor_user, groups=tuple(actor_groups))
    events = [Event(kind="file", operation=operation, host=host, location=loc, actor=actor, file=file)]
    events.extend(Event(kind="marking", operation=operation, host=host, location=loc, actor=actor,
                        file=file, marking=m) for m in markings)
    return events


def violations_for_scan_record(policy: PolicySet, record: dict[str, Any], *, host_role: str,
                               host_level: str | None = None, location: str = "local_disk",
                               operation: str = "create") -> list[dict[str, Any]]:
    """Violations (JSON-able dicts, most severe first) of one `baomi scan` JSONL record."""
    ctx = policy.context()
    out: list[Violation] = []
    for ev in events_for_scan_record(record, host_role=host_role, host_level=host_level,
                                     location=location, operation=operation):
        out.extend(policy.evaluate(ev, ctx))
    out.sort(key=lambda v: (-v.severity.rank, -v.action.rank, v.rule_id))
    return [v.to_dict() for v in out]


def preferred_rationale(v: Violation) -> str:
    return v.rationale_en if get_lang() == "en" else v.rationale_zh
