"""The marking grammar: every form and variant of markings.md §1 and §3 that applies to text."""
from __future__ import annotations

import pytest

from scanner.grammar import find_star_forms, parse_marking
from scanner.model import Level

T, S, C, I = Level.TOP_SECRET, Level.SECRET, Level.CONFIDENTIAL, Level.INTERNAL


@pytest.mark.parametrize("text,level,fields", [
    ("机密★10年", S, {"period": {"years": 10}}),
    ("秘密★6个月", C, {"period": {"months": 6}}),
    ("绝密★长期", T, {"period": "long_term"}),
    ("机密★2030年12月31日", S, {"declassify_date": "2030-12-31"}),
    ("秘密★2037年2月18日", C, {"declassify_date": "2037-02-18"}),
    ("绝密★2 0 3 1 年1 2 月3 1 日", T, {"declassify_date": "2031-12-31"}),  # drawn glyph by glyph
    ("机密★十年", S, {"period": {"years": 10}}), ("绝密★三十年", T, {"period": {"years": 30}}),
    ("秘密★十八个月", C, {"period": {"months": 18}}),  # Chinese numerals
    ("秘密★项目验收后解密", C, {"declassify_condition": "项目验收后解密"}),
    ("绝密★会议召开后解密", T, {"declassify_condition": "会议召开后解密"}),
    ("绝密★文件正式发布后", T, {"declassify_condition": "文件正式发布后"}),
    ("秘密★", C, {"period": None, "declassify_date": None, "declassify_condition": None}),
    # typography: full-width digits, spaces, ideographic spaces, other stars, traditional
    ("绝密★５年", T, {"period": {"years": 5}}),
    ("绝 密 ★ 1 年", T, {"period": {"years": 1}}),
    ("秘 密 ★ 1 2 年", C, {"period": {"years": 12}}),
    ("秘\u3000密★17年", C, {"period": {"years": 17}}),
    ("绝密☆25年", T, {"period": {"years": 25}}),
    ("机密*4年", S, {"period": {"years": 4}}),
    ("绝密＊22年", T, {"period": {"years": 22}}),
    ("祕密★3年", C, {"period": {"years": 3}}),
    ("機密★25年", S, {"period": {"years": 25}}),
    ("絕密★長期", T, {"period": "long_term"}),
    ("機密★1個月", S, {"period": {"months": 1}}),
    ("机\u200b密★10年", S, {"period": {"years": 10}}),
])
def test_star_forms(text: str, level: Level, fields: dict) -> None:
    m = parse_marking(text)
    assert m is not None, text
    assert m.level is level
    for k, v in fields.items():
        assert getattr(m, k) == v, (text, k)


@pytest.mark.parametrize("text,level", [
    ("机密·10年", S), ("机密（10年）", S), ("绝密★(30年)", T), ("秘\u3000密", C), ("机密*4年", S),
])
def test_nonstandard_forms_are_markings_flagged(text: str, level: Level) -> None:
    m = parse_marking(text)
    assert m is not None and m.level is level
    assert m.nonstandard, "older/irregular forms are flagged 标注不规范"


def test_standard_form_is_not_flagged() -> None:
    m = parse_marking("机密★10年")
    assert m is not None and not m.nonstandard


@pytest.mark.parametrize("text,level,form", [
    ("机密", S, "bare"), ("绝密", T, "bare"), ("秘密", C, "bare"), ("【机密】", S, "bare"),
    ("密级：机密", S, "bare"), ("密级：秘密★5年", C, "label"),
    ("（秘密）本段所述事项", C, "paragraph"), ("【机密】以下内容", S, "paragraph"),
    ("工作秘密", I, "internal"), ("内部", I, "internal"), ("内部资料 注意保存", I, "internal"),
    ("TOP SECRET", T, "banner"), ("SECRET", S, "banner"), ("CONFIDENTIAL", C, "banner"),
    ("TOP SECRET//SI//NOFORN", T, "banner"), ("SECRET//REL TO USA, FVEY", S, "banner"),
    ("(TS) Plans for the visit.", T, "portion"), ("(S) The schedule.", S, "portion"),
])
def test_line_forms(text: str, level: Level, form: str) -> None:
    m = parse_marking(text)
    assert m is not None, text
    assert (m.level, m.form) == (level, form)


def test_banner_caveats() -> None:
    m = parse_marking("SECRET//REL TO USA, FVEY")
    assert m is not None and m.caveats == ("REL TO USA, FVEY",)
    m = parse_marking("TOP SECRET//SI//NOFORN")
    assert m is not None and m.caveats == ("SI", "NOFORN")


