"""Images (PNG, JPEG, TIFF, BMP, WebP, GIF): scanned and photographed pages, read by OCR.

Each OCR'd line is a standalone segment at `index` = line order from the top of the page, role
`header` in the top band (see `scanner.ocr.to_segments`), located at the image itself or, for a
multi-page TIFF, at `page N`. The OCR mode comes from the context's `ocr` settings when the scan
passes them, else from the environment (`BAOMI_OCR`=off|auto|full, default auto). With OCR off or
not installed an image yields nothing: images are not documents a text extractor could read.
A document-like image left unread because the scan's OCR budget is spent is a `timeout` error.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from scanner import ocr
from scanner.extractors.base import Context, Extractor
from scanner.model import ExtractItem


class ImageExtractor(Extractor):
    """Page images: OCR (top band in `auto`, whole page in `full`)."""

    name: ClassVar[str] = "image"
    mimetypes: ClassVar[tuple[str, ...]] = (
        "image/png", "image/jpeg", "image/pjpeg", "image/tiff", "image/bmp", "image/x-ms-bmp",
        "image/webp", "image/gif",
    )
    priority: ClassVar[int] = 0

    def extract(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        settings = ocr.settings_for(ctx)
        if settings.mode is ocr.OcrMode.OFF or not data:
            return
        results = ocr.ocr_image(data, mode=settings.mode, budget=settings.budget)
        multi = len(results) > 1
        for num, res in enumerate(results, 1):
            where = ctx.sub(f"page {num}") if multi else ctx.member
            # OCR missing for a document-like image is an error; OCR off is the user's choice.
            yield from ocr.result_items(res, where, f"page {num}" if multi else "image",
                                        unread_is_error=res.skipped == "unavailable")
