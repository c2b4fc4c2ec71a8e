"""End to end with real processes on loopback: `baomi server run` (TLS) + `baomi agent run`.

A marked .docx dropped into a watched outgoing folder of an unclassified host is quarantined
within 2 s and its violation stands on the collector (found by `baomi audit query`, chain
verifying); with the collector down it is delivered once it is back, exactly once; SIGTERM leaves
an `agent_stop`; kill -9 leaves the agent listed as silent; the signed policy is fetched."""
from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_helpers import AgentProc, Collector, baomi, marked_docx, rows, wait_for, write_config

from policies.keys import generate_private_key, public_key_pem
from policies.packs import PACKS_DIR
from policies.signing import make_bundle
from reports.server import init_data


class Site:
    def __init__(self, root: Path):
        self.root = root
        init_data(root / "srv")
        self.collector = Collector(root / "srv").start()
        self.state = root / "state"
        self.collector.enroll(self.state).close()
        self.outbox = root / "Outbox"
        self.outbox.mkdir()
        self.officer_key, self.officer_pub = self._keygen()
        self.agent: AgentProc | None = None

    def _keygen(self) -> tuple[Path, Path]:
        baomi("quarantine", "keygen", "--out", str(self.root / "officer"))  # the officer's X25519 pair
        return self.root / "officer.key", self.root / "officer.pub"

    def config(self, **kw: object) -> Path:
        return write_config(self.root / "agent.yaml", collector=self.collector, state=self.state,
                            vault=self.root / "vault", officer_pub=self.officer_pub,
                            watch=[(self.outbox, "mail")], **kw)  # type: ignore[arg-type]

    def start_agent(self, **kw: object) -> AgentProc:
        self.agent = AgentProc(self.config(**kw), self.root / "agent.log").start()
        return self.agent

    def close(self) -> None:
        if self.agent:
            self.agent.stop()
        self.collector.stop()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    try:
        yield s
    finally:
        s.close()


def source(site: Site, role: str = "officer") -> list[str]:
    """Where `baomi audit` reads: the collector, with the officer token or a new token of `role`."""
    token = site.collector.data / "officer.token"
    if role != "officer":
        token = site.collector.data / f"{role}.token"
        if not token.exists():
            token.write_text(site.collector.role_token(role))
    return ["--server", site.collector.url, "--token-file", str(token), "--ca", str(site.collector.ca)]


def test_marked_docx_quarantined_within_2s_and_recorded(site: Site, tmp_path: Path) -> None:
    import hashlib

    site.start_agent()
    doc = marked_docx(tmp_path / "plan.docx")
    sha = hashlib.sha256(doc.read_bytes()).hexdigest()
    dropped = site.outbox / "plan.docx"
    t0 = time.monotonic()
    shutil.copyfile(doc, dropped)  # a user drops an attachment into the mail outbox
    assert wait_for(lambda: not dropped.exists(), 2.0, step=0.01), site.agent.text()  # type: ignore[union-attr]
    assert time.monotonic() - t0 < 2.0
    assert list((site.root / "vault").iterdir())

    assert wait_for(lambda: rows(site.collector, type="action"), 10)
    res = baomi("audit", "query", *source(site), "--rule", "CN-SEC-005", "--format", "jsonl")
    found = [json.loads(x) for x in res.stdout.splitlines()]
    assert [r["type"] for r in found] == ["violation", "action"]
    for r in found:
        p = r["payload"]
        assert p["sha256"] == sha and p["path"] == str(dropped) and p["policy"].startswith("cn-secrecy@")
        assert p["location"] == "mail_outbox" and r["level"] == "secret"
    assert found[1]["payload"]["action"] == "block" and found[1]["payload"]["result"] == "ok"
    assert "CN-SEC-001" in {r["rule"] for r in rows(site.collector, type="violation")}
    res = baomi("audit", "verify", *source(site, "auditor"), "--server-key", str(site.collector.data / "server.pub"))
    assert "log intact" in res.stdout


def test_collector_down_then_delivered_exactly_once(site: Site, tmp_path: Path) -> None:
    site.start_agent()
    wait_for(lambda: rows(site.collector, type="agent_start"), 10)
    port = site.collector.port
    site.collector.stop()
    dropped = site.outbox / "offline.docx"
    shutil.copyfile(marked_docx(tmp_path / "offline.docx"), dropped)
    # The agent acts on its own while the collector is away.
    assert wait_for(lambda: not dropped.exists(), 5)
    time.sleep(2)  # a few failed deliveries and heartbeats spooled
    site.collector.start(port=port)
    assert wait_for(lambda: rows(site.collector, type="action"), 30), site.agent.text()  # type: ignore[union-attr]
    time.sleep(2)  # any redelivery would land now
    vio = rows(site.collector, type="violation")
    assert sorted(r["rule"] for r in vio) == ["CN-SEC-001", "CN-SEC-005"]
    assert len(rows(site.collector, type="action")) == 1
    every = rows(site.collector)
    assert len({r["event_id"] for r in every}) == len(every)
    seqs = [r["seq"] for r in every]
    assert seqs == list(range(1, len(seqs) + 1))  # nothing lost, nothing twice


