"""OCR of page images: generated 公文 heads (rotated, skewed, JPEG, red, grey), the cost-control
skips, the image extractor end to end, and the image family of the public corpus.

The page generators here are also used by bench/ocr_bench.py.
"""
from __future__ import annotations

import io
import random
import re
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from scanner import ocr
from scanner.extractors.base import Budget, Context, Limits
from scanner.model import ErrorCode, Kind, Level, ScanError, Segment
from scanner.normalize import normalize
from tests.conftest import need_shared

FONT_PATHS = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)
BODY = ("为深入贯彻落实上级有关工作部署，进一步加强和改进机关日常管理，经研究，现将有关事项通知如下。"
        "各单位要高度重视，结合实际认真组织实施，确保各项任务按期完成。")


# -- generators (shared with bench/ocr_bench.py) ------------------------------------------------
def cjk_font() -> str | None:
    return next((p for p in FONT_PATHS if Path(p).exists()), None)


def render_page(marking: str, *, width: int = 900, red: bool = False, seed: int = 0,
                body_lines: int = 12, footer: str | None = None) -> Image.Image:
    """An A4-proportioned page laid out like a 公文 (GB/T 9704): 份号, the marking, urgency,
    the issuing authority in red, 发文字号, a red rule, the title and a body."""
    font_path = cjk_font()
    if font_path is None:
        pytest.skip("no CJK font (install fonts-wqy-zenhei)")
    rng = random.Random(seed)
    h = int(width * 1.414)
    img = Image.new("RGB", (width, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    unit = width // 30  # ~3号 on A4
    f = ImageFont.truetype(font_path, unit)
    big = ImageFont.truetype(font_path, int(unit * 1.9))
    x, y = int(width * 0.13), int(h * 0.09)
    ink = (0, 0, 0)
    d.text((x, y), f"{rng.randrange(1, 999999):06d}", font=f, fill=ink)
    y += int(unit * 1.6)
    d.text((x, y), marking, font=f, fill=(200, 20, 20) if red else ink)
    y += int(unit * 1.6)
    d.text((x, y), "特急", font=f, fill=ink)
    y += int(unit * 2.2)
    title = "北河省人民政府办公厅文件"
    d.text(((width - d.textlength(title, font=big)) / 2, y), title, font=big, fill=(210, 0, 0))
    y += int(unit * 3)
    ref = f"北政办发〔20{rng.randrange(10, 30)}〕{rng.randrange(1, 99)}号"
    d.text(((width - d.textlength(ref, font=f)) / 2, y), ref, font=f, fill=ink)
    y += int(unit * 1.4)
    d.line((x, y, width - x, y), fill=(210, 0, 0), width=3)
    y += int(unit * 1.5)
    t2 = "关于进一步加强机关日常管理工作的通知"
    d.text(((width - d.textlength(t2, font=f)) / 2, y), t2, font=f, fill=ink)
    y += int(unit * 2.2)
    per = int((width - 2 * x) / unit)
    text = BODY * 4
    for i in range(body_lines):
        if y > h - 4 * unit:
            break
        d.text((x, y), text[i * per:(i + 1) * per], font=f, fill=ink)
        y += int(unit * 1.7)
    if footer:
        d.text(((width - d.textlength(footer, font=f)) / 2, h - int(unit * 2.5)), footer, font=f, fill=ink)
    return img


def degrade(img: Image.Image, *, rotate: int = 0, skew: float = 0.0, jpeg: int | None = None,
            gray: bool = False, noise: float = 0.0, seed: int = 0) -> bytes:
    """Skew by a few degrees, add scanner speckle and blur, turn by `rotate` degrees clockwise,
    encode as PNG or JPEG at quality `jpeg`."""
    if skew:
        img = img.rotate(skew, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))
    if noise:
        rng = random.Random(seed)
        px = img.load()
        w, h = img.size
        for _ in range(int(w * h * noise)):
            v = rng.randrange(0, 256)
            px[rng.randrange(w), rng.randrange(h)] = (v, v, v)  # type: ignore[index]
        img = img.filter(ImageFilter.GaussianBlur(0.6))
    if rotate:
        img = img.rotate(-rotate, expand=True)
    if gray:
        img = img.convert("L")
    out = io.BytesIO()
    if jpeg:
        img.save(out, "JPEG", quality=jpeg)
    else:
        img.save(out, "PNG")
    return out.getvalue()


def phone_photo(page: Image.Image, *, seed: int = 0, size: tuple[int, int] = (1200, 1600),
                quality: int = 75) -> bytes:
    """The page photographed on a desk: smaller than the frame, off-centre, in perspective, lit
    unevenly (warm light falling off), slightly out of focus, JPEG-compressed."""
    import numpy as np

    rng = random.Random(seed)
    w, h = size
    bg = (rng.randrange(40, 110), rng.randrange(30, 90), rng.randrange(20, 70))
    canvas = Image.new("RGB", size, bg)
    scale = rng.uniform(0.65, 0.85) * min(w / page.width, h / page.height)
    pw, ph = int(page.width * scale), int(page.height * scale)
    canvas.paste(page.convert("RGB").resize((pw, ph), Image.Resampling.LANCZOS),
                 ((w - pw) // 2 + rng.randint(-w // 20, w // 20), (h - ph) // 2 + rng.randint(-h // 20, h // 20)))
    d = 0.05 * w
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    dst = [(rng.uniform(0, d), rng.uniform(0, d)), (w - rng.uniform(0, d), rng.uniform(0, d)),
           (w - rng.uniform(0, d), h - rng.uniform(0, d)), (rng.uniform(0, d), h - rng.uniform(0, d))]
    rows = []
    for (x, y), (u, v) in zip(dst, src, strict=True):  # the homography taking dst to src
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
    coeffs = np.linalg.solve(np.array(rows, dtype=float), np.array(src, dtype=float).reshape(8))
    canvas = canvas.transform(size, Image.Transform.PERSPECTIVE, tuple(coeffs), Image.Resampling.BICUBIC,
                              fillcolor=bg)
    a = np.asarray(canvas).astype(np.float32)
    a *= np.linspace(rng.uniform(0.6, 0.8), 1.0, w)[None, :, None]
    a *= np.linspace(1.0, rng.uniform(0.7, 0.9), h)[:, None, None]
    a *= np.array([1.0, 0.95, 0.85])
    img = Image.fromarray(a.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def unevenly_lit(img: Image.Image, *, seed: int = 0, strength: float = 0.55, quality: int = 75) -> bytes:
    """The page under uneven light: darkening towards the corners from an off-centre spot (a lamp,
    vignetting) and a soft vertical shadow band (a hand, the camera), as JPEG."""
    import numpy as np

    rng = random.Random(seed)
    a = np.asarray(img.convert("RGB")).astype(np.float32)
    h, w = a.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((xx - w * rng.uniform(0.3, 0.7)) / w, (yy - h * rng.uniform(0.3, 0.7)) / h)
    a *= (1 - strength * np.clip(r / 0.8, 0, 1) ** 2)[..., None]
    a *= (1 - 0.35 * np.exp(-((xx - rng.uniform(0, w)) / (0.12 * w)) ** 2))[..., None]
    out = io.BytesIO()
    Image.fromarray(a.clip(0, 255).astype(np.uint8)).save(out, "JPEG", quality=quality)
    return out.getvalue()


def slide(marking: str, *, size: tuple[int, int] = (1024, 768), bg: tuple[int, int, int] = (20, 50, 100),
          mark_ink: tuple[int, int, int] = (220, 30, 30)) -> Image.Image:
    """A landscape slide on a dark background: a small red marking at the top left, a big title,
    a few bullets in white."""
    font_path = cjk_font()
    if font_path is None:
        pytest.skip("no CJK font (install fonts-wqy-zenhei)")
    w, h = size
    img = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(img)
    d.text((int(w * 0.05), int(h * 0.04)), marking, font=ImageFont.truetype(font_path, int(h * 0.035)), fill=mark_ink)
    d.text((int(w * 0.1), int(h * 0.2)), "2026年度重点工作汇报", font=ImageFont.truetype(font_path, int(h * 0.08)),
           fill="white")
    f = ImageFont.truetype(font_path, int(h * 0.045))
    for k in range(4):
        d.text((int(w * 0.12), int(h * (0.4 + k * 0.1))), f"第{k + 1}项：推进情况与下一步安排", font=f, fill="white")
    return img


def viewer_screenshot(page: Image.Image, *, size: tuple[int, int] = (1366, 768), dark: bool = True) -> bytes:
    """A screenshot of `page` open in a document viewer, zoomed to the window's width: menu bar,
    toolbar, a sidebar of page thumbnails and a status bar around the top of the page (PNG)."""
    font_path = cjk_font()
    if font_path is None:
        pytest.skip("no CJK font (install fonts-wqy-zenhei)")
    w, h = size
    ui, fg = ((45, 45, 48), (220, 220, 220)) if dark else ((230, 230, 232), (30, 30, 30))
    img = Image.new("RGB", size, ui)
    d = ImageDraw.Draw(img)
    f = ImageFont.truetype(font_path, 14)
    d.text((12, 8), "文件(F)  编辑(E)  视图(V)  注释(C)  窗口(W)  帮助(H)", font=f, fill=fg)
    for i in range(14):
        d.rounded_rectangle((12 + i * 40, 40, 40 + i * 40, 64), 4, outline=fg)
    d.text((w - 260, 46), "100%   第 1 页 / 共 3 页", font=f, fill=fg)
    for i in range(4):
        d.rectangle((50, 90 + i * 170, 170, 250 + i * 170), fill=(250, 250, 250), outline=(120, 120, 120))
    scale = (w - 300) / page.width
    shown = page.convert("RGB").resize((w - 300, int(page.height * scale)), Image.Resampling.LANCZOS)
    img.paste(shown.crop((0, 0, shown.width, h - 116)), (260, 92))
    d.rectangle((0, h - 24, w, h), fill=(0, 90, 160))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def photo_like(seed: int, size: tuple[int, int] = (800, 600), quality: int = 85) -> bytes:
    """A photo-like JPEG without text: smooth colour fields, blurred blobs, sensor noise."""
    rng = random.Random(seed)
    w, h = size
    small = Image.new("RGB", (8, 6))
    small.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(48)])
    img = small.resize((w, h), Image.Resampling.BICUBIC)
    d = ImageDraw.Draw(img)
    for _ in range(rng.randrange(3, 12)):
        cx, cy, r = rng.randrange(w), rng.randrange(h), rng.randrange(20, 200)
        d.ellipse((cx - r, cy - r, cx + r, cy + r),
                  fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(1, 6)))
    noise = Image.effect_noise((w, h), rng.uniform(5, 25)).convert("RGB")
    img = Image.blend(img, noise, 0.15)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def with_exif_thumbnail(jpeg: bytes) -> bytes:
    """The JPEG with an EXIF APP1 segment holding a 160×120 thumbnail, as a camera writes it."""
    im = Image.open(io.BytesIO(jpeg))
    im.thumbnail((160, 120))
    tb = io.BytesIO()
    im.save(tb, "JPEG", quality=75)
    thumb = tb.getvalue()
    # TIFF little-endian: IFD0 with no entries → IFD1 with JPEGInterchangeFormat(+Length).
    ifd1_off = 8 + 2 + 4
    data_off = ifd1_off + 2 + 2 * 12 + 4
    tiff = (b"II*\x00" + (8).to_bytes(4, "little") + b"\x00\x00" + ifd1_off.to_bytes(4, "little")
            + (2).to_bytes(2, "little")
            + (0x0201).to_bytes(2, "little") + (4).to_bytes(2, "little") + (1).to_bytes(4, "little")
            + data_off.to_bytes(4, "little")
            + (0x0202).to_bytes(2, "little") + (4).to_bytes(2, "little") + (1).to_bytes(4, "little")
            + len(thumb).to_bytes(4, "little")
            + b"\x00\x00\x00\x00" + thumb)
    app1 = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + jpeg[2:]


def squash(text: str) -> str:
    return re.sub(r"\s+", "", normalize(text))


def ocr_text(results: list[ocr.OcrResult]) -> str:
    return "\n".join(ln.text for r in results for ln in r.lines)


needs_engine = pytest.mark.skipif(not ocr.available(), reason="rapidocr-onnxruntime is not installed")


def _ctx(settings: ocr.OcrSettings | None = None, member: str | None = None) -> Context:
    ctx = Context(member=member, depth=0, mime="image/png", limits=Limits(), budget=Budget(Limits()))
    if settings is not None:
        ctx.ocr = settings  # type: ignore[attr-defined]
    return ctx


# -- generated pages -----------------------------------------------------------------------------
@needs_engine
@pytest.mark.parametrize(("marking", "kw"), [
    ("秘密★10个月", {}),
    ("绝密★2041年8月8日", {"rotate": 90}),
    ("机密★5年", {"rotate": 180, "jpeg": 40}),
    ("機密★10年", {"rotate": 270, "skew": 2.5, "gray": True, "noise": 0.002}),
    ("秘密★项目验收后解密", {"skew": -3, "jpeg": 30, "red": True}),
], ids=["upright", "rot90", "rot180-jpeg", "rot270-skew-grey-trad", "skew-jpeg-red"])
def test_generated_marking_read(marking: str, kw: dict) -> None:
    red = kw.pop("red", False)
    data = degrade(render_page(marking, width=700, red=red, body_lines=4), **kw)
    res = ocr.ocr_image(data, mode="auto")
    assert len(res) == 1 and res[0].skipped is None, res
    assert squash(marking) in squash(ocr_text(res)), ocr_text(res)
    assert res[0].rotation == (360 - kw.get("rotate", 0)) % 360  # turned back clockwise
    first = next(ln for ln in res[0].lines if squash(marking) in squash(ln.text))
    assert first.top < ocr.TOP_BAND


@needs_engine
@pytest.mark.parametrize("turn", [0, 90], ids=["portrait", "landscape-in-portrait-frame"])
def test_phone_photo_of_a_page_on_a_desk(turn: int) -> None:
    page = render_page("秘密★项目验收后解密", width=700, body_lines=6, seed=4).rotate(turn, expand=True)
    res = ocr.ocr_image(phone_photo(page, seed=11), mode="auto")
    assert squash("秘密★项目验收后解密") in squash(ocr_text(res)), ocr_text(res)


@needs_engine
def test_a_cropped_header_line_is_read_whole() -> None:
    font = cjk_font()
    if font is None:
        pytest.skip("no CJK font (install fonts-wqy-zenhei)")
    im = Image.new("RGB", (300, 60), "white")
    ImageDraw.Draw(im).text((10, 14), "机密★5年", font=ImageFont.truetype(font, 32), fill="black")
    buf = io.BytesIO()
    im.save(buf, "PNG")
    res = ocr.ocr_image(buf.getvalue(), mode="auto")
    assert [squash(ln.text) for ln in res[0].lines] == ["机密★5年"]


@needs_engine
def test_full_mode_reads_the_whole_page_and_marks_the_footer() -> None:
    data = degrade(render_page("机密", width=700, body_lines=3, footer="机密★1年"))
    auto = ocr.ocr_image(data, mode="auto")[0]
    full = ocr.ocr_image(data, mode="full")[0]
    assert full.full and not auto.full
    assert len(full.lines) > len(auto.lines)
    assert "机密★1年" not in squash(ocr_text([auto]))
    segs = list(ocr.to_segments(full, "x.png"))
    assert [s.index for s in segs] == list(range(len(segs)))
    assert all(s.standalone and s.member == "x.png" for s in segs)
    assert segs[0].role == "header" and segs[-1].role == "footer"
    assert "body" in {s.role for s in segs}


@needs_engine
def test_scanner_finds_the_marking_in_an_image(monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner.engine import Scanner

    data = degrade(render_page("绝密★30年", width=700, body_lines=4), jpeg=60)
    monkeypatch.setenv(ocr.ENV_MODE, "auto")
    ocr.reset_env_settings()
    try:
        findings, errors, mime = Scanner().scan_bytes(data, "scan.jpg")
        assert mime == "image/jpeg" and not errors
        marks = [f for f in findings if f.kind is Kind.MARKING]
        assert [(f.level, f.text) for f in marks] == [(Level.TOP_SECRET, "绝密★30年")]
        from scanner.config import ScanConfig

        assert Scanner(ScanConfig(ocr_mode="off")).scan_bytes(data, "scan.jpg")[:2] == ([], [])
    finally:
        ocr.reset_env_settings()


@needs_engine
def test_unevenly_lit_page_passes_the_precheck_and_is_read() -> None:
    """Vignetting and a shadow spread the paper over many grey levels (paper share below
    `MIN_PAPER`); the page's plentiful thin strokes still make it a document."""
    data = unevenly_lit(render_page("绝密★30年", width=800, body_lines=12, seed=5), seed=0)
    thumb = Image.open(io.BytesIO(data))
    thumb.draft("L", (128, 128))
    thumb = thumb.convert("L")
    thumb.thumbnail((128, 128))
    paper, ink = ocr._thumb_stats(thumb)
    assert ocr.DIM_PAPER <= paper < ocr.MIN_PAPER and ink >= ocr.DIM_INK  # the case this covers
    assert ocr.looks_like_document(data) is None
    res = ocr.ocr_image(data, mode="auto")
    assert "绝密★30年" in squash(ocr_text(res)), ocr_text(res)


def test_dim_photos_stay_skipped() -> None:
    """The second chance for dim pages wants five times the ink any photo-like image shows."""
    for seed in range(20, 25):
        data = photo_like(seed, (1024, 768))
        assert ocr.looks_like_document(data) == "not_document"
        assert ocr.looks_like_document(unevenly_lit(Image.open(io.BytesIO(data)), seed=seed)) == "not_document"


def test_boxes_far_apart_on_a_row_are_separate_lines() -> None:
    """A page header's left and right parts and a table row's cells are elements of their own; a
    spaced-out marking stays one line."""
    def box(x0: float, x1: float, text: str) -> ocr._Box:
        return ocr._Box(x0, 100, x1, 130, text, 0.99)

    header = [box(60, 400, "某某市发展和改革委员会"), box(900, 960, "绝密")]
    assert [ln.text for ln in ocr._to_lines(header, 1000, 1400)] == ["某某市发展和改革委员会", "绝密"]
    cells = [box(75, 190, "文件名称"), box(364, 525, "年度工作方案"), box(648, 705, "秘密")]
    assert [ln.text for ln in ocr._to_lines(cells, 1000, 1400)] == ["文件名称", "年度工作方案", "秘密"]
    spaced = [box(800, 830, "秘"), box(862, 892, "密")]  # `秘　密`: a full-width space between
    assert [ln.text for ln in ocr._to_lines(spaced, 1000, 1400)] == ["秘 密"]
    words = [box(100, 160, "机密"), box(165, 260, "★10年")]
    assert [ln.text for ln in ocr._to_lines(words, 1000, 1400)] == ["机密★10年"]


@needs_engine
def test_marking_at_the_right_of_a_page_header_line_is_its_own_line() -> None:
    font = cjk_font()
    if font is None:
        pytest.skip("no CJK font (install fonts-wqy-zenhei)")
    img = render_page("", width=800, body_lines=6, seed=3)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 800, 100), fill="white")
    f = ImageFont.truetype(font, 18)
    d.text((90, 40), "某某市发展和改革委员会", font=f, fill="black")
    d.text((650, 40), "机密★5年", font=f, fill="black")
    d.line((90, 66, 710, 66), fill="black", width=2)
    res = ocr.ocr_image(degrade(img), mode="auto")
    assert "机密★5年" in [squash(ln.text) for ln in res[0].lines], ocr_text(res)


