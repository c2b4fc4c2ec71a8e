"""Graded actions on a judged file, as officers expect them: audit → warn → hold (block with an
override) → block.

The policy's strongest action picks the grade (`grade_for`):

    (no violation)     nothing
    alert, low/info    audit only (recorded, the user is not interrupted)
    alert              audit + warn the user (desktop notification where a session bus exists,
                       else a log line)
    require_approval   audit + warn + *hold*: the file is moved out of the outgoing folder into the
                       agent's hold area; `baomi agent override ID --reason ...` puts it back and
                       records the user's justification
    quarantine, block  audit + warn + seal the file into the officer's vault (`agents.vault`): the
                       workstation cannot read it back; on a medium, the copy on the medium is sealed

Every step is an audit event (`violation`, `action`) naming the rule, the policy version and the
file's SHA-256, never document content. A failure (vault full, file vanished) is itself an
`action` event with `result: failed`; nothing here raises into the daemon.
"""
from __future__ import annotations

import enum
import json
import logging
import os
import shutil
import stat
import subprocess
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from policies.model import Action, Severity, Violation
from scanner.i18n import tr

log = logging.getLogger("baomi.agent.actions")

Submit = Callable[[str, Mapping[str, Any]], Any]


class Grade(str, enum.Enum):
    NONE = "none"
    AUDIT = "audit"
    WARN = "warn"
    HOLD = "hold"          # block with override
    QUARANTINE = "quarantine"
    BLOCK = "block"


def grade_for(action: Action | None, severity: Severity | None = None) -> Grade:
    """The graded step for the policy's strongest action; an `alert` of low or info severity
    (a non-standard marking, say) is only audited, not put in front of the user."""
    if action is None:
        return Grade.NONE
    if action is Action.ALERT and severity is not None and severity.rank <= Severity.LOW.rank:
        return Grade.AUDIT
    return {Action.ALERT: Grade.WARN, Action.REQUIRE_APPROVAL: Grade.HOLD,
            Action.QUARANTINE: Grade.QUARANTINE, Action.BLOCK: Grade.BLOCK}[action]


@dataclass(frozen=True)
class Judged:
    """One scanned file with its violations: what the actions work on."""

    path: Path
    #: The policy's location kind and the configured channel (or "medium").
    location: str
    channel: str
    sha256: str | None
    level: str | None
    #: Marking texts of the file (the marking itself is allowed in the log, nothing else).
    markings: tuple[str, ...]
    violations: tuple[Violation, ...]
    action: Action | None
    policy_version: str
    size: int | None = None
    medium_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    grade: Grade
    #: ok, failed, skipped
    result: str
    #: Vault item id or hold id.
    item: str | None = None
    detail: str = ""


class Notifier:
    """Desktop notification through `notify-send` where a session bus is reachable, else a log line.

    The agent usually runs as a system service with no session bus of its own: it then notifies
    every logged-in user whose session bus socket exists (`/run/user/UID/bus`), running
    `notify-send` as that user."""

    def __init__(self, command: str | None = None, runtime_root: Path = Path("/run/user")):
        self.command = command if command is not None else shutil.which("notify-send")
        self.runtime_root = runtime_root

    def targets(self) -> list[tuple[int | None, str]]:
        """(uid to run as, or None for this process; bus address) of the reachable session buses."""
        own = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
        if own:
            return [(None, own)]
        if os.geteuid() != 0:
            return []
        out: list[tuple[int | None, str]] = []
        try:
            entries = sorted(self.runtime_root.iterdir())
        except OSError:
            return []
        for d in entries:
            bus = d / "bus"
            try:
                st = bus.stat()
            except OSError:
                continue
            if stat.S_ISSOCK(st.st_mode) and d.name.isdigit() and st.st_uid == int(d.name):
                out.append((int(d.name), f"unix:path={bus}"))
        return out

    def available(self) -> bool:
        return bool(self.command) and bool(self.targets())

    def __call__(self, title: str, message: str, urgency: str = "normal") -> str:
        """Notify; returns how: `desktop` (at least one session reached) or `log`."""
        reached = False
        if self.command:
            for uid, bus in self.targets():
                env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": bus}
                try:
                    subprocess.run([str(self.command), "--app-name=baomi", f"--urgency={urgency}", title, message],
                                   check=True, timeout=5, capture_output=True, env=env,
                                   user=uid, group=None if uid is None else _gid_of(uid))
                    reached = True
                except (OSError, subprocess.SubprocessError, KeyError) as exc:
                    log.warning("desktop notification failed (%s); logging instead", exc)
        log.warning("%s: %s", title, message)  # journald keeps the warning in every case
        return "desktop" if reached else "log"