def test_sigterm_leaves_agent_stop(site: Site) -> None:
    agent = site.start_agent()
    wait_for(lambda: rows(site.collector, type="heartbeat"), 10)
    agent.signal(signal.SIGTERM)
    assert agent.wait(30) == 0
    stops = rows(site.collector, type="agent_stop")
    assert len(stops) == 1 and stops[0]["payload"]["policy"].startswith("cn-secrecy@")
    res = baomi("audit", "agents", "--data", str(site.collector.data), "--silent-after", "1s", "--format", "jsonl")
    st = json.loads(res.stdout)
    assert st["stopped"] and not st["silent"]


def test_kill_9_is_listed_silent(site: Site) -> None:
    agent = site.start_agent(heartbeat=0.5)
    assert wait_for(lambda: len(rows(site.collector, type="heartbeat")) >= 2, 10)
    res = baomi("audit", "agents", *source(site), "--silent-after", "3s", "--format", "jsonl")
    st = json.loads(res.stdout)
    assert not st["silent"] and st["last_event"] == "heartbeat" and st["policy"].startswith("cn-secrecy@")
    agent.signal(signal.SIGKILL)
    agent.wait(10)
    time.sleep(3.5)
    res = baomi("audit", "agents", *source(site), "--silent-after", "3s", check=False)
    assert res.returncode == 1 and "SILENT" in res.stdout, res.stdout + res.stderr
    assert not rows(site.collector, type="agent_stop")


def _bundle(path: Path, key: object, created: str, version: str) -> Path:
    text = (PACKS_DIR / "cn-secrecy.yaml").read_text().replace('version: "2026.1"', f'version: "{version}"')
    path.write_text(json.dumps(make_bundle([("cn-secrecy.yaml", text.encode())], key, created=created, valid_days=3650)))  # type: ignore[arg-type]
    return path


def test_signed_policy_fetched_bad_and_older_bundles_refused(site: Site, tmp_path: Path) -> None:
    officer = generate_private_key()
    (tmp_path / "policy-officer.pub").write_bytes(public_key_pem(officer))
    policy = {"policy": {"sources": ["cn-secrecy"], "trusted_keys": [str(tmp_path / "policy-officer.pub")]}}
    newer = _bundle(tmp_path / "b2.json", officer, "2026-02-01T00:00:00+00:00", "2026.2")
    baomi("server", "publish-policy", "--data", str(site.collector.data), str(newer))
    agent = site.start_agent(extra=policy)
    loaded = wait_for(lambda: rows(site.collector, type="policy_loaded"), 10)
    assert loaded[0]["payload"]["policy"] == "cn-secrecy@2026.2#2026-02-01T00:00:00+00:00"
    assert wait_for(lambda: any(r["payload"]["policy"].endswith("#2026-02-01T00:00:00+00:00")
                                for r in rows(site.collector, type="heartbeat")), 10)

    # An older bundle (rollback) and one signed by another key: refused, the good one stays.
    older = _bundle(tmp_path / "b1.json", officer, "2026-01-01T00:00:00+00:00", "2026.1")
    baomi("server", "publish-policy", "--data", str(site.collector.data), str(older))
    agent.signal(signal.SIGHUP)
    assert wait_for(lambda: any(r["payload"].get("refused") == "rollback"
                                for r in rows(site.collector, type="policy_loaded")), 10), agent.text()
    rogue = _bundle(tmp_path / "b3.json", generate_private_key(), "2026-03-01T00:00:00+00:00", "2026.3")
    baomi("server", "publish-policy", "--data", str(site.collector.data), str(rogue))
    agent.signal(signal.SIGHUP)
    assert wait_for(lambda: any("not a trusted key" in str(r["payload"].get("refused"))
                                for r in rows(site.collector, type="policy_loaded")), 10), agent.text()
    beats = rows(site.collector, type="heartbeat")
    time.sleep(1.5)
    later = rows(site.collector, type="heartbeat")[len(beats):]
    assert later and all(r["payload"]["policy"] == "cn-secrecy@2026.2#2026-02-01T00:00:00+00:00" for r in later)
