"""PDF: the text of every page as positioned lines, document metadata and embedded files.

Each text line becomes a standalone segment located at `page N`, with role `header` when its
baseline is in the top 8 % of the page as displayed (rotation honoured), `footer` in the bottom
8 %, else `body`, and
`index` = line order from the top of the page, so that the classifier sees a marking standing on
its own line at the top of a page as such; a run drawn at a slant (a diagonal watermark) is a line
of its own with role `textbox`. A page holding one-character text objects in a CJK font the file
does not embed is read again with the system fonts (PDFium cannot place such glyphs without them). Title/Subject/Keywords (and a few custom Info keys
OA systems use for the classification, such as `密级`) are property segments; embedded files
(attachments, portfolios) are members. Pages with images but no text layer are reported
`unsupported` (until OCR lands); encrypted PDFs are opened with the empty user password, else
reported `encrypted`.

Engine: pypdfium2 (PDFium, Apache-2.0/BSD-3; the binding is Apache-2.0 or BSD-3) was chosen over
pdfminer.six (MIT) by measurement on the corpus PDFs and generated 3-page CID-font documents: the
same text and lines on both, including ToUnicode-mapped Identity-H fonts, at 130-230 files/s on one
core for PDFium versus 10-27 files/s for pdfminer.six (13-20 times slower). PyMuPDF (AGPL) was not
considered: its licence is not acceptable to a government deployment.
"""
from __future__ import annotations

import ctypes
import math
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from scanner import ocr
from scanner.extractors.base import Context, Extractor
from scanner.model import ErrorCode, ExtractItem, Member, ScanError, Segment

#: Fraction of the page height (as displayed) that counts as header / footer band.
BAND = 0.08
_META_KEYS = ("Title", "Subject", "Keywords")
#: Custom Info-dictionary keys OA systems use for a classification (PDFium cannot list keys).
_CUSTOM_KEYS = ("密级", "Classification", "SecurityClassification", "Security Classification",
                "Confidentiality", "ClassificationLevel", "MJ")
#: In `--ocr auto`, scanned (image-only) pages OCR'd per document; later ones are reported.
OCR_AUTO_PAGES = 10
#: Report at most this many image-only pages one by one, then a summary.
_MAX_PAGE_ERRORS = 20
_FPDF_ERR_PASSWORD = 4
_FPDF_ERR_SECURITY = 5


@dataclass
class _Piece:
    """A run of text PDFium put on one line, in display coordinates (y grows downwards)."""

    x0: float
    x1: float
    base: float  # baseline
    size: float  # font size, for tolerances
    text: str


def _to_display(x: float, y: float, page_box: tuple[float, float, float, float],
                rotation: int) -> tuple[float, float]:
    """Map a point in PDF space to display space (origin top-left of the page as shown)."""
    pl, pb, pr, pt = page_box
    if rotation == 90:  # shown turned clockwise: the left edge becomes the top
        return y - pb, x - pl
    if rotation == 180:
        return pr - x, y - pb
    if rotation == 270:  # the right edge becomes the top
        return pt - y, pr - x
    return x - pl, pt - y


def group_lines(pieces: list[_Piece]) -> list[list[_Piece]]:
    """Group pieces sharing a baseline into lines, top to bottom, left to right. Pieces far
    apart on one baseline (columns, a header's left and right parts) stay separate lines."""
    rows: list[list[_Piece]] = []
    for piece in sorted(pieces, key=lambda p: (p.base, p.x0)):
        if rows and abs(piece.base - rows[-1][0].base) <= 0.5 * max(piece.size, rows[-1][0].size):
            rows[-1].append(piece)
        else:
            rows.append([piece])
    lines: list[list[_Piece]] = []
    for row in rows:
        row.sort(key=lambda p: p.x0)
        line = [row[0]]
        for piece in row[1:]:
            prev = line[-1]
            if piece.x0 - prev.x1 > 2.5 * max(piece.size, prev.size):
                lines.append(line)
                line = [piece]
            else:
                line.append(piece)
        lines.append(line)
    return lines


def _join(line: list[_Piece]) -> str:
    out = line[0].text
    for prev, piece in pairwise(line):
        if piece.x0 - prev.x1 > 0.25 * max(piece.size, prev.size) and not out.endswith(" "):
            out += " "
        out += piece.text
    return out


_SPACES = re.compile(r"[ \t\r\n\xa0]+")