def _gid_of(uid: int) -> int:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return uid


class HoldArea:
    """Files held back from an outgoing folder until the user overrides with a justification.

    Held files are moved (same file system: rename; else copy + fsync + unlink) into `root/ID.bin`
    with `root/ID.json` describing where they came from; the directory is 0700 (the agent's)."""

    def __init__(self, root: Path):
        self.root = root

    def hold(self, path: Path, info: Mapping[str, Any]) -> str:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        hid = "h-" + uuid.uuid4().hex[:16]
        dest = self.root / f"{hid}.bin"
        st = os.stat(path, follow_symlinks=False)
        try:
            os.rename(path, dest)
        except OSError:
            shutil.copy2(path, dest, follow_symlinks=False)
            with open(dest, "rb+") as fh:
                os.fsync(fh.fileno())
            os.unlink(path)
        meta = {"id": hid, "original_path": str(path), "mode": st.st_mode & 0o7777,
                "held_at": datetime.now(UTC).isoformat(), **info}
        tmp = self.root / f"{hid}.json.tmp"
        tmp.write_text(json.dumps(meta, ensure_ascii=False, indent=1))
        os.replace(tmp, self.root / f"{hid}.json")
        return hid

    def get(self, hid: str) -> dict[str, Any]:
        if not hid.startswith("h-") or "/" in hid:
            raise KeyError(hid)
        try:
            return dict(json.loads((self.root / f"{hid}.json").read_text()))
        except (OSError, ValueError):
            raise KeyError(hid) from None

    def list(self) -> list[dict[str, Any]]:
        out = []
        for p in sorted(self.root.glob("h-*.json")):
            try:
                out.append(json.loads(p.read_text()))
            except (OSError, ValueError):
                continue
        return out

    def release(self, hid: str) -> Path:
        """Put a held file back where it was; returns that path."""
        meta = self.get(hid)
        dest = Path(meta["original_path"])
        if dest.exists():
            raise FileExistsError(str(dest))
        src = self.root / f"{hid}.bin"
        try:
            os.rename(src, dest)
        except OSError:
            shutil.copy2(src, dest)
            os.unlink(src)
        os.chmod(dest, int(meta.get("mode", 0o600)))
        (self.root / f"{hid}.json").unlink()
        return dest


