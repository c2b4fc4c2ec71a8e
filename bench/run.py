"""Scan-speed benchmark (`make bench`): baomi beside ripgrep and yara on the same tree.

Generates (once, reproducibly) the tree of bench/gen_tree.py, then prints in one run:
- plain-text tree: wall time of `baomi scan` (full marking analysis, no cache), `yara -r -p 2`
  with the level words in UTF-8/GB18030/UTF-16LE/BE, and `rg` with the same byte patterns,
  as medians of --runs runs, and the ratios;
- Office and PDF sets: files/s;
- rescan of the unchanged whole tree from the cache: files/s;
- peak RSS of the whole process tree (parent + workers) during a full no-cache scan, and the
  bytes read against the tree's size (each file is read once).
Results also go to bench/out/results.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BAOMI = str(Path(sys.executable).parent / "baomi")
LEVEL_WORDS = ["绝密", "机密", "秘密"]
ENCODINGS = ["utf-8", "gb18030", "utf-16-le", "utf-16-be"]


def peer_yara_rules(path: Path) -> None:
    lines = ["rule level_words\n{\n  strings:"]
    n = 0
    for w in LEVEL_WORDS:
        for enc in ENCODINGS:
            hx = " ".join(f"{b:02X}" for b in w.encode(enc))
            lines.append(f"    $w{n} = {{ {hx} }}  // {w} {enc}")
            n += 1
    lines.append("  condition:\n    any of them\n}\n")
    path.write_text("\n".join(lines), encoding="utf-8")


def rg_pattern() -> str:
    alts = []
    for w in LEVEL_WORDS:
        for enc in ENCODINGS:
            alts.append("".join(f"\\x{b:02X}" for b in w.encode(enc)))
    return "(?-u:" + "|".join(alts) + ")"


def timed(cmd: list[str], runs: int) -> tuple[float, list[float]]:
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warm the page cache
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def _tree_pids(root: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, stack = [], [root]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(kids.get(p, []))
    return out


def measure_rss_and_io(cmd: list[str]) -> tuple[float, int, float]:
    """(peak summed RSS in MB, bytes read by the process tree, wall seconds)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    io: dict[int, int] = {}
    stop = threading.Event()

    main_read = 0

    def poll() -> None:
        # The parent's /proc/PID/io absorbs its children's counts once they are reaped, so the
        # parent's own reads are taken from the last sample in which its workers were alive.
        nonlocal peak, main_read
        while not stop.is_set():
            total = 0
            pids = _tree_pids(proc.pid)
            for pid in pids:
                try:
                    with open(f"/proc/{pid}/status") as fh:
                        for line in fh:
                            if line.startswith("VmRSS:"):
                                total += int(line.split()[1]) * 1024
                    with open(f"/proc/{pid}/io") as fh:
                        for line in fh:
                            if line.startswith("rchar:"):
                                if pid == proc.pid:
                                    if len(pids) > 1:
                                        main_read = int(line.split()[1])
                                else:
                                    io[pid] = int(line.split()[1])
                except OSError:
                    pass
            peak = max(peak, total)
            time.sleep(0.05)

    t = time.perf_counter()
    th = threading.Thread(target=poll, daemon=True)
    th.start()
    proc.wait()
    wall = time.perf_counter() - t
    stop.set()
    th.join()
    return peak / 1024 / 1024, sum(io.values()) + main_read, wall


def count_files(d: Path) -> tuple[int, int]:
    n = size = 0
    for p in d.rglob("*"):
        if p.is_file():
            n += 1
            size += p.stat().st_size
    return n, size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", default=str(ROOT / "bench" / "out" / "tree"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--small", action="store_true", help="a 10x smaller tree (quick check)")
    a = ap.parse_args()
    tree = Path(a.tree)
    gen = [sys.executable, str(ROOT / "bench" / "gen_tree.py"), "--out", str(tree)]
    if a.small:
        gen += ["--text", "2000", "--text-mb", "60", "--office", "200", "--pdf", "20"]
    subprocess.run(gen, check=True)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    peer = out / "peer-level-words.yar"
    peer_yara_rules(peer)
    text = tree / "text"
    n_text, text_bytes = count_files(text)
    results: dict[str, object] = {"text_files": n_text, "text_mb": round(text_bytes / 1e6, 1),
                                  "cores": os.cpu_count()}

    baomi_t, bt = timed([BAOMI, "scan", "--no-cache", "--format", "jsonl", str(text)], a.runs)
    results["baomi_text_s"] = round(baomi_t, 3)
    if shutil.which("yara"):
        yara_t, _ = timed(["yara", "-p", "2", "-r", str(peer), str(text)], a.runs)
        results["yara_text_s"] = round(yara_t, 3)
        results["baomi_over_yara"] = round(baomi_t / yara_t, 2)
    if shutil.which("rg"):
        rg_t, _ = timed(["rg", "-l", "-a", "--no-ignore", "--hidden", "-j", "2", "-e", rg_pattern(), str(text)],
                        a.runs)
        results["rg_text_s"] = round(rg_t, 3)
        results["baomi_over_rg"] = round(baomi_t / rg_t, 2)
    results["baomi_text_MBps"] = round(text_bytes / 1e6 / baomi_t, 1)
    results["baomi_text_files_per_s"] = round(n_text / baomi_t)

    for name in ("office", "pdf"):
        d = tree / name
        n, _ = count_files(d)
        t, _ = timed([BAOMI, "scan", "--no-cache", "--format", "jsonl", str(d)], a.runs)
        results[f"{name}_files"] = n
        results[f"{name}_files_per_s"] = round(n / t, 1)

    with tempfile.TemporaryDirectory() as td:
        cache = Path(td) / "cache.sqlite"
        n_all, all_bytes = count_files(tree)
        subprocess.run([BAOMI, "scan", "--cache", str(cache), "--format", "jsonl", str(tree)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t, _ = timed([BAOMI, "scan", "--cache", str(cache), "--format", "jsonl", str(tree)], a.runs)
        results["rescan_files"] = n_all
        results["rescan_s"] = round(t, 3)
        results["rescan_files_per_s"] = round(n_all / t)
    rss, read, wall = measure_rss_and_io([BAOMI, "scan", "--no-cache", "--format", "jsonl", str(tree)])
    results["full_tree_s"] = round(wall, 2)
    results["peak_rss_mb"] = round(rss, 1)
    results["bytes_read_over_tree"] = round(read / all_bytes, 2)

    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\n{'measure':<28} {'value':>12}")
    for k, v in results.items():
        print(f"{k:<28} {v!s:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
