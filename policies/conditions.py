"""Declarative rule conditions: parsed from YAML, validated against the event field registry,
compiled once into closures, and able to explain themselves.

Grammar (a `when:` value)::

    cond     := mapping                    # all entries must hold
    entry    := "all": [cond...] | "any": [cond...] | "not": cond
              | FIELD: scalar              # equals
              | FIELD: [scalar...]         # is one of
              | FIELD: {OP: VALUE, ...}    # every operator must hold

Operators by field type (see `FIELDS`):

- any type: ``eq``, ``ne``, ``in``, ``not_in``, ``exists`` (true: the value is present)
- level (internal < confidential < secret < top_secret): ``at_least``, ``above``, ``at_most``,
  ``below``; a missing level never satisfies them
- int: ``gt``, ``ge``, ``lt``, ``le``
- date (ISO): ``before``, ``after``
- list of strings: ``contains``, ``contains_any``, ``not_subset_of``, ``empty``
- list of objects (``device.sightings``): ``some`` / ``every`` with a sub-condition over the
  object's fields, ``empty``

A value may be ``$params.NAME`` (a pack parameter, resolved when the policy is loaded) or
``$FIELD`` (another field of the same event, e.g. ``above: $host.level``; ``$now`` is the event
date). Nothing in a policy file is ever executed.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from policies.model import (
    LEVEL_RANK,
    LEVELS,
    OUTGOING,
    EventKind,
    HostRole,
    Issue,
    LocationKind,
    Operation,
)
from scanner.i18n import tr

Getter = Callable[[Any, Any], Any]
Pred = Callable[[Any, Any], bool]


@dataclass(frozen=True)
class FieldSpec:
    type: str  # str | level | bool | int | date | strs | objects
    doc: str
    choices: tuple[str, ...] | None = None
    #: For `objects`: the registry of the items' fields.
    item_fields: str | None = None


_KINDS = tuple(k.value for k in EventKind)
_ROLES = tuple(r.value for r in HostRole)
_LOCS = tuple(k.value for k in LocationKind)
_OPS = tuple(o.value for o in Operation)

#: The event namespace conditions may refer to. Keys are stable: packs depend on them.
FIELDS: dict[str, FieldSpec] = {
    "event": FieldSpec("str", "event kind", _KINDS),
    "operation": FieldSpec("str", "operation", _OPS),
    "now": FieldSpec("date", "event date (or evaluation date)"),
    "approved": FieldSpec("bool", "an approval record in the register covers this operation"),
    "host.role": FieldSpec("str", "host role", _ROLES),
    "host.level": FieldSpec("level", "highest level the host is approved for"),
    "host.id": FieldSpec("str", "host id"),
    "host.wireless": FieldSpec("strs", "wireless network interfaces present"),
    "host.bluetooth": FieldSpec("strs", "Bluetooth adapters present"),
    "host.default_route": FieldSpec("bool", "the host has a default route"),
    "location.kind": FieldSpec("str", "location class", _LOCS),
    "location.outgoing": FieldSpec("bool", "location is an outgoing channel"),
    "location.medium_id": FieldSpec("str", "registered medium id"),
    "location.medium_level": FieldSpec("level", "approved level of the registered medium"),
    "location.path": FieldSpec("str", "path of the location"),
    "actor.user": FieldSpec("str", "user"),
    "actor.groups": FieldSpec("strs", "groups of the user"),
    "file.path": FieldSpec("str", "path of the file"),
    "file.sha256": FieldSpec("str", "content hash"),
    "file.level": FieldSpec("level", "effective level (classifying markings only)"),
    "file.cover_level": FieldSpec("level", "level of the first classifying marking"),
    "file.parts_level": FieldSpec("level", "highest level of the other classifying markings"),
    "file.mode": FieldSpec("int", "permission bits"),
    "file.owner": FieldSpec("str", "owner account"),
    "file.group": FieldSpec("str", "owning group"),
    "file.readers": FieldSpec("strs", "principals able to read: user:X, group:G, other, ACL entries"),
    "file.world_readable": FieldSpec("bool", "readable by every account"),
    "file.known_copies": FieldSpec("int", "locations holding the same content"),
    "file.errors": FieldSpec("strs", "scan error codes"),
    "marking.level": FieldSpec("level", "level of the marking"),
    "marking.kind": FieldSpec("str", "finding kind", ("marking", "mention", "keyword", "rule")),
    "marking.text": FieldSpec("str", "text of the marking"),
    "marking.member": FieldSpec("str", "where inside the file"),
    "marking.has_period": FieldSpec("bool", "a period, declassify date or condition is marked"),
    "marking.declassify_date": FieldSpec("date", "declassify date"),
    "marking.nonstandard": FieldSpec("bool", "non-standard form (标注不规范)"),
    "marking.declassified": FieldSpec("bool", "annotated 解密"),
    "marking.superseded": FieldSpec("bool", "struck out and replaced by a newer marking"),
    "marking.classifying": FieldSpec("bool", "sets the file level"),
    "marking.caveats": FieldSpec("strs", "English caveats (NOFORN, REL TO …)"),
    "marking.latin": FieldSpec("bool", "English (banner/portion) marking"),
    "device.id": FieldSpec("str", "medium id"),
    "device.registered": FieldSpec("bool", "registered classified medium"),
    "device.level": FieldSpec("level", "approved level of the medium"),
    "device.host_roles": FieldSpec("strs", "roles of the hosts the medium was seen on"),
    "device.sightings": FieldSpec("objects", "where the medium was seen", item_fields="sighting"),
    "attestation.status": FieldSpec("str", "self-attestation status", ("ok", "missing", "overdue", "invalid")),
    "attestation.last": FieldSpec("date", "date of the last valid attestation"),
    "attestation.failed": FieldSpec("strs", "checklist items answered no"),
}

SIGHTING_FIELDS: dict[str, FieldSpec] = {
    "host_id": FieldSpec("str", "host id"),
    "host_role": FieldSpec("str", "host role", _ROLES),
    "host_level": FieldSpec("level", "approved level of the host"),
    "time": FieldSpec("str", "when"),
}

REGISTRIES = {"event": FIELDS, "sighting": SIGHTING_FIELDS}

_COMMON_OPS = {"eq", "ne", "in", "not_in", "exists"}
OPS_BY_TYPE: dict[str, set[str]] = {
    "str": _COMMON_OPS,
    "bool": _COMMON_OPS,
    "level": _COMMON_OPS | {"at_least", "above", "at_most", "below"},
    "int": _COMMON_OPS | {"gt", "ge", "lt", "le"},
    "date": _COMMON_OPS | {"before", "after"},
    "strs": {"contains", "contains_any", "not_subset_of", "empty", "exists"},
    "objects": {"some", "every", "empty"},
}
_REF = re.compile(r"^\$([a-z_][a-z0-9_.]*)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --------------------------------------------------------------------------- AST

@dataclass(frozen=True)
class Leaf:
    field: str
    op: str
    #: Literal value after `$params.` substitution; a `Ref` for `$FIELD`.
    value: Any
    where: str  # "file:line" of the operator, for explanations


@dataclass(frozen=True)
class Ref:
    field: str


@dataclass(frozen=True)
class AllOf:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    item: Any


@dataclass(frozen=True)
class Quant:
    field: str
    every: bool
    cond: Any
    registry: str
    where: str


Cond = Leaf | AllOf | AnyOf | Not | Quant
TRUE = AllOf(())


# --------------------------------------------------------------------------- parsing

class _Parser:
    def __init__(self, source: str, params: dict[str, Any], issues: list[Issue]):
        self.source = source
        self.params = params
        self.issues = issues

    def err(self, container: Any, key: Any, path: str, msg: str) -> None:
        self.issues.append(Issue.at(self.source, container, key, path, msg))

    def where(self, container: Any, key: Any) -> str:
        marks = getattr(container, "marks", None)
        if marks and key in marks:
            return f"{self.source}:{marks[key][0]}"
        return self.source

    def cond(self, node: Any, path: str, registry: str = "event", parent: Any = None,
             pkey: Any = None) -> Cond:
        if not isinstance(node, dict):
            self.err(parent, pkey, path, tr("条件应为映射（字段: 检验）", "a condition must be a mapping (field: test)"))
            return TRUE
        items: list[Cond] = []
        for key, val in node.items():
            kp = f"{path}.{key}"
            if key in ("all", "any"):
                if not isinstance(val, list) or not val:
                    self.err(node, key, kp, tr(f"'{key}' 需要非空的条件列表", f"'{key}' needs a non-empty list of conditions"))
                    continue
                subs = tuple(self.cond(v, f"{kp}[{i}]", registry, val, i) for i, v in enumerate(val))
                items.append(AllOf(subs) if key == "all" else AnyOf(subs))
            elif key == "not":
                items.append(Not(self.cond(val, kp, registry, node, key)))
            else:
                items.extend(self.field_tests(node, key, val, kp, registry))
        return items[0] if len(items) == 1 else AllOf(tuple(items))

    def field_tests(self, node: Any, key: Any, val: Any, path: str, registry: str) -> list[Cond]:
        fields = REGISTRIES[registry]
        if not isinstance(key, str) or key not in fields:
            near = difflib.get_close_matches(key, list(fields), n=1) if isinstance(key, str) else []
            hint = tr(f"（是否应为 {near[0]}？）", f" (did you mean {near[0]}?)") if near else ""
            self.err(node, key, path, tr(f"未知字段{hint}", f"unknown field{hint}"))
            return []
        spec = fields[key]
        if isinstance(val, dict):
            tests = val
        elif isinstance(val, list):
            tests = {"in": val}
        else:
            tests = {"eq": val}
        if not tests:
            self.err(node, key, path, tr("检验为空", "empty test"))
            return []
        out: list[Cond] = []
        for op, v in tests.items():
            op_path = f"{path}.{op}" if isinstance(val, dict) else path
            holder, hkey = (val, op) if isinstance(val, dict) else (node, key)
            allowed = OPS_BY_TYPE[spec.type]
            if op not in allowed:
                self.err(holder, hkey, op_path,
                         tr(f"运算符 {op!r} 不适用于 {spec.type} 类字段（可用：{', '.join(sorted(allowed))}）", f"operator {op!r} does not apply to a {spec.type} field (use: {', '.join(sorted(allowed))})"))
                continue
            if op in ("some", "every"):
                assert spec.item_fields is not None
                sub = self.cond(v, op_path, spec.item_fields, holder, hkey)
                out.append(Quant(key, op == "every", sub, spec.item_fields, self.where(holder, hkey)))
                continue
            value = self.value(spec, op, v, holder, hkey, op_path, fields)
            if value is not _BAD:
                out.append(Leaf(key, op, value, self.where(holder, hkey)))
        return out

    def value(self, spec: FieldSpec, op: str, v: Any, holder: Any, hkey: Any, path: str,
              fields: dict[str, FieldSpec]) -> Any:
        if isinstance(v, str) and v.startswith("$params."):
            name = v[len("$params."):]
            if name not in self.params:
                self.err(holder, hkey, path, tr(f"未知参数 {name!r}", f"unknown parameter {name!r}"))
                return _BAD
            v = self.params[name]
        elif isinstance(v, str) and _REF.match(v):
            ref = v[1:]
            rspec = fields.get(ref)
            if rspec is None:
                self.err(holder, hkey, path, tr(f"引用了未知字段 {v!r}", f"unknown field reference {v!r}"))
                return _BAD
            if op in ("in", "not_in", "contains_any", "not_subset_of", "exists", "empty"):
                self.err(holder, hkey, path, tr(f"运算符 {op!r} 只接受字面值，不接受字段引用", f"operator {op!r} takes a literal, not a field reference"))
                return _BAD
            want = "str" if spec.type == "strs" else spec.type
            if rspec.type != want:
                self.err(holder, hkey, path, tr(f"{v!r} 是 {rspec.type} 类字段；{op!r} 需要 {want}", f"{v!r} is a {rspec.type} field; {op!r} needs a {want}"))
                return _BAD
            return Ref(ref)
        if op in ("exists", "empty"):
            return v if self.check(isinstance(v, bool), holder, hkey, path, tr("应为 true 或 false", "expected true or false")) else _BAD
        if op in ("in", "not_in", "contains_any", "not_subset_of"):
            if not isinstance(v, list) or not v:
                self.err(holder, hkey, path, tr("应为非空列表", "expected a non-empty list"))
                return _BAD
            item_type = "str" if spec.type == "strs" else spec.type
            ok = all(self.scalar_ok(FieldSpec(item_type, "", spec.choices), x, holder, hkey, path) for x in v)
            return frozenset(v) if ok else _BAD
        item_type = "str" if spec.type == "strs" else spec.type
        return v if self.scalar_ok(FieldSpec(item_type, "", spec.choices), v, holder, hkey, path) else _BAD

    def check(self, ok: bool, holder: Any, hkey: Any, path: str, msg: str) -> bool:
        if not ok:
            self.err(holder, hkey, path, msg)
        return ok

    def scalar_ok(self, spec: FieldSpec, v: Any, holder: Any, hkey: Any, path: str) -> bool:
        t = spec.type
        if t == "bool":
            return self.check(isinstance(v, bool), holder, hkey, path, tr("应为 true 或 false", "expected true or false"))
        if t == "int":
            return self.check(isinstance(v, int) and not isinstance(v, bool), holder, hkey, path,
                              tr("应为整数", "expected an integer"))
        if t == "level":
            return self.check(v in LEVELS, holder, hkey, path, tr(f"应为密级：{', '.join(LEVELS)}", f"expected a level: {', '.join(LEVELS)}"))
        if t == "date":
            return self.check(isinstance(v, str) and bool(_DATE.match(v)), holder, hkey, path,
                              tr("应为日期 YYYY-MM-DD 或 $now", "expected a date YYYY-MM-DD or $now"))
        if not isinstance(v, str):
            return self.check(False, holder, hkey, path, tr("应为字符串", "expected a string"))
        if spec.choices is not None and v not in spec.choices:
            return self.check(False, holder, hkey, path,
                              tr(f"{v!r} 不在可选值之列：{', '.join(spec.choices)}", f"{v!r} is not one of {', '.join(spec.choices)}"))
        return True


_BAD = object()


def parse_condition(node: Any, *, source: str, path: str, params: dict[str, Any],
                    issues: list[Issue], parent: Any = None, key: Any = None) -> Cond:
    """Validate a `when:` value; problems are appended to `issues` (file, line, field)."""
    if node is None:
        return TRUE
    return _Parser(source, params, issues).cond(node, path, "event", parent, key)


def referenced_fields(cond: Cond) -> set[str]:
    if isinstance(cond, Leaf):
        out = {cond.field}
        if isinstance(cond.value, Ref):
            out.add(cond.value.field)
        return out
    if isinstance(cond, (AllOf, AnyOf)):
        return set().union(*(referenced_fields(c) for c in cond.items)) if cond.items else set()
    if isinstance(cond, Not):
        return referenced_fields(cond.item)
    return {cond.field}


# --------------------------------------------------------------------------- compiling

_TOP_ALWAYS = ("host", "location", "actor")
_TOP_ATTR = {"event": "kind", "operation": "operation"}


def getter(path: str, registry: str = "event") -> Getter:
    """A fast accessor for a field: (event or item, context) → value or None."""
    if registry != "event":
        g1 = attrgetter(path)
        return lambda obj, ctx: g1(obj)
    if path == "approved":
        return lambda ev, ctx: ctx.approved(ev)
    if path == "now":
        return lambda ev, ctx: ev.time or ctx.today
    if "." not in path:
        g2 = attrgetter(_TOP_ATTR.get(path, path))
        return lambda ev, ctx: g2(ev)
    head, tail = path.split(".", 1)
    if head in _TOP_ALWAYS:
        g3 = attrgetter(path)
        return lambda ev, ctx: g3(ev)
    g4 = attrgetter(tail)
    h = attrgetter(head)

    def get(ev: Any, ctx: Any) -> Any:
        obj = h(ev)
        return None if obj is None else g4(obj)
    return get


def _rank(v: Any) -> int | None:
    return LEVEL_RANK.get(v) if v is not None else None


def compile_condition(cond: Cond, registry: str = "event") -> Pred:
    """Turn a validated condition into a predicate (event, context) → bool."""
    if isinstance(cond, AllOf):
        if not cond.items:
            return lambda ev, ctx: True
        return _fold([compile_condition(c, registry) for c in cond.items], conj=True)
    if isinstance(cond, AnyOf):
        return _fold([compile_condition(c, registry) for c in cond.items], conj=False)
    if isinstance(cond, Not):
        inner = compile_condition(cond.item, registry)
        return lambda ev, ctx: not inner(ev, ctx)
    if isinstance(cond, Quant):
        get_items = getter(cond.field, registry)
        sub = compile_condition(cond.cond, cond.registry)
        if cond.every:
            return lambda ev, ctx: all(sub(x, ctx) for x in (get_items(ev, ctx) or ()))
        return lambda ev, ctx: any(sub(x, ctx) for x in (get_items(ev, ctx) or ()))
    return _compile_leaf(cond, registry)


def _fold(fns: list[Pred], conj: bool) -> Pred:
    """Chain predicates with short-circuit `and` / `or` (nested closures beat `all(genexpr)`)."""
    if len(fns) == 1:
        return fns[0]
    if len(fns) > 3:
        mid = len(fns) // 2
        fns = [_fold(fns[:mid], conj), _fold(fns[mid:], conj)]
    if len(fns) == 2:
        a, b = fns
        if conj:
            return lambda ev, ctx: a(ev, ctx) and b(ev, ctx)
        return lambda ev, ctx: a(ev, ctx) or b(ev, ctx)
    a, b, c = fns
    if conj:
        return lambda ev, ctx: a(ev, ctx) and b(ev, ctx) and c(ev, ctx)
    return lambda ev, ctx: a(ev, ctx) or b(ev, ctx) or c(ev, ctx)


def static_domain(cond: Cond, field: str, universe: frozenset[str]) -> frozenset[str]:
    """Values of a field for which the condition can possibly hold, judged from its top-level
    conjuncts (used to index rules by host role and location class)."""
    items = cond.items if isinstance(cond, AllOf) else (cond,)
    dom = universe
    for c in items:
        if not isinstance(c, Leaf) or isinstance(c.value, Ref):
            continue
        if c.field == field:
            if c.op == "eq":
                dom = dom & {c.value}
            elif c.op == "in":
                dom = dom & c.value
            elif c.op == "not_in":
                dom = dom - c.value
            elif c.op == "ne":
                dom = dom - {c.value}
        elif field == "location.kind" and c.field == "location.outgoing" and c.op == "eq":
            dom = dom & OUTGOING if c.value is True else dom - OUTGOING
    return dom


def _indexed(c: Any) -> bool:
    return isinstance(c, Leaf) and not isinstance(c.value, Ref) and (
        (c.field in ("host.role", "location.kind") and c.op in ("eq", "in", "not_in", "ne"))
        or (c.field == "location.outgoing" and c.op == "eq"))


def without_indexed(cond: Cond) -> Cond:
    """The condition minus the top-level conjuncts that `static_domain` turns into index keys:
    for events found through that index they hold by construction."""
    items = cond.items if isinstance(cond, AllOf) else (cond,)
    rest = tuple(c for c in items if not _indexed(c))
    return rest[0] if len(rest) == 1 else AllOf(rest)


def _compile_leaf(leaf: Leaf, registry: str) -> Pred:
    get = getter(leaf.field, registry)
    op, value = leaf.op, leaf.value
    ftype = REGISTRIES[registry][leaf.field].type
    if isinstance(value, Ref):
        rget = getter(value.field, registry)
        cmp = _binary(op, ftype)
        return lambda ev, ctx: cmp(get(ev, ctx), rget(ev, ctx))
    if op == "eq":
        return lambda ev, ctx: get(ev, ctx) == value
    if op == "ne":
        return lambda ev, ctx: get(ev, ctx) != value
    if op == "in":
        return lambda ev, ctx: get(ev, ctx) in value
    if op == "not_in":
        return lambda ev, ctx: get(ev, ctx) not in value
    if op == "exists":
        if ftype == "strs":
            return lambda ev, ctx: bool(get(ev, ctx)) is value
        return lambda ev, ctx: (get(ev, ctx) is not None) is value
    if op == "empty":
        return lambda ev, ctx: (not get(ev, ctx)) is value
    if op in ("at_least", "above", "at_most", "below"):
        r = LEVEL_RANK[value]
        rank = LEVEL_RANK.get
        if op == "at_least":
            return lambda ev, ctx: rank(get(ev, ctx), 0) >= r
        if op == "above":
            return lambda ev, ctx: rank(get(ev, ctx), 0) > r
        if op == "at_most":
            return lambda ev, ctx: 0 < rank(get(ev, ctx), 0) <= r
        return lambda ev, ctx: 0 < rank(get(ev, ctx), 0) < r
    if op == "contains":
        return lambda ev, ctx: value in (get(ev, ctx) or ())
    if op == "contains_any":
        return lambda ev, ctx: not value.isdisjoint(get(ev, ctx) or ())
    if op == "not_subset_of":
        return lambda ev, ctx: not value.issuperset(get(ev, ctx) or ())
    cmp = _binary(op, ftype)
    return lambda ev, ctx: cmp(get(ev, ctx), value)


def _binary(op: str, ftype: str) -> Callable[[Any, Any], bool]:
    """Comparison of a field value with another value (literal or referenced); None never matches
    an ordering operator."""
    if op == "eq":
        return lambda a, b: a == b
    if op == "ne":
        return lambda a, b: a != b
    if op == "contains":
        return lambda a, b: b is not None and b in (a or ())
    if ftype == "level":
        def lv(a: Any, b: Any) -> bool:
            ra, rb = _rank(a), _rank(b)
            if ra is None or rb is None:
                return False
            return _ORDER[op](ra, rb)
        return lv

    def ordered(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return False
        return _ORDER[op](a, b)
    return ordered


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "at_least": lambda a, b: a >= b, "above": lambda a, b: a > b,
    "at_most": lambda a, b: a <= b, "below": lambda a, b: a < b,
    "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
    "before": lambda a, b: a < b, "after": lambda a, b: a > b,
}


def describe_condition(cond: Cond) -> str:
    """A one-line summary of a condition, for rule tables (`file.level ≥ confidential ∧ …`)."""
    if isinstance(cond, AllOf):
        return " ∧ ".join(describe_condition(c) for c in cond.items) or "always"
    if isinstance(cond, AnyOf):
        return "(" + " ∨ ".join(describe_condition(c) for c in cond.items) + ")"
    if isinstance(cond, Not):
        return "¬(" + describe_condition(cond.item) + ")"
    if isinstance(cond, Quant):
        return f"{cond.field} {'every' if cond.every else 'some'}({describe_condition(cond.cond)})"
    v = cond.value
    shown = f"${v.field}" if isinstance(v, Ref) else (
        "{" + ", ".join(sorted(map(str, v))) + "}" if isinstance(v, frozenset) else str(v).lower()
        if isinstance(v, bool) else str(v))
    sym = {"eq": "=", "ne": "≠", "in": "∈", "not_in": "∉", "at_least": "≥", "above": ">", "at_most": "≤",
           "below": "<", "gt": ">", "ge": "≥", "lt": "<", "le": "≤", "before": "<", "after": ">",
           "contains": "∋", "contains_any": "∩", "not_subset_of": "⊄"}.get(cond.op)
    if cond.op == "exists":
        return cond.field if v else f"no {cond.field}"
    if cond.op == "empty":
        return f"no {cond.field}" if v else cond.field
    return f"{cond.field} {sym} {shown}"


# --------------------------------------------------------------------------- explaining

@dataclass(frozen=True)
class Trace:
    """One evaluated test: `file.level = 'secret' at_least 'confidential' → True`."""

    text: str
    result: bool
    depth: int


def explain_condition(cond: Cond, ev: Any, ctx: Any, registry: str = "event",
                      depth: int = 0) -> tuple[bool, list[Trace]]:
    if isinstance(cond, (AllOf, AnyOf)):
        out: list[Trace] = []
        results = []
        for c in cond.items:
            r, t = explain_condition(c, ev, ctx, registry, depth + 1)
            results.append(r)
            out.extend(t)
        res = all(results) if isinstance(cond, AllOf) else any(results)
        if isinstance(cond, AnyOf) or depth == 0 and len(cond.items) != 1:
            label = "all" if isinstance(cond, AllOf) else "any"
            out.insert(0, Trace(f"{label}:", res, depth))
        return res, out
    if isinstance(cond, Not):
        r, t = explain_condition(cond.item, ev, ctx, registry, depth + 1)
        return not r, [Trace("not:", not r, depth), *t]
    pred = compile_condition(cond, registry)
    res = pred(ev, ctx)
    if isinstance(cond, Quant):
        items = getter(cond.field, registry)(ev, ctx) or ()
        word = "every" if cond.every else "some"
        return res, [Trace(f"{cond.field} ({len(items)} items): {word} … [{cond.where}]", res, depth)]
    actual = getter(cond.field, registry)(ev, ctx)
    if cond.field == "approved" and getattr(ctx, "last_approval", None) is not None:
        a = ctx.last_approval
        actual = f"{actual!r} (approval {a.id}, {a.operation} by {a.who}, until {a.until}, approved by {a.approved_by})"
        return res, [Trace(f"approved = {actual}  {cond.op} {cond.value!r}  [{cond.where}]", res, depth)]
    if isinstance(cond.value, Ref):
        shown = f"{cond.value.field} = {getter(cond.value.field, registry)(ev, ctx)!r}"
    elif isinstance(cond.value, frozenset):
        shown = repr(sorted(cond.value))
    else:
        shown = repr(cond.value)
    return res, [Trace(f"{cond.field} = {actual!r}  {cond.op} {shown}  [{cond.where}]", res, depth)]


__all__ = [
    "FIELDS",
    "SIGHTING_FIELDS",
    "TRUE",
    "AllOf",
    "AnyOf",
    "Cond",
    "Leaf",
    "Not",
    "Quant",
    "Ref",
    "Trace",
    "compile_condition",
    "explain_condition",
    "getter",
    "parse_condition",
    "referenced_fields",
]
