"""RFC 9162 Merkle math, signed tree heads, the checkpoint key ring and rotation, witnesses, and
the tree heads an agent keeps from its acknowledgements (real collector over loopback TLS)."""
from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from audit_helpers import Collector, baomi

from policies.keys import generate_private_key
from reports.chain import server_signed
from reports.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    TreeHead,
    data_keyring,
    keyring,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from reports.store import open_store
from reports.witness import TreeKeeper, load_witness, rotate_checkpoint_key


# ------------------------------------------------------------------ the math, against the RFC text
def mth(d: list[bytes]) -> bytes:
    """MTH as RFC 9162 §2.1.1 defines it, recursively (the reference the fast tree must equal)."""
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < len(d):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = 1
    while k * 2 < len(d):
        k *= 2
    return path(m, d[:k]) + [mth(d[k:])] if m < k else path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = 1
    while k * 2 < len(d):
        k *= 2
    return subproof(m, d[:k], b) + [mth(d[k:])] if m <= k else subproof(m - k, d[k:], False) + [mth(d[:k])]


DATA = [hashlib.sha256(bytes([i])).digest() for i in range(37)]


def test_roots_and_proofs_equal_the_rfc_definitions() -> None:
    t = MerkleTree(DATA)
    assert MerkleTree().root() == EMPTY_ROOT
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()
    for n in range(1, len(DATA) + 1):
        assert t.root(n) == mth(DATA[:n])
        for m in range(n):
            p = t.inclusion_proof(m, n)
            assert p == path(m, DATA[:n])
            assert verify_inclusion(DATA[m], m, n, p, t.root(n))
            assert not verify_inclusion(DATA[(m + 1) % n], m, n, p, t.root(n)) or n == 1
        for m in range(1, n + 1):
            p = t.consistency_proof(m, n)
            assert p == subproof(m, DATA[:n], True)
            assert verify_consistency(m, n, t.root(m), t.root(n), p)


def test_inconsistent_trees_fail_the_proof() -> None:
    t = MerkleTree(DATA)
    forked = MerkleTree(DATA[:10] + [b"\xff" * 32] + DATA[11:])
    for m in (3, 8, 12, 16):
        p = t.consistency_proof(m, 30)
        assert not verify_consistency(m, 30, t.root(m), forked.root(30), p)
    assert not verify_consistency(5, 30, t.root(5), t.root(30), t.consistency_proof(6, 30))
    assert not verify_consistency(30, 5, t.root(30), t.root(5), [])
    assert not verify_inclusion(DATA[3], 3, 30, t.inclusion_proof(3, 30), forked.root(30))
    with pytest.raises(ValueError):
        t.inclusion_proof(37, 37)


def test_tree_head_signature_and_key_ring(tmp_path: Path) -> None:
    key = generate_private_key()
    th = TreeHead.make(key, 37, MerkleTree(DATA).root(), "2026-12-05T00:00:00Z")
    pub = tmp_path / "k.pub"
    from policies.keys import public_key_pem

    pub.write_bytes(public_key_pem(key))
    ring = keyring([pub])
    assert th.verify(ring)
    assert not TreeHead(36, th.root, th.time, th.key, th.sig).verify(ring)
    assert not th.verify(keyring([]))
    with pytest.raises(ValueError):
        TreeHead.from_dict({**th.to_dict(), "size": -1})


