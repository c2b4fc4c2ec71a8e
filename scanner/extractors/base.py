"""The extractor interface: one module per format family turns bytes into located text.

An extractor receives the bytes of one file (or container member) and yields
- `Segment`s: text as it stands in the document, with its location and role;
- `Member`s: embedded files (archive members, attachments) that the engine identifies by content
  and scans recursively, addressing them as `outer!inner`;
- `Finding`s: what it can tell without text (the text reader reports the level words the YARA
  triage saw in bytes that hold no marking-shaped text, without decoding them);
- `ScanError`s: what it could not read (`encrypted`, `corrupt`, `bomb`…), never an exception for
  bad input: exceptions are for bugs (the engine still turns them into a `corrupt` error record).

Extractors are registered as `baomi.extractors` entry points (setup.cfg) so a site can add one
without forking; `scanner.extractors.registry` picks one by content type.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from scanner.model import ExtractItem


@dataclass(frozen=True)
class Limits:
    """Resource limits for one top-level file and everything nested in it."""

    max_depth: int = 8  # container nesting (zip in zip in mail …)
    max_member_size: int = 256 * 1024 * 1024  # one decompressed member
    max_total_size: int = 1024 * 1024 * 1024  # all decompressed bytes of one top-level file
    max_ratio: float = 200.0  # decompressed/compressed for a member larger than 1 MiB
    max_members: int = 20_000
    max_file_size: int = 4 * 1024 * 1024 * 1024  # top-level files larger are `too_large`


class Budget:
    """Decompression budget shared by every container level of one top-level file."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.used = 0
        self.members = 0

    def take(self, nbytes: int) -> bool:
        """Account for `nbytes` of decompressed output; False when the file exceeds its budget."""
        self.used += nbytes
        return self.used <= self.limits.max_total_size

    def take_member(self) -> bool:
        self.members += 1
        return self.members <= self.limits.max_members

    @property
    def spent(self) -> bool:
        """The file's decompressed bytes already exceed its budget: every later part would too."""
        return self.used > self.limits.max_total_size


@dataclass
class Context:
    """What an extractor knows about the item it is reading."""

    #: Container path of the item inside the top-level file (`a.zip!b/c.docx`), None at top level.
    member: str | None
    #: Nesting depth: 0 for the top-level file.
    depth: int
    mime: str
    limits: Limits
    budget: Budget
    #: File name (last path component) as given, for extractors that care (never used to type).
    name: str = ""
    #: The YARA level-word prefilter: False means the bytes cannot hold a marking in any
    #: encoding, so a text extractor need not decode them. None: no prefilter (decode always).
    prefilter: Callable[[bytes], bool] | None = None
    #: The scan's OCR settings (`scanner.ocr.OcrSettings`: mode and this process's budget).
    ocr: object | None = None
    #: Offsets of marking-shaped bytes (the prefilter's string matches): where text runs are read
    #: out of binary bytes. None: around every bare anchor (slower on large random data).
    anchors: Callable[[bytes], list[int]] | None = None

    def sub(self, part: str | None) -> str | None:
        """Join a location inside the current item (`word/header1.xml`) to its container path."""
        if part is None:
            return self.member
        return f"{self.member}!{part}" if self.member else part


class Extractor:
    """Base class. Subclasses set `name` and `mimetypes`, and implement `extract`."""

    #: Stable id of the extractor (`ooxml`, `pdf`, `text`…).
    name: ClassVar[str] = ""
    #: MIME types (as python-magic reports them) this extractor reads.
    mimetypes: ClassVar[tuple[str, ...]] = ()
    #: Higher wins when two extractors claim the same type.
    priority: ClassVar[int] = 0

    @classmethod
    def sniff(cls, data: bytes, mime: str) -> bool:
        """Does this extractor read `data`? Default: libmagic's type is one of `mimetypes`.

        Override for types libmagic reports generically (a zip may be OOXML, ODF, OFD or an
        archive; an OLE2 file may be .doc, .xls, .ppt, .wps, .et, .dps or .msg). `data` is the
        whole item, so a zip's central directory or an OLE2 directory can be inspected."""
        return mime in cls.mimetypes

    def extract(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        raise NotImplementedError
