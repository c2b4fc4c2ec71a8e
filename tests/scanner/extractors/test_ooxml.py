"""OOXML extractor: located, rejoined text from Word/Excel/PowerPoint packages; hostile zips."""
from __future__ import annotations

import time
from collections.abc import Iterable

import pytest
from _docs_fixtures import (
    A_NS,
    CORPUS,
    OD,
    P_NS,
    _rels,
    _sp,
    apara,
    ctx,
    docx,
    errors,
    make_zip,
    p,
    pptx,
    run,
    segments,
    texts,
    word_part,
    xlsx,
)

from scanner.extractors.base import Limits
from scanner.extractors.ooxml import OoxmlExtractor, parse_xml, split_header_footer
from scanner.model import ErrorCode, Member

EX = OoxmlExtractor()
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def test_split_runs_proof_errors_bookmarks_rejoined() -> None:
    body = ('<w:p><w:r><w:t>机</w:t></w:r><w:proofErr w:type="spellStart"/><w:r><w:t>密★1</w:t></w:r>'
            '<w:bookmarkStart w:id="0" w:name="m"/><w:bookmarkEnd w:id="0"/>'
            '<w:r><w:rPr><w:b/></w:rPr><w:t>1年</w:t></w:r></w:p>' + p("关于开展专项督查的通知"))
    segs = segments(run(EX, docx(body)))
    assert segs[0].text == "机密★11年"
    assert (segs[0].role, segs[0].standalone, segs[0].index) == ("body", True, 0)
    assert segs[0].member == "word/document.xml"
    assert segs[1].index == 1


def test_field_code_excluded_result_kept_soft_hyphen_and_deleted_text_dropped() -> None:
    body = ('<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
            '<w:r><w:instrText> DOCPROPERTY 密级 </w:instrText></w:r>'
            '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>机密</w:t></w:r>'
            '<w:r><w:fldChar w:fldCharType="end"/></w:r><w:r><w:softHyphen/><w:t>★5年</w:t></w:r>'
            '<w:del><w:r><w:delText>作废</w:delText></w:r></w:del></w:p>')
    assert texts(run(EX, docx(body))) == ["机密★5年"]


def test_header_footer_notes_comments_have_their_roles() -> None:
    parts = {
        "word/header1.xml": word_part("hdr", p("机密★7年")),
        "word/footer2.xml": word_part("ftr", p("秘密★")),
        "word/footnotes.xml": word_part("footnotes", f"<w:footnote>{p('脚注')}</w:footnote>"),
        "word/comments.xml": word_part("comments", f"<w:comment>{p('批注')}</w:comment>"),
    }
    segs = segments(run(EX, docx(p("正文"), parts=parts)))
    by_text = {s.text: s for s in segs}
    assert by_text["机密★7年"].role == "header"
    assert by_text["机密★7年"].member == "word/header1.xml"
    assert by_text["机密★7年"].standalone and by_text["机密★7年"].index == 0
    assert by_text["秘密★"].role == "footer"
    assert by_text["脚注"].role == "note"
    assert by_text["批注"].role == "comment"


def test_table_cells_and_text_boxes_vml_and_drawingml_once() -> None:
    table = ("<w:tbl><w:tr><w:tc>" + p("绝密★22年") + "</w:tc><w:tc>" + p("文件编号") + "</w:tc></w:tr></w:tbl>")
    txbx = ('<w:p><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wps:wsp><wps:txbx>'
            '<w:txbxContent>' + p("秘密★15年") + '</w:txbxContent></wps:txbx></wps:wsp></w:drawing>'
            '</mc:Choice><mc:Fallback><w:pict><v:shape><v:textbox><w:txbxContent>' + p("秘密★15年")
            + '</w:txbxContent></v:textbox></v:shape></w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>')
    vml_only = ('<w:p><w:r><w:pict><v:shape><v:textbox><w:txbxContent>' + p("机密★")
                + '</w:txbxContent></v:textbox></v:shape></w:pict></w:r></w:p>')
    segs = segments(run(EX, docx(txbx + table + vml_only)))
    got = [(s.text, s.role, s.index) for s in segs]
    assert got == [("秘密★15年", "textbox", 0), ("绝密★22年", "cell", 1), ("文件编号", "cell", 2),
                   ("机密★", "textbox", 3)]