@needs_engine
def test_red_marking_on_a_dark_slide() -> None:
    """Red on navy has no contrast in the darkest channel: the text area is found in the brightest."""
    assert ocr._paper(Image.new("L", (50, 50), 30).histogram())[1] is False  # light ink on dark
    out = io.BytesIO()
    slide("秘密★6个月").save(out, "JPEG", quality=80)
    res = ocr.ocr_image(out.getvalue(), mode="auto")
    assert "秘密★6个月" in [squash(ln.text) for ln in res[0].lines], ocr_text(res)


@needs_engine
@pytest.mark.parametrize("dark", [True, False], ids=["dark-ui", "light-ui"])
def test_screenshot_of_a_viewer_reads_below_the_window_chrome(dark: bool) -> None:
    """Menu and toolbar fill the top quarter; the band widens until it holds the page's first lines."""
    page = render_page("机密★2030年12月31日", width=800, body_lines=10, seed=6)
    res = ocr.ocr_image(viewer_screenshot(page, dark=dark), mode="auto")
    assert "机密★2030年12月31日" in squash(ocr_text(res)), ocr_text(res)


# -- cost control --------------------------------------------------------------------------------
def test_photo_and_icon_are_skipped_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr, "_get_engine", lambda: pytest.fail("the model must not run"))
    icon = io.BytesIO()
    Image.new("RGB", (64, 64), (30, 120, 200)).save(icon, "PNG")
    blank = io.BytesIO()
    Image.new("RGB", (1200, 1700), (255, 255, 255)).save(blank, "PNG")
    for data, why in [(photo_like(1), "not_document"), (photo_like(2, (1600, 1200)), "not_document"),
                      (icon.getvalue(), "small"), (blank.getvalue(), "not_document")]:
        t0 = time.perf_counter()
        res = ocr.ocr_image(data, mode="full")
        assert (time.perf_counter() - t0) < 0.2
        assert [r.skipped for r in res] == [why]


