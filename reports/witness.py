"""Signed tree heads on the collector, and their witnesses.

`TreeKeeper` (one per collector process) follows the store's chain into a `MerkleTree`, signs
tree heads with the checkpoint key, hands one to every acknowledgement (with where the agent's
last event sits) and, at each checkpoint, stores the head and publishes it to every witness
directory (`baomi server run --witness DIR`, a directory on another volume or host).

A witness directory is append-only: one file per head, `sth-<size>-<root prefix>.json`, written
to a temporary name, fsynced and hard-linked into place (never overwritten). Each file holds the
head and the leaf hashes since the previous head published there, so the directory alone can
recompute every root it holds and `baomi audit verify --witness DIR` names the exact first
entry that differs from what was witnessed, not only a range.

A syslog witness (`--witness syslog://HOST:PORT` over UDP, `syslog+tcp://HOST:PORT` over TCP)
receives each new signed head as one RFC 5424 message (facility local0, MSGID `sth`, the head as
JSON after `baomi-sth `), sent by the standard library's `logging.handlers.SysLogHandler`: the
site's syslog server or SIEM, run by other people on another machine, keeps them.
`baomi audit verify --witness FILE` reads the heads back from the file that server wrote (any
line format: the JSON after the marker is what counts). Heads only, no leaves: a truncated tail
or a rewritten log is still shown (every head must match the log and be consistent with the
others), the first bad entry being found from the heads.
"""
from __future__ import annotations

import json
import logging
import logging.handlers
import os
import secrets
import socket
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policies.keys import (
    generate_private_key,
    key_id,
    load_private_key,
    public_key_pem,
    save_private_key,
    write_temp_beside,
)
from reports.events import utcnow
from reports.merkle import (
    CHECKPOINT_KEY,
    CHECKPOINT_PUB,
    RETIRED_DIR,
    AgentHead,
    MerkleTree,
    TreeHead,
)


# ---------------------------------------------------------------- the checkpoint key
def ensure_checkpoint_key(data_dir: str | Path) -> None:
    """Create DATA/checkpoint.key|.pub if missing (data directories made before it existed)."""
    d = Path(data_dir)
    if not (d / CHECKPOINT_KEY).exists():
        key = generate_private_key()
        save_private_key(key, d / CHECKPOINT_KEY)
        _write_pub(d / CHECKPOINT_PUB, key)


def _write_pub(path: Path, key: Ed25519PrivateKey) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    tmp.write_bytes(public_key_pem(key))
    os.replace(tmp, path)


def rotate_checkpoint_key(data_dir: str | Path) -> tuple[str, str]:
    """Retire the current checkpoint key (its public half moves to DATA/checkpoint-keys/, so the
    heads it signed stay verifiable) and create a new one; returns (old id, new id)."""
    d = Path(data_dir)
    ensure_checkpoint_key(d)
    old = load_private_key(d / CHECKPOINT_KEY)
    (d / RETIRED_DIR).mkdir(exist_ok=True)
    _write_pub(d / RETIRED_DIR / f"{key_id(old)}.pub", old)
    new = generate_private_key()
    save_private_key(new, d / CHECKPOINT_KEY)
    _write_pub(d / CHECKPOINT_PUB, new)
    return key_id(old), key_id(new)


# ---------------------------------------------------------------- witness directories
def _atomic_new_file(path: Path, data: bytes) -> bool:
    """Write `path` once: temp file, fsync, hard link into place. False if it already exists."""
    tmp = write_temp_beside(path, data, 0o644)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return True


def _head_files(d: Path) -> list[Path]:
    return sorted(d.glob("sth-*.json"))


def witnessed_size(d: Path) -> int:
    """The largest tree size a witness directory holds (0 when empty)."""
    best = 0
    for f in _head_files(d):
        try:
            best = max(best, int(f.name.split("-")[1]))
        except (IndexError, ValueError):
            continue
    return best


