"""The client library: durable spool, resumption after restarts, backoff, bounded size with a
signed gap notice the collector records and `verify` accepts."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from audit_helpers import Collector, baomi

from reports.client import AuditClient
from reports.events import SchemaError
from reports.store import open_store


def kinds_and_seqs(c: Collector) -> list[tuple[str, int | None]]:
    store = open_store(c.data, c.db_url)
    try:
        return [(e.kind, e.record.get("seq")) for e in store.entries()]
    finally:
        store.close()


def test_spool_survives_restart_and_backoff_waits_for_the_server(sqlite_data: Path, tmp_path: Path) -> None:
    c = Collector(sqlite_data).start()
    state = tmp_path / "agent"
    c.enroll(state).close()
    port = c.port
    c.stop()  # the collector is down
    client = AuditClient(state)
    for i in range(40):
        client.submit("scan_summary", {"files": i, "findings": 0})
    t0 = time.monotonic()
    res = client.flush(timeout=1.0, max_backoff=0.2)
    assert res.acked == 0 and res.pending == 40 and res.retries >= 3
    assert time.monotonic() - t0 < 3
    client.close()  # the agent restarts
    c.start(port=port)
    try:
        client = AuditClient(state)
        assert client.pending() == 40
        client.submit("agent_start", {"version": "0.1"})
        res = client.flush()
        assert (res.acked, res.pending) == (41, 0)
        client.close()
        assert [s for k, s in kinds_and_seqs(c) if k == "event"] == list(range(1, 42))
    finally:
        c.stop()


def test_bounded_spool_drops_oldest_with_a_signed_gap_notice(sqlite_data: Path, tmp_path: Path) -> None:
    c = Collector(sqlite_data).start()
    state = tmp_path / "agent"
    c.enroll(state).close()
    port = c.port
    c.stop()
    client = AuditClient(state, max_events=10)
    for i in range(25):
        client.submit("heartbeat", {"i": i})
    assert client.pending() == 10
    client.close()
    c.start(port=port)
    try:
        client = AuditClient(state, max_events=10)
        res = client.flush()
        assert (res.acked, res.pending) == (10, 0)
        client.submit("heartbeat", {"i": 25})
        assert client.flush().acked == 1
        client.close()
        entries = kinds_and_seqs(c)
        assert [k for k, _ in entries] == ["enrol", "gap"] + ["event"] * 11
        assert [s for k, s in entries if k == "event"] == list(range(16, 27))
        store = open_store(c.data)
        gap = next(e.record for e in store.entries() if e.kind == "gap")
        store.close()
        assert (gap["notice"]["first"], gap["notice"]["last"], gap["notice"]["reason"]) == (1, 15, "spool_full")
        assert "log intact" in baomi("audit", "verify", "--data", str(c.data)).stdout
    finally:
        c.stop()


def test_submit_validates_before_spooling(collector: Collector, tmp_path: Path) -> None:
    client = collector.enroll(tmp_path / "a")
    with pytest.raises(SchemaError):
        client.submit("no such type", {})
    with pytest.raises(SchemaError):
        client.submit("finding", {"nested": {"excerpt": "…"}})
    ev = client.submit("x_site_event", {"k": 1})
    assert ev.seq == 1 and client.pending() == 1  # refused events consumed no seq
    client.flush()
    client.close()


def test_cli_enroll_and_send_report_acknowledgements(collector: Collector, tmp_path: Path) -> None:
    state = tmp_path / "st"
    out = baomi("audit", "enroll", "--server", collector.url, "--token-file", "-",
                "--state", str(state), "--ca", str(collector.ca), input=collector.enroll_token()).stdout
    assert "enrolled agent: a-" in out
    again = baomi("audit", "enroll", "--server", collector.url, "--token-file", "-",
                  "--state", str(state), "--ca", str(collector.ca), check=False, input=collector.enroll_token())
    assert again.returncode == 2
    f = tmp_path / "ev.jsonl"
    f.write_text(json.dumps({"type": "violation", "path": "/u/a.doc", "marking": "绝密",
                             "level": "top_secret", "rule": "BM-P001"}, ensure_ascii=False) + "\n"
                 + json.dumps({"type": "attestation", "payload": {"user": "张三"}}, ensure_ascii=False) + "\n",
                 encoding="utf-8")
    res = baomi("audit", "send", "--state", str(state), str(f))
    assert "spooled 2" in res.stdout and "acknowledged 2" in res.stdout and "pending 0" in res.stdout
    zh = baomi("--lang", "zh", "audit", "send", "--state", str(state), str(f))
    assert "服务器已确认 0 条" in zh.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"type": "finding", "content": "正文"}, ensure_ascii=False) + "\n")
    refused = baomi("audit", "send", "--state", str(state), str(bad), check=False)
    assert refused.returncode == 2 and "content" in refused.stderr


def test_client_learns_clock_skew_and_splits_oversized_batches(collector: Collector, tmp_path: Path) -> None:
    client = collector.enroll(tmp_path / "a", batch_size=1000)
    client.skew = -3600.0  # as if this machine's clock were an hour slow
    big = {f"k{j}": "路" * 1000 for j in range(5)}  # ~15 kB canonical: 600 of them exceed a request
    for i in range(600):
        client.submit("x_bulk", {"i": i, **big})
    res = client.flush()
    assert (res.acked, res.pending) == (600, 0)
    assert abs(client.skew) < 60
    client.close()
    store = open_store(collector.data)
    try:
        assert sum(1 for e in store.entries() if e.kind == "event") == 600
    finally:
        store.close()
