"""Marking forms real documents carry (issue 15): tick-box fields, organisation labels, telegram
lines, codewords, OCR-damaged banners, portion marks, labels that disagree with the page, and
marking-quality findings — each with negatives from real prose that uses the same words."""
from __future__ import annotations

import datetime
import io
import zipfile

import pytest

from scanner.classify import classify
from scanner.engine import Scanner
from scanner.model import Kind, Level, Segment
from tests.conftest import pdf_from_objects


def _scan(text: str, name: str = "doc.txt") -> tuple[str | None, list]:
    findings, errors, _ = Scanner().scan_bytes(text.encode("utf-8"), name)
    assert not errors
    marks = [f for f in findings if f.kind is Kind.MARKING and not f.declassified and not f.superseded]
    best = max((f.level for f in marks if f.level), key=lambda lv: lv.rank, default=None)
    return (best.value if best else None), findings


# -- 1. tick-box fields ------------------------------------------------------------------------

@pytest.mark.parametrize("line,level", [
    ("密级：□绝密 □机密 ■秘密", "confidential"),
    ("密级：☐绝密 ☑机密 ☐秘密", "secret"),
    ("文件密级：[ ]绝密 [√]机密 [ ]秘密  保密期限：10年", "secret"),
    ("保 密 等 级： | ■秘密  □机密  □绝密 |", "confidential"),
    ("☑内部 ☐公开", "internal"),
    ("√秘密", "confidential"),
    ("[√]机密", "secret"),
    ("■内部资料", "internal"),
    ("密级：（x）绝密 （ ）机密", "top_secret"),
    ("密级：机密✔ 秘密□", "secret"),
    ("☑秘密★5年", "confidential"),
    ("密级：■秘密（5年）", "confidential"),
])
def test_ticked_choice_is_the_level(line: str, level: str) -> None:
    got, findings = _scan(f"某某项目技术方案\n{line}\n编制：张三\n")
    assert got == level
    mark = next(f for f in findings if f.kind is Kind.MARKING)
    assert mark.rule == "cn.marking.checkbox"


def test_row_period_is_read_with_the_choice() -> None:
    _, findings = _scan("密级：□绝密 ■机密 □秘密  保密期限：5年\n")
    mark = next(f for f in findings if f.kind is Kind.MARKING)
    assert mark.period == {"years": 5}


@pytest.mark.parametrize("text", [
    "密级：□绝密 □机密 □秘密\n",  # a blank form
    "文件密级：☐绝密 ☐机密 ☐秘密 ☐内部\n",
    "☑公开 ☐内部\n",  # ticked public
    "密级：□秘密 ■公开\n",
    "□绝密\n□机密\n□秘密\n",  # options on lines of their own, none ticked
    # a form's instructions listing the levels and how to tick them
    "填表说明：密级栏请在□绝密、□机密、□秘密中选择，并在所选项前打√。\n",
    "请在□内打√，不涉密的选“公开”。\n",
    # a bulleted list of levels in a handout (bullets that look like ticks)
    "国家秘密的密级分为：\n● 绝密\n● 机密\n● 秘密\n",
    "标志示例：\n● 绝密★30年\n● 机密★20年\n● 秘密★10年\n",  # bulleted example marks in a handout
])
def test_blank_forms_public_ticks_and_lists_are_not_markings(text: str) -> None:
    got, findings = _scan(text)
    assert got is None, findings


def test_blank_form_is_not_counted_as_mentions() -> None:
    _, findings = _scan("密级：□绝密 □机密 □秘密\n")
    assert findings == []


def test_options_on_separate_lines_one_ticked() -> None:
    assert _scan("项目名称：某某\n□绝密\n■机密\n□秘密\n")[0] == "secret"


# -- 2. organisation labels ----------------------------------------------------------------------

