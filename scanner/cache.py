"""Incremental scan cache: an unchanged file is re-verified at stat speed.

A SQLite table keyed by (device, inode) holds, for each file scanned, its size, mtime_ns and
ctime_ns at scan time, the digest of the scan configuration (rules, keywords, limits and the
scanner's own code) and the file's record (with its SHA-256, kept for copy tracking). A lookup
hits only when all of these match, so any change to the file or to the rules forces a rescan.

Safety: the database lives in a per-user directory (0700) and is refused — the scan runs without
a cache — when it is owned by another user or writable by group/others, so no one can plant
"clean" verdicts for someone else. WAL mode and a busy timeout let concurrent scans share it.
Records with transient errors (timeout, crash, unreadable) are never cached.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

from scanner.model import SCHEMA_VERSION

_TRANSIENT = {"timeout", "crash", "unreadable"}
#: Compact form of a clean file's record: `clean:SIZE\tMIME\tSHA256`.
_CLEAN = "clean:"
#: The shared record of a clean cached file when the caller does not need its own (read-only).
CLEAN: dict[str, Any] = {"schema": SCHEMA_VERSION, "path": None, "level": None, "findings": [], "errors": []}
_CLEAN_KEYS = {"schema", "level", "findings", "errors", "size", "mime", "sha256"}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    dev INTEGER NOT NULL, ino INTEGER NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    config TEXT NOT NULL, sha256 TEXT, record TEXT NOT NULL,
    PRIMARY KEY (dev, ino)
) WITHOUT ROWID;
"""
StatKey = tuple[int, int, int, int, int]  # dev, ino, size, mtime_ns, ctime_ns


def default_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "baomi" / "scan-cache.sqlite"


def code_digest() -> str:
    """Digest of the scanner's code and shipped rules: a new version invalidates the cache."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for pkg in ("scanner", "rules"):
        for p in sorted((root / pkg).rglob("*")):
            if p.suffix in (".py", ".yar") and p.is_file():
                h.update(p.name.encode() + b"\0" + p.read_bytes())
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
        self._known: dict[StatKey, str] | None = None
        self._pending: list[tuple[Any, ...]] = []

    def _load(self) -> dict[StatKey, str]:
        # One query for every entry of this configuration; keyed by the whole stat key, so a
        # lookup is one dict hit and any change of size, mtime or ctime is a miss.
        if self._known is None:
            self._known = {(d, i, s, m, c): r for d, i, s, m, c, r in self.db.execute(
                "SELECT dev, ino, size, mtime_ns, ctime_ns, record FROM files WHERE config = ?", (self.config,))}
        return self._known

    def lookup(self, key: StatKey, path: str | None = None, *, clean_record: bool = True) -> dict[str, Any] | None:
        """The cached record for a file with this stat key (`path` filled in), or None.

        With `clean_record=False` a clean file's record is the shared, read-only `CLEAN`: a
        caller that prints only files with findings or errors need not build 100,000 dicts."""
        rec: dict[str, Any]
        text = (self._known if self._known is not None else self._load()).get(key)
        if text is None:
            return None
        if text.startswith(_CLEAN):  # most files: no JSON to parse
            if not clean_record:
                return CLEAN
            size, mime, sha = text[6:].split("\t")
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
        if any(e.get("error") in _TRANSIENT for e in record.get("errors") or []):
            return
        rec = {k: v for k, v in record.items() if k != "path"}
        if set(rec) <= _CLEAN_KEYS and not rec.get("findings") and not rec.get("errors") and rec.get("level") is None:
            text = f"{_CLEAN}{rec.get('size', 0)}\t{rec.get('mime') or ''}\t{rec.get('sha256') or ''}"
        else:
            text = json.dumps(rec, ensure_ascii=False)
        self._pending.append((*key, self.config, record.get("sha256"), text))
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
        self.db.close()


def _newly_expired(rec: dict[str, Any]) -> bool:
    """A cached verdict holds a marking whose declassification date has passed since, with no
    `cn.quality.expired` finding for it yet (the classifier judges dates against today)."""
    import datetime

    today = datetime.date.today().isoformat()
    findings = rec.get("findings") or []
    flagged = {f.get("text") for f in findings if f.get("rule") == "cn.quality.expired"}
    return any(f.get("kind") == "marking" and f.get("declassify_date") and f.get("text") not in flagged
               and f["declassify_date"] < today[: len(f["declassify_date"])] for f in findings)
