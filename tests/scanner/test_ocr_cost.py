"""What `auto` OCR spends on a page image: the rows it recognises, the pixels it detects again, the
model calls it makes — counted, never timed — and that each shortcut keeps the marking.

Figures behind the rules are in scanner/ocr.py (its docstring and the constants' comments).
"""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from scanner import ocr
from tests.scanner.test_ocr import cjk_font, needs_engine, ocr_text, render_page, squash

pytestmark = needs_engine


def _font(size: int) -> ImageFont.FreeTypeFont:
    path = cjk_font()
    if path is None:
        pytest.skip("no CJK font (install fonts-wqy-zenhei)")
    return ImageFont.truetype(path, size)


def _record(monkeypatch: pytest.MonkeyPatch, name: str) -> list[tuple[tuple[int, ...], list[Any]]]:
    """Calls of `_Reader.<name>`: (image shape, boxes) each, the call itself unchanged."""
    calls: list[tuple[tuple[int, ...], list[Any]]] = []
    orig = getattr(ocr._Reader, name)

    def wrapper(self: ocr._Reader, bgr: np.ndarray, *args: Any) -> Any:
        out = orig(self, bgr, *args)
        calls.append((bgr.shape, list(args[0]) if args else list(out)))
        return out

    monkeypatch.setattr(ocr._Reader, name, wrapper)
    return calls


def code_listing(rows: int = 48, size: tuple[int, int] = (1100, 900)) -> np.ndarray:
    """A diagram-like image: a dense listing of short words in columns (a debugger's tree view,
    a table dump), rows of 12 px text 18 px apart — as valgrind's dh-tree.png or a GUI's table."""
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    f = _font(13)
    for r in range(rows):
        y = 10 + r * 18
        for c, word in enumerate((f"AP {r}.{r % 7}/25", "Total:", f"{r * 1031:,} bytes", f"(f{r}.c:{r + 40})")):
            d.text((20 + c * 260, y), word, font=f, fill="black")
    return np.asarray(img)


def test_a_dense_band_is_read_only_in_its_first_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove the row cap and this fails: the band holds ~14 rows of 4 boxes each."""
    det = _record(monkeypatch, "detect")
    rec = _record(monkeypatch, "recognise")
    res = ocr.ocr_array(code_listing(), mode="auto")
    detected_rows = max(ocr._rows(boxes) for _, boxes in det)
    assert detected_rows > ocr.MAX_AUTO_ROWS  # the band was denser than the cap
    assert len(rec) == 1
    read = rec[0][1]
    assert ocr._rows(read) == ocr.MAX_AUTO_ROWS
    assert len(read) <= 4 * ocr.MAX_AUTO_ROWS < sum(len(b) for _, b in det[-1:])
    # the first rows are read, top down
    assert "Total:" in ocr_text([res]) and "AP0.0/25" in squash(ocr_text([res])), ocr_text([res])


def ribbon_screenshot(marking: str, size: tuple[int, int] = (1280, 1024)) -> bytes:
    """A word processor's window: title bar, tabs, two rows of labelled buttons, group names and a
    ruler (six rows of text) above a page scrolled to its head, whose 份号 and marking follow."""
    w, h = size
    img = Image.new("RGB", size, (240, 240, 242))
    d = ImageDraw.Draw(img)
    f = _font(13)
    rows = [
        ["关于进一步加强机关日常管理工作的通知.docx - 文字处理"],
        ["文件", "开始", "插入", "页面布局", "引用", "审阅", "视图", "章节", "开发工具", "会员专享"],
        ["粘贴", "格式刷", "宋体", "五号", "加粗", "倾斜", "下划线", "项目符号", "编号", "正文", "标题1"],
        ["剪切", "复制", "字体颜色", "突出显示", "左对齐", "居中", "右对齐", "行距", "标题2", "查找替换"],
        ["剪贴板", "字体", "段落", "样式", "编辑"],
        ["2", "4", "6", "8", "10", "12", "14", "16", "18", "20", "22", "24", "26", "28", "30", "32"],
    ]
    for r, labels in enumerate(rows):
        x = 16
        for label in labels:
            d.text((x, 8 + r * 22), label, font=f, fill=(20, 20, 20))
            x += int(d.textlength(label, font=f)) + 44
    page = render_page(marking, width=900, body_lines=14, seed=8)
    shown = page.resize((1000, int(page.height * 1000 / 900)), Image.Resampling.LANCZOS)
    top = 8 + len(rows) * 22 + 6
    img.paste(shown.crop((0, 120, 1000, 120 + h - top)), (140, top))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def test_marking_below_a_busy_ribbon_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Six rows of window chrome stand above the page's 份号 and marking: the row cap leaves them
    in (a cap of 7 rows fails here)."""
    rec = _record(monkeypatch, "recognise")
    res = ocr.ocr_image(ribbon_screenshot("机密★2030年12月31日"), mode="auto")
    assert "机密★2030年12月31日" in squash(ocr_text(res)), ocr_text(res)
    marking_row = next(i for i, row in enumerate(ocr._group_lines(
        [ocr._Box(ln.left * 1e4, ln.top * 1e4, ln.right * 1e4, ln.bottom * 1e4, ln.text) for ln in res[0].lines]))
        if any("★" in b.text for b in row))
    assert 6 <= marking_row < ocr.MAX_AUTO_ROWS
    assert rec and ocr._rows(rec[-1][1]) <= ocr.MAX_AUTO_ROWS


