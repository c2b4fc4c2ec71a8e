"""PDF extractor: positioned lines (header/body/footer), ToUnicode CJK text, metadata,
attachments, image-only pages, encryption and corrupt input."""
from __future__ import annotations

import io
import random

import pytest
from _bin_fixtures import (
    corpus_file,
    ctx,
    errors,
    hostile_file,
    members,
    minimal_pdf,
    run,
    segments,
)

from scanner.extractors.pdf import PdfExtractor
from scanner.model import ErrorCode, Member, ScanError, Segment

W, H = 595.0, 842.0


def page_lines(items: list, page: int = 1) -> list[Segment]:
    segs = [s for s in segments(items) if s.member == f"page {page}"]
    return sorted(segs, key=lambda s: s.index)


def reportlab_pdf(pages: list[list[tuple[float, float, str]]], *, encrypt: object = None,
                  title: str | None = None, image_pages: tuple[int, ...] = ()) -> bytes:
    pytest.importorskip("reportlab")
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(W, H), encrypt=encrypt)
    if title:
        c.setTitle(title)
    for n, lines in enumerate(pages, 1):
        c.setFont("STSong-Light", 12)
        for x, y, text in lines:
            c.drawString(x, y, text)
        if n in image_pages:
            from PIL import Image
            from reportlab.lib.utils import ImageReader

            img = Image.new("L", (200, 280), 255)
            c.drawImage(ImageReader(img), 40, 40, W - 80, H - 80)
        c.showPage()
    c.save()
    return buf.getvalue()


# ------------------------------------------------------------------------------ text & layout

def test_tounicode_cjk_text_and_roles() -> None:
    # The header is drawn last in the content stream: order comes from position, not stream.
    data = minimal_pdf([[(60, 700, "关于开展专项工作的通知"), (60, 680, "各单位：现将有关事项通知如下。"),
                         (280, 20, "- 1 -"), (60, 815, "机密★10年")]])
    lines = page_lines(run(PdfExtractor(), data))
    assert [(s.text, s.role, s.index) for s in lines] == [
        ("机密★10年", "header", 0), ("关于开展专项工作的通知", "body", 1),
        ("各单位：现将有关事项通知如下。", "body", 2), ("- 1 -", "footer", 3)]
    assert all(s.standalone for s in lines)


def test_runs_on_one_line_are_joined() -> None:
    data = minimal_pdf([[(60, 700, "机密"), (84, 700, "★"), (96, 700, "10年"), (300, 700, "特急")]])
    [line] = page_lines(run(PdfExtractor(), data))
    assert line.text == "机密★10年 特急"


def test_line_breaks_drawn_as_text_are_spaces() -> None:
    # Some producers draw "\t\r\xa0" between words: only PDFium's own line breaks split lines.
    data = minimal_pdf([[(60, 700, "TOP\t\r\xa0SECRET//NOFORN"), (60, 600, "正文")]])
    assert [s.text for s in page_lines(run(PdfExtractor(), data))] == ["TOP SECRET//NOFORN", "正文"]


def test_pages_are_located() -> None:
    data = minimal_pdf([[(60, 700, "第一页")], [(60, 700, "第二页"), (60, 815, "秘密★5年")]])
    items = run(PdfExtractor(), data)
    assert [s.text for s in page_lines(items, 1)] == ["第一页"]
    assert [(s.text, s.role) for s in page_lines(items, 2)] == [("秘密★5年", "header"), ("第二页", "body")]


def test_rotated_page_header_follows_display() -> None:
    # /Rotate 90: the left edge of PDF space is the top of the displayed page.
    data = minimal_pdf([[(20, 400, "绝密★长期"), (300, 400, "正文内容")]], rotate=90)
    lines = page_lines(run(PdfExtractor(), data))
    assert [(s.text, s.role) for s in lines] == [("绝密★长期", "header"), ("正文内容", "body")]


def test_sub_member_location() -> None:
    from _bin_fixtures import ctx

    data = minimal_pdf([[(60, 700, "正文")]])
    items = run(PdfExtractor(), data, ctx(member="a.zip!b.pdf"))
    assert segments(items)[0].member == "a.zip!b.pdf!page 1"


