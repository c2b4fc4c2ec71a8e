"""What the libraries alone cost per file, beside the per-file budget of each goal of issue 17
that is not met (goals 1 and 4), and beside what baomi costs.

    .venv/bin/python bench/floors.py [--text-files 6000] [--passes 3]

A goal in files per second on 2 cores is a budget of CPU per file: 2 cores / 2,000 office files/s
is 1.0 ms a file, 2 / 300 text PDFs/s is 6.7 ms a file, "half of `yara -r -p 2`'s wall time" is
half of yara's CPU per file (both keep 2 cores busy). A floor is what the mature libraries
baomi is built on cost for the same files with no baomi code at all, in one warm process, CPU
time, best of --passes:

- text (the prose tree of bench/prose_bench.py): open + fstat + one read, and the shipped
  Hyperscan prefilter, on every file; decoding and classifying (the marking grammar, Python) the
  files the prefilter passes; beside `yara -r -p 2`'s CPU per file (the peer, its own process)
  and baomi's `scan_path`, and baomi's whole run (`baomi scan --no-cache`, every process's CPU);
- office (bench/office_bench.py's tree): zipfile + zlib inflating the parts that hold text (body,
  headers, footers, notes, comments; shared strings and worksheets; slides and notes), lxml
  parsing them, and a bare iteration over their elements; beside baomi's `scan_bytes`;
- PDF (the same tree): PDFium (pypdfium2) opening each document, loading every page and its
  text page and reading its text; beside baomi's `scan_bytes`.

A floor above its budget means the goal cannot be met by any code on top of that library; one
below it says how much room the rest has. Results: bench/out/floors.json.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from office_bench import children_cpu  # noqa: E402
from run import peer_yara_rules  # noqa: E402

from scanner.engine import Scanner  # noqa: E402

CORES = 2
OFFICE_FILES_PER_S, PDF_FILES_PER_S, TEXT_SHARE_OF_YARA = 2000, 300, 0.5
#: The OOXML parts that hold a document's text (what the OOXML extractor reads, without its
#: properties, drawings and embedded objects: a floor may only leave work out).
TEXT_PARTS = re.compile(
    r"word/(?:document|header\d*|footer\d*|footnotes|endnotes|comments)\.xml"
    r"|xl/(?:sharedStrings|worksheets/sheet\d+)\.xml"
    r"|ppt/(?:slides/slide\d+|notesSlides/notesSlide\d+)\.xml")
T = TypeVar("T")
_OPEN = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC


def best(fn: Callable[[T], object], items: Sequence[T], passes: int) -> float:
    """Least CPU milliseconds per item over `passes` passes."""
    out = float("inf")
    for _ in range(passes):
        t = time.process_time()
        for it in items:
            fn(it)
        out = min(out, (time.process_time() - t) / len(items) * 1e3)
    return out


def least_cpu(cmd: list[str], passes: int) -> float:
    """Least CPU seconds (user + system) of a command and everything it starts, over `passes`
    runs after one that warms the page cache."""
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    cpu = []
    for _ in range(passes):
        before = children_cpu()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        cpu.append(children_cpu() - before)
    return min(cpu)


def text_floors(scanner: Scanner, tree: Path, n: int, passes: int) -> dict[str, float]:
    from scanner.classify import classify
    from scanner.decode import decode
    from scanner.model import Segment

    paths = sorted(str(p) for p in tree.rglob("*.txt"))
    random.Random(5).shuffle(paths)
    sample = paths[:n]
    prefilter = scanner.rules.prefilter

    def read(p: str) -> bytes:
        fd = os.open(p, _OPEN)
        try:
            return os.read(fd, os.fstat(fd).st_size + 1)
        finally:
            os.close(fd)

    datas = [read(p) for p in sample]
    passed = [d for d in datas if prefilter(d)]

    def judge(d: bytes) -> None:
        classify([Segment(text=decode(d)[0], member=None, role="body", index=0)])

    row: dict[str, float] = {"files": len(sample), "passed_share": round(len(passed) / len(sample), 3)}
    row["read_ms"] = best(read, sample, passes)
    row["prefilter_ms"] = best(prefilter, datas, passes)
    row["judge_passed_ms"] = best(judge, passed, passes) * len(passed) / len(sample)
    row["floor_ms"] = row["read_ms"] + row["prefilter_ms"] + row["judge_passed_ms"]
    row["baomi_ms"] = best(scanner.scan_path, sample, passes)
    baomi = [str(Path(sys.executable).parent / "baomi"), "scan", "--no-cache", "--format", "jsonl", str(tree)]
    row["baomi_e2e_ms"] = least_cpu(baomi, passes) / len(paths) * 1e3
    if shutil.which("yara"):
        rule = ROOT / "bench" / "out" / "peer-level-words.yar"
        peer_yara_rules(rule)
        cmd = ["yara", "-r", "-p", str(CORES), str(rule), str(tree)]
        row["yara_ms"] = least_cpu(cmd, passes) / len(paths) * 1e3
        row["budget_ms"] = TEXT_SHARE_OF_YARA * row["yara_ms"]
    return {k: round(v, 4) for k, v in row.items()}


def office_floors(scanner: Scanner, tree: Path, passes: int) -> dict[str, dict[str, float]]:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, huge_tree=True)
    def inflate(d: bytes) -> list[bytes]:
        z = zipfile.ZipFile(io.BytesIO(d))
        return [z.read(n) for n in z.namelist() if TEXT_PARTS.fullmatch(n)]

    def parse(d: bytes) -> None:
        for x in inflate(d):
            for _el in etree.fromstring(x, parser).iter():
                pass

    out = {}
    for ext in ("docx", "xlsx", "pptx"):
        datas = [p.read_bytes() for p in sorted(tree.glob(f"*.{ext}"))]
        if not datas:
            continue
        name = f"x.{ext}"

        def ours(d: bytes, n: str = name) -> None:
            scanner.scan_bytes(d, n)

        out[ext] = {"files": len(datas), "kb": round(sum(map(len, datas)) / len(datas) / 1024, 1),
                    "inflate_ms": round(best(inflate, datas, passes), 3),
                    "floor_ms": round(best(parse, datas, passes), 3),
                    "baomi_ms": round(best(ours, datas, passes), 3),
                    "budget_ms": round(CORES / OFFICE_FILES_PER_S * 1e3, 3)}
    return out


def pdf_floors(scanner: Scanner, tree: Path, passes: int) -> dict[str, float]:
    import pypdfium2 as pdfium

    datas = [p.read_bytes() for p in sorted(tree.glob("*.pdf"))]

    def text(d: bytes) -> None:
        doc = pdfium.PdfDocument(d)
        try:
            for i in range(len(doc)):
                page = doc[i]
                tp = page.get_textpage()
                tp.get_text_range()
                tp.close()
                page.close()
        finally:
            doc.close()

    return {"files": len(datas), "kb": round(sum(map(len, datas)) / len(datas) / 1024, 1),
            "floor_ms": round(best(text, datas, passes), 3),
            "baomi_ms": round(best(lambda d: scanner.scan_bytes(d, "x.pdf"), datas, passes), 3),
            "budget_ms": round(CORES / PDF_FILES_PER_S * 1e3, 3)}


def verdict(floor: float, budget: float) -> str:
    return f"floor {floor / budget:.1f}x the budget" + (": out of reach" if floor > budget else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prose-tree", default=str(ROOT / "bench" / "out" / "prose-tree"))
    ap.add_argument("--office-tree", default=str(ROOT / "bench" / "out" / "office-tree"))
    ap.add_argument("--text-files", type=int, default=6000, help="text files sampled for the in-process figures")
    ap.add_argument("--passes", type=int, default=3)
    a = ap.parse_args()
    prose, office = Path(a.prose_tree), Path(a.office_tree)
    if not (prose / ".params.json").exists():  # any existing tree is measured as it is
        from prose_bench import generate as gen_prose
        gen_prose(prose, 20_000, 600)
    if not (office / ".params.json").exists():
        from office_bench import generate as gen_office
        gen_office(office, 900, 300, 17)
    scanner = Scanner()  # one warm scanner, as the agent keeps (every reader loaded: `warm_up`)
    scanner.warm_up()
    results: dict[str, object] = {"cores": CORES, "load_before": os.getloadavg()[0]}
    t = text_floors(scanner, prose, a.text_files, a.passes)
    results["text"] = t
    print(f"text   {t['files']} files, {t['passed_share']:.0%} pass the prefilter; CPU us per file: read "
          f"{t['read_ms'] * 1e3:.1f}, prefilter {t['prefilter_ms'] * 1e3:.1f}, decode+classify of the passed "
          f"{t['judge_passed_ms'] * 1e3:.1f} (per file of the tree) = floor {t['floor_ms'] * 1e3:.1f}; "
          f"baomi scan_path {t['baomi_ms'] * 1e3:.1f}, end to end (walk, workers, output, start; "
          f"every process) {t['baomi_e2e_ms'] * 1e3:.1f}", flush=True)
    if "budget_ms" in t:
        print(f"       yara -r -p {CORES}: {t['yara_ms'] * 1e3:.1f} us per file -> budget "
              f"{t['budget_ms'] * 1e3:.1f}; {verdict(t['floor_ms'], t['budget_ms'])}", flush=True)
    o = office_floors(scanner, office / "office", a.passes)
    results["office"] = o
    for ext, r in o.items():
        print(f"{ext}   {r['files']} files of ~{r['kb']} KB; CPU ms per file: inflate {r['inflate_ms']:.2f}, "
              f"+ parse + iterate = floor {r['floor_ms']:.2f}; baomi {r['baomi_ms']:.2f}; budget "
              f"{r['budget_ms']:.2f}; {verdict(r['floor_ms'], r['budget_ms'])}", flush=True)
    p = pdf_floors(scanner, office / "pdf", a.passes)
    results["pdf"] = p
    print(f"pdf    {p['files']} files of ~{p['kb']} KB; CPU ms per file: PDFium floor {p['floor_ms']:.2f}; "
          f"baomi {p['baomi_ms']:.2f}; budget {p['budget_ms']:.2f}; {verdict(p['floor_ms'], p['budget_ms'])}",
          flush=True)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "floors.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
