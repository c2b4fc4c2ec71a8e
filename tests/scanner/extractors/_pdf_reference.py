"""PDF text-page reading as it was before issue 17 (a Python step per character): the reference
`scanner.extractors.pdf` is held to by tests/scanner/extractors/test_pdf_fastlines.py. Not used by
the scanner; change it only to fix a bug in both."""
from __future__ import annotations

import ctypes
from array import array

from scanner.extractors.pdf import _SPACES, _join, _Piece, _slanted, _to_display, group_lines


def _clean(text: str) -> str:
    """Control characters out, runs of ASCII/no-break spaces to one space (an ideographic
    space U+3000 is kept: it is part of old-style markings such as `秘　密`). PDFium writes
    U+FFFE for a hyphen it takes for a soft one."""
    text = text.replace("\ufffe", "-")
    text = "".join(c for c in text if c >= " " or c in "\t\r\n")
    return _SPACES.sub(" ", text).strip()


def _page_lines(page: object, textpage: object, pdfium_c: object) -> list[tuple[float, str, bool]]:
    """(baseline, text, slanted) of each line in display space, top to bottom.

    Text is read char by char from PDFium's text page (every character it knows, in its reading
    order, split where it breaks lines), then pieces on one baseline are joined. A run drawn at a
    slant (a diagonal watermark such as a large grey `机密` across the page) is a line of its own,
    never joined with the horizontal text it crosses."""
    c = pdfium_c
    n = c.FPDFText_CountChars(textpage)  # type: ignore[attr-defined]
    if n <= 0:
        return []
    units = _char_units(textpage, c, n)
    page_box = page.get_bbox()  # type: ignore[attr-defined]
    rotation = page.get_rotation()  # type: ignore[attr-defined]
    x, y = ctypes.c_double(), ctypes.c_double()
    left, right, bottom, top = ctypes.c_double(), ctypes.c_double(), ctypes.c_double(), ctypes.c_double()
    pieces: list[_Piece] = []
    slanted: list[_Piece] = []
    char_angle = c.FPDFText_GetCharAngle  # type: ignore[attr-defined]
    start = 0
    # Split where PDFium broke lines (generated CR/LF); CR/LF drawn as text are spaces.
    generated = c.FPDFText_IsGenerated  # type: ignore[attr-defined]
    breaks = [i for i, u in enumerate(units) if u in (10, 13) and generated(textpage, i) == 1]
    for end in [*breaks, n]:
        if end > start:
            chunk = units[start:end]
            text = _clean(array("H", [u & 0xFFFF for u in chunk]).tobytes().decode("utf-16-le", "replace"))
            if text:
                first = start + next(k for k, u in enumerate(chunk) if u > 32 and u != 0xA0)
                last = start + max(k for k, u in enumerate(chunk) if u > 32 and u != 0xA0)
                c.FPDFText_GetCharOrigin(textpage, first, x, y)  # type: ignore[attr-defined]
                dx0, base = _to_display(x.value, y.value, page_box, rotation)
                c.FPDFText_GetCharBox(textpage, last, left, right, bottom, top)  # type: ignore[attr-defined]
                ex = {0: right.value, 180: left.value}.get(rotation)
                if ex is None:  # rotated page: the run advances along y in PDF space
                    ex = top.value if rotation == 90 else bottom.value
                dx1 = _to_display(ex, y.value, page_box, rotation)[0] if rotation in (0, 180) else \
                    _to_display(x.value, ex, page_box, rotation)[0]
                size = float(c.FPDFText_GetFontSize(textpage, first))  # type: ignore[attr-defined]
                if not 1.0 <= size <= 500.0:
                    size = 10.0
                piece = _Piece(dx0, max(dx1, dx0), base, size, text)
                angle = float(char_angle(textpage, first))
                (slanted if angle >= 0 and _slanted(angle) else pieces).append(piece)
        start = end + 1
    out = []
    for line in group_lines(pieces):
        text = _join(line)
        if text:
            out.append((line[0].base, text, False))
    if slanted:
        out.extend((p.base, p.text, True) for p in slanted)
        out.sort(key=lambda ln: ln[0])
    return out


def _char_units(textpage: object, c: object, n: int) -> list[int]:
    """The UTF-16 unit of every char of the text page, index-aligned with PDFium's char list."""
    buf = (ctypes.c_ushort * (n + 1))()
    got = c.FPDFText_GetText(textpage, 0, n, buf)  # type: ignore[attr-defined]
    if got - 1 == n:  # one call, aligned (PDFium may drop or add chars at the edges: crbug 2079)
        return list(buf[:n])
    get_unicode = c.FPDFText_GetUnicode  # type: ignore[attr-defined]
    return [get_unicode(textpage, i) for i in range(n)]


def _read_lines(page: object, c: object) -> list[tuple[float, str, bool]]:
    """The page's lines through pypdfium2's `PdfTextPage` wrapper, as the extractor read them."""
    textpage = page.get_textpage()  # type: ignore[attr-defined]
    try:
        return _page_lines(page, textpage, c)
    finally:
        textpage.close()
