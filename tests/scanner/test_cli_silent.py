"""Issue 11: what a first real user hit — nothing left unscanned may read as "clean".

Each test reproduces one report: a mistyped path, unreadable directories and files, policy
violations missing from the table, unvalidated host roles, keyword hits not counted, English-only
help, untranslated error codes, basename-only excludes, GBK keyword lists, a progress bar without a
total or writing to stdout.
"""
from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BAOMI = str(Path(sys.executable).parent / "baomi")
MARKED = "000012\n机密★10年\n特急\n关于加强办公室工作的通知\n正文。\n"


def baomi(*args: str, prefix: list[str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*(prefix or []), BAOMI, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def jsonl(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def without_dac() -> list[str]:
    """A command prefix under which permission bits bind (root reads anything otherwise)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("running as root without setpriv: cannot drop CAP_DAC_OVERRIDE to make a file unreadable")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def test_nonexistent_path_is_a_usage_error(tmp_path: Path) -> None:
    p = baomi("scan", "--format", "jsonl", str(tmp_path / "no-such-mount"))
    assert p.returncode == 2
    assert "no-such-mount" in p.stderr and "不存在" in p.stderr
    assert p.stdout.strip() == ""
    # one good path beside a mistyped one: still a usage error, nothing half-reported as clean
    (tmp_path / "ok.txt").write_text("今天天气很好。\n", encoding="utf-8")
    p = baomi("--lang", "en", "scan", str(tmp_path / "ok.txt"), str(tmp_path / "typo"))
    assert p.returncode == 2 and "no such file or directory" in p.stderr


def test_unreadable_subdirectory_is_an_error_record(tmp_path: Path) -> None:
    prefix = without_dac()
    (tmp_path / "ok.txt").write_text("今天天气很好。\n", encoding="utf-8")
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "secret.txt").write_text(MARKED, encoding="utf-8")
    locked.chmod(0)
    try:
        p = baomi("scan", "--format", "jsonl", "--no-cache", str(tmp_path), prefix=prefix)
    finally:
        locked.chmod(0o755)
    recs = jsonl(p.stdout)
    assert [(Path(r["path"]).name, r["errors"][0]["error"]) for r in recs] == [("locked", "unreadable")]
    assert p.returncode == 3, "something could not be read and nothing classified was found"


def test_unreadable_file_argument_is_an_error_record(tmp_path: Path) -> None:
    prefix = without_dac()
    f = tmp_path / "f.txt"
    f.write_text(MARKED, encoding="utf-8")
    f.chmod(0)
    p = baomi("scan", "--format", "jsonl", "--no-cache", str(f), prefix=prefix)
    recs = jsonl(p.stdout)
    assert p.returncode == 3, p.stderr
    assert recs[0]["path"] == str(f) and recs[0]["errors"][0]["error"] == "unreadable"


def test_table_shows_policy_violations(tmp_path: Path) -> None:
    (tmp_path / "m.txt").write_text(MARKED, encoding="utf-8")
    p = baomi("scan", "--format", "table", "--no-cache", "--policy", "cn-secrecy", "--host-role", "unclassified",
              str(tmp_path))
    assert p.returncode == 1
    assert "策略违规" in p.stdout and "CN-SEC-001" in p.stdout
    assert "1 项策略违规" in p.stdout


@pytest.mark.parametrize("args, words", [
    (["--host-role", "secret"], "classified:secret"),
    (["--host-role", "classified"], "classified"),
    (["--host-role", "classified:bogus"], "bogus"),
    (["--host-role", "unclassified:secret"], "unclassified"),
    (["--location", "usb"], "removable_medium"),
])
def test_host_role_and_location_are_validated(tmp_path: Path, args: list[str], words: str) -> None:
    (tmp_path / "m.txt").write_text(MARKED, encoding="utf-8")
    p = baomi("scan", "--format", "jsonl", "--no-cache", "--policy", "cn-secrecy", *args, str(tmp_path))
    assert p.returncode == 2 and words in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_classified_host_with_chinese_level(tmp_path: Path) -> None:
    (tmp_path / "ts.txt").write_text("绝密★长期\n关于某事的通知\n正文。\n", encoding="utf-8")
    (tmp_path / "s.txt").write_text(MARKED, encoding="utf-8")
    p = baomi("scan", "--format", "jsonl", "--no-cache", "--policy", "cn-secrecy", "--host-role",
              "classified:机密", str(tmp_path))
    by = {Path(r["path"]).name: r for r in jsonl(p.stdout)}
    rules = {n: {v["rule"] for v in r["violations"]} for n, r in by.items()}
    assert "CN-SEC-002" in rules["ts.txt"], "a top-secret file above a secret host's approved level"
    assert "CN-SEC-002" not in rules["s.txt"]
    # the same validation in `policy explain`
    rec = tmp_path / "rec.jsonl"
    rec.write_text(json.dumps(by["ts.txt"], ensure_ascii=False) + "\n", encoding="utf-8")
    e = baomi("policy", "explain", str(rec), "--policy", "cn-secrecy", "--host-role", "classified")
    assert e.returncode == 2 and "classified:secret" in e.stderr
    e = baomi("policy", "explain", str(rec), "--policy", "cn-secrecy", "--host-role", "classified:机密")
    assert e.returncode == 1 and "CN-SEC-002" in e.stdout


def test_keyword_and_rule_hits_count_and_exit_one(tmp_path: Path) -> None:
    (tmp_path / "w.txt").write_text("今天天气很好。\n", encoding="utf-8")
    kw = tmp_path.parent / f"{tmp_path.name}-kw.txt"
    kw.write_bytes("天气\n".encode("gbk"))  # a GBK list, as Windows Notepad saves it on a Chinese desktop
    p = baomi("scan", "--format", "jsonl", "--no-cache", "--keywords", str(kw), str(tmp_path))
    assert p.returncode == 1, p.stderr
    assert [f["text"] for f in jsonl(p.stdout)[0]["findings"] if f["kind"] == "keyword"] == ["天气"]
    t = baomi("scan", "--format", "table", "--no-cache", "--keywords", str(kw), str(tmp_path))
    assert t.returncode == 1
    assert "关键词" in t.stdout and "1 个命中关键词或规则" in t.stdout
    for enc in ("utf-16", "gb18030", "utf-8-sig"):
        kw.write_bytes("天气\n".encode(enc))
        p = baomi("scan", "--format", "jsonl", "--no-cache", "--keywords", str(kw), str(tmp_path))
        assert p.returncode == 1, (enc, p.stderr)


def test_help_follows_the_language() -> None:
    zh = baomi("scan", "--help").stdout
    en = baomi("--lang", "en", "scan", "--help").stdout
    en2 = baomi("scan", "--lang", "en", "--help").stdout
    assert "报告每个文件" in zh and "Report every file" not in zh
    assert "Report every file" in en and "报告每个文件" not in en
    assert "Report every file" in en2


def test_error_codes_translated_in_chinese_table(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_bytes(b"x" * 5000)
    zh = baomi("scan", "--format", "table", "--no-cache", "--max-file-size", "1K", str(tmp_path))
    en = baomi("--lang", "en", "scan", "--format", "table", "--no-cache", "--max-file-size", "1K", str(tmp_path))
    assert zh.returncode == 3
    assert "超过大小上限" in zh.stdout and "too_large" not in zh.stdout
    assert "too_large" in en.stdout


def test_exclude_matches_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / "sub" / "a.txt").write_text(MARKED, encoding="utf-8")
    (tmp_path / "sub" / "deep" / "b.txt").write_text(MARKED, encoding="utf-8")
    (tmp_path / "top.txt").write_text(MARKED, encoding="utf-8")
    (tmp_path / "x.docx").write_text(MARKED, encoding="utf-8")
    (tmp_path / "sub" / "deep" / "y.docx").write_text(MARKED, encoding="utf-8")

    def names(*ex: str) -> set[str]:
        args = [a for e in ex for a in ("--exclude", e)]
        p = baomi("scan", "--format", "jsonl", "--no-cache", *args, str(tmp_path))
        return {os.path.relpath(r["path"], tmp_path) for r in jsonl(p.stdout)}

    everything = names()
    assert len(everything) == 5
    assert names("sub/*") == {"top.txt", "x.docx"}
    assert names("**/*.docx") == everything - {"x.docx", "sub/deep/y.docx"}
    assert names("*.docx") == everything - {"x.docx", "sub/deep/y.docx"}


def test_progress_on_a_terminal_stays_off_stdout(tmp_path: Path) -> None:
    for i in range(30):
        (tmp_path / f"f{i}.txt").write_text(MARKED if i == 7 else "今天天气很好。\n", encoding="utf-8")
    master, slave = pty.openpty()
    try:
        p = subprocess.run([BAOMI, "scan", "--no-cache", str(tmp_path)], stdout=subprocess.PIPE, stderr=slave,
                           stdin=subprocess.DEVNULL, timeout=120)
        os.close(slave)
        slave = -1
        err = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
    finally:
        if slave != -1:
            os.close(slave)
        os.close(master)
    out = p.stdout.decode()
    assert p.returncode == 1
    assert out.endswith("\n") and all(line.strip() for line in out.splitlines()), "no blank line in the JSONL"
    assert len(jsonl(out)) == 1
    assert b"/30" in err, "the bar shows a total"
