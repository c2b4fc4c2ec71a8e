"""RTF extractor: code-page bytes, \\uN with \\ucN, skipped destinations, roles, properties."""
from __future__ import annotations

import time

import pytest
from _docs_fixtures import ctx, errors, segments, texts

from scanner.extractors.rtf import RtfExtractor
from scanner.model import ErrorCode, Member

EX = RtfExtractor()


def gbk_escape(s: str, enc: str = "gbk") -> str:
    return "".join(f"\\'{b:02x}" for b in s.encode(enc))


def rtf(body: str, head: str = r"\ansi\ansicpg936\deff0", fonts: str = r"{\f0\fnil\fcharset134 \'cb\'ce\'cc\'e5;}") -> bytes:
    return ("{\\rtf1" + head + "{\\fonttbl" + fonts + "}{\\colortbl;\\red0\\green0\\blue0;}" + body + "}").encode("gbk")


def run(data: bytes) -> list[object]:
    return list(EX.extract(data, ctx("text/rtf")))


def test_ansicpg936_bytes_decoded_as_one_text() -> None:
    data = rtf(r"\pard\f0 " + gbk_escape("机密★10年") + r"\par\pard " + gbk_escape("正文") + r"\par")
    segs = segments(run(data))
    assert [(s.text, s.index, s.role, s.standalone) for s in segs] == [
        ("机密★10年", 0, "body", True), ("正文", 1, "body", True)]


def test_font_charset_wins_over_ansi_codepage() -> None:
    fonts = r"{\f0\fswiss\fcharset0 Arial;}{\f1\fnil\fcharset136 PMingLiU;}"
    data = rtf(r"\pard\f1 " + gbk_escape("機密★5年", "big5") + r"\par", head=r"\ansi\ansicpg1252", fonts=fonts)
    assert texts(run(data)) == ["機密★5年"]


def test_unicode_escapes_skip_fallback_per_uc() -> None:
    body = (r"\pard\uc1\u26426?\u23494?\u9733?5\u24180?\par"
            r"\pard\uc2\u-30237\'bd\'e2\u23494\'c3\'dc\par")  # 解 (U+89E3) as a negative 16-bit value
    assert texts(run(rtf(body))) == ["机密★5年", "解密"]


def test_destinations_skipped_and_field_result_kept() -> None:
    body = (r"{\*\generator Riched20 绝密;}{\stylesheet{\s0 Normal 绝密;}}{\pict\wmetafile8 abcdef0123}"
            r"{\*\bkmkstart 绝密}{\*\unknowndest secret}\pard{\field{\*\fldinst DOCPROPERTY 绝密}"
            r"{\fldrslt " + gbk_escape("机密") + r"}}" + gbk_escape("★1年") + r"\par{\*\bkmkend x}")
    assert texts(run(rtf(body))) == ["机密★1年"]


def test_header_footer_footnote_roles() -> None:
    body = (r"{\header\pard " + gbk_escape("秘密★") + r"\par}{\footerf\pard " + gbk_escape("机密★3年") + r"\par}"
            r"\pard " + gbk_escape("正文") + r"{\footnote\pard " + gbk_escape("注") + r"}\par")
    segs = segments(run(rtf(body)))
    got = {(s.text, s.role, s.member) for s in segs}
    assert ("秘密★", "header", "header") in got
    assert ("机密★3年", "footer", "footerf") in got
    assert ("正文", "body", None) in got
    assert ("注", "note", "footnotes") in got


def test_table_cells_textbox_and_page_break_index() -> None:
    body = (r"\trowd\cellx1000\cellx2000\pard\intbl " + gbk_escape("机密★") + r"\cell " + gbk_escape("编号")
            + r"\cell\row\pard " + gbk_escape("正文") + r"\par\page\pard " + gbk_escape("附件") + r"\par"
            r"{\shp{\*\shpinst{\sp{\sn fillColor}{\sv 0}}{\shptxt\pard " + gbk_escape("秘密★5年")
            + r"\par}}{\shprslt{\pict abc}" + gbk_escape("秘密★5年") + "}}")
    segs = segments(run(rtf(body)))
    assert [(s.text, s.role, s.index) for s in segs] == [
        ("机密★", "cell", 0), ("编号", "cell", 1), ("正文", "body", 2), ("附件", "body", 0),
        ("秘密★5年", "textbox", 0)]


def test_info_and_userprops_are_properties() -> None:
    body = (r"{\info{\title " + gbk_escape("通知") + r"}{\author 张三}{\keywords " + gbk_escape("秘密") + "}}"
            r"{\*\userprops{\propname " + gbk_escape("密级") + r"}\proptype30{\staticval " + gbk_escape("机密")
            + r"}}\pard x\par")
    props = {(s.key, s.text) for s in segments(run(rtf(body))) if s.role == "property"}
    assert props == {("title", "通知"), ("keywords", "秘密"), ("密级", "机密")}


def test_upr_reads_unicode_form_only() -> None:
    body = r"\pard{\upr{" + gbk_escape("机密") + r"}{\*\ud{\u26426?\u23494?}}}\par"
    assert texts(run(rtf(body))) == ["机密"]


def test_bin_data_skipped() -> None:
    data = b"{\\rtf1\\ansi\\pard a{\\pict\\bin4 }{}}}b\\par}"
    assert texts(run(data)) == ["ab"]


def test_hostile_deep_nesting_and_garbage() -> None:
    t = time.perf_counter()
    items = run(b"{\\rtf1" + b"{" * 200_000 + b"x")
    assert time.perf_counter() - t < 5
    assert [e.error for e in errors(items)] == [ErrorCode.TOO_DEEP]
    assert errors(run(b"not rtf at all"))
    run(b"{\\rtf1\\u\\'zz\\'\\ansicpg99999\\f999 \\bin99999999")  # must not raise


