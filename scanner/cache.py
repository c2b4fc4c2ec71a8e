"""Incremental scan cache: an unchanged file is re-verified at stat speed.

A SQLite table keyed by (device, inode) holds, for each file scanned, its size, mtime_ns and
ctime_ns at scan time, the digest of the scan configuration (rules, keywords, limits and the
scanner's own code) and the file's record (with its SHA-256, kept for copy tracking). A lookup
hits only when all of these match, so any change to the file or to the rules forces a rescan.

Safety: the database lives in a per-user directory (0700) and is refused — the scan runs without
a cache — when it is owned by another user or writable by group/others, so no one can plant
"clean" verdicts for someone else. WAL mode and a busy timeout let concurrent scans share it.
Records with transient errors (timeout, crash, unreadable) are never cached.

Bulk read (issue 17): besides the per-file rows, each configuration has one *snapshot* row — every
entry's stat key packed in two machine arrays and every record's text joined by newlines — so that
opening the cache for a rescan is one query and a few C-level conversions, not 100,000 rows turned
into Python tuples (that alone cost 0.4 s a 100k-file rescan). Clean entries and the others (with
findings or errors, a few per cent) are kept in separate columns, the small ones first: a rescan
whose directories are unchanged reads only the directory records and the other entries, and the
clean part (9 of 10 MB for 100,000 files) is read only when a directory changed (`all_clean`,
`not_clean`) or a whole clean record is asked for. The rows stay the authority: a missing, foreign
or outdated snapshot is rebuilt from them. A snapshot is written when a scan that stored records
closes; one left behind by a concurrent scan only misses entries (each key holds the file's whole
stat, so an entry never answers for a changed file), and a miss is a rescan, never a wrong verdict.
"""
from __future__ import annotations

import array
import hashlib
import itertools
import json
import os
import sqlite3
import stat
import struct
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from scanner.model import SCHEMA_VERSION

