"""Generate a mixed office tree (issue 17, goal 5): the formats of the public corpus in the
proportions of an office share, 10 % archives, 5 % images, 1 % of documents marked.

    python bench/gen_mixed.py --out bench/out/mixed [--files 2000] [--seed 17]

Per 100 files: 28 .docx, 12 .xlsx, 5 .pptx, 15 .pdf (text, 1-4 pages), 10 .txt (one in ten in
GB18030), 2 .md, 2 .csv, 6 .eml (MIME, base64 body, some with a .docx attachment), 5 .html;
10 archives (6 .zip, 2 .7z, 2 .tar.gz, each holding 2-5 of the documents above) and 5 images
(3 .jpg, 2 .png: photographs, not scanned pages, as on most shares). Text is real Chinese office
prose (bench/gen_tree.py's paragraphs: ../shared/seeds and ../shared/prose), so level words occur
in prose as they do in a secrecy office's own share; one document in a hundred (archive members
included) carries a 公文 head with a marking. The same seed gives the same tree; a finished tree
is reused (its stamp file holds the parameters).
"""
from __future__ import annotations

import argparse
import email.message
import io
import json
import random
import shutil
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_tree import HEAD, MARKINGS, paragraphs  # noqa: E402  (the same prose and markings)

ROOT = Path(__file__).resolve().parent.parent
#: (extension, share per 100 files), in the order a file index is mapped to them.
MIX: list[tuple[str, int]] = [("docx", 28), ("xlsx", 12), ("pptx", 5), ("pdf", 15), ("txt", 10), ("md", 2),
                              ("csv", 2), ("eml", 6), ("html", 5), ("zip", 6), ("7z", 2), ("tar.gz", 2),
                              ("jpg", 3), ("png", 2)]
ARCHIVES = ("zip", "7z", "tar.gz")
IMAGES = ("jpg", "png")
MARKED_SHARE = 0.01


def _lines(rng: random.Random, paras: list[str], n: int, marked: bool, copy: int) -> list[str]:
    lines = [rng.choice(paras)[:400] for _ in range(n)]
    if marked:
        lines = HEAD.format(copy=copy, marking=rng.choice(MARKINGS), n=copy % 300).strip().split("\n") + lines
    return lines


def make_docx(lines: list[str]) -> bytes:
    import docx

    d = docx.Document()
    for ln in lines:
        d.add_paragraph(ln)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def make_xlsx(lines: list[str]) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for r, ln in enumerate(lines, 1):
        ws.cell(row=r, column=1, value=r)
        ws.cell(row=r, column=2, value=ln)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def make_pptx(lines: list[str]) -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    for start in range(0, len(lines), 6):
        slide = prs.slides.add_slide(prs.slide_layouts[6])
        box = slide.shapes.add_textbox(Inches(0.5), Inches(0.5), Inches(9), Inches(6)).text_frame
        box.text = lines[start]
        for ln in lines[start + 1: start + 6]:
            box.add_paragraph().text = ln
    buf = io.BytesIO()
    prs.save(buf)
    return buf.getvalue()


_FONT_READY = False


def make_pdf(lines: list[str]) -> bytes:
    global _FONT_READY
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if not _FONT_READY:
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
        _FONT_READY = True
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    y = 800
    c.setFont("STSong-Light", 11)
    for ln in lines:
        for start in range(0, len(ln), 38):
            c.drawString(60, y, ln[start: start + 38])
            y -= 16
            if y < 60:
                c.showPage()
                c.setFont("STSong-Light", 11)
                y = 800
    c.showPage()
    c.save()
    return buf.getvalue()


def make_text(lines: list[str], rng: random.Random) -> bytes:
    enc = "gb18030" if rng.random() < 0.10 else "utf-8"
    return ("\n".join(lines) + "\n").encode(enc, errors="replace")


def make_md(lines: list[str]) -> bytes:
    return ("# " + lines[0] + "\n\n" + "\n\n".join(lines[1:]) + "\n").encode()


def make_csv(lines: list[str]) -> bytes:
    return ("序号,内容\n" + "".join(f'{i},"{ln}"\n' for i, ln in enumerate(lines, 1))).encode("utf-8")


def make_html(lines: list[str]) -> bytes:
    body = "".join(f"<p>{ln}</p>\n" for ln in lines)
    return (f'<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8"><title>{lines[0][:30]}</title>'
            f"</head>\n<body>\n{body}</body></html>\n").encode()


def make_eml(lines: list[str], rng: random.Random, attach: Callable[[], bytes] | None) -> bytes:
    msg = email.message.EmailMessage()
    msg["From"] = "office@example.gov.cn"
    msg["To"] = "chief@example.gov.cn"
    msg["Subject"] = lines[0][:40]
    msg.set_content("\n".join(lines) + "\n", charset="utf-8", cte="base64")
    if attach is not None:
        msg.add_attachment(attach(), maintype="application",
                           subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
                           filename=f"附件{rng.randint(1, 99)}.docx")
    return msg.as_bytes()


