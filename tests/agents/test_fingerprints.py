"""Copies, stripped copies and destruction: the fingerprint index and `baomi check` on real prose."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from agent_helpers import baomi

from agents.fingerprints import FingerprintIndex

PROSE = Path(__file__).resolve().parents[3] / "shared" / "prose"


def _chunks(text: str, size: int = 420) -> list[str]:
    body = re.sub(r"\s+", "", re.sub(r"[#>*`\-]", "", text))
    return [body[i: i + size] for i in range(0, len(body) - size, size)]


def _docs() -> tuple[str, list[str]]:
    """The classified original (a passage of the 2024 implementing regulation) and ≥ 200 other
    passages of secrecy, archives and data law: same topic, same vocabulary, other text."""
    if not PROSE.is_dir():
        pytest.skip("../shared/prose is not beside the repository")
    source = next(PROSE.glob("保守国家秘密法实施条例*.md")).read_text(encoding="utf-8")
    parts = _chunks(source)
    original = parts[3]
    others = [c for c in parts if c != original]
    for f in sorted(PROSE.glob("*.md")):
        if "实施条例(2024" in f.name:
            continue
        others += _chunks(f.read_text(encoding="utf-8"))
    return original, others


def _paragraphs(text: str) -> str:
    return "\n".join(text[i: i + 60] for i in range(0, len(text), 60))


def test_index_is_encrypted_at_rest(tmp_path: Path) -> None:
    original, _ = _docs()
    idx = FingerprintIndex(tmp_path / "fp")
    idx.add("/home/a/秘密方案.txt", "ab" * 32, "secret", "机密★10年\n" + original, ["机密★10年"])
    idx.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "fp").iterdir() if p.suffix == ".sqlite")
    assert "秘密方案".encode() not in raw and b"abab" not in raw and b"secret" not in raw
    assert (tmp_path / "fp" / "fingerprints.key").stat().st_mode & 0o777 == 0o600
    again = FingerprintIndex(tmp_path / "fp")
    assert again.entries["/home/a/秘密方案.txt"].level == "secret"


def test_stripped_copy_found_and_same_topic_prose_not(tmp_path: Path) -> None:
    original, others = _docs()
    assert len(others) >= 200
    home = tmp_path / "home"
    (home / "docs").mkdir(parents=True)
    (home / "docs" / "original.txt").write_text("机密★10年\n关于某事的通知\n" + _paragraphs(original), encoding="utf-8")
    # the copy: marking deleted, one paragraph rewritten, saved elsewhere
    edited = _paragraphs(original).split("\n")
    edited[2] = "本段已由经办人改写，内容与原文不同，用于测试相似度的稳健性。"
    (home / "Desktop").mkdir()
    (home / "Desktop" / "整理稿.txt").write_text("关于某事的通知\n" + "\n".join(edited), encoding="utf-8")
    # a lowered copy: 秘密 instead of 机密
    (home / "Desktop" / "降密稿.txt").write_text("秘密★5年\n关于某事的通知\n" + _paragraphs(original), encoding="utf-8")
    for i, text in enumerate(others):
        (home / "law" / f"{i:03}.txt").parent.mkdir(exist_ok=True)
        (home / "law" / f"{i:03}.txt").write_text(_paragraphs(text), encoding="utf-8")
    p = baomi("check", "--root", str(home), "--host-role", "unclassified", "--no-cache", "--format", "json",
              "--fingerprints", str(tmp_path / "fp"), check=False)
    out = json.loads(p.stdout)
    copies = {Path(c["path"]).name: c for c in out["copies"] if Path(c["original"]).name == "original.txt"}
    assert copies["整理稿.txt"]["kind"] == "stripped_copy" and copies["整理稿.txt"]["similarity"] >= 0.6
    assert copies["降密稿.txt"]["kind"] == "stripped_copy" and copies["降密稿.txt"]["level"] == "confidential"
    false = [c for c in out["copies"] if Path(c["path"]).parent.name == "law"]
    assert false == [], f"{len(false)} of {len(others)} same-topic passages taken for copies"
    # judged as classified content: the stripped copy on an unclassified host is a violation itself
    assert any(v.get("copy_of", "").endswith("original.txt") and v["rule"] == "CN-SEC-001"
               for v in out["violations"])


def test_destroyed_classified_file_reported_once(tmp_path: Path) -> None:
    original, _ = _docs()
    home = tmp_path / "home"
    home.mkdir()
    f = home / "a.txt"
    f.write_text("绝密★长期\n关于某事的通知\n" + _paragraphs(original), encoding="utf-8")

    def run() -> dict:
        p = baomi("check", "--root", str(home), "--host-role", "classified:top_secret", "--no-cache", "--format",
                  "json", "--fingerprints", str(tmp_path / "fp"), check=False)
        return json.loads(p.stdout)

    assert run()["destroyed"] == []
    f.unlink()
    out = run()
    assert [d["path"] for d in out["destroyed"]] == [str(f.resolve())]
    assert any(v["rule"] == "CN-SEC-012" for v in out["violations"]), "destroyed without a destruction approval"
    assert run()["destroyed"] == [], "reported once"
