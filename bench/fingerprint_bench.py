"""Fingerprint index of classified documents: build time, lookups/s, size on disk.

    python bench/fingerprint_bench.py [--docs N]

Documents are passages of ../shared/prose shuffled into new texts of about 1,500 characters (the
size of a short notice), so shingles are realistic Chinese legal prose, not random characters.
"""
from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.fingerprints import FingerprintIndex  # noqa: E402

PROSE = Path(__file__).resolve().parents[2] / "shared" / "prose"


def sentences() -> list[str]:
    text = "".join(p.read_text(encoding="utf-8") for p in sorted(PROSE.glob("*.md")))
    return [s for s in re.split(r"(?<=[。；])", re.sub(r"\s+", "", text)) if len(s) > 8]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--lookups", type=int, default=2_000)
    a = ap.parse_args()
    pool = sentences()
    rnd = random.Random(7)

    def doc() -> str:
        out = []
        while sum(map(len, out)) < 1500:
            out.append(rnd.choice(pool))
        return "".join(out)

    with tempfile.TemporaryDirectory() as d:
        idx = FingerprintIndex(d)
        t = time.perf_counter()
        for i in range(a.docs):
            idx.add(f"/data/{i:07}.docx", f"{i:064x}", "secret", "机密★10年\n" + doc(), ["机密★10年"])
        idx.commit()
        build = time.perf_counter() - t
        size = sum(p.stat().st_size for p in Path(d).iterdir())
        idx.close()
        t = time.perf_counter()
        idx = FingerprintIndex(d)
        load = time.perf_counter() - t
        probes = [doc() for _ in range(a.lookups)]
        t = time.perf_counter()
        hits = sum(bool(idx.matches(f"/other/{i}.txt", None, None, p)) for i, p in enumerate(probes))
        look = time.perf_counter() - t
        print(f"docs={a.docs} build_s={build:.1f} ({a.docs / build:.0f} docs/s) size_mb={size / 1e6:.1f} "
              f"load_s={load:.1f} lookups_per_s={a.lookups / look:.0f} false_hits={hits}/{a.lookups}")


if __name__ == "__main__":
    main()
