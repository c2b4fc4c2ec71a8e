#!/usr/bin/env python3
"""OCR cost and recall: ms per page image in `auto` and `full`, and what `auto` adds to a scan of
a tree of non-document photos.

    .venv/bin/python bench/ocr_bench.py [--photos 100] [--camera 100] [--copies 10] [--pages 15]
                                        [--phone 4] [--hard] [--tesseract] [--jobs 0] [--cold]
                                        [--skip-documents] [--modes auto,full]

1. Document images: the corpus image family (../shared/corpus/P-image: png, jpg, and the
   image-only PDF page through `ocr_pdf_page`) and generated 公文 pages (upright, 90°, 180°+JPEG,
   270°+skew+grey, skew+JPEG+red marking) and phone photos of pages on a desk (perspective,
   uneven light, blur; every other one turned in the frame): marking text found and ms per
   image (wall, and CPU of this process: the machine may be shared), auto and full (`--modes`). `--hard` adds 29 harder pages (see `hard_documents`).
2. Photo trees of 1,000 files (`--photos` distinct photo-like JPEGs without text × `--copies`,
   800×600 … 3264×2448, half of them with an EXIF thumbnail as cameras write; and `--camera`
   distinct 4032×3024 photos with EXIF thumbnails, as phones write them), scanned with
   `Scanner` in-process and with `baomi scan`, OCR off vs auto: what auto's pre-check adds.
3. `--tesseract`: the same document images through Debian's tesseract (chi_sim), when installed.

Machine-dependent figures; run on an otherwise idle machine for the closing note.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image

from scanner import ocr
from scanner.normalize import normalize
from tests.scanner.test_ocr import degrade, phone_photo, photo_like, render_page, with_exif_thumbnail

CORPUS = ROOT.parent / "shared" / "corpus"
MARKINGS = ["秘密★10个月", "机密★5年", "绝密★2041年8月8日", "机密★长期", "秘密★项目验收后解密",
            "機密★10年", "机密", "绝密★30年"]
VARIANTS = [
    ("upright", {}),
    ("rot90", {"rotate": 90}),
    ("rot180+jpeg40", {"rotate": 180, "jpeg": 40}),
    ("rot270+skew+grey", {"rotate": 270, "skew": 2.5, "gray": True, "noise": 0.002}),
    ("skew+jpeg30+red", {"skew": -3, "jpeg": 30, "red": True}),
]


def squash(text: str) -> str:
    return re.sub(r"\s+", "", normalize(text))


def documents(n_generated: int, n_phone: int) -> list[tuple[str, str, bytes | Path]]:
    """(name, expected marking, image bytes or a PDF path)."""
    docs: list[tuple[str, str, bytes | Path]] = []
    labels = CORPUS / "labels.jsonl"
    if labels.exists():
        for line in labels.read_text(encoding="utf-8").splitlines():
            lab = json.loads(line)
            if lab["family"] == "P-image":
                path = CORPUS / lab["path"]
                docs.append((lab["path"], lab["note"], path if path.suffix == ".pdf" else path.read_bytes()))
    for i in range(n_generated):
        mark = MARKINGS[i % len(MARKINGS)]
        vname, kw = VARIANTS[i % len(VARIANTS)]
        kw = dict(kw)
        red = kw.pop("red", False)
        docs.append((f"gen-{i:02d}-{vname}", mark, degrade(render_page(mark, red=red, seed=i), seed=i, **kw)))
    for i in range(n_phone):  # the page photographed on a desk, every other one turned in the frame
        mark = MARKINGS[(i + 3) % len(MARKINGS)]
        turn = 90 * (i % 2)
        page = render_page(mark, seed=100 + i).rotate(turn, expand=True)
        docs.append((f"phone-{i:02d}-turn{turn}", mark, phone_photo(page, seed=i, size=(2250, 3000))))
    return docs


def hard_documents() -> list[tuple[str, str, bytes | Path]]:
    """The harder generated set: large phone photos upright and turned, 600 px-wide scans,
    faded grey-on-cream pages with red marks, the old top-right `秘　密`, an English banner,
    slides (flat and photographed)."""
    import numpy as np
    from PIL import ImageDraw, ImageFont

    from tests.scanner.test_ocr import cjk_font

    font = cjk_font()
    assert font is not None

    def faded(img: Image.Image) -> Image.Image:
        a = 255 - (255 - np.asarray(img).astype(np.float32)) * 0.45
        return Image.fromarray((a * np.array([1.0, 0.97, 0.88])).clip(0, 255).astype(np.uint8))

    def top_right(mark: str, width: int = 900) -> Image.Image:
        img = render_page("", width=width)
        d = ImageDraw.Draw(img)
        f = ImageFont.truetype(font, width // 30)
        d.text((width * 0.87 - d.textlength(mark, font=f), int(width * 1.414 * 0.09)), mark, font=f, fill=(0, 0, 0))
        return img

    def slide(mark: str) -> Image.Image:
        img = Image.new("RGB", (1280, 720), (250, 250, 250))
        d = ImageDraw.Draw(img)
        f, big = ImageFont.truetype(font, 28), ImageFont.truetype(font, 48)
        d.text((40, 30), mark, font=f, fill=(200, 0, 0))
        d.text((200, 200), "年度工作总结与计划", font=big, fill=(0, 0, 0))
        for i in range(5):
            d.text((120, 320 + i * 60), "· 完成重点项目建设任务，推进改革发展", font=f, fill=(30, 30, 30))
        return img

    docs: list[tuple[str, str, bytes | Path]] = []
    for i, m in enumerate(["秘密★10个月", "机密★5年", "绝密★2041年8月8日", "机密★长期", "秘密★项目验收后解密", "绝密★30年"]):
        docs.append((f"hard-phone-{i}", m, phone_photo(render_page(m, seed=i), seed=i, size=(3000, 4000))))
        turned = render_page(m, seed=i).rotate(-90 if i % 2 else 90, expand=True)
        docs.append((f"hard-phone-turned-{i}", m, phone_photo(turned, seed=i + 7, size=(3000, 4000))))
        docs.append((f"hard-lowres600-{i}", m, degrade(render_page(m, width=600, seed=i), jpeg=50)))
        docs.append((f"hard-faded-{i}", m, degrade(faded(render_page(m, seed=i, red=i % 2 == 0)), jpeg=60)))
    docs.append(("hard-top-right-spaced", "秘密", degrade(top_right("秘　密"))))
    docs.append(("hard-top-right-star", "机密★1年", degrade(top_right("机密★1年"))))
    docs.append(("hard-banner-en", "TOPSECRET//NOFORN", degrade(render_page("TOP SECRET//NOFORN"))))
    docs.append(("hard-slide", "机密★3年", degrade(slide("机密★3年"))))
    docs.append(("hard-slide-photo", "机密★3年", phone_photo(slide("机密★3年"), seed=3, size=(3000, 4000))))
    return docs


def read(doc: bytes | Path, mode: str) -> tuple[str, float, float]:
    """(text, wall seconds, CPU seconds of this process: the machine may be shared)."""
    t0, c0 = time.perf_counter(), time.process_time()
    if isinstance(doc, Path):
        import pypdfium2 as pdfium

        pdf = pdfium.PdfDocument(doc.read_bytes())
        try:
            results = [ocr.ocr_pdf_page(pdf[i], mode=mode) for i in range(len(pdf))]
        finally:
            pdf.close()
    else:
        results = ocr.ocr_image(doc, mode=mode)
    return ("\n".join(ln.text for r in results for ln in r.lines), time.perf_counter() - t0,
            time.process_time() - c0)


def tesseract(doc: bytes | Path, full: bool) -> tuple[str, float]:
    """Tesseract on the same page turned upright by its OSD (psm 0) is not attempted: it is given
    the page as stored, top quarter for `auto`, like the pipeline's first pass."""
    if isinstance(doc, Path):
        import pypdfium2 as pdfium

        pdf = pdfium.PdfDocument(doc.read_bytes())
        im = pdf[0].render(scale=150 / 72).to_pil()
        pdf.close()
    else:
        im = Image.open(io.BytesIO(doc)).convert("RGB")
    if not full:
        im = im.crop((0, 0, im.width, im.height // 4))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    t0 = time.perf_counter()
    p = subprocess.run(["tesseract", "stdin", "stdout", "-l", "chi_sim", "--psm", "3" if full else "6"],
                       input=buf.getvalue(), capture_output=True, env={**os.environ, "OMP_THREAD_LIMIT": "1"},
                       check=False)
    return p.stdout.decode("utf-8", "replace"), time.perf_counter() - t0


def bench_documents(args: argparse.Namespace) -> None:
    docs = documents(args.pages, args.phone) + (hard_documents() if args.hard else [])
    ocr.ocr_image(degrade(render_page("秘密", width=600, body_lines=1)))  # load the model first
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    print(f"\n## document images ({len(docs)}: corpus P-image + generated)")
    print(f"{'image':36} " + " ".join(f"{m + ' ms':>8} {m + ' cpu':>8}" for m in modes) + "  found " + "/".join(modes))
    totals: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    found = dict.fromkeys(modes, 0)
    for name, mark, doc in docs:
        row = []
        for mode in modes:
            text, dt, ct = read(doc, mode)
            totals[mode].append(dt)
            cpu[mode].append(ct)
            ok = squash(mark) in squash(text)
            found[mode] += ok
            row.append((dt, ok, ct))
        print(f"{name:36} " + " ".join(f"{dt * 1000:8.0f} {ct * 1000:8.0f}" for dt, _, ct in row) + "  "
              + "/".join("yes" if ok else "NO" for _, ok, _ in row))
    n = len(docs)
    for mode in modes:
        ts = totals[mode]
        print(f"{mode}: recall {found[mode]}/{n}, mean {statistics.mean(ts) * 1000:.0f} ms/image, "
              f"median {statistics.median(ts) * 1000:.0f}, max {max(ts) * 1000:.0f}; CPU mean "
              f"{statistics.mean(cpu[mode]) * 1000:.0f} ms/image, max {max(cpu[mode]) * 1000:.0f}")
    if args.tesseract:
        if not shutil.which("tesseract"):
            print("tesseract: not installed")
            return
        strict = {"auto": 0, "full": 0}
        loose = {"auto": 0, "full": 0}
        tt = {"auto": 0.0, "full": 0.0}
        for _name, mark, doc in docs:
            for mode in ("auto", "full"):
                text, dt = tesseract(doc, mode == "full")
                tt[mode] += dt
                strict[mode] += squash(mark) in squash(text)
                # ★ misread as another character still counts here
                pat = re.escape(squash(mark)).replace("★", ".")
                loose[mode] += re.search(pat, squash(text)) is not None
        for mode in ("auto", "full"):
            print(f"tesseract {mode}: found {strict[mode]}/{n} (with ★ misread allowed {loose[mode]}/{n}), "
                  f"{tt[mode] / n * 1000:.0f} ms/image")


def _scan_tree(root: Path, jobs: int, tmp: str, cold: bool = False) -> None:
    """Scan `root` with OCR off and auto, in-process and with `baomi scan`; print the overhead."""
    from scanner.config import ScanConfig
    from scanner.engine import Scanner

    files = sorted(root.iterdir())
    n = len(files)
    skipped = sum(ocr.looks_like_document(f.read_bytes()) is not None for f in files)
    print(f"pre-check skips {skipped}/{n}")
    times: dict[str, float] = {}
    for mode in ("off", "auto", "off", "auto"):  # twice, interleaved: warm page cache
        scanner = Scanner(ScanConfig(ocr_mode=mode))
        t0 = time.perf_counter()
        for f in files:
            scanner.scan_path(str(f))
        dt = time.perf_counter() - t0
        times[mode] = min(times.get(mode, dt), dt)
    print(f"in-process Scanner: off {times['off'] / n * 1000:.2f} ms/file, auto "
          f"{times['auto'] / n * 1000:.2f} ms/file: +{(times['auto'] - times['off']) / n * 1000:.2f} ms/file, "
          f"+{(times['auto'] / times['off'] - 1) * 100:.0f} %")
    baomi = str(Path(sys.executable).parent / "baomi")
    if Path(baomi).exists():
        cli: dict[str, float] = {}
        for run, mode in enumerate(("off", "auto", "off", "auto")):
            # a fresh scan cache per run: an incremental cache would answer the second run
            env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / f"cache-{root.name}-{run}-{cold}")}
            if cold:  # files come from storage, as on a USB stick, not from the page cache
                os.sync()
                Path("/proc/sys/vm/drop_caches").write_text("3\n")
            t0 = time.perf_counter()
            p = subprocess.run([baomi, "scan", "--format", "jsonl", "--no-progress", "--all", "--ocr", mode,
                                "-j", str(jobs), str(root)], env=env, capture_output=True, check=False)
            dt = time.perf_counter() - t0
            cli[mode] = min(cli.get(mode, dt), dt)
            reported = p.stdout.count(b"\n")
            if reported != n:
                print(f"baomi scan ({mode}) reported {reported} files: {p.stderr[-300:]!r}")
        print(f"baomi scan -j {jobs}{' cold page cache' if cold else ''} (process start included): off {cli['off']:.2f} s, auto {cli['auto']:.2f} s: "
              f"+{(cli['auto'] / cli['off'] - 1) * 100:.0f} %")
    os.environ.pop(ocr.ENV_MODE, None)
    ocr.reset_env_settings()