@pytest.mark.parametrize("text", [
    "不泄露国家机密", "国家秘密的密级分为绝密、机密、秘密三级", "商业秘密（2年）", "技术秘密★",
    "Keep the secret key safe", "CONFIDENTIALITY NOTICE: this e-mail is confidential", "Secret",
    "机密性、完整性和可用性", "第二章 国家秘密的范围和密级", "(C) 2024 Example Corp",
])
def test_prose_is_not_a_whole_marking(text: str) -> None:
    assert parse_marking(text) is None


def test_find_star_forms_positions_in_a_sentence() -> None:
    line = "对标注“机密★5年”的文件，以及“绝密★长期”的载体"
    hits = find_star_forms(line)
    assert [h.marking.text for h in hits] == ["机密★5年", "绝密★长期"]
    assert line[hits[0].start:hits[0].end] == "机密★5年"


def test_work_secret_is_not_confidential() -> None:
    assert find_star_forms("工作秘密★1年") == []
    m = parse_marking("工作秘密")
    assert m is not None and m.level is Level.INTERNAL


def test_invalid_date_is_not_a_date() -> None:
    m = parse_marking("机密★2030年13月40日")
    assert m is None or m.declassify_date is None


@pytest.mark.parametrize("text,level,period", [
    ("密级：秘密  保密期限：5年", C, {"years": 5}),
    ("密级：机密 份数：5", S, None),
    ("密级：秘密；保密期限：10年", C, {"years": 10}),
    ("密级: 绝密★20年 紧急程度：特急", T, {"years": 20}),
])
def test_label_in_a_form_row(text: str, level: Level, period: dict | None) -> None:
    m = parse_marking(text)
    assert m is not None and m.level is level and m.period == period


def test_label_followed_by_words_is_not_a_marking() -> None:
    assert parse_marking("密级：秘密文件的管理") is None


# -- generalisation sweep: label field names, brackets, nonstandard forms ------------------------
@pytest.mark.parametrize("text,level", [
    ("| 密级 | 机密 |", S),  # a text-table row: label cell, value cell
    ("密级 | 秘密", C),
    ("文件密级：绝密", T),
    ("密级和保密期限：机密★10年", S),  # the GB/T 9704 field name
    ("密级（保密期限）：秘密★5年", C),
    ("密级: 工作秘密", I),
])
def test_label_field_names_and_table_rules(text: str, level: Level) -> None:
    m = parse_marking(text)
    assert m is not None and m.level is level, text


@pytest.mark.parametrize("text,level", [("〔机密〕", S), ("〖秘密〗", C)])
def test_tortoise_shell_brackets_around_a_bare_level(text: str, level: Level) -> None:
    m = parse_marking(text)
    assert m is not None and m.level is level and m.form == "bare"


def test_tortoise_shell_paragraph_mark() -> None:
    from scanner.grammar import paragraph_mark

    m = paragraph_mark("〔绝密〕本段涉及项目预算安排。")
    assert m is not None and m.level is T and m.form == "paragraph"


@pytest.mark.parametrize("text,level,fields", [
    ("机密（★10年）", S, {"period": {"years": 10}, "nonstandard": True}),
    ("秘密(★6个月)", C, {"period": {"months": 6}, "nonstandard": True}),
    ("绝密★长期有效", T, {"period": "long_term"}),
    ("机密★10年以内", S, {"period": {"years": 10}}),
])
def test_star_inside_the_bracket_and_period_tails(text: str, level: Level, fields: dict) -> None:
    m = parse_marking(text)
    assert m is not None and m.level is level, text
    for k, v in fields.items():
        assert getattr(m, k) == v, (text, k)


def test_period_tail_does_not_swallow_running_text() -> None:
    hits = find_star_forms("机密★5年的文件要按规定管理")
    assert hits and hits[0].marking.period == {"years": 5}
    assert hits[0].marking.text == "机密★5年"


@pytest.mark.parametrize("text", [
    "内部资料，注意保存", "内部资料　妥善保管", "内部文件 注意保存", "【内部】", "内部材料、注意保密",
])
def test_internal_marks_with_keeping_instructions(text: str) -> None:
    m = parse_marking(text)
    assert m is not None and m.level is I, text


@pytest.mark.parametrize("text", ["内部文件", "内部控制", "内部审计制度", "内部资料管理办法"])
def test_internal_words_in_headings_are_not_marks(text: str) -> None:
    assert parse_marking(text) is None


def test_english_classification_label() -> None:
    m = parse_marking("Classification: SECRET//NOFORN")
    assert m is not None and m.level is S and m.caveats == ("NOFORN",)
    assert parse_marking("Classification: public") is None
