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
import tempfile
import threading
from pathlib import Path
from typing import Any

from rules.loader import SHIPPED_DIR, PrefilterSpec, default_cache_dir, ends, prefilter_spec

_hs: Any
try:  # optional: see the module docstring
    import hyperscan as _hs
except ImportError:  # pragma: no cover - exercised by tests that hide the module
    _hs = None


def _esc(b: bytes) -> str:
    return "".join(f"\\x{x:02X}" for x in b)


def expressions(spec: PrefilterSpec) -> list[tuple[str, bool]]:
    """(Hyperscan expression, dot matches all) for every string of the spec."""
    out = [(s.regex if s.regex is not None else _esc(s.literal or b""), False) for s in (*spec.cn, *spec.english)]
    for cr in spec.close:
        leads = "(?:" + "|".join(_esc(b) for b in cr.lead_bytes()) + ")"
        out += [(leads + "." * cr.cut + _esc(s.literal or b""), True) for s in cr.strings]
    return out


class ShapeFilter:
    """`filter(data)` → True when `data` holds a marking shape (what the YARA prefilter says)."""

    def __init__(self, db: Any, ends: tuple[bytes, ...]) -> None:
        self._db = db
        self._ends = ends
        self._local = threading.local()  # a Hyperscan scratch may serve one scan at a time

    def _scratch(self) -> Any:
        s = getattr(self._local, "scratch", None)
        if s is None:
            s = self._local.scratch = _hs.Scratch(self._db)
        return s

    def __call__(self, data: bytes) -> bool:
        if data.endswith(self._ends):
            return True
        try:
            self._db.scan(data, match_event_handler=_stop, scratch=self._scratch())
        except _hs.ScanTerminated:
            return True  # the first hit ends the scan
        return False


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
        db = None
        if path.is_file() and path.stat().st_uid == os.getuid():
            try:
                db = _hs.loadb(path.read_bytes(), _hs.HS_MODE_BLOCK)
            except _hs.HyperscanError:
                db = None  # a corrupt or foreign-platform cache entry is rebuilt
        if db is None:
            db = _compile(prefilter_spec())
            _save(path, _hs.dumpb(db))
        flt = ShapeFilter(db, ends())
        flt(b"")  # allocates this thread's scratch; fails here, not mid-scan, on an unsupported CPU
        return flt
    except _hs.HyperscanError:
        return None


def _save(path: Path, blob: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs compile time