def _write_tree(root: Path, images: list[bytes], copies: int) -> int:
    """`copies` files per image (a copy costs a scan what the original costs: typed, read and
    pre-checked again; no cache is used); total bytes."""
    root.mkdir()
    total = 0
    for c in range(copies):
        for i, data in enumerate(images):
            (root / f"IMG_{c:02d}{i:04d}.jpg").write_bytes(data)
            total += len(data)
    return total


def _bench_tree(tmp: str, name: str, images: list[bytes], args: argparse.Namespace, title: str) -> None:
    """Write `args.copies` files per image under tmp/name, then time the scans (page cache warm,
    and dropped with --cold)."""
    root = Path(tmp) / name
    total = _write_tree(root, images, args.copies)
    print(f"\n## {name} tree: {len(images) * args.copies} {title} ({len(images)} distinct × {args.copies}), "
          f"{total / 1e6:.1f} MB")
    _scan_tree(root, args.jobs, tmp)
    if args.cold:
        _scan_tree(root, args.jobs, tmp, cold=True)


def bench_photos(args: argparse.Namespace) -> None:
    sizes = [(800, 600), (1600, 1200), (1024, 768), (1280, 960), (3264, 2448)]
    with tempfile.TemporaryDirectory(prefix="ocr-bench-") as tmp:
        if args.photos:
            images = [photo_like(10_000 + i, sizes[i % len(sizes)]) for i in range(args.photos)]
            images = [with_exif_thumbnail(d) if i % 2 else d for i, d in enumerate(images)]
            _bench_tree(tmp, "photo", images, args,
                        "photo-like JPEGs 800×600…3264×2448, half with an EXIF thumbnail")
        if args.camera:
            images = [with_exif_thumbnail(photo_like(20_000 + i, (4032, 3024), quality=92)) for i in range(args.camera)]
            _bench_tree(tmp, "camera", images, args, "4032×3024 JPEGs with EXIF thumbnails, as phones write them")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=100, help="distinct photo-like images in the tree")
    ap.add_argument("--camera", type=int, default=100, help="distinct camera-size photos in a second tree")
    ap.add_argument("--copies", type=int, default=10, help="files per distinct image (100 × 10 = 1,000 photos)")
    ap.add_argument("--pages", type=int, default=15, help="generated document pages")
    ap.add_argument("--phone", type=int, default=4, help="generated phone photos of pages")
    ap.add_argument("--hard", action="store_true", help="add the harder generated set (29 pages)")
    ap.add_argument("--tesseract", action="store_true", help="also measure Debian tesseract chi_sim")
    ap.add_argument("--jobs", type=int, default=0, help="baomi scan -j for the photo trees (0: cores+1)")
    ap.add_argument("--skip-documents", action="store_true")
    ap.add_argument("--modes", default="auto,full", help="OCR modes read on the document images (auto,full)")
    ap.add_argument("--cold", action="store_true",
                    help="also time baomi scan with the page cache dropped before each run (root)")
    args = ap.parse_args()
    if not ocr.available():
        sys.exit("rapidocr-onnxruntime is not installed")
    if not args.skip_documents:
        bench_documents(args)
    if args.photos or args.camera:
        bench_photos(args)


if __name__ == "__main__":
    main()
