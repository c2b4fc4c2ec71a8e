"""Office and PDF throughput (issue 17, goal 4) and the warm .docx verdict (goal 3), in one run.

    .venv/bin/python bench/office_bench.py [--office 900] [--pdf 300] [--verdicts 1000] [--runs 3]

Generates once, reproducibly, under bench/out/office-tree (a stamp holds the parameters):
- office/: --office .docx/.xlsx/.pptx in equal shares, each 20-200 KB (python-docx, openpyxl,
  python-pptx), of secrecy-office prose (bench/prose.py: a quarter without level words, a sixth
  with marking-like shapes, 1 % marked with a 公文 head);
- pdf/: --pdf text PDFs of 2-6 pages (reportlab, STSong-Light CID font), 1 % marked.
Then, on this machine's cores:
- `baomi scan --no-cache` over each set: files/s, MB/s, median of --runs runs (warm page cache),
  the CPU seconds of the whole process tree (files per CPU second; times the cores: what the
  machine would do idle), and the peak RSS summed over the process tree (sampled every 50 ms);
- verdict latency of one warm `Scanner` for --verdicts ~100 KB .docx files (as
  bench/verdict_bench.py: one `scan_path(...).to_record()` at a time): p50 / p99 / max.
Every figure says the 1-minute load average before it was taken (the machine may be shared).
Goals: office >= 2,000 files/s, PDF >= 300 files/s, RSS < 300 MB, docx verdict < 20 ms.
Results also go to bench/out/office.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from prose import choose_class, make_text, pools  # noqa: E402
from run import count_files, measure_rss_and_io  # noqa: E402
from verdict_bench import pct  # noqa: E402

BAOMI = str(Path(sys.executable).parent / "baomi")
#: Target file sizes (bytes on disk); the prose is sized to land in 20-200 KB after deflate.
MIN_KB, MAX_KB = 20, 200


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def write_docx(path: Path, text: str) -> None:
    import docx

    d = docx.Document()
    for line in _lines(text):
        d.add_paragraph(line)
    d.save(str(path))


def write_xlsx(path: Path, text: str) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for r, line in enumerate(_lines(text), 1):
        # A register of documents: a number, the paragraph as the title column, a date.
        ws.cell(row=r, column=1, value=r)
        ws.cell(row=r, column=2, value=line)
        ws.cell(row=r, column=3, value=f"2026-{r % 12 + 1:02d}-{r % 28 + 1:02d}")
    wb.save(str(path))


def write_pptx(path: Path, text: str) -> None:
    from pptx import Presentation
    from pptx.util import Inches, Pt

    prs = Presentation()
    lines = _lines(text)
    for k in range(0, len(lines), 8):
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = lines[k][:40]
        body = slide.placeholders[1].text_frame
        body.text = lines[k]
        for ln in lines[k + 1:k + 8]:
            body.add_paragraph().text = ln
        note = slide.notes_slide.notes_text_frame
        note.text = lines[k][:80]
        box = slide.shapes.add_textbox(Inches(0.5), Inches(6.8), Inches(9), Inches(0.5)).text_frame
        box.text = f"第{k // 8 + 1}页"
        box.paragraphs[0].runs[0].font.size = Pt(10)
    prs.save(str(path))


def gen_office(d: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    plain, worded = pools()
    d.mkdir(parents=True, exist_ok=True)
    writers = (("docx", write_docx, 36, 1.9), ("xlsx", write_xlsx, 8, 1.45), ("pptx", write_pptx, 30, 0.45))
    for i in range(n):
        ext, write, base_kb, ratio = writers[i % 3]
        # Sizes spread log-uniformly over 20-200 KB: text bytes ~ (size - template) * deflate ratio.
        size_kb = MIN_KB * (MAX_KB / MIN_KB) ** rng.random()
        text_bytes = int(max(2, size_kb - base_kb) * 1024 * ratio * 1.3)
        text = make_text(rng, plain, worded, text_bytes, choose_class(rng), copy=i)
        path = d / f"o{i:05d}.{ext}"
        if not path.exists():  # the same seed gives the same files: an interrupted run resumes
            write(path, text)


def gen_pdf(d: Path, n: int, seed: int) -> None:
    from gen_mixed import make_pdf  # one CJK text-PDF writer for the benches

    rng = random.Random(seed)
    plain, worded = pools()
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pages = rng.randint(2, 6)
        lines = _lines(make_text(rng, plain, worded, pages * 40 * 110, choose_class(rng), copy=i))
        path = d / f"p{i:04d}.pdf"
        if path.exists():
            continue
        path.write_bytes(make_pdf(lines))


def generate(tree: Path, office: int, pdf: int, seed: int) -> None:
    params = {"office": office, "pdf": pdf, "seed": seed, "v": 1}
    stamp = tree / ".params.json"
    if stamp.exists() and json.loads(stamp.read_text()) == params:
        return
    gen_office(tree / "office", office, seed)
    gen_pdf(tree / "pdf", pdf, seed + 1)
    stamp.write_text(json.dumps(params))


def load() -> float:
    return os.getloadavg()[0]


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def throughput(d: Path, runs: int, baomi: list[str]) -> dict[str, float]:
    n, size = count_files(d)
    cmd = [*baomi, "scan", "--no-cache", "--format", "jsonl", str(d)]
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warm the page cache
    walls, peaks, loads, cpus = [], [], [], []
    for _ in range(runs):
        loads.append(load())
        cpu = children_cpu()
        rss, _read, wall = measure_rss_and_io(cmd)
        # CPU seconds of the whole process tree (workers are reaped by baomi, baomi by us): on a
        # shared machine the wall time says how busy the others were; this says what a scan costs.
        cpus.append(children_cpu() - cpu)
        walls.append(wall)
        peaks.append(rss)
    t = statistics.median(walls)
    cpu_s = statistics.median(cpus)
    cores = os.cpu_count() or 1
    return {"files": n, "mb": round(size / 1e6, 1), "files_per_s": round(n / t, 1),
            "MB_per_s": round(size / 1e6 / t, 1), "wall_s": round(t, 2), "cpu_s": round(cpu_s, 2),
            "files_per_cpu_s": round(n / cpu_s, 1), f"files_per_s_on_{cores}_idle_cores": round(cores * n / cpu_s, 1),
            "peak_rss_mb": round(max(peaks), 1), "load_before": round(statistics.median(loads), 2)}


def verdicts(d: Path, n: int, seed: int) -> dict[str, float]:
    from verdict_bench import DOCX_TEXT

    from scanner.config import ScanConfig
    from scanner.engine import Scanner

    rng = random.Random(seed)
    plain, worded = pools()
    d.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        p = d / f"v{i:05d}.docx"
        text = make_text(rng, plain, worded, DOCX_TEXT, choose_class(rng), copy=i)
        if not p.exists():  # generated once, reused by later runs
            write_docx(p, text)
        files.append(p)
    scanner = Scanner(ScanConfig(ocr_mode="auto"))  # as agents/daemon.py builds it
    scanner.warm_up()  # and readies it
    for p in files:
        p.read_bytes()
    for p in files[:5]:
        scanner.scan_path(str(p)).to_record()
    before = load()
    times, cpu = [], []
    for p in files:
        t, c = time.perf_counter(), time.thread_time()
        scanner.scan_path(str(p)).to_record()
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.thread_time() - c) * 1000)  # this thread's CPU: what the verdict costs
    return {"files": n, "mean_kb": round(statistics.mean(p.stat().st_size for p in files) / 1024),
            "p50_ms": round(pct(times, 0.5), 2), "p99_ms": round(pct(times, 0.99), 2),
            "max_ms": round(max(times), 2), "cpu_p50_ms": round(pct(cpu, 0.5), 2),
            "cpu_p99_ms": round(pct(cpu, 0.99), 2), "load_before": round(before, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", default=str(ROOT / "bench" / "out" / "office-tree"))
    ap.add_argument("--office", type=int, default=900)
    ap.add_argument("--pdf", type=int, default=300)
    ap.add_argument("--verdicts", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--out", default="office.json", help="results file name under bench/out")
    ap.add_argument("--only", default="office,pdf,verdict", help="which figures (comma-separated)")
    ap.add_argument("--baomi", default=BAOMI, help="the command that runs baomi (to compare two builds)")
    a = ap.parse_args()
    tree = Path(a.tree)
    only = set(a.only.split(","))
    generate(tree, a.office, a.pdf, a.seed)
    results: dict[str, object] = {"cores": os.cpu_count()}
    for name in ("office", "pdf"):
        if name in only:
            results[name] = row = throughput(tree / name, a.runs, shlex.split(a.baomi))
            print(f"{name:7s} {row['files']} files, {row['mb']} MB: {row['files_per_s']} files/s, "
                  f"{row['MB_per_s']} MB/s wall; {row['files_per_cpu_s']} files per CPU second; "
                  f"peak RSS {row['peak_rss_mb']} MB (load {row['load_before']})", flush=True)
    if "verdict" in only and a.verdicts:
        results["docx_verdict"] = row = verdicts(tree / "verdict-docx", a.verdicts, a.seed + 2)
        print(f"verdict {row['files']} .docx of ~{row['mean_kb']} KB: p50 {row['p50_ms']} ms, "
              f"p99 {row['p99_ms']} ms, max {row['max_ms']} ms wall; CPU p50 {row['cpu_p50_ms']} ms, "
              f"p99 {row['cpu_p99_ms']} ms (load {row['load_before']})", flush=True)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / a.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
