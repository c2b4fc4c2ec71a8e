"""What each stage of a plain-text scan costs per MB, in one process (issue 17, goal 1).

    .venv/bin/python bench/stage_profile.py [--tree bench/out/prose-tree] [--files 1500]

Reads a sample of --files text files of the tree (bench/prose_bench.py writes the issue's prose
tree) into memory, then times each stage of `Scanner.scan_bytes` on them apart with the process's
CPU clock: type identification, the marking-shape prefilter (Hyperscan, and the same shapes
through the YARA rules beside it), and — on the files it passes —
decoding, the control-byte test, classification and hashing; then the whole of scan_bytes. Prints
milliseconds per MB of the sample and per MB the stage actually reads. Walk, file reads, worker
processes and output are not in these figures (bench/prose_bench.py has the end-to-end one).
"""
from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", default=str(ROOT / "bench" / "out" / "prose-tree"))
    ap.add_argument("--files", type=int, default=1500)
    a = ap.parse_args()

    from scanner.config import ScanConfig
    from scanner.decode import decode
    from scanner.engine import Scanner, _classify_bounded
    from scanner.extractors.runs import has_control_bytes
    from scanner.identify import identify
    from scanner.model import Segment

    files = sorted(Path(a.tree).rglob("*.txt"))
    if not files:
        print(f"no .txt files under {a.tree} (run bench/prose_bench.py first)", file=sys.stderr)
        return 2
    random.Random(1).shuffle(files)
    datas = [f.read_bytes() for f in files[: a.files]]
    mb_all = sum(map(len, datas)) / 1e6
    scanner = Scanner(ScanConfig())
    scanner.scan_bytes(datas[0])  # lazy imports, compiled rules

    def stage(name: str, fn: Callable[[bytes], Any], items: list[bytes]) -> list[Any]:
        mb = sum(map(len, items)) / 1e6 or 1e-9
        t = time.process_time()
        out = [fn(d) for d in items]
        dt = time.process_time() - t
        print(f"{name:24s} {dt / mb_all * 1000:7.2f} ms per MB of the sample  ({dt / mb * 1000:6.2f} ms per MB read)")
        return out

    print(f"{len(datas)} files, {mb_all:.1f} MB")
    stage("identify", lambda d: identify(d[:8192]), datas)
    passed = stage(f"prefilter ({scanner.rules.prefilter_engine})", scanner.rules.prefilter, datas)
    # the same shapes through the YARA rules: the engine before Hyperscan, and its fallback
    stage("prefilter (YARA rules)", lambda d: bool(scanner.rules._rules.match(data=d, fast=True, timeout=60)), datas)
    kept = [d for d, p in zip(datas, passed, strict=True) if p]
    print(f"  the prefilter passes {len(kept)} files, {sum(map(len, kept)) / 1e6 / mb_all:.0%} of the bytes")
    texts = iter(stage("decode", lambda d: decode(d)[0], kept))
    stage("control bytes", has_control_bytes, kept)
    found = stage("classify", lambda d: _classify_bounded([Segment(next(texts), None, "body", index=0)]), kept)
    flagged = [d for d, f in zip(kept, found, strict=True) if f]
    stage("sha256 of flagged", lambda d: hashlib.sha256(d).hexdigest(), flagged)
    stage("whole scan_bytes", scanner.scan_bytes, datas)
    return 0


if __name__ == "__main__":
    sys.exit(main())