def test_corpus_negative_png_is_skipped() -> None:
    corpus = need_shared("corpus")
    data = (corpus / "N-binary" / "n-binary-0149.png").read_bytes()
    assert ocr.looks_like_document(data) is not None


def test_exif_thumbnail_decides_for_camera_photos(monkeypatch: pytest.MonkeyPatch) -> None:
    photo = with_exif_thumbnail(photo_like(3, (2400, 1800)))
    assert ocr._exif_thumbnail(photo_like(3)) is None
    thumb = ocr._exif_thumbnail(photo)
    assert thumb is not None and Image.open(io.BytesIO(thumb)).size == (160, 120)
    doc = with_exif_thumbnail(phone_photo(render_page("机密★5年", width=700), seed=1, size=(1800, 2400)))
    assert ocr.looks_like_document(doc) is None
    assert ocr.looks_like_document(photo) == "not_document"
    # the photo itself is not decoded when its EXIF thumbnail answers
    from PIL import ImageFile

    load = ImageFile.ImageFile.load

    def guarded(self: ImageFile.ImageFile) -> object:
        assert self.size == (160, 120), "decoded the photo, not its thumbnail"
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", guarded)
    assert ocr.looks_like_document(photo) == "not_document"


def test_jpeg_header_reads_size_and_thumbnail_like_pillow() -> None:
    base = photo_like(4, (640, 480))
    prog = io.BytesIO()
    Image.open(io.BytesIO(base)).save(prog, "JPEG", progressive=True, quality=80)
    grey = io.BytesIO()
    Image.open(io.BytesIO(base)).convert("L").save(grey, "JPEG")
    cmyk = io.BytesIO()
    Image.open(io.BytesIO(base)).convert("CMYK").save(cmyk, "JPEG")
    filled = base[:2] + b"\xff\xff" + base[2:]  # fill bytes before a marker are legal
    for data in (base, prog.getvalue(), grey.getvalue(), cmyk.getvalue(), filled, with_exif_thumbnail(base)):
        w, h, thumb = ocr._jpeg_header(data) or (0, 0, None)
        assert (w, h) == Image.open(io.BytesIO(data)).size
    assert ocr._jpeg_header(with_exif_thumbnail(base)).thumbnail == ocr._exif_thumbnail(with_exif_thumbnail(base))
    assert ocr._jpeg_header(base).thumbnail is None
    # not a JPEG, cut short, or markers that do not parse: None, and Pillow decides
    for bad in (b"", b"\x89PNG\r\n\x1a\n", base[:40], b"\xff\xd8\x00\x00garbage", b"\xff\xd8\xff\xe0\x00\x01"):
        assert ocr._jpeg_header(bad) is None
    assert ocr.looks_like_document(base[:40]).startswith("unreadable")


