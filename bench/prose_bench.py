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
"""
from __future__ import annotations

import argparse
import json
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--mb", type=int, default=600)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=str(ROOT / "bench" / "out"))
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

    def run(cmd: list[str]) -> tuple[float, bytes]:
        t = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
        return time.perf_counter() - t, p.stdout

    _, first = run(baomi)  # warm-up (page cache, code), and the correctness check
    found = {str(Path(json.loads(line)["path"]).relative_to(tree)) for line in first.splitlines()
             if json.loads(line).get("level")}
    if not marked <= found:
        print(f"missed marked files: {sorted(marked - found)[:5]}", file=sys.stderr)
        return 1
    if yara:
        run(yara)
    ours, theirs, ratios = [], [], []
    for _ in range(a.runs):
        t, _ = run(baomi)
        ours.append(t)
        if yara:
            y, _ = run(yara)
            theirs.append(y)
            ratios.append(t / y)
    res: dict[str, object] = {"files": a.files, "mb": round(size / 1e6, 1), "marked": len(marked),
                              "flagged": len(found), "baomi_s": round(statistics.median(ours), 2),
                              "baomi_MBps": round(size / 1e6 / statistics.median(ours), 1)}
    if yara:
        res.update(yara_s=round(statistics.median(theirs), 2), baomi_over_yara=round(statistics.median(ratios), 2))
    (out / "prose.json").write_text(json.dumps(res, indent=1))
    print(" ".join(f"{k}={v}" for k, v in res.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