_TRANSIENT = {"timeout", "crash", "unreadable"}
#: Compact form of a clean file's record: `clean:SIZE\tMIME\tSHA256`.
_CLEAN = "clean:"
#: The shared record of a clean cached file when the caller does not need its own (read-only).
CLEAN: dict[str, Any] = {"schema": SCHEMA_VERSION, "path": None, "level": None, "findings": [], "errors": []}
_CLEAN_KEYS = {"schema", "level", "findings", "errors", "size", "mime", "sha256"}
_CLEAN_RECORD_KEYS = frozenset(_CLEAN_KEYS | {"path"})
_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    dev INTEGER NOT NULL, ino INTEGER NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    config TEXT NOT NULL, sha256 TEXT, record TEXT NOT NULL,
    PRIMARY KEY (dev, ino)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots_v5 (
    config TEXT PRIMARY KEY, format TEXT NOT NULL, generation INTEGER NOT NULL, written REAL NOT NULL,
    n_clean INTEGER NOT NULL, n_other INTEGER NOT NULL,
    other_ids BLOB NOT NULL, other_times BLOB NOT NULL, other_texts BLOB NOT NULL, dirs BLOB NOT NULL,
    clean_ids BLOB NOT NULL, clean_times BLOB NOT NULL, clean_texts BLOB NOT NULL
);
DROP TABLE IF EXISTS snapshots_v4;
DROP TABLE IF EXISTS snapshots;
"""
# Column order matters: SQLite reaches a column stored after a large blob only by walking that
# blob's overflow pages, so the columns every rescan reads come before the clean part.
# A rowid table (v5; v4 was WITHOUT ROWID): there, finding a row by its key compared the key with
# whole rows, every one read with all its overflow pages (~10 MB a 100,000-file snapshot: 15-50 ms
# of every rescan's start); here the key is looked up in config's own index, then the row by rowid.
#: Layout of a snapshot's arrays: dev, ino, size as unsigned and mtime_ns, ctime_ns as signed 64-bit
#: integers in this machine's byte order (a cache file moved to another machine is rebuilt).
_SNAPSHOT_FORMAT = f"v5-{sys.byteorder}-Q{array.array('Q').itemsize}q{array.array('q').itemsize}"
#: Snapshots kept (configurations scanned with most recently); older ones are dropped.
_SNAPSHOTS_KEPT = 4
StatKey = tuple[int, int, int, int, int]  # dev, ino, size, mtime_ns, ctime_ns
#: A directory record's header in a snapshot: the directory's dev and ino, the SHA-256 of its files'
#: packed stat keys (`scanner.walk.DirFiles.packed`), that of their listing as find prints it
#: (`scanner.listing.listing_digest`; zeros: none) and how many of them are not clean (v5: the
#: listing digest added).
_DIR_HEAD = struct.Struct("=QQ32s32sI")
_NO_LISTING = bytes(32)


def default_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "baomi" / "scan-cache.sqlite"


def code_digest(root: str | None = None) -> str:
    """Digest of the scanner's code and shipped rules: a new version invalidates the cache.

    Taken over each file's path, size, mtime and ctime, not its bytes: hashing the ~1 MB of source
    was a fifth of a cached rescan's start-up (issue 17). Installing or editing a file changes its
    ctime, which no one can set back, so no changed code is missed; a mere touch only costs a rescan."""
    h = hashlib.sha256()
    root = root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for pkg in ("scanner", "rules"):
        for d, subdirs, names in os.walk(os.path.join(root, pkg)):
            subdirs.sort()
            for n in sorted(names):
                if n.endswith((".py", ".yar")):
                    p = os.path.join(d, n)
                    st = os.stat(p)
                    if stat.S_ISREG(st.st_mode):
                        h.update(f"{os.path.relpath(p, root)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\n"
                                 .encode("utf-8", "surrogateescape"))
    return h.hexdigest()


class CacheRefused(Exception):
    """The cache file is not safe to trust (owner or permissions)."""


class ScanCache:
    def __init__(self, path: str | Path, config_digest: str) -> None:
        self.path = Path(path)
        self.config = config_digest
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.path.exists():
            st = self.path.stat()
            if st.st_uid != os.getuid():
                raise CacheRefused(f"{self.path} belongs to uid {st.st_uid}, not to this user")
            if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                raise CacheRefused(f"{self.path} is writable by other users")
        else:
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
        self.db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=30000")
        self.db.executescript(_SCHEMA)
        #: This configuration's entries (see `_read`): stat keys as (dev, ino, size) and (mtime_ns,
        #: ctime_ns) sequences and record texts, for clean and other entries apart. The clean part
        #: of a snapshot is read only when needed (`_load_clean`).
        self._cids: Sequence[int] = ()
        self._ctimes: Sequence[int] = ()
        self._oids: Sequence[int] = ()
        self._otimes: Sequence[int] = ()
        self._n_clean = self._n_other = 0
        self._clean_blob = self._other_blob = b""
        self._read_done = self._clean_loaded = False
        self._clean: set[StatKey] | None = None
        self._other: dict[StatKey, str] | None = None
        self._clean_text: dict[StatKey, str] | None = None
        #: Generation of the snapshot this state was read from; None: read from the rows (no snapshot).
        self._generation: int | None = None
        #: Directory records: (dev, ino) of a directory → (SHA-256 of its files' packed stat keys,
        #: positions of those without a clean verdict), as of the scan that wrote them (see `dir_unchanged`).
        self._dirs_blob = b""
        self._dirs: dict[tuple[int, int], tuple[bytes, bytes, list[int]]] | None = None
        #: Directories checked file by file (`note_dir`), each resolved as its files' verdicts arrive,
        #: and the stat keys still awaited for them: only files in flight, not a million keys.
        self._noted: dict[tuple[int, int], _DirTrack] = {}
        self._wanted: dict[StatKey, list[tuple[_DirTrack, int, bool]]] = {}
        #: Records stored by this process, by (dev, ino): what the next snapshot adds to the loaded one,
        #: while there are at most _DELTA_MAX of them; beyond, the snapshot is rebuilt from the rows.
        self._delta: dict[tuple[int, int], tuple[StatKey, str]] = {}
        self._delta_overflow = False
        self._stored = 0
        self._pending: list[tuple[Any, ...]] = []

    def _read(self) -> None:
        """Load this configuration's other entries and directory records from its snapshot when
        there is one (the clean part waits for `_load_clean`), else every entry from its rows."""
        if self._read_done:
            return
        self._read_done = True
        try:
            row = self.db.execute("SELECT format, generation, n_clean, n_other, other_ids, other_times, other_texts, "
                                  "dirs FROM snapshots_v5 WHERE config = ?", (self.config,)).fetchone()
        except sqlite3.OperationalError:
            row = None  # a snapshot table of another layout: the rows serve (and it is not written)
        if row is not None and row[0] == _SNAPSHOT_FORMAT:
            ids, times = array.array("Q"), array.array("q")
            try:
                ids.frombytes(row[4])
                times.frombytes(row[5])
                n = row[3]
                whole = (len(ids) == 3 * n and len(times) == 2 * n and row[2] >= 0 and _lines(row[6]) == n
                         and isinstance(row[7], bytes))
            except (ValueError, TypeError):
                whole = False  # a damaged snapshot: the rows are read instead
            if whole:
                self._oids, self._otimes, self._n_other, self._n_clean = ids, times, row[3], row[2]
                self._other_blob, self._dirs_blob, self._generation = row[6], row[7], row[1]
                return
        self._read_rows()

    def _load_clean(self) -> None:
        """The clean part of the snapshot read by `_read` (the same generation), or, when it is
        damaged or another scan replaced the snapshot meanwhile, every entry from the rows."""
        self._read()
        if self._clean_loaded:
            return
        self._clean_loaded = True
        row = self.db.execute("SELECT clean_ids, clean_times, clean_texts FROM snapshots_v5 "
                              "WHERE config = ? AND generation = ? AND format = ?",
                              (self.config, self._generation, _SNAPSHOT_FORMAT)).fetchone()
        ids, times, nc = array.array("Q"), array.array("q"), self._n_clean
        try:
            ids.frombytes(row[0])
            times.frombytes(row[1])
            whole = len(ids) == 3 * nc and len(times) == 2 * nc and _lines(row[2]) == nc
        except (ValueError, TypeError):  # no such row (TypeError on None), or a damaged one
            whole = False
        if whole:
            self._cids, self._ctimes, self._clean_blob = ids, times, row[2]
            return
        self._read_rows()
        self._other = self._clean = self._clean_text = None  # built again from the rows

    @staticmethod
    def _zip(ids: Sequence[int], times: Sequence[int]) -> Iterator[StatKey]:
        """Stat keys from packed (dev, ino, size) and (mtime_ns, ctime_ns) sequences, built by C code."""
        return zip(ids[0::3], ids[1::3], ids[2::3], times[0::2], times[1::2], strict=True)

    @staticmethod
    def _split(blob: bytes, n: int) -> list[str]:
        # Record texts hold no newline (compact JSON escapes it; clean texts are size, MIME, hash).
        return blob.decode("utf-8", "surrogatepass").split("\n") if n else []

    def _clean_set(self) -> set[StatKey]:
        if self._clean is None:
            self._load_clean()
            self._clean = set(self._zip(self._cids, self._ctimes))
        return self._clean

    def _others(self) -> dict[StatKey, str]:
        """Entries with findings or errors (a few per cent of a tree): parsed only when looked up."""
        if self._other is None:
            self._read()
            self._other = dict(zip(self._zip(self._oids, self._otimes), self._split(self._other_blob, self._n_other),
                                   strict=True))
        return self._other

    def _dir_records(self) -> dict[tuple[int, int], tuple[bytes, bytes, list[int]]]:
        if self._dirs is None:
            self._read()
            dirs: dict[tuple[int, int], tuple[bytes, bytes, list[int]]] = {}
            blob, off = self._dirs_blob, 0
            try:
                while off < len(blob):
                    dev, ino, digest, listing, n_pos = _DIR_HEAD.unpack_from(blob, off)
                    off += _DIR_HEAD.size
                    pos = array.array("I")
                    pos.frombytes(blob[off: off + 4 * n_pos])
                    off += 4 * n_pos
                    if len(pos) != n_pos:
                        raise ValueError("truncated")
                    dirs[dev, ino] = (digest, listing, pos.tolist())
            except (struct.error, ValueError):
                dirs = {}  # damaged: every directory is checked file by file
            self._dirs = dirs
        return self._dirs

    def dir_unchanged(self, dir_id: tuple[int, int], packed: bytes) -> list[int] | None:
        """Positions of the files to look up one by one (those with findings or errors) when this
        directory's files are exactly those of a directory record — same stat keys in the same
        order, so every other file is clean — else None (and the caller checks file by file)."""
        rec = self._dir_records().get(dir_id)
        # A SHA-256 of the keys, not the keys: the record is 40 bytes a directory instead of 40 a file,
        # and a collision (a changed directory with the same digest) is out of anyone's reach.
        return rec[2] if rec is not None and rec[0] == hashlib.sha256(packed).digest() else None

    def has_dir_records(self) -> bool:
        """Whether this configuration's snapshot holds directory records (a tree was scanned)."""
        return bool(self._dir_records())

    def listing_unchanged(self, dir_id: tuple[int, int], listing: bytes) -> list[int] | None:
        """`dir_unchanged` for a directory as find listed it: `listing` is the digest of its files'
        names and stat keys (`scanner.listing`), compared with the one recorded with the directory."""
        rec = self._dir_records().get(dir_id)
        return rec[2] if rec is not None and rec[1] == listing and listing != _NO_LISTING else None

    def note_dir(self, dir_id: tuple[int, int], packed: bytes, listing: bytes | None = None) -> None:
        """A directory checked file by file: recorded when this process closes the cache, if every
        one of its files then has a cached verdict (with `listing`, the digest of its listing, when
        it has one: see `listing_unchanged`).

        Each file's verdict is settled now when known (stored by this process, or in the snapshot
        read) and else when `store` gets it: the directory's keys are not kept until the end (a
        first scan of a million files held 40 MB of them, and sets of every entry to check them)."""
        from scanner.walk import unpack_keys

        track = _DirTrack(hashlib.sha256(packed).digest(), listing or _NO_LISTING)
        self._noted[dir_id] = track  # a directory walked twice: the last walk's files count
        keys = unpack_keys(packed)
        self._read()
        delta = self._delta
        others = self._others() if self._n_other else {}
        clean = self._clean_set() if self._n_clean else frozenset()
        wanted = self._wanted
        for pos, key in enumerate(keys):
            stored = delta.get((key[0], key[1]))
            if stored is not None and stored[0] == key:
                if not stored[1].startswith(_CLEAN):
                    track.other.add(pos)
                continue
            if key in others:
                track.other.add(pos)  # until a rescan of it (a passed 解密时间) stores another verdict
                wanted.setdefault(key, []).append((track, pos, False))
            elif key not in clean:
                track.missing += 1
                wanted.setdefault(key, []).append((track, pos, True))

    def all_clean(self, keys: Iterable[StatKey]) -> bool:
        """Every one of these stat keys has a cached clean verdict (one C-level subset test)."""
        return self._clean_set().issuperset(keys)

    def not_clean(self, keys: list[StatKey]) -> list[int]:
        """Indices of the keys without a cached clean verdict (changed, new, or with findings)."""
        rest = set(keys).difference(self._clean_set())
        return [i for i, k in enumerate(keys) if k in rest] if rest else []

    def lookup(self, key: StatKey, path: str | None = None, *, clean_record: bool = True) -> dict[str, Any] | None:
        """The cached record for a file with this stat key (`path` filled in), or None.

        With `clean_record=False` a clean file's record is the shared, read-only `CLEAN`: a
        caller that prints only files with findings or errors need not build 100,000 dicts."""
        rec: dict[str, Any]
        text = self._others().get(key)
        if text is None:
            if not clean_record:
                return CLEAN if key in self._clean_set() else None
            if self._clean_text is None:  # texts of clean files: only for callers wanting whole records
                self._load_clean()
                self._clean_text = dict(zip(self._zip(self._cids, self._ctimes),
                                            self._split(self._clean_blob, self._n_clean), strict=True))
            clean_text = self._clean_text.get(key)
            if clean_text is None:
                return None
            size, mime, sha = clean_text[6:].split("\t")
            rec = {"schema": SCHEMA_VERSION, "path": path, "level": None, "findings": [], "errors": [],
                   "size": int(size)}
            if mime:
                rec["mime"] = mime
            if sha:
                rec["sha256"] = sha
            return rec
        rec = json.loads(text)
        if '"declassify_date"' in text and _newly_expired(rec):
            return None  # a 解密时间 passed since the verdict: rescan, so the quality finding appears
        return {"schema": rec.pop("schema", SCHEMA_VERSION), "path": path, **rec}

    def store(self, key: StatKey, record: dict[str, Any]) -> None:
        errors = record.get("errors")
        if errors and any(e.get("error") in _TRANSIENT for e in errors):
            return
        # A clean record (nine in ten) is checked without copying it: a tenth of a first scan's parent.
        if (record.keys() <= _CLEAN_RECORD_KEYS and not errors and not record.get("findings")
                and record.get("level") is None):
            text = f"{_CLEAN}{record.get('size', 0)}\t{record.get('mime') or ''}\t{record.get('sha256') or ''}"
        else:
            text = json.dumps({k: v for k, v in record.items() if k != "path"}, ensure_ascii=False)
        self._pending.append((*key, self.config, record.get("sha256"), text))
        self._stored += 1
        if not self._delta_overflow:
            self._delta[key[0], key[1]] = (key, text)
            if len(self._delta) > _DELTA_MAX:
                # A scan storing this many verdicts rebuilds the snapshot from the rows, which hold
                # them all: kept as Python objects, a million cost more than half a gigabyte.
                self._delta_overflow = True
                self._delta = {}
        refs = self._wanted.pop(key, None) if self._wanted else None
        if refs is not None:
            is_clean = text.startswith(_CLEAN)
            for track, pos, awaited in refs:
                if awaited:
                    track.missing -= 1
                if is_clean:
                    track.other.discard(pos)
                else:
                    track.other.add(pos)
        if len(self._pending) >= 1000:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self._pending)
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        try:
            if self._stored or self._noted or ((self._n_clean or self._n_other) and self._generation is None):
                self._write_snapshot()
        except sqlite3.Error:
            pass  # the rows hold every verdict; a snapshot not written is only a slower next open
        self.db.close()

    def _write_snapshot(self) -> None:
        """This configuration's snapshot: the one read at open plus what this process stored. When
        another scan wrote one meanwhile (or none was read), or this process stored more than
        _DELTA_MAX verdicts, it is rebuilt from the rows, which hold every scan's work. Built in
        packed columns throughout: no Python object per entry."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute("SELECT generation FROM snapshots_v5 WHERE config = ?", (self.config,)).fetchone()
            current = row[0] if row else None
            rebuild = self._delta_overflow or not self._read_done or current != self._generation
            if not rebuild:
                self._load_clean()  # falls back to the rows (generation None) when that part is damaged
                rebuild = current != self._generation
            try:
                if rebuild:
                    clean, other = self._row_columns()
                else:
                    delta = self._delta
                    clean = _merge(self._cids, self._ctimes, self._clean_blob, self._n_clean, delta, True)
                    other = _merge(self._oids, self._otimes, self._other_blob, self._n_other, delta, False)
            except OverflowError:
                return  # a stat field beyond 64 bits: no snapshot, the rows serve
            dirs = self._dir_records() if self._generation == current else {}
            for dir_id, track in self._noted.items():
                if track.missing:
                    dirs.pop(dir_id, None)  # a file without a verdict (a timeout, say): no record
                else:
                    dirs[dir_id] = (track.digest, track.listing, sorted(track.other))
            dir_blob = b"".join(_DIR_HEAD.pack(*dir_id, digest, listing, len(pos)) + array.array("I", pos).tobytes()
                                for dir_id, (digest, listing, pos) in dirs.items())
            # Arrays and bytearrays are bound as blobs as they are (no bytes copy of each).
            self.db.execute("INSERT OR REPLACE INTO snapshots_v5 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (self.config, _SNAPSHOT_FORMAT, (current or 0) + 1, time.time(), clean.n, other.n,
                             other.ids, other.times, other.texts, dir_blob, clean.ids, clean.times, clean.texts))
            self.db.execute("DELETE FROM snapshots_v5 WHERE config NOT IN "
                            "(SELECT config FROM snapshots_v5 ORDER BY written DESC LIMIT ?)", (_SNAPSHOTS_KEPT,))

    def _row_columns(self) -> tuple[_Columns, _Columns]:
        """This configuration's rows as packed columns, clean entries and others apart, read in
        chunks (a fetchall of a million rows held them all as tuples at once) and packed by C code."""
        parts = []
        for op in ("=", "<>"):
            part = _Columns()
            cur = self.db.execute("SELECT dev, ino, size, mtime_ns, ctime_ns, record FROM files "
                                  f"WHERE config = ? AND substr(record, 1, {len(_CLEAN)}) {op} ?", (self.config, _CLEAN))
            while rows := cur.fetchmany(8192):
                part.extend(rows)
            parts.append(part)
        return parts[0], parts[1]

    def _read_rows(self) -> None:
        self._read_done = self._clean_loaded = True
        self._generation = None
        try:
            clean, other = self._row_columns()
        except OverflowError:  # a stat field beyond 64 bits: kept in lists (no snapshot is written)
            clean, other = _Columns(wide=True), _Columns(wide=True)
            for row in self.db.execute("SELECT dev, ino, size, mtime_ns, ctime_ns, record FROM files "
                                       "WHERE config = ?", (self.config,)):
                (clean if row[5].startswith(_CLEAN) else other).extend([row])
        self._cids, self._ctimes, self._clean_blob, self._n_clean = clean.ids, clean.times, bytes(clean.texts), clean.n
        self._oids, self._otimes, self._other_blob, self._n_other = other.ids, other.times, bytes(other.texts), other.n


#: Verdicts one process keeps in memory to add to the snapshot it read; a scan storing more (a first
#: scan) rebuilds the snapshot from the rows instead.
_DELTA_MAX = 20_000


class _DirTrack:
    """A directory noted by `note_dir`: the SHA-256 of its files' packed stat keys and of its
    listing (`scanner.listing`), the positions of files without a verdict yet (how many) and of
    those with findings or errors."""

    __slots__ = ("digest", "listing", "missing", "other")

    def __init__(self, digest: bytes, listing: bytes) -> None:
        self.digest = digest
        self.listing = listing
        #: A count, not a set of positions: a set keeps its largest table when emptied (65 MB of
        #: empty tables for the 2,000 directories of a million files).
        self.missing = 0
        self.other: set[int] = set()


class _Columns:
    """Entries as a snapshot stores them: (dev, ino, size) and (mtime_ns, ctime_ns) in two machine
    arrays, record texts joined by newlines (they hold none: compact JSON escapes it)."""

    __slots__ = ("ids", "times", "texts", "n")

    def __init__(self, wide: bool = False) -> None:
        # `wide`: plain lists, for a stat field beyond 64 bits (the rows still serve lookups).
        self.ids: Any = [] if wide else array.array("Q")
        self.times: Any = [] if wide else array.array("q")
        self.texts = bytearray()
        self.n = 0

    def add(self, dev: int, ino: int, size: int, mtime: int, ctime: int, text: str) -> None:
        self.extend([(dev, ino, size, mtime, ctime, text)])

    def extend(self, rows: Sequence[tuple[int, int, int, int, int, str]]) -> None:
        """Rows (dev, ino, size, mtime_ns, ctime_ns, text) appended, transposed and packed by C code."""
        if not rows:
            return
        dev, ino, size, mtime, ctime, texts = zip(*rows, strict=True)
        self.ids.extend(itertools.chain.from_iterable(zip(dev, ino, size, strict=True)))
        self.times.extend(itertools.chain.from_iterable(zip(mtime, ctime, strict=True)))
        if self.n:
            self.texts += b"\n"
        self.texts += "\n".join(texts).encode("utf-8", "surrogatepass")
        self.n += len(rows)


def _merge(ids: Sequence[int], times: Sequence[int], blob: bytes, n: int,
           delta: dict[tuple[int, int], tuple[StatKey, str]], clean: bool) -> _Columns:
    """Loaded entries (packed columns) less those this process stored again (same dev, ino), plus
    the stored ones of this kind (clean or not): copied in runs between the superseded entries."""
    out = _Columns()
    drop = [i for i, k in enumerate(zip(ids[0::3], ids[1::3], strict=True)) if k in delta] if delta and n else []
    if not drop:
        out.ids.extend(ids)
        out.times.extend(times)
        out.texts += blob
        out.n = n
    else:
        texts = blob.split(b"\n")
        kept: list[bytes] = []
        prev = 0
        for i in [*drop, n]:
            out.ids.extend(ids[3 * prev: 3 * i])
            out.times.extend(times[2 * prev: 2 * i])
            kept += texts[prev:i]
            prev = i + 1
        del texts
        out.texts += b"\n".join(kept)
        out.n = len(kept)
    for key, text in delta.values():
        if text.startswith(_CLEAN) == clean:
            out.add(*key, text)
    return out


def _lines(blob: bytes) -> int:
    return blob.count(b"\n") + 1 if blob else 0


def _newly_expired(rec: dict[str, Any]) -> bool:
    """A cached verdict holds a marking whose declassification date has passed since, with no
    `cn.quality.expired` finding for it yet (the classifier judges dates against today)."""
    import datetime

    today = datetime.date.today().isoformat()
    findings = rec.get("findings") or []
    flagged = {f.get("text") for f in findings if f.get("rule") == "cn.quality.expired"}
    return any(f.get("kind") == "marking" and f.get("declassify_date") and f.get("text") not in flagged
               and f["declassify_date"] < today[: len(f["declassify_date"])] for f in findings)
