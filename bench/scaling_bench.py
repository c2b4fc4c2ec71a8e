"""Cost against tree size (issue 17, goal 6): first scan and rescan at 10k, 100k (and 1M) files.

    .venv/bin/python bench/scaling_bench.py [--sizes 10000,100000] [--million] [--runs 3] [--dir DIR]

For each size a tree of small Chinese office-text files is written (bench/rescan_bench.py's
content: 10-60 words a file, one in a thousand marked; 500 files a directory, 100 directories a
parent), then, as whole processes (start-up included):
- the first scan with a fresh cache (`baomi scan --cache C --format jsonl TREE`): every file read,
  identified, prefiltered and, where it holds a level word, classified;
- the rescan of the unchanged tree from that cache, and the peer `find TREE -printf '%s %T@\\n'`
  (a walk that stats every file), --runs times each, in turn, medians.
Output is checked: every scan prints exactly the marked files. Wall time, CPU time (user+system of
the process tree: on a shared machine the steadier figure), files/s and peak RSS (largest process)
at each size go to bench/out/scaling.json, and a plot of files/s and of seconds against size
(log-log: a straight line of slope 1 is linear cost) to bench/out/scaling.svg.

Whole-tree peak RSS (the scanning process and its workers together, sampled every 50 ms: the
issue's 300 MB ceiling is for the tree) and user and system CPU apart go beside those figures.
--trees DIR keeps the generated trees in DIR and reuses a complete one on the next run (same
generator, same seed): a million files take minutes to write on tmpfs, a quarter of an hour on disk.

--million adds the 1M-file tree (~4 GB of small files on disk; about 10 minutes on 2 cores). The
trees go under --dir: the default is a temporary directory on /tmp's file system (disk here; tmpfs
would keep 4 GB of small files in memory shared with everything else); /dev/shm for a walk that
never waits for storage.
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
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from rescan_bench import WORDS  # noqa: E402  (the same content as the 100k rescan bench)

BAOMI = str(Path(sys.executable).parent / "baomi")
PER_DIR, DIRS_PER_PARENT = 500, 100


def generate(root: Path, n: int, seed: int = 17) -> int:
    """n small text files, one in a thousand marked; returns how many are marked."""
    rng = random.Random(seed)
    marked = 0
    d = root
    for i in range(n):
        if i % PER_DIR == 0:
            d = root / f"p{i // (PER_DIR * DIRS_PER_PARENT):03d}" / f"d{i // PER_DIR:05d}"
            d.mkdir(parents=True)
        body = "".join(rng.choice(WORDS) for _ in range(rng.randint(10, 60))) + "\n"
        if i % 1000 == 7:
            body = f"{i:07d}\n机密★10年\n特急\n关于检查工作的通知\n" + body
            marked += 1
        with open(d / f"f{i:07d}.txt", "wb") as fh:
            fh.write(body.encode("utf-8"))
    return marked


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants (MB), read from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1])
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo += [int(c) for c in fh.read().split()]
        except (OSError, ValueError):
            continue  # exited meanwhile
    return total * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def run(cmd: list[str]) -> dict[str, Any]:
    """wall s, CPU s (user, system) of the process and its reaped children, peak RSS MB of the largest
    process and of the whole process tree (sampled), stdout."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _tree_rss_mb(p.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = p.stdout.read() if p.stdout else b""
    _, _, ru = os.wait4(p.pid, 0)
    done.set()
    sampler.join()
    p.returncode = 0  # reaped by wait4
    return {"wall": time.perf_counter() - t, "cpu": ru.ru_utime + ru.ru_stime, "user": ru.ru_utime,
            "sys": ru.ru_stime, "rss": ru.ru_maxrss / 1024, "tree_rss": peak[0], "out": out}


def _marked(n: int) -> int:
    """How many of `generate`'s n files are marked (i % 1000 == 7)."""
    return n // 1000 + (1 if n % 1000 > 7 else 0)


