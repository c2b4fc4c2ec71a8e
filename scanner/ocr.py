"""OCR for scanned and photographed documents: located text lines from page images.

The marking stands, by rule, at the top of the first page (or in a page header), so OCR is
targeted: `auto` reads only the top band of each page's text area (where markings stand), `full`
reads the whole page, `off` reads nothing. This module produces faithful located text only
(`OcrLine`s, then `Segment`s via `to_segments`); marking vs mention is the classifier's job,
traditional characters and spacing the normaliser's.

Pipeline per page image: scale to at most `MAX_SIDE` px → crop to the text area (thin-stroke
pixels plus a margin: a page photographed on a desk is read as the page) → orientation: detect
text boxes in the top band upright; flat lines that the angle classifier does not call upside
down accept it, standing boxes mean a quarter turn (the classifier picks 90° or 270°), an empty
band has 180°, 90° and 270° tried → detect and recognise the band (widened to `WIDE_BAND` when it
shows fewer than `MIN_BAND_ROWS` rows of text: a viewer's menu and toolbar above the page; a line
cut by the band's edge is read whole; both detect only the strip below the rows already detected,
`_detect_more`; at most the first `MAX_AUTO_ROWS` rows of text recognised; running-text lines
longer than `MAX_AUTO_ASPECT` skipped) or the whole page. Lines are recognised one per model call,
padded to `REC_MIN_WIDTH` (`_rec_lines`). Boxes far apart on one row (a header's two sides, table
cells) are separate lines.

Engine: RapidOCR (`rapidocr-onnxruntime`, Apache-2.0): PP-OCRv4 detection and recognition and the
PP-OCR mobile angle classifier as ONNX files inside the wheel, run by onnxruntime; nothing is
downloaded at run time (verified with `unshare -n`). Chosen over Debian tesseract 5.3 with
`tesseract-ocr-chi-sim` by measurement, one thread, on a shared 2-core machine:

=============================  =================  ======================  =======================
measure                        RapidOCR           tesseract chi_sim       note
=============================  =================  ======================  =======================
marking text found, 42 pages   42/42 band, 42/42  5/42 band, 5/42 full    40 generated (8 marks ×
given upright                  full                                       upright, 90°, 180°+JPEG
                                                                          q40, 270°+skew+grey,
                                                                          skew+JPEG q30+red) + 2
                                                                          corpus images
same, 18 pages as stored       18/18, 18/18       1/18, 2/18 (9/18, 8/18  tesseract reads ★ as
(bench/ocr_bench.py)                              if ★ may be misread)    女/太/妇, loses levels
                                                                          on red/rotated pages
ms per page, top band / full   570 / 3800 (raw)   240-290 / 900-1050
install                        ~370 MB venv       ~25 MB apt (with osd,   onnxruntime 78, OpenCV
                                                  eng)                    188, numpy 73, models 16
=============================  =================  ======================  =======================

This pipeline (bench/ocr_bench.py, same machine): 22 page images — the corpus image family
(png, jpg, image-only PDF page), 15 generated pages as above, 4 phone photos of pages on a desk
(perspective, uneven light, blur, every other one turned in the frame) — marking text found
22/22 in `auto` (mean 561 ms, median 536, max 791 per image) and 22/22 in `full` (mean 2.5 s,
median 2.0 s, max 7.2 s; the corpus pages, full of text, 5.5-7.2 s). A harder generated set (3000×4000 phone photos upright and turned,
600 px-wide low-resolution scans, faded grey-on-cream with red marks, the old top-right `秘　密`,
`TOP SECRET//NOFORN`, slides flat and photographed; `--hard`): 29/29 in `auto` (mean 0.46 s)
and in `full` (mean 1.8 s).

Issue 17 (2026-12-06, the same machine, slower that day; CPU seconds of one process, before →
after `_rec_lines`, `MAX_AUTO_ROWS` and `_detect_more`):

=================================  ==========================  ==========================
bench/ocr_bench.py                 before                      after
=================================  ==========================  ==========================
22 pages, `auto`                   22/22, mean 1618 ms         22/22, mean 912 ms
22 pages, `full`                   22/22, mean 6813 ms         22/22, mean 5155 ms
29 `--hard` pages, `auto`          29/29, mean 1501 ms         29/29, mean 788 ms
29 `--hard` pages, `full`          29/29, mean 4923 ms         29/29, mean 3315 ms
18 non-document images of          26.3 s (kcachegrind 5.8,    12.9 s (2.6, 1.6, 2.0, 2.1,
/usr/share/doc that pass           valgrind dh-tree 5.7,       0.5)
`looks_like_document`, `auto`      nodejs plots 3.4 and 2.7,
                                   a stream screenshot 1.2)
=================================  ==========================  ==========================

Cost control, in order: `OcrMode`; `looks_like_document`, Pillow only (numpy and the model are
imported for pages, never for skipped images): header size (JPEG markers parsed in Python), then
a ≤160 px thumbnail — a camera JPEG's EXIF thumbnail when it has one (~0.22 ms per photo, the
photo itself not opened), else a DCT-scaled draft decode, whose entropy decoding (~10 ms per MB
of JPEG on this machine) is the floor: 1,000 camera photos with thumbnails add +44 % to a scan
from the page cache and +9 % from storage, 1,000 photos half without thumbnails +302 % / +152 %
(bench/ocr_bench.py); the caller's `OcrBudget` (seconds of OCR per scan, checked before each
model call); the model loaded once per process, lazily, on the first page that needs it (~0.2 s,
~100 MB; ~300 MB peak reading a full page).

Image-only PDF pages: `ocr_pdf_page(page, mode=..., budget=...)` renders a pypdfium2 page and
reads it like an image; `result_items` turns any page's result into segments and error records
(its docstring and `ocr_pdf_page`'s show how the PDF extractor calls them).
"""
from __future__ import annotations

import bisect
import contextlib
import enum
import functools
import io
import itertools
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from scanner.model import ErrorCode, ScanError, Segment

if TYPE_CHECKING:  # heavy imports stay lazy: `baomi scan` on a text tree never loads them
    import numpy as np
    from PIL import Image

#: Environment variables read until the CLI passes settings down (`--ocr`, budget).
ENV_MODE = "BAOMI_OCR"
ENV_BUDGET = "BAOMI_OCR_BUDGET"
ENV_THREADS = "BAOMI_OCR_THREADS"

