"""`baomi scan` end to end: the JSONL contract, exit codes, errors, walking, keywords, rules."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BAOMI = [sys.executable, "-m", "agents.main"] if False else [str(Path(sys.executable).parent / "baomi")]
MARKED = "000012\n机密★10年\n特急\n关于加强办公室工作的通知\n正文。\n"
PROSE = "保密工作很重要，不得泄露国家机密。对标注“秘密★5年”的文件要登记。\n"


def run(*args: str, cwd: Path | None = None, timeout: float = 120) -> tuple[int, list[dict], str]:
    p = subprocess.run(BAOMI + ["scan", "--format", "jsonl", *args], capture_output=True, timeout=timeout,
                       cwd=cwd, stdin=subprocess.DEVNULL)
    recs = [json.loads(line) for line in p.stdout.decode("utf-8").splitlines() if line.strip()]
    return p.returncode, recs, p.stderr.decode("utf-8", "replace")


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "marked.txt").write_text(MARKED, encoding="utf-8")
    (tmp_path / "a" / "gbk.txt").write_bytes(MARKED.replace("机密★10年", "绝密★长期").encode("gbk"))
    (tmp_path / "prose.txt").write_text(PROSE, encoding="utf-8")
    (tmp_path / "clean.txt").write_text("今天天气很好。\n", encoding="utf-8")
    return tmp_path


def test_jsonl_contract_and_exit_code(tree: Path) -> None:
    code, recs, err = run(str(tree), "--sort")
    assert code == 1, err
    by = {Path(r["path"]).name: r for r in recs}
    assert set(by) == {"marked.txt", "gbk.txt", "prose.txt"}, "clean files have no record without --all"
    m = by["marked.txt"]
    assert m["schema"] == 1 and m["level"] == "secret" and m["errors"] == []
    f = m["findings"][0]
    assert {"level", "kind", "text", "member", "period", "rule", "confidence"} <= set(f)
    assert (f["level"], f["kind"], f["text"], f["member"], f["period"]) == ("secret", "marking", "机密★10年", None,
                                                                            {"years": 10})
    assert by["gbk.txt"]["level"] == "top_secret"
    assert by["prose.txt"]["level"] is None
    assert {x["kind"] for x in by["prose.txt"]["findings"]} == {"mention"}
    assert [r["path"] for r in recs] == sorted(r["path"] for r in recs)


def test_all_and_clean_exit_zero(tree: Path) -> None:
    code, recs, _ = run(str(tree / "clean.txt"), "--all")
    assert code == 0
    assert len(recs) == 1 and recs[0]["level"] is None and recs[0]["findings"] == []


def test_json_format(tree: Path) -> None:
    p = subprocess.run(BAOMI + ["scan", "--format", "json", str(tree)], capture_output=True, timeout=60)
    doc = json.loads(p.stdout)
    assert doc["schema"] == 1 and len(doc["files"]) == 3


def test_table_format_bilingual(tree: Path) -> None:
    zh = subprocess.run(BAOMI + ["scan", "--format", "table", str(tree)], capture_output=True, timeout=60)
    en = subprocess.run(BAOMI + ["--lang", "en", "scan", "--format", "table", str(tree)], capture_output=True,
                        timeout=60)
    assert "机密★10年" in zh.stdout.decode() and "共扫描" in zh.stdout.decode()
    assert "Scanned 4 files" in en.stdout.decode()
    en2 = subprocess.run(BAOMI + ["scan", "--lang", "en", "--format", "table", str(tree)], capture_output=True,
                         timeout=60)
    assert "Scanned 4 files" in en2.stdout.decode()


def test_usage_error_exit_two(tmp_path: Path) -> None:
    p = subprocess.run(BAOMI + ["scan", "--format", "bogus", str(tmp_path)], capture_output=True, timeout=60)
    assert p.returncode == 2


def test_unreadable_and_unsupported_give_error_records_exit_three(tmp_path: Path) -> None:
    bad = tmp_path / "locked.txt"
    bad.write_text(MARKED, encoding="utf-8")
    bad.chmod(0)
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 5000)
    code, recs, _ = run(str(tmp_path), "--max-file-size", "1K")
    by = {Path(r["path"]).name: r for r in recs}
    assert by["big.txt"]["errors"][0]["error"] == "too_large"
    if os.geteuid() != 0:  # root reads anything
        assert by["locked.txt"]["errors"][0]["error"] == "unreadable"
    assert code in (1, 3)
    if os.geteuid() == 0:
        assert code == 1  # locked.txt was read (root) and is classified
    (tmp_path / "locked.txt").unlink()
    code, recs, _ = run(str(tmp_path), "--max-file-size", "1K")
    assert code == 3


def test_fifo_socket_symlinks_are_skipped_not_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.fifo")
    (tmp_path / "in.txt").write_text(MARKED, encoding="utf-8")
    os.symlink("/etc", tmp_path / "outside")
    os.symlink("loop-b", tmp_path / "loop-a")
    os.symlink("loop-a", tmp_path / "loop-b")
    (tmp_path / "sub").mkdir()
    os.symlink("..", tmp_path / "sub" / "up")
    os.symlink("in.txt", tmp_path / "alias.txt")
    code, recs, _ = run(str(tmp_path), "--all", timeout=60)
    by = {os.path.relpath(r["path"], tmp_path): r for r in recs}
    assert by["in.txt"]["level"] == "secret"
    assert by["pipe.fifo"]["skipped"] == "fifo"
    assert by["outside"]["skipped"] == "symlink-outside-tree"
    assert by["loop-a"]["skipped"].startswith("symlink-loop")
    assert by["alias.txt"]["skipped"] == "symlink-inside-tree"
    assert not any(p.startswith("sub/up/") for p in by), "directory symlinks are not followed"
    assert code == 1


def test_exclude_and_one_file_system(tree: Path) -> None:
    code, recs, _ = run(str(tree), "--exclude", "a/*", "--exclude", "prose.txt")
    assert recs == [] and code == 0
    code, recs, _ = run(str(tree), "--one-file-system")
    assert {Path(r["path"]).name for r in recs} == {"marked.txt", "gbk.txt", "prose.txt"}


def test_keywords_and_site_rules(tree: Path, tmp_path: Path) -> None:
    kw = tmp_path / "kw.txt"
    kw.write_text("天气\n", encoding="utf-8")
    rd = tmp_path / "r"
    rd.mkdir()
    (rd / "a.yar").write_text('rule notice { strings: $a = "\\xe9\\x80\\x9a\\xe7\\x9f\\xa5" condition: $a }')
    code, recs, _ = run(str(tree), "--keywords", str(kw), "--rules", str(rd))
    by = {Path(r["path"]).name: r for r in recs}
    assert [f["text"] for f in by["clean.txt"]["findings"] if f["kind"] == "keyword"] == ["天气"]
    assert any(f["kind"] == "rule" and f["rule"] == "rule:notice" for f in by["marked.txt"]["findings"])
    assert by["clean.txt"]["level"] is None, "keywords never classify"


def test_bad_rules_are_a_usage_error(tmp_path: Path) -> None:
    rd = tmp_path / "r"
    rd.mkdir()
    (rd / "bad.yar").write_text("rule { nonsense")
    p = subprocess.run(BAOMI + ["scan", "--rules", str(rd), str(tmp_path)], capture_output=True, timeout=60)
    assert p.returncode == 2 and b"Traceback" not in p.stderr


def test_undecodable_file_name(tmp_path: Path) -> None:
    name = os.path.join(os.fsencode(tmp_path), b"bad-\xff\xfe-name.txt")
    with open(name, "wb") as fh:
        fh.write(MARKED.encode())
    code, recs, _ = run(str(tmp_path))
    assert code == 1
    assert os.fsencode(recs[0]["path"]) == name


def test_large_text_file_streams_and_finds_a_tail_marking(tmp_path: Path) -> None:
    big = tmp_path / "large-tail.txt"
    line = "本段为普通工作内容，没有任何涉密信息。\n".encode()
    with open(big, "wb") as fh:
        for _ in range(40 * 1024 * 1024 // len(line)):
            fh.write(line)
        fh.write("\n机密★1年\n".encode())
    code, recs, _ = run(str(big))
    assert code == 1 and recs[0]["level"] == "secret"


def test_policy_adds_violations_to_scan_output(tree: Path) -> None:
    code, recs, err = run(str(tree / "a" / "marked.txt"), "--policy", "cn-secrecy", "--host-role", "unclassified")
    assert code == 1, err
    v = recs[0]["violations"]
    assert any(x["rule"] == "CN-SEC-001" for x in v), v
    assert all(x["rationale_zh"] and x["rationale_en"] for x in v)
    # the same file on a host approved for 机密 violates nothing of that rule
    code, recs, err = run(str(tree / "a" / "marked.txt"), "--policy", "cn-secrecy", "--host-role", "classified:secret")
    assert not any(x["rule"] in ("CN-SEC-001", "CN-SEC-002") for x in recs[0].get("violations", []))


def test_unknown_policy_is_a_usage_error(tree: Path) -> None:
    p = subprocess.run(BAOMI + ["scan", "--policy", "no-such-pack", str(tree)], capture_output=True, timeout=60)
    assert p.returncode == 2 and b"Traceback" not in p.stderr


def test_large_document_is_parsed_whole_not_refused(tmp_path: Path) -> None:
    """A 20 MB archive (above the text streaming chunk) is read like any document."""
    import os as _os
    import zipfile

    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("padding.bin", _os.urandom(20 * 1024 * 1024))
        zf.writestr("通知.txt", MARKED)
    code, recs, err = run(str(z))
    assert code == 1, err
    assert recs[0]["level"] == "secret" and recs[0]["errors"] == []


def test_demo_builds_samples_and_finds_their_markings(tmp_path: Path) -> None:
    d = tmp_path / "samples"
    p = subprocess.run(BAOMI + ["--lang", "en", "demo", "--dir", str(d)], capture_output=True, timeout=300,
                       check=False)
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr.decode()[-500:]
    assert "10 carry a classification marking" in out, out[-600:]
    code, recs, _ = run(str(d), "--no-cache")
    assert code == 1 and sum(1 for r in recs if r["level"]) == 10


def test_hash_all_hashes_clean_files_too(tree: Path) -> None:
    import hashlib

    clean = tree / "clean.txt"
    _, recs, _ = run(str(clean), "--all", "--no-cache")
    assert "sha256" not in recs[0], "by default only flagged files are hashed"
    _, recs, _ = run(str(clean), "--all", "--no-cache", "--hash", "all")
    assert recs[0]["sha256"] == hashlib.sha256(clean.read_bytes()).hexdigest()
    _, recs, _ = run(str(tree / "a" / "marked.txt"), "--no-cache", "--hash", "none")
    assert "sha256" not in recs[0]


def test_default_host_role_and_location_are_what_the_policy_model_parses() -> None:
    from agents.scan_cli import _DEFAULT_HOST, _check_host
    from policies.model import parse_host, parse_location

    role, loc = _DEFAULT_HOST
    assert _check_host(role, loc) == (*parse_host(role), parse_location(loc))
