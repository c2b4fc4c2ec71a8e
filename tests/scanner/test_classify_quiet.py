"""The classifier's short cuts find what judging every candidate finds (issue 17, goal 3).

`scanner.classify` passes over a candidate line that can hold nothing but level words in prose
(`_quiet`) without its parsers, skips a segment with nothing `_candidate_starts` needs, reuses
a line's bounds for its next candidate and does not normalise a prose window that cannot add a
finding. The full path here is the classifier with `_quiet` answering False: every candidate
line judged by `_judge_line`. The two must give the same findings — mentions, lines and
confidences included — on:
- the whole public corpus, the hostile set, the real set and generated prose (.txt of the
  verdict bench's kind, split into pieces by the engine, and .docx), scanned by a `Scanner`;
- crafted items: markings at the top, in headers, cells and properties, tick-box fields, quoted
  markings, 解密 annotations, head tokens, English banners and portion marks, a marking after
  the word mentions are used up, marks at the edges of the engine's pieces;
- thousands of items assembled at random from the fragments markings are made of.
"""
from __future__ import annotations

import dataclasses
import random
import re
import sys
from pathlib import Path

import pytest

import scanner.classify as cl
from scanner.config import ScanConfig
from scanner.engine import _SPLIT_CHARS, Scanner, _classify_bounded
from scanner.grammar import _HEAD
from scanner.model import Finding, Kind, Level, Segment
from scanner.normalize import normalize
from tests.conftest import ROOT, SHARED


def _full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cl, "_quiet", lambda s: False)
    monkeypatch.setattr(cl, "_SCREEN_MIN_SEGMENTS", sys.maxsize)  # every segment searched alone


def _both(segs: list[Segment], monkeypatch: pytest.MonkeyPatch) -> tuple[list[Finding], list[Finding]]:
    fast = _classify_bounded(segs)
    with monkeypatch.context() as m:
        _full(m)
        full = _classify_bounded(segs)
    return fast, full


# -- crafted items ---------------------------------------------------------------------------------
_PROSE = "国家秘密的密级分为绝密、机密、秘密三级。"  # a quiet line: three word mentions
_SATURATE = "\n".join([_PROSE, "不得泄露机密。"])  # the word mentions of the item are used up

