"""`baomi quarantine` as an officer meets a real vault: damaged records, wrong keys, occupied
targets — one clear line and exit 2, never a traceback, and one bad entry hides no other."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.vault import Vault, keygen

BAOMI = str(Path(sys.executable).parent / "baomi")


def run(*a: str, lang: str = "en") -> subprocess.CompletedProcess[str]:
    return subprocess.run([BAOMI, *a], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "BAOMI_LANG": lang})


@pytest.fixture()
def vault(tmp_path: Path) -> tuple[Vault, Path, list[str]]:
    key, pub = keygen(tmp_path / "officer")
    v = Vault(tmp_path / "vault", pub)
    ids = []
    for i in range(2):
        f = tmp_path / f"机密文件{i}.txt"
        f.write_bytes(f"content {i}".encode())
        ids.append(v.seal(f, reason={"rule": "CN-SEC-001", "policy": "cn-secrecy@2026.1"}).id)
    return v, key, ids


@pytest.mark.parametrize("damage", [
    "{ truncated",                                                         # a torn write
    json.dumps({"id": "q-x", "sha256": 5, "original_path": "/a", "size": 1, "mode": 384,
                "sealed_at": "2026-12-05T12:00:00+00:00"}),                # wrong types
    json.dumps({"id": "q-x", "sha256": "ab", "original_path": "/a", "size": 1, "mode": 384,
                "sealed_at": "yesterday"}),                                # not a time
    "[]",
])
def test_one_damaged_record_hides_no_other(vault: tuple[Vault, Path, list[str]], damage: str) -> None:
    v, _key, ids = vault
    (v.path / "q-0000000000000000dead.json").write_text(damage)
    for fmt in ("jsonl", "table"):
        p = run("quarantine", "list", "--vault", str(v.path), "--format", fmt)
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
        assert "q-0000000000000000dead.json" in p.stderr
        if fmt == "jsonl":
            assert sorted(json.loads(line)["id"] for line in p.stdout.splitlines()) == sorted(ids)
        else:  # the table folds long cells at the terminal's width
            assert "2 sealed files" in p.stdout
    p = run("quarantine", "show", "q-0000000000000000dead", "--vault", str(v.path))
    assert p.returncode == 2 and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_officer_errors_are_one_line_exit_2(vault: tuple[Vault, Path, list[str]], tmp_path: Path) -> None:
    v, key, ids = vault
    other_key, _ = keygen(tmp_path / "someone-else")
    cases = [
        ("restore", ids[0], "--vault", str(v.path), "--key", str(other_key), "--to", str(tmp_path / "x.txt")),
        ("restore", ids[0], "--vault", str(v.path), "--key", str(key), "--to", str(tmp_path / "机密文件1.txt")),
        ("restore", "../../etc/passwd", "--vault", str(v.path), "--key", str(key)),
        ("show", "q-nope", "--vault", str(v.path)),
        ("keygen", "--out", str(tmp_path / "officer")),  # never overwrites a key
    ]
    (tmp_path / "机密文件1.txt").write_bytes(b"a new file the user made since")
    for lang in ("en", "zh"):
        for args in cases:
            p = run("quarantine", *args, lang=lang)
            assert p.returncode == 2, (args, p.stdout, p.stderr)
            assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert (tmp_path / "机密文件1.txt").read_bytes() == b"a new file the user made since"
    assert not (tmp_path / "x.txt").exists()
    # and the right key restores the exact bytes next to it
    p = run("quarantine", "restore", ids[1], "--vault", str(v.path), "--key", str(key),
            "--to", str(tmp_path / "back.txt"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "back.txt").read_bytes() == b"content 1"
