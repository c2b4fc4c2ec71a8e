"""Marking versus mention, on constructed layouts and on real prose (hard negatives)."""
from __future__ import annotations

from pathlib import Path

import pytest

from scanner.classify import classify
from scanner.model import FileResult, Kind, Level, Segment
from tests.conftest import need_shared


def level_of(text: str, **seg: object) -> Level | None:
    return FileResult("x", tuple(classify([Segment(text, **seg)]))).level  # type: ignore[arg-type]


HEAD = "000012\n{m}\n特急\n东陵区人民政府办公室文件\n东政办发〔2026〕12号\n关于加强办公室工作的通知\n正文。\n"


@pytest.mark.parametrize("marking,level", [
    ("机密★10年", Level.SECRET), ("机密", Level.SECRET), ("秘　密", Level.CONFIDENTIAL),
    ("绝密★长期", Level.TOP_SECRET), ("秘密★2037年2月18日", Level.CONFIDENTIAL),
])
def test_gongwen_head_is_a_marking(marking: str, level: Level) -> None:
    assert level_of(HEAD.format(m=marking)) is level


def test_header_line_with_copy_number_and_urgency() -> None:
    assert level_of("000012　机密★1年　特急\n标题\n正文。") is Level.SECRET


@pytest.mark.parametrize("sentence", [
    "例如，标注为“绝密★18年”的载体，不得在非涉密计算机上处理。",
    "对标注“机密★5年”的文件，要按规定管理。",
    "凡标有秘密★2032年3月14日字样的文件，一律登记。",
    "国家秘密的密级分为绝密、机密、秘密三级。",
    "机关工作人员不得泄露国家机密。",
    "信息安全的三要素是机密性、完整性和可用性。",
])
def test_sentence_is_a_mention(sentence: str) -> None:
    fs = classify([Segment("第一段。\n" + sentence + "\n第三段。")])
    assert all(f.kind is not Kind.MARKING for f in fs)


def test_quoted_marking_is_reported_as_mention() -> None:
    fs = classify([Segment("对标注“机密★5年”的文件，要按规定管理。")])
    assert [(f.kind, f.text) for f in fs] == [(Kind.MENTION, "机密★5年")]


def test_bare_level_deep_in_body_is_not_a_marking() -> None:
    body = "\n".join(f"第{i}段正文内容。" for i in range(30))
    assert level_of(body + "\n秘密\n" + body) is None


def test_star_marking_in_the_middle_counts_and_highest_wins() -> None:
    text = HEAD.format(m="秘密★1年") + "\n".join("正文。" for _ in range(20)) + "\n机密★5年\n附件正文。\n"
    assert level_of(text) is Level.SECRET


def test_declassified_annotation_does_not_classify() -> None:
    fs = classify([Segment("000012\n机密★10年 已解密\n标题\n")])
    assert fs and fs[0].declassified and fs[0].kind is Kind.MARKING
    assert FileResult("x", tuple(fs)).level is None


def test_struck_out_marking_yields_to_the_new_one() -> None:
    fs = classify([Segment("~~机密★10年~~ 秘密★5年\n标题\n")])
    assert FileResult("x", tuple(fs)).level is Level.CONFIDENTIAL
    assert any(f.superseded for f in fs)


def test_roles_decide_for_short_elements() -> None:
    assert level_of("机密★7年", role="header", standalone=True) is Level.SECRET
    assert level_of("秘密", role="footer", standalone=True) is Level.CONFIDENTIAL
    assert level_of("机密★5年 关于加强保密工作的通知", role="subject", standalone=True) is Level.SECRET
    assert level_of("转发：机密★5年 关于加强保密工作的通知", role="subject", standalone=True) is Level.SECRET


def test_custom_property_classifies() -> None:
    fs = classify([Segment("秘密", role="property", key="密级", standalone=True)])
    assert FileResult("x", tuple(fs)).level is Level.CONFIDENTIAL
    fs = classify([Segment("关于机密文件管理的说明", role="property", key="title", standalone=True)])
    assert FileResult("x", tuple(fs)).level is None