CRAFTED: list[tuple[str, list[Segment], Level | None]] = [
    ("top star", [Segment("机密★10年\n关于某事的通知\n" + _SATURATE)], Level.SECRET),
    ("top bare", [Segment("000012\n机密\n特急\n" + _SATURATE)], Level.SECRET),
    ("bare after words", [Segment(_SATURATE + "\n秘密\n正文。")], Level.CONFIDENTIAL),
    ("head tokens", [Segment(_SATURATE + "\n000012　机密　特急\n正文。")], Level.SECRET),
    ("page foot", [Segment(_SATURATE + "\n机密　　第 1 页 共 3 页")], Level.SECRET),
    ("star after words", [Segment(_SATURATE + "\n绝密★长期\n正文。")], Level.TOP_SECRET),
    ("label", [Segment(_SATURATE + "\n密级：机密\n正文。")], Level.SECRET),
    ("file label", [Segment(_SATURATE + "\n文件密级：秘密\n正文。")], Level.CONFIDENTIAL),
    ("paragraph mark", [Segment(_SATURATE + "\n（秘密）本段说明有关事项。")], Level.CONFIDENTIAL),
    ("list item", [Segment(_SATURATE + "\n（一）机密文件的管理。\n（二）秘密文件的管理。")], None),
    ("internal", [Segment(_SATURATE + "\n内部资料\n注意保存")], Level.INTERNAL),
    ("commercial", [Segment(_SATURATE + "\n核心商密★10年")], Level.INTERNAL),
    ("work secret", [Segment(_SATURATE + "\n工作秘密")], Level.INTERNAL),
    ("checkbox", [Segment(_SATURATE + "\n密级：□绝密 □机密 ■秘密")], Level.CONFIDENTIAL),
    ("checkbox brackets", [Segment(_SATURATE + "\n密级：( )绝密 (√)机密")], Level.SECRET),
    ("checkbox nbsp", [Segment(_SATURATE + "\n密级：(&nbsp;)绝密 (√)机密")], Level.SECRET),
    ("checkbox column", [Segment(_SATURATE + "\n□绝密\n■机密\n□秘密")], Level.SECRET),
    ("blank form", [Segment(_SATURATE + "\n密级：□绝密 □机密 □秘密")], None),
    ("quoted", [Segment(_SATURATE + "\n对标注“机密★5年”的文件，要按规定管理。")], None),
    ("quoted bare at the top", [Segment(_SATURATE + "\n“机密”\n正文。")], Level.SECRET),
    ("declassified", [Segment("机密★10年（已解密）\n" + _SATURATE)], None),
    ("bare under an annotation line", [Segment(_SATURATE + "\n已解密\n机密\n")], Level.SECRET),
    ("annotated label", [Segment(_SATURATE + "\n解密 密级：秘密")], None),
    ("header", [Segment(_SATURATE), Segment("机密", role="header", standalone=True)], Level.SECRET),
    ("footer", [Segment(_SATURATE), Segment("秘密★1年", role="footer", standalone=True)], Level.CONFIDENTIAL),
    ("cell", [Segment(_SATURATE), Segment("密级", role="cell", standalone=True),
              Segment("机密", role="cell", standalone=True)], Level.SECRET),
    ("property", [Segment(_SATURATE), Segment("机密", role="property", standalone=True, key="密级")], Level.SECRET),
    ("subject", [Segment(_SATURATE), Segment("绝密 关于某事的通知", role="subject", standalone=True)],
     Level.TOP_SECRET),
    ("banner", [Segment(_SATURATE + "\nTOP SECRET//NOFORN\n正文。")], Level.TOP_SECRET),
    ("banner after an OCR quote", [Segment(_SATURATE + "\n“SECRET RYBAT\n正文。")], Level.SECRET),
    ("classification field", [Segment(_SATURATE + "\nClassification: Secret\n正文。")], Level.SECRET),
    ("portions", [Segment(_SATURATE + "\n(S) First paragraph.\n(U) Second paragraph.")], Level.SECRET),
    ("pilcrow portions", [Segment(_SATURATE + "\n¶ (S) First.\n¶ (U) Second.")], None),
    ("digit portions", [Segment(_SATURATE + "\n١. (S) First.\n٢. (U) Second.")], None),
    ("fullwidth", [Segment(_SATURATE + "\n机密＊５年\n正文。")], Level.SECRET),
    ("zero width", [Segment(_SATURATE + "\n机\u200b密★5年\n正文。")], Level.SECRET),
    ("traditional", [Segment(_SATURATE + "\n機密★5年\n正文。")], Level.SECRET),
    ("list of levels", [Segment(_SATURATE + "\n标志示例：\n绝密★20年\n机密★10年\n秘密★5年")], None),
    ("line separator", [Segment(_SATURATE + "\u2028秘密\u2028正文。")], None),
    ("long line", [Segment(_SATURATE + "\n" + "正文内容" * 30 + "绝密★10年" + "正文" * 10)], None),
    ("long line head", [Segment(_SATURATE + "\n（机密）" + "正文内容" * 30)], Level.SECRET),
]


