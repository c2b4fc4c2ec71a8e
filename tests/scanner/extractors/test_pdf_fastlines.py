"""Issue 17: PDF text lines read without a Python step per character lose nothing. The extractor's
items and the scanner's findings are compared with the reference reading (`_pdf_reference`, as it
was) on the corpus's and hostile set's PDFs and on text PDFs reportlab writes (CJK CID font, several
pages, CR/LF and control characters drawn as text)."""
from __future__ import annotations

import io
from pathlib import Path

import _pdf_reference as ref
import pytest
from _docs_fixtures import ctx

from scanner.config import ScanConfig
from scanner.engine import Scanner
from scanner.extractors import pdf
from scanner.extractors.pdf import PdfExtractor

SHARED = Path(__file__).resolve().parents[3].parent / "shared"


def _items(data: bytes) -> list[object]:
    return list(PdfExtractor().extract(data, ctx()))


def assert_same(data: bytes, monkeypatch: pytest.MonkeyPatch, scanner: Scanner) -> list[object]:
    fast = _items(data), scanner.scan_bytes(data)
    with monkeypatch.context() as m:
        m.setattr(pdf, "_page_lines", ref._page_lines)
        m.setattr(pdf, "_clean", ref._clean)
        slow = _items(data), scanner.scan_bytes(data)
    assert fast == slow
    return fast[0]


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(ScanConfig(ocr_mode="off"))


def test_clean_is_the_reference_clean_on_every_control_and_space() -> None:
    chars = "".join(chr(c) for c in range(0x00, 0x100)) + "\u3000\ufffe\u2028密\U0001f600"
    for text in (chars, chars[::-1], " \t机\x00密\x0b★\r\n10年 ", "\x01\x02", "", "   "):
        assert pdf._clean(text) == ref._clean(text)


def _reportlab_pdf(lines_per_page: list[list[str]]) -> bytes:
    canvas_mod = pytest.importorskip("reportlab.pdfgen.canvas")
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buf = io.BytesIO()
    c = canvas_mod.Canvas(buf)
    for lines in lines_per_page:
        c.setFont("STSong-Light", 11)
        y = 800
        for ln in lines:
            c.drawString(60, y, ln)
            y -= 16
        c.drawString(300, 800, "右栏 column")  # a second column on the first line's baseline
        c.showPage()
    c.save()
    return buf.getvalue()


def test_generated_text_pdfs_read_as_before(monkeypatch: pytest.MonkeyPatch, scanner: Scanner) -> None:
    pages = [["000123", "机密★10年", "特急", "东陵区人民政府办公室文件"],
             ["国家秘密的密级分为绝密、机密、秘密三级。", "  前后空格  ", "制表\t符", "换\r行\n符", "控\x01制"],
             ["", " ", "\u3000秘　密\u3000", "对标注“机密★5年”的文件，不得在非涉密计算机上处理。" * 3]]
    items = assert_same(_reportlab_pdf(pages), monkeypatch, scanner)
    assert any(getattr(i, "text", "") == "机密★10年" for i in items)


@pytest.mark.corpus
def test_corpus_and_hostile_pdfs_read_as_before(monkeypatch: pytest.MonkeyPatch, scanner: Scanner) -> None:
    files = [f for sub in ("corpus", "hostile") if (SHARED / sub).is_dir()
             for f in sorted((SHARED / sub).rglob("*.pdf"))]
    if not files:
        pytest.skip(f"no PDFs under {SHARED} (clone without ../shared)")
    segments = 0
    for f in files:
        segments += sum(1 for i in assert_same(f.read_bytes(), monkeypatch, scanner) if hasattr(i, "role"))
    assert segments > 20  # the comparison really read text