@pytest.mark.parametrize("line,category", [
    ("文件密级：仅限瑞芯微内部使用", "internal"),
    ("密级：内部公开", "internal"),
    ("内部资料 注意保存", "internal"),
    ("工作秘密", "work_secret"),
    ("商密★3年", "commercial_secret"),
    ("核心商密★10年", "commercial_secret"),
    ("普通商密", "commercial_secret"),
    ("商业秘密★5年", "commercial_secret"),
])
def test_own_labels_are_internal_with_their_category(line: str, category: str) -> None:
    got, findings = _scan(f"{line}\n关于某某工作的通知\n各单位：\n")
    assert got == "internal"
    mark = next(f for f in findings if f.kind is Kind.MARKING)
    assert mark.level is Level.INTERNAL and mark.category == category


@pytest.mark.parametrize("text", [
    "第九条 本法所称商业秘密，是指不为公众所知悉、具有商业价值的技术信息。\n",
    "第三章\n商业秘密\n第十条 经营者不得侵犯商业秘密。\n",  # a law's heading
    "各单位要加强工作秘密管理，防止泄露。\n",
])
def test_law_prose_about_own_labels_is_no_marking(text: str) -> None:
    assert _scan(text)[0] is None


# -- 3. telegram lines --------------------------------------------------------------------------

@pytest.mark.parametrize("line,level", [
    ("CONFIDENTIAL CAIRO 001234", "confidential"),
    ("SECRET SECTION 02 OF 05 LIMA 000417", "secret"),
    ("S E C R E T STATE 012345", "secret"),
    ("C O N F I D E N T I A L  BRASILIA 000093", "confidential"),
    ("SECRET 252254 APR 69 CITE BUENOS AIRES 2835", "secret"),
    ("UNCLAS SECTION 01 OF 02 TOKYO 000123 SENSITIVE", "internal"),
    ("LIMITED OFFICIAL USE STATE 187673", "internal"),
])
def test_telegram_classification_lines(line: str, level: str) -> None:
    text = f"VZCZCXYZ0000\nRR RUEHWEB\n\nDE RUEHEG #1234/01 0281409\n{line}\n\nE.O. 12958: DECL: 01/28/2018\nTAGS: PREL\n"
    got, findings = _scan(text)
    assert got == level, findings


def test_unclas_with_sensitive_on_a_later_line_is_internal() -> None:
    text = "UNCLAS SECTION 01 OF 06 TBILISI 002290\n\nSIPDIS\n\nSENSITIVE\nSIPDIS\n\nE.O. 12958: N/A\n"
    assert _scan(text)[0] == "internal"


@pytest.mark.parametrize("text", [
    "UNCLAS SECTION 01 OF 02 TOKYO 000123\n\nSIPDIS\n\nE.O. 12958: N/A\n",  # unclassified: public
    "The secret section of the report was never published.\n",
    "SECRET SERVICE AGENTS ARRIVE IN CAIRO\n",  # a headline
    "SECRET SERVICE 2023 ANNUAL REPORT\n",
    "CONFIDENTIAL INFORMATION\nDo not share your password.\n",
    "SECRETS OF THE NILE\n",
    'The cable, marked "SECRET//NOFORN", was leaked in 2010, the newspaper said.\n',
])
def test_telegram_and_banner_negatives(text: str) -> None:
    assert _scan(text)[0] is None


# -- 4. codewords and damaged banners -------------------------------------------------------------

@pytest.mark.parametrize("line,level", [
    ("TOP SECRET UMBRA", "top_secret"), ("TOP SECRET RUFF", "top_secret"), ("SECRET NOFORN", "secret"),
    ("SECRET/NOFORN", "secret"), ("UK TOP SECRET STRAP1", "top_secret"), ("# TOP SECRET STRAP 2", "top_secret"),
    ("CONFIDENTIAL NO FOREIGN DISSEM", "confidential"), ("REPORT CLASS SECRET NOFORN", "secret"),
    ("TOP SECRET – EYES ONLY", "top_secret"), ("CONFIDENTIAL – NOFORN", "confidential"),
    ("T O P  S E C R E T", "top_secret"), ("UNCLASSIFIED//FOR OFFICIAL USE ONLY", "internal"),
    ("SENSITIVE BUT UNCLASSIFIED", "internal"), ("FOR OFFICIAL USE ONLY", "internal"),
])
def test_codeword_banners(line: str, level: str) -> None:
    assert _scan(f"{line}\n\nSubject: weekly summary\nThe meeting was held on Monday.\n")[0] == level


