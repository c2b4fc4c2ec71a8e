"""ODF extractor: odt/ods/odp content, headers/footers from styles.xml, meta incl. user fields."""
from __future__ import annotations

from _docs_fixtures import ctx, errors, make_zip, run, segments, texts

from scanner.extractors.base import Limits
from scanner.extractors.odf import OdfExtractor
from scanner.model import ErrorCode

EX = OdfExtractor()
NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
      'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
      'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
      'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
      'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
      'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" '
      'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
      'xmlns:dc="http://purl.org/dc/elements/1.1/"')


def odf(kind: str, body: str, styles: str = "", meta: str = "", manifest_extra: str = "") -> bytes:
    mime = f"application/vnd.oasis.opendocument.{kind}"
    office_kind = {"text": "text", "spreadsheet": "spreadsheet", "presentation": "presentation"}[kind]
    parts: dict[str, bytes | str] = {
        "mimetype": mime,
        "META-INF/manifest.xml": ('<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
                                  f'<manifest:file-entry manifest:full-path="content.xml">{manifest_extra}'
                                  "</manifest:file-entry></manifest:manifest>"),
        "content.xml": (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {NS}><office:body>'
                        f"<office:{office_kind}>{body}</office:{office_kind}></office:body></office:document-content>"),
    }
    if styles:
        parts["styles.xml"] = (f'<office:document-styles {NS}><office:master-styles>{styles}'
                               "</office:master-styles></office:document-styles>")
    if meta:
        parts["meta.xml"] = f"<office:document-meta {NS}><office:meta>{meta}</office:meta></office:document-meta>"
    return make_zip(parts, stored=True)


def test_odt_spans_spaces_headings_and_soft_page_break() -> None:
    body = ('<text:h>标题</text:h><text:p>机<text:span>密</text:span>★<text:span>1</text:span>0年</text:p>'
            '<text:p>秘<text:s/>密</text:p><text:soft-page-break/><text:p>附件</text:p>')
    segs = segments(run(EX, odf("text", body)))
    assert [(s.text, s.index, s.role, s.member) for s in segs] == [
        ("标题", 0, "body", "content.xml"), ("机密★10年", 1, "body", "content.xml"),
        ("秘 密", 2, "body", "content.xml"), ("附件", 0, "body", "content.xml")]


def test_odt_table_frame_note_annotation_tracked_changes() -> None:
    body = ('<table:table><table:table-row><table:table-cell><text:p>绝密★</text:p></table:table-cell>'
            '</table:table-row></table:table>'
            '<text:p>正文<draw:frame><draw:text-box><text:p>秘密★5年</text:p></draw:text-box></draw:frame>尾'
            '<text:note><text:note-citation>1</text:note-citation><text:note-body><text:p>脚注</text:p>'
            '</text:note-body></text:note><office:annotation><dc:creator>张</dc:creator><text:p>批注</text:p>'
            '</office:annotation></text:p>'
            '<text:tracked-changes><text:changed-region><text:deletion><text:p>删掉的机密★</text:p>'
            '</text:deletion></text:changed-region></text:tracked-changes>')
    got = {(s.text, s.role) for s in segments(run(EX, odf("text", body)))}
    assert got == {("绝密★", "cell"), ("正文尾", "body"), ("秘密★5年", "textbox"), ("脚注", "note"),
                   ("批注", "comment")}


def test_headers_footers_and_meta() -> None:
    styles = ('<style:master-page style:name="Standard"><style:header><text:p>机密★3年</text:p></style:header>'
              '<style:footer><text:p>第<text:page-number>1</text:page-number>页</text:p></style:footer>'
              "</style:master-page>")
    meta = ('<dc:title>通知</dc:title><meta:keyword>保密</meta:keyword>'
            '<meta:user-defined meta:name="密级">秘密</meta:user-defined>')
    segs = segments(run(EX, odf("text", "<text:p>x</text:p>", styles, meta)))
    got = {(s.text, s.role, s.key) for s in segs}
    assert ("机密★3年", "header", None) in got
    assert ("第1页", "footer", None) in got
    assert ("秘密", "property", "密级") in got
    assert ("通知", "property", "title") in got


def test_ods_cells_with_addresses_and_repeats() -> None:
    body = ('<table:table table:name="汇总"><table:table-row table:number-rows-repeated="2">'
            '<table:table-cell/></table:table-row><table:table-row>'
            '<table:table-cell table:number-columns-repeated="2"/><table:table-cell><text:p>机密★</text:p>'
            '<text:p>第二段</text:p></table:table-cell></table:table-row></table:table>')
    segs = segments(run(EX, odf("spreadsheet", body)))
    assert [(s.member, s.text, s.role) for s in segs] == [("汇总!C3", "机密★\n第二段", "cell")]


def test_odp_title_body_notes() -> None:
    body = ('<draw:page draw:name="p1"><draw:frame presentation:class="title"><draw:text-box><text:p>绝密★1年'
            '</text:p></draw:text-box></draw:frame><draw:frame presentation:class="outline"><draw:text-box>'
            '<text:p>要点</text:p></draw:text-box></draw:frame><presentation:notes><draw:frame '
            'presentation:class="notes"><draw:text-box><text:p>秘密★</text:p></draw:text-box></draw:frame>'
            "</presentation:notes></draw:page>")
    segs = segments(run(EX, odf("presentation", body)))
    got = [(s.member, s.role, s.text, s.index) for s in segs]
    assert ("slide1", "title", "绝密★1年", 0) in got
    assert ("slide1 notes", "note", "秘密★", 0) in got
    assert any(t == "要点" for _m, _r, t, _i in got)