def test_column_of_levels_in_a_register_is_a_table_not_a_marking() -> None:
    cells = [Segment(v, role="cell", standalone=True, index=i + 5, member=f"sheet1!C{i + 5}")
             for i, v in enumerate(["机密", "秘密", "秘密", "绝密"])]
    assert FileResult("x", tuple(classify(cells))).level is None


def test_english_banner_and_portion_marks() -> None:
    assert level_of("TOP SECRET//SI//NOFORN\n\nMEMO\n(TS) The plan.\n\nTOP SECRET//SI//NOFORN") is Level.TOP_SECRET
    # a portion mark without any banner is not enough
    assert level_of("Intro.\n(S) Something.\n") is None
    assert level_of("Keep the secret key safe; never commit secrets.\nCONFIDENTIALITY NOTICE: private.") is None


def test_copyright_signs_and_lettered_lists_are_not_portion_marks() -> None:
    # Found on /usr/share/doc of a Debian system: a copyright file's `(C) Name, year` lines and an
    # HTML (A)/(B)/(C) list set with no-break spaces were read as CONFIDENTIAL portion marks.
    debian = ("Files: *\nCopyright: (C) 2008, 2014 Michael Kerrisk\n"
              "           (C) Markus Kuhn, 1995, 2001\n           (C) Linux Foundation, 2008\n"
              "License: GPL-2+\n")
    assert level_of(debian) is None
    listed = "This section explains:\n(A)\u00a0How to configure it.\n(B)\u00a0How to run tests.\n(C)\u00a0How to run\n"
    assert level_of(listed) is None
    # portion-marked text keeps its level, with (C) as with (S)
    marked = "MEMO\n(U) Background follows.\n(C) The schedule is set.\n(C) The site is chosen.\n"
    assert level_of(marked) is Level.CONFIDENTIAL
    only_c = "MEMO\n(C) The schedule is set.\n(C) The site is chosen.\n"
    assert level_of(only_c) is Level.CONFIDENTIAL
    assert level_of(only_c + "(c) 2026 Ministry\n") is None  # a copyright notice: (C) is the sign
    assert level_of(marked + "(c) 2026 Ministry\n") is Level.CONFIDENTIAL  # (U) shows portion marking
    assert level_of("CONFIDENTIAL\n" + marked + "Copyright 2026\nCONFIDENTIAL") is Level.CONFIDENTIAL  # a banner decides


def test_internal_marks_rank_below_confidential() -> None:
    assert level_of("内部资料 注意保存\n标题\n正文。") is Level.INTERNAL
    assert level_of("工作秘密\n秘密★1年\n标题") is Level.CONFIDENTIAL


# -- real prose: hard negatives -------------------------------------------------------------------
OWN_HARD_NEGATIVES = [
    # IT security text about confidentiality (机密性)
    "信息安全\n机密性、完整性和可用性是信息安全的三个基本属性。\n机密性\n指信息不被泄露给非授权的个人。",
    # a novel
    "第三章\n他压低声音说：“这可是绝密，千万别告诉别人。”\n她笑了笑：“什么机密这么神秘？”\n窗外下起了雨。",
    # a training handout listing the levels as a list
    "保密知识问答\n一、国家秘密分几级？\n答：分为三级：\n- 绝密\n- 机密\n- 秘密\n二、标志怎么写？\n答：如“机密★10年”。",
    # a regulation quoting the marking rule
    "第十条 国家秘密的标志为“密级★保密期限”，例如“秘密★5年”。\n第十一条 工作秘密不属于国家秘密。",
    # a meeting notice about secrecy training
    "关于开展保密教育培训的通知\n各科室：\n定于下周三组织学习《保守国家秘密法》，重点学习绝密、机密、秘密级国家秘密的管理要求。",
]


@pytest.mark.parametrize("text", OWN_HARD_NEGATIVES)
def test_own_hard_negatives(text: str) -> None:
    assert level_of(text) is None


