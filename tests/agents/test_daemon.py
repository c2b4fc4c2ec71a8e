"""agents/daemon.py: sd_notify over a real NOTIFY_SOCKET, SIGHUP reload, niceness, the policy
holder (signature, rollback), media callbacks that fail, and the shipped systemd units."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from agent_helpers import AgentProc, Collector, marked_docx, rows, wait_for, write_config

from agents.config import load_config
from agents.daemon import PolicyHolder, sd_notify
from agents.vault import keygen
from policies.keys import generate_private_key, public_key_pem
from policies.packs import PACKS_DIR
from policies.signing import make_bundle
from reports.server import init_data

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(30)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    try:
        yield sock
    finally:
        sock.close()


def test_sd_notify_reaches_a_real_socket(notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sd_notify("STATUS=testing")
    assert notify_socket.recv(4096) == b"STATUS=testing"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not sd_notify("READY=1")  # not under systemd: nothing sent, no error


@pytest.fixture
def site(tmp_path: Path) -> Iterator[SimpleNamespace]:
    init_data(tmp_path / "srv")
    c = Collector(tmp_path / "srv").start()
    try:
        c.enroll(tmp_path / "state").close()
        _k, pub = keygen(tmp_path / "officer")
        (tmp_path / "Outbox").mkdir()
        yield SimpleNamespace(root=tmp_path, collector=c, pub=pub, outbox=tmp_path / "Outbox")
    finally:
        c.stop()


def _config(site: SimpleNamespace, **kw: object) -> Path:
    return write_config(site.root / "agent.yaml", collector=site.collector, state=site.root / "state",
                        vault=site.root / "vault", officer_pub=site.pub, watch=[(site.outbox, "mail")],
                        **kw)  # type: ignore[arg-type]


def test_ready_watchdog_niceness_and_sighup_reload(site: SimpleNamespace, notify_socket: socket.socket,
                                                   tmp_path: Path) -> None:
    cfg = _config(site, extra={"limits": {"nice": 7, "ionice": "idle", "debounce": 0.2}})
    agent = AgentProc(cfg, tmp_path / "agent.log", env={"WATCHDOG_USEC": "1000000"})
    agent.start()
    try:
        got: list[bytes] = []
        while not (b"READY=1" in got and b"WATCHDOG=1" in got):
            got.append(notify_socket.recv(4096))
        stat = Path(f"/proc/{agent.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()  # type: ignore[union-attr]
        assert int(stat[16]) == 7  # field 19: nice

        # A second outgoing folder appears in the configuration: SIGHUP picks it up.
        im = tmp_path / "WeChat"
        im.mkdir()
        data = json.loads(cfg.read_text())
        data["watch"].append({"path": str(im), "channel": "im"})
        cfg.write_text(json.dumps(data))
        agent.signal(signal.SIGHUP)
        while b"READY=1" not in notify_socket.recv(4096):
            pass
        shutil.copyfile(marked_docx(tmp_path / "x.docx"), im / "x.docx")
        assert wait_for(lambda: not (im / "x.docx").exists(), 10), agent.text()
        assert wait_for(lambda: [r for r in rows(site.collector, type="violation")
                                 if r["payload"]["location"] == "im_transfer"], 10)

        # A broken configuration on reload: logged, the agent keeps running as before.
        cfg.write_text("collector: [\n")
        agent.signal(signal.SIGHUP)
        assert wait_for(lambda: "reload failed" in agent.text(), 10)
        shutil.copyfile(tmp_path / "x.docx", site.outbox / "y.docx")
        assert wait_for(lambda: not (site.outbox / "y.docx").exists(), 10)
    finally:
        agent.stop()
    assert agent.proc.returncode == 0  # type: ignore[union-attr]


def test_unreadable_or_vanished_file_gives_an_error_event_not_a_crash(site: SimpleNamespace) -> None:
    from agents.daemon import Agent
    from agents.watch import Place

    agent = Agent(load_config(_config(site)))
    try:
        seen: list[tuple[str, dict[str, object]]] = []
        agent.submit = lambda t, p: seen.append((t, dict(p)))  # type: ignore[method-assign]
        place = Place(site.outbox, "mail_outbox", "mail")
        # A regular file whose read fails (EIO) even for root: /proc/self/mem.
        assert agent.judge(Path("/proc/self/mem"), place) is None
        assert seen == [("x_scan_error", {"path": "/proc/self/mem", "error": "unreadable",
                                          "detail": "Input/output error", "location": "mail_outbox"})]
        assert agent.judge(site.outbox / "gone.docx", place) is None  # vanished before its turn
        assert len(seen) == 1
    finally:
        agent.close()


def _bundle(key: object, created: str, version: str) -> dict[str, object]:
    text = (PACKS_DIR / "cn-secrecy.yaml").read_text().replace('version: "2026.1"', f'version: "{version}"')
    return make_bundle([("cn-secrecy.yaml", text.encode())], key, created=created, valid_days=3650)  # type: ignore[arg-type]


def test_policy_holder_signature_rollback_and_restart(site: SimpleNamespace, tmp_path: Path) -> None:
    officer = generate_private_key()
    (tmp_path / "officer-sign.pub").write_bytes(public_key_pem(officer))
    cfg_path = _config(site, extra={"policy": {"sources": ["cn-secrecy"],
                                               "trusted_keys": [str(tmp_path / "officer-sign.pub")]}})
    holder = PolicyHolder(load_config(cfg_path))
    assert holder.version == "cn-secrecy@2026.1"
    b2 = _bundle(officer, "2026-02-01T00:00:00+00:00", "2026.2")
    assert holder.offer(b2) == "installed"
    assert holder.version == "cn-secrecy@2026.2#2026-02-01T00:00:00+00:00"
    assert holder.offer(b2) == "same"
    assert holder.offer(_bundle(officer, "2026-01-01T00:00:00+00:00", "2026.1")) == "rollback"
    # newer by its date, older by its signed version: the version mark refuses it
    older = make_bundle([("cn-secrecy.yaml", b"x")], officer, created="2026-02-15T00:00:00+00:00", version=1)  # type: ignore[arg-type]
    assert "回退被拒绝" in holder.offer(older)
    assert holder.offer(_bundle(generate_private_key(), "2026-03-01T00:00:00+00:00", "2026.3")).startswith("bad:")
    tampered = _bundle(officer, "2026-04-01T00:00:00+00:00", "2026.4")
    tampered["files"][0]["text"] += "\n# edited"  # type: ignore[index]
    assert holder.offer(tampered).startswith("bad:")
    assert holder.offer({"created": "2027"}).startswith("bad:")
    assert holder.version == "cn-secrecy@2026.2#2026-02-01T00:00:00+00:00"  # the last good one
    # A restart starts from the accepted bundle, not from the shipped pack.
    assert PolicyHolder(load_config(cfg_path)).version == holder.version


def test_media_callback_errors_never_kill_the_agent(site: SimpleNamespace, tmp_path: Path) -> None:
    from agents.daemon import Agent

    agent = Agent(load_config(_config(site)))
    try:
        agent.on_media_event(SimpleNamespace(action="mount", medium=None, mountpoint=None))  # no exception
        agent.on_media_event(object())
    finally:
        agent.close()


def _verify(unit_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", *sorted(str(p) for p in unit_dir.iterdir())],
                          capture_output=True, text=True, timeout=60)


def test_systemd_units_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    baomi_bin = shutil.which("baomi") or str(Path(os.sys.executable).parent / "baomi")
    if not os.access(baomi_bin, os.X_OK):
        pytest.skip("no baomi executable to point the units at")
    units = tmp_path / "units"
    units.mkdir()
    for p in (ROOT / "agents" / "systemd").iterdir():
        # verify checks ExecStart binaries exist: point them at this install's baomi.
        (units / p.name).write_text(p.read_text().replace("/usr/local/bin/baomi", baomi_bin))
    service = (ROOT / "agents" / "systemd" / "baomi-agent.service").read_text()
    for key in ("Type=notify", "WatchdogSec=", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                "CapabilityBoundingSet=", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert key in service
    assert "baomi check --config /etc/baomi/agent.yaml" in (ROOT / "agents/systemd/baomi-check.service").read_text()
    res = _verify(units)
    if "Failed to" in res.stderr and "bus" in res.stderr.lower():
        pytest.skip(f"systemd-analyze cannot run here: {res.stderr.strip()[:200]}")
    assert res.returncode == 0 and "Unknown key" not in res.stderr and "ignoring" not in res.stderr, res.stderr
    # The check is not vacuous: a misspelt directive is reported.
    (units / "baomi-agent.service").write_text(service.replace("/usr/local/bin/baomi", baomi_bin)
                                               .replace("PrivateTmp=yes", "PrivateTmpp=yes"))
    assert "Unknown key" in _verify(units).stderr


def test_hung_scan_is_reported_set_aside_and_replaced(site: SimpleNamespace, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A parser that never returns (fault injected at the scanner call: real hangs are hostile
    inputs the scanner's tests chase) costs one file, not the agent."""
    import threading

    from agents.daemon import Agent

    cfg = _config(site, extra={"limits": {"scan_timeout": 1, "max_concurrent_scans": 1, "debounce": 0.1,
                                          "nice": 0, "ionice": "none"}})
    agent = Agent(load_config(cfg), str(cfg))
    release = threading.Event()
    real = agent.scanner.scan_path

    def scan_path(path: str, display: str | None = None) -> object:
        if path.endswith("hang.docx"):
            release.wait(60)
        return real(path, display)

    monkeypatch.setattr(agent.scanner, "scan_path", scan_path)
    t = threading.Thread(target=agent.run, daemon=True)
    t.start()
    try:
        doc = marked_docx(tmp_path / "m.docx")
        shutil.copyfile(doc, site.outbox / "hang.docx")
        assert wait_for(lambda: rows(site.collector, type="x_scan_error"), 15)
        err = rows(site.collector, type="x_scan_error")[0]["payload"]
        assert err["error"] == "timeout" and err["path"].endswith("hang.docx")
        # The replacement thread keeps judging other files.
        shutil.copyfile(doc, site.outbox / "next.docx")
        assert wait_for(lambda: not (site.outbox / "next.docx").exists(), 10)
        assert json.loads((site.root / "state" / "poison.json").read_text())[0][0].endswith("hang.docx")
    finally:
        release.set()
        agent.stop_event.set()
        t.join(30)
    # A restart does not scan the set-aside file again (it would hang again) while unchanged.
    again = Agent(load_config(cfg), str(cfg))
    try:
        assert again.judge(site.outbox / "hang.docx", again._configured_places()[0]) is None
        assert (site.outbox / "hang.docx").exists()
    finally:
        again.close()


