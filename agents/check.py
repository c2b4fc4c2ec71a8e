"""`baomi check`: the periodic compliance check of a host as a whole (保密检查).

    baomi check --config /etc/baomi/agent.yaml          # the agent's timer (baomi-check.timer)
    baomi check --root /home --host-role classified:secret --send STATE

One run: a full scan of the configured roots through the incremental cache; for every classified
file, who can read it (owner, group, others, POSIX ACL entries) so the policy can judge it against
`authorized_readers`; the host's posture (wireless and Bluetooth interfaces, a default route:
违规外联 on a classified host), read locally from /sys and /proc, never probed over the network;
every file and the posture evaluated by the policy; and, with an enrolled state, the findings,
violations and one signed `scan_summary` event (roots, files, classified counts by level,
violations, errors, duration, policy version) in the audit log.

Exit codes: 0 compliant and complete; 1 at least one policy violation (a classified file where the
host may not hold it, readable beyond its readers, a posture violation…); 2 usage or fatal error;
3 some files could not be fully scanned and no violation was found. Unlike `baomi scan`, a
classified file on a classified host approved for its level is not by itself a finding.
"""
from __future__ import annotations

import grp
import json
import os
import pwd
import struct
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from scanner.i18n import lang_option, tr

EXIT_OK, EXIT_VIOLATION, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


# -- who can read a file -----------------------------------------------------------------------
_ACL_USER, _ACL_GROUP, _ACL_MASK = 0x02, 0x08, 0x10
_ACL_READ = 0x04


def acl_readers(path: str) -> tuple[str, ...]:
    """Named users and groups an access ACL lets read `path` (system.posix_acl_access)."""
    try:
        raw = os.getxattr(path, "system.posix_acl_access", follow_symlinks=False)
    except OSError:
        return ()
    if len(raw) < 4 or (len(raw) - 4) % 8:
        return ()
    entries = [struct.unpack_from("<HHI", raw, off) for off in range(4, len(raw), 8)]
    mask = next((perm for tag, perm, _id in entries if tag == _ACL_MASK), 0o7)
    out = []
    for tag, perm, ident in entries:
        if not perm & mask & _ACL_READ:
            continue
        if tag == _ACL_USER:
            out.append(f"user:{_user(ident)}")
        elif tag == _ACL_GROUP:
            out.append(f"group:{_group(ident)}")
    return tuple(out)


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def add_permissions(rec: dict[str, Any]) -> None:
    """Mode, owner, group and ACL readers of a scanned file, for the policy's permission rules."""
    try:
        st = os.stat(rec["path"], follow_symlinks=False)
    except OSError:
        return
    rec["mode"] = f"{st.st_mode & 0o7777:04o}"
    rec["owner"], rec["group"] = _user(st.st_uid), _group(st.st_gid)
    acl = acl_readers(rec["path"])
    if acl:
        rec["acl_readers"] = list(acl)


# -- the check ---------------------------------------------------------------------------------
@dataclass
class CheckResult:
    roots: list[str]
    files: int = 0
    classified: dict[str, int] = field(default_factory=dict)
    violations: list[dict[str, Any]] = field(default_factory=list)
    incomplete: list[dict[str, Any]] = field(default_factory=list)
    posture: dict[str, Any] = field(default_factory=dict)
    copies: list[dict[str, Any]] = field(default_factory=list)
    traces: dict[str, Any] = field(default_factory=dict)
    #: Traces that need an officer: documents opened from removable media or gone, web use on a
    #: classified host (违规上网), USB storage on a classified host.
    trace_findings: list[dict[str, Any]] = field(default_factory=list)
    classified_paths: set[str] = field(default_factory=set)
    destroyed: list[dict[str, Any]] = field(default_factory=list)
    policy_version: str = ""
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        if self.violations or self.trace_findings:
            return EXIT_VIOLATION
        return EXIT_INCOMPLETE if self.incomplete else EXIT_OK