def _clean(text: str) -> str:
    """Control characters out, runs of ASCII/no-break spaces to one space (an ideographic
    space U+3000 is kept: it is part of old-style markings such as `秘　密`). PDFium writes
    U+FFFE for a hyphen it takes for a soft one."""
    text = text.replace("\ufffe", "-")
    text = _CONTROLS.sub("", text)
    return _SPACES.sub(" ", text).strip()


#: Control characters but TAB, LF and CR (a regex pass, not a Python step per character).
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


#: A page tree may name one page (or one subtree) many times, and PDFium counts every naming: a
#: 1 KB file named 100,000 pages (15 s to read) and 1.5 KB a million. Distinct pages take bytes
#: (a page object and its content, even in a compressed object stream): pages beyond one per
#: `_PAGE_BYTES` of file, and beyond `_MIN_PAGES`, are not read, and a `bomb` error says so.
_PAGE_BYTES = 64
_MIN_PAGES = 2000


class PdfExtractor(Extractor):
    """PDF documents, read with PDFium."""

    name = "pdf"
    mimetypes = ("application/pdf", "application/x-pdf")
    priority = 0

    @classmethod
    def sniff(cls, data: bytes, mime: str) -> bool:
        # Some producers put junk before the header; PDFium accepts it within the first 1 KiB.
        return super().sniff(data, mime) or b"%PDF-" in data[:1024]

    def extract(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        try:
            import pypdfium2 as pdfium
            import pypdfium2.raw as pdfium_c
        except ImportError:  # pragma: no cover - declared dependency
            yield ScanError(ErrorCode.UNSUPPORTED, "PDF: pypdfium2 is not installed", ctx.member)
            return
        _no_system_fonts(pdfium_c)
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            code = getattr(exc, "err_code", None)
            if code == _FPDF_ERR_PASSWORD:
                yield ScanError(ErrorCode.ENCRYPTED, "password-protected PDF (the empty user password "
                                "does not open it)", ctx.member)
            elif code == _FPDF_ERR_SECURITY:
                yield ScanError(ErrorCode.ENCRYPTED, "PDF with an unsupported security handler", ctx.member)
            else:
                yield ScanError(ErrorCode.CORRUPT, f"unreadable PDF: {exc}", ctx.member)
            return
        try:
            yield from self._metadata(pdf, pdfium_c, ctx)
            yield from _xmp_labels(data, ctx)
            yield from self._pages(pdf, pdfium_c, ctx, data)
            yield from self._attachments(pdf, ctx)
        finally:
            pdf.close()

    @staticmethod
    def _metadata(pdf: object, pdfium_c: object, ctx: Context) -> Iterator[ExtractItem]:
        for key in (*_META_KEYS, *_CUSTOM_KEYS):
            try:
                value = _meta_text(pdf, pdfium_c, key)
            except (OSError, ValueError, UnicodeError):
                continue
            value = _clean(value)
            if value:
                yield Segment(value, ctx.sub(f"metadata {key}"), role="property", standalone=True, key=key)

    @staticmethod
    def _pages(pdf: object, pdfium_c: object, ctx: Context, data: bytes = b"") -> Iterator[ExtractItem]:
        import pypdfium2 as pdfium_mod

        assert isinstance(pdf, pdfium_mod.PdfDocument)
        image_only: list[int] = []
        settings = ocr.settings_for(ctx)
        ocr_pages = 0
        reread: _FontedReader | None = None
        try:
            n_pages = len(pdf)
        except pdfium_mod.PdfiumError as exc:
            yield ScanError(ErrorCode.CORRUPT, f"PDF page tree: {exc}", ctx.member)
            return
        if n_pages == 0:
            yield ScanError(ErrorCode.CORRUPT, "PDF without pages", ctx.member)
            return
        cap = max(_MIN_PAGES, len(data) // _PAGE_BYTES) if data else n_pages
        if n_pages > cap:
            yield ScanError(ErrorCode.BOMB, f"PDF page tree names {n_pages} pages in {len(data)} bytes (pages "
                            f"shared in the tree): the first {cap} read", ctx.member)
            n_pages = cap
        for i in range(n_pages):
            num = i + 1
            where = ctx.sub(f"page {num}")
            try:
                page = pdf[i]
            except pdfium_mod.PdfiumError as exc:
                yield ScanError(ErrorCode.CORRUPT, f"page {num} unreadable: {exc}", where)
                continue
            try:
                lines = _read_lines(page, pdfium_c)
                if data and _glyphless_text(page, pdfium_c):
                    # Text PDFium could not place without the font's glyphs (a one-character
                    # text object in a CJK font the file does not embed is left out of the text
                    # page): read this page again with the system fonts.
                    if reread is None:
                        reread = _FontedReader(data, pdfium_c)
                    better = reread.lines(i)
                    if better is None:  # no system font info, or the copy would not open
                        yield ScanError(ErrorCode.UNSUPPORTED, f"page {num}: text in a font the file does not "
                                        "embed could not be read (no system fonts)", where)
                    elif sum(len(ln[1]) for ln in better) > sum(len(ln[1]) for ln in lines):
                        lines = better
                if not lines and _has_images(page, pdfium_c):
                    # A scanned page: OCR reads it (auto: the top band of the first
                    # OCR_AUTO_PAGES such pages, where markings stand); otherwise it is reported.
                    limit = OCR_AUTO_PAGES if settings.mode is ocr.OcrMode.AUTO else None
                    if settings.mode is not ocr.OcrMode.OFF and (limit is None or ocr_pages < limit):
                        ocr_pages += 1
                        res = ocr.ocr_pdf_page(page, mode=settings.mode, budget=settings.budget)
                        yield from ocr.result_items(res, where, f"image-only page {num}", unread_is_error=True)
                        continue
                    image_only.append(num)
                height = _display_height(page)
                for idx, (base, text, slanted) in enumerate(lines):
                    role = "body"
                    if slanted:  # a diagonal watermark stands on its own, like a text box
                        role = "textbox"
                    elif height > 0 and base <= BAND * height:
                        role = "header"
                    elif height > 0 and base >= (1 - BAND) * height:
                        role = "footer"
                    yield Segment(text, where, role=role, standalone=True, index=idx)
                for k, (role, text) in enumerate(_annotations(page, pdfium_c)):
                    yield Segment(text, where, role=role, standalone=True, index=len(lines) + k)
            except pdfium_mod.PdfiumError as exc:
                yield ScanError(ErrorCode.CORRUPT, f"page {num}: {exc}", where)
            finally:
                page.close()
        if reread is not None:
            reread.close()
        why = "OCR off" if settings.mode is ocr.OcrMode.OFF else \
            f"--ocr auto reads the first {OCR_AUTO_PAGES}; --ocr full reads all"
        for num in image_only[:_MAX_PAGE_ERRORS]:
            yield ScanError(ErrorCode.UNSUPPORTED, f"image-only page {num} (no text layer; {why})",
                            ctx.sub(f"page {num}"))
        if len(image_only) > _MAX_PAGE_ERRORS:
            rest = image_only[_MAX_PAGE_ERRORS:]
            yield ScanError(ErrorCode.UNSUPPORTED, f"{len(rest)} more image-only pages "
                            f"({rest[0]}-{rest[-1]})", ctx.member)

    @staticmethod
    def _attachments(pdf: object, ctx: Context) -> Iterator[ExtractItem]:
        import pypdfium2 as pdfium_mod

        assert isinstance(pdf, pdfium_mod.PdfDocument)
        try:
            count = pdf.count_attachments()
        except pdfium_mod.PdfiumError:
            return
        for i in range(count):
            try:
                att = pdf.get_attachment(i)
                name = att.get_name() or f"attachment {i + 1}"
                data = att.get_data()
            except (pdfium_mod.PdfiumError, OSError, ValueError) as exc:
                yield ScanError(ErrorCode.CORRUPT, f"embedded file {i + 1}: {exc}", ctx.member)
                continue
            if not ctx.budget.take_member():
                yield ScanError(ErrorCode.BOMB, f"more than {ctx.limits.max_members} members", ctx.member)
                return
            where = ctx.sub(f"attachment {name}" if "/" in name else name)
            # PDFium decodes an embedded file whole; its size is checked against the limits an
            # archive member has (never handed on silently, never scanned unbounded).
            size = len(data)
            if size > ctx.limits.max_member_size:
                del data
                yield ScanError(ErrorCode.TOO_LARGE, f"embedded file: {size} bytes decoded, limit "
                                f"{ctx.limits.max_member_size}", where)
                continue
            if not ctx.budget.take(size):
                yield ScanError(ErrorCode.BOMB, "embedded files: decompressed data of the file exceeds "
                                f"{ctx.limits.max_total_size} bytes in total", where)
                return
            yield Member(f"attachment {name}" if "/" in name else name, bytes(data))


_fonts_off = False


def _no_system_fonts(pdfium_c: object) -> None:
    """Stop PDFium from enumerating and reading the system fonts for every document.

    Text extraction needs the PDF's own encodings and ToUnicode maps, never glyphs; with a CJK
    system font installed, PDFium otherwise read ~16 MB of font per document (measured: 3-page
    PDFs 3x faster, bytes read 339 MB → 2.6 MB for 20 files, identical text)."""
    global _fonts_off
    if not _fonts_off:
        pdfium_c.FPDF_SetSystemFontInfo(None)  # type: ignore[attr-defined]
        _fonts_off = True


_font_info: object | None = None
_font_info_keep: list[object] = []


def _system_font_info(pdfium_c: object) -> object | None:
    """PDFium's default system-font info, made to live for the process: its `Release` (which
    PDFium calls when another info replaces it) is set to do nothing, so the one info can be
    installed and removed again and again (a fresh default each time leaks ~8 KiB; the same
    default with its own `Release` would be freed twice). Only public struct fields are touched."""
    global _font_info
    if _font_info is None:
        c = pdfium_c
        info: Any = c.FPDF_GetDefaultSystemFontInfo()  # type: ignore[attr-defined]
        if not info:
            return None
        noop = type(info.contents.Release)(lambda _this: None)
        info.contents.Release = noop
        _font_info_keep.append(noop)  # the callback must outlive every use of the info
        _font_info = info
    return _font_info


class _FontedReader:
    """The same document opened again, its pages read with the system fonts installed.

    Only for pages that need it (see `_glyphless_text`): with the system fonts, PDFium reads
    about 16 MB of CJK font per document, which is why they are off otherwise. Measured on the
    bench's text PDFs (issue 17): a re-read page costs ~10-15 ms, the first of a document most
    (PDFium keeps no font face across documents: it copies the whole TTC and loads cold glyphs
    again); serving the font file from memory through a wrapping FPDF_SYSFONTINFO saved no CPU
    time end to end (the copy stays), so the default info is used as it is."""

    def __init__(self, data: bytes, pdfium_c: object) -> None:
        self.data = data
        self.c = pdfium_c
        self.pdf: object | None = None
        self.failed = False

    def lines(self, index: int) -> list[tuple[float, str, bool]] | None:
        import pypdfium2 as pdfium_mod

        if self.failed:
            return None
        info = _system_font_info(self.c)
        if info is None:
            self.failed = True
            return None
        self.c.FPDF_SetSystemFontInfo(info)  # type: ignore[attr-defined]
        try:
            if self.pdf is None:
                self.pdf = pdfium_mod.PdfDocument(self.data)
            page = self.pdf[index]  # type: ignore[index]
            try:
                return _read_lines(page, self.c)
            finally:
                page.close()
        except pdfium_mod.PdfiumError:
            self.failed = True
            return None
        finally:
            self.c.FPDF_SetSystemFontInfo(None)  # type: ignore[attr-defined]

    def close(self) -> None:
        if self.pdf is not None:
            self.pdf.close()  # type: ignore[attr-defined]
            self.pdf = None


#: Page objects examined per page for `_glyphless_text` (a page of single-glyph objects has a few
#: thousand; this bounds the cost on hostile pages).
_MAX_OBJECTS_CHECKED = 50_000


#: PDFium has these (the standard 14 and their usual aliases) built in: never glyphless.
_BUILTIN_FONTS = re.compile(rb"^(?:[A-Z]{6}\+)?(?:Helvetica|Arial(?!.*Unicode)|Times|Courier|Symbol|ZapfDingbats)",
                            re.IGNORECASE)


def _glyphless_text(page: object, c: object) -> bool:
    """Does the page hold a text object in a font the file does not embed (nor PDFium has built
    in) with an empty bounding box? PDFium measures a text object by its glyphs; without the
    font (a non-embedded CJK font such as STSong-Light, system fonts off) a one-character object
    has no extent and PDFium's text page leaves it out. (A blank object in an embedded font is
    empty too, but nothing is lost there.)"""
    raw = page.raw  # type: ignore[attr-defined]
    text_type = c.FPDF_PAGEOBJ_TEXT  # type: ignore[attr-defined]
    n = min(c.FPDFPage_CountObjects(raw), _MAX_OBJECTS_CHECKED)  # type: ignore[attr-defined]
    left, bottom, right, top = ctypes.c_float(), ctypes.c_float(), ctypes.c_float(), ctypes.c_float()
    get_obj, get_type, bounds = c.FPDFPage_GetObject, c.FPDFPageObj_GetType, c.FPDFPageObj_GetBounds  # type: ignore[attr-defined]
    name = ctypes.create_string_buffer(128)
    for i in range(n):
        obj = get_obj(raw, i)
        if not (obj and get_type(obj) == text_type and bounds(obj, left, bottom, right, top)
                and right.value - left.value < 0.01 and top.value - bottom.value < 0.01):
            continue
        font = c.FPDFTextObj_GetFont(obj)  # type: ignore[attr-defined]
        if not font or c.FPDFFont_GetIsEmbedded(font) != 0:  # type: ignore[attr-defined]
            continue
        got = c.FPDFFont_GetBaseFontName(font, name, len(name))  # type: ignore[attr-defined]
        if got and _BUILTIN_FONTS.match(name.value):
            continue
        return True
    return False


def _meta_text(pdf: object, pdfium_c: object, key: str) -> str:
    fn = pdfium_c.FPDF_GetMetaText  # type: ignore[attr-defined]
    # A non-ASCII key is a PDF name in UTF-8 or, from Chinese tools, in GBK.
    for raw in dict.fromkeys((key.encode("utf-8"), key.encode("gb18030"))):
        enc_key = raw + b"\0"
        n = fn(pdf, enc_key, None, 0)
        if n <= 2:
            continue
        buf = ctypes.create_string_buffer(n)
        fn(pdf, enc_key, buf, n)
        return buf.raw[: n - 2].decode("utf-16-le", "replace")
    return ""


def _display_height(page: object) -> float:
    left, b, r, t = page.get_bbox()  # type: ignore[attr-defined]
    return (r - left) if page.get_rotation() in (90, 270) else (t - b)  # type: ignore[attr-defined]


#: A run turned more than this (radians) away from the page axes is slanted: a diagonal watermark.
_SLANT = math.radians(5)


def _slanted(angle: float) -> bool:
    off = angle % (math.pi / 2)
    return _SLANT < off < math.pi / 2 - _SLANT


def _read_lines(page: object, c: object) -> list[tuple[float, str, bool]]:
    """The page's lines (`_page_lines`) from a text page held by its raw handle: pypdfium2's
    `PdfTextPage` wrapper registers a finalizer and a parent link per page, about a tenth of a
    millisecond of Python each time, for a handle that lives only for this call."""
    import pypdfium2 as pdfium_mod

    textpage = c.FPDFText_LoadPage(page.raw)  # type: ignore[attr-defined]
    if not textpage:
        raise pdfium_mod.PdfiumError("Failed to load text page.")
    try:
        return _page_lines(page, textpage, c)
    finally:
        c.FPDFText_ClosePage(textpage)  # type: ignore[attr-defined]


def _page_lines(page: object, textpage: object, pdfium_c: object) -> list[tuple[float, str, bool]]:
    """(baseline, text, slanted) of each line in display space, top to bottom.

    Text is read from PDFium's text page (every character it knows, in its reading order, split
    where it breaks lines), then pieces on one baseline are joined. A run drawn at a slant (a
    diagonal watermark such as a large grey `机密` across the page) is a line of its own, never
    joined with the horizontal text it crosses."""
    c = pdfium_c
    n = c.FPDFText_CountChars(textpage)  # type: ignore[attr-defined]
    if n <= 0:
        return []
    page_box = page.get_bbox()  # type: ignore[attr-defined]
    rotation = page.get_rotation()  # type: ignore[attr-defined]
    x, y = ctypes.c_double(), ctypes.c_double()
    left, right, bottom, top = ctypes.c_double(), ctypes.c_double(), ctypes.c_double(), ctypes.c_double()
    pieces: list[_Piece] = []
    slanted: list[_Piece] = []
    origin, box = c.FPDFText_GetCharOrigin, c.FPDFText_GetCharBox  # type: ignore[attr-defined]
    font_size, char_angle = c.FPDFText_GetFontSize, c.FPDFText_GetCharAngle  # type: ignore[attr-defined]
    for first, last, text in _line_spans(textpage, c, n):
        origin(textpage, first, x, y)
        dx0, base = _to_display(x.value, y.value, page_box, rotation)
        box(textpage, last, left, right, bottom, top)
        # The run's far end: it advances along x in PDF space, or along y on a rotated page.
        ex = right.value if rotation == 0 else left.value if rotation == 180 else \
            top.value if rotation == 90 else bottom.value
        dx1 = _to_display(ex, y.value, page_box, rotation)[0] if rotation in (0, 180) else \
            _to_display(x.value, ex, page_box, rotation)[0]
        size = float(font_size(textpage, first))
        if not 1.0 <= size <= 500.0:
            size = 10.0
        piece = _Piece(dx0, max(dx1, dx0), base, size, text)
        angle = float(char_angle(textpage, first))
        (slanted if angle >= 0 and _slanted(angle) else pieces).append(piece)
    out = []
    for line in group_lines(pieces):
        text = _join(line)
        if text:
            out.append((line[0].base, text, False))
    if slanted:
        out.extend((p.base, p.text, True) for p in slanted)
        out.sort(key=lambda ln: ln[0])
    return out


#: What a line's ends may hold that does not place it: units up to SPACE, and NO-BREAK SPACE.
_INVISIBLE = "".join(map(chr, range(33))) + "\xa0"
_CRLF_RUN = re.compile("[\r\n]+")


def _line_spans(textpage: object, c: object, n: int) -> list[tuple[int, int, str]]:
    """(first, last, text) of each run PDFium put on a line of its own: the char indexes of the
    run's first and last visible chars and its cleaned text. Split where PDFium broke lines
    (generated CR/LF); CR/LF drawn as text are spaces.

    The page's text is decoded once; when it holds no surrogate (one str char per UTF-16 unit,
    as on any page of BMP text) lines are slices of it and their visible ends are found by
    `str.strip`, else unit by unit (`_unit_spans`)."""
    raw = _page_utf16(textpage, c, n)
    try:
        text = raw.decode("utf-16-le")
    except UnicodeDecodeError:  # a lone surrogate
        text = ""
    if len(text) != n:
        return _unit_spans(raw, textpage, c, n)
    generated = c.FPDFText_IsGenerated  # type: ignore[attr-defined]
    # A run of CR/LF with a generated one in it is one break: the rest of the run would only be
    # blank lines or blanks at a line's ends, which `_clean` and the visible ends leave out. So
    # PDFium's "\r\n" line break costs one question, not two.
    breaks = [m.span() for m in _CRLF_RUN.finditer(text)
              if any(generated(textpage, i) == 1 for i in range(*m.span()))]
    breaks.append((n, n))
    spans = []
    start = 0
    for end, resume in breaks:
        if end > start:
            seg = text[start:end]
            line = _clean(seg)
            if line:
                spans.append((start + len(seg) - len(seg.lstrip(_INVISIBLE)),
                              start + len(seg.rstrip(_INVISIBLE)) - 1, line))
        start = resume
    return spans


def _unit_spans(raw: bytes, textpage: object, c: object, n: int) -> list[tuple[int, int, str]]:
    """`_line_spans` for a page whose text holds surrogates: each line decoded from its UTF-16
    slice (a lone surrogate becomes U+FFFD), its visible ends found unit by unit."""
    units = array("H", raw)
    generated = c.FPDFText_IsGenerated  # type: ignore[attr-defined]
    # CR/LF units found by a regex over the UTF-16, not a Python step per char.
    breaks = [i for i in (m.start() >> 1 for m in _CRLF_UNIT.finditer(raw) if not m.start() & 1)
              if units[i] in (10, 13) and generated(textpage, i) == 1]
    spans = []
    start = 0
    for end in [*breaks, n]:
        if end > start:
            text = _clean(raw[2 * start:2 * end].decode("utf-16-le", "replace"))
            if text:
                chunk = units[start:end]
                first = start + next(k for k, u in enumerate(chunk) if u > 32 and u != 0xA0)
                last = start + next(k for k in range(len(chunk) - 1, -1, -1) if chunk[k] > 32 and chunk[k] != 0xA0)
                spans.append((first, last, text))
        start = end + 1
    return spans


def _page_utf16(textpage: object, c: object, n: int) -> bytes:
    """The UTF-16-LE of every char of the text page, index-aligned with PDFium's char list
    (bytes: no Python int per char)."""
    buf = (ctypes.c_ushort * (n + 1))()
    got = c.FPDFText_GetText(textpage, 0, n, buf)  # type: ignore[attr-defined]
    if got - 1 == n:  # one call, aligned (PDFium may drop or add chars at the edges: crbug 2079)
        return ctypes.string_at(buf, 2 * n)
    get_unicode = c.FPDFText_GetUnicode  # type: ignore[attr-defined]
    return array("H", [get_unicode(textpage, i) & 0xFFFF for i in range(n)]).tobytes()


#: A CR or LF code unit in UTF-16-LE bytes (at even offsets only: the caller checks; a lookahead,
#: so that a match at an odd offset does not hide an overlapping one at the next, even offset).
_CRLF_UNIT = re.compile(b"(?=[\\n\\r]\\x00)")


#: Annotation subtypes whose text is shown or attached to the page: Text (sticky note),
#: FreeText (typed text box), Square/Circle/Highlight… comments, Stamp, Widget (form field).
_ANNOT_ROLES = {1: "note", 3: "textbox", 13: "textbox", 20: "textbox"}


def _annotations(page: object, c: object) -> Iterator[tuple[str, str]]:
    """(role, text) of the page's annotations: the Contents of comments, text boxes and
    stamps, and the value of form fields (not part of the page's text layer)."""
    count = c.FPDFPage_GetAnnotCount(page)  # type: ignore[attr-defined]
    for i in range(max(0, min(count, 10_000))):
        annot = c.FPDFPage_GetAnnot(page, i)  # type: ignore[attr-defined]
        if not annot:
            continue
        try:
            subtype = c.FPDFAnnot_GetSubtype(annot)  # type: ignore[attr-defined]
            if subtype in (2, 16):  # Link, Popup (its parent carries the text)
                continue
            role = _ANNOT_ROLES.get(subtype, "note")
            for key in ("V",) if subtype == 20 else ("Contents",):
                text = _clean(_annot_string(c, annot, key))
                if text:
                    yield role, text
        finally:
            c.FPDFPage_CloseAnnot(annot)  # type: ignore[attr-defined]


def _annot_string(c: object, annot: object, key: str) -> str:
    fn = c.FPDFAnnot_GetStringValue  # type: ignore[attr-defined]
    ckey = key.encode("ascii") + b"\0"
    n = fn(annot, ckey, None, 0)
    if n <= 2:
        return ""
    buf = (ctypes.c_ushort * (n // 2))()
    fn(annot, ckey, buf, n)
    return bytes(buf)[: n - 2].decode("utf-16-le", "replace")


def _has_images(page: object, pdfium_c: object) -> bool:
    kind = pdfium_c.FPDF_PAGEOBJ_IMAGE  # type: ignore[attr-defined]
    for _obj in page.get_objects(filter=[kind], max_depth=3):  # type: ignore[attr-defined]
        return True
    return False


#: XMP properties that carry a classification label (an OA system's 密级, a sensitivity label
#: Office writes when it exports a labelled document to PDF: pdfx:MSIP_Label_<guid>_Name).
_XMP_LABEL_KEY = re.compile(r"^(?:密级|保密等级|保密级别|密级标志|classification|security[ _-]?(?:level|classification)"
                            r"|sensitivity|MSIP_Label_[0-9A-Fa-f\-]+_Name)$", re.I)
_XMP_MAX = 1 << 20


def _xmp_labels(data: bytes, ctx: Context) -> Iterator[ExtractItem]:
    """Classification labels in the document's XMP packet (as elements or as attributes of
    rdf:Description). The packet is stored uncompressed by every producer that follows the XMP
    spec's advice; a compressed one is not looked into."""
    from scanner.extractors.ooxml import local_name, parse_xml

    start = data.find(b"<x:xmpmeta")
    end = data.find(b"</x:xmpmeta>", start) if start >= 0 else -1
    if start < 0 or end < 0 or end - start > _XMP_MAX:
        return
    root, _err = parse_xml(data[start: end + len(b"</x:xmpmeta>")], ctx.member)
    if root is None:
        return
    i = 0
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        pairs = [(local_name(k), v) for k, v in el.attrib.items()]
        if len(el) == 0 and (el.text or "").strip():
            pairs.append((local_name(el.tag), el.text))
        for key, value in pairs:
            if _XMP_LABEL_KEY.match(key) and value.strip():
                yield Segment(value.strip(), ctx.sub(f"metadata XMP {key}"), role="property", standalone=True,
                              key=key, index=i)
                i += 1