def test_page_break_restarts_index() -> None:
    body = (p("正文一") + p("正文二") + '<w:p><w:r><w:br w:type="page"/></w:r></w:p>' + p("附件") + p("机密★5年")
            + '<w:p><w:pPr><w:pageBreakBefore/></w:pPr><w:r><w:t>秘密</w:t></w:r></w:p>')
    segs = segments(run(EX, docx(body)))
    assert [(s.text, s.index) for s in segs] == [("正文一", 0), ("正文二", 1), ("附件", 0), ("机密★5年", 1),
                                                  ("秘密", 0)]


def test_custom_property_core_properties_and_docvars() -> None:
    settings = word_part("settings", '<w:docVars><w:docVar w:name="secret_level" w:val="机密"/></w:docVars>')
    data = docx(p("正文"), custom={"密级": "机密"}, core={"dc:title": "关于X的通知", "cp:keywords": "秘密"},
                parts={"word/settings.xml": settings})
    segs = segments(run(EX, data))
    props = {(s.key, s.text): s for s in segs if s.role == "property"}
    prop = props[("密级", "机密")]
    assert prop.standalone and prop.member == "docProps/custom.xml"
    assert ("title", "关于X的通知") in props and ("keywords", "秘密") in props
    assert ("secret_level", "机密") in props


def test_wingdings_star_symbol() -> None:
    body = '<w:p><w:r><w:t>机密</w:t></w:r><w:r><w:sym w:font="Wingdings" w:char="F0AB"/></w:r><w:r><w:t>5年</w:t></w:r></w:p>'
    assert texts(run(EX, docx(body))) == ["机密★5年"]


def test_embedded_objects_are_members() -> None:
    data = docx(p("正文"), parts={"word/embeddings/oleObject1.bin": "inner bytes"})  # type: ignore[dict-item]
    members = [i for i in run(EX, data) if isinstance(i, Member)]
    assert members == [Member("word/embeddings/oleObject1.bin", b"inner bytes")]


def test_sniff_zip_with_content_types_not_first() -> None:
    data = docx(p("机密★1年"), content_types_first=False)
    assert OoxmlExtractor.sniff(data, "application/zip")
    assert OoxmlExtractor.sniff(data, DOCX_MIME)
    assert not OoxmlExtractor.sniff(make_zip({"a.txt": "x"}), "application/zip")


def test_member_prefix_from_context() -> None:
    segs = segments(run(EX, docx(p("机密★1年")), ctx(member="a.zip!b.docx")))
    assert segs[0].member == "a.zip!b.docx!word/document.xml"


# ------------------------------------------------------------------ Excel

def test_xlsx_shared_inline_formula_cells_and_header_footer() -> None:
    rows = ('<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1"><v>42</v></c></row>'
            '<row r="3"><c r="B3" t="inlineStr"><is><r><t>机</t></r><r><t>密★5年</t></r>'
            '<rPh><t>ジ</t></rPh></is></c><c r="C3" t="str"><f>A1</f><v>秘密</v></c></row>')
    hf = '<headerFooter><oddHeader>&amp;L&amp;"宋体,加粗"&amp;12秘密★17年&amp;R第&amp;P页</oddHeader></headerFooter>'
    segs = segments(run(EX, xlsx(rows, shared=["绝密★2029年7月27日"], header_footer=hf)))
    got = {(s.member, s.text, s.role) for s in segs}
    assert ("汇总!A1", "绝密★2029年7月27日", "cell") in got
    assert ("汇总!B3", "机密★5年", "cell") in got
    assert ("汇总!C3", "秘密", "cell") in got
    assert ("汇总!header", "秘密★17年", "header") in got
    assert all(s.text != "42" for s in segs)
    assert all(s.standalone for s in segs)


