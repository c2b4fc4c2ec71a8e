"""The shipped prefilter at memory speed: the marking shapes of `rules.loader.prefilter_spec`
compiled into one Hyperscan database (issue 17, goal 1).

YARA verifies each atom hit of each string one by one; in secrecy prose, where 密 and its
neighbours are everywhere, that kept the prefilter near 390 MB/s a core. Hyperscan scans the
same ~1,550 byte strings and regexes as one automaton (SIMD literal matching, a shared NFA for
the English regexes) and stops at the first hit — measured by bench/prefilter_engines.py.

The database is built from the same `PrefilterSpec` that rules/yara/levels.yar is rendered from,
pattern for pattern, so `ShapeFilter(data)` decides exactly as the YARA rules do:
- a literal string → its bytes; a YARA regex → the same regex (`^`/`$` = start/end of the data
  in both, `.` not matching a newline in both);
- a `shape_close_*` rule (密 + a closing bracket, counted only after a level character whose
  last two bytes stand right before it) → one regex `(lead|lead…)` + any `cut` bytes + string,
  which is what `uintNN(@[i] - 2 - cut) == lead` tests at each hit;
- data ending in 密 → `bytes.endswith`.
tests/rules/test_shapes.py compares the two engines on the corpus and on crafted edge bytes.

Hyperscan is optional: without the module (or on a CPU it does not support) `load()` returns
None and the caller keeps the YARA rules, with the same decisions, only slower.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from rules.loader import (
    SHIPPED_DIR,
    PrefilterSpec,
    default_cache_dir,
    ends,
    own_cache_entry,
    prefilter_spec,
    save_cache_entry,
)

_hs: Any
try:  # optional: see the module docstring
    import hyperscan as _hs
except ImportError:  # pragma: no cover - exercised by tests that hide the module
    _hs = None


def _esc(b: bytes) -> str:
    return "".join(f"\\x{x:02X}" for x in b)


#: Literals this short are tested apart from the database: UTF-16 ★/☆ are two bytes (05 26,
#: 26 05 …), which Hyperscan's literal matcher filters poorly (they cost a quarter of the pass),
#: while a one-byte find for their control byte (05, 06) runs at memchr speed.
SHORT = 2


def short_literals(spec: PrefilterSpec) -> tuple[bytes, ...]:
    """The spec's literal strings of at most `SHORT` bytes (see `SHORT`)."""
    return tuple(s.literal for s in (*spec.cn, *spec.english) if s.literal is not None and len(s.literal) <= SHORT)


def expressions(spec: PrefilterSpec) -> list[tuple[str, bool]]:
    """(Hyperscan expression, dot matches all) for every string of the spec but the short ones."""
    out = [(s.regex if s.regex is not None else _esc(s.literal or b""), False) for s in (*spec.cn, *spec.english)
           if s.literal is None or len(s.literal) > SHORT]
    for cr in spec.close:
        leads = "(?:" + "|".join(_esc(b) for b in cr.lead_bytes()) + ")"
        out += [(leads + "." * cr.cut + _esc(s.literal or b""), True) for s in cr.strings]
    return out