def test_reportlab_cid_font_three_pages() -> None:
    pages = [[(60, H - 30, "机密★10年"), (60, 700, f"第{n}页正文，国家秘密的密级分为绝密、机密、秘密三级。"),
              (W / 2, 25, f"- {n} -")] for n in (1, 2, 3)]
    items = run(PdfExtractor(), reportlab_pdf(pages))
    for n in (1, 2, 3):
        lines = page_lines(items, n)
        assert (lines[0].text, lines[0].role) == ("机密★10年", "header")
        assert lines[-1].role == "footer" and lines[-1].text == f"- {n} -"


# --------------------------------------------------------------------------------- metadata

def test_metadata_and_custom_classification_property() -> None:
    data = minimal_pdf([[(60, 700, "正文")]], info={"Title": "关于工作的通知", "Subject": "秘密★5年",
                                                    "Keywords": "保密", "密级": "机密", "Author": "x"})
    props = {s.key: s for s in segments(run(PdfExtractor(), data)) if s.role == "property"}
    assert {k: s.text for k, s in props.items()} == {
        "Title": "关于工作的通知", "Subject": "秘密★5年", "Keywords": "保密", "密级": "机密"}
    assert all(s.standalone for s in props.values())


def test_xmp_with_undeclared_prefixes_is_read_with_the_pages() -> None:
    # An XMP packet using a prefix it never declares (broken producers write them): etree.QName
    # raised on the recovered `pdfx:密级`, after the metadata and before the pages, so the whole
    # PDF became an error record with none of its pages read.
    xmp = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description pdfx:Classification="秘密">'
           "<pdfx:密级>机密</pdfx:密级></rdf:Description></rdf:RDF></x:xmpmeta>")
    data = minimal_pdf([[(60, 700, "正文")]]) + b"\n%" + xmp.encode("utf-8") + b"\n"
    items = run(PdfExtractor(), data)
    assert "正文" in [s.text for s in segments(items)]
    assert {(s.key, s.text) for s in segments(items) if s.role == "property"} == {("Classification", "秘密"),
                                                                                  ("密级", "机密")}


def test_custom_classification_key_in_gbk() -> None:
    data = minimal_pdf([[(60, 700, "正文")]], info={"密级": "秘密"})
    utf8_name = b"/#E5#AF#86#E7#BA#A7"
    gbk_name = b"/#C3#DC#BC#B6"
    data = data.replace(utf8_name, gbk_name + b" " * (len(utf8_name) - len(gbk_name)))
    props = {s.key: s.text for s in segments(run(PdfExtractor(), data)) if s.role == "property"}
    assert props == {"密级": "秘密"}


def test_embedded_files_are_members() -> None:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(minimal_pdf([[(60, 700, "见附件")]]))
    att = pdf.new_attachment("附件.txt")
    att.set_data("机密★5年\n".encode())
    buf = io.BytesIO()
    pdf.save(buf)
    pdf.close()
    assert members(run(PdfExtractor(), buf.getvalue())) == [Member("附件.txt", "机密★5年\n".encode())]


def test_annotations_text_boxes_and_comments() -> None:
    import ctypes

    import pypdfium2 as pdfium
    import pypdfium2.raw as c

    pdf = pdfium.PdfDocument(minimal_pdf([[(60, 700, "正文")]]))
    page = pdf[0]
    for subtype, text in ((c.FPDF_ANNOT_FREETEXT, "机密★5年"), (c.FPDF_ANNOT_TEXT, "审阅意见：秘密"),
                          (c.FPDF_ANNOT_LINK, "not shown")):
        annot = c.FPDFPage_CreateAnnot(page, subtype)
        c.FPDFAnnot_SetRect(annot, c.FS_RECTF(100, 100, 200, 120))
        raw = (text + "\0").encode("utf-16-le")
        buf = ctypes.create_string_buffer(raw, len(raw))
        assert c.FPDFAnnot_SetStringValue(annot, b"Contents", ctypes.cast(buf, ctypes.POINTER(c.FPDF_WCHAR)))
        c.FPDFPage_CloseAnnot(annot)
    out = io.BytesIO()
    pdf.save(out)
    pdf.close()
    lines = page_lines(run(PdfExtractor(), out.getvalue()))
    assert [(s.role, s.text, s.index) for s in lines] == [
        ("body", "正文", 0), ("textbox", "机密★5年", 1), ("note", "审阅意见：秘密", 2)]


