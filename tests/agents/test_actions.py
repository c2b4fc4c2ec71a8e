"""agents/actions.py: the graded actions, their audit events, the hold/override round trip,
desktop notification vs log line, and failures reported rather than raised."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from agents.actions import Actions, Grade, HoldArea, Judged, Notifier, grade_for, record_override
from agents.vault import Vault, keygen, load_private
from policies.engine import events_for_scan_record, load_policy
from policies.model import Action
from reports.events import check_payload

SECRET_BODY = "关于绝密工程的具体部署方案"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, etype: str, payload: Any) -> None:
        check_payload(dict(payload))  # what the audit client would refuse
        self.events.append((etype, dict(payload)))

    def types(self) -> list[str]:
        return [t for t, _ in self.events]


def judged(path: Path, location: str, role: str = "unclassified") -> Judged:
    policy = load_policy(["cn-secrecy"])
    data = path.read_bytes()
    rec = {"path": str(path), "sha256": hashlib.sha256(data).hexdigest(), "level": "secret", "size": len(data),
           "findings": [{"level": "secret", "kind": "marking", "text": "机密★10年", "period": {"years": 10}}],
           "errors": []}
    vs = []
    for ev in events_for_scan_record(rec, host_role=role, location=location):
        vs.extend(policy.evaluate(ev))
    vs.sort(key=lambda v: (-v.severity.rank, -v.action.rank, v.rule_id))
    action = max((v.action for v in vs), key=lambda a: a.rank, default=None)
    return Judged(path, location, "mail", rec["sha256"], "secret", ("机密★10年",), tuple(vs), action,
                  "cn-secrecy@2026.1", len(data))


def make_vault(tmp_path: Path) -> Vault:
    _key, pub = keygen(tmp_path / "officer")
    return Vault(tmp_path / "vault", pub)


def test_grades_follow_the_policy_action() -> None:
    assert grade_for(None) is Grade.NONE
    assert grade_for(Action.ALERT) is Grade.WARN
    assert grade_for(Action.REQUIRE_APPROVAL) is Grade.HOLD
    assert grade_for(Action.QUARANTINE) is Grade.QUARANTINE
    assert grade_for(Action.BLOCK) is Grade.BLOCK


def test_block_in_outgoing_folder_seals_and_records(tmp_path: Path) -> None:
    f = tmp_path / "out.docx"
    f.write_text("机密★10年\n" + SECRET_BODY)
    rec = Recorder()
    acts = Actions(rec, make_vault(tmp_path), HoldArea(tmp_path / "held"), Notifier(command=""))
    j = judged(f, "mail_outbox")
    assert j.action is Action.BLOCK and j.violations[0].rule_id == "CN-SEC-005"
    out = acts.apply(j)
    assert out.grade is Grade.BLOCK and out.result == "ok" and out.item
    assert not f.exists()
    assert rec.types() == ["violation", "violation", "action"]
    rules = {p["rule"] for t, p in rec.events if t == "violation"}
    assert rules == {"CN-SEC-005", "CN-SEC-001"}
    for _t, p in rec.events:
        assert p["policy"] == "cn-secrecy@2026.1" and p["sha256"] == j.sha256
    action = rec.events[-1][1]
    assert action["action"] == "block" and action["result"] == "ok" and action["item"] == out.item
    assert SECRET_BODY not in json.dumps(rec.events, ensure_ascii=False)  # never document text
    sealed = b"".join(p.read_bytes() for p in (tmp_path / "vault").rglob("*") if p.is_file())
    assert SECRET_BODY.encode() not in sealed  # encrypted at rest
    # Only the officer's private key gives the exact bytes back.
    back = Vault(tmp_path / "vault").restore(out.item, load_private(tmp_path / "officer.key"), tmp_path / "back.docx")
    assert Path(back).read_bytes() == ("机密★10年\n" + SECRET_BODY).encode()
    assert hashlib.sha256(Path(back).read_bytes()).hexdigest() == j.sha256


def test_vault_failure_is_reported_and_the_file_stays(tmp_path: Path) -> None:
    f = tmp_path / "out.docx"
    f.write_text("机密★10年")

    class FullVault:
        def seal(self, src: Path, *, reason: dict[str, Any]) -> Any:
            raise OSError(28, "No space left on device")

    rec = Recorder()
    out = Actions(rec, FullVault(), HoldArea(tmp_path / "held"), Notifier(command="")).apply(judged(f, "im_transfer"))
    assert out.result == "failed" and "No space" in out.detail
    assert f.exists()
    assert rec.events[-1][0] == "action" and rec.events[-1][1]["result"] == "failed"
    out = Actions(rec, None, HoldArea(tmp_path / "held"), Notifier(command="")).apply(judged(f, "im_transfer"))
    assert out.result == "failed" and f.exists()


def test_alert_warns_with_a_log_line_without_a_session_bus(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    f = tmp_path / "doc.txt"
    f.write_text("x")
    policy = load_policy(["cn-secrecy"])
    # A classified host, a world-readable secret file: CN-SEC-013 (alert, high) only.
    rec_ = {"path": str(f), "sha256": "0" * 64, "mode": "0644",
            "findings": [{"level": "secret", "kind": "marking", "text": "机密★10年", "period": {"years": 10}}]}
    vs = [v for ev in events_for_scan_record(rec_, host_role="classified", host_level="top_secret")
          for v in policy.evaluate(ev)]
    assert vs and all(v.action is Action.ALERT for v in vs)
    assert [v.rule_id for v in vs] == ["CN-SEC-013"]
    j = Judged(f, "local_disk", "", "0" * 64, "secret", ("机密★10年",), tuple(vs), Action.ALERT, "v1")
    rec = Recorder()
    with caplog.at_level(logging.WARNING, logger="baomi.agent.actions"):
        out = Actions(rec, None, HoldArea(tmp_path / "held"), Notifier()).apply(j)
    assert out.grade is Grade.WARN and out.detail == "log"
    assert any(v.rule_id in r.getMessage() for r in caplog.records for v in vs)
    assert f.exists() and rec.events[-1][1]["notified"] == "log"


def test_desktop_notification_through_notify_send(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real executable standing in for notify-send: it records its arguments.
    log = tmp_path / "notified.txt"
    script = tmp_path / "notify-send"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {log}\n")
    script.chmod(0o755)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
    assert Notifier(str(script))("标题", "正文", "critical") == "desktop"
    args = log.read_text().splitlines()
    assert "--urgency=critical" in args and "标题" in args


def test_hold_and_override_round_trip(tmp_path: Path) -> None:
    f = tmp_path / "Outbox" / "plan.docx"
    f.parent.mkdir()
    f.write_bytes(b"\x00marked bytes\xff")
    os.chmod(f, 0o640)
    policy_j = judged(f, "mail_outbox")
    j = Judged(f, "mail_outbox", "mail", policy_j.sha256, "secret", (), policy_j.violations,
               Action.REQUIRE_APPROVAL, "v1")
    rec = Recorder()
    hold = HoldArea(tmp_path / "held")
    out = Actions(rec, None, hold, Notifier(command="")).apply(j)
    assert out.grade is Grade.HOLD and out.result == "ok" and not f.exists()
    assert [m["id"] for m in hold.list()] == [out.item]
    assert stat.S_IMODE((tmp_path / "held").stat().st_mode) == 0o700
    dest = record_override(rec, hold, out.item, "approved by dept head, ticket 42", "alice")  # type: ignore[arg-type]
    assert dest == f and f.read_bytes() == b"\x00marked bytes\xff" and stat.S_IMODE(f.stat().st_mode) == 0o640
    ov = rec.events[-1][1]
    assert ov["action"] == "override" and ov["reason"].startswith("approved") and ov["user"] == "alice"
    assert ov["sha256"] == j.sha256 and hold.list() == []
    with pytest.raises(KeyError):
        hold.get("h-../../etc")


def test_low_severity_alert_is_audited_without_interrupting_the_user(tmp_path: Path) -> None:
    from policies.model import Severity

    assert grade_for(Action.ALERT, Severity.LOW) is Grade.AUDIT
    assert grade_for(Action.ALERT, Severity.HIGH) is Grade.WARN
    policy = load_policy(["cn-secrecy"])
    f = tmp_path / "n.txt"
    f.write_text("x")
    # A non-standard marking on a classified host approved for it: CN-SEC-020 (low) only.
    rec_ = {"path": str(f), "sha256": "1" * 64, "findings": [
        {"level": "secret", "kind": "marking", "text": "机密 10年", "nonstandard": True, "period": {"years": 10}}]}
    vs = [v for ev in events_for_scan_record(rec_, host_role="classified", host_level="secret")
          for v in policy.evaluate(ev)]
    assert [v.rule_id for v in vs] == ["CN-SEC-020"]
    called: list[str] = []
    rec = Recorder()
    j = Judged(f, "local_disk", "", "1" * 64, "secret", ("机密 10年",), tuple(vs), Action.ALERT, "v1")
    out = Actions(rec, None, HoldArea(tmp_path / "held"), lambda *a: called.append("n") or "log").apply(j)
    assert out.grade is Grade.AUDIT and called == []
    assert rec.types() == ["violation", "action"] and rec.events[-1][1]["action"] == "audit"


def test_overlong_path_is_clipped_not_refused() -> None:
    from agents.daemon import _clip

    deep = "/home/u/" + "d" * 3000 + "/secret.docx"
    out = _clip({"path": deep, "rules": ["CN-SEC-001"], "n": 1})
    check_payload(out)
    assert out["path"].endswith("/secret.docx") and len(out["path"]) == 1000 and out["n"] == 1


def test_root_service_notifies_each_logged_in_session_as_its_user(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    if os.geteuid() != 0:
        pytest.skip("notifying other users' sessions is what the root service does; not root here")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    uid = 65534  # nobody
    run = tmp_path / "run"
    (run / str(uid)).mkdir(parents=True)
    bus = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bus.bind(str(run / str(uid) / "bus"))
    os.chown(run / str(uid) / "bus", uid, -1)
    (run / "1234").mkdir()  # a runtime dir without a bus: no session
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="baomi-notify-"))  # pytest's tmp is 0700 root: nobody cannot enter
    shared.chmod(0o755)
    out = shared / "out"
    out.mkdir()
    out.chmod(0o777)
    script = shared / "notify-send"
    script.write_text(f"#!/bin/sh\necho \"$(id -u) $DBUS_SESSION_BUS_ADDRESS $*\" > {out}/got\n")
    script.chmod(0o755)
    try:
        n = Notifier(str(script), runtime_root=run)
        assert n.targets() == [(uid, f"unix:path={run / str(uid) / 'bus'}")]
        assert n("标题", "正文") == "desktop"
        got = (out / "got").read_text()
        assert got.startswith(f"{uid} unix:path={run}/{uid}/bus") and "标题" in got
    finally:
        bus.close()
        import shutil

        shutil.rmtree(shared, ignore_errors=True)
