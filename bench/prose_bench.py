"""Plain text where classification cannot be skipped (issue 17, goal 1), beside YARA.

    .venv/bin/python bench/prose_bench.py [--files 20000] [--mb 600] [--runs 3] [--dir DIR]

Generates (once, reproducibly; reused while its parameters hold) a tree of --files UTF-8 text
files, about --mb MB in all, of secrecy-office prose (bench/prose.py): level words in three
quarters of the files, level words in marking-like shapes in a sixth, 1 % truly marked — a
secrecy office's own share, where a level-word prefilter passes most files. Then runs, in turn,
`baomi scan --no-cache --format jsonl TREE` (full analysis) and the peer `yara -r -p 2` with the
three level words as explicit bytes in UTF-8, GB18030 and UTF-16LE/BE (bench/run.py's rule),
--runs times each, and prints medians, MB/s and the pairwise ratio (goal: baomi <= 0.5 x yara).
The baomi run's output is checked: every marked file is reported. Results: bench/out/prose.json.

Beside them, in the same run: baomi with the YARA prefilter engine (BAOMI_PREFILTER=yara, the
engine before Hyperscan and the fallback without it), whose output must be identical, and a
fast-vs-full check on every --check-every'th file in one process: the files, levels and markings
of the fast path equal those of a scanner whose prefilter passes everything (every file decoded
and classified). Any difference fails the bench.
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from prose import choose_class, make_text, pools  # noqa: E402
from run import BAOMI, peer_yara_rules  # noqa: E402


def generate(tree: Path, files: int, mb: int, seed: int = 17) -> set[str]:
    """The tree's marked files (relative paths); the tree is rewritten only when its stamp differs."""
    stamp = tree / ".params.json"
    params = {"files": files, "mb": mb, "seed": seed}
    if stamp.exists():
        saved = json.loads(stamp.read_text())
        if saved.get("params") == params:
            return set(saved["marked"])
    if tree.exists():
        shutil.rmtree(tree)
    rng = random.Random(seed)
    plain, worded = pools()
    mean = mb * 1_000_000 // files
    marked = []
    for i in range(files):
        d = tree / f"d{i // 500:03d}"
        if i % 500 == 0:
            d.mkdir(parents=True)
        cls = choose_class(rng)
        size = max(2000, int(rng.lognormvariate(0, 0.6) * mean * 0.84))
        name = f"{d.name}/p{i:05d}.txt"
        (tree / name).write_text(make_text(rng, plain, worded, size, cls, copy=i), encoding="utf-8")
        if cls == "marked":
            marked.append(name)
    stamp.write_text(json.dumps({"params": params, "marked": marked}))
    return set(marked)


def _markings(r: object) -> tuple:
    from scanner.model import Kind

    fs = sorted((f.level.value if f.level else "", f.text, f.member or "", f.rule, f.line or 0)
                for f in r.findings if f.kind is Kind.MARKING)  # type: ignore[attr-defined]
    return (r.level, fs)  # type: ignore[attr-defined]


def fast_vs_full(tree: Path, every: int) -> tuple[int, list[str]]:
    """(files compared, files whose markings differ) between the fast path and the full path."""
    sys.path.insert(0, str(ROOT))
    from scanner.config import ScanConfig
    from scanner.engine import Scanner

    fast, full = Scanner(ScanConfig()), Scanner(ScanConfig())
    full.rules.prefilter = lambda data: True  # type: ignore[method-assign]
    files = sorted(tree.rglob("*.txt"))[::every]
    return len(files), [str(p) for p in files if _markings(fast.scan_path(str(p))) != _markings(full.scan_path(str(p)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--mb", type=int, default=600)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--check-every", type=int, default=20, help="fast-vs-full check on every Nth file (0: none)")
    a = ap.parse_args()
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    tree = Path(a.dir) / "prose-tree"
    marked = generate(tree, a.files, a.mb)
    size = sum(p.stat().st_size for p in tree.rglob("*.txt"))
    baomi = [BAOMI, "scan", "--no-cache", "--format", "jsonl", str(tree)]
    rule = out / "peer-level-words.yar"
    peer_yara_rules(rule)
    yara = ["yara", "-r", "-p", "2", str(rule), str(tree)] if shutil.which("yara") else None

    env_yara = {**os.environ, "BAOMI_PREFILTER": "yara"}

    def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, bytes]:
        t = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False, env=env)
        return time.perf_counter() - t, p.stdout

    _, first = run(baomi)  # warm-up (page cache, code), and the correctness check
    found = {str(Path(json.loads(line)["path"]).relative_to(tree)) for line in first.splitlines()
             if json.loads(line).get("level")}
    if not marked <= found:
        print(f"missed marked files: {sorted(marked - found)[:5]}", file=sys.stderr)
        return 1
    _, ref = run(baomi, env_yara)
    if sorted(first.splitlines()) != sorted(ref.splitlines()):
        print("the Hyperscan and the YARA prefilter engines report differently", file=sys.stderr)
        return 1
    if a.check_every:
        checked, differ = fast_vs_full(tree, a.check_every)
        if differ:
            print(f"fast and full path differ on {len(differ)} of {checked} files: {differ[:5]}", file=sys.stderr)
            return 1
    if yara:
        run(yara)
    ours, refs, theirs, ratios, ref_ratios = [], [], [], [], []
    for _ in range(a.runs):
        t, _ = run(baomi)
        ours.append(t)
        r, _ = run(baomi, env_yara)
        refs.append(r)
        if yara:
            y, _ = run(yara)
            theirs.append(y)
            ratios.append(t / y)
            ref_ratios.append(r / y)
    res: dict[str, object] = {"files": a.files, "mb": round(size / 1e6, 1), "marked": len(marked),
                              "flagged": len(found), "baomi_s": round(statistics.median(ours), 2),
                              "baomi_MBps": round(size / 1e6 / statistics.median(ours), 1),
                              "baomi_yara_prefilter_s": round(statistics.median(refs), 2),
                              "fast_vs_full_files": checked if a.check_every else 0}
    if yara:
        res.update(yara_s=round(statistics.median(theirs), 2), baomi_over_yara=round(statistics.median(ratios), 2),
                   baomi_yara_prefilter_over_yara=round(statistics.median(ref_ratios), 2))
    (out / "prose.json").write_text(json.dumps(res, indent=1))
    print(" ".join(f"{k}={v}" for k, v in res.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