_SHEETS_READ_BOTH_WAYS = [  # (sheet, read from one parse)
    # ordinary: cells of every text type, rich and phonetic runs, a formula, headers/footers
    ('<sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1"><v>4</v></c><c r="C1" t="s"><v>-1</v></c>'
     '<c r="D1" t="s"><v>x</v></c></row><row r="2"><c r="A2" t="inlineStr"><is><r><t>机</t></r><r><t>密</t>'
     '</r><rPh><t>ジ</t></rPh></is></c><c t="inlineStr"><is><t>秘密</t></is></c><c r="C2" t="str"><f>A1</f>'
     '<v>内部</v></c><c r="D2" t="str"><v>a</v><v>b</v></c></row></sheetData><headerFooter><oddHeader>'
     '&amp;L机密&amp;R秘密</oddHeader><evenFooter>&amp;C内部</evenFooter></headerFooter>', True),
    # a header before the data, two sheet data elements; a processing instruction in a cell (an
    # exception either way), a string in another namespace
    ('<headerFooter><firstFooter>绝密</firstFooter></headerFooter><sheetData><row><c t="inlineStr"><is><t>一</t>'
     '</is></c></row></sheetData><sheetData><row><c t="inlineStr"><is><t>二</t></is></c></row></sheetData>', True),
    ('<sheetData><row><c t="inlineStr"><is><t>戊</t></is></c><c t="inlineStr"><is xmlns="urn:x"><t>丁</t></is>'
     '</c><c t="s"><?pi x?><v>0</v></c></row>'
     '</sheetData>', True),
    # a cell in a cell, a row under the root, a header inside a cell's string: streamed (what
    # the stream frees changes what it reads after)
    ('<sheetData><row><c r="A1" t="inlineStr"><is><t>外</t><c r="A2" t="inlineStr"><is><t>内</t></is></c>'
     '</is></c></row></sheetData>', False),
    ('<sheetData><row><c t="inlineStr"><is><t>前</t></is></c></row></sheetData><row><c t="str"><v>后</v></c></row>',
     False),
    ('<sheetData><row><c t="inlineStr"><is><t>甲</t><oddHeader>&amp;C乙</oddHeader><t>丙</t></is></c></row>'
     '</sheetData>', False),
]


@pytest.mark.parametrize(("sheet", "whole"), _SHEETS_READ_BOTH_WAYS)
def test_sheet_read_whole_gives_what_the_stream_gives(sheet: str, whole: bool) -> None:
    # Parts up to `_WHOLE_MAX` are read from one parse when every cell stands in a row of the
    # sheet data; the streamed read (which frees what it has read) is the reference, and takes
    # over for any other shape.
    from scanner.extractors import ooxml

    data = (f'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{sheet}'
            "</worksheet>").encode()
    shared = ["绝密★", "机密"]

    def items(read: Iterable[object]) -> list[object]:
        out: list[object] = []
        try:
            out.extend(read)
        except Exception as exc:  # noqa: BLE001 - as the engine records it
            out.append((type(exc).__name__, str(exc)))
        return out

    c = ctx()
    streamed = items(ooxml._sheet_streamed(data, c, "S", "xl/worksheets/sheet1.xml", shared,
                                           ooxml._SharedReads(c.budget, 0)))
    assert streamed
    blocks = ooxml._sheet_blocks(data)
    assert (blocks is not None) == whole
    if blocks is not None:
        whole_read = ooxml._sheet_whole(blocks, c, "S", "xl/worksheets/sheet1.xml", shared,
                                        ooxml._SharedReads(c.budget, 0))
        assert items(whole_read) == streamed


def test_sheet_of_many_tags_is_streamed_not_read_whole() -> None:
    # A whole parse costs ~200-300 bytes a tag: a part of more than `_WHOLE_TAGS` (150,000 empty
    # cells in 600 KB were 44 MB) is streamed, as any part over `_WHOLE_MAX` bytes.
    from scanner.extractors import ooxml

    def sheet(cells: int) -> bytes:
        return (b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row>'
                + b"<c/>" * cells + b"</row></sheetData></worksheet>")

    assert ooxml._sheet_blocks(sheet(ooxml._WHOLE_TAGS - 10)) is not None
    assert ooxml._sheet_blocks(sheet(ooxml._WHOLE_TAGS + 10)) is None


def test_header_footer_codes() -> None:
    assert split_header_footer('&L&"Arial,Bold"&14机密★&C&D&RA&&B') == ["机密★", "A&B"]
    assert split_header_footer("&C秘密") == ["秘密"]


# ------------------------------------------------------------------ PowerPoint

