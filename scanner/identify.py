"""Type by content, never by name.

libmagic (python-magic, one handle per process, given the first bytes) types every item that is
not plain text. Plain text is recognised first by a cheap content test — no control bytes, no
BOM, no markup, RTF, PDF or PostScript start, no tag in its first 2 KiB, nothing libmagic or the
mail reader takes for the start of a mail or news message — because libmagic spends 1–3 ms per
text file on its text heuristics, which would dominate a scan of a text tree; such items get
`text/plain`.
"""
from __future__ import annotations

import ctypes
import os
import re
import threading
from collections.abc import Callable

import magic

from scanner.extractors.mail import KNOWN_HEADERS, SNIFF_BYTES, looks_like_mail

HEAD = 64 * 1024
_local = threading.local()
# Bytes that never occur in plain text (NUL and C0 controls other than \t \n \v \f \r ESC).
_CONTROLS = bytes([*range(0x00, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F])


#: `_CONTROLS` but NUL: `strcspn(first, _NOT_TEXT)` is where `first` (holding no NUL) has its
#: first control byte, its length when it has none.
_NOT_TEXT = _CONTROLS[1:]


def _py_strcspn(data: bytes, chars: bytes) -> int:
    """`strcspn` in Python (for where the C library cannot be reached): where `data` first holds
    a byte of `chars` or a NUL (which ends a C string), its length when it holds neither."""
    return min((i for i in map(data.find, (bytes([c]) for c in chars + b"\0")) if i >= 0), default=len(data))


def _load_strcspn() -> Callable[[bytes, bytes], int]:
    """The C library's `strcspn`, given a bytes object's own buffer (CPython ends every one with a
    NUL, so a bytes object is a C string that ends at its first NUL): ~1.0 µs over 2 KiB, where
    deleting the control bytes (`translate`) cost ~1.6 µs and a regex ~10 (issue 17)."""
    try:
        fn = ctypes.CDLL(None).strcspn
        fn.argtypes, fn.restype = (ctypes.c_char_p, ctypes.c_char_p), ctypes.c_size_t
        if fn(b"ab\x01c", _NOT_TEXT) == 2 and fn(b"abc", _NOT_TEXT) == 3:
            return fn  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        pass
    return _py_strcspn


#: `strcspn(data, chars)`: where `data` first holds a byte of `chars` or a NUL, else its length.
strcspn = _load_strcspn()
#: A first line naming a header, and the names that make it the start of a mail or news message:
#: for libmagic (message/rfc822, message/news: the mail reader's types) or for the mail reader
#: (its well-known headers). Other header-shaped first lines (`Format:` opening every Debian
#: copyright file, `Title:`, `Version:`) are text: libmagic said text/plain of them, for ~3 ms.
_HEADER_NAME = re.compile(rb"([A-Za-z][A-Za-z0-9-]{0,75}):")
_MAIL_NAMES = frozenset({n.encode() for n in KNOWN_HEADERS} | {b"path", b"xref", b"relay-version", b"article",
                                                               b"newsgroups"})
#: libmagic's other openings of a mail or news text.
_MAIL_OPENINGS = (b"From ", b"Forward to ", b"Pipe to ", b"#! rnews", b"N#! rnews", b"Article ")
#: How much of an item `is_plain_text` is given: what the mail reader's sniffer reads.
PLAIN_HEAD = SNIFF_BYTES
#: Markup anywhere in the head: a comment, doctype or processing instruction, or a tag (a name
#: followed by a space, `>` or `/>`). Not a mail address or link in angle brackets (`<a@b.org>`,
#: `<https://…>`), which nearly every changelog, copyright file and mail quote holds: such texts
#: were handed to libmagic for its ~3 ms only to be called text/plain or a script type, and read
#: by the same text extractor (a copy of /usr/share/doc, OCR off: 1,671 of 7,325 items, 17 % of
#: the scan's CPU; issue 17).
_TAG = re.compile(rb"<(?:[!?]|/?[A-Za-z][A-Za-z0-9:_.-]*(?:\s|/?>))")


def _handle() -> magic.Magic:
    # python-magic handles are not thread-safe and must not cross a fork: one per thread & pid.
    h = getattr(_local, "handle", None)
    if h is None or getattr(_local, "pid", None) != os.getpid():
        h = magic.Magic(mime=True)
        _local.handle, _local.pid = h, os.getpid()
    return h


def is_plain_text(head: bytes) -> bool:
    """True for bytes that are plain text needing no format-specific reader (`head`: the item,
    or at least its first `PLAIN_HEAD` bytes; nothing past those is looked at, so a caller holding
    the whole item passes it as it is: a copy of its head cost ~0.5 µs of a 32 KB text file).

    NUL in the first 8 KiB (memchr speed, `find` within the bytes: no copy) or another C0
    control byte in the first 2 KiB means binary; a regex over the whole 8 KiB cost ~15 µs a
    file on a text tree, and one over the 2 KiB still ~15 µs where deleting the control bytes
    (`translate`) costs ~1.6, and `strcspn` ~1 (the head holds no NUL by then)."""
    if not head or head.find(b"\x00", 0, 8192) >= 0:
        return False
    first = head[:2048]
    if strcspn(first, _NOT_TEXT) != len(first):
        return False
    start = first.lstrip()
    if start[:3] == b"\xef\xbb\xbf":
        start = start[3:].lstrip()
    if start.startswith((b"<", b"{\\rtf", b"%PDF", b"%!", b"\xfe\xff", b"\xff\xfe")):
        return False
    if b"<" in start and _TAG.search(start):
        return False
    if start.startswith(_MAIL_OPENINGS) or looks_like_mail(head):
        return False
    m = _HEADER_NAME.match(start)
    return m is None or m.group(1).lower() not in _MAIL_NAMES


def identify(data: bytes) -> str:
    """MIME type of `data`, judged from its content."""
    if not data:
        return "application/x-empty"
    if is_plain_text(data):
        return "text/plain"
    try:
        return str(_handle().from_buffer(data[:HEAD]))
    except Exception:  # libmagic can fail on odd input; the extractors' sniffers still look
        return "application/octet-stream"