def measure(base: Path, n: int, runs: int, trees: Path | None = None) -> dict[str, Any]:
    cache = base / f"cache{n}.sqlite"
    tree = (trees or base) / f"tree{n}"
    done_mark = tree.parent / f".tree{n}.complete"
    gen_s: float | None = None
    if trees is not None and done_mark.exists():
        marked = _marked(n)  # a complete tree of an earlier run
    else:
        if tree.exists():
            shutil.rmtree(tree)  # an interrupted generation
        t = time.perf_counter()
        marked = generate(tree, n)
        gen_s = round(time.perf_counter() - t, 1)
        if trees is not None:
            done_mark.write_text(f"{marked}\n")
    scan = [BAOMI, "scan", "--no-progress", "--cache", str(cache), "--format", "jsonl", str(tree)]
    peer = ["find", str(tree), "-printf", "%s %T@\n"]
    subprocess.run(["sync"], check=False)
    first = run(scan)
    if len(first["out"].splitlines()) != marked:
        raise SystemExit(f"first scan of {n} files printed {len(first['out'].splitlines())} records, not {marked}")
    run(peer)  # warm-up of the peer (the first scan warmed the tree for the rescan)
    rescans, finds = [], []
    for _ in range(runs):
        r = run(scan)
        if len(r["out"].splitlines()) != marked:
            raise SystemExit(f"rescan of {n} files printed {len(r['out'].splitlines())} records, not {marked}")
        rescans.append(r)
        finds.append(run(peer))
    res_w, res_c = statistics.median(r["wall"] for r in rescans), statistics.median(r["cpu"] for r in rescans)
    find_w, find_c = statistics.median(f["wall"] for f in finds), statistics.median(f["cpu"] for f in finds)
    return {"files": n, "generate_s": gen_s,
            "first_s": round(first["wall"], 2), "first_cpu_s": round(first["cpu"], 2),
            "first_user_s": round(first["user"], 2), "first_sys_s": round(first["sys"], 2),
            "first_files_per_s": round(n / first["wall"]), "first_peak_rss_mb": round(first["rss"]),
            "first_tree_rss_mb": round(first["tree_rss"]),
            "rescan_s": round(res_w, 3), "rescan_cpu_s": round(res_c, 3), "rescan_files_per_s": round(n / res_w),
            "rescan_peak_rss_mb": round(max(r["rss"] for r in rescans)),
            "rescan_tree_rss_mb": round(max(r["tree_rss"] for r in rescans)),
            "find_s": round(find_w, 3), "find_cpu_s": round(find_c, 3), "find_files_per_s": round(n / find_w),
            "rescan_over_find": round(res_w / find_w, 2), "rescan_over_find_cpu": round(res_c / find_c, 2)}


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["files"] for r in rows]
    fig, (left, right, cpu, mem) = plt.subplots(1, 4, figsize=(20, 4.2))
    for key, label, style in (("first", "baomi first scan", "o-"), ("rescan", "baomi rescan (cache)", "s-"),
                              ("find", "find -printf (stat walk)", "^--")):
        left.plot(sizes, [r[f"{key}_files_per_s"] for r in rows], style, label=label)
        right.plot(sizes, [r[f"{key}_s"] for r in rows], style, label=label)
        cpu.plot(sizes, [r[f"{key}_cpu_s"] for r in rows], style, label=label)
    lo, hi = min(sizes), max(sizes)
    for ax, ref in ((right, rows[0]["first_s"]), (cpu, rows[0]["first_cpu_s"])):
        ax.plot([lo, hi], [ref, ref * hi / lo], ":", color="grey", label="linear from the smallest")
    for key, label, style in (("first", "first scan", "o-"), ("rescan", "rescan", "s-")):
        if all(f"{key}_tree_rss_mb" in r for r in rows):  # rows of an older run may lack it
            mem.plot(sizes, [r[f"{key}_tree_rss_mb"] for r in rows], style, label=f"{label}: whole process tree")
        mem.plot(sizes, [r[f"{key}_peak_rss_mb"] for r in rows], style.replace("-", ":"),
                 label=f"{label}: largest process")
    mem.axhline(300, color="red", linestyle="--", linewidth=0.8, label="300 MB (issue 17 ceiling)")
    mem.set_ylabel("peak RSS, MB")
    mem.set_title("memory")
    mem.legend(fontsize=8)
    cpu.set_yscale("log")
    cpu.set_ylabel("CPU seconds (user+system, all processes)")
    cpu.set_title("CPU time (steadier on a shared machine)")
    for ax in (left, right, cpu, mem):
        ax.set_xscale("log")
        ax.set_xlabel("files in the tree")
        ax.grid(True, which="both", alpha=0.3)
    left.set_yscale("log")
    left.set_ylabel("files / s (process start included)")
    left.set_title("throughput")
    right.set_yscale("log")
    right.set_ylabel("wall seconds")
    right.set_title("time (slope 1 = linear)")
    right.legend(fontsize=8)
    fig.suptitle(f"baomi scan cost against tree size ({os.cpu_count()} cores)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--million", action="store_true", help="add the 1,000,000-file tree")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where the trees are written (default: a temporary directory)")
    ap.add_argument("--trees", default=None, help="keep the trees in this directory and reuse complete ones")
    a = ap.parse_args()
    if not shutil.which("find"):
        print("find is not installed: no peer figure", file=sys.stderr)
        return 2
    sizes = sorted({int(s) for s in a.sizes.split(",") if s} | ({1_000_000} if a.million else set()))
    need = max(sizes) * 4096 * 1.2  # a block a file, and room
    base_dir = a.dir or tempfile.gettempdir()
    trees = Path(a.trees) if a.trees else None
    if trees is not None:
        trees.mkdir(parents=True, exist_ok=True)
        base_dir = a.dir or str(trees)
        need = sum(n * 4096 * 1.2 for n in sizes if not (trees / f".tree{n}.complete").exists())
    free = shutil.disk_usage(base_dir).free
    if free < need:
        print(f"{base_dir} has {free / 1e9:.1f} GB free; {max(sizes)} files need ~{need / 1e9:.1f} GB", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="baomi-scaling-", dir=base_dir) as td:
        for n in sizes:
            row = measure(Path(td), n, a.runs, trees)
            rows.append(row)
            print(json.dumps(row), flush=True)
            # Removing a million small files takes minutes: after the figures are out, not in them.
            if trees is None:
                shutil.rmtree(Path(td) / f"tree{n}")
            (Path(td) / f"cache{n}.sqlite").unlink(missing_ok=True)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps({"dir": base_dir, "cores": os.cpu_count(), "rows": rows}, indent=1))
    plot(rows, out / "scaling.svg")
    print(f"\n{'files':>9} {'first s':>8} {'cpu s':>7} {'files/s':>8} {'rescan s':>9} {'files/s':>8} {'find s':>7} "
          f"{'ratio':>6} {'cpu ratio':>9} {'rss MB':>7} {'tree MB':>8}")
    for r in rows:
        print(f"{r['files']:>9} {r['first_s']:>8} {r['first_cpu_s']:>7} {r['first_files_per_s']:>8} "
              f"{r['rescan_s']:>9} {r['rescan_files_per_s']:>8} {r['find_s']:>7} {r['rescan_over_find']:>6} "
              f"{r['rescan_over_find_cpu']:>9} {r['first_peak_rss_mb']:>7} {r['first_tree_rss_mb']:>8}")
    print(f"plot: {out / 'scaling.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
