"""Charts of the report drawn by matplotlib with a CJK font (WenQuanYi Zen Hei, Debian
fonts-wqy-zenhei), so Chinese labels render as glyphs, not boxes. SVG for HTML, PNG for DOCX."""
from __future__ import annotations

import io
import logging
from functools import cache
from pathlib import Path

#: Where Debian installs the font; matplotlib is pointed at it explicitly (no font cache luck).
CJK_FONTS = [Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
             Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")]


@cache
def _setup() -> str:
    import matplotlib

    matplotlib.use("Agg")
    # The .ttc's faces carry weight 500, so matplotlib warns on every chart that it picked it.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    from matplotlib import font_manager, rcParams

    name = "DejaVu Sans"
    for f in CJK_FONTS:
        if f.exists():
            font_manager.fontManager.addfont(str(f))
            name = font_manager.FontProperties(fname=str(f)).get_name()
            break
    rcParams["font.family"] = [name, "DejaVu Sans"]
    rcParams["axes.unicode_minus"] = False
    rcParams["svg.fonttype"] = "path"  # glyphs as outlines: the SVG needs no font on the reader's side
    rcParams["svg.hashsalt"] = "baomi"  # stable ids: the same data gives the same file
    return name


def bar_chart(pairs: list[tuple[str, int]], title: str, fmt: str = "png", horizontal: bool = True) -> bytes:
    """A bar chart of (label, count) pairs (at most 12 shown, the largest)."""
    _setup()
    import matplotlib.pyplot as plt

    pairs = pairs[:12]
    fig, ax = plt.subplots(figsize=(6.4, 0.35 * max(len(pairs), 3) + 1.2), dpi=120)
    try:
        labels = [p[0][:30] for p in pairs]
        values = [p[1] for p in pairs]
        if horizontal:
            ax.barh(labels[::-1], values[::-1], color="#b22222")
        else:
            ax.bar(labels, values, color="#b22222")
            ax.tick_params(axis="x", rotation=45)
        ax.set_title(title)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt)
        return buf.getvalue()
    finally:
        plt.close(fig)