@pytest.mark.parametrize("isolate", ["off", "auto"])  # in-process scanner; confined workers when root
def test_site_keywords_from_the_bundle_never_rest_in_plain_text(site: SimpleNamespace, tmp_path: Path,
                                                                isolate: str) -> None:
    from agents.daemon import Agent

    code_name = "青龙九号工程"
    officer = generate_private_key()
    (tmp_path / "officer-sign.pub").write_bytes(public_key_pem(officer))
    cfg = _config(site, extra={"policy": {"sources": ["cn-secrecy"],
                                          "trusted_keys": [str(tmp_path / "officer-sign.pub")]},
                               "limits": {"isolate": isolate, "nice": 0, "ionice": "none"}})
    pack = (PACKS_DIR / "cn-secrecy.yaml").read_bytes()
    body = make_bundle([("cn-secrecy.yaml", pack), ("keywords/projects.txt", f"# code names\n{code_name}\n".encode())],
                       officer, created="2026-05-01T00:00:00+00:00", valid_days=3650)
    agent = Agent(load_config(cfg), str(cfg))
    try:
        assert agent.policy.offer(body) == "installed"
        agent._build_scanner()
        assert agent.policy.keywords == (code_name,)
        assert (type(agent.scanner).__name__ == "Scanner") == (isolate == "off" or os.geteuid() != 0)
        doc = site.outbox / "memo.txt"
        doc.write_text(f"关于{code_name}的进度\n", encoding="utf-8")
        rec = agent.scanner.scan_path(str(doc)).to_record()
        assert [f["kind"] for f in rec["findings"]] == ["keyword"]
        agent.judge(doc, agent._configured_places()[0])
    finally:
        agent.close()
    # A restart finds the bundle (decrypting it) and the keywords again.
    again = Agent(load_config(cfg), str(cfg))
    try:
        assert again.policy.keywords == (code_name,) and again.policy.created == "2026-05-01T00:00:00+00:00"
    finally:
        again.close()
    needle = code_name.encode("utf-8")
    places = [site.root / "state", Path(os.environ["XDG_CACHE_HOME"])]
    leaked = [p for root in places for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]
    assert leaked == []
    saved = site.root / "state" / "policy" / "bundle.enc"
    assert saved.is_file() and b"cn-secrecy" not in saved.read_bytes()  # the whole bundle is sealed


