#!/usr/bin/env python3
"""Benchmark of the endpoint agent with real processes on loopback (`make bench-agent`).

    .venv/bin/python bench/agent_bench.py [--latency-files 60] [--folders 10000] [--burst 10000]
                                          [--idle-seconds 30]

1. latency: marked ~100 KB .docx files copied one at a time into a watched mail outbox; for each,
   the time from the end of the copy (the file's close) to the collector's receipt of its
   violation event (`received`, same machine clock): p50 / p99. Goal p99 < 1 s.
2. idle: the agent watching a tree of N folders (N inotify watches), nothing happening: CPU %
   over `--idle-seconds` and RSS. Goal CPU < 1 %, RSS < 150 MB.
3. burst: N small files written into a watched folder as fast as possible (one in ten marked):
   every file judged (the agent's own count in its heartbeats), every marked one quarantined and
   its violation on the collector; none missed, even when inotify overflows.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "agents"))

from agent_helpers import AgentProc, Collector, marked_docx, rows, wait_for, write_config  # noqa: E402

from agents.vault import keygen  # noqa: E402
from reports.server import init_data  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


class Env:
    def __init__(self, root: Path):
        self.root = root
        init_data(root / "srv")
        self.collector = Collector(root / "srv").start()
        self.collector.enroll(root / "state").close()
        self.key, self.pub = keygen(root / "officer")

    def agent(self, watch: list[tuple[Path, str]], **kw: object) -> AgentProc:
        cfg = write_config(self.root / "agent.yaml", collector=self.collector, state=self.root / "state",
                           vault=self.root / "vault", officer_pub=self.pub, watch=watch, **kw)  # type: ignore[arg-type]
        return AgentProc(cfg, self.root / "agent.log").start(ready=600)

    def close(self) -> None:
        self.collector.stop()


def bench_latency(n: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        env = Env(root)
        try:
            out = root / "Outbox"
            out.mkdir()
            agent = env.agent([(out, "mail")], heartbeat=60)
            src = [marked_docx(root / f"src{i}.docx", pad_to=100_000, title=f"通知 {i}") for i in range(n)]
            size = src[0].stat().st_size
            closed: dict[str, float] = {}
            for i, s in enumerate(src):
                dest = out / f"doc{i}.docx"
                shutil.copyfile(s, dest)
                closed[str(dest)] = time.time()
                time.sleep(0.25)  # one at a time: latency, not throughput
            assert wait_for(lambda: len({r["payload"]["path"] for r in rows(env.collector, type="violation",
                                                                            rule="CN-SEC-005")}) >= n, 60)
            lat = []
            for r in rows(env.collector, type="violation", rule="CN-SEC-005"):
                got = datetime.fromisoformat(r["received"]).timestamp()
                lat.append(got - closed[r["payload"]["path"]])
            agent.stop()
            print(f"latency close -> violation on collector ({n} docx of {size // 1000} KB): "
                  f"p50 {statistics.median(lat) * 1000:.0f} ms, p99 {pct(lat, 0.99) * 1000:.0f} ms, "
                  f"max {max(lat) * 1000:.0f} ms")
        finally:
            env.close()


def bench_idle(folders: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        env = Env(root)
        try:
            tree = root / "Sync"
            width = 100
            for i in range(folders):
                (tree / f"d{i // width:03d}" / f"e{i % width:03d}").mkdir(parents=True, exist_ok=True)
            t0 = time.monotonic()
            agent = env.agent([(tree, "cloud_sync")], heartbeat=60, rescan=3600)
            started = time.monotonic() - t0
            pid = agent.proc.pid  # type: ignore[union-attr]
            time.sleep(10)  # settle after start-up (first heartbeat and delivery, workers warming)
            kids = [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
            c0, k0, w0 = cpu_seconds(pid), sum(cpu_seconds(k) for k in kids), time.monotonic()
            time.sleep(seconds)
            wall = time.monotonic() - w0
            cpu = (cpu_seconds(pid) - c0) / wall * 100
            kcpu = (sum(cpu_seconds(k) for k in kids) - k0) / wall * 100
            rss = rss_mb(pid)
            krss = sum(rss_mb(k) for k in kids)
            agent.stop()
            print(f"idle, watching {folders + folders // width + 1} folders: CPU {cpu:.2f} %, RSS {rss:.0f} MB "
                  f"(start-up to ready {started:.1f} s); its {len(kids)} scan workers: CPU {kcpu:.2f} %, "
                  f"RSS {krss:.0f} MB")
        finally:
            env.close()


def bench_burst(n: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        env = Env(root)
        try:
            out = root / "Upload"
            out.mkdir()
            agent = env.agent([(out, "upload")], heartbeat=1, rescan=30)
            t0 = time.monotonic()
            marked = set()
            for i in range(n):
                p = out / f"f{i:05d}.txt"
                if i % 10 == 0:
                    p.write_text(f"机密★10年\n关于事项 {i} 的通知\n", encoding="utf-8")
                    marked.add(str(p))
                else:
                    p.write_text(f"普通文件 {i}\n", encoding="utf-8")
            written = time.monotonic() - t0

            def judged() -> int:
                beats = rows(env.collector, type="heartbeat")
                return max((int(r["payload"].get("judged", 0)) for r in beats), default=0)

            ok = wait_for(lambda: judged() >= n, 300, step=1.0)
            done = time.monotonic() - t0
            gone = sum(1 for p in marked if not os.path.exists(p))
            vio = {r["payload"]["path"] for r in rows(env.collector, type="violation", rule="CN-SEC-005")}
            problems = rows(env.collector, type="x_watch_problem")
            agent.stop()
            print(f"burst of {n} files (written in {written:.1f} s): judged {judged()} in {done:.1f} s "
                  f"({'all' if ok else 'NOT all'}); marked {len(marked)}: quarantined {gone}, violations on "
                  f"collector {len(vio & marked)}; watch problems reported: "
                  f"{sorted({r['payload']['problem'] for r in problems}) or 'none'}")
            if not ok or gone != len(marked) or len(vio & marked) != len(marked):
                sys.exit(1)
        finally:
            env.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency-files", type=int, default=60)
    ap.add_argument("--folders", type=int, default=10_000)
    ap.add_argument("--idle-seconds", type=float, default=30)
    ap.add_argument("--burst", type=int, default=10_000)
    a = ap.parse_args()
    os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="baomi-bench-cache-"))
    bench_latency(a.latency_files)
    bench_idle(a.folders, a.idle_seconds)
    bench_burst(a.burst)


if __name__ == "__main__":
    main()