def test_pptx_slide_title_and_notes() -> None:
    data = pptx(_sp(apara("机密★2048年5月20日"), "title") + _sp(apara("正文", "内容")),
                notes_shapes=_sp(apara("秘密★16年"), "body"))
    segs = segments(run(EX, data))
    got = [(s.member, s.role, s.text, s.index) for s in segs]
    assert ("slide1", "title", "机密★2048年5月20日", 0) in got
    assert ("slide1", "body", "正文内容", 1) in got
    assert ("slide1 notes", "note", "秘密★16年", 0) in got


# ------------------------------------------------------------------ hostile

def test_billion_laughs_docx_is_instant_and_not_expanded() -> None:
    lol = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    doc = (f'<?xml version="1.0"?><!DOCTYPE lolz [{lol}]><w:document xmlns:w="http://schemas.openxmlformats.org/'
           f'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p>'
           f"<w:p><w:r><w:t>机密★3年</w:t></w:r></w:p></w:body></w:document>")
    data = make_zip({"[Content_Types].xml": "<Types/>", "word/document.xml": doc})
    t = time.perf_counter()
    items = run(EX, data)
    assert time.perf_counter() - t < 1.0
    assert all("lol" not in s for s in texts(items))
    assert "机密★3年" in texts(items)
    assert any(e.error is ErrorCode.UNSUPPORTED for e in errors(items))


def test_parse_xml_never_expands_external_entities(tmp_path: pytest.TempPathFactory) -> None:
    doc = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    root, err = parse_xml(doc)
    assert err is not None
    assert root is None or "root:" not in "".join(root.itertext())


def test_zip_bomb_member_is_reported_not_inflated() -> None:
    zeros = b"\0" * (8 * 1024 * 1024)
    data = make_zip({"[Content_Types].xml": "<Types/>", "word/document.xml": zeros})
    lim = Limits(max_member_size=4 * 1024 * 1024)
    items = run(EX, data, ctx(limits=lim))
    assert [e.error for e in errors(items)] == [ErrorCode.BOMB]


def test_ratio_limit() -> None:
    zeros = b"<a>" + b" " * (4 * 1024 * 1024) + b"</a>"
    data = make_zip({"[Content_Types].xml": "<Types/>", "word/document.xml": zeros})
    items = run(EX, data, ctx(limits=Limits(max_ratio=50)))
    assert ErrorCode.BOMB in [e.error for e in errors(items)]


def test_total_budget_shared() -> None:
    big = "<w:p/>" * 300_000
    data = docx(big)
    items = run(EX, data, ctx(limits=Limits(max_total_size=100_000)))
    assert ErrorCode.BOMB in [e.error for e in errors(items)]