def test_head_tokens_are_recognised_in_linear_time() -> None:
    # Fuzzing shape: `^(?:token)*$` as one regex tried a line of k `密级 ` (then a non-token)
    # 2**k ways, a blank being a token or the end of one: a 170-byte text took 37 s.
    import random
    import re
    import time

    from scanner.classify import _HEADER_TOKEN_SRC, _header_tokens, _header_tokens_marked

    t = time.process_time()
    # As before: 12 head tokens beside a mark leave it a head line; from 14 on (checked on the
    # previous code up to 16) the line is read otherwise. 40 took 2**40 steps.
    assert level_of("机密★10年 " + "密级 " * 12 + "x") is Level.SECRET
    assert level_of("机密★10年 " + "密级 " * 40 + "x") is None
    assert not _header_tokens("密级 " * 5000 + "份")
    assert time.process_time() - t < 5
    # The same strings as the one regex on short ones (where it is fast).
    reference = re.compile(f"^(?:{_HEADER_TOKEN_SRC})*$")
    words = [" ", "　", "|", "，", "份号", "：", "1", "12", "000012", "第", "份", "共", "页", "特急", "紧急程度",
             "文件", "密级", "和", "(", "保密期限", "）", "年", "个月", "长期", "-", "解密", "作废", "★", "x"]
    rnd = random.Random(7)
    for _ in range(20_000):
        s = "".join(rnd.choice(words) for _ in range(rnd.randint(0, 8)))
        assert _header_tokens_marked(s) == bool(reference.match(s)), s
        assert _header_tokens(s) == bool(reference.match(s)), s
    assert _header_tokens("份号：000012 密级和保密期限：") and _header_tokens("保密期限 3 年 第 1 页 共 3 页")


def _prose_files() -> list[Path]:
    seeds = need_shared("seeds")
    prose = need_shared("prose")
    return sorted(seeds.glob("*.txt")) + sorted(prose.glob("*.md"))


def test_real_prose_yields_no_marking() -> None:
    """The seeds and the laws on secrecy are full of level words and hold no marking."""
    for p in _prose_files():
        fs = classify([Segment(p.read_text(encoding="utf-8"))])
        marks = [f.text for f in fs if f.kind is Kind.MARKING]
        assert not marks, f"{p.name}: {marks}"


def test_real_prose_yields_mentions() -> None:
    law = need_shared("prose") / "保守国家秘密法(2024-02-27).md"
    fs = classify([Segment(law.read_text(encoding="utf-8"))])
    assert any(f.kind is Kind.MENTION for f in fs)