def run_check(roots: Iterable[str], *, policy: Any, policy_version: str, host_role: str, host_level: str | None,
              sys_root: str = "/", cache_path: str | None = None, use_cache: bool = True,
              sender: Any = None, fingerprints: str | Path | None = None) -> CheckResult:
    from agents.scan_cli import cache_warning
    from policies.engine import violations_for_scan_record
    from policies.posture import posture_event, read_posture
    from scanner.config import PoolOptions, ScanConfig
    from scanner.runner import open_cache, run_scan
    from scanner.walk import WalkOptions

    started = time.monotonic()
    roots = [str(r) for r in roots]
    res = CheckResult(roots=roots, policy_version=policy_version)
    config = ScanConfig()
    cache = open_cache(cache_path, config, warn=cache_warning) if use_cache else None
    records: list[dict[str, Any]] = []
    try:
        for rec in run_scan(roots, config, WalkOptions(), PoolOptions(), cache=cache, clean_records=True):
            records.append(rec)
            res.files += 1
            lv = rec.get("level")
            if lv:
                res.classified[lv] = res.classified.get(lv, 0) + 1
                res.classified_paths.add(os.path.abspath(rec["path"]))
                add_permissions(rec)
            if rec.get("errors"):
                res.incomplete.append({"path": rec["path"], "errors": [e.get("error") for e in rec["errors"]]})
            vio = violations_for_scan_record(policy, rec, host_role=host_role, host_level=host_level,
                                             location="local_disk", operation="observe")
            rec["violations"] = vio
            res.violations.extend({**v, "path": rec["path"]} for v in vio)
            if sender is not None:
                sender.add(rec)
    finally:
        if cache is not None:
            cache.close()
    if fingerprints is not None:
        _track_copies(records, roots, fingerprints, res, policy, host_role, host_level, sender)
    host = read_posture(host_role, host_level, root=sys_root)
    res.posture = {"host": host.id, "wireless": list(host.wireless), "bluetooth": list(host.bluetooth),
                   "default_route": host.default_route}
    for v in policy.evaluate(posture_event(host), policy.context()):
        d = v.to_dict()
        res.violations.append({**d, "path": None})
        if sender is not None:
            sender.client.submit("violation", {"rule": d["rule"], "pack": d["pack"], "severity": d["severity"],
                                               "action": d["action"], "title_zh": d["title_zh"][:256],
                                               "title_en": d["title_en"][:256], "posture": res.posture,
                                               "rationale_zh": str(d.get("rationale_zh", ""))[:500],
                                               "rationale_en": str(d.get("rationale_en", ""))[:500]})
    res.seconds = time.monotonic() - started
    return res


def _track_copies(records: list[dict[str, Any]], roots: list[str], directory: str | Path, res: CheckResult,
                  policy: Any, host_role: str, host_level: str | None, sender: Any) -> None:
    """Index the classified files seen, then look for copies of them (exact, near, stripped of
    their marking) among every file, and for indexed files that vanished."""
    from agents.fingerprints import FingerprintIndex
    from policies.engine import violations_for_scan_record
    from scanner.engine import Scanner

    scanner = Scanner()
    index = FingerprintIndex(directory)
    texts: dict[str, str] = {}

    def text(rec: dict[str, Any]) -> str:
        p = rec["path"]
        if p not in texts:
            try:
                with open(p, "rb") as fh:
                    data = fh.read(64 * 1024 * 1024)
            except OSError:
                data = b""
            texts[p] = scanner.text_of(data, os.path.basename(p)) if data else ""
        return texts[p]

    def marks(rec: dict[str, Any]) -> list[str]:
        return [f["text"] for f in rec.get("findings") or () if f.get("kind") in ("marking", "mention")]

    try:
        for rec in records:
            if rec.get("level"):
                index.add(os.path.abspath(rec["path"]), rec.get("sha256") or "", rec["level"], text(rec), marks(rec))
        index.commit()
        # Nothing classified has ever been seen here: no file can be a copy of one, and reading
        # every file's text again would double the check for nothing.
        for rec in records if index.entries else ():
            if rec.get("errors") and not rec.get("findings"):
                continue
            for m in index.matches(os.path.abspath(rec["path"]), rec.get("sha256"), rec.get("level"), text(rec),
                                   marks(rec)):
                item = {"kind": m.kind, "path": rec["path"], "original": m.original, "original_level": m.original_level,
                        "level": m.level, "similarity": m.similarity, "sha256": rec.get("sha256")}
                res.copies.append(item)
                # judged as a copy of the original's level: a stripped copy is still classified content
                judged = {**rec, "findings": [], "level": m.original_level, "known_copies": 2}
                vio = violations_for_scan_record(policy, judged, host_role=host_role, host_level=host_level,
                                                 location="local_disk", operation="copy")
                res.violations.extend({**v, "path": rec["path"], "copy_of": m.original} for v in vio)
                if sender is not None:
                    sender.client.submit("copy", item)
        for e in index.vanished(roots):
            item = {"path": e.path, "level": e.level, "sha256": e.sha256, "marking": e.marking}
            res.destroyed.append(item)
            judged = {"path": e.path, "sha256": e.sha256, "level": e.level, "findings": [], "errors": []}
            vio = violations_for_scan_record(policy, judged, host_role=host_role, host_level=host_level,
                                             location="local_disk", operation="delete")
            res.violations.extend({**v, "path": e.path} for v in vio)
            if sender is not None:
                sender.client.submit("destroy", item)
    finally:
        index.close()


