#!/usr/bin/env python3
"""Load benchmark of the audit collector on loopback: N concurrent simulated agents.

    .venv/bin/python bench/audit_bench.py [--agents 200] [--events 100] [--batch 50]
                                          [--backend sqlite|postgresql|both]
    .venv/bin/python bench/audit_bench.py --agents 1000 --duration 60 --rate 500 --batch 10

With `--duration S` the agents send for S seconds instead of a fixed number of events (issue 14:
1,000 agents for 10 minutes is `--duration 600`); their events are signed as they are sent
(pre-signed envelopes would fall out of the 5-minute replay window), which costs the load
generator some CPU on the same machine. Both modes print the collector's peak RSS (VmHWM of the
server and its workers, from /proc).

For each backend: initialise a collector data dir, start `baomi server run` (TLS, 127.0.0.1,
ephemeral port) as a subprocess, enrol the agents, pre-sign every event and batch envelope (so
the load generator measures the collector, not itself), then let all agents send their batches
concurrently over HTTPS. Prints sustained events/s (first request sent to last answer) and the
p50/p99 latency of one batch, then checks that the store holds every event exactly once and
that the chain verifies. PostgreSQL is a throw-away cluster (reports.testing.TempPostgres).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx

from policies.keys import canonical_json, generate_private_key, public_key_b64, sign
from reports.chain import verify_entries
from reports.events import GENESIS, make_event, utcnow
from reports.server import init_data, load_data, new_enroll_token, parse_duration
from reports.testing import TempPostgres
from reports.tls import client_context

BAOMI = [sys.executable, "-c", "from agents.main import cli; cli()"]


def start_server(data: Path, db: str | None, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port_file = data / "port"
    args = [*BAOMI, "server", "run", "--data", str(data), "--listen", "127.0.0.1:0",
            "--port-file", str(port_file), "--workers", str(workers)]
    if db:
        args += ["--db", db]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(data / "server.log", "wb"))  # noqa: SIM115
    deadline = time.monotonic() + 30
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((data / "server.log").read_text())
        time.sleep(0.05)
    return proc, int(port_file.read_text())


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live children (the pre-forked workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                   text=True, check=False).stdout.split()]
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process plus its live children, in MiB."""
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                   text=True, check=False).stdout.split()]
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return round(total / 1024, 1)


def enrol_agents(url: str, ctx: Any, data: Path, db: str | None, agents: int) -> list[tuple[Any, str]]:
    """Enrol `agents` fresh keys: [(private key, agent id)]."""
    store = load_data(data).open_store(db)
    tokens = [new_enroll_token(store, parse_duration("1h")) for _ in range(agents)]
    store.close()
    out = []
    with httpx.Client(base_url=url, verify=ctx, timeout=60) as http:
        for i, token in enumerate(tokens):
            key = generate_private_key()
            r = http.post("/v1/enroll", json={"token": token, "public_key": public_key_b64(key),
                                              "hostname": f"ws-{i:04d}"})
            r.raise_for_status()
            out.append((key, r.json()["agent"]))
    return out


class LiveAgent:
    """A simulated agent that signs its events when it sends them (the `--duration` mode)."""

    def __init__(self, key: Any, agent: str, index: int):
        self.key, self.agent, self.index = key, agent, index
        self.seq, self.prev = 0, GENESIS

    def body(self, n: int) -> bytes:
        evs = []
        for _ in range(n):
            self.seq += 1
            ev = make_event(self.key, self.agent, self.seq, self.prev, "finding", {
                "path": f"/home/u{self.index}/文档/{self.seq}.docx", "sha256": f"{self.seq:064x}",
                "marking": "机密★10年", "level": "secret", "rule": "BM-M001"})
            self.prev = ev.hash
            evs.append(ev.to_dict())
        env = {"agent": self.agent, "nonce": str(uuid.uuid4()), "sent_at": utcnow(), "events": evs, "gap": None}
        return json.dumps({"envelope": env, "sig": sign(self.key, canonical_json(env))},
                          ensure_ascii=False).encode()


