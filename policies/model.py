"""The typed model a policy decides over: events (what happened, where, by whom) and violations.

An *event* is one of

- ``file``        — a file (its effective level and all its markings) in a place, by an operation;
- ``marking``     — one marking of a file (same context), for marking-quality rules;
- ``device``      — a removable medium and its history of sightings (cross-use is decided centrally);
- ``posture``     — facts about a host (wireless / Bluetooth interfaces, default route), read locally;
- ``attestation`` — the state of a user's periodic signed self-attestation (八不 checklist).

Every value type is a frozen dataclass; derived facts (``file.readers``, ``location.outgoing``…)
are computed lazily and cached. `event_from_dict` turns the JSON form used by `baomi policy
explain` and by `policy test` cases into an `Event`, reporting unknown or ill-typed fields as
`Issue` values.
"""
from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, TypeVar, overload

from scanner.i18n import tr
from scanner.model import Level

_T = TypeVar("_T")


class lazy(Generic[_T]):
    """A derived fact computed on first access and stored on the instance.

    Like `functools.cached_property` without its lock (3.11): events are decided on one thread,
    and a race would only compute the same pure value twice. Works on frozen dataclasses.
    """

    def __init__(self, fn: Callable[[Any], _T]):
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> lazy[_T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = self.fn(obj)
        obj.__dict__[self.name] = value
        return value


class EventKind(str, enum.Enum):
    FILE = "file"
    MARKING = "marking"
    DEVICE = "device"
    POSTURE = "posture"
    ATTESTATION = "attestation"


class HostRole(str, enum.Enum):
    UNCLASSIFIED = "unclassified"
    CLASSIFIED = "classified"


class LocationKind(str, enum.Enum):
    LOCAL_DISK = "local_disk"
    CLASSIFIED_MEDIUM = "classified_medium"  # registered medium with an approved level
    REMOVABLE_MEDIUM = "removable_medium"  # unregistered removable medium
    MAIL_OUTBOX = "mail_outbox"
    IM_TRANSFER = "im_transfer"
    CLOUD_SYNC = "cloud_sync"
    UPLOAD_STAGING = "upload_staging"
    NETWORK_SHARE = "network_share"
    PRINT_SPOOL = "print_spool"
    PUBLICATION_GATE = "publication_gate"  # 公开前保密审查


#: Location classes through which content leaves the host.
OUTGOING = frozenset({
    LocationKind.MAIL_OUTBOX.value, LocationKind.IM_TRANSFER.value, LocationKind.CLOUD_SYNC.value,
    LocationKind.UPLOAD_STAGING.value, LocationKind.NETWORK_SHARE.value, LocationKind.PRINT_SPOOL.value,
    LocationKind.PUBLICATION_GATE.value,
})


class Operation(str, enum.Enum):
    CREATE = "create"
    MODIFY = "modify"
    COPY = "copy"
    MOVE = "move"
    DELETE = "delete"
    PRINT = "print"
    SEND = "send"
    MOUNT = "mount"
    OBSERVE = "observe"  # a fact seen without an operation (posture, attestation, periodic scan)


class Action(str, enum.Enum):
    ALERT = "alert"
    REQUIRE_APPROVAL = "require_approval"
    QUARANTINE = "quarantine"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return _ACTION_RANK[self]


_ACTION_RANK = {Action.ALERT: 1, Action.REQUIRE_APPROVAL: 2, Action.QUARANTINE: 3, Action.BLOCK: 4}


class Severity(str, enum.Enum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3,
                  Severity.CRITICAL: 4}

LEVELS = tuple(lv.value for lv in Level)


def parse_level(text: str) -> str:
    """A level named in English (`secret`) or as printed in a marking (`机密`); ValueError otherwise."""
    t = text.strip()
    for lv in Level:
        if t.lower() == lv.value or t == lv.zh:
            return lv.value
    raise ValueError(tr(f"未知密级“{text}”（可用：{'、'.join(LEVELS)}，或 绝密/机密/秘密/内部）",
                        f"unknown level {text!r} (use one of {', '.join(LEVELS)}, or 绝密/机密/秘密/内部)"))


def parse_host(role: str, level: str | None = None) -> tuple[str, str | None]:
    """Validate a host's role and approved level as every command takes them.

    `classified:secret` (or `classified:机密`, or role and level given apart) is a classified host
    approved up to that level; `unclassified` takes no level. A classified host without a level, a
    level on an unclassified host, or a level given as a role (`secret`) is refused: each would
    otherwise make the rules that compare against the host's level silently never fire."""
    r, sep, lv = role.strip().partition(":")
    if sep and level:
        raise ValueError(tr("主机密级给出了两次", "the host level is given twice"))
    lv = lv or (level or "")
    if r not in {h.value for h in HostRole}:
        hint = ""
        try:
            hint = tr(f"（是否想写 classified:{parse_level(r)}？）", f" (did you mean classified:{parse_level(r)}?)")
        except ValueError:
            pass
        raise ValueError(tr(f"未知主机类别“{role}”：应为 unclassified 或 classified:密级{hint}",
                            f"unknown host role {role!r}: use unclassified or classified:LEVEL{hint}"))
    if r == HostRole.UNCLASSIFIED.value:
        if lv:
            raise ValueError(tr("非涉密主机（unclassified）没有核定密级", "an unclassified host has no approved level"))
        return r, None
    if not lv:
        raise ValueError(tr("涉密主机需要核定密级，如 classified:secret 或 classified:机密",
                            "a classified host needs its approved level, e.g. classified:secret"))
    return r, parse_level(lv)


def parse_location(text: str) -> str:
    """A location class by its value (`removable_medium`); ValueError listing the valid ones."""
    t = text.strip()
    if t in {k.value for k in LocationKind}:
        return t
    choices = ", ".join(k.value for k in LocationKind)
    raise ValueError(tr(f"未知位置类别“{text}”（可用：{choices}）", f"unknown location {text!r} (use one of {choices})"))
LEVEL_RANK: dict[Any, int] = {lv.value: lv.rank for lv in Level}
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Host:
    #: `unclassified` or `classified`.
    role: str = HostRole.UNCLASSIFIED.value
    #: Highest level a classified host is approved for (None: not stated).
    level: str | None = None
    id: str = ""
    #: Posture facts, read locally (never probed over the network).
    wireless: tuple[str, ...] = ()
    bluetooth: tuple[str, ...] = ()
    default_route: bool = False


@dataclass(frozen=True)
class Location:
    kind: str = LocationKind.LOCAL_DISK.value
    #: Registered medium: its id and approved level.
    medium_id: str | None = None
    medium_level: str | None = None
    path: str | None = None

    @lazy
    def outgoing(self) -> bool:
        return self.kind in OUTGOING


@dataclass(frozen=True)
class Actor:
    user: str | None = None
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class MarkingFacts:
    """One finding of a scan record (markings.md §5), plus `superseded` (struck out, replaced)."""

    level: str | None = None
    kind: str = "marking"
    text: str = ""
    member: str | None = None
    period: Any = None
    declassify_date: str | None = None
    declassify_condition: str | None = None
    nonstandard: bool = False
    declassified: bool = False
    superseded: bool = False
    caveats: tuple[str, ...] = ()
    rule: str = ""

    @lazy
    def classifying(self) -> bool:
        """True when this marking sets the file's level (a marking, not declassified, not struck out)."""
        return self.kind == "marking" and self.level is not None and not self.declassified \
            and not self.superseded

    @lazy
    def has_period(self) -> bool:
        return bool(self.period or self.declassify_date or self.declassify_condition)

    @lazy
    def latin(self) -> bool:
        """An English (banner/portion) marking: no CJK character in its text."""
        return bool(self.text) and not _CJK.search(self.text)


def _max_level(levels: Any) -> str | None:
    best: str | None = None
    for lv in levels:
        if lv is not None and (best is None or LEVEL_RANK[lv] > LEVEL_RANK[best]):
            best = lv
    return best


@dataclass(frozen=True)
class FileFacts:
    path: str | None = None
    sha256: str | None = None
    #: Effective level; None means "derive from markings".
    declared_level: str | None = None
    mode: int | None = None
    owner: str | None = None
    group: str | None = None
    #: Extra principals with read access from ACLs (`user:bob`, `group:ops`).
    acl_readers: tuple[str, ...] = ()
    #: How many locations the same content (hash) is known at (central view); 1 = this one.
    known_copies: int = 1
    markings: tuple[MarkingFacts, ...] = ()
    #: Scan error codes (encrypted, corrupt…): the file could not be fully read.
    errors: tuple[str, ...] = ()

    @lazy
    def level(self) -> str | None:
        if self.declared_level is not None:
            return self.declared_level
        return _max_level(m.level for m in self.markings if m.classifying)

    @lazy
    def cover_level(self) -> str | None:
        """Level of the first classifying marking in document order (the cover / first page)."""
        for m in self.markings:
            if m.classifying:
                return m.level
        return None

    @lazy
    def parts_level(self) -> str | None:
        """Highest level among the classifying markings after the first one (the parts)."""
        seen = False
        rest = []
        for m in self.markings:
            if m.classifying:
                if seen:
                    rest.append(m.level)
                seen = True
        return _max_level(rest)

    @lazy
    def world_readable(self) -> bool:
        return self.mode is not None and bool(self.mode & 0o004)

    @lazy
    def readers(self) -> tuple[str, ...]:
        """Principals able to read the file: `user:OWNER`, `group:GROUP`, `other`, ACL entries."""
        out: list[str] = []
        mode = self.mode
        if mode is not None:
            if mode & 0o400 and self.owner:
                out.append(f"user:{self.owner}")
            if mode & 0o040 and self.group:
                out.append(f"group:{self.group}")
            if mode & 0o004:
                out.append("other")
        out.extend(self.acl_readers)
        return tuple(out)


@dataclass(frozen=True)
class Sighting:
    """A removable medium seen on a host (reported by that host's agent)."""

    host_id: str = ""
    host_role: str = HostRole.UNCLASSIFIED.value
    host_level: str | None = None
    time: str | None = None


@dataclass(frozen=True)
class DeviceFacts:
    id: str = ""
    registered: bool = False
    level: str | None = None
    sightings: tuple[Sighting, ...] = ()

    @lazy
    def host_roles(self) -> tuple[str, ...]:
        return tuple(sorted({s.host_role for s in self.sightings}))


@dataclass(frozen=True)
class AttestationFacts:
    #: `ok`, `missing` (never attested), `overdue` (last one older than the period), `invalid`.
    status: str = "missing"
    last: str | None = None
    #: Checklist item ids answered "no".
    failed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Event:
    kind: str = EventKind.FILE.value
    operation: str = Operation.CREATE.value
    host: Host = field(default_factory=Host)
    location: Location = field(default_factory=Location)
    actor: Actor = field(default_factory=Actor)
    file: FileFacts | None = None
    marking: MarkingFacts | None = None
    device: DeviceFacts | None = None
    attestation: AttestationFacts | None = None
    #: ISO date the event happened (None: the evaluation date).
    time: str | None = None


@dataclass(frozen=True)
class Violation:
    """A rule that fired on an event. The rationale (zh-CN and English, naming the rule and
    its source) and the subject are rendered on first access, so that deciding stays cheap."""

    rule_id: str
    pack: str
    severity: Severity
    action: Action
    title_zh: str
    title_en: str
    source: str
    #: Renders the rationale: `render(True)` → zh-CN, `render(False)` → English.
    render: Callable[[bool], str] = field(compare=False, repr=False)
    #: Describes the subject: path, member, marking text, device id, user or host.
    describe: Callable[[], dict[str, Any]] = field(default=dict, compare=False, repr=False)

    @lazy
    def rationale_zh(self) -> str:
        return self.render(True)

    @lazy
    def rationale_en(self) -> str:
        return self.render(False)

    @lazy
    def subject(self) -> dict[str, Any]:
        return self.describe()

    def to_dict(self) -> dict[str, Any]:
        subject = self.subject
        return {
            "rule": self.rule_id, "pack": self.pack, "severity": self.severity.value,
            "action": self.action.value, "title_zh": self.title_zh, "title_en": self.title_en,
            "rationale_zh": self.rationale_zh, "rationale_en": self.rationale_en,
            "source": self.source, **({"subject": subject} if subject else {}),
        }


# --------------------------------------------------------------------------- JSON → Event

@dataclass(frozen=True)
class Issue:
    """A validation problem, located as precisely as the input allows."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        loc = self.file
        if self.line is not None:
            loc += f":{self.line}"
            if self.column is not None:
                loc += f":{self.column}"
        return f"{loc}: {self.field}: {self.message}" if self.field else f"{loc}: {self.message}"

    @classmethod
    def at(cls, source: str, container: Any, key: Any, path: str, msg: str) -> Issue:
        """An issue located at `key` of a located YAML mapping/sequence (its `marks`), else at the
        container itself (its `mark`), else unlocated."""
        marks = getattr(container, "marks", None)
        line, col = marks[key] if marks and key in marks else getattr(container, "mark", None) or (None, None)
        return cls(source, line, col, path, msg)


def unknown_field(allowed: Any) -> str:
    names = ", ".join(sorted(allowed))
    return tr(f"未知字段（可用：{names}）", f"unknown field (allowed: {names})")


class EventError(ValueError):
    def __init__(self, issues: list[Issue]):
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


def _mark_of(container: Any, key: Any) -> tuple[int | None, int | None]:
    marks = getattr(container, "marks", None)
    if marks and key in marks:
        line, col = marks[key]
        return line, col
    mark = getattr(container, "mark", None)
    return mark if mark else (None, None)


class _Reader:
    """Typed access to a JSON/YAML mapping that records issues instead of raising."""

    def __init__(self, source: str, issues: list[Issue]):
        self.source = source
        self.issues = issues

    def err(self, container: Any, key: Any, path: str, msg: str) -> None:
        line, col = _mark_of(container, key)
        self.issues.append(Issue(self.source, line, col, path, msg))

    def obj(self, d: Any, path: str, allowed: set[str], parent: Any = None, key: Any = None) -> dict[str, Any]:
        if not isinstance(d, dict):
            self.err(parent, key, path, tr("应为映射（键: 值）", "expected a mapping"))
            return {}
        for k in d:
            if k not in allowed:
                self.err(d, k, f"{path}.{k}" if path else str(k),
                         unknown_field(allowed))
        return d

    def str_(self, d: dict[str, Any], k: str, path: str, default: Any = None,
             choices: tuple[str, ...] | None = None) -> Any:
        v = d.get(k, default)
        if v is None or v is default:
            return v
        if not isinstance(v, str):
            self.err(d, k, path, tr("应为字符串", "expected a string"))
            return default
        if choices is not None and v not in choices:
            self.err(d, k, path, tr(f"{v!r} 不在可选值之列：{', '.join(choices)}", f"{v!r} is not one of {', '.join(choices)}"))
            return default
        return v

    def bool_(self, d: dict[str, Any], k: str, path: str, default: bool = False) -> bool:
        v = d.get(k, default)
        if not isinstance(v, bool):
            self.err(d, k, path, tr("应为 true 或 false", "expected true or false"))
            return default
        return v

    def int_(self, d: dict[str, Any], k: str, path: str, default: int) -> int:
        v = d.get(k, default)
        if isinstance(v, bool) or not isinstance(v, int):
            self.err(d, k, path, tr("应为整数", "expected an integer"))
            return default
        return v

    def strs(self, d: dict[str, Any], k: str, path: str) -> tuple[str, ...]:
        v = d.get(k, ())
        if isinstance(v, str):
            return (v,)
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
            self.err(d, k, path, tr("应为字符串列表", "expected a list of strings"))
            return ()
        return tuple(v)

    def date_(self, d: dict[str, Any], k: str, path: str) -> str | None:
        v = d.get(k)
        if v is None:
            return None
        if isinstance(v, date):
            return v.isoformat()[:10]
        if isinstance(v, str) and _ISO_DATE.match(v):
            return v[:10]
        self.err(d, k, path, tr("应为日期 YYYY-MM-DD", "expected an ISO date YYYY-MM-DD"))
        return None


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_KINDS = tuple(k.value for k in EventKind)
_ROLES = tuple(r.value for r in HostRole)
_LOCS = tuple(k.value for k in LocationKind)
_OPS = tuple(o.value for o in Operation)
_ATT_STATUS = ("ok", "missing", "overdue", "invalid")


def parse_mode(value: Any) -> int | None:
    """File mode from an int or an octal string (`"0640"`, `"640"`, `"0o640"`)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(tr("权限应为八进制字符串或整数", "mode must be an octal string or an integer"))  # noqa: TRY004 (a value error)
    if isinstance(value, int):
        if not 0 <= value <= 0o7777:
            raise ValueError(tr("权限值超出范围", "mode out of range"))
        return value
    if isinstance(value, str) and re.fullmatch(r"(0o|0)?[0-7]{1,4}", value.strip()):
        s = value.strip()
        return int(s.removeprefix("0o"), 8)
    raise ValueError(tr("权限应为八进制字符串，如 \"0640\"", "mode must be an octal string such as \"0640\""))


def _marking(r: _Reader, d: Any, path: str, parent: Any, key: Any) -> MarkingFacts:
    d = r.obj(d, path, {"level", "kind", "text", "member", "period", "declassify_date",
                        "declassify_condition", "nonstandard", "declassified", "superseded",
                        "caveats", "rule", "confidence", "line"}, parent, key)
    return MarkingFacts(
        level=r.str_(d, "level", f"{path}.level", choices=LEVELS),
        kind=r.str_(d, "kind", f"{path}.kind", "marking", ("marking", "mention", "keyword", "rule")),
        text=r.str_(d, "text", f"{path}.text", "") or "",
        member=r.str_(d, "member", f"{path}.member"),
        period=d.get("period"),
        declassify_date=r.date_(d, "declassify_date", f"{path}.declassify_date"),
        declassify_condition=r.str_(d, "declassify_condition", f"{path}.declassify_condition"),
        nonstandard=r.bool_(d, "nonstandard", f"{path}.nonstandard"),
        declassified=r.bool_(d, "declassified", f"{path}.declassified"),
        superseded=r.bool_(d, "superseded", f"{path}.superseded"),
        caveats=r.strs(d, "caveats", f"{path}.caveats"),
        rule=r.str_(d, "rule", f"{path}.rule", "") or "",
    )


def event_from_dict(data: Any, source: str = "<event>") -> Event:
    """Build an Event from its JSON form; raise EventError listing every problem found."""
    issues: list[Issue] = []
    r = _Reader(source, issues)
    d = r.obj(data, "", {"event", "operation", "host", "location", "actor", "file", "marking",
                         "device", "attestation", "time"})
    kind = r.str_(d, "event", "event", "file", _KINDS)
    op = r.str_(d, "operation", "operation", "create", _OPS)

    h = r.obj(d.get("host", {}), "host", {"role", "level", "id", "wireless", "bluetooth",
                                           "default_route"}, d, "host")
    host = Host(role=r.str_(h, "role", "host.role", "unclassified", _ROLES),
                level=r.str_(h, "level", "host.level", choices=LEVELS),
                id=r.str_(h, "id", "host.id", "") or "",
                wireless=r.strs(h, "wireless", "host.wireless"),
                bluetooth=r.strs(h, "bluetooth", "host.bluetooth"),
                default_route=r.bool_(h, "default_route", "host.default_route"))

    lo = r.obj(d.get("location", {}), "location", {"kind", "medium_id", "medium_level", "path"},
               d, "location")
    loc = Location(kind=r.str_(lo, "kind", "location.kind", "local_disk", _LOCS),
                   medium_id=r.str_(lo, "medium_id", "location.medium_id"),
                   medium_level=r.str_(lo, "medium_level", "location.medium_level", choices=LEVELS),
                   path=r.str_(lo, "path", "location.path"))

    a = r.obj(d.get("actor", {}), "actor", {"user", "groups"}, d, "actor")
    actor = Actor(user=r.str_(a, "user", "actor.user"), groups=r.strs(a, "groups", "actor.groups"))

    file: FileFacts | None = None
    if "file" in d:
        f = r.obj(d["file"], "file", {"path", "sha256", "level", "mode", "owner", "group",
                                      "acl_readers", "known_copies", "markings", "errors"}, d, "file")
        marks = f.get("markings", [])
        mlist: list[MarkingFacts] = []
        if not isinstance(marks, list):
            r.err(f, "markings", "file.markings", tr("应为列表", "expected a list"))
        else:
            mlist = [_marking(r, m, f"file.markings[{i}]", marks, i) for i, m in enumerate(marks)]
        try:
            mode = parse_mode(f.get("mode"))
        except ValueError as exc:
            r.err(f, "mode", "file.mode", str(exc))
            mode = None
        file = FileFacts(path=r.str_(f, "path", "file.path"), sha256=r.str_(f, "sha256", "file.sha256"),
                         declared_level=r.str_(f, "level", "file.level", choices=LEVELS), mode=mode,
                         owner=r.str_(f, "owner", "file.owner"), group=r.str_(f, "group", "file.group"),
                         acl_readers=r.strs(f, "acl_readers", "file.acl_readers"),
                         known_copies=r.int_(f, "known_copies", "file.known_copies", 1),
                         markings=tuple(mlist), errors=r.strs(f, "errors", "file.errors"))

    marking = _marking(r, d["marking"], "marking", d, "marking") if "marking" in d else None

    device: DeviceFacts | None = None
    if "device" in d:
        dv = r.obj(d["device"], "device", {"id", "registered", "level", "sightings"}, d, "device")
        sights: list[Sighting] = []
        raw = dv.get("sightings", [])
        if not isinstance(raw, list):
            r.err(dv, "sightings", "device.sightings", tr("应为列表", "expected a list"))
            raw = []
        for i, s in enumerate(raw):
            p = f"device.sightings[{i}]"
            s = r.obj(s, p, {"host_id", "host_role", "host_level", "time"}, raw, i)
            sights.append(Sighting(host_id=r.str_(s, "host_id", f"{p}.host_id", "") or "",
                                   host_role=r.str_(s, "host_role", f"{p}.host_role", "unclassified", _ROLES),
                                   host_level=r.str_(s, "host_level", f"{p}.host_level", choices=LEVELS),
                                   time=r.str_(s, "time", f"{p}.time")))
        device = DeviceFacts(id=r.str_(dv, "id", "device.id", "") or "",
                             registered=r.bool_(dv, "registered", "device.registered"),
                             level=r.str_(dv, "level", "device.level", choices=LEVELS),
                             sightings=tuple(sights))

    att: AttestationFacts | None = None
    if "attestation" in d:
        at = r.obj(d["attestation"], "attestation", {"status", "last", "failed"}, d, "attestation")
        att = AttestationFacts(status=r.str_(at, "status", "attestation.status", "missing", _ATT_STATUS),
                               last=r.date_(at, "last", "attestation.last"),
                               failed=r.strs(at, "failed", "attestation.failed"))

    ev = Event(kind=kind, operation=op, host=host, location=loc, actor=actor, file=file,
               marking=marking, device=device, attestation=att, time=r.date_(d, "time", "time"))
    if issues:
        raise EventError(issues)
    return ev