def test_truncated_and_garbage_are_corrupt_not_exceptions() -> None:
    data = docx(p("机密★1年"))
    for bad in (data[: len(data) // 2], data[:-30], b"PK\x03\x04" + b"\xff" * 100, b""):
        items = run(EX, bad)
        assert errors(items)[0].error is ErrorCode.CORRUPT


def test_truncated_zip_members_salvaged_from_local_headers() -> None:
    # Central directory gone (half a download): the document part survives and is still read.
    data = docx(p("机密★1年") + p("正文" * 2000), parts={"word/zz.bin": "x" * 5000})
    cut = data[: data.index(b"word/zz.bin")]
    items = run(EX, cut)
    assert errors(items)[0].error is ErrorCode.CORRUPT
    assert "recovered" in errors(items)[0].detail
    assert texts(items)[0] == "机密★1年"


def test_malformed_document_xml_reports_corrupt_and_keeps_what_it_can() -> None:
    doc = '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>' + p("机密★1年") + "<w:p>"
    items = run(EX, make_zip({"[Content_Types].xml": "<Types/>", "word/document.xml": doc}))
    assert ErrorCode.CORRUPT in [e.error for e in errors(items)]
    assert "机密★1年" in texts(items)


def test_encrypted_zip_entry() -> None:
    data = docx(p("机密"))
    data = make_zip({"[Content_Types].xml": "<Types/>", "word/document.xml": "x"}, encrypted=("word/document.xml",))
    items = run(EX, data)
    assert [e.error for e in errors(items)] == [ErrorCode.ENCRYPTED]


# ------------------------------------------------------------------ corpus

@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus not present")
@pytest.mark.parametrize(("path", "text", "role", "member"), [
    ("P-docx/p-docx-0045.docx", "机密★11年", "body", "word/document.xml"),
    ("P-docx/p-docx-0037.docx", "机密★7年", "header", "word/header1.xml"),
    ("P-docx/p-docx-0043.docx", "秘密★15年", "textbox", "word/document.xml"),
    ("P-docx/p-docx-0047.docx", "秘密", "property", "docProps/custom.xml"),
    ("P-xlsx/p-xlsx-0051.xlsx", "秘密★17年", "header", "汇总!header"),
    ("P-pptx/p-pptx-0055.pptx", "秘密★16年", "note", "slide1 notes"),
])
def test_corpus_files(path: str, text: str, role: str, member: str) -> None:
    items = run(EX, (CORPUS / path).read_bytes())
    assert not errors(items)
    assert any(s.text == text and s.role == role and s.member == member for s in segments(items))


def test_image_only_document_hands_its_images_over_for_ocr() -> None:
    scan = '<w:p><w:r><w:drawing/></w:r></w:p>'
    data = docx(scan, parts={"word/media/image1.png": "PNGDATA", "word/media/notes.emf": "x"})  # type: ignore[dict-item]
    members = [i for i in run(EX, data) if isinstance(i, Member)]
    assert members == [Member("word/media/image1.png", b"PNGDATA")]
    with_text = docx(p("这是一份有正文的普通文件，配图只是插图而已。" * 2), parts={"word/media/image1.png": "PNGDATA"})
    assert not [i for i in run(EX, with_text) if isinstance(i, Member)]


def test_vml_watermark_text_in_header() -> None:
    wm = ('<w:p><w:r><w:pict><v:shape xmlns:v="urn:schemas-microsoft-com:vml" type="#_x0000_t136">'
          '<v:textpath style="font-family:&quot;宋体&quot;" string="机密"/></v:shape></w:pict></w:r></w:p>')
    hdr = word_part("hdr", wm).replace("<w:hdr ", '<w:hdr xmlns:v="urn:schemas-microsoft-com:vml" ')
    segs = segments(run(EX, docx(p("正文"), parts={"word/header2.xml": hdr})))
    assert ("机密", "header", "word/header2.xml", True) in {(s.text, s.role, s.member, s.standalone) for s in segs}


def test_central_directory_lying_about_size_does_not_hide_the_text() -> None:
    """A part whose central-directory entry declares 10 bytes is inflated in full (real bytes counted)."""
    data = bytearray(docx(p("正文" * 500) + p("机密★1年")))
    cd = data.index(b"PK\x01\x02")
    while cd != -1:
        name_len = int.from_bytes(data[cd + 28:cd + 30], "little")
        if bytes(data[cd + 46:cd + 46 + name_len]) == b"word/document.xml":
            data[cd + 24:cd + 28] = (10).to_bytes(4, "little")  # uncompressed size in the directory
            break
        cd = data.find(b"PK\x01\x02", cd + 4)
    items = run(EX, bytes(data))
    assert "机密★1年" in texts(items)


# ------------------------------------------------------------------ parts found by relationship

DGM_NS = "http://schemas.openxmlformats.org/drawingml/2006/diagram"
C_NS = "http://schemas.openxmlformats.org/drawingml/2006/chart"


def test_word_story_parts_found_by_relationship_whatever_their_name() -> None:
    # Producers other than Word do not always call the parts header1.xml / footnotes.xml.
    parts = {
        "word/_rels/document.xml.rels": _rels([("rId7", f"{OD}/header", "hdr_first.xml"),
                                               ("rId8", f"{OD}/footnotes", "notes/fn.xml")]),
        "word/hdr_first.xml": word_part("hdr", p("机密★10年")),
        "word/notes/fn.xml": word_part("footnotes", f"<w:footnote>{p('秘密★')}</w:footnote>"),
        "word/footer1.xml": word_part("ftr", p("第1页")),  # by its usual name, no relationship
    }
    got = {(s.text, s.role, s.member) for s in segments(run(EX, docx(p("正文"), parts=parts)))}
    assert {("机密★10年", "header", "word/hdr_first.xml"), ("秘密★", "note", "word/notes/fn.xml"),
            ("第1页", "footer", "word/footer1.xml")} <= got


def _dml_text_body(text: str) -> str:
    return f"<a:bodyPr/><a:lstStyle/><a:p><a:r><a:rPr lang=\"zh-CN\"/><a:t>{text}</a:t></a:r></a:p>"


def smartart_data(text: str) -> str:
    # dgm:t is a DrawingML text body (bodyPr, lstStyle, a:p), not a text leaf.
    return (f'<?xml version="1.0"?><dgm:dataModel xmlns:dgm="{DGM_NS}" xmlns:a="{A_NS}"><dgm:ptLst>'
            f'<dgm:pt modelId="1"><dgm:prSet phldrT="[文本]"/><dgm:spPr/><dgm:t>{_dml_text_body(text)}</dgm:t></dgm:pt>'
            "</dgm:ptLst></dgm:dataModel>")


def chart_part(title: str) -> str:
    return (f'<?xml version="1.0"?><c:chartSpace xmlns:c="{C_NS}" xmlns:a="{A_NS}"><c:chart><c:title><c:tx>'
            f"<c:rich>{_dml_text_body(title)}</c:rich></c:tx></c:title><c:plotArea><c:barChart><c:ser><c:cat>"
            "<c:strRef><c:strCache><c:pt idx=\"0\"><c:v>一季度</c:v></c:pt></c:strCache></c:strRef></c:cat>"
            "</c:ser></c:barChart></c:plotArea></c:chart></c:chartSpace>")


def test_smartart_and_chart_titles_in_word_excel_powerpoint() -> None:
    word = docx(p("正文"), parts={"word/diagrams/data1.xml": smartart_data("绝密★5年"),
                                  "word/charts/chart1.xml": chart_part("秘密★6个月")})
    got = {(s.text, s.role, s.member) for s in segments(run(EX, word))}
    assert ("绝密★5年", "textbox", "word/diagrams/data1.xml") in got
    assert ("秘密★6个月", "textbox", "word/charts/chart1.xml") in got
    book = xlsx('<row r="1"><c r="A1" t="s"><v>0</v></c></row>', shared=["数据"],
                parts={"xl/charts/chart1.xml": chart_part("机密★长期")})
    assert ("机密★长期", "textbox") in {(s.text, s.role) for s in segments(run(EX, book))}
    deck = pptx(_sp(apara("汇报"), "title"), parts={"ppt/diagrams/data1.xml": smartart_data("机密★2年")})
    assert ("机密★2年", "textbox") in {(s.text, s.role) for s in segments(run(EX, deck))}


def test_excel_threaded_comments() -> None:
    tc_ns = "http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments"
    parts = {
        "xl/worksheets/_rels/sheet1.xml.rels": _rels([(
            "rId1", "http://schemas.microsoft.com/office/2017/10/relationships/threadedComment",
            "../threadedComments/threadedComment1.xml")]),
        "xl/threadedComments/threadedComment1.xml": (
            f'<?xml version="1.0"?><ThreadedComments xmlns="{tc_ns}"><threadedComment ref="B2" id="{{1}}">'
            f'<text>机密★5年</text></threadedComment><threadedComment ref="B2" id="{{2}}" parentId="{{1}}">'
            "<text>已阅</text></threadedComment></ThreadedComments>"),
    }
    data = xlsx('<row r="1"><c r="A1" t="s"><v>0</v></c></row>', shared=["数据"], parts=parts)
    got = [(s.text, s.role, s.member) for s in segments(run(EX, data)) if s.role == "comment"]
    assert got == [("机密★5年", "comment", "汇总!B2"), ("已阅", "comment", "汇总!B2")]


def test_pptx_used_layout_free_shapes_and_modern_comments() -> None:
    ns = f'xmlns:p="{P_NS}" xmlns:a="{A_NS}"'
    layout = (f'<?xml version="1.0"?><p:sldLayout {ns}><p:cSld><p:spTree>'
              + _sp(apara("单击此处编辑母版标题样式"), "title") + _sp(apara("秘密★10年"))
              + "</p:spTree></p:cSld></p:sldLayout>")
    unused = (f'<?xml version="1.0"?><p:sldLayout {ns}><p:cSld><p:spTree>' + _sp(apara("绝密"))
              + "</p:spTree></p:cSld></p:sldLayout>")
    modern = ('<?xml version="1.0"?><p188:cmLst xmlns:p188="http://schemas.microsoft.com/office/powerpoint/2018/8/main" '
              f'xmlns:a="{A_NS}"><p188:cm id="{{1}}" authorId="{{2}}"><p188:txBody>{_dml_text_body("机密★3年")}'
              "</p188:txBody></p188:cm></p188:cmLst>")
    data = pptx(_sp(apara("汇报"), "title"),
                parts={"ppt/slideLayouts/slideLayout1.xml": layout, "ppt/slideLayouts/slideLayout2.xml": unused,
                       "ppt/comments/modernComment_100_1.xml": modern},
                slide_rels=[("rId2", f"{OD}/slideLayout", "../slideLayouts/slideLayout1.xml"),
                            ("rId3", "http://schemas.microsoft.com/office/2018/10/relationships/comments",
                             "../comments/modernComment_100_1.xml")])
    got = {(s.text, s.role, s.member) for s in segments(run(EX, data))}
    assert ("秘密★10年", "body", "ppt/slideLayouts/slideLayout1.xml") in got
    assert ("机密★3年", "comment", "slide1 comments") in got
    all_text = {t for t, _, _ in got}
    assert "单击此处编辑母版标题样式" not in all_text  # a layout's placeholder prompt
    assert "绝密" not in all_text  # a layout no slide uses


def test_shared_string_named_by_many_cells_is_charged_to_the_budget() -> None:
    # Fuzzing shape: one 1 MB shared string named by 40,000 cells (4.5 KB zipped) was 40 GB of
    # cell text (9 s just to strip it); each naming now counts against the file's budget.
    rows = '<row r="1">' + "".join(f'<c r="A{i}" t="s"><v>0</v></c>' for i in range(1, 201)) + "</row>"
    big = "机密★" + "x" * 10_000
    items = run(EX, xlsx(rows, shared=[big]), ctx(limits=Limits(max_total_size=1 << 20)))
    assert [e.error for e in errors(items)] == [ErrorCode.BOMB]
    assert 0 < len(segments(items)) < 200
    small = run(EX, xlsx(rows, shared=["机密★"]), ctx(limits=Limits(max_total_size=1 << 20)))
    assert not errors(small) and len(segments(small)) == 200


def test_shared_strings_read_once_cost_no_more_than_their_part() -> None:
    # Only readings beyond the shared-string part's own (already charged) size are charged, as
    # ole's `_Reads` does: a workbook naming each of its strings once reads within a budget
    # that its parts fit (charging every reading counted its 80 KB of strings twice: `bomb`)...
    strings = [f"机密★{k}年" + "x" * 2000 for k in range(40)]
    rows = "".join(f'<row r="{k + 1}"><c r="A{k + 1}" t="s"><v>{k}</v></c></row>' for k in range(40))
    data = xlsx(rows, shared=strings)
    items = run(EX, data, ctx(limits=Limits(max_total_size=120_000)))
    assert not errors(items)
    assert [s.text for s in segments(items) if s.role == "cell"] == strings
    # ... while one large string named by many cells still spends the budget.
    rows = '<row r="1">' + "".join(f'<c r="A{i}" t="s"><v>0</v></c>' for i in range(1, 201)) + "</row>"
    items = run(EX, xlsx(rows, shared=strings[:1]), ctx(limits=Limits(max_total_size=120_000)))
    assert [e.error for e in errors(items)] == [ErrorCode.BOMB]
    assert 0 < len(segments(items)) < 200


def test_nested_excel_comments_read_once() -> None:
    # A comment (threaded comment) nested in another was read again at every level: 200 levels
    # (2.4-2.8 KB zipped) took 8 s and over a minute; kept under tests/fuzz/regressions/ooxml/.
    tc_ns = "http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments"
    legacy = '<comment ref="A1"><text><t>机密</t></text><comment ref="A2"><text><t>★1年</t></text></comment></comment>'
    threaded = ('<threadedComment ref="B1"><text>秘密</text><threadedComment ref="B2"><text>★2年</text>'
                "</threadedComment></threadedComment>")
    parts = {
        "xl/worksheets/_rels/sheet1.xml.rels": _rels([
            ("rId1", f"{OD}/comments", "../comments1.xml"),
            ("rId2", "http://schemas.microsoft.com/office/2017/10/relationships/threadedComment", "../tc1.xml")]),
        "xl/comments1.xml": ('<comments xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                             f"<commentList>{legacy}</commentList></comments>"),
        "xl/tc1.xml": f'<ThreadedComments xmlns="{tc_ns}">{threaded}</ThreadedComments>',
    }
    data = xlsx('<row r="1"><c r="A1" t="str"><v>x</v></c></row>', parts=parts)
    got = [(s.member, s.text) for s in segments(run(EX, data)) if s.role == "comment"]
    assert got == [("汇总!A1", "机密★1年"), ("汇总!B1", "秘密"), ("汇总!B1", "★2年")]


def test_part_listed_many_times_is_read_once() -> None:
    # A slide (worksheet, notes part) named 30,000 times, a few KB zipped, was read 30,000 times,
    # each read charged only its few bytes (3 s; 230,000 names fit a 39 KB fuzz input).
    import io
    import zipfile

    def patched(data: bytes, name: str, old: bytes, new: bytes) -> bytes:
        zf = zipfile.ZipFile(io.BytesIO(data))
        parts: dict[str, bytes | str] = {n: zf.read(n) for n in zf.namelist()}
        part = parts[name]
        assert isinstance(part, bytes) and old in part
        parts[name] = part.replace(old, new)
        return make_zip(parts)

    sid = b'<p:sldId id="256" r:id="rId2"/>'
    ppt = patched(pptx(_sp(apara("机密★"))), "ppt/presentation.xml", sid, sid * 3)
    assert [(s.member, s.text) for s in segments(run(EX, ppt))] == [("slide1", "机密★")]
    sheet = b'<sheet name="'
    xl = patched(xlsx('<row r="1"><c r="A1" t="str"><v>秘密</v></c></row>'), "xl/workbook.xml", sheet,
                 b'<sheet name="b" sheetId="2" r:id="rId1"/><sheet name="c" sheetId="3" r:id="rId1"/>' + sheet)
    assert [(s.member, s.text) for s in segments(run(EX, xl))] == [("b!A1", "秘密")]
    notes = pptx(_sp(apara("正文")), _sp(apara("备注")))
    rels = "ppt/slides/_rels/slide1.xml.rels"
    rel = zipfile.ZipFile(io.BytesIO(notes)).read(rels)
    one = rel[rel.index(b"<Relationship "):rel.index(b"</Relationships>")]
    many = b"".join(one.replace(b'Id="rId1"', f'Id="n{i}"'.encode()) for i in range(3))
    notes = patched(notes, rels, one, many)
    assert [s.text for s in segments(run(EX, notes)) if s.role == "note"] == ["备注"]


def test_symbol_beyond_unicode_and_long_digit_names_do_not_lose_the_document() -> None:
    # `w:sym w:char="F110000"` made chr() raise and a member name with 5,000 digits made int()
    # raise (Python caps int() at 4,300 digits): either made the whole package an error record.
    body = p("机密★") + '<w:p><w:r><w:sym w:font="Wingdings" w:char="F110000"/><w:t>正文</w:t></w:r></w:p>'
    items = run(EX, docx(body, parts={"word/header" + "1" * 5000 + ".xml": word_part("hdr", p("页眉"))}))
    assert not errors(items)
    assert texts(items) == ["机密★", "正文", "页眉"]


def test_undeclared_prefix_and_unsupported_zip_version_are_no_exceptions() -> None:
    # Found replaying the fuzzers' corpora through the extractor without the engine's net: an
    # element with a prefix the part never declares (kept in the tag by the recovering parser)
    # made etree.QName raise, and a central directory asking for zip version 14.8 made zipfile
    # raise NotImplementedError; either made the whole file an error record, none of it read.
    data = docx(p("机密★"), core={"dc:title": "通知", "xx:keywords": "秘密"})
    items = run(EX, data)
    assert "机密★" in texts(items)
    assert {(s.key, s.text) for s in segments(items) if s.role == "property"} >= {("title", "通知"), ("keywords", "秘密")}
    raw = bytearray(data)
    cd = raw.find(b"PK\x01\x02")
    raw[cd + 6:cd + 8] = (148).to_bytes(2, "little")  # version needed to extract: 14.8
    items = run(EX, bytes(raw))
    assert ErrorCode.CORRUPT in [e.error for e in errors(items)]
    assert "机密★" in texts(items)  # read from the local headers
