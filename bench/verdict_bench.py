"""One verdict in a warm process (issue 17, goal 3): the endpoint agent's path.

    .venv/bin/python bench/verdict_bench.py [--files 1000] [--kinds docx,text] [--dir DIR]

Writes --files ~100 KB .docx and --files ~1 MB UTF-8 text files of secrecy-office prose
(bench/prose.py: a quarter without level words, a sixth with marking-like shapes, 1 % marked),
then asks one long-lived `Scanner` (the agent's in-process scanner, OCR auto) for one verdict at a
time — `scan_path(path).to_record()`, as agents/daemon.py does — and prints p50 / p99 / max
milliseconds per kind (goal: < 20 ms), wall clock and the process's CPU time (on a shared,
loaded machine the CPU figures are the ones to compare). No interpreter or worker is started per file; the files
are read once before timing so the page cache is warm, as for a file that has just landed.
Results also go to bench/out/verdict.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from prose import choose_class, make_text, pools, write_docx  # noqa: E402

#: Bytes of prose a ~100 KB .docx holds (deflate halves Chinese UTF-8 text about twice over).
DOCX_TEXT = 190_000
TEXT_SIZE = 1_000_000


def generate(d: Path, kind: str, n: int, seed: int) -> list[tuple[Path, str]]:
    rng = random.Random(seed)
    plain, worded = pools()
    out = []
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cls = choose_class(rng)
        if kind == "docx":
            p = d / f"v{i:05d}.docx"
            write_docx(p, make_text(rng, plain, worded, DOCX_TEXT, cls, copy=i))
        else:
            p = d / f"v{i:05d}.txt"
            p.write_text(make_text(rng, plain, worded, TEXT_SIZE, cls, copy=i), encoding="utf-8")
        out.append((p, cls))
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1000, help="files per kind")
    ap.add_argument("--kinds", default="docx,text")
    ap.add_argument("--dir", default=None, help="where to write the files (default: a temporary directory)")
    ap.add_argument("--seed", type=int, default=17)
    a = ap.parse_args()

    from scanner.config import ScanConfig
    from scanner.engine import Scanner

    results: dict[str, object] = {"files_per_kind": a.files}
    with tempfile.TemporaryDirectory(dir=a.dir) as td:
        scanner = Scanner(ScanConfig(ocr_mode="auto"))  # as agents/daemon.py builds it
        scanner.warm_up()  # and readies it
        for kind in a.kinds.split(","):
            files = generate(Path(td) / kind, kind, a.files, a.seed)
            sizes = [p.stat().st_size for p, _ in files]
            for p, _ in files:  # warm page cache: the agent judges a file that has just been written
                p.read_bytes()
            for p, _ in files[:5]:  # warm process: code paths, regex caches, lazy imports
                scanner.scan_path(str(p)).to_record()
            times, cpu, missed = [], [], 0
            for p, cls in files:
                c = time.process_time()
                t = time.perf_counter()
                rec = scanner.scan_path(str(p)).to_record()
                times.append((time.perf_counter() - t) * 1000)
                cpu.append((time.process_time() - c) * 1000)
                if (cls == "marked") != bool(rec.get("level")):
                    missed += 1
            row = {"files": len(files), "mean_kb": round(statistics.mean(sizes) / 1024),
                   "p50_ms": round(pct(times, 0.5), 2), "p99_ms": round(pct(times, 0.99), 2),
                   "max_ms": round(max(times), 2), "cpu_p50_ms": round(pct(cpu, 0.5), 2),
                   "cpu_p99_ms": round(pct(cpu, 0.99), 2), "verdicts_off": missed}
            results[kind] = row
            print(f"{kind:5s} {row['files']} files of ~{row['mean_kb']} KB: p50 {row['p50_ms']} ms, "
                  f"p99 {row['p99_ms']} ms, max {row['max_ms']} ms (CPU p50 {row['cpu_p50_ms']}, "
                  f"p99 {row['cpu_p99_ms']} ms); verdicts not as generated: {missed}", flush=True)
            for p, _ in files:
                os.unlink(p)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "verdict.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