class Actions:
    """Carry out the graded action for a judged file and record it."""

    def __init__(self, submit: Submit, vault: Any, hold: HoldArea, notify: Callable[[str, str, str], str]):
        #: `submit(type, payload)`: the audit client's submit (durable spool).
        self.submit = submit
        #: An `agents.vault.Vault` (or None when not configured/available: sealing then fails).
        self.vault = vault
        self.hold_area = hold
        self.notify = notify

    def base(self, j: Judged) -> dict[str, Any]:
        p: dict[str, Any] = {"path": str(j.path), "sha256": j.sha256, "level": j.level,
                             "location": j.location, "channel": j.channel, "policy": j.policy_version}
        if j.markings:
            p["marking"] = j.markings[0][:200]
        if j.size is not None:
            p["size"] = j.size
        if j.medium_id:
            p["medium_id"] = j.medium_id
        return p

    def record_violations(self, j: Judged) -> None:
        for v in j.violations:
            self.submit("violation", {**self.base(j), "rule": v.rule_id, "pack": v.pack,
                                      "severity": v.severity.value, "action": v.action.value,
                                      "title_en": v.title_en, "title_zh": v.title_zh,
                                      # why, as the officer's console shows it (bounded)
                                      "rationale_zh": v.rationale_zh[:500], "rationale_en": v.rationale_en[:500]})

    def apply(self, j: Judged) -> Outcome:
        top_severity = max((v.severity for v in j.violations), key=lambda x: x.rank, default=None)
        grade = grade_for(j.action, top_severity)
        if grade is Grade.NONE:
            return Outcome(grade, "skipped")
        self.record_violations(j)
        top = j.violations[0]
        rules = [v.rule_id for v in j.violations]
        if grade is Grade.AUDIT:
            self._action(j, grade, rules, "ok")
            return Outcome(grade, "ok")
        if grade is Grade.WARN:
            how = self._warn(j, top)
            self._action(j, grade, rules, "ok", notified=how)
            return Outcome(grade, "ok", detail=how)
        if grade is Grade.HOLD:
            try:
                hid = self.hold_area.hold(j.path, {"rule": top.rule_id, "sha256": j.sha256, "policy": j.policy_version})
            except OSError as exc:
                self._action(j, grade, rules, "failed", error=str(exc)[:300])
                return Outcome(grade, "failed", detail=str(exc))
            how = self._warn(j, top, hold=hid)
            self._action(j, grade, rules, "ok", item=hid, notified=how)
            return Outcome(grade, "ok", hid)
        return self._seal(j, grade, top, rules)

    def _seal(self, j: Judged, grade: Grade, top: Violation, rules: list[str]) -> Outcome:
        if self.vault is None:
            self._action(j, grade, rules, "failed", error="no vault available")
            return Outcome(grade, "failed", detail="no vault available")
        try:
            item = self.vault.seal(j.path, reason={"rule": top.rule_id, "rules": rules, "policy": j.policy_version,
                                                   "sha256": j.sha256, "location": j.location})
        except Exception as exc:  # noqa: BLE001 - VaultError, a vanished file, a full disk: reported
            log.error("sealing %s failed: %s", j.path, exc)
            self._action(j, grade, rules, "failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return Outcome(grade, "failed", detail=str(exc))
        extra: dict[str, Any] = {}
        if j.sha256 and item.sha256 != j.sha256:
            extra["sealed_sha256"] = item.sha256  # the file changed between scan and seal
        how = self._warn(j, top, sealed=item.id)
        self._action(j, grade, rules, "ok", item=item.id, notified=how, **extra)
        return Outcome(grade, "ok", item.id)

    def _warn(self, j: Judged, v: Violation, hold: str | None = None, sealed: str | None = None) -> str:
        title = tr("保密提醒", "Secrecy warning")
        msg = v.rationale_en if tr("zh", "en") == "en" else v.rationale_zh
        if hold:
            msg += tr(f"\n文件已暂扣（{hold}）。如确需外发，请执行 baomi agent override {hold} --reason 说明理由。",
                      f"\nThe file is held ({hold}). To send it anyway: baomi agent override {hold} --reason WHY")
        if sealed:
            msg += tr(f"\n文件已隔离（{sealed}），请联系保密管理员。", f"\nThe file was quarantined ({sealed}); contact the security officer.")
        return self.notify(title, msg, "critical" if sealed else "normal")

    def _action(self, j: Judged, grade: Grade, rules: Sequence[str], result: str, **extra: Any) -> None:
        self.submit("action", {**self.base(j), "action": grade.value, "rule": rules[0], "rules": list(rules),
                               "result": result, **{k: v for k, v in extra.items() if v is not None}})


def record_override(submit: Submit, hold: HoldArea, hid: str, reason: str, user: str) -> Path:
    """Release a held file on the user's justification and record it (`action` event, `override`)."""
    meta = hold.get(hid)
    dest = hold.release(hid)
    submit("action", {"action": "override", "hold": hid, "path": str(dest), "rule": meta.get("rule"),
                      "sha256": meta.get("sha256"), "policy": meta.get("policy"), "reason": reason[:500],
                      "user": user, "result": "ok"})
    return dest