async def load_for(port: int, ctx: Any, agents: list[LiveAgent], duration: float, rate: float,
                   batch: int) -> tuple[float, list[float], int, int]:
    """Every agent sends a batch of `batch` events every agents*batch/rate seconds (from a random
    offset) until `duration` passes; closed loop without a rate. Returns (seconds, latencies,
    accepted, sent)."""
    latencies: list[float] = []
    accepted = sent = 0
    period = len(agents) * batch / rate if rate else 0.0
    t0 = time.perf_counter()
    end = t0 + duration
    conns: list[Conn] = []

    async def agent(a: LiveAgent) -> None:
        nonlocal accepted, sent
        due = t0 + random.random() * period
        conn = None
        while True:
            if period:
                await asyncio.sleep(max(0.0, min(due, end) - time.perf_counter()))
                due += period
            if time.perf_counter() >= end:
                return
            if conn is None:
                # Connected when first needed, outside the latency: the collector closes a new
                # connection that sends no request within its header deadline (10 s).
                conn = await Conn.open(port, ctx)
                conns.append(conn)
            body = a.body(batch)
            sent += batch
            t1 = time.perf_counter()
            try:
                status, reply = await conn.post("/v1/events", body)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc} ({time.perf_counter() - t1:.1f} s after the request,"
                                   f" {t1 - t0:.0f} s into the run)") from None
            latencies.append(time.perf_counter() - t1)
            if status != 200:
                raise RuntimeError(f"collector answered {status}: {reply[:200]!r}")
            accepted += json.loads(reply)["accepted"]

    await asyncio.gather(*(agent(a) for a in agents))
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.close()
    return elapsed, latencies, accepted, sent


def prepare(url: str, ctx: Any, data: Path, db: str | None, agents: int, events: int,
            batch: int) -> list[list[bytes]]:
    """Enrol the agents and pre-build their signed batches (JSON bodies)."""
    store = load_data(data).open_store(db)
    tokens = [new_enroll_token(store, parse_duration("1h")) for _ in range(agents)]
    store.close()
    bodies: list[list[bytes]] = []
    with httpx.Client(base_url=url, verify=ctx, timeout=60) as http:
        for i, token in enumerate(tokens):
            key = generate_private_key()
            r = http.post("/v1/enroll", json={"token": token, "public_key": public_key_b64(key),
                                              "hostname": f"ws-{i:03d}"})
            r.raise_for_status()
            agent = r.json()["agent"]
            prev, seq, mine = GENESIS, 0, []
            for start in range(0, events, batch):
                evs = []
                for _ in range(min(batch, events - start)):
                    seq += 1
                    ev = make_event(key, agent, seq, prev, "finding", {
                        "path": f"/home/u{i}/文档/{seq}.docx", "sha256": f"{seq:064x}",
                        "marking": "机密★10年", "level": "secret", "rule": "BM-M001"})
                    prev = ev.hash
                    evs.append(ev.to_dict())
                env = {"agent": agent, "nonce": str(uuid.uuid4()), "sent_at": utcnow(), "events": evs,
                       "gap": None}
                mine.append(json.dumps({"envelope": env, "sig": sign(key, canonical_json(env))},
                                       ensure_ascii=False).encode())
            bodies.append(mine)
    return bodies