def test_override_cli_releases_a_held_file_and_records_the_reason(site: SimpleNamespace) -> None:
    from agent_helpers import baomi

    from agents.actions import HoldArea
    from reports.client import AuditClient

    cfg = _config(site)
    f = site.outbox / "draft.docx"
    f.write_bytes(b"held bytes")
    hid = HoldArea(site.root / "state" / "held").hold(f, {"rule": "CN-SEC-010", "sha256": "ab" * 32, "policy": "v"})
    assert not f.exists()
    listed = baomi("agent", "held", "--config", str(cfg)).stdout
    assert hid in listed and "CN-SEC-010" in listed
    res = baomi("agent", "override", hid, "--reason", "x", "--config", str(cfg), check=False)
    assert res.returncode == 2 and "reason" in res.stderr
    res = baomi("agent", "override", "h-0000", "--reason", "approved by office", "--config", str(cfg), check=False)
    assert res.returncode == 2 and "no held file" in res.stderr and "Traceback" not in res.stderr
    baomi("agent", "override", hid, "--reason", "approved by the office head", "--config", str(cfg))
    assert f.read_bytes() == b"held bytes"
    with AuditClient(site.root / "state") as client:
        assert client.flush(timeout=10).pending == 0
    ov = rows(site.collector, type="action")
    assert ov[-1]["payload"]["action"] == "override" and ov[-1]["payload"]["reason"] == "approved by the office head"
    assert ov[-1]["rule"] == "CN-SEC-010"


def test_full_scan_queue_is_reported_once_and_left_to_the_rescan(site: SimpleNamespace) -> None:
    from agents.daemon import Agent
    from agents.watch import Place

    agent = Agent(load_config(_config(site, extra={"limits": {"max_queue": 100}})))
    try:
        seen: list[tuple[str, dict[str, object]]] = []
        agent.submit = lambda t, p: seen.append((t, dict(p)))  # type: ignore[method-assign]
        place = Place(site.outbox, "mail_outbox", "mail")
        for i in range(250):
            agent.enqueue(site.outbox / f"f{i}", place)
        assert agent.queue.qsize() == 100
        assert [(t, p["problem"]) for t, p in seen] == [("x_watch_problem", "queue_full")]
        assert agent.watcher._rescans == []  # no immediate rescan that would overflow it again
    finally:
        agent.close()