@pytest.mark.parametrize("name,segs,level", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_items(name: str, segs: list[Segment], level: Level | None, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, full = _both(segs, monkeypatch)
    assert fast == full
    marks = [f.level for f in fast if f.kind is Kind.MARKING and not f.declassified and f.level is not None]
    got = max(marks, key=lambda lv: lv.rank) if marks else None
    assert got is level, [(f.kind, f.text, f.rule) for f in fast]


def test_a_saturated_item_is_judged_by_the_quiet_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """The short cut is taken (so the comparisons above test it): prose lines after the third
    word mention are passed over, and no finding comes of them."""
    calls: list[tuple[str, bool]] = []
    real = cl._quiet

    def spy(s: str) -> bool:
        calls.append((s, real(s)))
        return calls[-1][1]

    monkeypatch.setattr(cl, "_quiet", spy)
    text = "\n".join([_PROSE] * 3 + ["机密★5年", _PROSE])
    fs = cl.classify([Segment(text)])
    assert [s for s, q in calls if q] == [_PROSE] * 4
    assert [(f.kind, f.text) for f in fs] == [(Kind.MENTION, w) for w in ("秘密", "绝密", "机密")] + \
        [(Kind.MARKING, "机密★5年")]


@pytest.mark.parametrize("line", [
    "机密★5年", "密级：机密", "（秘密）x", "(S) x", "1. (S) Text", "¶ (S) Text", "١. (S) Text",
    "TOP SECRET", "“SECRET RYBAT", "□机密", "(√)机密", "(&nbsp;)机密", "机密", "秘 密", "000012 机密 特急",
    "机密 第 1 页", "内部资料", "核心商密", "工作秘密", "文件密级 机密", "保密等级：秘密", "classification: secret",
    "已解密 机密", "解密\u3000机密", "（秘密）本段", "机密·5年", "机密(5年)", "¶ (S) Text 机密", "١. (S) Text 机密",
])
def test_marking_shaped_lines_are_not_quiet(line: str) -> None:
    assert not cl._quiet(normalize(line).strip())


@pytest.mark.parametrize("line", [_PROSE, "（一）制定机密文件管理制度。", "不得泄露国家秘密。", "保密行政管理部门负责机密事项。"])
def test_prose_lines_are_quiet(line: str) -> None:
    assert cl._quiet(normalize(line).strip())


# -- random items ----------------------------------------------------------------------------------
_FRAGMENTS = [
    "绝密", "机密", "秘密", "機密", "秘 密", "机\u200b密", "机　密", "密级", "密 级", "文件", "保密等级", "保密期限",
    "：", ":", " ：", "★", "＊", "*", "☆", "·", "•", "(", ")", "（", "）", "【", "】", "〔", "〕", "[", "]",
    "10年", "５年", "长期", "六个月", "2030年1月1日", "2031.6.30", "解密", "已解密", "予以解密", "解 密",
    "份号", "000012", "特急", "加急", "紧急程度", "第1页", "共3页", "- 2 -", "□", "■", "☑", "☐", "√", "(√)", "( )",
    "&nbsp;", "SECRET", "TOP SECRET//NOFORN", "CONFIDENTIAL", "UNCLAS", "SENSITIVE", "S E C R E T", "(S)", "(U)",
    "(C)", "(TS//SI)", "1.", "a.", "¶", "١.", "#", ">", "|", "~~", "-", "—", "<br>", "“", "”", "‘", "’", "「", "」",
    "。", "，", "、", "；", "的文件", "国家秘密", "保密工作", "内部", "内部资料", "注意保存", "内部使用", "商密", "核心",
    "普通", "商业秘密", "工作秘密", "Classification", "classification", "REPORT CLASS", "UK", " ", "\u3000", "\t",
    "Re:", "转发：", "第一条", "(一)", "一", "部门", "涉密人员", "公开", "非密", "Secret", "x", "Z", "9",
]
_ROLES = ["body", "body", "body", "cell", "header", "footer", "property", "subject", "title", "textbox", "note"]
_SEPS = ["\n", "\n", "\n", "\r\n", "\u2028", "\n\n"]


def _random_item(rng: random.Random) -> list[Segment]:
    segs = []
    for _ in range(rng.randrange(1, 4)):
        lines = []
        for _ in range(rng.randrange(1, 9)):
            if rng.random() < 0.3:
                lines.append(rng.choice([_PROSE, "不得泄露机密。", "（一）制定机密文件管理制度。", "正文。"]))
            else:
                lines.append("".join(rng.choice(_FRAGMENTS) for _ in range(rng.randrange(1, 7))))
        text = rng.choice(_SEPS).join(lines)
        if rng.random() < 0.1:
            text = "正文内容" * rng.randrange(20, 40) + text  # a long line before
        role = rng.choice(_ROLES)
        key = rng.choice(["密级", "Classification", "title", None]) if role == "property" else None
        segs.append(Segment(text, "part" if rng.random() < 0.8 else "other", role, rng.random() < 0.5,
                            rng.randrange(0, 10), key))
    return segs


def test_random_items(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(17)
    quiet = 0
    real = cl._quiet

    def count(s: str) -> bool:
        nonlocal quiet
        q = real(s)
        quiet += q
        return q

    for _ in range(4000):
        segs = _random_item(rng)
        monkeypatch.setattr(cl, "_quiet", count)
        fast = cl.classify(segs)
        monkeypatch.setattr(cl, "_quiet", lambda s: False)
        full = cl.classify(segs)
        assert fast == full, segs
    assert quiet > 500  # the quiet path was taken often


def _only_level_words(s: str, role: str = "body") -> bool:
    ln = cl._Line(s, Segment(s, role=role), cl.TOP_LINES, 5, False)
    got: list[Finding] = []
    cl._judge_line(ln, [ln.seg], got, 0)
    return all(f.kind is Kind.MENTION and f.rule == cl.RULE_MENTION and re.fullmatch("绝密|机密|秘密", f.text)
               for f in got)


#: Characters and pieces at the edges of `_LOUD_HEAD`'s first alternative and the head-token and
#: bare-level alphabets: digits of other scripts, capitals that are not Latin, `ı` (its upper
#: case is `I`), quotes, the pilcrow, decoration.
_EDGE = ["١", "٢", "۳", "१", "Σ", "Ε", "С", "ı", "¶", "“", "‘", "#", "(", ")", "[", "]", "|", "/", ".", "-", "—",
         " ", "\t", "：", ":", "、", "，", "。", "份", "号", "第", "共", "页", "特", "急", "件", "年", "月", "期", "限",
         "保", "级", "已", "解", "废", "★", "*", "S", "C", "TS", "U", "SECRET", "ECRET", "CONF", "1", "9", "0", "(S) Text", "(C) The", "(U) A", "(TS//SI) B"]


def test_quiet_lines_of_random_text_hold_only_level_words() -> None:
    rng = random.Random(11)
    quiet = 0
    for _ in range(20000):
        parts = [rng.choice(_EDGE + _FRAGMENTS) for _ in range(rng.randrange(1, 8))]
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(["机密", "秘密", "绝密", "秘 密"]))
        s = normalize("".join(parts)).strip()
        if s and cl._quiet(s):
            quiet += 1
            for role in ("body", "cell", "header", "property"):
                assert _only_level_words(s, role), (s, role)
    assert quiet > 2000


def test_loud_anywhere_covers_star_heads() -> None:
    """`_LOUD_ANYWHERE` drops `_HEAD`'s look-arounds: it must match wherever `_HEAD` does."""
    rng = random.Random(3)
    for _ in range(20000):
        s = normalize("".join(rng.choice(_FRAGMENTS) for _ in range(rng.randrange(1, 6))))
        if _HEAD.search(s):
            assert cl._LOUD_ANYWHERE.search(s), s


def _every_text() -> list[str]:
    rng = random.Random(5)
    return ["".join(rng.choice(_FRAGMENTS + ["\n", "\r", "\u2028", "\x0c", "\n正文。\n"])
                    for _ in range(rng.randrange(1, 40))) for _ in range(3000)]


def test_skipped_segments_have_no_candidates_and_line_bounds_are_shared() -> None:
    """The inline test that skips a segment says what `_candidate_starts` would; every offset of
    a line gives that line's bounds (the classifier reuses them for the next candidate)."""
    for text in _every_text():
        starts = cl._candidate_starts(text)
        if "密" not in text and "部" not in text and cl._LATIN.search(text) is None:
            assert starts == [], text
        for off in starts:
            s, e = cl._line_at(text, off)
            for k in range(s, e):
                assert cl._line_at(text, k) == (s, e), (text, off, k)


def _shifted(findings: list[Finding], lines_before: int) -> list[Finding]:
    """The reference: findings of a piece with their lines counted from the start of the text."""
    return [dataclasses.replace(f, line=f.line + lines_before) if f.line is not None else f for f in findings]


def test_lines_before_counts_lines_as_shifting_them_after(generated: list[Path]) -> None:
    """A piece of a long text classified with `lines_before` reports the lines that shifting its
    findings afterwards gives (what the engine did before)."""
    rng = random.Random(9)
    texts = _every_text()[:800] + [p.read_text(encoding="utf-8")[:40_000] for p in generated if p.suffix == ".txt"]
    lines = 0
    for text in texts:
        k = rng.randrange(1, 5000)
        for seg in (Segment(text), Segment(text, role="property", key="密级"), Segment(text, role="cell", standalone=True)):
            got = cl.classify([seg], k)
            assert got == _shifted(cl.classify([seg]), k), text[:80]
            lines += sum(f.line is not None for f in got)
    assert lines > 1000
    with pytest.raises(ValueError):
        cl.classify([Segment("机密"), Segment("秘密")], 3)


# -- files -----------------------------------------------------------------------------------------
def _records(scanner: Scanner, files: list[Path]) -> list[tuple]:
    out = []
    for p in files:
        r = scanner.scan_path(str(p))
        out.append((str(p), r.level, r.findings, r.errors))
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Prose of the verdict bench's kind (bench/prose.py), every class: texts long enough to be
    classified in pieces (marks placed at the pieces' edges too) and .docx files."""
    sys.path.insert(0, str(ROOT / "bench"))
    from prose import CLASSES, make_text, pools, write_docx

    plain, worded = pools()
    rng = random.Random(17)
    d = tmp_path_factory.mktemp("quiet")
    out = []
    for i in range(16):
        cls = CLASSES[i % 4]
        text = make_text(rng, plain, worded, rng.choice([20_000, 150_000, 300_000]), cls, copy=i)
        if i % 3 == 0:
            # markings and tick boxes around the engine's piece boundaries, after many word mentions
            lines = text.split("\n")
            at = [k for k in range(1, len(lines)) if sum(map(len, lines[:k])) + k in
                  range(_SPLIT_CHARS - 300, _SPLIT_CHARS + 300)]
            for k, mark in zip(at[:3], ["机密★5年", "密级：□绝密 ■机密", "秘密"], strict=False):
                lines.insert(k, mark)
            text = "\n".join(lines)
        p = d / f"g{i:02d}.txt"
        p.write_text(text, encoding="utf-8")
        out.append(p)
        if i % 2 == 0:
            q = d / f"g{i:02d}.docx"
            write_docx(q, make_text(rng, plain, worded, 60_000, cls, copy=i))
            out.append(q)
    return out


def test_fast_and_full_classification_agree_on_files(monkeypatch: pytest.MonkeyPatch, generated: list[Path]) -> None:
    dirs = [ROOT / "tests" / "scanner" / "realset" / "docs"] + [SHARED / d for d in ("corpus", "hostile")]
    files = sorted(p for d in dirs if d.exists() for p in d.rglob("*") if p.is_file()) + generated
    scanner = Scanner(ScanConfig(ocr_mode="off"))  # OCR reads images; the classifier is tested on text
    fast = _records(scanner, files)
    _full(monkeypatch)
    full = _records(scanner, files)
    differ = [(a[0], set(a[2]) ^ set(b[2])) for a, b in zip(fast, full, strict=True) if a != b]
    assert not differ, differ[:3]
    assert sum(r[1] is not None for r in fast) >= 30  # the corpus' positives were scanned
    assert sum(len(r[2]) for r in fast) > 200  # and mentions compared, not only markings


def test_quiet_lines_of_real_text_hold_only_level_words(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every line of the corpus, the real set and the secrecy laws that the classifier passes
    over as quiet: judged in full, it yields nothing but word mentions."""
    if not (SHARED / "corpus").exists():
        pytest.skip(f"{SHARED / 'corpus'} is absent (clone without ../shared)")
    dirs = [SHARED / "corpus", SHARED / "prose", SHARED / "seeds", ROOT / "tests" / "scanner" / "realset" / "docs"]
    lines: set[str] = set()
    real = cl._quiet

    def keep(s: str) -> bool:
        q = real(s)
        if q:
            lines.add(s)
        return q

    monkeypatch.setattr(cl, "_quiet", keep)
    scanner = Scanner(ScanConfig(ocr_mode="off"))
    for p in sorted(p for d in dirs if d.exists() for p in d.rglob("*") if p.is_file()):
        scanner.scan_path(str(p))
    assert len(lines) > 50  # (most lines of the laws are longer than LONG_LINE: judged as prose)
    for s in lines:
        assert _only_level_words(s), s


# -- the candidate search ---------------------------------------------------------------------------
_EN_LINE_REF = re.compile(r"^[ \t]*(?:[(（](?:TS|S|C)[)）/]|.*(?:" + "|".join(cl._BANNER_WORDS) + "))", re.M)


def _candidate_starts_ref(text: str) -> list[int]:
    """`_candidate_starts` as it was before its words were found from an anchor character: one
    substring pass per word, English banner lines by a multi-line regex."""
    out = []
    if "密" in text:
        out += [m.start() for m in cl._LEVEL_MI.finditer(text)]
    for word in ("内部", "內部", "内 部", "内\u3000部", "商密") if "部" in text else ("商密",):
        pos = text.find(word)
        while pos != -1:
            out.append(pos)
            pos = text.find(word, pos + 2)
    if cl._LATIN.search(text) is None:
        return out
    if any(w in text for w in cl._BANNER_WORDS):
        out.extend(m.start() for m in _EN_LINE_REF.finditer(text))
    if cl._EN_OTHER.match(text):
        out.append(0)
    out.extend(m.start() + 1 for m in cl._EN_OTHER_NL.finditer(text))
    if "lassification" in text or "LASSIFICATION" in text:
        out.extend(m.start() for m in cl._CLASS_FIELD.finditer(text))
    return out


_WORD_BITS = ["内部", "內部", "内 部", "内\u3000部", "内", "內", "部", "商密", "商", "C", "Ｃ", "SECRET", "ＳＥＣＲＥＴ",
              "CONFIDENTIAL", "ＣＯＮＦＩＤＥＮＴＩＡＬ", "TOP SECRET//NOFORN", "(S) ", "（TS）", " (C/", "\t(S)",
              "\n", "\r\n", " ", "a", "Classification: Secret", "机密★5年", "绝 密", "正文。"]


def _word_texts() -> list[str]:
    rng = random.Random(23)
    out = [t for t in _every_text()]
    for _ in range(3000):
        out.append("".join(rng.choice(_WORD_BITS) for _ in range(rng.randrange(1, 30))))
    # dense anchors (the passes take over from the stepping), words among them
    for anchor in ("内", "C", "Ｃ", "商"):
        for n in (10, 100, 3000):
            bits = [anchor] * n
            for _ in range(40):
                bits.insert(rng.randrange(len(bits) + 1), rng.choice(_WORD_BITS))
            out.append("".join(bits))
    return out


def test_candidate_starts_are_those_of_one_pass_per_word() -> None:
    for text in _word_texts():
        assert set(cl._candidate_starts(text)) == set(_candidate_starts_ref(text)), ascii(text[:200])


def test_words_found_by_stepping_and_by_passes_alike() -> None:
    """Each word whose anchor is the last one stepped, the one where the passes take over, or
    the next; and random texts with every switching point."""
    rng = random.Random(29)
    for anchor, follow, words in (*cl._MARK_WORDS, *cl._BANNER_ANCHORS):
        for w, _k in words:
            for n in (0, 1, 5):
                text = anchor * n + w + anchor * 3 + w + "\n" + w + anchor
                ref = sorted(m.start() for v, _ in words for m in re.finditer(re.escape(v), text))
                for limit in range(0, 2 * n + 12):
                    assert sorted(cl._find_words(text, anchor, follow, words, limit)) == ref, (w, n, limit)
        for _ in range(300):
            text = "".join(rng.choice([anchor, anchor, "x", "\n", *(v for v, _ in words)]) for _ in range(30))
            ref = sorted(m.start() for v, _ in words for m in re.finditer(re.escape(v), text))
            for limit in (0, 1, 2, 7, None):
                assert sorted(cl._find_words(text, anchor, follow, words, limit)) == ref, (ascii(text), limit)


def test_candidate_search_finds_what_the_reference_finds_on_files(monkeypatch: pytest.MonkeyPatch,
                                                                 generated: list[Path]) -> None:
    """Whole scans with the reference candidate search give the same records (the corpus, the
    hostile and real sets, generated prose)."""
    dirs = [ROOT / "tests" / "scanner" / "realset" / "docs"] + [SHARED / d for d in ("corpus", "hostile")]
    files = sorted(p for d in dirs if d.exists() for p in d.rglob("*") if p.is_file()) + generated
    scanner = Scanner(ScanConfig(ocr_mode="off"))
    fast = _records(scanner, files)
    monkeypatch.setattr(cl, "_candidate_starts", _candidate_starts_ref)
    ref = _records(scanner, files)
    assert fast == ref
    assert sum(r[1] is not None for r in fast) >= 30


# -- the screen over an item's segments -------------------------------------------------------------
def _segment_lists() -> list[list[str]]:
    """Items of 1-60 segments cut from the random and word texts, cut also right before and
    after what the candidate search looks for (a banner, a portion mark, a level word)."""
    rng = random.Random(31)
    texts = _word_texts()
    out = []
    for _ in range(1500):
        parts: list[str] = []
        for _ in range(rng.randrange(1, 60)):
            t = rng.choice(texts)
            if t and rng.random() < 0.5:
                k = rng.randrange(len(t))
                parts.extend([t[:k], t[k:]])
            else:
                parts.append(t)
        out.append(parts)
    return out


def test_screen_keeps_every_segment_with_a_candidate() -> None:
    kept = dropped = 0
    for parts in _segment_lists():
        segs = [Segment(t) for t in parts]
        screened = cl._screen(segs)
        for i, t in enumerate(parts):
            if cl._candidate_starts(t):
                assert i in screened, (ascii(t[:120]), [ascii(p[:40]) for p in parts[max(0, i - 1): i + 2]])
                kept += 1
            elif i not in screened:
                dropped += 1
    assert kept > 10000 and dropped > 1000  # the screen was tested, and it does skip segments


def test_screen_on_segment_edges() -> None:
    """What only a segment's start or end makes a candidate: a line-start pattern at the start
    of a segment, a word or level+密 ending one; and what a newline must not join."""
    for parts, want in (
        (["正文。", "(S) 正文", "正文。", "正文。"], {1}),
        (["正文。", "正文。", "正文。", "S E C R E T"], {3}),
        (["正文。", "Classification: Secret", "正文。", "正文。"], {1}),
        (["正文。机密", "正文。", "内部", "正文。", "TOP SECRET//NOFORN"], {0, 2, 4}),
        (["正文。机", "密正文。", "内", "部", "SECR", "ET"], set()),
    ):
        assert cl._screen([Segment(t) for t in parts]) == want, parts
        assert {i for i, t in enumerate(parts) if cl._candidate_starts(t)} == want, parts


def test_screened_classification_gives_the_findings_of_every_segment_searched(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(37)
    found = 0
    for parts in _segment_lists()[:600]:
        segs = [Segment(t, role=rng.choice(["body", "body", "header", "cell"]), index=i) for i, t in enumerate(parts)]
        fast = cl.classify(segs)
        with monkeypatch.context() as m:
            m.setattr(cl, "_SCREEN_MIN_SEGMENTS", sys.maxsize)
            full = cl.classify(segs)
        assert fast == full
        found += len(fast)
    assert found > 1000
