"""HTML/XML extractor: entities, inline joins, block breaks, head metadata, charsets, XML bombs."""
from __future__ import annotations

import codecs
import time

import pytest
from _docs_fixtures import CORPUS, ctx, errors, run, segments, texts

from scanner.extractors.markup import MarkupExtractor
from scanner.model import ErrorCode

EX = MarkupExtractor()


def html(body: str, head: str = "<meta charset='utf-8'>") -> bytes:
    return f"<html><head>{head}</head><body>{body}</body></html>".encode()


def test_numeric_hex_and_named_entities() -> None:
    data = html("<p>&#26426;&#23494;&#9733;&#x35;&#24180;</p><p>&#x673A;&#x5BC6;&amp;&nbsp;x</p>")
    assert texts(run(EX, data)) == ["机密★5年", "机密&\xa0x"]


def test_inline_elements_join_block_elements_break() -> None:
    data = html("<div>机<span>密</span><b>★</b>5<font>年</font></div><div>正文<br>第二行</div>"
                "<table><tr><td>秘密</td><td>文件</td></tr></table>")
    segs = segments(run(EX, data))
    assert [(s.text, s.role, s.index, s.standalone) for s in segs] == [
        ("机密★5年", "body", 0, True), ("正文", "body", 1, True), ("第二行", "body", 2, True),
        ("秘密", "cell", 3, True), ("文件", "cell", 4, True)]


def test_title_and_meta_are_segments_script_style_are_not() -> None:
    head = ("<meta charset='utf-8'><title>关于X的通知</title><meta name='密级' content='机密'>"
            "<style>.a{content:'绝密★1年'}</style><script>var s='绝密★1年';</script>")
    data = html("<p>正文</p><script>document.write('绝密★2年')</script><p>尾</p>", head)
    segs = segments(run(EX, data))
    assert ("title", "关于X的通知", "title") in {(s.role, s.text, s.key) for s in segs}
    assert ("property", "机密", "密级") in {(s.role, s.text, s.key) for s in segs}
    assert not any("绝密" in s.text for s in segs)
    assert [s.text for s in segs if s.role == "body"] == ["正文", "尾"]


def test_gb2312_meta_charset() -> None:
    data = ("<html><head><meta http-equiv='Content-Type' content='text/html; charset=gb2312'></head>"
            "<body><p>机密★9个月</p></body></html>").encode("gb18030")
    assert texts(run(EX, data)) == ["机密★9个月"]


def test_no_charset_gbk_guessed_and_utf16_bom() -> None:
    assert texts(run(EX, "<html><body><p>秘密★3年</p></body></html>".encode("gbk"))) == ["秘密★3年"]
    data = codecs.BOM_UTF16_LE + "<html><body><p>绝密★长期</p></body></html>".encode("utf-16-le")
    assert texts(run(EX, data)) == ["绝密★长期"]


def test_xml_generic_mixed_content_and_attributes() -> None:
    data = ('<?xml version="1.0" encoding="GBK"?><公文><版头><密级和保密期限>机<b>密</b>★5年</密级和保密期限>'
            '</版头><字段 name="密级" value="秘密"/><正文><段>正文</段></正文></公文>').encode("gbk")
    segs = segments(run(EX, data, ctx("text/xml")))
    got = {(s.role, s.text, s.key) for s in segs}
    assert ("body", "机密★5年", "密级和保密期限") in got
    assert ("property", "秘密", "密级") in got
    assert ("body", "正文", "段") in got


def test_xhtml_uses_html_rules() -> None:
    data = ('<?xml version="1.0" encoding="UTF-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head>'
            "<title>T</title></head><body><p>机<span>密</span>★1年</p><p>b</p></body></html>").encode()
    segs = segments(run(EX, data, ctx("text/xml")))
    assert [s.text for s in segs if s.role == "body"] == ["机密★1年", "b"]


@pytest.mark.parametrize("body", ["<p>关于R&D项目的通知</p>", "<p>AT&T 与 R&D</p><br>", "<p>a</p><img src=x>"])
def test_xhtml_that_is_not_well_formed_is_read_as_html_not_corrupt(body: str) -> None:
    """Issue 15: an XHTML page with an unescaped & (R&D) was a `corrupt` error; browsers read it."""
    data = ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml">'
            f"<head><title>R&D 报告</title></head><body><p>机密★10年</p>{body}</body></html>").encode()
    items = run(EX, data, ctx("text/xml"))
    assert errors(items) == []
    assert "机密★10年" in [s.text for s in segments(items) if s.role == "body"]
    # plain XML that is broken stays an error (it is not a page a browser would render)
    broken = b'<?xml version="1.0"?><doc><x>R&D</x><y>\xe6\x9c\xba\xe5\xaf\x86</y></doc>'
    assert [e.error for e in errors(run(EX, broken, ctx("text/xml")))] == [ErrorCode.CORRUPT]


def test_xml_billion_laughs_never_expands() -> None:
    ents = '<!ENTITY a "aaaaaaaaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 16}">' for i in range(12))
    data = f'<?xml version="1.0"?><!DOCTYPE r [{ents}]><r><x>&m;</x><y>秘密★1年</y></r>'.encode()
    t = time.perf_counter()
    items = run(EX, data, ctx("text/xml"))
    assert time.perf_counter() - t < 1.0
    assert all("aaaa" not in s for s in texts(items))
    assert "秘密★1年" in texts(items)
    assert errors(items)