class Conn:
    """A minimal keep-alive HTTP/1.1 client over TLS: the load generator must cost far less CPU
    than the collector it measures (httpx costs about as much per request as the server)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, port: int, ctx: Any) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                       server_hostname="127.0.0.1", limit=2**20)
        return cls(reader, writer, f"127.0.0.1:{port}")

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise RuntimeError("the collector closed the connection without answering")
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def load(port: int, ctx: Any, bodies: list[list[bytes]], rate: float = 0,
               batch: int = 50) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    accepted = 0
    # Connect (TLS handshakes) before the clock starts: agents keep their connection open.
    conns = await asyncio.gather(*(Conn.open(port, ctx) for _ in bodies))

    # With a rate, each agent sends a batch every `period` seconds from a random offset (an open
    # loop, as real agents do); without, every agent sends as fast as it is answered.
    period = len(bodies) * batch / rate if rate else 0.0

    async def agent(conn: Conn, mine: list[bytes]) -> None:
        nonlocal accepted
        due = time.perf_counter() + random.random() * period
        for body in mine:
            if period:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                due += period
            t0 = time.perf_counter()
            status, reply = await conn.post("/v1/events", body)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                raise RuntimeError(f"collector answered {status}: {reply[:200]!r}")
            accepted += json.loads(reply)["accepted"]

    t0 = time.perf_counter()
    await asyncio.gather(*(agent(c, m) for c, m in zip(conns, bodies, strict=True)))
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.close()
    return elapsed, latencies, accepted


def store_counts(store: Any) -> tuple[int, int]:
    """(events stored, distinct (agent, seq) among them)."""
    with store._read() as cur:
        cur.execute("SELECT count(*), count(DISTINCT agent || ':' || aseq) FROM entries WHERE kind = 'event'")
        n, distinct = cur.fetchone()
    return int(n), int(distinct)


def run(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    pg = TempPostgres().start() if backend == "postgresql" else None
    try:
        with tempfile.TemporaryDirectory(prefix="baomi-bench-") as tmp:
            data = Path(tmp) / "srv"
            db = pg.new_database() if pg else None
            init_data(data, db_url=db)
            proc, port = start_server(data, db, args.workers)
            url = f"https://127.0.0.1:{port}"
            ctx = client_context(data / "tls" / "ca.pem")
            try:
                t0 = time.perf_counter()
                if args.duration:
                    live = [LiveAgent(k, a, i) for i, (k, a) in
                            enumerate(enrol_agents(url, ctx, data, db, args.agents))]
                    prep = time.perf_counter() - t0
                    cpu0 = cpu_seconds(proc.pid)
                    elapsed, lat, accepted, total = asyncio.run(
                        load_for(port, ctx, live, args.duration, args.rate, args.batch))
                else:
                    bodies = prepare(url, ctx, data, db, args.agents, args.events, args.batch)
                    prep = time.perf_counter() - t0
                    cpu0 = cpu_seconds(proc.pid)
                    elapsed, lat, accepted = asyncio.run(load(port, ctx, bodies, args.rate, args.batch))
                    total = args.agents * args.events
                server_cpu = cpu_seconds(proc.pid) - cpu0
                rss = peak_rss_mb(proc.pid)
            except Exception:
                log = (data / "server.log").read_text(errors="replace")
                print(f"collector alive: {proc.poll() is None}; server.log ends:\n{log[-3000:]}", file=sys.stderr)
                raise
            finally:
                proc.terminate()
                proc.wait(30)
            store = load_data(data).open_store(db)
            try:
                report = verify_entries(store.entries(), load_data(data).key.public_key(), store.checkpoints())
                stored, distinct = store_counts(store)
            finally:
                store.close()
    finally:
        if pg:
            pg.stop()
    lat.sort()
    return {"backend": backend, "workers": args.workers, "offered_rate": args.rate, "agents": args.agents, "events": total, "batch": args.batch,
            "accepted": accepted, "seconds": round(elapsed, 2), "events_per_s": round(total / elapsed),
            "p50_ms": round(statistics.median(lat) * 1000, 1),
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 1),
            "stored": stored, "duplicates": stored - distinct, "peak_rss_mb": rss,
            "verified": report.ok and report.entries == total + args.agents, "prepare_s": round(prep, 1),
            "server_cpu_us_per_event": round(server_cpu / total * 1e6),
            "load_average": round(os.getloadavg()[0], 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--events", type=int, default=100, help="events per agent")
    ap.add_argument("--batch", type=int, default=50, help="events per batch")
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--workers", type=int, default=1, help="collector processes (server run --workers)")
    ap.add_argument("--duration", type=float, default=0,
                    help="send for this many seconds instead of --events per agent (e.g. 600)")
    ap.add_argument("--rate", type=float, default=0,
                    help="offered events/s over all agents (0: as fast as the collector answers)")
    args = ap.parse_args()
    os.environ.setdefault("BAOMI_LANG", "en")
    ok = True
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        res = run(backend, args)
        counted = res["accepted"] == res["events"] == res["stored"] and res["duplicates"] == 0
        ok &= res["verified"] and counted
        offered = f"offered {args.rate:.0f}/s" if args.rate else "closed loop"
        print(f"{backend:<10} workers={args.workers} {offered}: {res['agents']} agents, {res['events']} events in batches of {res['batch']}"
              f" over {res['seconds']} s: "
              f"{res['events_per_s']} events/s, batch latency p50 {res['p50_ms']} ms, p99 {res['p99_ms']} ms, "
              f"collector peak RSS {res['peak_rss_mb']} MiB, chain verified: {res['verified']}; server CPU "
              f"{res['server_cpu_us_per_event']} us/event, load average {res['load_average']}", flush=True)
        print(f"{backend:<10} sent {res['events']} = acknowledged {res['accepted']} = stored {res['stored']},"
              f" duplicates {res['duplicates']}: {'ok' if counted else 'MISMATCH'}", flush=True)
        print(json.dumps(res), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