# ---------------------------------------------------------------------- unsupported & hostile

@pytest.fixture()
def ocr_off(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from scanner import ocr

    monkeypatch.setenv(ocr.ENV_MODE, "off")
    ocr.reset_env_settings()
    yield
    ocr.reset_env_settings()


def test_image_only_page_is_unsupported_with_ocr_off(ocr_off: None) -> None:
    data = reportlab_pdf([[(60, 700, "第一页有文字")], []], image_pages=(2,))
    items = run(PdfExtractor(), data)
    [err] = errors(items)
    assert err.error is ErrorCode.UNSUPPORTED and "image-only page 2" in err.detail
    assert err.member == "page 2"
    assert page_lines(items, 1)[0].text == "第一页有文字"


def test_blank_page_is_not_an_error() -> None:
    assert not errors(run(PdfExtractor(), minimal_pdf([[(60, 700, "正文")], []])))


def test_encrypted_with_empty_user_password_is_read() -> None:
    from reportlab.lib.pdfencrypt import StandardEncryption

    data = reportlab_pdf([[(60, 700, "机密★3年")]], encrypt=StandardEncryption("", "owner-secret"))
    assert b"/Encrypt" in data
    items = run(PdfExtractor(), data)
    assert not errors(items) and page_lines(items)[0].text == "机密★3年"


def test_password_protected_pdf_is_encrypted() -> None:
    from reportlab.lib.pdfencrypt import StandardEncryption

    data = reportlab_pdf([[(60, 700, "机密★3年")]], encrypt=StandardEncryption("user-pw", "owner-pw"))
    assert [e.error for e in errors(run(PdfExtractor(), data))] == [ErrorCode.ENCRYPTED]


def test_hostile_corrupt_pdf() -> None:
    items = run(PdfExtractor(), hostile_file("corrupt.pdf"))
    assert [e.error for e in errors(items)] == [ErrorCode.CORRUPT]


def test_not_a_pdf_is_corrupt() -> None:
    assert [e.error for e in errors(run(PdfExtractor(), b"%PDF-1.4\n garbage"))] == [ErrorCode.CORRUPT]


def test_damaged_pdf_never_raises() -> None:
    src = minimal_pdf([[(60, 815, "机密★10年"), (60, 700, "正文内容")]] * 2, info={"Title": "标题"})
    rnd = random.Random(11)
    for _ in range(150):
        buf = bytearray(src[: rnd.randint(1, len(src))] if rnd.random() < 0.4 else src)
        for _ in range(rnd.randint(1, 6)):
            buf[rnd.randrange(len(buf))] = rnd.randrange(256)
        for item in run(PdfExtractor(), bytes(buf)):
            assert isinstance(item, (Segment, Member, ScanError))


def _shared_page_tree(kids: int, levels: int) -> bytes:
    """A PDF whose page tree names one subtree `kids` times at each of `levels` levels:
    kids**levels pages of one page object, in about a kilobyte."""
    objs = {1: b"<< /Type /Catalog /Pages 2 0 R >>"}
    for lvl in range(levels):
        refs = b" ".join(b"%d 0 R" % (3 + lvl) for _ in range(kids))
        objs[2 + lvl] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, kids ** (levels - lvl))
    leaf = 2 + levels
    objs[leaf] = (b"<< /Type /Page /MediaBox [0 0 200 200] /Resources << /Font << /F1 %d 0 R >> >> "
                  b"/Contents %d 0 R >>" % (leaf + 1, leaf + 2))
    objs[leaf + 1] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    stream = b"BT /F1 12 Tf 10 100 Td (SECRET) Tj ET"
    objs[leaf + 2] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n in sorted(objs):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, objs[n])
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def test_page_tree_naming_one_page_many_times_is_a_bomb() -> None:
    # Fuzzing shape: 1.2 KB naming 100,000 pages took 15 s (1.3 KB: a million pages). Pages
    # beyond one per 64 bytes of file (at least 2,000) are not read, and that is said.
    items = run(PdfExtractor(), _shared_page_tree(10, 4))
    assert [e.error for e in errors(items)] == [ErrorCode.BOMB]
    assert "10000 pages" in errors(items)[0].detail
    pages = [s.member for s in segments(items) if s.text == "SECRET"]
    assert len(pages) == 2000 and pages[-1] == "page 2000"
    small = run(PdfExtractor(), _shared_page_tree(10, 3))  # 1,000 pages: all read
    assert not errors(small) and len([s for s in segments(small) if s.text == "SECRET"]) == 1000


