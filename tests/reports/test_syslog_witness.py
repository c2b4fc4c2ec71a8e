"""Issue 14, item 1: signed tree heads published to syslog witnesses (RFC 5424 over UDP and TCP,
through logging.handlers.SysLogHandler), read back by `audit verify --witness FILE`, which then
shows a truncated tail. Real collector over HTTPS, real syslog listeners on loopback."""
from __future__ import annotations

import json
import re
import socketserver
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from audit_helpers import Collector, baomi, sync_agents_table

from reports.store import open_store
from reports.witness import SYSLOG_MARK

RFC5424 = re.compile(r"^<(\d+)>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+ baomi \d+ sth - " + SYSLOG_MARK + r" \{")


class _Sink:
    """A syslog server as a site runs one: every message received, one per line, in a file."""

    def __init__(self, path: Path):
        self.path, self.lock, self.messages = path, threading.Lock(), []

    def add(self, msg: bytes) -> None:
        text = msg.decode("utf-8").rstrip("\n")
        with self.lock:
            self.messages.append(text)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(text + "\n")


@pytest.fixture
def listeners(tmp_path: Path) -> Iterator[tuple[_Sink, int, _Sink, int]]:
    udp_sink, tcp_sink = _Sink(tmp_path / "udp.log"), _Sink(tmp_path / "tcp.log")

    class Udp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            udp_sink.add(self.request[0])

    class Tcp(socketserver.StreamRequestHandler):
        def handle(self) -> None:  # RFC 6587 non-transparent framing: one message a line
            for line in self.rfile:
                tcp_sink.add(line)

    udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Udp)
    tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Tcp)
    tcp.daemon_threads = True
    for srv in (udp, tcp):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield udp_sink, udp.server_address[1], tcp_sink, tcp.server_address[1]
    finally:
        for srv in (udp, tcp):
            srv.shutdown()
            srv.server_close()


def _heads(data: Path) -> set[tuple[int, str]]:
    store = open_store(data)
    try:
        return {(t.size, t.root) for t in store.tree_heads()}
    finally:
        store.close()


def test_every_head_reaches_the_syslog_witnesses_and_verify_reads_them(
        sqlite_data: Path, tmp_path: Path, listeners: tuple[_Sink, int, _Sink, int]) -> None:
    udp_sink, udp_port, tcp_sink, tcp_port = listeners
    c = Collector(sqlite_data, checkpoint_interval=0.3, extra_args=(
        "--witness", f"syslog://127.0.0.1:{udp_port}", "--witness", f"syslog+tcp://127.0.0.1:{tcp_port}")).start()
    a = c.enroll(tmp_path / "a", hostname="ws-syslog")
    try:
        for rnd in range(4):  # several checkpoints, each over a grown log
            for i in range(5):
                a.submit("heartbeat", {"round": rnd, "n": i})
            assert a.flush().pending == 0
            time.sleep(0.8)
    finally:
        a.close()
        c.stop()  # the last checkpoint is published on the way out
    stored = _heads(sqlite_data)
    assert len(stored) >= 4
    for sink in (udp_sink, tcp_sink):
        assert sink.messages and all(RFC5424.match(m) for m in sink.messages), sink.messages[:2]
        # PRI = facility local0 (16) * 8 + severity informational (6)
        assert {int(RFC5424.match(m).group(1)) for m in sink.messages} == {16 * 8 + 6}  # type: ignore[union-attr]
        got = [json.loads(m.split(SYSLOG_MARK + " ", 1)[1])["tree_head"] for m in sink.messages]
        assert stored <= {(h["size"], h["root"]) for h in got}, "every stored checkpoint arrived"
        assert [h["size"] for h in got] == sorted({h["size"] for h in got}), "each head once, growing"
    witnesses = ("--witness", str(udp_sink.path), "--witness", str(tcp_sink.path))
    ok = baomi("--lang", "en", "audit", "verify", "--data", str(sqlite_data), *witnesses, check=False)
    assert ok.returncode == 0 and "log intact" in ok.stdout, ok.stdout + ok.stderr

    # Whoever holds the database cuts the tail and deletes the newer checkpoints and tree heads:
    # the database alone still looks intact, what the syslog witnesses received does not.
    size = max(s for s, _ in stored)
    keep = size - 6
    with sqlite3.connect(sqlite_data / "audit.sqlite", isolation_level=None) as conn:
        root = conn.execute("SELECT hash FROM entries WHERE gseq = ?", (keep,)).fetchone()[0]
        conn.execute("DELETE FROM entries WHERE gseq > ?", (keep,))
        conn.execute("UPDATE head SET size = ?, root = ?", (keep, root))
        conn.execute("DELETE FROM checkpoints WHERE size > ?", (keep,))
        conn.execute("DELETE FROM tree_heads WHERE size > ?", (keep,))
    sync_agents_table(sqlite_data)
    alone = baomi("--lang", "en", "audit", "verify", "--data", str(sqlite_data), check=False)
    assert alone.returncode == 0, alone.stdout
    for w in (udp_sink.path, tcp_sink.path):
        bad = baomi("--lang", "en", "audit", "verify", "--data", str(sqlite_data), "--witness", str(w), check=False)
        assert bad.returncode == 1 and f"first bad entry #{keep + 1}" in bad.stdout, bad.stdout


