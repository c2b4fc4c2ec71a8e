"""Hostile inputs: bombs, deep nesting, encryption, corruption, FIFOs, sparse giants, symlink loops."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import need_shared

BAOMI = str(Path(sys.executable).parent / "baomi")


def _score(tool: Path, d: Path) -> str:
    p = subprocess.run([sys.executable, str(tool), "--dir", str(d), "--baomi", BAOMI, "--timeout", "120"],
                       capture_output=True, timeout=300)
    out = p.stdout.decode()
    assert p.returncode == 0, out
    return out


def test_shared_hostile_set() -> None:
    d = need_shared("hostile")
    out = _score(need_shared("tools") / "score_hostile.py", d)
    assert "hostile_ok=10/10" in out


def test_generated_hostile_set_with_fifo_sparse_giant_and_symlink_loops(tmp_path: Path) -> None:
    tools = need_shared("tools")
    d = tmp_path / "h"
    subprocess.run([sys.executable, str(tools / "gen_hostile.py"), "--out", str(d)], check=True,
                   capture_output=True, timeout=300)
    out = _score(tools / "score_hostile.py", d)
    n = sum(1 for _ in (d / "labels.jsonl").open())
    assert f"hostile_ok={n}/{n}" in out


def test_sparse_giant_costs_only_its_data(tmp_path: Path) -> None:
    f = tmp_path / "sparse.txt"
    with open(f, "wb") as fh:
        fh.write("开头\n".encode())
        fh.seek(3 * 1024 ** 3)
        fh.write("\n机密★1年\n".encode())
    p = subprocess.run([BAOMI, "scan", "--format", "jsonl", "--no-cache", str(f)], capture_output=True, timeout=60)
    rec = json.loads(p.stdout)
    assert rec["level"] == "secret" and rec["errors"] == []
    assert rec.get("sha256") is None, "sparse giants are not hashed"
