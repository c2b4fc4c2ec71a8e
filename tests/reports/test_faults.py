"""Fault tests with real processes: the collector killed (-9) mid-ingest and restarted, the client
killed mid-upload and re-run, connections dropped mid-batch. Afterwards every event is stored
exactly once and the log verifies."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import BAOMI, Collector, baomi

from reports.client import AuditClient
from reports.store import open_store


def stored_events(c: Collector) -> list[dict[str, Any]]:
    store = open_store(c.data, c.db_url)
    try:
        return [dict(e.record) for e in store.entries() if e.kind == "event"]
    finally:
        store.close()


def assert_exactly_once(c: Collector, expected_ids: set[str]) -> None:
    events = stored_events(c)
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert set(ids) == expected_ids
    pairs = [(e["agent"], e["seq"]) for e in events]
    assert len(pairs) == len(set(pairs))
    args = ["audit", "verify", "--data", str(c.data)] + (["--db", c.db_url] if c.db_url else [])
    assert "log intact" in baomi(*args).stdout


def test_collector_killed_mid_ingest_loses_nothing(server_data: Path, backend: str | None, tmp_path: Path) -> None:
    c = Collector(server_data, backend).start()
    clients = [c.enroll(tmp_path / f"agent{i}", batch_size=15) for i in range(4)]
    submitted: set[str] = set()
    lock = threading.Lock()
    errors: list[BaseException] = []
    per_agent = 250

    def run(client: AuditClient) -> None:
        try:
            for i in range(per_agent):
                ev = client.submit("finding", {"path": f"/d/{i}.pdf", "level": "secret", "rule": "BM-M001"})
                with lock:
                    submitted.add(ev.id)
                if i % 10 == 9:
                    client.flush(timeout=60, max_backoff=0.5)
            res = client.flush(timeout=60, max_backoff=0.5)
            assert res.pending == 0
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(cl,)) for cl in clients]
    for t in threads:
        t.start()
    kills = 0
    try:
        for _ in range(2):
            deadline = time.monotonic() + 30
            before = len(stored_events(c))
            while len(stored_events(c)) < before + 60 and time.monotonic() < deadline:
                time.sleep(0.05)
            c.kill()  # SIGKILL while batches are in flight
            kills += 1
            time.sleep(0.3)
            c.start(port=c.port)
        for t in threads:
            t.join(120)
    finally:
        for cl in clients:
            cl.close()
    assert not errors, errors
    assert kills == 2
    assert len(submitted) == 4 * per_agent
    assert_exactly_once(c, submitted)
    c.stop()


def test_prefork_workers_share_the_port_and_die_with_the_supervisor(sqlite_data: Path, tmp_path: Path) -> None:
    c = Collector(sqlite_data, workers=3).start()
    clients = [c.enroll(tmp_path / f"a{i}", batch_size=10) for i in range(4)]
    ids = {cl.submit("heartbeat", {"i": i}).id for cl in clients for i in range(60)}
    for cl in clients:
        assert cl.flush().pending == 0
    assert c.proc is not None
    workers = subprocess.run(["pgrep", "-P", str(c.proc.pid)], capture_output=True, text=True,
                             check=False).stdout.split()
    assert len(workers) == 2
    c.kill()  # SIGKILL to the supervisor only
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "a worker outlived the supervisor"
    c.start(port=c.port)  # the port is free again
    for cl in clients:
        ids.add(cl.submit("agent_start", {}).id)
        assert cl.flush().pending == 0
        cl.close()
    assert_exactly_once(c, ids)
    c.stop()


def test_client_killed_mid_upload_then_rerun(collector: Collector, tmp_path: Path) -> None:
    state = tmp_path / "agent"
    baomi("audit", "enroll", "--server", collector.url, "--token-file", "-",
          "--state", str(state), "--ca", str(collector.ca), input=collector.enroll_token())
    n = 1500
    src = tmp_path / "events.jsonl"
    src.write_text("".join(json.dumps({"type": "finding", "path": f"/f/{i}.docx", "n": i,
                                       "marking": "秘密", "level": "confidential"}) + "\n"
                           for i in range(n)), encoding="utf-8")
    proc = subprocess.Popen([*BAOMI, "audit", "send", "--state", str(state), "--batch-size", "5", str(src)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(stored_events(collector)) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(stored_events(collector))
    assert 0 < partial < n, "the kill did not land mid-upload"
    res = baomi("audit", "send", "--state", str(state), str(src))
    assert "pending 0" in res.stdout
    rerun = baomi("audit", "send", "--state", str(state), str(src))  # nothing new the third time
    assert "spooled 0" in rerun.stdout
    events = stored_events(collector)
    assert sorted(e["payload"]["n"] for e in events) == list(range(n))
    assert_exactly_once(collector, {e["id"] for e in events})


class DroppingProxy:
    """A TCP proxy on 127.0.0.1 that breaks chosen connections: `cut_response` forwards the
    request but drops the connection before the answer (the server did commit), `cut_request`
    drops it in the middle of the request."""

    def __init__(self, upstream: int, plan: list[str]):
        self.upstream, self.plan = upstream, plan
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            mode = self.plan[self.count] if self.count < len(self.plan) else "pass"
            self.count += 1
            up = socket.create_connection(("127.0.0.1", self.upstream))
            upload = [0]  # request bytes forwarded on this connection
            threading.Thread(target=self._pump, args=(conn, up, upload, True, mode == "cut_request"),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(up, conn, upload, False, mode == "cut_response"),
                             daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, upload: list[int], request: bool, cut: bool) -> None:
        """Copy src to dst. Requests are cut past 6 kB; responses once a request (> 5 kB, so past
        the TLS handshake) went through - the server answers only after committing it."""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if request:
                    if cut and upload[0] + len(data) > 6000:
                        break
                    upload[0] += len(data)
                elif cut and upload[0] > 5000:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.closed = True
        self.sock.close()


def test_connections_dropped_mid_batch(collector: Collector, tmp_path: Path) -> None:
    client = collector.enroll(tmp_path / "agent", batch_size=50)
    plan = ["cut_response", "cut_request", "cut_response", "cut_request", "cut_response"]
    proxy = DroppingProxy(collector.port, plan)
    # Point the client at the proxy: the certificate is for 127.0.0.1, so TLS still verifies.
    state = json.loads((tmp_path / "agent" / "state.json").read_text())
    state["server"] = f"https://127.0.0.1:{proxy.port}"
    (tmp_path / "agent" / "state.json").write_text(json.dumps(state))
    client.close()
    client = AuditClient(tmp_path / "agent", batch_size=50)
    ids = {client.submit("device", {"device": "usb", "serial": f"S{i}"}).id for i in range(400)}
    try:
        res = client.flush(timeout=60, max_backoff=0.3)
    finally:
        client.close()
        proxy.close()
    assert res.pending == 0
    assert res.retries == len(plan), res  # every drop happened and was retried
    assert proxy.count == len(plan) + 1  # then one good keep-alive connection carried the rest
    # The first batch was committed but its answer cut; its redelivery was recognised.
    assert res.duplicates == 50
    assert_exactly_once(collector, ids)


@pytest.mark.parametrize("when", ["spooling", "uploading"])
def test_send_is_idempotent_per_file(collector: Collector, tmp_path: Path, when: str) -> None:
    """Re-running `send` after a clean finish or a crash never duplicates a line."""
    state = tmp_path / "agent"
    collector.enroll(state).close()
    src = tmp_path / "e.jsonl"
    src.write_text("".join(json.dumps({"type": "heartbeat", "payload": {"i": i}}) + "\n" for i in range(30)))
    if when == "spooling":
        client = AuditClient(state)
        items = [("heartbeat", {"i": i}, None) for i in range(30)]
        from reports.cli import _send_source

        source = _send_source(str(src), src.read_text().splitlines())  # the key `audit send` uses
        client.submit_source(source, iter(items[:10]))  # as if killed after 10 lines
        client.close()
    baomi("audit", "send", "--state", str(state), str(src))
    baomi("audit", "send", "--state", str(state), str(src))
    events = stored_events(collector)
    assert sorted(e["payload"]["i"] for e in events) == list(range(30))