@pytest.mark.parametrize("line,level,read_as", [
    ("TOR SECRET", "top_secret", "TOP SECRET"), ("JOP SECRET", "top_secret", "TOP SECRET"),
    ("T0P SECRET", "top_secret", "TOP SECRET"), ("TORSECRET EYES ONLY", "top_secret", "TOP SECRET"),
    ("SECRFT", "secret", "SECRET"), ("SECRE T NO FOREIGN DISSEM", "secret", "SECRET"),
    ("SEC RE T 41922432 CITE MEXICO CITY 3201", "secret", "SECRET"), ("C0NFIDENTIAL", "confidential", "CONFIDENTIAL"),
    ("CONF L DENTAL - NOFORN/CONTINUED CONTROL -", "confidential", "CONFIDENTIAL"),
    # OCR quotes before and inside the caveat; a markdown quote before a torn cable line
    ('SECRE T "NO FOREIGN DISSEM/BACKGROUND USE ONLY/NO pra secmp', "secret", "SECRET"),
    ("s ECRET NO ‘FOREIGN DISSEM/BACKGROUND USE’ QNLY/NO,", "secret", "SECRET"),
    ("> SE CRE T 232226 MOV G2-CITE GUATEMALA CITY 9739", "secret", "SECRET"),
])
def test_ocr_damaged_banners_have_lower_confidence_and_say_what_they_were_read_as(line: str, level: str,
                                                                                  read_as: str) -> None:
    got, findings = _scan(f"{line}\n\nMEMORANDUM FOR THE RECORD\nSubject: travel of the director\n")
    assert got == level
    mark = next(f for f in findings if f.kind is Kind.MARKING)
    assert mark.read_as == read_as and mark.confidence < 0.9
    assert mark.text.replace(" ", "").startswith(line.lstrip("> ").replace(" ", "")[:4])  # the form as found


@pytest.mark.parametrize("line", ["SECRETS", "SECRETARY", "SECRET SANTA", "THE SECRET", "TOY STORE", "SECURE",
                                  "CONFIDENTLY", "CONFIDENCE", "CONFIDENTIALITY", "CONFIDANT", "CONFIDENTIALS"])
def test_words_near_banners_are_not_damaged_banners(line: str) -> None:
    assert _scan(f"{line}\n\nsome text\n")[0] is None


def test_quoted_banner_line_is_a_banner() -> None:
    got, findings = _scan("“SECRET RYBAT\n\nDISPATCH\nSubject: operational report\n")
    assert got == "secret"
    assert next(f for f in findings if f.kind is Kind.MARKING).text == "SECRET RYBAT"


@pytest.mark.parametrize("text", [
    "“SECRET” was the word he used.\n", "> “Secret no more,” she said.\n", "“SECRETS OF THE DEEP”\n",
    "> SECRET SANTA this year\n", "“Top secret,” the headline said, “no foreign dissem.”\n",
    "'SECRET' \"NO FOREIGN\" is a phrase from old cables, not a marking of this page.\n",
])
def test_quoted_words_in_prose_are_not_banners(text: str) -> None:
    assert _scan(text + "More text follows here.\n")[0] is None


# -- 5. portion marks ------------------------------------------------------------------------------

def test_portion_marks_set_the_level_of_the_highest_and_say_so() -> None:
    text = ("(U) Overview of the programme.\n\n(C) The partner asked for more data.\n\n"
            "(S//NF) The source reported the plan.\n\n1. (U) Next steps follow.\n")
    got, findings = _scan(text)
    assert got == "secret"
    top = [f for f in findings if f.kind is Kind.MARKING and f.level is Level.SECRET]
    assert top and "highest of 2 portion marks" in (top[0].detail or "")
    assert all(f.text != "(U)" for f in findings)  # (U) is evidence, not a finding