def test_real_prose_paragraphs_as_docx_elements_yield_no_marking() -> None:
    """The same prose split into standalone paragraphs (as a docx extractor emits them)."""
    for p in _prose_files():
        paras = [ln for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
        segs = [Segment(t, member="word/document.xml", standalone=True, index=i) for i, t in enumerate(paras)]
        marks = [f.text for f in classify(segs) if f.kind is Kind.MARKING]
        assert not marks, f"{p.name}: {marks}"


def test_period_in_years_and_months() -> None:
    from scanner.grammar import parse_marking

    m = parse_marking("机密★1年6个月")
    assert m is not None and m.period == {"years": 1, "months": 6}
    assert level_of("000012\n机密★1年6个月\n特急\n标题") is Level.SECRET


def test_bulleted_example_markings_are_mentions() -> None:
    text = "标志示例：\n- 机密★5年\n- 秘密★10年\n• 绝密★长期\n以上为示例。"
    assert level_of(text) is None


def test_register_of_classified_documents_is_not_classified_by_its_column() -> None:
    rows = [Segment("涉密文件登记表", member="登记!A1", role="cell", standalone=True, index=0)]
    for r, mark in enumerate(["机密★10年", "秘密★5年", "绝密★长期", "秘密★2030年1月1日"], start=4):
        rows.append(Segment(mark, member=f"登记!C{r}", role="cell", standalone=True, index=r))
    assert FileResult("x", tuple(classify(rows))).level is None
    # the sheet's own marking in its head row still classifies it
    rows.append(Segment("秘密", member="登记!F1", role="cell", standalone=True, index=1))
    assert FileResult("x", tuple(classify(rows))).level is Level.CONFIDENTIAL


# -- generalisation sweep: positions and layouts seen in unseen files -----------------------------
@pytest.mark.parametrize("line,level", [
    ("000012　机密　特急", Level.SECRET),  # a bare level in a one-line 公文 head
    ("| 份号 | 000012 | 密级 | 秘密★5年 |", Level.CONFIDENTIAL),  # a head laid out as a text table
    ("| 份号 | 000012 | 密级 | 秘密 |", Level.CONFIDENTIAL),
    ("| 密级 | 机密★5年 | 保密期限 | 5年 |", Level.SECRET),
    ("- 1 -　绝密★5年", Level.TOP_SECRET),  # page header with the page number first
])
def test_marking_sharing_its_line_with_head_tokens(line: str, level: Level) -> None:
    assert level_of(line + "\n东陵区人民政府办公室文件\n关于加强办公室工作的通知\n正文。\n") is level


@pytest.mark.parametrize("footer,level", [
    ("机密　　　　第 1 页 共 3 页", Level.SECRET),
    ("秘密★5年　　　- 2 -", Level.CONFIDENTIAL),
])
def test_footer_line_with_page_number(footer: str, level: Level) -> None:
    assert level_of("标题\n" + "正文段落，各单位认真落实。\n" * 30 + footer + "\n") is level


def test_period_value_alone_is_not_a_head_token() -> None:
    """A table of levels with their maximum periods (a handout) is not a marking."""
    text = "密级\t最长期限\n绝密\t30年\n机密\t20年\n秘密\t10年\n"
    assert level_of("保密知识讲义\n" + text) is None
    assert level_of("保密知识讲义\n| 密级 | 期限 |\n|---|---|\n| 绝密 | 30年 |\n| 机密 | 20年 |\n| 秘密 | 10年 |\n") is None


@pytest.mark.parametrize("text", [
    "标志示例：\n绝密★30年\n机密★20年\n秘密★10年\n",  # a handout's list, no bullets
    "正文。\n绝密★长期\n机密★10年\n秘密★5年\n正文。",
    "例如：\n机密★20年\n秘密★10年\n",
])
def test_list_of_example_marks_of_several_levels_is_a_mention(text: str) -> None:
    assert level_of(text) is None


def test_two_marks_without_intro_still_classify() -> None:
    """A changed level (old mark above the new one) is not a handout list."""
    assert level_of("机密★20年\n秘密★10年\n标题\n正文。") is Level.SECRET


@pytest.mark.parametrize("line", ["“绝密★10年”", "「机密★5年」", "‘秘密★长期’"])
def test_quoted_marking_alone_on_its_line_is_a_mention(line: str) -> None:
    fs = classify([Segment("正文。\n" + line + "\n正文。")])
    assert fs and all(f.kind is Kind.MENTION for f in fs)


def test_cr_only_line_ends_keep_the_end_of_the_file() -> None:
    text = "标题\r" + "正文段落，各单位认真落实。\r" * 30 + "机密\r"
    assert level_of(text) is Level.SECRET


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x0b"])
def test_other_line_terminators_split_lines(sep: str) -> None:
    text = sep.join(["秘密★5年", "东陵区人民政府办公室文件", "关于加强办公室工作的通知"] + ["正文段落，各单位认真落实。"] * 8)
    assert level_of(text) is Level.CONFIDENTIAL


def test_subject_prefix_after_reply_marker() -> None:
    assert level_of("Re: [机密] 关于预算的通知", role="subject", standalone=True) is Level.SECRET
    assert level_of("回复：【秘密】关于预算", role="subject", standalone=True) is Level.CONFIDENTIAL


def test_bare_level_set_apart_at_the_head_of_a_subject() -> None:
    assert level_of("绝密 关于年度工作的通知", role="subject", standalone=True) is Level.TOP_SECRET
    assert level_of("Re: 机密：关于预算", role="subject", standalone=True) is Level.SECRET
    # a level word that begins the title itself is not set apart
    assert level_of("机密文件管理培训的通知", role="subject", standalone=True) is None


@pytest.mark.parametrize("lines", [
    # hard-wrapped law text: a line ends where the page did, next to a level word
    ["第二十条 任何组织和个人不得在互联网及其他公共信息网络中存储、处理国家", "秘密。", "第二十一条 ……"],
    ["（一）买卖、转送或者私自销毁国家秘密载体的；（二）泄露国家", "秘密；"],
    ["下列事项应当确定为国家", "秘密：", "（一）国家事务重大决策中的秘密事项；"],
    # a list of levels cell by cell
    ["密级分为", "绝密、", "机密、", "秘密三级。"],
])
def test_level_word_closing_a_wrapped_clause_is_a_mention(lines: list[str]) -> None:
    segs = [Segment(t, "page 1", role="body", standalone=True, index=i) for i, t in enumerate(lines)]
    found = classify(segs)
    assert FileResult("x", tuple(found)).level is None
    assert any(f.kind is Kind.MENTION for f in found)


def test_english_candidates_need_what_the_latin_screen_looks_for() -> None:
    """_candidate_starts skips its English patterns when a text has no Latin letter, digit or
    fullwidth capital: no such text may match them (random texts of everything else)."""
    import random

    from rules import vocabulary
    from scanner.classify import _BANNER_WORDS, _CLASS_FIELD, _EN_OTHER, _EN_PAREN, _LATIN

    assert all(_LATIN.search(w) for w in _BANNER_WORDS + vocabulary.BANNER_WORDS_FULLWIDTH)
    alphabet = list("()（）/¶.·★ \t\n\r:：-_|[]ａｂｃｘｙｚ０１９　密部机秘绝内（）、，。") + [chr(c) for c in range(0x80, 0x250)]
    rng = random.Random(17)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        if _LATIN.search(text):
            continue
        assert not any(p.search(text) for p in (_EN_PAREN, _EN_OTHER, _CLASS_FIELD)), repr(text)


def test_english_line_starts_found_after_newlines_are_those_of_the_multiline_pattern() -> None:
    """_candidate_starts looks for `_EN_OTHER` after newlines (fast) instead of at every `^`:
    the same line starts on random multi-line texts of the characters the pattern reads."""
    import random

    from scanner.classify import _EN_OTHER, _EN_OTHER_NL

    alphabet = list("SECRTONFIDUALBPX(/)¶.1230 \t\n\n\r机密") + ["SECRET", "(TS)", "CONF", "UNCLAS ", "\n(S)", "S3CRET"]
    # what may open a line before the pattern proper (the fast pattern's lookahead names these)
    alphabet += [">", "|", "*", "“", '"', "'", "‘", "１", "٣", "s ECRE", "c ONFI", "a)", "b.", "\n\n"]
    rng = random.Random(7)
    for _ in range(4000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        want = [m.start() for m in _EN_OTHER.finditer(text)]
        got = ([0] if _EN_OTHER.match(text) else []) + [m.start() + 1 for m in _EN_OTHER_NL.finditer(text)]
        assert got == want, repr(text)


def test_atomic_indentation_gives_the_matches_of_the_backtracking_pattern() -> None:
    """`_EN_OTHER_SRC` takes its indentation and quote marks atomically and looks ahead for what
    an alternative can begin with: the same matches (start and end) as the plain pattern, on
    random lines built of indentation, quote marks and every alternative's pieces (lower-case
    item letters, Unicode digits), and on the corpus, seeds and laws."""
    import random
    import re

    from scanner.classify import _EN_OTHER_ALTS, _EN_OTHER_PREFIX, _EN_OTHER_SRC
    from tests.conftest import SHARED

    assert _EN_OTHER_SRC.startswith("(?>" + _EN_OTHER_PREFIX + ")") and _EN_OTHER_SRC.endswith(_EN_OTHER_ALTS)
    ref = re.compile("^" + _EN_OTHER_PREFIX + _EN_OTHER_ALTS, re.M)  # backtracking, every line tried
    fast = re.compile("^" + _EN_OTHER_SRC, re.M)
    bits = [" ", "  ", "\t", ">", "|", "*", "“", '"', "'", "‘", "\n", "(", ")", "/", "¶", ".", "1", "12", "a", "b)",
            "S", "E", "C", "R", "T", "O", "N", "F", "I", "D", "U", "SECRET", "S E C R", "s ECRE", "c O N F",
            "(TS)", "(S//", "(FOUO)", "UNCLAS", "LIMITED OFFICIAL", "OFFICIAL-SENSITIVE", "ABC DEFGHI", "SABCDE",
            "XECRET", "C0NF", "x", "机密", "c", "s", "a.", "z)", "٣", "１", "q ", "c ONFI", "٣. (S)", "１)(C)", "b) (TS)"]
    rng = random.Random(41)
    texts = ["".join(rng.choice(bits) for _ in range(rng.randint(0, 25))) for _ in range(20000)]
    texts += [p.read_text(encoding="utf-8", errors="replace") for d in ("corpus", "seeds", "prose")
              if (SHARED / d).is_dir() for p in sorted((SHARED / d).rglob("*.txt"))]
    for text in texts:
        assert [m.span() for m in fast.finditer(text)] == [m.span() for m in ref.finditer(text)], ascii(text[:200])


def test_classification_fields_found_after_newlines_are_those_of_the_multiline_pattern() -> None:
    import random

    from scanner.classify import _CLASS_FIELD, _class_fields

    bits = ["classification", "Classification", "CLASSIFICATION", "ClAsSiFiCaTiOn", ":", " ", "\t", "\n", "\r\n",
            "\n\n", "x", "Secret", "\u3000", "classif", "机密"]
    rng = random.Random(47)
    for _ in range(20000):
        text = "".join(rng.choice(bits) for _ in range(rng.randint(0, 20)))
        assert _class_fields(text) == [m.start() for m in _CLASS_FIELD.finditer(text)], ascii(text)


def test_line_starts_of_many_offsets_are_those_of_rfind() -> None:
    import random

    from scanner.classify import _line_starts

    rng = random.Random(43)
    for _ in range(3000):
        text = "".join(rng.choice(["a", "b", "\n", "\n\n", "xyz"]) for _ in range(rng.randint(0, 40)))
        offs = [rng.randrange(len(text) + 1) for _ in range(rng.randint(0, 8))]
        assert sorted(_line_starts(text, offs)) == sorted(text.rfind("\n", 0, p) + 1 for p in offs), (text, offs)


def test_level_word_spots_found_by_regex_are_those_of_a_character_walk() -> None:
    """_candidate_starts finds `level char, up to four gap characters, 密` by one regex: the same
    offsets as walking back from every 密 (random texts of level, gap and other characters)."""
    import random

    from scanner.classify import _GAP_CHARS, _LEVEL_CHARS, _LEVEL_MI, _candidate_starts

    def walk(text: str) -> list[int]:
        out, pos = [], text.find("密")
        while pos != -1:
            j, k = pos - 1, 0
            while j >= 0 and k < 4 and text[j] in _GAP_CHARS:
                j, k = j - 1, k + 1
            if j >= 0 and text[j] in _LEVEL_CHARS:
                out.append(j)
            pos = text.find("密", pos + 1)
        return out

    alphabet = sorted(_LEVEL_CHARS) + sorted(_GAP_CHARS) + list("密密密保码文\n★")
    rng = random.Random(11)
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
        assert [m.start() for m in _LEVEL_MI.finditer(text)] == walk(text), repr(text)
        # and _candidate_starts (密 first, then a lookbehind per gap length) finds the same spots
        assert _candidate_starts(text) == walk(text), repr(text)