def check_traces(res: CheckResult, homes: list[Path], kernel_logs: list[Path], journal: Path | None,
                 classified_host: bool, known_classified: set[str], sender: Any) -> None:
    """Read the usage traces and keep those an officer must look at."""
    from agents.traces import read_traces

    t = read_traces(homes, kernel_logs, journal)
    res.traces = t.to_dict()
    for r in t.recent:
        if r.on_removable or not r.exists:
            res.trace_findings.append({"trace": "recent_document", "path": r.path, "opened": r.opened,
                                       "on_removable": r.on_removable, "exists": r.exists, "source": r.source,
                                       "classified": r.path in known_classified})
    if classified_host:
        for b in t.browsing:
            res.trace_findings.append({"trace": "web_use", "browser": b.browser, "host": b.host,
                                       "visits": b.visits, "last_visit": b.last_visit})
        for d in t.usb:
            res.trace_findings.append({"trace": "usb_storage", "vendor": d.vendor, "model": d.model,
                                       "serial": d.serial, "first_seen": d.first_seen, "last_seen": d.last_seen})
    if sender is not None:
        for d in t.usb:
            sender.client.submit("device", {"source": "kernel log", "event": "seen", **{
                k: v for k, v in vars(d).items() if v not in (None, "")}})
        for f in res.trace_findings[:200]:
            sender.client.submit("trace", {k: (v[:512] if isinstance(v, str) else v) for k, v in f.items()})


# -- the command -------------------------------------------------------------------------------
@click.command("check")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="agent config (scan_roots, host, state, policy) / 终端代理配置文件")
@click.option("--root", "roots", multiple=True, type=click.Path(exists=False),
              help="tree to check (repeatable; default: the config's scan_roots) / 检查目录")
@click.option("--host-role", default=None, help="unclassified | classified:LEVEL (default: the config's host)")
@click.option("--policy", "policies", multiple=True, help="policy pack or signed bundle (default: cn-secrecy)")
@click.option("--send", "send_state", type=click.Path(file_okay=False), default=None,
              help="enrolled audit state directory (default: the config's state) / 审计状态目录")
@click.option("--no-send", is_flag=True, help="do not record in the audit log even with a config")
@click.option("--sys-root", default="/", type=click.Path(exists=True, file_okay=False),
              help="read /sys and /proc under this root (tests, mounted images)")
@click.option("--no-cache", is_flag=True, help="scan every file again")
@click.option("--fingerprints", "fp_dir", type=click.Path(file_okay=False), default=None,
              help="encrypted fingerprint index of classified files (default: STATE/fingerprints with a config): "
                   "copies, stripped copies, destruction / 指纹库")
@click.option("--home", "homes", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="home directory whose traces to read (recent documents, browser histories); repeatable")
@click.option("--kernel-log", "kernel_logs", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="dmesg/kern.log text for USB storage history; repeatable")
@click.option("--journal", "journal", type=click.Path(exists=True, dir_okay=False), default=None,
              help="journalctl -k -o json output for USB storage history")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@lang_option
def check_cmd(config_path: str | None, roots: tuple[str, ...], host_role: str | None, policies: tuple[str, ...],
              send_state: str | None, no_send: bool, sys_root: str, no_cache: bool, fp_dir: str | None,
              homes: tuple[str, ...], kernel_logs: tuple[str, ...], journal: str | None, fmt: str) -> None:
    """定期保密检查：扫描、权限、主机状态、策略判定与审计记录 / the periodic compliance check of this host."""
    from policies.model import parse_host

    cfg = None
    if config_path:
        from agents.config import ConfigError, load_config

        try:
            cfg = load_config(config_path)
        except ConfigError as exc:
            _fail(str(exc))
    role_text = host_role or (f"{cfg.host.role}:{cfg.host.level}" if cfg and cfg.host.level else
                              (cfg.host.role if cfg else None))
    if role_text is None:
        _fail(tr("需要 --host-role 或 --config", "need --host-role or --config"))
    try:
        role, level = parse_host(role_text)  # type: ignore[arg-type]
    except ValueError as exc:
        _fail(str(exc))
    tree = list(roots) or [str(p) for p in (cfg.scan_roots if cfg else ())]
    if not tree:
        _fail(tr("没有要检查的目录：--root 或配置中的 scan_roots", "nothing to check: --root or scan_roots in the config"))
    missing = [r for r in tree if not os.path.lexists(r)]
    if missing:
        _fail(tr(f"路径不存在：{', '.join(missing)}", f"no such file or directory: {', '.join(missing)}"))
    policy, version = _policy(cfg, policies)
    state = None if no_send else (send_state or (str(cfg.state) if cfg else None))
    sender = None
    if state:
        if not (Path(state) / "state.json").is_file():
            _fail(tr(f"{state} 不是已登记的审计状态目录", f"{state} holds no enrolled audit identity"))
        from reports.scanlog import ScanSender

        sender = ScanSender(state)
    fp = fp_dir or (str(cfg.state / "fingerprints") if cfg else None)
    res = run_check(tree, policy=policy, policy_version=version, host_role=role, host_level=level,
                    sys_root=sys_root, use_cache=not no_cache, sender=sender, fingerprints=fp)
    if homes or kernel_logs or journal:
        known = res.classified_paths | {d["path"] for d in res.destroyed}
        check_traces(res, [Path(h) for h in homes], [Path(k) for k in kernel_logs], Path(journal) if journal else None,
                     role == "classified", known, sender)
    if sender is not None:
        acked, pending = sender.finish(tree, res.seconds, {"kind": "check", "policy_version": version,
                                                           "host_role": role, "host_level": level,
                                                           "posture": res.posture})
        click.echo(tr(f"审计日志：已确认 {acked} 条事件，待发送 {pending} 条",
                      f"audit log: {acked} events acknowledged, {pending} pending"), err=True)
    _print(res, fmt)
    sys.exit(res.exit_code)