def test_tophat_is_a_closing_with_a_5x5_window() -> None:
    """The shifted-copy closing equals Pillow's rank-filter closing away from the border."""
    from PIL import ImageChops

    rng = random.Random(7)
    for size in ((40, 30), (160, 120), (97, 131)):
        im = Image.new("L", size)
        im.putdata([rng.choice((0, 60, 128, 200, 255)) if rng.random() < 0.3 else 230
                    for _ in range(size[0] * size[1])])
        im = im.filter(ImageFilter.GaussianBlur(0.6))
        b = ocr._BORDER
        for dark_ink in (True, False):
            if dark_ink:
                ref = ImageChops.subtract(im.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.MinFilter(5)), im)
            else:
                ref = ImageChops.subtract(im, im.filter(ImageFilter.MinFilter(5)).filter(ImageFilter.MaxFilter(5)))
            got = ocr._tophat(im, dark_ink)
            assert got.size == (size[0] - 2 * b, size[1] - 2 * b)
            assert got.tobytes() == ref.crop((b, b, size[0] - b, size[1] - b)).tobytes()
            assert max(got.tobytes()) > ocr._STROKE  # the test image has strokes to find


def test_precheck_of_skipped_images_loads_neither_numpy_nor_the_model(tmp_path: Path) -> None:
    """Pre-checking photos costs a thumbnail decode: numpy (~50 ms per process) and the model
    are imported only for an image that may be a page."""
    import subprocess
    import sys

    (tmp_path / "a.jpg").write_bytes(photo_like(5, (1280, 960)))
    (tmp_path / "b.jpg").write_bytes(with_exif_thumbnail(photo_like(6, (1600, 1200))))
    code = (
        "import sys; from pathlib import Path; from scanner import ocr\n"
        f"for f in sorted(Path({str(tmp_path)!r}).iterdir()):\n"
        "    assert ocr.ocr_image(f.read_bytes())[0].skipped == 'not_document'\n"
        "print(sorted(m for m in ('numpy', 'onnxruntime', 'rapidocr_onnxruntime', 'cv2') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"


@needs_engine
def test_budget_spent_is_reported_not_silent() -> None:
    from scanner.extractors.image import ImageExtractor

    data = degrade(render_page("秘密★1年", width=600, body_lines=2))
    spent = ocr.OcrBudget(0.5)
    spent.charge(1.0)
    assert spent.exhausted and spent.remaining == 0
    assert [r.skipped for r in ocr.ocr_image(data, budget=spent)] == ["budget"]
    items = list(ImageExtractor().extract(data, _ctx(ocr.OcrSettings(ocr.OcrMode.AUTO, spent), "a.zip!p.png")))
    assert items == [ScanError(ErrorCode.TIMEOUT, "image not read: the scan's OCR budget is spent", "a.zip!p.png")]
    budget = ocr.OcrBudget(60)
    ocr.ocr_image(data, budget=budget)
    assert 0 < budget.used < 60


def test_off_or_unavailable_yields_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner.extractors.image import ImageExtractor

    data = photo_like(4)
    assert list(ImageExtractor().extract(data, _ctx(ocr.OcrSettings(ocr.OcrMode.OFF)))) == []
    monkeypatch.setattr(ocr, "available", lambda: False)
    assert list(ImageExtractor().extract(data, _ctx(ocr.OcrSettings(ocr.OcrMode.FULL)))) == []


def test_mode_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ocr.OcrMode.parse(None) is ocr.OcrMode.AUTO
    assert ocr.OcrMode.parse(" FULL ") is ocr.OcrMode.FULL
    with pytest.raises(ValueError, match="off, auto or full"):
        ocr.OcrMode.parse("fast")
    monkeypatch.setenv(ocr.ENV_MODE, "off")
    monkeypatch.setenv(ocr.ENV_BUDGET, "12.5")
    ocr.reset_env_settings()
    try:
        s = ocr.settings_from_env()
        assert s.mode is ocr.OcrMode.OFF and s.budget is not None and s.budget.seconds == 12.5
        assert ocr.settings_from_env() is s
    finally:
        ocr.reset_env_settings()


def test_unreadable_image_is_corrupt() -> None:
    from scanner.extractors.image import ImageExtractor

    data = degrade(render_page("秘密", width=600, body_lines=2))[:3000]  # truncated PNG
    items = list(ImageExtractor().extract(data, _ctx(ocr.OcrSettings(ocr.OcrMode.AUTO))))
    assert items and all(isinstance(i, ScanError) and i.error is ErrorCode.CORRUPT for i in items)


@needs_engine
def test_multipage_tiff_pages_are_located() -> None:
    from scanner.extractors.image import ImageExtractor

    pages = [render_page("机密★2年", width=600, body_lines=2, seed=1).convert("L"),
             render_page("北政办", width=600, body_lines=2, seed=2).convert("L")]
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:], compression="tiff_lzw")
    items = list(ImageExtractor().extract(buf.getvalue(), _ctx(ocr.OcrSettings(ocr.OcrMode.AUTO), "s.tif")))
    segs = [i for i in items if isinstance(i, Segment)]
    assert {s.member for s in segs} == {"s.tif!page 1", "s.tif!page 2"}
    assert any(squash(s.text) == "机密★2年" and s.member == "s.tif!page 1" and s.role == "header" for s in segs)


