"""Rescan of an unchanged tree from the cache (issue 17, goal 2), beside a bare stat walk.

    .venv/bin/python bench/rescan_bench.py [--files 100000] [--runs 5] [--dir DIR]

Writes --files small text files (500 a directory, one in a thousand marked) under DIR (default:
/dev/shm when there is one, so that the figure is the walk's and not the disk's), scans them once
to fill a fresh cache, then runs, in turn, `baomi scan --cache C --format jsonl TREE` and the peer
`find TREE -printf '%s %T@\\n'` (a walk that stats every file and prints its size and mtime)
--runs times each, as whole processes, start-up included. Prints the medians, files/s and the
ratio taken pair by pair (goals: >= 200,000 files/s, within 2x of find). Output checked: the
rescan prints the marked files and nothing else: the very lines of the first scan. Results also go to bench/out/rescan.json.

The project's modules are byte-compiled first (`compileall`, as `pip install` does for an installed
baomi: without it, an environment with PYTHONDONTWRITEBYTECODE compiles every module at every
start; --no-compile measures that). The start-up alone is measured too: `baomi scan` of an empty
directory with the same cache.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BAOMI = str(Path(sys.executable).parent / "baomi")
WORDS = "保密 工作 会议 通知 机关 单位 文件 管理 规定 办公室 人员 制度 安排 落实 检查".split()
PER_DIR = 500


def generate(root: Path, n: int, seed: int = 17) -> int:
    rng = random.Random(seed)
    marked = 0
    for i in range(n):
        d = root / f"d{i // PER_DIR:04d}"
        if i % PER_DIR == 0:
            d.mkdir(parents=True)
        body = "".join(rng.choice(WORDS) for _ in range(rng.randint(10, 60))) + "\n"
        if i % 1000 == 7:
            body = f"{i:06d}\n机密★10年\n特急\n关于检查工作的通知\n" + body
            marked += 1
        (d / f"f{i:06d}.txt").write_text(body, encoding="utf-8")
    return marked


def timed_cpu(cmd: list[str]) -> tuple[float, float, bytes]:
    """(wall seconds, CPU seconds user+system of the process and its reaped children, stdout)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.read() if p.stdout else b""
    _, _, ru = os.wait4(p.pid, 0)
    p.returncode = 0  # reaped by wait4: keep Popen from waiting again
    return time.perf_counter() - t, ru.ru_utime + ru.ru_stime, out


def timed(cmd: list[str]) -> tuple[float, bytes]:
    wall, _, out = timed_cpu(cmd)
    return wall, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", default="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    ap.add_argument("--no-compile", action="store_true", help="do not byte-compile the project's modules first")
    a = ap.parse_args()
    if not a.no_compile:
        subprocess.run([sys.executable, "-m", "compileall", "-q", "agents", "scanner", "rules", "policies", "reports"],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    if not shutil.which("find"):
        print("find is not installed: no peer figure", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="baomi-rescan-", dir=a.dir) as td:
        tree, cache = Path(td) / "tree", Path(td) / "cache.sqlite"
        marked = generate(tree, a.files)
        scan = [BAOMI, "scan", "--cache", str(cache), "--format", "jsonl", str(tree)]
        first, out = timed(scan)
        assert len(out.splitlines()) == marked, "the first scan reports every marked file"
        truth = sorted(out.splitlines())
        peer = ["find", str(tree), "-printf", "%s %T@\n"]
        timed(scan)  # warm-up of both, not counted
        timed(peer)
        empty = Path(td) / "empty"
        empty.mkdir()
        startup = [BAOMI, "scan", "--cache", str(cache), "--format", "jsonl", str(empty)]
        timed(startup)
        starts = sorted(timed_cpu(startup)[:2] for _ in range(a.runs))
        ours, theirs, ratios, cpu_ratios, our_cpu, their_cpu = [], [], [], [], [], []
        for _ in range(a.runs):  # in turn, so that a drift of the machine's speed hits both
            t, c, out = timed_cpu(scan)
            if sorted(out.splitlines()) != truth:
                print("rescan output differs from the first scan", file=sys.stderr)
                return 1
            p, pc, _ = timed_cpu(peer)
            ours.append(t)
            theirs.append(p)
            ratios.append(t / p)
            our_cpu.append(c)
            their_cpu.append(pc)
            cpu_ratios.append(c / pc)
    res = {"files": a.files, "first_scan_s": round(first, 2), "rescan_s": round(statistics.median(ours), 3),
           "find_s": round(statistics.median(theirs), 3),
           "rescan_files_per_s": round(a.files / statistics.median(ours)),
           "find_files_per_s": round(a.files / statistics.median(theirs)),
           "rescan_over_find": round(statistics.median(ratios), 2),
           # CPU time (user+system) is what a machine shared with other work measures best.
           "rescan_cpu_s": round(statistics.median(our_cpu), 3), "find_cpu_s": round(statistics.median(their_cpu), 3),
           "rescan_over_find_cpu": round(statistics.median(cpu_ratios), 2), "runs": a.runs,
           "startup_ms": round(1000 * statistics.median(w for w, _ in starts)),
           "startup_cpu_ms": round(1000 * statistics.median(c for _, c in starts)), "compiled": not a.no_compile}
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "rescan.json").write_text(json.dumps(res, indent=1))
    print(f"rescan of {a.files} unchanged files: {res['rescan_s']} s ({res['rescan_files_per_s']} files/s); "
          f"find -printf: {res['find_s']} s ({res['find_files_per_s']} files/s); "
          f"ratio {res['rescan_over_find']} (median of {a.runs} pairs); CPU {res['rescan_cpu_s']} s vs "
          f"{res['find_cpu_s']} s, ratio {res['rescan_over_find_cpu']}; start-up (empty directory) "
          f"{res['startup_ms']} ms, CPU {res['startup_cpu_ms']} ms{'' if res['compiled'] else ' (not byte-compiled)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
