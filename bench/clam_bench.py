"""Mixed office tree beside ClamAV (issue 17, goal 5): files/s and MB/s of `baomi scan` and of
`clamscan -r` with level-word signatures, the nearest peer that also opens containers.

    .venv/bin/python bench/clam_bench.py [--files 2000] [--runs 3] [--tree DIR]

The tree is bench/gen_mixed.py's (docx/xlsx/pptx/pdf/txt/md/csv/eml/html, 10 % zip/7z/tar.gz
archives of documents, 5 % photographs; generated once and reused). The peer is Debian's
`clamscan` (package clamav, listed in .ci/debian-packages-bench.txt: a benchmark peer, never
installed for the tests) run with `--database` naming only a signature file written here: the
three level words 绝密/机密/秘密 as byte strings in UTF-8, GB18030, UTF-16LE and UTF-16BE (the
encodings of bench/run.py's yara peer; BE because PDF text shows are UCS-2 BE). No freshclam, no
network, no other signature. ClamAV unpacks zip/7z/tar/gz, OOXML, OLE2, PDF streams and MIME
parts and matches raw bytes; it stops at a file's first match. baomi does its whole analysis:
identify, extract, decode, normalise, prefilter, classify (markings, not level words in prose),
with its default worker pool (cores + 1 processes) and OCR mode; clamscan is one process on one
core. So both wall time and CPU time (user + system of the whole process tree) are given, and
files per CPU-second. Commands run in turn, --runs times each after a warm-up (page cache warm),
medians reported. Results also go to bench/out/clam.json. Without clamscan the peer is skipped
with the reason (exit 0), and baomi's own figures are still measured.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from gen_mixed import ensure  # noqa: E402

BAOMI = str(Path(sys.executable).parent / "baomi")
LEVEL_WORDS = {"绝密": "juemi", "机密": "jimi", "秘密": "mimi"}
ENCODINGS = {"utf8": "utf-8", "gb18030": "gb18030", "utf16le": "utf-16-le", "utf16be": "utf-16-be"}


def write_signatures(path: Path) -> int:
    """A ClamAV .ndb file (Name:TargetType:Offset:HexSignature; target 0 = any file, offset * =
    anywhere) with one signature per level word and encoding; returns how many."""
    lines = [f"Baomi.Level.{name}.{tag}:0:*:{word.encode(enc).hex()}"
             for word, name in LEVEL_WORDS.items() for tag, enc in ENCODINGS.items()]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return len(lines)


def run(cmd: list[str]) -> tuple[float, float, bytes, int]:
    """(wall s, CPU s of the process and its reaped children, stdout, exit code)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.read() if p.stdout else b""
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - t, ru.ru_utime + ru.ru_stime, out, p.returncode


def by_format(tree: Path) -> dict[str, float]:
    """CPU ms per file by extension, one in-process Scanner (no pool, no start-up): where a
    mixed tree's time goes."""
    from scanner.config import ScanConfig
    from scanner.engine import Scanner

    scanner = Scanner(ScanConfig())
    tally: dict[str, list[float]] = {}
    for d, _, names in os.walk(tree):
        for name in names:
            if name.startswith("."):
                continue
            p = os.path.join(d, name)
            t = time.process_time()
            scanner.scan_path(p, p)
            tally.setdefault(name.split(".", 1)[-1], []).append(time.process_time() - t)
    return {ext: round(1000 * sum(v) / len(v), 1) for ext, v in sorted(tally.items(), key=lambda kv: -sum(kv[1]))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", default=str(ROOT / "bench" / "out" / "mixed"))
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--by-format", action="store_true",
                    help="also scan the tree once in this process and print CPU ms per file by extension")
    a = ap.parse_args()
    tree = Path(a.tree)
    counts = ensure(tree, a.files)
    n, mb = counts["files"], counts["bytes"] / 1e6
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    sigs = out_dir / "level-words.ndb"
    write_signatures(sigs)

    baomi = [BAOMI, "scan", "--no-cache", "--no-progress", "--format", "jsonl", str(tree)]
    clam = shutil.which("clamscan")
    peer = [clam, "-r", "-i", "--no-summary", f"--database={sigs}", str(tree)] if clam else None
    if peer is None:
        print("clamscan is not installed (Debian package clamav, .ci/debian-packages-bench.txt): "
              "skipping the ClamAV peer; baomi's figures only", file=sys.stderr)

    run(baomi)  # warm-up: page cache, bytecode, compiled rules
    if peer:
        run(peer)
    ours, theirs = [], []
    flagged: set[str] = set()
    clam_hits = 0
    for _ in range(a.runs):  # in turn, so that a drift of the machine's speed hits both
        wall, cpu, out, code = run(baomi)
        if code not in (0, 1, 3):
            print(f"baomi scan failed (exit {code})", file=sys.stderr)
            return 1
        recs = [json.loads(line) for line in out.splitlines()]
        flagged = {os.path.relpath(r["path"], tree) for r in recs if r.get("level")}
        ours.append((wall, cpu))
        if peer:
            wall, cpu, out, code = run(peer)
            if code not in (0, 1):
                print(f"clamscan failed (exit {code})", file=sys.stderr)
                return 1
            clam_hits = sum(1 for line in out.splitlines() if line.endswith(b" FOUND"))
            theirs.append((wall, cpu))
    missed = sorted(set(counts["marked_files"]) - flagged)
    if missed:
        print(f"baomi missed marked files: {missed[:5]}", file=sys.stderr)
        return 1

    def med(pairs: list[tuple[float, float]], i: int) -> float:
        return statistics.median(p[i] for p in pairs)

    res: dict[str, object] = {
        "files": n, "MB": round(mb, 1), "marked_files": len(counts["marked_files"]), "runs": a.runs,
        "baomi_s": round(med(ours, 0), 2), "baomi_cpu_s": round(med(ours, 1), 2),
        "baomi_files_per_s": round(n / med(ours, 0)), "baomi_MBps": round(mb / med(ours, 0), 1),
        "baomi_files_per_cpu_s": round(n / med(ours, 1)), "baomi_files_with_level": len(flagged),
    }
    if peer:
        res.update({
            "clamscan_s": round(med(theirs, 0), 2), "clamscan_cpu_s": round(med(theirs, 1), 2),
            "clamscan_files_per_s": round(n / med(theirs, 0)), "clamscan_MBps": round(mb / med(theirs, 0), 1),
            "clamscan_files_per_cpu_s": round(n / med(theirs, 1)), "clamscan_files_with_level_word": clam_hits,
            "baomi_over_clamscan_wall": round(med(ours, 0) / med(theirs, 0), 2),
            "baomi_over_clamscan_cpu": round(med(ours, 1) / med(theirs, 1), 2),
        })
    else:
        res["clamscan"] = "skipped: clamscan not installed"
    if a.by_format:
        res["baomi_cpu_ms_per_file_by_format"] = by_format(tree)
    (out_dir / "clam.json").write_text(json.dumps(res, indent=1))
    print(f"\nmixed office tree: {n} files, {mb:.1f} MB ({len(counts['marked_files'])} hold a marked document)")
    print(f"{'measure':<32} {'value':>12}")
    for k, v in res.items():
        print(f"{k:<32} {v!s:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