def test_sniff_and_hostile() -> None:
    data = odf("text", "<text:p>x</text:p>")
    assert OdfExtractor.sniff(data, "application/zip")
    assert not OdfExtractor.sniff(make_zip({"a": "b"}), "application/zip")
    enc = odf("text", "<text:p>x</text:p>", manifest_extra="<manifest:encryption-data/>")
    assert [e.error for e in errors(run(EX, enc))] == [ErrorCode.ENCRYPTED]
    assert [e.error for e in errors(run(EX, data[:50]))][:1] == [ErrorCode.CORRUPT]
    big = odf("text", "<text:p>" + "x" * (3 << 20) + "</text:p>")
    items = run(EX, big, ctx(limits=Limits(max_member_size=1 << 20)))
    assert ErrorCode.BOMB in [e.error for e in errors(items)]
    assert texts(items) == []


def test_presentation_master_page_free_shapes_and_footer_not_placeholders() -> None:
    # A text drawn on an Impress master page stands on every slide; placeholders hold prompts.
    page = ('<draw:page draw:name="p1" draw:master-page-name="M"><draw:frame presentation:class="title">'
            "<draw:text-box><text:p>汇报</text:p></draw:text-box></draw:frame></draw:page>")
    styles = ('<style:master-page style:name="M">'
              '<draw:frame presentation:class="title" presentation:placeholder="true"><draw:text-box>'
              "<text:p>单击此处编辑标题</text:p></draw:text-box></draw:frame>"
              "<draw:frame><draw:text-box><text:p>秘密★5年</text:p></draw:text-box></draw:frame>"
              '<draw:custom-shape><text:p>绝密</text:p></draw:custom-shape>'
              '<draw:frame presentation:class="footer"><draw:text-box><text:p>机密★</text:p></draw:text-box></draw:frame>'
              "</style:master-page>")
    segs = segments(run(EX, odf("presentation", page, styles=styles)))
    got = {(s.text, s.role, s.member) for s in segs if s.member and s.member.startswith("styles.xml")}
    assert got == {("秘密★5年", "body", "styles.xml!master M"), ("绝密", "body", "styles.xml!master M"),
                   ("机密★", "footer", "styles.xml!master M")}


def test_ruby_phonetic_guide_left_out() -> None:
    body = ('<text:p><text:ruby><text:ruby-base>秘密</text:ruby-base><text:ruby-text>mì mì</text:ruby-text>'
            "</text:ruby>★10年</text:p>")
    assert texts(run(EX, odf("text", body))) == ["秘密★10年"]


# Nesting that the format does not need but a hostile file can hold: every level used to read
# everything below it again (quadratic: a few KB zipped took 10-35 s; fuzz regressions kept under
# tests/fuzz/regressions/odf/). Each text is now read once.

def test_nested_sub_tables_read_once_as_part_of_their_cell() -> None:
    x = "<text:p>机密★</text:p>"
    for i in range(3):
        x = (f'<table:table table:name="T{i}"><table:table-row><table:table-cell><text:p>c{i}</text:p>{x}'
             "</table:table-cell></table:table-row></table:table>")
    header = ("<table:table><table:table-header-rows><table:table-row><table:table-cell><text:p>表头</text:p>"
              "</table:table-cell></table:table-row></table:table-header-rows></table:table>")
    segs = segments(run(EX, odf("spreadsheet", x + header)))
    assert [(s.member, s.text) for s in segs] == [("T2!A1", "c2\nc1\nc0\n机密★"), ("Sheet2!A1", "表头")]


def test_nested_slides_read_once() -> None:
    x = '<draw:frame><draw:text-box><text:p>绝密★</text:p></draw:text-box></draw:frame>'
    for i in range(3):
        x = f'<draw:page><draw:frame><draw:text-box><text:p>第{i}层</text:p></draw:text-box></draw:frame>{x}</draw:page>'
    got = [s.text for s in segments(run(EX, odf("presentation", x)))]
    assert sorted(got) == ["第0层", "第1层", "第2层", "绝密★"]


def test_nested_master_pages_read_once() -> None:
    x = ""
    for i in range(3):
        x = (f'<style:master-page style:name="m{i}"><style:header><text:p>机密★{i}年</text:p>{x}'
             "</style:header></style:master-page>")
    got = [s.text for s in segments(run(EX, odf("text", "<text:p>x</text:p>", styles=x))) if s.role == "header"]
    assert sorted(got) == ["机密★0年", "机密★1年", "机密★2年"]


def test_nested_meta_fields_read_once() -> None:
    meta = ('<meta:user-defined meta:name="密级">秘密<meta:user-defined meta:name="x">★1年</meta:user-defined>'
            "</meta:user-defined>")
    got = [(s.key, s.text) for s in segments(run(EX, odf("text", "<text:p>x</text:p>", meta=meta)))
           if s.role == "property"]
    assert got == [("密级", "秘密★1年")]


def test_count_attributes_that_are_no_numbers_do_not_lose_the_document() -> None:
    # `²` passes str.isdigit and a 5,000-digit value passes too, but int() refuses both: the
    # ValueError made the whole document an error record, none of its text read.
    body = f'<text:p>秘<text:s text:c="²"/>密<text:s text:c="{"9" * 5000}"/>★</text:p>'
    assert [t.replace(" ", "") for t in texts(run(EX, odf("text", body)))] == ["秘密★"]
    rows = ('<table:table table:name="表"><table:table-row table:number-rows-repeated="²"><table:table-cell/>'
            f'</table:table-row><table:table-row><table:table-cell table:number-columns-repeated="{"9" * 5000}"/>'
            "<table:table-cell><text:p>机密★</text:p></table:table-cell></table:table-row></table:table>")
    assert [(s.member, s.text) for s in segments(run(EX, odf("spreadsheet", rows)))] == [("表!XFE2", "机密★")]
