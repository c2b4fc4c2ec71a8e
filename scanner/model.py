"""Value types of the scan pipeline and the versioned output contract (markings.md §5).

Everything here is a frozen dataclass or a str enum: later stages (policies, agents, reports)
consume these, and `FileResult.to_record()` is the one place the JSONL contract is written.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

#: Version of the JSONL record written by `baomi scan`. Bump on any incompatible change.
SCHEMA_VERSION = 1


class Level(str, enum.Enum):
    """Classification levels, lowest first. `internal` (工作秘密/内部) ranks below state secrets."""

    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"  # 秘密
    SECRET = "secret"  # 机密
    TOP_SECRET = "top_secret"  # 绝密

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def zh(self) -> str:
        return _ZH[self]


_RANK = {Level.INTERNAL: 1, Level.CONFIDENTIAL: 2, Level.SECRET: 3, Level.TOP_SECRET: 4}
_ZH = {Level.INTERNAL: "内部", Level.CONFIDENTIAL: "秘密", Level.SECRET: "机密", Level.TOP_SECRET: "绝密"}

#: Statutory maximum secrecy periods (years) when a marking names none.
STATUTORY_MAX_YEARS = {Level.TOP_SECRET: 30, Level.SECRET: 20, Level.CONFIDENTIAL: 10}


def level_rank(level: str | Level | None) -> int:
    """Rank of a level value as it appears in records (None → 0)."""
    if level is None:
        return 0
    return Level(level).rank


def max_level(levels: Any) -> Level | None:
    best: Level | None = None
    for lv in levels:
        if lv is None:
            continue
        lv = Level(lv)
        if best is None or lv.rank > best.rank:
            best = lv
    return best


class Kind(str, enum.Enum):
    """What a finding is. Stable values: consumers depend on them."""

    MARKING = "marking"
    MENTION = "mention"
    KEYWORD = "keyword"
    RULE = "rule"
    #: A machine-readable classification label beside the visible page (a Microsoft sensitivity
    #: label, an OA system's custom property that names no state-secret level, `公开`): reported,
    #: never sets the file's level.
    LABEL = "label"
    #: A label and the visible marking disagree (a `机密` property on a page marked `秘密`): the
    #: trace of an unapproved 降密 or a forgotten mark.
    LABEL_MISMATCH = "label_mismatch"
    #: Something about a marking an officer must act on (declassification date passed, a paragraph
    #: above the document's own level, a ★ with no period): `rule` says which.
    QUALITY = "quality"


class ErrorCode(str, enum.Enum):
    """Why (part of) a file could not be fully scanned. Stable values (markings.md §5)."""

    ENCRYPTED = "encrypted"
    CORRUPT = "corrupt"
    TOO_LARGE = "too_large"
    TOO_DEEP = "too_deep"
    BOMB = "bomb"
    TIMEOUT = "timeout"
    UNREADABLE = "unreadable"
    UNSUPPORTED = "unsupported"
    SKIPPED = "skipped"  # special files (FIFO, socket, device), symlinks leaving the tree
    CRASH = "crash"  # the worker scanning the file died (reported, never hidden)


@dataclass(frozen=True)
class Segment:
    """A piece of text as it stands in a document: a paragraph, a cell, a header, a property.

    Extractors emit segments; the classifier decides marking vs mention per segment, so the
    more an extractor says about where the text stands, the better that decision.
    """

    text: str
    #: Location inside the file: part, page, sheet/cell… (`word/header1.xml`, `page 2`).
    member: str | None = None
    #: Role of the element: body, header, footer, cell, property, subject, title, note, textbox…
    role: str = "body"
    #: True when the extractor knows this text is an element on its own (a cell, a header
    #: paragraph, a property value, a subject line) rather than a slice of running text.
    standalone: bool = False
    #: Ordinal of the element within its page/part (0 = first: the top of the page).
    index: int = 0
    #: For properties: the property's name (`密级`, `Classification`, `title`…).
    key: str | None = None


_new_object = object.__new__


def make_segment(text: str, member: str | None, role: str, standalone: bool, index: int,
                 key: str | None = None) -> Segment:
    """`Segment(text, member, role, standalone, index, key)`, built for extractors that emit one
    per paragraph or cell of a large document.

    A frozen dataclass's `__init__` sets each field through `object.__setattr__` (the frozen
    `__setattr__` refuses): six calls, half the cost of a .docx paragraph's segment (issue 17).
    This fills the instance's `__dict__` in one step, as unpickling does; the result is equal
    to, hashes like and is as frozen as the constructor's (a test holds the two together)."""
    seg = _new_object(Segment)
    seg.__dict__.update(text=text, member=member, role=role, standalone=standalone, index=index, key=key)
    return seg


@dataclass(frozen=True)
class Member:
    """A file inside a container (archive member, mail attachment) to be scanned recursively."""

    name: str
    data: bytes


