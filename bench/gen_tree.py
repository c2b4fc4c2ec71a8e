"""Generate the reproducible benchmark tree (issue: scan speed).

    python bench/gen_tree.py --out bench/out/tree [--text 20000] [--office 2000] [--pdf 200] [--seed 7]

- text/: ~20,000 files, ~600 MB of real-looking Chinese prose (paragraphs of ../shared/seeds and
  ../shared/prose when present, the bundled sample prose otherwise), 1 % carrying a 公文 head with
  a marking, 10 % encoded in GB18030, the rest UTF-8;
- office/: ~2,000 .docx/.xlsx/.pptx (1 % marked);
- pdf/: ~200 three-page text PDFs (1 % marked).
The same seed gives the same tree; a finished tree is reused (stamp file holds the parameters).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
HEAD = "{copy:06d}\n{marking}\n特急\n东陵区人民政府办公室文件\n东政办发〔2026〕{n}号\n关于加强办公室工作的通知\n"
MARKINGS = ["机密★10年", "秘密★6个月", "绝密★长期", "秘密★2031年6月30日", "机密★项目验收后解密", "秘密"]


def paragraphs() -> list[str]:
    paras: list[str] = []
    for d, pat in ((SHARED / "seeds", "*.txt"), (SHARED / "prose", "*.md")):
        for p in sorted(d.glob(pat)) if d.exists() else []:
            paras += [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if len(ln.strip()) > 20]
    if not paras:
        sys.path.insert(0, str(ROOT))
        from scanner.samples import _BODY, _PROSE
        paras = [_BODY.strip(), _PROSE.strip()] * 10
    return paras


def text_body(rng: random.Random, paras: list[str], size: int) -> str:
    out, n = [], 0
    while n < size:
        p = rng.choice(paras)
        out.append(p)
        n += len(p.encode("utf-8")) + 1
    return "\n".join(out) + "\n"


def gen_text(out: Path, rng: random.Random, paras: list[str], count: int, total_mb: int) -> None:
    mean = total_mb * 1024 * 1024 // count
    for i in range(count):
        d = out / "text" / f"d{i // 500:03d}"
        d.mkdir(parents=True, exist_ok=True)
        size = max(2000, int(rng.lognormvariate(0, 0.6) * mean * 0.84))
        body = text_body(rng, paras, size)
        if rng.random() < 0.01:
            body = HEAD.format(copy=i, marking=rng.choice(MARKINGS), n=i % 300) + body
        enc = "gb18030" if rng.random() < 0.10 else "utf-8"
        (d / f"f{i:05d}.txt").write_bytes(body.encode(enc, errors="replace"))


def gen_office(out: Path, rng: random.Random, paras: list[str], count: int) -> None:
    import docx
    import openpyxl
    from pptx import Presentation
    from pptx.util import Inches

    d = out / "office"
    d.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        marked = rng.random() < 0.01
        lines = [rng.choice(paras)[:300] for _ in range(rng.randint(3, 12))]
        if marked:
            lines = [f"{i:06d}", rng.choice(MARKINGS[:5]), "特急"] + lines
        kind = i % 3
        if kind == 0:
            doc = docx.Document()
            for ln in lines:
                doc.add_paragraph(ln)
            doc.save(d / f"o{i:05d}.docx")
        elif kind == 1:
            wb = openpyxl.Workbook()
            ws = wb.active
            for r, ln in enumerate(lines, 1):
                ws.cell(row=r, column=1, value=ln)
            wb.save(d / f"o{i:05d}.xlsx")
        else:
            prs = Presentation()
            slide = prs.slides.add_slide(prs.slide_layouts[6])
            box = slide.shapes.add_textbox(Inches(0.5), Inches(0.5), Inches(9), Inches(6)).text_frame
            box.text = lines[0]
            for ln in lines[1:]:
                box.add_paragraph().text = ln
            prs.save(d / f"o{i:05d}.pptx")


def gen_pdf(out: Path, rng: random.Random, paras: list[str], count: int) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    d = out / "pdf"
    d.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        buf = io.BytesIO()
        c = canvas.Canvas(buf, pagesize=A4)
        marked = rng.random() < 0.01
        for page in range(3):
            c.setFont("STSong-Light", 11)
            y = 800
            if marked and page == 0:
                for ln in (f"{i:06d}", rng.choice(MARKINGS[:5]), "特急"):
                    c.drawString(60, y, ln)
                    y -= 18
            for _ in range(30):
                p = rng.choice(paras)
                c.drawString(60, y, p[:38])
                y -= 16
                if y < 60:
                    break
            c.showPage()
        c.save()
        (d / f"p{i:04d}.pdf").write_bytes(buf.getvalue())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "tree"))
    ap.add_argument("--text", type=int, default=20000)
    ap.add_argument("--text-mb", type=int, default=600)
    ap.add_argument("--office", type=int, default=2000)
    ap.add_argument("--pdf", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    out = Path(a.out)
    params = {k: getattr(a, k) for k in ("text", "text_mb", "office", "pdf", "seed")}
    stamp = out / ".params.json"
    if stamp.exists() and json.loads(stamp.read_text()) == params:
        print(f"tree {out} is up to date")
        return 0
    if out.exists():
        import shutil
        shutil.rmtree(out)
    out.mkdir(parents=True)
    paras = paragraphs()
    gen_text(out, random.Random(a.seed), paras, a.text, a.text_mb)
    gen_office(out, random.Random(a.seed + 1), paras, a.office)
    gen_pdf(out, random.Random(a.seed + 2), paras, a.pdf)
    stamp.write_text(json.dumps(params))
    print(f"tree written to {out}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
