"""Issue 11: the cheapest ways to hide a marking, each reproduced first, and their siblings.

The rule: a marking that stands as a document's own classification is a marking whatever
surrounds it — control bytes, a sparse hole, a binary container, a title on the same line, a star
or bracket the grammar accepts, a file too large to be read whole.
"""
from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rules import vocabulary
from rules.loader import ENCODINGS, RuleSet
from scanner.config import ScanConfig, config_digest
from scanner.engine import STREAM_CHUNK, Scanner

BAOMI = str(Path(sys.executable).parent / "baomi")
BODY = "关于加强办公室工作的通知\n各处室：\n现将有关事项通知如下。\n"


def scan(path: Path, *args: str) -> dict:
    p = subprocess.run([BAOMI, "scan", "--format", "jsonl", "--all", "--no-cache", *args, str(path)],
                       capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
    recs = [json.loads(x) for x in p.stdout.decode().splitlines() if x.strip()]
    assert len(recs) == 1, p.stderr.decode()
    return recs[0]


def markings(rec: dict) -> list[str]:
    return [f["text"] for f in rec["findings"] if f["kind"] == "marking"]


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(ScanConfig())


def verdict(scanner: Scanner, data: bytes) -> str | None:
    findings, _errors, _mime = scanner.scan_bytes(data, "x")
    levels = [f.level.value for f in findings if f.kind.value == "marking" and f.level]
    return max(levels, key=("internal", "confidential", "secret", "top_secret").index) if levels else None


@pytest.mark.parametrize("prefix", [b"\x00", b"\x00\x00\x00\x00", b"\x01", b"\x1b[0m", b"\x7f", b"\xef\xbb\xbf\x00",
                                    b"\x0c\x00", b"\x00" * 4096, b"\x08\x08"])
def test_control_bytes_before_the_marking(scanner: Scanner, prefix: bytes) -> None:
    data = prefix + ("绝密★长期\n" + BODY).encode("utf-8")
    assert verdict(scanner, data) == "top_secret"
    gbk = prefix + ("绝密★长期\n" + BODY).encode("gbk")
    assert verdict(scanner, gbk) == "top_secret"


def test_nul_file_end_to_end_says_text_came_from_runs(tmp_path: Path) -> None:
    f = tmp_path / "n.txt"
    f.write_bytes(b"\x00" + ("绝密★长期\n" + BODY).encode("utf-8"))
    rec = scan(f)
    assert rec["level"] == "top_secret" and markings(rec) == ["绝密★长期"]
    assert rec["text_source"] == "runs"


def test_prose_in_binary_stays_a_mention(scanner: Scanner) -> None:
    data = b"\x00\x01" + "保密工作很重要，不得泄露国家机密。对标注“秘密★5年”的文件要登记。".encode() + b"\x00\x02"
    assert verdict(scanner, data) is None


def test_sparse_hole_before_the_marking(tmp_path: Path) -> None:
    f = tmp_path / "sparse.txt"
    with open(f, "wb") as fh:
        fh.seek(10 * 1024 * 1024)
        fh.write(("机密★10年\n" + BODY).encode("utf-8"))
    rec = scan(f)
    assert rec["level"] == "secret" and markings(rec) == ["机密★10年"]


def test_marking_as_a_text_run_in_a_database(tmp_path: Path) -> None:
    db = tmp_path / "office.sqlite"
    con = sqlite3.connect(db)
    con.execute("create table doc(id integer primary key, title text, body text)")
    con.execute("insert into doc(title, body) values (?, ?)", ("通知", "机密★10年\n" + BODY))
    con.execute("insert into doc(title, body) values (?, ?)", ("说明", "保密工作很重要，不得泄露国家机密。"))
    con.commit()
    con.close()
    rec = scan(db)
    assert rec["level"] == "secret" and "机密★10年" in markings(rec)
    assert rec["text_source"] == "runs"


@pytest.mark.parametrize("enc", ["utf-16-le", "gb18030", "utf-8", "big5"])
def test_marking_as_a_run_in_a_proprietary_binary(scanner: Scanner, enc: str) -> None:
    text = "絕密★長期\n關於加強辦公室工作的通知\n" if enc == "big5" else "绝密★长期\n" + BODY
    blob = b"PROPRIETARY\x00\x01\x02\x03" + bytes(range(256)) + b"\x00\x10" + text.encode(enc) + b"\x00\x00\x03"
    assert verdict(scanner, blob) == "top_secret"


def test_unmarked_binary_has_no_finding(scanner: Scanner) -> None:
    blob = bytes(range(256)) * 64 + "机密".encode() + bytes(range(256))
    assert verdict(scanner, blob) is None


def test_marking_after_4k_nuls_in_a_zip_member(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("inner/notice.txt", b"\x00" * 4096 + ("秘密★5年\n" + BODY).encode("utf-8"))
    f = tmp_path / "a.zip"
    f.write_bytes(buf.getvalue())
    rec = scan(f)
    assert rec["level"] == "confidential" and rec["findings"][0]["member"] == "inner/notice.txt"


def test_marking_and_title_on_the_first_line(tmp_path: Path) -> None:
    f = tmp_path / "t.txt"
    f.write_text("机密★10年 关于某事的通知\n正文。\n", encoding="utf-8")
    assert scan(f)["level"] == "secret"
    f.write_text("机密★10年　关于某事的通知\n正文。\n", encoding="gbk")
    assert scan(f)["level"] == "secret"
    # a sentence about the mark, or a mark deep in the text, stays a mention
    f.write_text("机密★10年 的文件应当登记\n正文。\n", encoding="utf-8")
    assert scan(f)["level"] is None
    f.write_text("绝密★长期、机密★十年、秘密★五年是三种标志。\n", encoding="utf-8")
    assert scan(f)["level"] is None
    f.write_text("正文第一行。\n" * 20 + "机密★10年 关于某事的通知\n", encoding="utf-8")
    assert scan(f)["level"] is None


def _forms() -> list[tuple[str, str]]:
    """(text, expected level) for every star, separator and period opener of the vocabulary."""
    out = []
    for word, lv in (("绝密", "top_secret"), ("机密", "secret"), ("秘密", "confidential")):
        out += [(f"{word}{s}10年", lv) for s in vocabulary.STARS_RAW]
        out += [(f"{word}{s}10年", lv) for s in vocabulary.ALT_SEPS]
        out += [(f"{word}（{n}年）", lv) for n in ("十", "二十", "五", "10", "１０")]
        out += [(f"{word}（六个月）", lv), (f"{word}(长期)", lv)]
    out += [("ＴＯＰ ＳＥＣＲＥＴ//ＮＯＦＯＲＮ", "top_secret"), ("ＳＥＣＲＥＴ", "secret"),
            ("ＣＯＮＦＩＤＥＮＴＩＡＬ", "confidential")]
    return out


@pytest.mark.parametrize("enc", ENCODINGS)
def test_prefilter_hits_every_form_the_grammar_accepts(enc: str) -> None:
    rules = RuleSet()
    missed = []
    for form, _lv in _forms():
        data = (form + "\n" + BODY).encode(enc, errors="strict") if _ok(form + BODY, enc) else None
        if data is not None and not rules.prefilter(data):
            missed.append(form)
    assert missed == []


def _ok(text: str, enc: str) -> bool:
    try:
        text.encode(enc)
        return True
    except UnicodeEncodeError:
        return False


@pytest.mark.parametrize("enc", ["utf-8", "gb18030", "utf-16"])
def test_every_form_is_found_in_plain_text(scanner: Scanner, enc: str) -> None:
    wrong = []
    for form, lv in _forms():
        if not _ok(form, enc):
            continue
        got = verdict(scanner, (form + "\n" + BODY).encode(enc))
        if got != lv:
            wrong.append((form, got))
    assert wrong == []


def test_site_matchers_fire_on_streamed_large_text(tmp_path: Path) -> None:
    kw = tmp_path / "kw.txt"
    kw.write_text("蓝天工程\n", encoding="utf-8")
    rd = tmp_path / "rules"
    rd.mkdir()
    (rd / "a.yar").write_text('rule project_x { strings: $a = "PROJECT-X-7" condition: $a }')
    big = tmp_path / "big.txt"
    line = "今天天气很好，这是一行普通的文字。\n".encode()
    with open(big, "wb") as fh:
        fh.write(line * (STREAM_CHUNK // len(line) + 1000))
        fh.write("关于蓝天工程的说明 PROJECT-X-7\n".encode())
    assert big.stat().st_size > STREAM_CHUNK
    rec = scan(big, "--keywords", str(kw), "--rules", str(rd))
    kinds = {(f["kind"], f["text"]) for f in rec["findings"]}
    assert ("keyword", "蓝天工程") in kinds
    assert any(k == "rule" for k, _ in kinds)


def test_cache_key_holds_ocr_availability(monkeypatch: pytest.MonkeyPatch) -> None:
    import scanner.config as config

    cfg = ScanConfig()
    rules = RuleSet()
    with_ocr = config_digest(cfg, rules)
    monkeypatch.setattr(config, "ocr_available", lambda: False)
    without = config_digest(cfg, rules)
    assert with_ocr != without, "a verdict reached without OCR must not be served once OCR is installed"


def test_runs_label_is_per_file_when_threads_share_a_scanner(scanner: Scanner, tmp_path: Path) -> None:
    """The agent scans on several threads with one warm Scanner: the `text_source` of one file must
    not leak onto another's record (it was state on the scanner object)."""
    from concurrent.futures import ThreadPoolExecutor

    binary, plain = tmp_path / "b.txt", tmp_path / "p.txt"
    binary.write_bytes(b"\x00" + ("绝密★长期\n" + BODY).encode())
    plain.write_text("机密★10年\n" + BODY, encoding="utf-8")
    with ThreadPoolExecutor(4) as pool:
        recs = list(pool.map(lambda p: scanner.scan_path(str(p)).to_record(), [binary, plain] * 40))
    assert all(r.get("text_source") == "runs" for r in recs if r["path"] == str(binary))
    assert not any("text_source" in r for r in recs if r["path"] == str(plain))


def test_marking_after_4k_nuls_in_a_docx_xml_part(tmp_path: Path) -> None:
    """Issue 11's sibling: NULs before word/document.xml made the part unparsable and its marking
    unseen (reported corrupt, but the level was lost). The part is read without the control bytes."""
    import docx

    src = tmp_path / "n.docx"
    d = docx.Document()
    d.add_paragraph("机密★10年")
    d.add_paragraph("关于某事的通知")
    d.save(str(src))
    out = tmp_path / "padded.docx"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zout.writestr(info, b"\x00" * 4096 + data if info.filename == "word/document.xml" else data)
    rec = scan(out)
    assert rec["level"] == "secret" and "机密★10年" in markings(rec)
    assert [(e["member"], e["error"]) for e in rec["errors"]] == [("word/document.xml", "corrupt")]
