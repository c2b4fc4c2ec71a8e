"""Copies, stripped copies and destruction of classified files (翻印/复制, 降密/脱密, 销毁).

A local index holds a fingerprint of every classified file a check has seen: its SHA-256 and a
MinHash (datasketch) over character 4-gram shingles of its text with the marking lines taken out,
so that removing or lowering the marking does not change the fingerprint. With it a check tells:

- `exact_copy`: the same bytes at another path;
- `near_copy`: a similar text at another path that still carries a marking at least as high;
- `stripped_copy`: a similar text whose marking is gone or lower — an unapproved 降密/脱密, the
  strongest sign that a leak is being prepared (similarity reported);
- `destroyed`: a classified file that is no longer where it was (销毁 without a record?).

The index is encrypted at rest (AES-256-GCM, one nonce per row, a 0600 key file created with
O_EXCL|O_NOFOLLOW); rows are found by an HMAC of the path, so neither paths nor hashes nor
fingerprints of classified content are readable from the database file.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import sqlite3
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from datasketch import MinHash, MinHashLSH

from scanner.model import level_rank

NUM_PERM = 128
#: datasketch's hashing scheme, named explicitly: stored values are only comparable within one.
SCHEME = "affine32"
SHINGLE = 4
#: Jaccard estimate above which two texts are the same document (edited paragraphs allowed).
THRESHOLD = 0.5
#: Texts shorter than this (characters, after normalisation) are too short to fingerprint.
MIN_CHARS = 80
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Entry:
    path: str
    sha256: str
    level: str
    marking: str


@dataclass(frozen=True)
class Match:
    kind: str  # exact_copy | near_copy | stripped_copy
    path: str  # the file examined
    original: str  # the indexed classified file it copies
    original_level: str
    level: str | None  # the examined file's own level (None: no marking)
    similarity: float


def body_text(text: str, markings: Iterable[str] = ()) -> str:
    """The text a fingerprint is taken of: NFKC, the marking strings removed, no whitespace."""
    t = unicodedata.normalize("NFKC", text)
    for m in markings:
        if m:
            t = t.replace(unicodedata.normalize("NFKC", m), "")
    return _SPACE.sub("", t)


def minhash(body: str) -> MinHash | None:
    if len(body) < MIN_CHARS:
        return None
    shingles = {body[i: i + SHINGLE].encode("utf-8") for i in range(len(body) - SHINGLE + 1)}
    m = MinHash(num_perm=NUM_PERM, hashfunc=zlib.crc32, scheme=SCHEME)
    m.update_batch(list(shingles))
    return m


class FingerprintIndex:
    """The encrypted index in `directory` (created 0700 on first use)."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._key = _key(self.dir / "fingerprints.key")
        self._aead = AESGCM(self._key)
        self._db = sqlite3.connect(self.dir / "fingerprints.sqlite")
        self._db.execute("CREATE TABLE IF NOT EXISTS fp (tag BLOB PRIMARY KEY, box BLOB NOT NULL) WITHOUT ROWID")
        self.entries: dict[str, Entry] = {}
        self.hashes: dict[str, MinHash] = {}
        self.by_sha: dict[str, str] = {}
        self.lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
        for (box,) in self._db.execute("SELECT box FROM fp"):
            d = json.loads(self._open(box))
            e = Entry(d["path"], d["sha256"], d["level"], d["marking"])
            mh = MinHash(num_perm=NUM_PERM, hashfunc=zlib.crc32, scheme=SCHEME,
                         hashvalues=np.frombuffer(bytes.fromhex(d["mh"]), dtype=np.uint64)) if d.get("mh") else None
            self._remember(e, mh)

    # -- storage ------------------------------------------------------------------------------
    def _tag(self, path: str) -> bytes:
        return hmac.new(self._key, path.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()

    def _seal(self, plain: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plain, None)

    def _open(self, box: bytes) -> bytes:
        return self._aead.decrypt(box[:12], box[12:], None)

    def _remember(self, e: Entry, mh: MinHash | None) -> None:
        self.entries[e.path] = e
        self.by_sha.setdefault(e.sha256, e.path)
        if mh is not None:
            self.hashes[e.path] = mh
            self.lsh.insert(e.path, mh)

    def _forget(self, path: str) -> None:
        e = self.entries.pop(path, None)
        if e is None:
            return
        if self.by_sha.get(e.sha256) == path:
            del self.by_sha[e.sha256]
        if self.hashes.pop(path, None) is not None:
            self.lsh.remove(path)
        self._db.execute("DELETE FROM fp WHERE tag = ?", (self._tag(path),))

    def add(self, path: str, sha256: str, level: str, text: str, markings: Iterable[str]) -> None:
        """Index a classified file (replacing what was indexed at that path)."""
        markings = list(markings)
        mh = minhash(body_text(text, markings))
        self._forget(path)
        e = Entry(path, sha256, level, markings[0] if markings else "")
        doc = {"path": path, "sha256": sha256, "level": level, "marking": e.marking,
               "mh": mh.hashvalues.astype(np.uint64).tobytes().hex() if mh is not None else None}
        self._db.execute("INSERT INTO fp (tag, box) VALUES (?, ?)",
                         (self._tag(path), self._seal(json.dumps(doc).encode())))
        self._remember(e, mh)

    def commit(self) -> None:
        self._db.commit()

    def close(self) -> None:
        self._db.commit()
        self._db.close()

    # -- questions ----------------------------------------------------------------------------
    def matches(self, path: str, sha256: str | None, level: str | None, text: str,
                markings: Iterable[str] = ()) -> list[Match]:
        """What the file at `path` copies among the indexed classified files (not itself)."""
        out: list[Match] = []
        if sha256 and sha256 in self.by_sha and self.by_sha[sha256] != path:
            orig = self.entries[self.by_sha[sha256]]
            out.append(Match("exact_copy", path, orig.path, orig.level, level, 1.0))
            return out
        mh = minhash(body_text(text, markings))
        if mh is None:
            return out
        for cand in self.lsh.query(mh):
            if cand == path:
                continue
            orig = self.entries[cand]
            sim = float(mh.jaccard(self.hashes[cand]))
            if sim < THRESHOLD:
                continue
            kind = "near_copy" if level_rank(level) >= level_rank(orig.level) else "stripped_copy"
            out.append(Match(kind, path, orig.path, orig.level, level, round(sim, 3)))
        out.sort(key=lambda m: -m.similarity)
        return out[:5]

    def vanished(self, under: Iterable[str] = ()) -> Iterator[Entry]:
        """Indexed files (below one of `under`, if given) that no longer exist: destroyed or moved.
        Each is reported once: it leaves the index."""
        roots = [os.path.abspath(r) for r in under]
        for path, e in list(self.entries.items()):
            if roots and not any(os.path.abspath(path).startswith(r.rstrip("/") + "/") or
                                 os.path.abspath(path) == r for r in roots):
                continue
            if not os.path.lexists(path):
                self._forget(path)
                yield e


def _key(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        st = os.lstat(path)
        if not (st.st_mode & 0o170000) == 0o100000 or st.st_mode & 0o077 or st.st_uid != os.geteuid():
            raise PermissionError(f"{path}: the fingerprint key must be a 0600 file of this user") from None
        return path.read_bytes()
    key = AESGCM.generate_key(bit_length=256)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    return key