@dataclass(frozen=True)
class ScanError:
    error: ErrorCode
    detail: str = ""
    member: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {"member": self.member, "error": self.error.value, "detail": self.detail}


@dataclass(frozen=True)
class Marking:
    """A parsed classification marking (the grammar's output, before context is weighed)."""

    level: Level
    #: Normalised text of the marking as found (`机密★10年`).
    text: str
    #: `{"years": n}`, `{"months": n}`, `"long_term"` or None.
    period: dict[str, int] | str | None = None
    #: ISO date `YYYY-MM-DD` when the form is 密级★解密时间.
    declassify_date: str | None = None
    #: Free text when the form is 密级★解密条件.
    declassify_condition: str | None = None
    #: Form variant: `star`, `bare`, `paragraph`, `banner`, `portion`, `label`, `property`.
    form: str = "star"
    #: True for older or irregular forms (`机密·10年`, `机密（10年）`, `秘　密`): 标注不规范.
    nonstandard: bool = False
    #: True when `解密` is annotated beside it: reported, does not classify.
    declassified: bool = False
    #: English caveats after `//` (NOFORN, REL TO …).
    caveats: tuple[str, ...] = ()
    #: For `internal` marks, which own classification: `work_secret` (工作秘密),
    #: `commercial_secret` (商密/商业秘密), `internal` (内部/仅限内部使用), `sensitive` (SBU/FOUO…).
    category: str | None = None
    #: An OCR-damaged banner (`T0P SECRET`): the form it was read as.
    read_as: str | None = None


@dataclass(frozen=True)
class Finding:
    level: Level | None
    kind: Kind
    text: str
    member: str | None = None
    rule: str = "cn.marking"
    confidence: float = 1.0
    period: dict[str, int] | str | None = None
    declassify_date: str | None = None
    declassify_condition: str | None = None
    nonstandard: bool = False
    declassified: bool = False
    #: Struck out and replaced by a newer marking: reported, does not classify.
    superseded: bool = False
    caveats: tuple[str, ...] = ()
    #: 1-based line within the segment's text (plain text: the file's line), when known.
    line: int | None = None
    #: See `Marking.category` / `Marking.read_as`.
    category: str | None = None
    read_as: str | None = None
    #: A short explanation in English for the officer (why this level, what disagrees).
    detail: str | None = None

    def to_record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "level": self.level.value if self.level else None,
            "kind": self.kind.value,
            "text": self.text,
            "member": self.member,
            "period": self.period,
            "rule": self.rule,
            "confidence": round(self.confidence, 3),
        }
        if self.declassify_date:
            rec["declassify_date"] = self.declassify_date
        if self.declassify_condition:
            rec["declassify_condition"] = self.declassify_condition
        if self.nonstandard:
            rec["nonstandard"] = True
        if self.declassified:
            rec["declassified"] = True
        if self.superseded:
            rec["superseded"] = True
        if self.caveats:
            rec["caveats"] = list(self.caveats)
        if self.line is not None:
            rec["line"] = self.line
        if self.category:
            rec["category"] = self.category
        if self.read_as:
            rec["read_as"] = self.read_as
        if self.detail:
            rec["detail"] = self.detail
        return rec


@dataclass(frozen=True)
class FileResult:
    """Everything the scan learned about one top-level file."""

    path: str
    findings: tuple[Finding, ...] = ()
    errors: tuple[ScanError, ...] = ()
    size: int | None = None
    mime: str | None = None
    sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def level(self) -> Level | None:
        """Highest level among classifying markings (declassified marks do not count)."""
        return max_level(f.level for f in self.findings if f.kind is Kind.MARKING and not f.declassified and not f.superseded)

    @property
    def complete(self) -> bool:
        return not self.errors

    def to_record(self) -> dict[str, Any]:
        lv = self.level
        rec: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "path": self.path,
            "level": lv.value if lv else None,
            "findings": [f.to_record() for f in self.findings],
            "errors": [e.to_record() for e in self.errors],
        }
        if self.size is not None:
            rec["size"] = self.size
        if self.mime:
            rec["mime"] = self.mime
        if self.sha256:
            rec["sha256"] = self.sha256
        rec.update(self.extra)
        return rec


def clean_result(path: str, size: int, mime: str, sha256: str | None) -> FileResult:
    """`FileResult(path, size=size, mime=mime, sha256=sha256)`: the result of a file with no finding
    and no error, the common one of a tree scan, built in one step as `make_segment` builds a
    segment (the constructor's seven `object.__setattr__` calls were ~1.1 µs of a cleared text
    file's ~45 µs; issue 17). Equal to the constructor's; a test holds the two together."""
    res = _new_object(FileResult)
    res.__dict__.update(path=path, findings=(), errors=(), size=size, mime=mime, sha256=sha256, extra={})
    return res


ExtractItem = Segment | Member | ScanError | Finding