def test_a_forged_head_in_the_syslog_file_is_refused(sqlite_data: Path, tmp_path: Path,
                                                      listeners: tuple[_Sink, int, _Sink, int]) -> None:
    """Anyone can send a UDP datagram to a syslog server: a head not signed by the checkpoint key
    makes verify fail loudly rather than count as evidence; unrelated lines are ignored."""
    udp_sink, udp_port, _, _ = listeners
    c = Collector(sqlite_data, checkpoint_interval=0.3, extra_args=("--witness", f"syslog://127.0.0.1:{udp_port}"))
    c.start()
    c.stop()
    assert udp_sink.messages
    head = json.loads(udp_sink.messages[-1].split(SYSLOG_MARK + " ", 1)[1])["tree_head"]
    with open(udp_sink.path, "a", encoding="utf-8") as fh:
        fh.write("<13>1 2026-12-05T00:00:00Z host sshd 1 - - unrelated line\n")
    assert baomi("audit", "verify", "--data", str(sqlite_data), "--witness", str(udp_sink.path)).returncode == 0
    with open(udp_sink.path, "a", encoding="utf-8") as fh:
        fh.write(f"<134>1 2026-12-05T00:00:00Z evil baomi 1 sth - {SYSLOG_MARK} "
                 + json.dumps({"tree_head": {**head, "size": head["size"] + 5}}) + "\n")
    bad = baomi("--lang", "en", "audit", "verify", "--data", str(sqlite_data), "--witness", str(udp_sink.path),
                check=False)
    assert bad.returncode == 1 and "forged tree head" in bad.stdout, bad.stdout
    bad_url = baomi("--lang", "en", "server", "run", "--data", str(sqlite_data), "--listen", "127.0.0.1:0",
                    "--witness", "syslog://", check=False, timeout=60)
    assert bad_url.returncode == 2 and "syslog" in bad_url.stderr, bad_url.stderr


@pytest.mark.parametrize("scheme,prunes", [("syslog", False), ("syslog+tcp", True)])
def test_only_a_tcp_syslog_witness_lets_agents_drop_kept_events(
        sqlite_data: Path, tmp_path: Path, listeners: tuple[_Sink, int, _Sink, int], scheme: str,
        prunes: bool) -> None:
    # A UDP datagram sent is not a datagram kept: the agent keeps its acknowledged events.
    udp_sink, udp_port, tcp_sink, tcp_port = listeners
    port = tcp_port if prunes else udp_port
    c = Collector(sqlite_data, checkpoint_interval=0.3,
                  extra_args=("--witness", f"{scheme}://127.0.0.1:{port}")).start()
    a = c.enroll(tmp_path / "a", hostname=f"ws-{scheme.replace('+', '-')}", probe_interval=0)
    try:
        for i in range(10):
            a.submit("heartbeat", {"n": i})
        assert a.flush().pending == 0
        deadline = time.monotonic() + 8
        while a.acked_kept() and time.monotonic() < deadline:
            time.sleep(0.4)
            a.flush()  # the probe's answer carries the newest witnessed head, if any
        assert (a.acked_kept() == 0) is prunes
        assert (tcp_sink if prunes else udp_sink).messages, "the witness received the heads"
    finally:
        a.close()
        c.stop()
