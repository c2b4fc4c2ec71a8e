"""Merkle-tree checkpoints of the global chain, in the style of RFC 9162 (Certificate Transparency
2.0): signed tree heads, inclusion proofs and consistency proofs.

The leaves are the chain hashes of the entries in gseq order (`reports.chain.entry_hash`, which
already commits to the record, its kind, its receipt time and the whole prefix), hashed as RFC
9162 §2.1.1 has it: leaf = SHA-256(0x00 ‖ data), node = SHA-256(0x01 ‖ left ‖ right), the split
at the largest power of two smaller than the size. A `TreeHead` (size, root, time) is signed by
the collector's *checkpoint key* (`DATA/checkpoint.key`), which is neither the TLS key nor the
server key that signs enrolments, so that it can live elsewhere and be rotated on its own.

No library in the project's package lists implements RFC 9162 with care; the math is small.
`MerkleTree` keeps every level in flat bytearrays (64 bytes an entry) so that a root at any size,
an inclusion proof or a consistency proof costs O(log² n) lookups, never a rehash of the log.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from policies.keys import canonical_json, key_id, load_public_key, sign, verify

EMPTY_ROOT = hashlib.sha256(b"").digest()
#: Domain of the signed tree head body: a signature over anything else never passes for one.
STH_VERSION = "baomi-sth-1"


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only tree over leaf data (here: 32-byte entry hashes)."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self.levels: list[bytearray] = [bytearray()]
        self.size = 0
        for d in leaves:
            self.append(d)

    def append(self, data: bytes) -> None:
        self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, h: bytes) -> None:
        """Append a leaf given by its leaf hash (as a witness keeps them)."""
        self.levels[0] += h
        self.size += 1
        j, n = 0, self.size
        # Each time the count at a level becomes even, the last two nodes complete a parent.
        while n % 2 == 0:
            lvl = self.levels[j]
            parent = node_hash(bytes(lvl[-64:-32]), bytes(lvl[-32:]))
            if len(self.levels) == j + 1:
                self.levels.append(bytearray())
            self.levels[j + 1] += parent
            j, n = j + 1, n // 2

    def leaf(self, i: int) -> bytes:
        """The leaf hash of leaf i (0-based)."""
        return bytes(self.levels[0][32 * i:32 * i + 32])

    def _mth(self, a: int, b: int) -> bytes:
        """MTH(D[a:b]) for a range the RFC recursion produces (a is aligned to the split)."""
        n = b - a
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and a % n == 0:
            j = n.bit_length() - 1
            return bytes(self.levels[j][32 * (a >> j):32 * (a >> j) + 32])
        k = _split(n)
        return node_hash(self._mth(a, a + k), self._mth(a + k, b))

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"tree has {self.size} leaves, not {size}")
        return self._mth(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[size]) of RFC 9162 §2.1.3.1 (index 0-based)."""
        if not 0 <= index < size <= self.size:
            raise ValueError(f"no leaf {index} in a tree of size {size}")
        path: list[bytes] = []
        a, b, m = 0, size, index
        while b - a > 1:
            k = _split(b - a)
            if m < k:
                path.append(self._mth(a + k, b))
                b = a + k
            else:
                path.append(self._mth(a, a + k))
                a, m = a + k, m - k
        return path[::-1]

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """PROOF(first, D[second]) of RFC 9162 §2.1.4.1."""
        if not 0 < first <= second <= self.size:
            raise ValueError(f"no consistency proof from {first} to {second} (tree size {self.size})")
        path: list[bytes] = []
        a, b, m, whole = 0, second, first, True
        while m != b - a:
            k = _split(b - a)
            if m <= k:
                path.append(self._mth(a + k, b))
                b = a + k
            else:
                path.append(self._mth(a, a + k))
                a, m, whole = a + k, m - k, False
        if not whole:
            path.append(self._mth(a, b))
        return path[::-1]