def test_sniff() -> None:
    data = minimal_pdf([[(60, 700, "x")]])
    assert PdfExtractor.sniff(data, "application/pdf")
    assert PdfExtractor.sniff(b"junk\r\n" + data, "application/octet-stream")
    assert not PdfExtractor.sniff(b"plain text", "text/plain")


def test_three_page_pdfs_read_every_page() -> None:
    # Throughput is measured by bench/office_bench.py (`make bench-office`), not by a timed test
    # that fails on a busy machine; here the same documents must be read whole.
    doc = reportlab_pdf([[(60, H - 30, "机密★10年")] + [(60, 760 - 18 * i, "正文内容" * 8) for i in range(38)]
                         for _ in range(3)])
    items = list(PdfExtractor().extract(doc, ctx()))
    assert not errors(items)
    assert {s.member for s in segments(items) if s.role != "property"} == {"page 1", "page 2", "page 3"}
    assert any(s.text == "机密★10年" for s in page_lines(items, 1))


# ---------------------------------------------------------------------------------- corpus

@pytest.mark.corpus
@pytest.mark.parametrize("rel,text,role", [
    ("P-pdf/p-pdf-0057.pdf", "绝密★3年", "body"), ("P-pdf/p-pdf-0059.pdf", "机密★", "header"),
    ("P-pdf/p-pdf-0060.pdf", "秘密★5个月", "header"), ("P-disguise/p-disguise-0088.txt", "秘密★15年", "body")])
def test_corpus_marking_line(rel: str, text: str, role: str) -> None:
    items = run(PdfExtractor(), corpus_file(rel))
    assert any(s.text == text and s.role == role for s in segments(items))
    assert not errors(items)


@pytest.mark.corpus
def test_corpus_multipage() -> None:
    items = run(PdfExtractor(), corpus_file("P-pdf/p-pdf-0061.pdf"))
    assert {s.member for s in segments(items) if s.role != "property"} == {"page 1", "page 2", "page 3"}
    assert "机密★25年" in [s.text for s in page_lines(items, 1)]


@pytest.mark.corpus
def test_corpus_image_pdf_is_unsupported_with_ocr_off(ocr_off: None) -> None:
    items = run(PdfExtractor(), corpus_file("P-image/p-image-0108.pdf"))
    assert [e.error for e in errors(items)] == [ErrorCode.UNSUPPORTED]
    assert "OCR off" in errors(items)[0].detail


@pytest.mark.corpus
def test_corpus_image_pdf_is_read_by_ocr() -> None:
    from scanner import ocr

    if not ocr.available():
        pytest.skip("OCR engine not installed")
    items = run(PdfExtractor(), corpus_file("P-image/p-image-0108.pdf"))
    assert not errors(items)
    texts = [s.text.replace(" ", "") for s in segments(items) if s.member == "page 1"]
    assert any("绝密★2041年8月8日" in t for t in texts), texts


# ------------------------------------------------------------------ glyphless and slanted text

def _cjk_system_font() -> bool:
    import shutil
    import subprocess

    if not shutil.which("fc-list"):
        return False
    out = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=30).stdout
    return bool(out.strip())