def test_sniff() -> None:
    assert RtfExtractor.sniff(b"{\\rtf1\\ansi", "text/plain")
    assert not RtfExtractor.sniff(b"{\"json\": 1}", "text/plain")


def test_tracked_deletion_dropped_insertion_kept() -> None:
    # Word writes a tracked change as {\deleted old}{\revised new}: the struck-out mark is not
    # what the document says; `\deleted0` and `\plain` end a deletion inside one group.
    body = (r"\pard{\deleted\revauthdel1 " + gbk_escape("绝密★30年") + r"}{\revised\revauth1 "
            + gbk_escape("秘密★5年") + r"}\par\pard " + gbk_escape("正") + r"\deleted " + gbk_escape("删")
            + r"\deleted0 " + gbk_escape("文") + r"{\deleted\u26426?}" + gbk_escape("一") + r"\deleted X\plain Y\par")
    assert texts(run(rtf(body))) == ["秘密★5年", "正文一Y"]


def test_deletion_never_ended_is_reported_not_silent() -> None:
    # `\deleted` switched on at the document level and never off hides everything after it.
    items = run(rtf(gbk_escape("正文") + r"\par\deleted " + gbk_escape("机密★5年") + r"\par more text\par"))
    assert [e.error for e in errors(items)] == [ErrorCode.CORRUPT]
    assert "never ended" in errors(items)[0].detail
    # a deletion closed by its group, by \deleted0 or by \plain is a tracked change, no error
    for body in (r"{\deleted old}\par kept\par", r"\deleted old\deleted0 kept\par", r"\deleted old\plain kept\par"):
        assert errors(run(rtf(body))) == [], body


def test_groups_beyond_the_depth_limit_read_flattened_not_dropped() -> None:
    # 100k nested groups around a marking: too_deep is reported, the text inside is still read.
    t = time.perf_counter()
    items = run(rtf("{" * 100_000 + gbk_escape("机密★5年") + "}" * 100_000 + r"\par after"))
    assert time.perf_counter() - t < 5
    assert [e.error for e in errors(items)] == [ErrorCode.TOO_DEEP]
    assert any("机密★5年" in x for x in texts(items)) and any("after" in x for x in texts(items))


def test_bin_longer_than_the_file_is_corrupt() -> None:
    items = run(b"{\\rtf1\\ansi text\\bin999999999 abc}")
    assert [e.error for e in errors(items)] == [ErrorCode.CORRUPT]


def ole1_package(name: bytes, data: bytes, *, length_counts_nul: bool = True) -> bytes:
    """An OLE1 embedded `Package` object (MS-OLEDS 2.2.4), as Word writes into `\\objdata`."""
    import struct

    tmp = b"C:\\Temp\\" + name + b"\0"
    native = (b"\x02\x00" + name + b"\0" + b"C:\\" + name + b"\0" + struct.pack("<I", 0x00030000)
              + struct.pack("<I", len(tmp) - (0 if length_counts_nul else 1)) + tmp
              + struct.pack("<I", len(data)) + data)
    return (struct.pack("<II", 0x00000501, 2) + struct.pack("<I", 8) + b"Package\0" + struct.pack("<II", 0, 0)
            + struct.pack("<I", len(native)) + native)


@pytest.mark.parametrize("counts_nul", [True, False])
def test_embedded_object_is_a_member(counts_nul: bool) -> None:
    from scanner.engine import Scanner
    from scanner.model import Kind

    inner = "机密★5年\n关于某事的通知\n正文。\n".encode("gbk")
    hexed = ole1_package(b"a.txt", inner, length_counts_nul=counts_nul).hex()
    body = (r"正文\par{\object\objemb{\*\objclass Package}{\*\objdata " + "\n".join(
        hexed[i:i + 128] for i in range(0, len(hexed), 128)) + r"}{\result icon}}\par")
    items = run(rtf(body))
    members = [i for i in items if isinstance(i, Member)]
    assert [(m.name, m.data) for m in members] == [("object 1/a.txt", inner)]
    findings, errs, _ = Scanner().scan_bytes(rtf(body), "x.rtf")
    assert [(f.text, f.member, f.kind) for f in findings if f.kind is Kind.MARKING] == \
        [("机密★5年", "object 1/a.txt", Kind.MARKING)] and not errs


def test_objdata_that_is_no_ole1_object_is_scanned_as_bytes() -> None:
    import io
    import zipfile

    from scanner.engine import Scanner

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "绝密★长期\n正文\n".encode("gbk"))
    body = r"{\object\objemb{\*\objdata " + buf.getvalue().hex() + "}}"
    findings, _, _ = Scanner().scan_bytes(rtf(body), "x.rtf")
    assert [(f.text, f.member) for f in findings] == [("绝密★长期", "object 1/objdata!a.txt")]
    # a linked object (format 1) carries no data to scan
    linked = (0x501).to_bytes(4, "little") + (1).to_bytes(4, "little") + b"\0" * 16
    assert [i for i in run(rtf(r"{\object\objlink{\*\objdata " + linked.hex() + "}}")) if isinstance(i, Member)] == []
    # an embedded object whose header is cut short is corrupt, not silently dropped
    cut = ole1_package(b"a.txt", b"x")[:14]
    assert [e.error for e in errors(run(rtf(r"{\object\objemb{\*\objdata " + cut.hex() + "}}")))] == [ErrorCode.CORRUPT]