def _policy(cfg: Any, names: tuple[str, ...]) -> tuple[Any, str]:
    from policies.engine import load_policy

    try:
        if cfg is not None and not names:
            from agents.policy import PolicyHolder

            holder = PolicyHolder(cfg)  # the agent's current policy: configured, or its last good bundle
            return holder.policy, holder.version
        ps = load_policy(list(names) or ["cn-secrecy"])
        return ps, ",".join(f"{n}@{v}" for n, v, _ in ps.composed.packs)
    except Exception as exc:
        _fail(tr(f"策略无法加载：{exc}", f"policy could not be loaded: {exc}"))
        raise


def _print(res: CheckResult, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps({"roots": res.roots, "files": res.files, "classified": res.classified,
                               "violations": res.violations, "incomplete": res.incomplete, "posture": res.posture,
                               "copies": res.copies, "destroyed": res.destroyed, "traces": res.traces,
                               "trace_findings": res.trace_findings,
                               "policy_version": res.policy_version, "seconds": round(res.seconds, 3),
                               "exit": res.exit_code}, ensure_ascii=False, indent=1))
        return
    from scanner.model import Level

    p = res.posture
    click.echo(tr(f"检查范围：{', '.join(res.roots)}；策略 {res.policy_version}",
                  f"checked: {', '.join(res.roots)}; policy {res.policy_version}"))
    levels = "，".join(f"{Level(k).zh} {v}" for k, v in sorted(res.classified.items())) or tr("无", "none")
    click.echo(tr(f"文件 {res.files} 个；含密级标志：{levels}；未能完整扫描 {len(res.incomplete)} 个",
                  f"{res.files} files; classified: {levels}; not fully scanned: {len(res.incomplete)}"))
    click.echo(tr(f"主机状态：无线网卡 {','.join(p['wireless']) or '无'}，蓝牙 {','.join(p['bluetooth']) or '无'}，"
                  f"默认路由 {'有' if p['default_route'] else '无'}",
                  f"posture: wireless {','.join(p['wireless']) or 'none'}, bluetooth "
                  f"{','.join(p['bluetooth']) or 'none'}, default route {'yes' if p['default_route'] else 'no'}"))
    for c in res.copies:
        click.echo(tr(f"⚠ {c['path']} 是 {c['original']}（{c['original_level']}）的"
                      f"{_COPY_ZH.get(c['kind'], c['kind'])}，相似度 {c['similarity']:.2f}",
                      f"⚠ {c['path']} is a {c['kind'].replace('_', ' ')} of {c['original']} ({c['original_level']}), "
                      f"similarity {c['similarity']:.2f}"))
    for d in res.destroyed:
        click.echo(tr(f"⚠ 涉密文件已不存在：{d['path']}（{d['level']}）", f"⚠ classified file gone: {d['path']} ({d['level']})"))
    for f in res.trace_findings:
        click.echo("⚠ " + tr("痕迹", "trace") + ": " + json.dumps(f, ensure_ascii=False))
    for v in res.violations:
        title = v.get("title_en") if tr("zh", "en") == "en" else v.get("title_zh")
        click.echo(f"✗ [{v['rule']}] {v['severity']} {title}" + (f" — {v['path']}" if v.get("path") else ""))
    if not res.violations and not res.trace_findings:
        click.echo(tr("未发现违规。", "no violation found."))
    click.echo(tr(f"用时 {res.seconds:.1f} 秒", f"{res.seconds:.1f} s"))


_COPY_ZH = {"exact_copy": "完全相同的副本", "near_copy": "近似副本", "stripped_copy": "去除或降低密级标志的副本"}


def _fail(msg: str) -> None:
    click.echo(tr(f"错误：{msg}", f"error: {msg}"), err=True)
    sys.exit(EXIT_USAGE)