class ShapeFilter:
    """`filter(data)` → True when `data` holds a marking shape (what the YARA prefilter says)."""

    def __init__(self, db: Any, ends: tuple[bytes, ...], short: tuple[bytes, ...] = ()) -> None:
        self._db = db
        self._ends = ends
        # Each short literal behind a one-byte test (memchr speed; a two-byte `in` is not): its
        # rarest byte in text, a control character where it has one (05 for UTF-16 ★ 05 26).
        gates: dict[bytes, list[bytes]] = {}
        for lit in short:
            b = min(lit, key=lambda x: (x >= 0x20 or x in b"\t\n\r", x))
            gates.setdefault(bytes([b]), []).append(lit)
        self._short = tuple((g, tuple(v)) for g, v in gates.items())
        # A byte every short literal holds (the `&` of UTF-16 ★ and ☆, 26 hex) is looked for
        # first: text without one (CJK prose) costs one memchr pass instead of one per gate, ~2 µs
        # of a 32 KB cleared file (issue 17); text with one finds it early. b"" when there is
        # none: `b"" in data` holds, the gates run as they did.
        common = set.intersection(*(set(lit) for lit in short)) if short else set()
        self._common = bytes([min(common)]) if common else b""
        self._local = threading.local()  # a Hyperscan scratch may serve one scan at a time

    def _scratch(self) -> Any:
        s = getattr(self._local, "scratch", None)
        if s is None:
            s = self._local.scratch = _hs.Scratch(self._db)
        return s

    def __call__(self, data: bytes) -> bool:
        if data.endswith(self._ends) or len(data) >= _MAX_BLOCK:
            return True  # (a block beyond Hyperscan's length field is passed on, never cleared)
        if self._common in data:
            for gate, lits in self._short:
                if gate in data and any(lit in data for lit in lits):
                    return True
        try:
            self._db.scan(data, match_event_handler=_stop, scratch=self._scratch())
        except _hs.ScanTerminated:
            return True  # the first hit ends the scan
        return False


#: Hyperscan takes a block's length as an unsigned 32-bit number. Plain text is streamed in 16 MB
#: chunks; only a --max-member-size above 2 GiB could bring a larger block here.
_MAX_BLOCK = 1 << 31


def _stop(_id: int, _start: int, _end: int, _flags: int, _ctx: object) -> bool:
    return True


def _compile(spec: PrefilterSpec) -> Any:
    exprs = expressions(spec)
    db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
    flags = [_hs.HS_FLAG_SINGLEMATCH | (_hs.HS_FLAG_DOTALL if dotall else 0) for _, dotall in exprs]
    db.compile(expressions=[e.encode("ascii") for e, _ in exprs], ids=list(range(len(exprs))),
               elements=len(exprs), flags=flags)
    return db


def load(cache_dir: str | Path | None = None) -> ShapeFilter | None:
    """The shape filter, compiled (~0.4 s) or loaded from the rules cache (< 1 ms); None when
    Hyperscan is not installed or cannot run here (the caller then keeps YARA), or when
    BAOMI_PREFILTER=yara asks for the reference engine."""
    if _hs is None or os.environ.get("BAOMI_PREFILTER", "").lower() == "yara":
        return None
    # Keyed by what the database is made of: the shipped rules (rendered from the spec; a test
    # holds them equal), this translation and the library's version. Building the spec to key
    # it would cost ~45 ms at every process start.
    h = hashlib.sha256(f"hyperscan {_hs.__version__}\0".encode())
    h.update((SHIPPED_DIR / "levels.yar").read_bytes() + b"\0" + Path(__file__).read_bytes())
    path = Path(cache_dir) if cache_dir else default_cache_dir()
    path = path / f"{h.hexdigest()}.hsdb"
    try:
        flt = None
        if own_cache_entry(path):
            flt = _from_cache(path.read_bytes())  # None: a corrupt or foreign cache entry, rebuilt
        if flt is None:
            spec = prefilter_spec()
            short = short_literals(spec)
            db = _compile(spec)
            blob = " ".join(x.hex() for x in short).encode("ascii") + b"\n" + _hs.dumpb(db)
            save_cache_entry(path, lambda tmp: Path(tmp).write_bytes(blob))  # short literals, then the database
            flt = ShapeFilter(db, ends(), short)
        flt(b"")  # allocates this thread's scratch; fails here, not mid-scan, on an unsupported CPU
        return flt
    except _hs.HyperscanError:
        return None


def _from_cache(blob: bytes) -> ShapeFilter | None:
    head, sep, body = blob.partition(b"\n")
    try:
        short = tuple(bytes.fromhex(x) for x in head.decode("ascii").split())
        db = _hs.loadb(body, _hs.HS_MODE_BLOCK) if sep else None
    except (ValueError, _hs.HyperscanError):
        return None
    return ShapeFilter(db, ends(), short) if db is not None else None

