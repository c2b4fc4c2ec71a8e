"""`make fuzz [SECONDS=…]`: run every fuzz target under atheris for a share of SECONDS, two at a
time (the machine's two cores), and print the per-target table: executions, exec/s, libFuzzer's
`cov:` (edges) and crashes. New corpus units go to a work directory (not the committed seeds);
crash/timeout/OOM inputs to `fuzz-artifacts/<target>/`, to be minimised into
`tests/fuzz/regressions/<target>/` with a fix."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
# Time weights: the slow targets (PDF, 7z, image pre-check, grammar) get more of the budget.
WEIGHTS = {"pdf": 2.0, "7z": 1.5, "image-precheck": 1.5, "grammar": 1.5, "ooxml": 1.5}


def run_one(target: str, seconds: int, work: Path) -> dict[str, object]:
    corpus = work / target
    corpus.mkdir(parents=True, exist_ok=True)
    arts = ROOT / "fuzz-artifacts" / target
    arts.mkdir(parents=True, exist_ok=True)
    seeds = [str(d) for d in (HERE / "corpus" / target, HERE / "regressions" / target) if d.is_dir()]
    cmd = [sys.executable, "-m", "tests.fuzz.fuzz", target, f"-max_total_time={seconds}", "-timeout=20",
           "-rss_limit_mb=2048", "-print_final_stats=1", "-max_len=65536", f"-artifact_prefix={arts}/",
           str(corpus), *seeds]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 600)
    err = proc.stderr
    execs = re.search(r"stat::number_of_executed_units:\s*(\d+)", err)
    covs = re.findall(r"cov: (\d+)", err)
    crashes = sorted(p.name for p in arts.iterdir())
    return {"target": target, "execs": int(execs.group(1)) if execs else 0, "seconds": seconds,
            "cov": int(covs[-1]) if covs else 0, "crashes": crashes, "rc": proc.returncode,
            "tail": err.strip().splitlines()[-3:]}


def main() -> int:
    from tests.fuzz.targets import targets

    total = int(os.environ.get("SECONDS_TOTAL", sys.argv[1] if len(sys.argv) > 1 else "1500"))
    names = list(targets())
    if len(sys.argv) > 2:
        names = sys.argv[2].split(",")
    weight = sum(WEIGHTS.get(n, 1.0) for n in names)
    # Two run at once: each target's share of 2 × total core-seconds.
    share = {n: max(5, int(2 * total * WEIGHTS.get(n, 1.0) / weight)) for n in names}
    with tempfile.TemporaryDirectory(prefix="baomi-fuzz-") as work, ThreadPoolExecutor(2) as pool:
        rows = list(pool.map(lambda n: run_one(n, share[n], Path(work)), names))
    print(f"{'target':16} {'seconds':>7} {'execs':>10} {'exec/s':>8} {'cov':>6}  crashes")
    for r in rows:
        rate = int(r["execs"]) // max(1, int(r["seconds"]))  # type: ignore[call-overload]
        print(f"{r['target']:16} {r['seconds']:>7} {r['execs']:>10} {rate:>8} {r['cov']:>6}  "
              f"{', '.join(r['crashes']) or '-'}")  # type: ignore[arg-type]
    print(f"total executions: {sum(int(r['execs']) for r in rows)}")  # type: ignore[call-overload]
    bad = [r for r in rows if r["crashes"] or r["rc"] not in (0,)]
    for r in bad:
        print(f"{r['target']}: rc={r['rc']} {r['tail']}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