def test_a_portion_with_caveats_stands_on_its_own() -> None:
    assert _scan("(TS//SI//NF) The programme collects the data.\n")[0] == "top_secret"


def test_fouo_portions_are_internal() -> None:
    assert _scan("(U//FOUO) Overtime rules.\n\n(U) Contacts.\n")[0] == "internal"


@pytest.mark.parametrize("text", [
    "(C) 2024 Example Corp. All rights reserved.\n",
    "(A) the Secretary shall report;\n(B) the report shall include;\n(C) The Director may waive;\n(S) The Board shall\n",
    "(S) The only portion-like line in the text.\n",
    "UNCLASSIFIED\n\nThe report follows.\n",
])
def test_portion_negatives(text: str) -> None:
    assert _scan(text)[0] is None


# -- 6. XHTML with a raw ampersand -------------------------------------------------------------------

def test_xhtml_with_raw_ampersand_is_read_not_corrupt() -> None:
    page = ('<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><body>'
            "<pre>C O N F I D E N T I A L  CAIRO 001234\n\nSUBJECT: R&D COOPERATION</pre></body></html>")
    findings, errors, _ = Scanner().scan_bytes(page.encode(), "cable.xhtml")
    assert not errors
    assert any(f.kind is Kind.MARKING and f.level is Level.CONFIDENTIAL for f in findings)


# -- 7. labels that disagree with the page, quality findings -----------------------------------------

def _docx(body: str, props: dict[str, str]) -> bytes:
    docx = pytest.importorskip("docx")
    d = docx.Document()
    for line in body.splitlines():
        d.add_paragraph(line)
    buf = io.BytesIO()
    d.save(buf)
    custom = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
              '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" '
              'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
              + "".join(f'<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="{i + 2}" name="{k}">'
                        f"<vt:lpwstr>{v}</vt:lpwstr></property>" for i, (k, v) in enumerate(props.items()))
              + "</Properties>")
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for item in src.infolist():
            z.writestr(item, src.read(item.filename))
        z.writestr("docProps/custom.xml", custom)
    return out.getvalue()


def _file_findings(data: bytes) -> list:
    findings, errors, _ = Scanner().scan_bytes(data, "x.docx")
    assert not errors
    return findings


def test_property_above_the_page_is_a_label_mismatch() -> None:
    f = _file_findings(_docx("秘密★5年\n关于某某工作的通知", {"密级": "机密"}))
    mm = [x for x in f if x.kind is Kind.LABEL_MISMATCH]
    assert len(mm) == 1 and mm[0].level is Level.SECRET and "机密" in mm[0].text


def test_public_label_on_a_top_secret_page_is_a_mismatch() -> None:
    f = _file_findings(_docx("绝密★30年\n某某方案", {"密级": "公开"}))
    labels = [x for x in f if x.kind is Kind.LABEL]
    assert labels and labels[0].level is None and labels[0].text == "公开"
    assert [x.level for x in f if x.kind is Kind.LABEL_MISMATCH] == [Level.TOP_SECRET]


def test_microsoft_sensitivity_label_is_reported_and_sets_internal() -> None:
    key = "MSIP_Label_3a2b1c0d-1111-2222-3333-444455556666_Name"
    f = _file_findings(_docx("Quarterly plan\nNothing classified here.", {key: "Confidential"}))
    lab = [x for x in f if x.rule == "label.msip"]
    assert lab and lab[0].level is Level.INTERNAL
    assert not [x for x in f if x.kind is Kind.LABEL_MISMATCH]  # no visible marking to disagree with


def test_agreeing_label_is_no_mismatch() -> None:
    f = _file_findings(_docx("机密★10年\n某某方案", {"密级": "机密"}))
    assert not [x for x in f if x.kind is Kind.LABEL_MISMATCH]