@needs_engine
def test_image_only_pdf_page_and_its_errors() -> None:
    pdfium = pytest.importorskip("pypdfium2")
    page_img = render_page("绝密★2041年8月8日", width=700, body_lines=4).rotate(-90, expand=True)
    buf = io.BytesIO()
    page_img.save(buf, "PDF", resolution=100)  # Pillow writes one image per page, no text layer
    pdf = pdfium.PdfDocument(buf.getvalue())
    try:
        page = pdf[0]
        res = ocr.ocr_pdf_page(page, mode="auto")
        items = list(ocr.result_items(res, "page 1", "image-only page 1", unread_is_error=True))
        assert res.rotation == 270  # the page was turned a quarter clockwise
        assert all(isinstance(i, Segment) and i.member == "page 1" for i in items)
        assert squash("绝密★2041年8月8日") in squash(" ".join(i.text for i in items))  # type: ignore[union-attr]
        off = ocr.ocr_pdf_page(page, mode="off")
        assert list(ocr.result_items(off, "page 1", "image-only page 1", unread_is_error=True)) == [
            ScanError(ErrorCode.UNSUPPORTED, "image-only page 1 (no text layer; OCR off)", "page 1")]
        spent = ocr.OcrBudget(0)
        items = list(ocr.result_items(ocr.ocr_pdf_page(page, budget=spent), "page 1", "image-only page 1",
                                      unread_is_error=True))
        assert [i.error for i in items] == [ErrorCode.TIMEOUT]  # type: ignore[union-attr]
    finally:
        pdf.close()


