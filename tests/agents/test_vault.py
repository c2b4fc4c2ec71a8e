"""The quarantine vault: sealed to the officer's key, unreadable on the workstation, restored exactly."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agents.vault import CHUNK, Vault, VaultError, keygen, load_private

BAOMI = str(Path(sys.executable).parent / "baomi")


@pytest.fixture()
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return keygen(tmp_path / "officer")


@pytest.mark.parametrize("size", [0, 1, 4096, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_seal_and_restore_exact_bytes_and_mode(tmp_path: Path, keys: tuple[Path, Path], size: int) -> None:
    key, pub = keys
    src = tmp_path / "out" / "机密通知.docx"
    src.parent.mkdir()
    data = os.urandom(size)
    src.write_bytes(data)
    src.chmod(0o640)
    v = Vault(tmp_path / "vault", pub)
    item = v.seal(src, reason={"rule": "CN-SEC-001", "policy": "7"})
    assert not src.exists(), "the original is removed once sealed"
    assert item.size == size and item.mode == 0o640 and item.original_path == str(src)
    sealed = (tmp_path / "vault" / f"{item.id}.sealed").read_bytes()
    if size >= 64:
        assert data[:64] not in sealed
    out = v.restore(item.id, load_private(key))
    assert out == src and src.read_bytes() == data
    assert src.stat().st_mode & 0o7777 == 0o640


def test_workstation_cannot_read_the_vault(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    _key, pub = keys
    src = tmp_path / "a.txt"
    src.write_bytes("机密★10年\n关于某事的通知\n".encode() * 100)
    v = Vault(tmp_path / "vault", pub)
    item = v.seal(src, reason={})
    # nothing in the vault or beside the public key opens it
    assert not any(p.suffix == ".key" for p in (tmp_path / "vault").iterdir())
    meta = json.loads((tmp_path / "vault" / f"{item.id}.json").read_text())
    assert "机密" not in json.dumps(meta, ensure_ascii=False), "metadata holds no content"
    other, _ = keygen(tmp_path / "someone-else")
    with pytest.raises(VaultError, match="wrong officer key"):
        v.restore(item.id, load_private(other), tmp_path / "x.txt")
    assert not (tmp_path / "x.txt").exists()


def test_damaged_or_truncated_items_are_refused(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    key, pub = keys
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(2 * CHUNK + 5))
    v = Vault(tmp_path / "vault", pub)
    item = v.seal(src)
    sealed = tmp_path / "vault" / f"{item.id}.sealed"
    blob = bytearray(sealed.read_bytes())
    blob[-100] ^= 1
    sealed.write_bytes(bytes(blob))
    with pytest.raises(VaultError):
        v.restore(item.id, load_private(key), tmp_path / "r1")
    sealed.write_bytes(bytes(blob[: len(blob) - (5 + 16)]))  # the last chunk dropped
    blob[-100] ^= 1
    sealed.write_bytes(bytes(blob[: len(blob) - (5 + 16)]))
    with pytest.raises(VaultError):
        v.restore(item.id, load_private(key), tmp_path / "r2")
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_keygen_refuses_planted_symlinks_and_existing_keys(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("keep me")
    os.symlink(target, tmp_path / "k.key")
    with pytest.raises(VaultError):
        keygen(tmp_path / "k")
    assert target.read_text() == "keep me"
    key, pub = keygen(tmp_path / "good")
    assert key.stat().st_mode & 0o777 == 0o600
    with pytest.raises(VaultError):
        keygen(tmp_path / "good")


def test_disk_full_keeps_the_original(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    _key, pub = keys
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a small tmpfs as a full vault disk")
    vdir = tmp_path / "small"
    vdir.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(vdir)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (no CAP_SYS_ADMIN in this container)")
    try:
        src = tmp_path / "big.bin"
        data = os.urandom(512 * 1024)
        src.write_bytes(data)
        with pytest.raises(VaultError, match="cannot seal"):
            Vault(vdir / "vault", pub).seal(src)
        assert src.read_bytes() == data, "nothing is lost when the vault disk is full"
        assert [p.name for p in (vdir / "vault").iterdir()] == [], "no partial item is left"
    finally:
        subprocess.run(["umount", str(vdir)], check=False)


def test_officer_cli(tmp_path: Path) -> None:
    env = {**os.environ, "BAOMI_LANG": "en"}

    def run(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([BAOMI, *a], capture_output=True, text=True, env=env, timeout=60)

    p = run("quarantine", "keygen", "--out", str(tmp_path / "officer"))
    assert p.returncode == 0, p.stderr
    src = tmp_path / "f.txt"
    src.write_bytes(b"payload \x00\x01 bytes")
    src.chmod(0o600)
    item = Vault(tmp_path / "v", tmp_path / "officer.pub").seal(src, reason={"rule": "CN-SEC-003"})
    p = run("quarantine", "list", "--vault", str(tmp_path / "v"), "--format", "jsonl")
    assert json.loads(p.stdout)["id"] == item.id
    p = run("quarantine", "show", item.id, "--vault", str(tmp_path / "v"))
    assert json.loads(p.stdout)["reason"]["rule"] == "CN-SEC-003"
    p = run("quarantine", "restore", item.id, "--vault", str(tmp_path / "v"), "--key", str(tmp_path / "officer.pub"))
    assert p.returncode == 2 and "Traceback" not in p.stderr, "a public key cannot restore"
    p = run("quarantine", "restore", item.id, "--vault", str(tmp_path / "v"), "--key", str(tmp_path / "officer.key"),
            "--to", str(tmp_path / "back.txt"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "back.txt").read_bytes() == b"payload \x00\x01 bytes"
    p = run("quarantine", "purge", item.id, "--vault", str(tmp_path / "v"), "--yes")
    assert p.returncode == 0
    p = run("quarantine", "show", item.id, "--vault", str(tmp_path / "v"))
    assert p.returncode == 2 and "no item" in p.stderr