def make_image(ext: str, rng: random.Random) -> bytes:
    """A photograph-like picture (sky-to-ground gradient, blurred shapes, sensor noise): what most
    images on a share are. `looks_like_document` sends these to no OCR (a scanned page would be
    read, at ~0.5 s a page, a cost clamscan has no counterpart for)."""
    from PIL import Image, ImageDraw, ImageFilter

    w, h = ((rng.randint(640, 1280), rng.randint(480, 960)) if ext == "jpg"
            else (rng.randint(320, 640), rng.randint(240, 480)))
    top = tuple(rng.randint(90, 200) for _ in range(3))
    bottom = tuple(rng.randint(30, 140) for _ in range(3))
    grad = Image.linear_gradient("L").resize((w, h))
    img = Image.composite(Image.new("RGB", (w, h), bottom), Image.new("RGB", (w, h), top), grad)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(3, 9)):
        x, y, r = rng.randint(0, w), rng.randint(h // 3, h), rng.randint(w // 20, w // 4)
        draw.ellipse((x - r, y - r // 2, x + r, y + r), fill=tuple(rng.randint(20, 230) for _ in range(3)))
    img = img.filter(ImageFilter.GaussianBlur(3))
    noise = Image.frombytes("L", (w, h), rng.randbytes(w * h)).convert("RGB")
    img = Image.blend(img, noise, 0.06)
    buf = io.BytesIO()
    img.save(buf, "JPEG" if ext == "jpg" else "PNG", **({"quality": 85} if ext == "jpg" else {}))
    return buf.getvalue()


class Maker:
    def __init__(self, rng: random.Random, paras: list[str]) -> None:
        self.rng, self.paras, self.marked, self.n = rng, paras, 0, 0

    def document(self, ext: str) -> bytes:
        rng = self.rng
        self.n += 1
        marked = rng.random() < MARKED_SHARE
        self.marked += marked
        lines = _lines(rng, self.paras, rng.randint(4, 40) if ext != "pptx" else rng.randint(6, 24), marked, self.n)
        if ext == "docx":
            return make_docx(lines)
        if ext == "xlsx":
            return make_xlsx(lines)
        if ext == "pptx":
            return make_pptx(lines)
        if ext == "pdf":
            return make_pdf(lines)
        if ext == "txt":
            return make_text(lines, rng)
        if ext == "md":
            return make_md(lines)
        if ext == "csv":
            return make_csv(lines)
        if ext == "html":
            return make_html(lines)
        if ext == "eml":
            attach = (lambda: self.document("docx")) if rng.random() < 0.3 else None
            return make_eml(lines, rng, attach)
        raise ValueError(ext)

    def archive(self, ext: str) -> bytes:
        rng = self.rng
        members = [(f"{i:02d}.{m}", self.document(m))
                   for i, m in enumerate(rng.choices(["docx", "txt", "pdf", "xlsx"], k=rng.randint(2, 5)))]
        buf = io.BytesIO()
        if ext == "zip":
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                for name, data in members:
                    z.writestr(f"材料/{name}", data)
        elif ext == "tar.gz":
            with tarfile.open(fileobj=buf, mode="w:gz") as t:
                for name, data in members:
                    info = tarfile.TarInfo(f"材料/{name}")
                    info.size = len(data)
                    info.mtime = 1_700_000_000
                    t.addfile(info, io.BytesIO(data))
        else:
            import py7zr

            with py7zr.SevenZipFile(buf, "w") as z:
                for name, data in members:
                    z.writestr(data, f"材料/{name}")
        return buf.getvalue()


def generate(out: Path, files: int, seed: int = 17) -> dict[str, Any]:
    """Write the tree; returns its counts (files, bytes, marked documents) and the files holding
    a marked document (relative paths)."""
    rng = random.Random(seed)
    maker = Maker(rng, paragraphs())
    kinds = [ext for ext, share in MIX for _ in range(share)]
    total = 0
    marked_files = []
    for i in range(files):
        ext = kinds[(i * 37) % 100]  # a fixed interleaving, so that every prefix has the mix
        d = out / f"部门{i // 200:02d}" / f"{i // 50 % 4:d}"
        d.mkdir(parents=True, exist_ok=True)
        before = maker.marked
        if ext in ARCHIVES:
            data = maker.archive(ext)
        elif ext in IMAGES:
            data = make_image(ext, rng)
        else:
            data = maker.document(ext)
        if maker.marked > before:
            marked_files.append(str((d / f"文件{i:05d}.{ext}").relative_to(out)))
        (d / f"文件{i:05d}.{ext}").write_bytes(data)
        total += len(data)
    return {"files": files, "bytes": total, "marked_documents": maker.marked, "marked_files": marked_files}


def ensure(out: Path, files: int, seed: int = 17) -> dict[str, Any]:
    """The tree at `out`, generated unless a finished one with these parameters is there."""
    stamp = out / ".params.json"
    params = {"files": files, "seed": seed, "version": 2}
    if stamp.exists():
        saved = json.loads(stamp.read_text())
        if saved.get("params") == params:
            return dict(saved["counts"])
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    counts = generate(out, files, seed)
    stamp.write_text(json.dumps({"params": params, "counts": counts}))
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "mixed"))
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=17)
    a = ap.parse_args()
    counts = ensure(Path(a.out), a.files, a.seed)
    print(json.dumps({k: v for k, v in counts.items() if k != "marked_files"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