def verify_inclusion(leaf_data: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf_hash(leaf_data)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2 (a tree of size 0 is consistent with every tree)."""
    if first == 0:
        return first_root == EMPTY_ROOT
    if first > second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


@dataclass(frozen=True)
class TreeHead:
    """A signed tree head: the log had `size` entries whose Merkle tree hash was `root` (hex)."""

    size: int
    root: str
    time: str
    key: str  # key id of the checkpoint key that signed it
    sig: str = ""

    def body(self) -> dict[str, Any]:
        return {"v": STH_VERSION, "size": self.size, "root": self.root, "time": self.time, "key": self.key}

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "root": self.root, "time": self.time, "key": self.key, "sig": self.sig}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TreeHead:
        size = d["size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"tree head size must be a natural number, not {size!r}")
        return cls(size=size, root=str(d["root"]), time=str(d["time"]), key=str(d["key"]),
                   sig=str(d.get("sig", "")))

    @classmethod
    def make(cls, key: Ed25519PrivateKey, size: int, root: bytes, time: str) -> TreeHead:
        th = cls(size=size, root=root.hex(), time=time, key=key_id(key))
        return cls(size, th.root, time, th.key, sign(key, canonical_json(th.body())))

    def verify(self, keys: Mapping[str, Ed25519PublicKey]) -> bool:
        """True if signed by one of `keys` (key id → public key)."""
        k = keys.get(self.key)
        return k is not None and verify(k, canonical_json(self.body()), self.sig)


# ---------------------------------------------------------------- the checkpoint key ring
CHECKPOINT_KEY = "checkpoint.key"
CHECKPOINT_PUB = "checkpoint.pub"
RETIRED_DIR = "checkpoint-keys"


def keyring(files: Iterable[str | Path]) -> dict[str, Ed25519PublicKey]:
    """Key id → public key, from PEM (or base64) files."""
    ring: dict[str, Ed25519PublicKey] = {}
    for f in files:
        k = load_public_key(Path(f))
        ring[key_id(k)] = k
    return ring


def data_keyring(data_dir: str | Path) -> dict[str, Ed25519PublicKey]:
    """The checkpoint keys of a collector's data directory: the current one and those retired by
    `baomi server rotate-checkpoint-key` (heads they signed stay verifiable)."""
    d = Path(data_dir)
    files = sorted((d / RETIRED_DIR).glob("*.pub")) if (d / RETIRED_DIR).is_dir() else []
    if (d / CHECKPOINT_PUB).exists():
        files.append(d / CHECKPOINT_PUB)
    return keyring(files)


# ---------------------------------------------------------------- an agent's kept tree head
AGENT_HEAD_FILE = "tree-head.json"


@dataclass(frozen=True)
class AgentHead:
    """What an agent keeps from an acknowledgement: the signed tree head and where its own last
    acknowledged event sits in it (gseq, its seq and hash), so that verify can prove both that
    the log still has that tree and that the event is in it."""

    agent: str
    head: TreeHead
    last_seq: int
    last_gseq: int
    last_hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"agent": self.agent, "tree_head": self.head.to_dict(), "last_seq": self.last_seq,
                "last_gseq": self.last_gseq, "last_hash": self.last_hash}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AgentHead:
        return cls(agent=str(d["agent"]), head=TreeHead.from_dict(d["tree_head"]),
                   last_seq=int(d.get("last_seq", 0)), last_gseq=int(d.get("last_gseq", 0)),
                   last_hash=str(d.get("last_hash", "")))


def load_agent_heads(path: str | Path) -> list[AgentHead]:
    """An agent's kept heads: its state directory (tree-head*.json inside) or one such file."""
    p = Path(path)
    files = sorted(p.glob("tree-head*.json")) if p.is_dir() else [p]
    out = []
    for f in files:
        try:
            out.append(AgentHead.from_dict(json.loads(f.read_text(encoding="utf-8"))))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{f}: not an agent tree head ({exc})") from None
    if not out:
        raise ValueError(f"{p}: holds no tree head (the agent has had no acknowledgement yet)")
    return out