def _page_bgr() -> np.ndarray:
    return np.ascontiguousarray(np.asarray(render_page("秘密★10个月", width=900, body_lines=8, seed=3))[:, :, ::-1])


def _rounded(boxes: list[Any]) -> list[tuple[int, int, int, int]]:
    """(top, left, bottom, right) of each box, top down."""
    return sorted((round(float(b[:, 1].min())), round(float(b[:, 0].min())), round(float(b[:, 1].max())),
                   round(float(b[:, 0].max()))) for b in boxes)


def test_detecting_more_of_the_page_detects_a_strip_and_finds_what_a_full_pass_finds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The band's edge cuts a line of the title through its middle (the old pass does not see
    it): the strip starts in the gap above it, below the marking, and finds what a full pass does."""
    bgr = _page_bgr()
    rd = ocr._Reader(ocr._get_engine(), None)
    full = rd.detect(bgr[:480])
    mark = next(b for b in full if 140 < float(b[:, 1].min()) < 170)  # the marking's line
    cut = min((b for b in full if float(b[:, 1].min()) > float(mark[:, 1].max()) + 60),
              key=lambda b: float(b[:, 1].min()))
    old_h = int((float(cut[:, 1].min()) + float(cut[:, 1].max())) / 2)
    boxes = rd.detect(bgr[:old_h])
    det = _record(monkeypatch, "detect")
    more = ocr._detect_more(rd, bgr, boxes, old_h, 480)
    assert len(det) == 1
    strip_h = det[0][0][0]
    assert strip_h < 480 - float(mark[:, 1].max())  # the marking's row is not detected again
    a, b = _rounded(more), _rounded(full)
    assert len(a) == len(b)
    assert max(abs(p - q) for x, y in zip(a, b, strict=True) for p, q in zip(x, y, strict=True)) <= 4  # the detector's edges, a pixel or three


def test_lines_are_recognised_one_at_a_time_padded_to_the_minimum_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """One model call per line, none wider than the line needs (at least `REC_MIN_WIDTH`), and
    the marking reads as RapidOCR's own batched recogniser reads it."""
    eng = ocr._get_engine()
    rec = eng.text_rec
    shapes: list[tuple[int, ...]] = []
    session = rec.session

    def counting(x: np.ndarray) -> Any:
        shapes.append(x.shape)
        return session(x)

    bgr = _page_bgr()
    rd = ocr._Reader(eng, None)
    boxes = rd.detect(bgr[:300])
    monkeypatch.setattr(rec, "session", counting)
    found = rd.recognise(bgr[:300], boxes)
    assert len(shapes) == len(boxes) and all(s[0] == 1 for s in shapes)
    assert min(s[3] for s in shapes) == ocr.REC_MIN_WIDTH  # the 6-digit 份号 and 特急 are short
    assert max(s[3] for s in shapes) < 48 * ocr.MAX_AUTO_ASPECT
    monkeypatch.setattr(rec, "session", session)
    mark = next(b for b in found if "★" in b.text)
    assert squash(mark.text) == "秘密★10个月"
    crops = eng.get_crop_img_list(bgr[:300], [b for b in boxes if abs(float(b[:, 1].min()) - mark.y0) < 1])
    assert [squash(t) for t, _ in rec(crops, False)[0]] == ["秘密★10个月"]