# -- the public corpus ---------------------------------------------------------------------------
@needs_engine
@pytest.mark.corpus
@pytest.mark.parametrize(("name", "marking"), [
    ("p-image-0106.png", "秘密★项目验收后解密"),
    ("p-image-0107.jpg", "秘密★10个月"),
])
def test_corpus_images(name: str, marking: str) -> None:
    data = (need_shared("corpus") / "P-image" / name).read_bytes()
    res = ocr.ocr_image(data, mode="auto")
    assert squash(marking) in squash(ocr_text(res)), ocr_text(res)


@needs_engine
@pytest.mark.corpus
def test_corpus_image_only_pdf_page() -> None:
    pdfium = pytest.importorskip("pypdfium2")
    path = need_shared("corpus") / "P-image" / "p-image-0108.pdf"
    pdf = pdfium.PdfDocument(path.read_bytes())
    try:
        res = ocr.ocr_pdf_page(pdf[0], mode="auto")
    finally:
        pdf.close()
    assert res.skipped is None and res.lines[0].top < ocr.TOP_BAND
    assert squash("绝密★2041年8月8日") in squash(ocr_text([res]))
    segs = list(ocr.to_segments(res, "page 1"))
    assert segs[0].role == "header" and segs[0].member == "page 1"


@needs_engine
def test_cli_ocr_modes_and_the_cache_keep_them_apart(tmp_path: Path) -> None:
    """--ocr off must not answer a later --ocr auto scan from the cache as clean (and back)."""
    import json
    import subprocess
    import sys

    img = tmp_path / "t" / "scan.jpg"
    img.parent.mkdir()
    img.write_bytes(degrade(render_page("机密★5年", width=700, body_lines=3), jpeg=70))
    baomi = str(Path(sys.executable).parent / "baomi")
    cache = tmp_path / "c.sqlite"

    def level(mode: str) -> str | None:
        p = subprocess.run([baomi, "scan", "--format", "jsonl", "--all", "--cache", str(cache), "--ocr", mode,
                            str(img.parent)], capture_output=True, timeout=120, check=False)
        return json.loads(p.stdout.splitlines()[0])["level"]

    assert level("off") is None
    assert level("auto") == "secret"
    assert level("off") is None