#: Fraction of the upright page height read in `auto` mode; its lines get role `header`.
TOP_BAND = 0.25
#: Fraction of the page height at the bottom whose lines get role `footer` (`full` mode).
BOTTOM_BAND = 0.08
#: Pages are scaled down so that their longer side is at most this (PP-OCR reads 3号 text well
#: from ~20 px character height; an A4 page at 1600 px has ~30 px).
MAX_SIDE = 1600
#: Images whose longer side is below this, or shorter side below `MIN_SHORT_SIDE`, are icons.
MIN_SIDE = 200
MIN_SHORT_SIDE = 24
#: Images above this many pixels are not decoded (a decompression bomb, not a scan; an A3 page
#: at 600 dpi has 70 MP). Pillow's own bomb guard (`Image.MAX_IMAGE_PIXELS`) stays as it is.
MAX_PIXELS = 89_000_000
#: In `auto`, text boxes longer than this many times their height (about as many CJK characters)
#: are running text and are not recognised: a marking has at most ~18 characters (`秘密★项目验收
#: 后解密` 10, `绝密★2041年8月8日` 13, `TOP SECRET//REL TO USA, FVEY` ~16 at Latin widths), and
#: recognition time grows with the characters read (~8 ms each on one core: body lines were 80 %
#: of the corpus pages' top-band time). `full` reads them.
MAX_AUTO_ASPECT = 24.0
#: Recognised text below this confidence is dropped (RapidOCR's own default).
MIN_SCORE = 0.5
#: Pages of a multi-frame TIFF read at most.
MAX_FRAMES = 50
#: Default PDF render resolution (the long side is capped at `MAX_SIDE` anyway).
PDF_DPI = 150


class OcrMode(str, enum.Enum):
    """How much OCR a scan does. Stable values: the `--ocr` option takes them."""

    OFF = "off"
    AUTO = "auto"  # top band of each page image, document-like images only
    FULL = "full"  # the whole page

    @classmethod
    def parse(cls, value: str | OcrMode | None, default: OcrMode | None = None) -> OcrMode:
        """`off|auto|full` (case-insensitive); None/empty gives `default` (auto)."""
        if isinstance(value, OcrMode):
            return value
        if not value or not value.strip():
            return default or cls.AUTO
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise ValueError(f"OCR mode must be off, auto or full, not {value!r}") from None


class OcrBudget:
    """Seconds of OCR one scan may spend; the caller creates one per scan and passes it down.

    Model calls are skipped once it is spent (`exhausted`); the image extractor then reports the
    document-like images it could not read as `timeout` errors rather than calling them clean.
    Per process: a pool of N workers gives each its own budget (divide the scan's by N).
    """

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = seconds  # None: unlimited
        self.used = 0.0
        self._lock = threading.Lock()

    @property
    def remaining(self) -> float | None:
        return None if self.seconds is None else max(0.0, self.seconds - self.used)

    @property
    def exhausted(self) -> bool:
        return self.seconds is not None and self.used >= self.seconds

    def charge(self, seconds: float) -> None:
        with self._lock:
            self.used += seconds


@dataclass(frozen=True)
class OcrSettings:
    """What the image extractor reads from its context (or, until wired, the environment)."""

    mode: OcrMode = OcrMode.AUTO
    budget: OcrBudget | None = None


@dataclass(frozen=True)
class OcrLine:
    """One line of text as read. Coordinates are fractions of the upright page's text area (the
    image cropped to its strokes plus a margin, see `_content_box`)."""

    text: str
    left: float
    top: float
    right: float
    bottom: float
    #: Mean recognition confidence of the line's boxes (0..1).
    score: float


@dataclass(frozen=True)
class OcrResult:
    """The lines of one page image, top to bottom, or why it was not read."""

    lines: tuple[OcrLine, ...] = ()
    #: Clockwise degrees the image was turned to read it upright (0, 90, 180, 270).
    rotation: int = 0
    #: Why the page was not (fully) read: `off`, `unavailable`, `small`, `not_document`,
    #: `budget`, `too_large`, `unreadable: …`; None when it was read.
    skipped: str | None = None
    #: True when the whole page was read, False for the top band only.
    full: bool = False
    #: Wall-clock seconds spent in the model.
    seconds: float = 0.0


# -- settings --------------------------------------------------------------------------------
_env_lock = threading.Lock()
_env_settings: OcrSettings | None = None


def settings_from_env() -> OcrSettings:
    """Process-wide default settings: `BAOMI_OCR` (off|auto|full, default auto) and
    `BAOMI_OCR_BUDGET` (seconds of OCR for this process, default unlimited). Read once."""
    global _env_settings
    with _env_lock:
        if _env_settings is None:
            try:
                mode = OcrMode.parse(os.environ.get(ENV_MODE))
            except ValueError:
                mode = OcrMode.AUTO
            raw = os.environ.get(ENV_BUDGET, "").strip()
            try:
                seconds = float(raw) if raw else None
            except ValueError:
                seconds = None
            _env_settings = OcrSettings(mode, OcrBudget(seconds))
        return _env_settings


def reset_env_settings() -> None:
    """Forget the settings read from the environment (tests)."""
    global _env_settings
    with _env_lock:
        _env_settings = None


