"""Text runs out of binary bytes, as `strings -e` reads them, in every encoding the decoder knows.

A marking does not stop being the document's own classification because the bytes around it are
not text: a NUL byte before `绝密★长期`, a sparse hole before the first line, a database page or a
proprietary file format that stores the document's text between binary fields. Each run of text
is handed to the classifier as a text of its own (its first line is the top of that text), so a
marking that opens a run is weighed as the head of a document, and a level word inside a run's
sentence stays a mention.

Byte encodings (UTF-8, GB18030/GBK, Big5) never use C0 control bytes inside a character, so
runs are the stretches between control bytes; UTF-16 runs are found by their code units
(ASCII, CJK, CJK punctuation, fullwidth forms, stars) in either byte order.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from rules import vocabulary
from scanner.decode import decode
from scanner.identify import strcspn
from scanner.model import Segment

#: The role of a segment read out of binary bytes: classified as body text, and the scan record
#: says that its text came from runs (`text_source: runs`).
RUN_ROLE = "run"

#: Control bytes that end a run in a byte encoding (TAB, LF, VT, FF, CR stay inside text).
#: A terminal escape sequence (`ESC [ 1;31 m`) counts as control bytes as a whole.
_BYTE_BREAK = re.compile(rb"(?:\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0e-\x1f\x7f])+")
#: A UTF-16LE code unit that text is made of: ASCII and whitespace, CJK ideographs, CJK symbols
#: and punctuation (U+3000-303F), fullwidth forms (U+FF00-FFEF), General Punctuation and stars
#: (U+2000-27FF, ★ is U+2605), Latin-1 punctuation (·, NBSP).
_U16LE = re.compile(rb"(?:(?:[\x09\x0a\x0c\x0d\x20-\x7e\xa0-\xff]\x00)|[\x00-\xff][\x4e-\x9f]|[\x00-\x3f]\x30"
                    rb"|[\x00-\xef]\xff|[\x00-\xff][\x20-\x27]|[\x00-\xff][\x34-\x4d]){4,}", re.S)
_U16BE = re.compile(rb"(?:\x00[\x09\x0a\x0c\x0d\x20-\x7e\xa0-\xff]|[\x4e-\x9f][\x00-\xff]|\x30[\x00-\x3f]"
                    rb"|\xff[\x00-\xef]|[\x20-\x27][\x00-\xff]|[\x34-\x4d][\x00-\xff]){4,}", re.S)
#: A run is classified only when it could hold a marking (the marking vocabulary's anchors).
_ANCHORS = ("密", "內部", "内部", "SECRET", "CONFIDENTIAL", "ＳＥＣＲＥＴ", "ＣＯＮＦＩＤＥＮＴＩＡＬ", "UNCLAS")
#: At most this many runs per item go to the classifier (a crafted file of a million anchors
#: must not make the classifier's work unbounded); the rest is reported by the caller.
MAX_RUNS = 20_000
_MIN_BYTES = 4


_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
#: The control bytes of `_BYTE_BREAK` (an escape sequence starts with ESC, one of them) but NUL,
#: at which `strcspn` stops as at one of these.
_CONTROL_BYTES = bytes(b for b in range(1, 256) if b <= 0x08 or 0x0e <= b <= 0x1f or b == 0x7f)


def has_control_bytes(data: bytes | str) -> bool:
    """True when `data` holds a control byte (or, decoded, a control character) that no text
    contains: bytes that are not all text, whatever the decoder guessed."""
    if isinstance(data, str):
        return _CONTROL_CHARS.search(data) is not None
    # One C pass: strcspn stops at the first control byte or at a NUL, itself one (~17 µs for
    # 32 KB, where deleting every text byte, `translate`, took ~25; the regex search, whose
    # escape-sequence branch defeats re's literal-prefix scan, read ~15 MB/s: issue 17).
    return strcspn(data, _CONTROL_BYTES) != len(data)


class Run(NamedTuple):
    """A run of text found in binary bytes."""

    offset: int  # of its first byte in the data
    text: str  # cleaned for the classifier (length byte dropped, glued fields split)
    encoding: str
    decoded: str  # as decoded from the bytes at `offset`

    def byte_offset(self, fragment: str) -> int:
        """Offset of `fragment` (e.g. a marking's text) in the data, or of the run itself."""
        i = self.decoded.find(fragment)
        if i <= 0:
            return self.offset
        return self.offset + len(self.decoded[:i].encode(self.encoding, errors="replace"))


def run_segments(data: bytes, member: str | None, anchors: list[int] | None = None) -> Iterator[Segment]:
    """The runs of `data` as segments, at most `MAX_RUNS` (the first ones, by encoding pass)."""
    for n, run in enumerate(text_runs(data, anchors)):
        if n >= MAX_RUNS:
            return
        yield Segment(text=run.text, member=member, role=RUN_ROLE, index=0)


def text_runs(data: bytes, anchors: list[int] | None = None) -> Iterator[Run]:
    """Each run of text in `data` that holds a marking anchor.

    Only windows around anchor bytes are read (`WINDOW` either side of each, merged): a run that
    holds a marking holds an anchor, and 20 MB of random bytes split into millions of tiny runs
    made a whole-buffer sweep take a minute. A run longer than the window is read from the window's
    edge (its classification does not count it as a document's top there)."""
    seen: set[tuple[int, str]] = set()
    for lo, hi in _windows(data, anchors):
        for run in _runs_in(data[lo:hi]):
            key = (lo + run.offset, run.encoding)
            if key not in seen:
                seen.add(key)
                yield run._replace(offset=lo + run.offset)


#: Bytes read either side of an anchor, and the most windows read in one item.
WINDOW = 4096
MAX_WINDOWS = 4096


def _windows(data: bytes, anchors: list[int] | None = None) -> list[tuple[int, int]]:
    """Windows around the given marking-shaped offsets (the prefilter's hits), or else around
    every byte form of every anchor word."""
    hits: list[int] = list(anchors) if anchors is not None else []
    for needle in _WINDOW_ANCHORS if anchors is None else ():
        pos = data.find(needle)
        while pos != -1 and len(hits) < 16 * MAX_WINDOWS:
            hits.append(pos)
            pos = data.find(needle, pos + 1)
    if not hits:
        return []
    hits.sort()
    out: list[tuple[int, int]] = []
    for h in hits:
        lo, hi = max(0, h - WINDOW), min(len(data), h + WINDOW)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
        if len(out) > MAX_WINDOWS:
            break
    return out[:MAX_WINDOWS]


def _runs_in(data: bytes) -> Iterator[Run]:
    yield from _byte_runs(data)
    for pattern, enc in ((_U16LE, "utf-16-le"), (_U16BE, "utf-16-be")):
        for m in pattern.finditer(data):
            start = m.start()
            raw = m.group()
            if len(raw) % 2:
                raw = raw[:-1]
            decoded = raw.decode(enc, errors="replace")
            text = _clean(decoded)
            if _anchored(text):
                yield Run(start, text, enc, decoded)


def _byte_runs(data: bytes) -> Iterator[Run]:
    pos = 0
    for m in _BYTE_BREAK.finditer(data):
        if m.start() - pos >= _MIN_BYTES:
            yield from _decoded(data, pos, m.start())
        pos = m.end()
    if len(data) - pos >= _MIN_BYTES:
        yield from _decoded(data, pos, len(data))


def _decoded(data: bytes, start: int, end: int) -> Iterator[Run]:
    chunk = data[start:end]
    # Cheap test on the bytes before decoding: an anchor in some byte encoding, or ASCII banners.
    if not (b"SECRET" in chunk or b"CONFIDENTIAL" in chunk or b"UNCLAS" in chunk or _has_mi(chunk)):
        return
    decoded, enc = decode(chunk)
    text = _clean(decoded)
    if _anchored(text):
        yield Run(start, text, enc, decoded)


def _has_mi(chunk: bytes) -> bool:
    return any(b in chunk for b in _ANCHOR_BYTES)


#: One or two printable ASCII bytes glued before CJK text: the length or type byte of a length-
#: prefixed string (SQLite record headers, protobuf, Pascal strings) that happens to be printable.
_LENGTH_PREFIX = re.compile(r"^[\x21-\x7e]{1,2}(?=[\u3000-\u9fff\uff00-\uffef])")


#: A star-form marking that closes a line but is glued to text before it: binary formats store
#: fields side by side with no separator (a database row's title, level and body columns).
_GLUED = re.compile("(?<=\\S)(?=[" + vocabulary.LEVEL_FIRST + "]密[" + re.escape(vocabulary.STARS_RAW)
                    + "][^\\s。，；;,.]{1,16}[ \\t]*(?:\\r?\\n|$))")


def _clean(text: str) -> str:
    return _GLUED.sub("\\n", _LENGTH_PREFIX.sub("", text, count=1))


def _anchored(text: str) -> bool:
    return any(a in text for a in _ANCHORS)


def _encodings_of(word: str) -> set[bytes]:
    out = set()
    for enc in ("utf-8", "gb18030", "big5"):
        try:
            out.add(word.encode(enc))
        except UnicodeEncodeError:
            pass
    return out


_ANCHOR_BYTES: tuple[bytes, ...] = tuple(set().union(*(_encodings_of(w) for w in ("密", "内部", "內部",
                                                                                   "ＳＥＣＲＥＴ"))))


#: Byte forms of every anchor in every encoding runs are read in (windows are opened around them).
_WINDOW_ANCHORS: tuple[bytes, ...] = tuple(sorted(
    set(_ANCHOR_BYTES)
    | {w.encode(e) for w in ("密", "内部", "內部", "ＳＥＣＲＥＴ", "SECRET", "CONFIDENTIAL", "UNCLAS")
       for e in ("utf-16-le", "utf-16-be")}
    | {b"SECRET", b"CONFIDENTIAL", b"UNCLAS"}))