# ------------------------------------------------------------------ rotation and witnesses
def test_rotation_keeps_old_heads_verifiable_and_witness_files_are_append_only(tmp_path: Path) -> None:
    from reports.server import init_data, load_data

    data, wit = tmp_path / "srv", tmp_path / "wit"
    init_data(data)
    store = open_store(data)
    try:
        skey = load_data(data).key
        store.append_record("gap_refused", server_signed(skey, {"kind": "gap_refused", "n": 1}), "2026-12-05T00:00:00Z")
        old = TreeKeeper(store, load_data(data).checkpoint_key, [wit]).checkpoint()  # type: ignore[arg-type]
        assert old is not None
        old_id, new_id = rotate_checkpoint_key(data)
        assert old_id == old.key != new_id
        assert (data / "checkpoint-keys" / f"{old_id}.pub").exists()
        store.append_record("gap_refused", server_signed(skey, {"kind": "gap_refused", "n": 2}), "2026-12-05T00:00:01Z")
        new = TreeKeeper(store, load_data(data).checkpoint_key, [wit]).checkpoint()  # type: ignore[arg-type]
        assert new is not None and new.key == new_id
    finally:
        store.close()
    ring = data_keyring(data)
    assert old.verify(ring) and new.verify(ring)
    files = sorted(wit.glob("sth-*.json"))
    assert len(files) == 2 and json.loads(files[1].read_text())["leaves_from"] == 1
    w = load_witness(wit)
    assert not w.problem and [h.size for h in w.heads] == [1, 2] and len(w.leaves) == 2
    # the CLI: rotation told in one line; verify accepts heads of both keys
    out = baomi("server", "rotate-checkpoint-key", "--data", str(data)).stdout
    assert "rotated" in out
    res = baomi("audit", "verify", "--data", str(data), "--witness", str(wit), check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    # a damaged witness (a leaf edited) is reported, not trusted
    obj = json.loads(files[0].read_text())
    obj["leaves"][0] = "00" * 32
    files[0].write_text(json.dumps(obj))
    assert "damaged witness" in load_witness(wit).problem


# ------------------------------------------------------------------ the agent's kept heads
def test_acknowledgements_carry_signed_heads_the_agent_keeps(sqlite_data: Path, tmp_path: Path) -> None:
    """A collector restored from a backup lost acknowledged events: the agent's kept head proves
    it, and the agent keeps the older head when a newer ack goes backwards."""
    c = Collector(sqlite_data, checkpoint_interval=0).start()
    try:
        a = c.enroll(tmp_path / "a", hostname="ws-01")
        assert a.state.checkpoint_key
        for i in range(3):
            a.submit("heartbeat", {"n": i})
        a.flush()
        backup = tmp_path / "backup.sqlite"
        with sqlite3.connect(sqlite_data / "audit.sqlite") as src, sqlite3.connect(backup) as dst:
            src.backup(dst)
        for i in range(3, 6):
            a.submit("heartbeat", {"n": i})
        a.flush()
        kept = json.loads((tmp_path / "a" / "tree-head.json").read_text())
        assert kept["last_seq"] == 6 and kept["tree_head"]["size"] == 7  # enrolment + 6 events
    finally:
        c.stop()
    ok = baomi("audit", "verify", "--data", str(sqlite_data), "--agent-state", str(tmp_path / "a"), check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # the collector's database is restored from the backup: events 4..6 are gone
    for suffix in ("", "-wal", "-shm"):
        (sqlite_data / f"audit.sqlite{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, sqlite_data / "audit.sqlite")
    bad = baomi("audit", "verify", "--data", str(sqlite_data), "--agent-state", str(tmp_path / "a"), check=False)
    assert bad.returncode == 1 and "first bad entry #5" in bad.stdout and "truncated" in bad.stdout, bad.stdout
    # an ack from the restored collector goes backwards: the agent keeps the older head beside it
    from reports.merkle import AgentHead
    from reports.server import load_data

    store = open_store(sqlite_data)
    try:
        head = TreeKeeper(store, load_data(sqlite_data).checkpoint_key).ack(a.agent)  # type: ignore[arg-type]
    finally:
        store.close()
    assert AgentHead.from_dict(head).head.size == 4
    a._keep_head(head)
    a.close()
    assert json.loads((tmp_path / "a" / "tree-head.json").read_text())["tree_head"]["size"] == 4
    assert json.loads((tmp_path / "a" / "tree-head-rollback-7.json").read_text())["last_seq"] == 6
    again = baomi("audit", "verify", "--data", str(sqlite_data), "--agent-state", str(tmp_path / "a"),
                  check=False)
    assert again.returncode == 1 and "attests 7 entries" in again.stdout, again.stdout
    # a head not signed by the collector's checkpoint key is not kept
    forged = {**head, "tree_head": {**head["tree_head"], "size": 99}}
    b = type(a)(tmp_path / "a")
    b._keep_head(forged)
    b.close()
    assert json.loads((tmp_path / "a" / "tree-head.json").read_text())["tree_head"]["size"] == 4


def test_an_empty_witness_directory_is_a_user_error(tmp_path: Path) -> None:
    """A mistyped witness path must not pass for a witness that agrees: one line, exit 2."""
    from reports.server import init_data

    init_data(tmp_path / "srv")
    (tmp_path / "empty").mkdir()
    res = baomi("audit", "verify", "--data", str(tmp_path / "srv"), "--witness", str(tmp_path / "empty"),
                check=False)
    assert res.returncode == 2 and "holds no tree head" in res.stderr, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