def _reportlab_canvas_pdf(draw: object) -> bytes:
    pytest.importorskip("reportlab")
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))  # not embedded: no glyphs in the file
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(W, H))
    draw(c)  # type: ignore[operator]
    c.showPage()
    c.save()
    return buf.getvalue()


@pytest.mark.skipif(not _cjk_system_font(), reason="needs a CJK system font for PDFium to measure glyphs")
def test_one_character_text_objects_in_a_non_embedded_cjk_font() -> None:
    # Each character its own text object, in a CJK font the file does not embed: without glyphs
    # PDFium gives such an object no extent and leaves it out of its text page.
    def draw(c: object) -> None:
        from reportlab.pdfbase import pdfmetrics

        x = 60.0
        for ch in "机密★10年":
            c.setFont("STSong-Light", 16)  # type: ignore[attr-defined]
            c.drawString(x, H - 30, ch)  # type: ignore[attr-defined]
            x += pdfmetrics.stringWidth(ch, "STSong-Light", 16)
        c.setFont("STSong-Light", 12)  # type: ignore[attr-defined]
        c.drawString(60, 700, "关于开展专项工作的通知")  # type: ignore[attr-defined]

    lines = page_lines(run(PdfExtractor(), _reportlab_canvas_pdf(draw)))
    assert [(s.text, s.role, s.index) for s in lines] == [
        ("机密★10年", "header", 0), ("关于开展专项工作的通知", "body", 1)]


def test_glyphless_text_that_cannot_be_reread_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without system font info the page's one-character objects stay unread: said, not clean.
    from scanner.extractors import pdf as pdf_mod

    def draw(c: object) -> None:
        for k, ch in enumerate("机密★10年"):
            c.setFont("STSong-Light", 16)  # type: ignore[attr-defined]
            c.drawString(60 + 16 * k, H - 30, ch)  # type: ignore[attr-defined]

    data = _reportlab_canvas_pdf(draw)
    monkeypatch.setattr(pdf_mod, "_system_font_info", lambda _c: None)
    errs = [i for i in run(PdfExtractor(), data) if isinstance(i, ScanError)]
    assert [(e.error, e.member) for e in errs] == [(ErrorCode.UNSUPPORTED, "page 1")]


def test_diagonal_watermark_is_a_line_of_its_own() -> None:
    def draw(c: object) -> None:
        c.setFont("STSong-Light", 12)  # type: ignore[attr-defined]
        c.drawString(60, 430, "各单位：现将有关事项通知如下。")  # type: ignore[attr-defined]
        c.saveState()  # type: ignore[attr-defined]
        c.translate(W / 2, H / 2)  # type: ignore[attr-defined]
        c.rotate(45)  # type: ignore[attr-defined]
        c.setFont("STSong-Light", 80)  # type: ignore[attr-defined]
        c.drawCentredString(0, 0, "机密")  # type: ignore[attr-defined]
        c.restoreState()  # type: ignore[attr-defined]

    lines = page_lines(run(PdfExtractor(), _reportlab_canvas_pdf(draw)))
    got = {(s.text, s.role) for s in lines}
    assert got == {("机密", "textbox"), ("各单位：现将有关事项通知如下。", "body")}


def test_embedded_file_over_the_member_limit_is_too_large_not_silently_handed_on() -> None:
    import pypdfium2 as pdfium

    from scanner.extractors.base import Limits

    pdf = pdfium.PdfDocument(minimal_pdf([[(60, 700, "见附件")]]))
    pdf.new_attachment("big.bin").set_data(b"\0" * 5000)
    pdf.new_attachment("small.txt").set_data(b"ok")
    buf = io.BytesIO()
    pdf.save(buf)
    pdf.close()
    items = run(PdfExtractor(), buf.getvalue(), ctx(Limits(max_member_size=4096)))
    assert members(items) == [Member("small.txt", b"ok")]
    assert [(e.error, e.member) for e in items if isinstance(e, ScanError)] == [(ErrorCode.TOO_LARGE, "big.bin")]