def test_document_image_without_an_ocr_engine_is_an_error_not_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner.config import ScanConfig
    from scanner.engine import Scanner

    monkeypatch.setattr(ocr, "available", lambda: False)
    page = degrade(render_page("机密★5年", width=700, body_lines=3), jpeg=70)
    findings, errors, _ = Scanner(ScanConfig(ocr_mode="auto")).scan_bytes(page, "scan.jpg")
    assert [e.error.value for e in errors] == ["unsupported"] and not findings
    photo = photo_like(1)
    assert Scanner(ScanConfig(ocr_mode="auto")).scan_bytes(photo, "p.jpg")[:2] == ([], [])
    # OCR switched off by the user: no error for either
    assert Scanner(ScanConfig(ocr_mode="off")).scan_bytes(page, "scan.jpg")[:2] == ([], [])


@needs_engine
def test_fax_with_non_square_pixels_is_read_at_square_pixels() -> None:
    """A fax at 204×98 dpi stores characters at half their height; stretched back before reading."""
    page = render_page("机密★10年", width=1728).convert("L")  # A4 at 204 dpi
    w, h = page.size
    fax = page.resize((w, h * 98 // 204)).point(lambda v: 255 if v > 150 else 0).convert("1")
    buf = io.BytesIO()
    fax.save(buf, "TIFF", compression="group4", dpi=(204, 98))
    frame = next(ocr.iter_frames(buf.getvalue()))
    assert abs(frame.size[1] - h) <= 2 and frame.size[0] == w
    assert "机密★10年" in squash(ocr_text(ocr.ocr_image(buf.getvalue())))


@needs_engine
def test_bilevel_page_is_softened_and_read() -> None:
    page = render_page("绝密★长期", width=800).convert("L").point(lambda v: 255 if v > 140 else 0).convert("1")
    fitted = ocr._fit(page)
    assert len({int(v) for v in fitted[..., 0].ravel()[::7]}) > 2, "grey edges, not two levels"
    buf = io.BytesIO()
    page.save(buf, "PNG")
    assert "绝密★长期" in squash(ocr_text(ocr.ocr_image(buf.getvalue())))