def publish(d: Path, head: TreeHead, tree: MerkleTree, since: int) -> bool:
    """Write `head` into witness directory `d` with the leaf hashes of entries since+1..size."""
    body = {"tree_head": head.to_dict(), "leaves_from": since,
            "leaves": [tree.leaf(i).hex() for i in range(since, head.size)]}
    name = f"sth-{head.size:012d}-{head.root[:16]}.json"
    return _atomic_new_file(d / name, (json.dumps(body) + "\n").encode())


@dataclass
class Witnessed:
    """What one witness directory holds, checked against itself."""

    source: str
    heads: list[TreeHead] = field(default_factory=list)
    #: gseq → leaf hash, for every entry the witness holds a leaf of.
    leaves: dict[int, bytes] = field(default_factory=dict)
    #: A witness that saw an entry change (two different histories) or whose leaves do not make
    #: its own signed roots: the first is evidence of tampering, the second a damaged witness.
    problem: str = ""


def load_witness(d: str | Path) -> Witnessed:
    d = Path(d)
    if not d.is_dir():
        raise ValueError(f"witness directory {d} does not exist")
    w = Witnessed(f"witness {d}")
    leaves: list[bytes] = []
    tree = MerkleTree()
    for f in _head_files(d):
        try:
            obj = json.loads(f.read_text(encoding="utf-8"))
            head = TreeHead.from_dict(obj["tree_head"])
            start = int(obj["leaves_from"])
            seg = [bytes.fromhex(x) for x in obj["leaves"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{f}: not a witnessed tree head ({exc})") from None
        w.heads.append(head)
        if w.problem:
            continue
        if start > len(leaves):
            # The witness missed heads (unreachable for a while): its leaves stop being contiguous.
            w.problem = f"{f.name}: leaves start at {start + 1}, the witness holds only {len(leaves)}"
            continue
        for i, lf in enumerate(seg[:len(leaves) - start]):
            if leaves[start + i] != lf:
                w.problem = (f"entry {start + i + 1} changed between heads the collector published to "
                             f"{d} (the log was rewritten, then published again)")
                break
        if w.problem:
            continue
        if start + len(seg) > len(leaves):
            leaves.extend(seg[len(leaves) - start:])
        for lf in leaves[tree.size:]:
            tree.append_leaf_hash(lf)
        if head.size > tree.size or tree.root(head.size).hex() != head.root:
            w.problem = f"{f.name}: its leaves do not make the root of its own signed head (damaged witness)"
    w.leaves = {i + 1: lf for i, lf in enumerate(leaves)}
    return w


# ---------------------------------------------------------------- syslog witnesses
SYSLOG_MARK = "baomi-sth"
SYSLOG_SCHEMES = {"syslog": socket.SOCK_DGRAM, "syslog+udp": socket.SOCK_DGRAM, "syslog+tcp": socket.SOCK_STREAM}


def is_syslog_target(target: str | Path) -> bool:
    return str(target).split("://", 1)[0].lower() in SYSLOG_SCHEMES and "://" in str(target)


class _Rfc5424(logging.Formatter):
    """HEADER of RFC 5424 after the PRI that SysLogHandler puts first: VERSION TIMESTAMP HOSTNAME
    APP-NAME PROCID MSGID, no STRUCTURED-DATA, then the message."""

    def __init__(self, tcp: bool):
        super().__init__()
        host = "".join(c for c in socket.gethostname() if 33 <= ord(c) <= 126)[:255]
        self.host = host or "-"
        self.trailer = "\n" if tcp else ""  # RFC 6587 non-transparent framing over TCP

    def format(self, record: logging.LogRecord) -> str:
        from datetime import UTC, datetime

        when = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"1 {when} {self.host} baomi {os.getpid()} sth - {record.getMessage()}{self.trailer}"


class _Handler(logging.handlers.SysLogHandler):
    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        raise  # noqa: PLE0704 - called inside emit's except block: the caller learns of the failure


class SyslogWitness:
    """One syslog destination receiving every new signed head."""

    def __init__(self, url: str):
        from urllib.parse import urlsplit

        u = urlsplit(url)
        self.socktype = SYSLOG_SCHEMES[u.scheme.lower()]
        if not u.hostname:
            raise ValueError(f"bad syslog witness {url!r}: use syslog://HOST:PORT or syslog+tcp://HOST:PORT")
        self.url, self.address = url, (u.hostname, u.port or 514)
        self.handler: _Handler | None = None
        self.sent = -1  # the size of the last head sent

    def publish(self, head: TreeHead) -> bool:
        if head.size <= self.sent:
            return True
        body = json.dumps({"tree_head": head.to_dict()}, separators=(",", ":"), sort_keys=True)
        record = logging.LogRecord("baomi.witness", logging.INFO, __file__, 0, f"{SYSLOG_MARK} {body}",
                                   None, None)
        try:
            if self.handler is None:
                self.handler = _Handler(self.address, logging.handlers.SysLogHandler.LOG_LOCAL0,
                                        self.socktype)
                self.handler.append_nul = False
                self.handler.setFormatter(_Rfc5424(self.socktype == socket.SOCK_STREAM))
            self.handler.emit(record)
        except OSError as exc:
            print(f"baomi server: cannot publish to witness {self.url}: {exc}", file=sys.stderr)
            self.close()  # a TCP connection the server closed: reconnect next time
            return False
        self.sent = head.size
        return True

    def close(self) -> None:
        if self.handler is not None:
            self.handler.close()
            self.handler = None


def load_syslog_witness(path: str | Path) -> Witnessed:
    """The heads a syslog server wrote to `path` (lines holding `baomi-sth {json}`)."""
    w = Witnessed(f"syslog witness {path}")
    decoder = json.JSONDecoder()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            at = line.find(SYSLOG_MARK + " ")
            if at < 0:
                continue
            try:
                obj, _ = decoder.raw_decode(line, at + len(SYSLOG_MARK) + 1)
                w.heads.append(TreeHead.from_dict(obj["tree_head"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: not a witnessed tree head ({exc})") from None
    return w


# ---------------------------------------------------------------- the collector's side
class TreeKeeper:
    """The collector's Merkle tree over its chain, signed heads and witness publishing."""

    def __init__(self, store: Any, key: Ed25519PrivateKey, witnesses: Iterable[str | Path] = ()):
        self.store = store
        self.key = key
        targets = [str(w) for w in witnesses]
        self.witnesses = [Path(w) for w in targets if not is_syslog_target(w)]
        self.syslogs = [SyslogWitness(w) for w in targets if is_syslog_target(w)]
        self.tree = MerkleTree()
        self.head: TreeHead | None = None
        #: agent → (seq, gseq, event hash) of its last event in the tree
        self.last: dict[str, tuple[int, int, str]] = {}
        self.lock = threading.Lock()
        self._published: dict[Path, int] = {}
        self._stored: int | None = None
        #: The newest head this process published to every witness: acknowledgements carry it,
        #: and an agent drops the acknowledged events it covers from its spool (reports/client.py).
        self.witnessed: TreeHead | None = None

    def _advance(self) -> None:
        for gseq, h, agent, aseq, ehash in self.store.leaf_rows(self.tree.size):
            if gseq != self.tree.size + 1:
                raise RuntimeError(f"chain entry {self.tree.size + 1} missing from the store")
            self.tree.append(bytes.fromhex(h))
            if agent is not None and aseq is not None:
                self.last[agent] = (aseq, gseq, str(ehash))

    def current(self) -> TreeHead:
        with self.lock:
            self._advance()
            if self.head is None or self.head.size != self.tree.size:
                self.head = TreeHead.make(self.key, self.tree.size, self.tree.root(), utcnow())
            return self.head

    def ack(self, agent: str) -> dict[str, Any]:
        """The tree head an acknowledgement carries, with the agent's last event in it."""
        head = self.current()
        with self.lock:
            seq, gseq, ehash = self.last.get(agent, (0, 0, ""))
        if gseq > head.size:  # another request advanced the tree meanwhile
            head = self.current()
        return AgentHead(agent, head, seq, gseq, ehash).to_dict()

    def checkpoint(self) -> TreeHead | None:
        """Store a head covering the log and publish it to every witness (if the log grew)."""
        head = self.current()
        with self.lock:
            if self._stored is None:
                self._stored = max((t.size for t in self.store.tree_heads()), default=-1)
            if head.size > self._stored:
                self.store.add_tree_head(head)
                self._stored = head.size
            published = [self._publish(d, head) for d in self.witnesses]
            # A UDP datagram sent is not a datagram kept: a UDP syslog witness gets every head but
            # never lets agents drop their kept events on its account (only directories and TCP do).
            published += [s.publish(head) and s.socktype == socket.SOCK_STREAM for s in self.syslogs]
            if published and all(published):
                self.witnessed = head
        return head

    def _publish(self, d: Path, head: TreeHead) -> bool:
        """Publish `head` to witness `d`; True once `d` holds a head of this size."""
        try:
            if d not in self._published:
                d.mkdir(parents=True, exist_ok=True)
                self._published[d] = witnessed_size(d)
            since = self._published[d]
            if since == head.size and since:
                return True
            if since > head.size:
                print(f"baomi server: witness {d} holds a tree of {since} entries but the log has "
                      f"{head.size}: the database was rolled back or truncated", file=sys.stderr)
                since = 0
            publish(d, head, self.tree, since)
            self._published[d] = head.size
            return True
        except OSError as exc:  # a witness away must not stop the collector; retried next time
            print(f"baomi server: cannot publish to witness {d}: {exc}", file=sys.stderr)
            return False


# ---------------------------------------------------------------- what `audit verify` holds
class EvidenceError(ValueError):
    """The held evidence itself shows tampering (a witness saw an entry change) or is unusable."""

    def __init__(self, message: str, first_bad: int | None = None):
        super().__init__(message)
        self.first_bad = first_bad


def gather_evidence(src: Any, data_dir: str | Path | None, witnesses: Iterable[str | Path],
                    agent_states: Iterable[str | Path], key_files: Iterable[str | Path]) -> Any:
    """The `Evidence` of `baomi audit verify`: tree heads from the log source, the witness
    directories and the agents' kept heads; witnessed leaves; the checkpoint keys (given, or
    DATA's current and retired ones); the agents table when the source is a local store."""
    from reports.chain import Evidence
    from reports.merkle import data_keyring, keyring, load_agent_heads

    keys = keyring(key_files)
    if not keys and data_dir is not None:
        keys = data_keyring(data_dir)
    heads: list[tuple[TreeHead, str]] = []
    if src is not None:
        heads += [(th, "database") for th in src.tree_heads()]
    leaves: dict[int, tuple[bytes, str]] = {}
    for d in witnesses:
        w = load_syslog_witness(d) if Path(d).is_file() else load_witness(d)
        if not w.heads:  # a mistyped path must not pass for a witness that agrees
            raise ValueError(f"witness {d} holds no tree head (sth-*.json files, or baomi-sth syslog lines)")
        if w.problem:
            first = None
            if w.problem.startswith("entry "):
                first = int(w.problem.split()[1])
            raise EvidenceError(f"{w.source}: {w.problem}", first)
        heads += [(th, w.source) for th in w.heads]
        for gseq, lf in w.leaves.items():
            leaves.setdefault(gseq, (lf, w.source))
    agent_heads: list[tuple[AgentHead, str]] = []
    for p in agent_states:
        for ah in load_agent_heads(p):
            agent_heads.append((ah, f"agent state {p}"))
            heads.append((ah.head, f"agent state {p}"))
    if not keys:
        # The source's own heads prove nothing without a pinned key; held ones need it.
        heads = [h for h in heads if h[1] != "database"]
        if heads:
            raise ValueError("tree heads need the checkpoint public key: give --checkpoint-key FILE "
                             "(DATA/checkpoint.pub of the collector) or --data DIR")
    table = None
    store = getattr(src, "store", None)
    if store is not None:
        def table() -> tuple[list[Any], int, int]:
            before = store.head()[0]
            rows = store.agents()
            return rows, before, store.head()[0]
    return Evidence(heads=heads, keys=keys, leaves=leaves, agent_heads=agent_heads, agents_table=table)