def test_declassification_date_passed_is_a_quality_finding() -> None:
    past = (datetime.date.today() - datetime.timedelta(days=400)).strftime("%Y年%m月%d日")
    future = (datetime.date.today() + datetime.timedelta(days=400)).strftime("%Y年%m月%d日")
    q = [f for f in classify([Segment(f"机密★{past}\n关于某事的通知\n")]) if f.kind is Kind.QUALITY]
    assert [f.rule for f in q] == ["cn.quality.expired"]
    assert not [f for f in classify([Segment(f"机密★{future}\n关于某事的通知\n")]) if f.kind is Kind.QUALITY]


def test_paragraph_above_document_level_and_star_without_period() -> None:
    text = "秘密★\n关于某事的通知\n\n（机密）本段所述为项目核心参数，不得外传，各单位须严格遵守相关规定执行。\n"
    rules = {f.rule for f in classify([Segment(text)]) if f.kind is Kind.QUALITY}
    assert rules == {"cn.quality.paragraph_above", "cn.quality.no_period"}


def test_word_wingdings_tick_boxes_are_read() -> None:
    """Word writes a form's boxes as `w:sym` glyphs of Wingdings 2 (R = ☑, £ = ☐)."""
    from lxml import etree

    from scanner.extractors.ooxml import _sym_char

    W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    ticked = etree.fromstring(f'<w:sym xmlns:w="{W}" w:font="Wingdings 2" w:char="F052"/>')
    empty = etree.fromstring(f'<w:sym xmlns:w="{W}" w:font="Wingdings 2" w:char="F0A3"/>')
    line = f"密级：{_sym_char(empty)}绝密 {_sym_char(ticked)}机密"
    assert _scan(line + "\n")[0] == "secret"


def _pdf_with_xmp(page_text: str, xmp_props: dict[str, str]) -> bytes:
    """A one-page PDF (Helvetica text) whose catalog carries an uncompressed XMP packet, as Office
    writes one when it exports a labelled document."""
    attrs = " ".join(f'pdfx:{k}="{v}"' for k, v in xmp_props.items())
    xmp = ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
           '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
           f'xmlns:pdfx="http://ns.adobe.com/pdfx/1.3/" {attrs}/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()
    content = f"BT /F1 24 Tf 72 720 Td ({page_text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R /Metadata 6 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            b"<< /Type /Metadata /Subtype /XML /Length %d >>\nstream\n" % len(xmp) + xmp + b"\nendstream"]
    return pdf_from_objects(objs, b"1.7")


def test_pdf_xmp_labels_are_read_and_compared_with_the_page() -> None:
    key = "MSIP_Label_3a2b1c0d-1111-2222-3333-444455556666_Name"
    findings, errors, mime = Scanner().scan_bytes(_pdf_with_xmp("SECRET", {key: "Public"}), "x.pdf")
    assert mime == "application/pdf" and not errors
    assert any(f.kind is Kind.MARKING and f.level is Level.SECRET for f in findings)
    labels = [f for f in findings if f.kind is Kind.LABEL and f.rule == "label.msip"]
    assert labels and labels[0].text == "Public" and "XMP" in (labels[0].member or "")
    assert [f.level for f in findings if f.kind is Kind.LABEL_MISMATCH] == [Level.SECRET]


def test_ofd_custom_tag_level_above_the_page_is_a_mismatch() -> None:
    from tests.scanner.extractors._docs_fixtures import ofd, text_object

    tag = ('<?xml version="1.0" encoding="UTF-8"?><gw:GongWen xmlns:gw="urn:gongwen">'
           '<gw:密级和保密期限>机密★10年</gw:密级和保密期限><gw:标题>关于某事的通知</gw:标题></gw:GongWen>')
    data = ofd([text_object(20, 20, "秘密★5年") + text_object(20, 40, "关于某事的通知", oid=2)], tags=tag)
    findings, errors, _ = Scanner().scan_bytes(data, "x.ofd")
    assert not errors
    props = [f for f in findings if f.rule == "cn.marking.property"]
    assert props and props[0].level is Level.SECRET and "Tag_GW.xml" in (props[0].member or "")
    mm = [f for f in findings if f.kind is Kind.LABEL_MISMATCH]
    assert len(mm) == 1 and mm[0].level is Level.SECRET