def test_external_entity_not_read() -> None:
    data = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>'
    assert all("root" not in t for t in texts(run(EX, data, ctx("text/xml"))))


def test_malformed_xml_is_reported_not_raised() -> None:
    items = run(EX, b'<?xml version="1.0"?><r><a>machine</b>', ctx("text/xml"))
    assert ErrorCode.CORRUPT in [e.error for e in errors(items)]


def test_sniff_by_content() -> None:
    assert MarkupExtractor.sniff(b"<!DOCTYPE html><html>", "text/plain")
    assert MarkupExtractor.sniff(b'\xef\xbb\xbf<?xml version="1.0"?><a/>', "text/plain")
    assert not MarkupExtractor.sniff("机密★1年 <b>".encode(), "text/plain")
    assert MarkupExtractor.sniff(b"", "text/html")


def test_leading_comments_sniffed_in_linear_time() -> None:
    # A head of k comments not followed by an HTML tag cost 2**k regex steps (22: 1 s): an XML
    # file opening with 40 licence comments, or a text file of them, hung the pick and the read.
    comments = "".join(f"<!-- 第{i}行 -->\n" for i in range(40))
    t = time.perf_counter()
    assert not MarkupExtractor.sniff((comments + "机密★1年").encode(), "text/plain")
    assert MarkupExtractor.sniff((comments + "<html><body>x</body></html>").encode(), "text/plain")
    items = run(EX, (comments + "<doc><p>秘密★5年</p></doc>").encode(), ctx("text/xml"))
    assert time.perf_counter() - t < 5  # previously: 2**40 steps
    assert texts(items) == ["秘密★5年"]


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus not present")
@pytest.mark.parametrize(("name", "mime", "marking"), [
    ("p-markup-0066.html", "text/html", "秘密★7年"),
    ("p-markup-0068.htm", "text/html", "机密★9个月"),
    ("p-markup-0069.htm", "text/html", "秘密★2053年4月3日"),
    ("p-markup-0070.xml", "text/xml", "秘密★工程竣工后解密"),
])
def test_corpus(name: str, mime: str, marking: str) -> None:
    items = run(EX, (CORPUS / "P-markup" / name).read_bytes(), ctx(mime))
    segs = segments(items)
    assert not errors(items)
    assert segs and any(s.text == marking and s.standalone and s.index == 0 for s in segs)


def test_unclosed_inline_tags_deeper_than_libxml2_limit_keep_their_text() -> None:
    for depth in (300, 50_000):
        data = ("<p>头</p>" + "<font>" * depth + "机<b>密</b>★1年" + "</font>" * depth + "<p>尾</p>").encode()
        items = run(EX, data, ctx("text/html"))
        assert texts(items) == ["头", "机密★1年", "尾"]
        assert bool(errors(items)) == (depth > 10_000)


def test_tag_stripping_fallback_is_linear_on_unclosed_tags() -> None:
    # A page too deep for the parser is read by stripping tags: every unclosed `<script`, `<!--`
    # or `<` searched to the end of the page again (30,000 of them: minutes). Text is kept.
    data = ("<p>头</p>" + "<font>" * 50_000 + "<script" * 30_000 + "<!--" * 30_000 + "<" * 30_000
            + "</p>机密★1年").encode()
    t = time.perf_counter()
    items = run(EX, data, ctx("text/html"))
    assert time.perf_counter() - t < 5  # previously minutes
    assert texts(items)[0] == "头" and texts(items)[-1] == "机密★1年"
    assert ErrorCode.CORRUPT in [e.error for e in errors(items)]


def test_deep_xml_reports_and_does_not_hang() -> None:
    data = ('<?xml version="1.0"?>' + "<a>" * 100_000 + "x" + "</a>" * 100_000).encode()
    t = time.perf_counter()
    items = run(EX, data, ctx("text/xml"))
    assert time.perf_counter() - t < 5
    assert ErrorCode.CORRUPT in [e.error for e in errors(items)]


def test_word_2003_xml_and_flat_opc_paragraph_runs_joined() -> None:
    data = ('<?xml version="1.0"?><?mso-application progid="Word.Document"?>'
            '<w:wordDocument xmlns:w="http://schemas.microsoft.com/office/word/2003/wordml"><w:body>'
            "<w:p><w:r><w:t>机</w:t></w:r><w:r><w:instrText>PAGE</w:instrText></w:r><w:r><w:t>密★2年</w:t></w:r></w:p>"
            "<w:p><w:r><w:t>正文</w:t></w:r></w:p></w:body></w:wordDocument>").encode()
    assert texts(run(EX, data, ctx("text/xml"))) == ["机密★2年", "正文"]


def test_tag_name_cache_is_bounded_and_tags_keep_their_meaning() -> None:
    """Local tag names are cached; a page inventing thousands of tag names neither grows the
    cache past its bound nor loses its text, and block tags still break lines after it."""
    import scanner.extractors.markup as mk

    invented = "".join(f"<x{i}>w{i}</x{i}>" for i in range(6000))
    page = f"<html><body><p>{invented}</p><P>机密★10年</P><DIV>正文</DIV></body></html>"
    got = texts(run(EX, page.encode()))
    assert len(mk._LOCAL) <= 4096
    assert "机密★10年" in got and "正文" in got
    assert any(t.startswith("w0") and t.endswith("w5999") for t in got)