# -- engine -------------------------------------------------------------------------------------
_engine_lock = threading.Lock()
_engine: Any = None
_engine_error: str | None = None


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Can this process OCR at all (engine and image libraries importable)? Cheap: no model load."""
    from scanner.config import ocr_available

    return ocr_available()


def _get_engine() -> Any:
    """The RapidOCR engine, loaded once per process on first use (~0.2 s, ~100 MB)."""
    global _engine, _engine_error
    if _engine is not None or _engine_error is not None:
        return _engine
    with _engine_lock:
        if _engine is None and _engine_error is None:
            try:
                import logging

                from rapidocr_onnxruntime import RapidOCR

                logging.getLogger("RapidOCR").setLevel(logging.ERROR)
                # One thread by default: the scan pool already runs one worker per core.
                threads = int(os.environ.get(ENV_THREADS, "1") or 1)
                _engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1,
                                   det_limit_type="max", det_limit_side_len=MAX_SIDE)
            except Exception as exc:  # noqa: BLE001 - a broken install disables OCR, not the scan
                _engine_error = f"{type(exc).__name__}: {exc}"
    return _engine


def engine_error() -> str | None:
    """Why the engine could not be loaded (after a failed first use), else None."""
    return _engine_error


#: Name endings of images (a hint for `preload` only: files are typed by their content).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif")


def preload() -> None:
    """Import Pillow and its common plugins now: a parent about to fork scan workers that will
    pre-check images pays the import once instead of once per worker (~20 ms each). Neither
    numpy nor the OCR model is imported: most images never need them."""
    with contextlib.suppress(ImportError):
        from PIL import Image, ImageChops  # noqa: F401

        Image.preinit()


# -- the document pre-check --------------------------------------------------------------------
#: JPEG start-of-frame markers (baseline, extended, progressive, lossless; Huffman and arithmetic).
_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))


class _JpegHead(NamedTuple):
    width: int
    height: int
    thumbnail: bytes | None  # the EXIF thumbnail


def _jpeg_header(data: bytes) -> _JpegHead | None:
    """Size and EXIF thumbnail of a JPEG from its marker segments before the image
    data, without decoding anything; None when the markers do not parse (Pillow decides)."""
    if not data.startswith(b"\xff\xd8"):
        return None
    pos, size, thumb = 2, None, None
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers
            pos += 2
            continue
        seglen = int.from_bytes(data[pos + 2:pos + 4], "big")
        if seglen < 2:
            return None
        if marker in _SOF and seglen >= 7:
            size = (int.from_bytes(data[pos + 7:pos + 9], "big"), int.from_bytes(data[pos + 5:pos + 7], "big"))
        elif marker == 0xE1 and thumb is None and data[pos + 4:pos + 10] == b"Exif\x00\x00":
            seg = data[pos + 4:pos + 2 + seglen]
            start = seg.find(b"\xff\xd8\xff", 10)
            end = seg.find(b"\xff\xd9", start) if start >= 0 else -1
            thumb = seg[start:end + 2] if end > 0 else None
        elif marker == 0xDA:  # image data begins
            if size and size[0] and size[1]:
                return _JpegHead(size[0], size[1], thumb)
            return None
        elif marker == 0xD9:
            return None
        pos += 2 + seglen
    return None


def _exif_thumbnail(data: bytes) -> bytes | None:
    """The JPEG thumbnail a camera stores in the EXIF APP1 segment, without decoding the photo."""
    head = _jpeg_header(data)
    return head.thumbnail if head else None


def _extreme(im: Image.Image, op: Any, step: int = 1) -> Image.Image:
    """5×5 max (`op` = ImageChops.lighter) or min (`darker`) filter from shifted copies, by
    doubling (window 2, 4, 5 per axis: a dozen C calls, ten times faster than Pillow's rank
    filter). The window is anchored at a corner, not centred: the pixels up to 4 before
    (`step` 1) or after (`step` -1) on each axis. A max with one anchoring then a min with the
    other is still a closing (a structuring element's translation cancels out). Shifts wrap
    around, so values within 4 px of an edge are not trustworthy (callers drop the border)."""
    from PIL import ImageChops

    def shift(x: Image.Image, dx: int, dy: int) -> Image.Image:
        return ImageChops.offset(x, dx * step, dy * step)

    two = op(im, shift(im, 1, 0))
    row = op(op(two, shift(two, 2, 0)), shift(im, 4, 0))
    two = op(row, shift(row, 0, 1))
    return op(op(two, shift(two, 0, 2)), shift(row, 0, 4))


#: Width of the image border `_tophat` drops (shifts wrap around; a closing is two passes).
_BORDER = 4
#: Stroke contrast: a pixel more than this darker than its closing (lighter than its opening).
_STROKE = 40


def _paper(hist: list[int]) -> tuple[float, bool]:
    """(paper, dark_ink) of a grey histogram: the share of pixels near the page's background
    level — light paper (near the 90th percentile) or a dark screen (near the 10th) — and whether
    the ink is darker than the background."""
    cum = list(itertools.accumulate(hist))
    n = cum[-1] or 1
    hi, lo = min(255, bisect.bisect_left(cum, 0.9 * n)), min(255, bisect.bisect_left(cum, 0.1 * n))
    light = sum(hist[max(0, hi - 24):hi + 25]) / n
    dark = sum(hist[max(0, lo - 24):lo + 25]) / n
    if hi - lo <= 24:
        # One background fills most of the image (both windows cover it): the ink is on the side
        # of it where the other pixels lie — darker (a page, even a dim photo of one) or lighter
        # (a slide or screen with a dark background).
        below, above = sum(hist[:max(0, lo - 24)]), sum(hist[hi + 25:])
        return light, below > above if below != above else hi >= 128
    return (light, True) if light >= dark else (dark, False)


def _tophat(grey: Image.Image, dark_ink: bool) -> Image.Image:
    """Stroke contrast of a grey image without its `_BORDER`: the morphological top-hat of a
    5×5 window — a closing (max then min) fills dark strokes narrower than the window in, edges
    of large shapes not (light text on a dark screen: an opening)."""
    from PIL import ImageChops

    if dark_ink:
        hat = ImageChops.subtract(_extreme(_extreme(grey, ImageChops.lighter), ImageChops.darker, -1), grey)
    else:
        hat = ImageChops.subtract(grey, _extreme(_extreme(grey, ImageChops.darker), ImageChops.lighter, -1))
    w, h = grey.size
    return hat.crop((_BORDER, _BORDER, w - _BORDER, h - _BORDER))


def _thumb_stats(thumb: Image.Image) -> tuple[float, float]:
    """(paper, ink) of a thumbnail: see `_paper`; ink as the share of thin-stroke pixels
    (`_tophat` above `_STROKE`), measured only when there is paper enough to be a page."""
    grey = thumb if thumb.mode == "L" else thumb.convert("L")
    w, h = grey.size
    if w <= 2 * _BORDER or h <= 2 * _BORDER:
        return 0.0, 0.0
    paper, dark_ink = _paper(grey.histogram())
    if paper < DIM_PAPER:
        return paper, 0.0
    hist = _tophat(grey, dark_ink).histogram()
    return paper, sum(hist[_STROKE + 1:]) / ((w - 2 * _BORDER) * (h - 2 * _BORDER))


def _content_box(rgb: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the text on the image, with a margin: a page photographed on
    a desk, or scanned with wide margins, is read as the page's text area, so that the top band
    is the top of the text. The whole image when no clear stroke area shows."""
    import numpy as np
    from PIL import Image

    h, w = rgb.shape[:2]
    f = max(1, max(h, w) // 400)
    hh, ww = h // f, w // f
    if hh <= 2 * _BORDER or ww <= 2 * _BORDER:
        return 0, h, 0, w

    def channel(pick: Any) -> Image.Image:
        grey = pick(rgb[: hh * f, : ww * f], axis=2)
        return Image.fromarray(grey.reshape(hh, f, ww, f).mean(axis=(1, 3)).astype(np.uint8) if f > 1 else grey)

    def extent(counts: np.ndarray) -> tuple[int, int] | None:
        # rows (columns) holding strokes, two in a row: isolated speckles do not count
        full = (counts >= 2)[:-1] & (counts >= 2)[1:]
        idx = np.nonzero(full)[0]
        return (int(idx[0]), int(idx[-1]) + 1) if len(idx) else None

    def strokes(small: Image.Image, dark_ink: bool) -> tuple[int, int, int, int] | None:
        mask = np.zeros((hh, ww), dtype=bool)
        mask[_BORDER:hh - _BORDER, _BORDER:ww - _BORDER] = np.asarray(_tophat(small, dark_ink)) > _STROKE
        ey, ex = extent(mask.sum(axis=1)), extent(mask.sum(axis=0))
        return (*ey, *ex) if ey is not None and ex is not None else None

    # The darkest channel: red (stamp-coloured) and blue ink stand out as well as black.
    small = channel(np.min)
    dark_ink = _paper(small.histogram())[1]
    box = strokes(small, dark_ink)
    if box is None:
        return 0, h, 0, w
    if not dark_ink:
        # Light text on a dark background (a slide, a screen): red or yellow text on navy has no
        # contrast in the darkest channel, so the brightest one's strokes are added.
        more = strokes(channel(np.max), False)
        if more is not None:
            box = (min(box[0], more[0]), max(box[1], more[1]), min(box[2], more[2]), max(box[3], more[3]))
    y0, y1, x0, x1 = box
    # a margin of 5 % and at least ~24 px: the detector wants white around the text
    my, mx = max(0.05 * hh + 3, 24 / f), max(0.05 * ww + 3, 24 / f)
    top, bottom = max(0, int((y0 - my) * f)), min(h, int((y1 + my + 1) * f))
    left, right = max(0, int((x0 - mx) * f)), min(w, int((x1 + mx + 1) * f))
    if bottom - top < 64 or right - left < 64:
        return 0, h, 0, w
    return top, bottom, left, right


#: Thresholds of the pre-check, on the ≤160 px thumbnail: generated and corpus pages measure
#: paper ≥ 0.65 and ink 0.17-0.26 (a page with a head and no body 0.04, a page photographed on a
#: desk 0.05); 100 generated photo-like images ink ≤ 0.005. A textured photo may still pass: the
#: model then finds no text in its top band in ~0.1-0.3 s; that costs time, never a finding.
MIN_PAPER = 0.3
MIN_INK = 0.01
#: A page lit unevenly (vignetting, a hand's or the camera's shadow, a warm lamp falling off)
#: spreads its paper over many grey levels: such pages measured paper 0.26-0.30 with ink
#: 0.12-0.30 (tools sweep, /tmp/sweep_ocr). Below `MIN_PAPER` a thumbnail still passes with paper
#: ≥ `DIM_PAPER` and ink ≥ `DIM_INK`, five times the most any of 1,300 photo-like images showed
#: (0.0099; their paper 0.15-0.69).
DIM_PAPER = 0.2
DIM_INK = 0.05


def _unreadable(exc: BaseException) -> str:
    """A skip reason for an image Pillow could not read: `bomb: …` when it refused the declared
    pixel count (a decompression bomb), else `unreadable: …` (damage)."""
    kind = "bomb" if type(exc).__name__ == "DecompressionBombError" else "unreadable"
    return f"{kind}: {type(exc).__name__}: {exc}"[:200]


def looks_like_document(data: bytes) -> str | None:
    """None when `data` may be a page image worth OCR, else why not (`small`, `not_document`,
    `too_large`, `unreadable: …`). Reads the header and a ≤200 px thumbnail only: a camera
    JPEG's EXIF thumbnail when it has one (the photo itself is then not opened), else a
    DCT-scaled draft decode. Pillow only: numpy is not imported for images that are skipped."""
    try:
        from PIL import Image
    except ImportError:
        return "unavailable"
    head = _jpeg_header(data)
    im: Image.Image | None = None
    if head is not None:
        w, h, exif = head.width, head.height, head.thumbnail
    else:
        exif = None
        try:
            im = Image.open(io.BytesIO(data))
            w, h = im.size
        except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise anything on hostile bytes
            return _unreadable(exc)
    if max(w, h) < MIN_SIDE or min(w, h) < MIN_SHORT_SIDE:
        return "small"
    if w * h > MAX_PIXELS:
        return "too_large"
    try:
        thumb: Image.Image | None = None
        if exif:
            try:
                thumb = Image.open(io.BytesIO(exif))
                thumb.draft("L", thumb.size)  # greyscale straight from the decoder
                thumb.load()
            except Exception:  # noqa: BLE001 - a broken EXIF thumbnail: decode the image itself
                thumb = None
        if thumb is None:
            if im is None:
                im = Image.open(io.BytesIO(data))
            if im.format == "JPEG":
                im.draft("L", (128, 128))  # DCT scaling: decodes at 1/2-1/8 size
            thumb = im.convert("L") if im.mode not in ("L", "RGB") else im
        if max(thumb.size) > 200:  # an EXIF thumbnail (160×120) is used as it is
            thumb.thumbnail((128, 128))
        paper, ink = _thumb_stats(thumb)
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise anything on hostile bytes
        return _unreadable(exc)
    if ink < (MIN_INK if paper >= MIN_PAPER else DIM_INK):  # also 0 below `DIM_PAPER`
        return "not_document"
    return None


# -- reading -------------------------------------------------------------------------------------
@dataclass
class _Box:
    x0: float
    y0: float
    x1: float
    y1: float
    text: str = ""
    score: float = 0.0

    @property
    def h(self) -> float:
        return self.y1 - self.y0


class _Reader:
    """Det → (angle cls) → rec over one upright candidate, with budget accounting."""

    def __init__(self, eng: Any, budget: OcrBudget | None) -> None:
        self.eng = eng
        self.budget = budget
        self.seconds = 0.0
        self.out_of_budget = False

    def _spend(self, t0: float) -> None:
        dt = time.perf_counter() - t0
        self.seconds += dt
        if self.budget is not None:
            self.budget.charge(dt)

    def _may_run(self) -> bool:
        if self.budget is not None and self.budget.exhausted:
            self.out_of_budget = True
            return False
        return True

    def detect(self, bgr: np.ndarray) -> list[Any]:
        if not self._may_run():
            return []
        t0 = time.perf_counter()
        try:
            boxes, _ = self.eng.text_det(bgr)
        finally:
            self._spend(t0)
        if boxes is None or len(boxes) == 0:
            return []
        return list(self.eng.sorted_boxes(boxes))

    def upside_down(self, bgr: np.ndarray, boxes: list[Any]) -> bool:
        """The angle classifier's verdict over the longest boxes (up to 8)."""
        if not boxes or not self._may_run():
            return False
        import numpy as np

        longest = sorted(boxes, key=lambda b: -float(np.linalg.norm(b[0] - b[1])))[:8]
        t0 = time.perf_counter()
        try:
            crops = self.eng.get_crop_img_list(bgr, longest)
            _, cls_res, _ = self.eng.text_cls(crops)
        finally:
            self._spend(t0)
        votes = [(lab, sc) for lab, sc in cls_res if sc >= 0.9]
        return bool(votes) and sum(1 for lab, _ in votes if "180" in lab) * 2 > len(votes)

    def recognise(self, bgr: np.ndarray, boxes: list[Any]) -> list[_Box]:
        if not boxes or not self._may_run():
            return []
        t0 = time.perf_counter()
        try:
            crops = self.eng.get_crop_img_list(bgr, boxes)
            crops, _, _ = self.eng.text_cls(crops)  # per-line 180° fix, as RapidOCR does
            rec = _rec_lines(self.eng.text_rec, crops)
        finally:
            self._spend(t0)
        out = []
        for box, r in zip(boxes, rec, strict=False):
            text, score = str(r[0]).strip(), float(r[1])
            if text and score >= MIN_SCORE:
                xs, ys = box[:, 0], box[:, 1]
                out.append(_Box(float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()), text, score))
        return out


#: Width in pixels a line is padded to before the recogniser reads it (RapidOCR pads every line
#: to 320, about 6.7 characters at the model's 48 px height, and each batch of 6 lines to its
#: widest). The model's cost grows with its input's width (9 ms at 48 px, 26 at 160, 51 at 320,
#: one thread): a band of short labels (kcachegrind's screenshot: 59 boxes, most of 1-4
#: characters) paid 320 px for each. Padded to 160, the marking lines of the 53 bench pages
#: (ocr_bench `--hard` and the two viewer screenshots) read the same text, confidence +0.006 on
#: average (min -0.018, max +0.05; all ≥ 0.89). Their crops are all wider than 160 px, so a
#: lower floor (96 saved another 1.0 s of 13 on the /usr/share/doc images) is left untested.
REC_MIN_WIDTH = 160


def _rec_lines(rec: Any, crops: list[Any]) -> list[tuple[str, float]]:
    """RapidOCR's recogniser (`TextRecognizer`: its resize, model and CTC decoding) over line
    crops one at a time, each padded to `REC_MIN_WIDTH`: a batch costs more than its lines alone
    (6 lines 48×320: 430 ms in one call, 6 × 52 ms one by one on this machine), and a short line
    is not padded to a long neighbour's width."""
    import numpy as np

    height = int(rec.rec_image_shape[1])
    out = []
    for crop in crops:
        h, w = crop.shape[:2]
        ratio = max(w / max(h, 1), REC_MIN_WIDTH / height)
        x = rec.resize_norm_img(crop, ratio)[np.newaxis].astype(np.float32)
        text, score = rec.postprocess_op(rec.session(x)[0], False)[0][:2]
        out.append((str(text), float(score)))
    return out


def _aspect(box: Any) -> float:
    import numpy as np

    return float(np.linalg.norm(box[0] - box[1])) / max(1.0, float(np.linalg.norm(box[0] - box[3])))


def _shape_evidence(boxes: list[Any]) -> tuple[float, float]:
    """(wide, tall): total length of boxes clearly lying (w ≥ 2h) and clearly standing (h ≥ 2w).
    Squarish boxes (single characters, line ends of a page turned by 90°) say nothing."""
    import numpy as np

    tall = wide = 0.0
    for b in boxes:
        w = float(np.linalg.norm(b[0] - b[1]))
        h = float(np.linalg.norm(b[0] - b[3]))
        if h >= 2 * w:
            tall += h
        elif w >= 2 * h:
            wide += w
    return wide, tall


def _group_lines(boxes: list[_Box]) -> list[list[_Box]]:
    """Boxes into lines by vertical overlap, top to bottom, each left to right."""
    lines: list[list[_Box]] = []
    for b in sorted(boxes, key=lambda b: ((b.y0 + b.y1) / 2, b.x0)):
        if lines:
            ref = lines[-1][0]
            mid = (b.y0 + b.y1) / 2
            if abs(mid - (ref.y0 + ref.y1) / 2) <= 0.5 * max(ref.h, b.h, 1.0):
                lines[-1].append(b)
                continue
        lines.append([b])
    for ln in lines:
        ln.sort(key=lambda b: b.x0)
    return lines


#: Boxes on one row further apart than this many line heights are separate elements (a page
#: header's left and right parts, a table's cells, a form's fields), each a line of its own:
#: words within a line, even spaced out (`秘　密`, `机 密 ★ 10 年`), stand about one apart.
SPLIT_GAP = 2.5


def _split_row(row: list[_Box]) -> list[list[_Box]]:
    parts = [[row[0]]]
    for prev, b in itertools.pairwise(row):
        if b.x0 - prev.x1 > SPLIT_GAP * max(b.h, prev.h, 1.0):
            parts.append([b])
        else:
            parts[-1].append(b)
    return parts


def _to_lines(boxes: list[_Box], width: int, height: int) -> tuple[OcrLine, ...]:
    out = []
    for ln in (part for row in _group_lines(boxes) for part in _split_row(row)):
        text = ln[0].text
        for prev, b in itertools.pairwise(ln):
            text += (" " if b.x0 - prev.x1 > 0.3 * max(b.h, prev.h) else "") + b.text
        out.append(OcrLine(
            text=text,
            left=min(b.x0 for b in ln) / width, top=min(b.y0 for b in ln) / height,
            right=max(b.x1 for b in ln) / width, bottom=max(b.y1 for b in ln) / height,
            score=sum(b.score for b in ln) / len(ln)))
    return tuple(out)


def _turn(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """The image turned `rotation` degrees clockwise, as a contiguous BGR array for the model."""
    import numpy as np

    a = np.rot90(rgb, k=-(rotation // 90)) if rotation else rgb
    return np.ascontiguousarray(a[:, :, ::-1])


#: The top band is never less than this many pixels (a few lines): a small image (a cropped
#: header, a screenshot of one line) is read whole.
MIN_BAND_PX = 160


def _band(bgr: np.ndarray, share: float = TOP_BAND) -> np.ndarray:
    h = bgr.shape[0]
    return bgr[: max(MIN_BAND_PX, round(h * share))]


#: The band holds the first lines of text (份号, marking, urgency; or a page header): when the
#: top `TOP_BAND` shows fewer rows of text than this — a screenshot's menu and toolbar above the
#: page, a slide's title, a page with a tall letterhead — `auto` reads down to `WIDE_BAND`.
MIN_BAND_ROWS = 4
WIDE_BAND = 0.5


def _row_groups(boxes: list[Any]) -> list[list[int]]:
    """Indices of detected boxes by rows of text (vertical overlap, as `_group_lines`), top down."""
    spans = [_Box(0.0, float(b[:, 1].min()), 1.0, float(b[:, 1].max())) for b in boxes]
    index = {id(x): i for i, x in enumerate(spans)}
    return [[index[id(x)] for x in row] for row in _group_lines(spans)]


def _rows(boxes: list[Any]) -> int:
    """Rows of text among detected boxes."""
    return len(_row_groups(boxes))


#: In `auto`, at most this many rows of text (top down) are recognised. The marking stands in the
#: first rows of a page's text: in all 51 pages of bench/ocr_bench.py (with `--hard`) it is in the
#: first or second row read, below a viewer's menu and toolbar the fourth; a word processor's
#: ribbon (title, tabs, two rows of labelled buttons, group names, ruler) puts six rows above the
#: page, whose 份号, page header and marking follow (tests/scanner/test_ocr_cost.py: the marking in
#: the eighth row; a cap of 7 loses it). Beyond that a band is a diagram, a code listing or a
#: table, where every row costs ~50-200 ms to read: valgrind's dh-tree.png has 25 rows in its
#: band, 34 boxes were recognised in 4.8 s of its 5.5 s; its first 12 rows, 15 boxes, 1.1 s.
MAX_AUTO_ROWS = 12
#: The least gap between rows of boxes where the strip `_detect_more` detects again may begin.
_STRIP_GAP = 8


def _detect_more(rd: _Reader, bgr: np.ndarray, boxes: list[Any], old_h: int, new_h: int) -> list[Any]:
    """The boxes of `bgr[:new_h]`, given `boxes` detected over `bgr[:old_h]`: only a strip from a
    blank gap above every box the old edge cuts is detected again (the detector's cost is
    proportional to its pixels: widening a chart's band to `WIDE_BAND` and reading its cut lines
    whole detected 130 % of the band's pixels, 1.6-2.3 s on nodejs' plots, instead of ~60 %)."""
    import numpy as np

    # a line the old edge cuts through its middle may have gone undetected: the strip reaches up
    # a line height above the edge (the tallest box seen, at least 32 px), then to the middle of
    # the gap between rows there (no box crosses it: those above are kept, the text below is in
    # the strip whole)
    tallest = max((float(b[:, 1].max() - b[:, 1].min()) for b in boxes), default=0.0)
    limit = old_h - 3 - max(32.0, tallest)
    spans = sorted((float(b[:, 1].min()), float(b[:, 1].max())) for b in boxes)
    start, low = 0, 0.0  # `low`: the bottom of the rows above
    for y0, y1 in [*spans, (float(old_h), float(old_h))]:
        if low + _STRIP_GAP / 2 > limit:
            break
        at = min(limit, y0 - _STRIP_GAP / 2)  # the lowest point of this gap that will do
        if at >= low + _STRIP_GAP / 2:
            start = int(at)
        low = max(low, y1)
    if start <= 0:
        return rd.detect(bgr[:new_h])
    above = [b for b in boxes if float(b[:, 1].max()) <= start]
    # a box of the strip may touch its top edge (the detector's box reaches a few pixels above
    # the glyphs): its text lies below the gap, so it is none of the boxes above
    return above + [b + np.array([0.0, start], dtype=b.dtype) for b in rd.detect(bgr[start:new_h])]


def _uncut(rd: _Reader, bgr: np.ndarray, band: np.ndarray, boxes: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """Lines the band's lower edge cuts through are read whole: the band is extended once by a
    few line heights and detected again (the strip below the rows it does not cut); lines still
    cut by the new edge are left out (they lie below the band, and half a line is not faithful
    text)."""
    edge = band.shape[0] - 3
    cut = [b for b in boxes if float(b[:, 1].max()) >= edge]
    if not cut or band.shape[0] >= bgr.shape[0]:
        return band, boxes
    line_h = max(float(b[:, 1].max() - b[:, 1].min()) for b in cut)
    old_h = band.shape[0]
    band = bgr[: min(bgr.shape[0], old_h + int(3 * line_h) + 8)]
    boxes = _detect_more(rd, bgr, boxes, old_h, band.shape[0])
    if band.shape[0] < bgr.shape[0]:
        boxes = [b for b in boxes if float(b[:, 1].max()) < band.shape[0] - 3]
    return band, boxes


def _first_rows(boxes: list[Any], n: int) -> list[Any]:
    """The boxes of the first `n` rows of text, in their order."""
    rows = _row_groups(boxes)
    if len(rows) <= n:
        return boxes
    keep = {i for row in rows[:n] for i in row}
    return [b for i, b in enumerate(boxes) if i in keep]


def ocr_array(rgb: np.ndarray, *, mode: OcrMode | str = OcrMode.AUTO,
              budget: OcrBudget | None = None) -> OcrResult:
    """Read an RGB page image (H×W×3 uint8, at most `MAX_SIDE` px is sensible): orientation from
    the top band, then the top band (`auto`) or the whole page (`full`)."""
    mode = OcrMode.parse(mode)
    if mode is OcrMode.OFF:
        return OcrResult(skipped="off")
    if budget is not None and budget.exhausted:
        return OcrResult(skipped="budget")
    eng = _get_engine()
    if eng is None:
        return OcrResult(skipped="unavailable")
    rd = _Reader(eng, budget)
    top, bottom, left, right = _content_box(rgb)
    rgb = rgb[top:bottom, left:right]

    # Orientation: upright first. Lines lying flat and not upside down (the angle classifier's
    # verdict) accept a turn; standing boxes mean a quarter turn; an upright band with no flat
    # text (empty, or only squarish boxes) has every other turn tried, the most flat text wins.
    chosen: tuple[int, np.ndarray, list[Any]] | None = None
    best: tuple[float, int, np.ndarray, list[Any]] | None = None  # (evidence, rot, page, boxes)
    exhaustive = False
    tried: set[int] = set()
    queue = [0]
    while queue and not rd.out_of_budget:
        rot = queue.pop(0)
        if rot in tried:
            continue
        tried.add(rot)
        bgr = _turn(rgb, rot)
        band = _band(bgr)
        boxes = rd.detect(band)
        wide, tall = _shape_evidence(boxes)
        if tall > wide:
            # The model turns standing crops a quarter counter-clockwise before reading them: if
            # the angle classifier then finds them upright, the page wants a turn of 270°.
            quarter = [(rot + 270) % 360, (rot + 90) % 360]
            if rd.upside_down(band, boxes):
                quarter.reverse()
            queue = [*quarter, *queue]
        elif wide > 0 and rd.upside_down(band, boxes):
            queue.insert(0, (rot + 180) % 360)
        elif wide > 0:
            if not exhaustive:
                chosen = (rot, bgr, boxes)
                break
            if best is None or wide > best[0]:
                best = (wide, rot, bgr, boxes)
        else:
            if boxes and (best is None or best[0] == 0 and len(boxes) > len(best[3])):
                best = (0.0, rot, bgr, boxes)
            if rot == 0:
                exhaustive = True
                queue += [180, 90, 270]
    if chosen is None and best is not None:
        chosen = best[1:]
    if chosen is None:
        return OcrResult(skipped="budget" if rd.out_of_budget else None, seconds=rd.seconds)
    rot, bgr, boxes = chosen
    h, w = bgr.shape[:2]
    if mode is OcrMode.FULL:
        boxes = rd.detect(bgr)
        found = rd.recognise(bgr, boxes)
    else:
        band = _band(bgr)
        if _rows(boxes) < MIN_BAND_ROWS and band.shape[0] < h:
            widened = _band(bgr, WIDE_BAND)
            boxes = _detect_more(rd, bgr, boxes, band.shape[0], widened.shape[0])
            band = widened
        # rows beyond `MAX_AUTO_ROWS` are not read: nor are lines the band's edge cuts among them
        boxes = _first_rows(boxes, MAX_AUTO_ROWS)
        band, boxes = _uncut(rd, bgr, band, boxes)
        boxes = _first_rows(boxes, MAX_AUTO_ROWS)  # the lines read whole may add a row
        found = rd.recognise(band, [b for b in boxes if _aspect(b) <= MAX_AUTO_ASPECT])
    return OcrResult(lines=_to_lines(found, w, h), rotation=rot, full=mode is OcrMode.FULL,
                     skipped="budget" if rd.out_of_budget else None, seconds=rd.seconds)


def _fit(im: Image.Image) -> np.ndarray:
    """RGB array with the longer side at most `MAX_SIDE` (grey, palette, alpha, CMYK, 16-bit
    flattened onto white)."""
    import numpy as np
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, rgba)
    elif im.mode.startswith("I") or im.mode == "F":  # 16/32-bit grey scans
        a = np.asarray(im, dtype=np.float64)
        top = float(a.max()) or 1.0
        im = Image.fromarray((a * (255.0 / top)).astype(np.uint8))
    w, h = im.size
    scale = MAX_SIDE / max(w, h)
    if im.mode == "1" and scale >= 1:
        # A bilevel page (fax, 1-bit scan) read at its own size: its staircase edges softened, as
        # the recogniser knows them (sweep: a 1-bit `绝密` box read below the confidence floor).
        from PIL import ImageFilter

        im = im.convert("L").filter(ImageFilter.GaussianBlur(0.7))
    if scale < 1:
        im = im.convert("RGB")
        im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    else:
        im = im.convert("RGB")
    return np.asarray(im)


def iter_frames(data: bytes, max_frames: int = MAX_FRAMES) -> Iterator[Image.Image]:
    """The page images in `data` (several for a multi-page TIFF), EXIF orientation applied."""
    from PIL import Image, ImageOps

    im = Image.open(io.BytesIO(data))
    n = int(getattr(im, "n_frames", 1) or 1)
    if im.format == "JPEG" and max(im.size) > 2 * MAX_SIDE:
        # DCT scaling while decoding: a 12 MP photo decodes at 1/2 or 1/4 size, ~4× faster
        w, h = im.size
        scale = MAX_SIDE / max(w, h)
        im.draft("RGB", (int(w * scale) + 1, int(h * scale) + 1))
    for i in range(min(n, max_frames)):
        if i:
            im.seek(i)
        frame = im if n == 1 else im.copy()
        with contextlib.suppress(Exception):  # a broken EXIF block: read the pixels as stored
            frame = ImageOps.exif_transpose(frame) or frame
        yield _square_pixels(frame)


def _square_pixels(frame: Image.Image) -> Image.Image:
    """A page whose pixels are not square (a fax at 204×98 dpi: characters squashed to half
    their height) stretched to square pixels, which the recogniser was trained on."""
    dpi = frame.info.get("dpi")
    try:
        dx, dy = float(dpi[0]), float(dpi[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return frame
    if not (dx > 0 and dy > 0) or 0.8 <= dx / dy <= 1.25:
        return frame
    w, h = frame.size
    size = (w, round(h * dx / dy)) if dx > dy else (round(w * dy / dx), h)
    if size[0] * size[1] > MAX_PIXELS:
        return frame
    from PIL import Image

    src = frame if frame.mode in ("1", "L", "RGB", "RGBA", "LA", "P") else frame.convert("RGB")
    return src.convert("L" if src.mode == "1" else src.mode).resize(size, Image.Resampling.BILINEAR)


def ocr_image(data: bytes, *, mode: OcrMode | str = OcrMode.AUTO, budget: OcrBudget | None = None,
              precheck: bool = True) -> list[OcrResult]:
    """Read an image file's bytes: one `OcrResult` per page (frame). With `precheck`, images that
    cannot be documents are skipped before any pixel beyond a thumbnail is decoded."""
    mode = OcrMode.parse(mode)
    if mode is OcrMode.OFF:
        return [OcrResult(skipped="off")]
    if precheck:
        why = looks_like_document(data)
        if why is not None:
            return [OcrResult(skipped=why)]
    if not available():  # a page image that cannot be read here: reported, never clean
        return [OcrResult(skipped="unavailable")]
    results = []
    try:
        for frame in iter_frames(data):
            if budget is not None and budget.exhausted:
                results.append(OcrResult(skipped="budget"))
                break
            results.append(ocr_array(_fit(frame), mode=mode, budget=budget))
    except Exception as exc:  # noqa: BLE001 - a truncated or hostile file: what was read stands
        results.append(OcrResult(skipped=_unreadable(exc)))
    return results


def ocr_pdf_page(page: Any, *, mode: OcrMode | str = OcrMode.AUTO, budget: OcrBudget | None = None,
                 dpi: int = PDF_DPI) -> OcrResult:
    """Read a page of a PDF that has no text layer (a `pypdfium2.PdfPage`).

    Renders the whole page as displayed (its /Rotate honoured) at `dpi`, capped so that the
    longer side is at most `MAX_SIDE` px (decoding the page's scan dominates; rendering only the
    band would save little and lose the orientation search), then reads it like an image: top
    band in `auto`, whole page in `full`. No document pre-check: a page is a document.

    How `scanner/extractors/pdf.py` calls it, in `_pages`, for a page with images and no text
    lines (before `page.close()`), instead of remembering it as image-only::

        from scanner import ocr
        settings = ocr.settings_for(ctx)  # once per document
        ...
        res = ocr.ocr_pdf_page(page, mode=settings.mode, budget=settings.budget)
        yield from ocr.result_items(res, where, f"image-only page {num}", unread_is_error=True)

    which yields the page's line segments (`member=where`), or `timeout` when the scan's OCR
    budget is spent, or `unsupported` ("… (no text layer; OCR off)") when OCR is off or not
    installed — today's error, so nothing is silently clean.
    """
    mode = OcrMode.parse(mode)
    if mode is OcrMode.OFF:
        return OcrResult(skipped="off")
    if not available():
        return OcrResult(skipped="unavailable")
    if budget is not None and budget.exhausted:
        return OcrResult(skipped="budget")
    try:
        w, h = page.get_size()
        scale = min(dpi / 72.0, MAX_SIDE / max(w, h, 1.0))
        bitmap = page.render(scale=scale, grayscale=False)
        try:
            im = bitmap.to_pil()
            rgb = _fit(im)
        finally:
            bitmap.close()
    except Exception as exc:  # noqa: BLE001 - PDFium/Pillow errors on a hostile page
        return OcrResult(skipped=_unreadable(exc))
    return ocr_array(rgb, mode=mode, budget=budget)


def to_segments(result: OcrResult, member: str | None) -> Iterable[Segment]:
    """One standalone segment per line: role `header` in the top band, `footer` in the bottom
    band of a fully read page, else `body`; `index` = line order from the top."""
    for idx, ln in enumerate(result.lines):
        role = "body"
        if ln.top < TOP_BAND:
            role = "header"
        elif result.full and ln.bottom > 1 - BOTTOM_BAND:
            role = "footer"
        yield Segment(ln.text, member, role=role, standalone=True, index=idx)


def settings_for(ctx: Any) -> OcrSettings:
    """The scan's OCR settings: the context's `ocr` attribute once the engine passes
    `OcrSettings` down (ScanConfig → Context), else the environment's (`settings_from_env`)."""
    given = getattr(ctx, "ocr", None)
    return given if isinstance(given, OcrSettings) else settings_from_env()


def result_items(result: OcrResult, where: str | None, what: str, *,
                 unread_is_error: bool) -> Iterator[Segment | ScanError]:
    """What an extractor yields for one OCR'd page: its line segments, or an error record when
    a page that should have been read was not. `what` names the page in details (`image`,
    `image-only page 3`). Pages the pre-check skipped (`small`, `not_document`) yield nothing;
    with `unread_is_error`, OCR off or not installed is `unsupported` (a PDF page without text
    is a document; an image file may be anything)."""
    yield from to_segments(result, where)
    why = result.skipped
    if why is None or why in ("small", "not_document"):
        return
    if why == "budget":
        yield ScanError(ErrorCode.TIMEOUT, f"{what} not read: the scan's OCR budget is spent", where)
    elif why == "too_large":
        yield ScanError(ErrorCode.TOO_LARGE, f"{what}: above {MAX_PIXELS} pixels, not read", where)
    elif why.startswith("unreadable"):
        yield ScanError(ErrorCode.CORRUPT, f"{what}: {why}", where)
    elif why.startswith("bomb"):
        yield ScanError(ErrorCode.BOMB, f"{what}: {why}", where)
    elif unread_is_error:
        detail = "OCR off" if why == "off" else f"OCR not available: {engine_error() or 'not installed'}"
        yield ScanError(ErrorCode.UNSUPPORTED, f"{what} (no text layer; {detail})", where)
