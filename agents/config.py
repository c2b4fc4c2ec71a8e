"""The endpoint agent's configuration: one YAML file → frozen dataclasses, errors with line numbers.

    cfg = load_config("/etc/baomi/agent.yaml")     # raises ConfigError([Issue, ...])
    cfg.collector.url, cfg.host.role, cfg.watch[0].location, cfg.limits.max_concurrent_scans

The YAML is read through `policies.yamlload` (safe schema, duplicate keys refused, every value
located), so a wrong key or value is reported as `FILE:LINE:COL: field: message`. `EXAMPLE` is
the documented example printed by `baomi agent config --example`; it is itself checked by a test.
The periodic check (`baomi check`) reads the same file through `load_config`.
"""
from __future__ import annotations

import glob
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policies.model import Issue, LocationKind, unknown_field
from policies.yamlload import YamlError, load_located
from scanner.i18n import tr
from scanner.model import Level

#: Channel names of `watch[].channel` → the policy's `location.kind`.
CHANNELS: dict[str, str] = {
    "mail": LocationKind.MAIL_OUTBOX.value,
    "im": LocationKind.IM_TRANSFER.value,
    "cloud_sync": LocationKind.CLOUD_SYNC.value,
    "upload": LocationKind.UPLOAD_STAGING.value,
    "print_spool": LocationKind.PRINT_SPOOL.value,
    "network_share": LocationKind.NETWORK_SHARE.value,
    "publication": LocationKind.PUBLICATION_GATE.value,
}

#: Common Linux locations of outgoing folders, expanded for every home directory when
#: `watch_defaults: true` (those that exist are watched). `~` is each user's home.
DEFAULT_OUTGOING: tuple[tuple[str, str], ...] = (
    # Thunderbird: unsent messages and drafts with attachments live under the profile's Local Folders
    ("~/.thunderbird/*/Mail/Local Folders", "mail"),
    ("~/.thunderbird/*/ImapMail/*", "mail"),
    # Evolution: the local Outbox is a Maildir
    ("~/.local/share/evolution/mail/local/.Outbox", "mail"),
    # WeChat (Linux/UOS), QQ NT, DingTalk: files sent and received
    ("~/Documents/WeChat Files/*/FileStorage/File", "im"),
    ("~/Documents/xwechat_files/*/msg/file", "im"),
    ("~/.config/QQ/nt_qq_*/nt_data/File", "im"),
    ("~/Documents/Tencent Files/*/FileRecv", "im"),
    ("~/.config/DingTalk/*/Files", "im"),
    ("~/Documents/DingTalk", "im"),
    # cloud-sync clients
    ("~/Nextcloud", "cloud_sync"),
    ("~/ownCloud", "cloud_sync"),
    ("~/Dropbox", "cloud_sync"),
    ("~/Seafile", "cloud_sync"),
    ("~/Nutstore Files", "cloud_sync"),
    ("~/坚果云", "cloud_sync"),
    ("~/baidunetdisk", "cloud_sync"),
)

ROLES = ("unclassified", "classified")
LEVELS = tuple(lv.value for lv in Level)
IONICE_CLASSES = ("idle", "best-effort", "none")


class ConfigError(ValueError):
    """The configuration is missing or wrong; `issues` say where."""

    def __init__(self, issues: list[Issue]):
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


@dataclass(frozen=True)
class CollectorConfig:
    #: https://HOST:PORT of the collector (`baomi server run`).
    url: str
    #: CA certificate pinned for the collector (None: the system store).
    ca: Path | None = None


@dataclass(frozen=True)
class HostConfig:
    #: `unclassified` or `classified`.
    role: str = "unclassified"
    #: Highest level a classified host is approved for.
    level: str | None = None


@dataclass(frozen=True)
class VaultConfig:
    #: Directory of the sealed quarantine.
    path: Path
    #: The security officer's X25519 public key (`baomi quarantine keygen`).
    officer_key: Path


@dataclass(frozen=True)
class WatchEntry:
    path: Path
    #: One of `CHANNELS`.
    channel: str

    @property
    def location(self) -> str:
        """The policy's `location.kind` of files in this folder."""
        return CHANNELS[self.channel]


@dataclass(frozen=True)
class PolicyConfig:
    #: Pack names (`cn-secrecy`) or paths of signed bundles / pack files, applied in order.
    sources: tuple[str, ...] = ("cn-secrecy",)
    #: Officer keys (PEM paths) a bundle must be signed by; empty: shipped packs are trusted.
    trusted_keys: tuple[Path, ...] = ()
    #: Fetch the current signed bundle from the collector (GET /v1/policy).
    fetch: bool = True


@dataclass(frozen=True)
class LimitsConfig:
    #: Files scanned at the same time (threads around the in-process scanner).
    max_concurrent_scans: int = 2
    #: CPU niceness of the agent (0-19).
    nice: int = 10
    #: IO scheduling class: idle, best-effort or none.
    ionice: str = "idle"
    #: Seconds a file's size and mtime must stay unchanged before it is scanned.
    debounce: float = 0.3
    #: Larger files are reported `too_large`, not read.
    max_file_size: int = 512 * 1024 * 1024
    #: Events waiting for a scan; beyond it the queue is dropped and answered by a rescan.
    max_queue: int = 100_000
    #: Seconds one file may take to scan; past it the file is reported `timeout`, set aside
    #: (also across restarts) and a fresh scan thread takes over.
    scan_timeout: float = 120.0
    #: Scan in confined worker processes (`agents.privsep`: root opens, an unprivileged worker
    #: without network parses): `auto` (when the agent runs as root), `on`, `off` (in-process).
    isolate: str = "auto"
    #: Account of the confined workers.
    worker_user: str = "nobody"
    #: Address space of one worker (bytes).
    worker_memory: int = 2 * 1024 ** 3


@dataclass(frozen=True)
class MediaConfig:
    #: Watch removable media (pyudev) and scan them on mount.
    enabled: bool = True


@dataclass(frozen=True)
class AgentConfig:
    collector: CollectorConfig
    #: Enrolment state directory (`baomi audit enroll --state`), also holds the agent's caches.
    state: Path
    host: HostConfig
    vault: VaultConfig
    watch: tuple[WatchEntry, ...] = ()
    #: Trees of the periodic check (`baomi check`) and of the agent's rescans of local disks.
    scan_roots: tuple[Path, ...] = ()
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    #: Seconds between heartbeats.
    heartbeat: float = 60.0
    #: Seconds between rescans of the watched folders (events are only hints).
    rescan: float = 300.0
    media: MediaConfig = field(default_factory=MediaConfig)
    #: Also watch the `DEFAULT_OUTGOING` locations that exist.
    watch_defaults: bool = False
    #: The file it was read from.
    source: str = "<config>"

    def outgoing(self) -> tuple[WatchEntry, ...]:
        """The configured folders plus, with `watch_defaults`, the existing default locations."""
        entries = list(self.watch)
        if self.watch_defaults:
            seen = {e.path for e in entries}
            for e in default_watch_entries():
                if e.path not in seen:
                    seen.add(e.path)
                    entries.append(e)
        return tuple(entries)


def default_watch_entries(homes: list[str] | None = None) -> list[WatchEntry]:
    """The `DEFAULT_OUTGOING` folders that exist under the given (default: all) home directories."""
    if homes is None:
        homes = sorted(glob.glob("/home/*")) + ["/root"]
    out = []
    for home in homes:
        for pattern, channel in DEFAULT_OUTGOING:
            for p in sorted(glob.glob(glob.escape(home) + pattern[1:])):
                if os.path.isdir(p):
                    out.append(WatchEntry(Path(p), channel))
    return out


EXAMPLE = """\
# baomi endpoint agent — /etc/baomi/agent.yaml
# Run:    baomi agent run --config /etc/baomi/agent.yaml
# Check:  baomi agent config --check /etc/baomi/agent.yaml

# The audit collector (`baomi server run`) and the CA certificate it is pinned to.
collector: {url: "https://collector:8443", ca: /etc/baomi/ca.pem}

# Enrolment state (`baomi audit enroll --state /var/lib/baomi/agent ...`): identity, spool, caches.
state: /var/lib/baomi/agent

# This workstation: role unclassified, or {role: classified, level: secret}.
host: {role: unclassified}

# Sealed quarantine: files are encrypted to the officer's public key (`baomi quarantine keygen`).
vault: {path: /var/lib/baomi/vault, officer_key: /etc/baomi/officer.pub}

# Outgoing folders and their channel: mail, im, cloud_sync, upload, print_spool,
# network_share, publication.
watch:
  - {path: /home/user/Outbox, channel: mail}
  - {path: /var/spool/cups, channel: print_spool}

# Also watch the usual mail outboxes, WeChat/QQ/DingTalk transfer folders and cloud-sync
# folders of every home directory (those that exist).
watch_defaults: true

# Trees of the periodic check (`baomi check`).
scan_roots: [/home]

# Policy: shipped pack names or signed bundles; bundles must be signed by one of trusted_keys.
# fetch: the agent fetches the current signed bundle from the collector (GET /v1/policy).
policy:
  sources: [cn-secrecy]
  trusted_keys: [/etc/baomi/policy-officer.pub]
  fetch: true

# Seconds between heartbeats, and between rescans of the watched folders.
heartbeat: 60
rescan: 300

limits:
  max_concurrent_scans: 2   # files scanned at once
  nice: 10                  # CPU niceness (0-19)
  ionice: idle              # idle, best-effort or none
  debounce: 0.3             # seconds a file must stay unchanged before it is scanned
  max_file_size: 536870912  # bytes; larger files are reported too_large
  scan_timeout: 120         # seconds per file; a file past it is reported and set aside
  isolate: auto             # confined scan workers (no network, unprivileged) when run as root
  worker_user: nobody       # account of the confined workers

# Removable media: scan on mount, watch writes while mounted.
media: {enabled: true}
"""

_TOP = {"collector", "state", "host", "vault", "watch", "watch_defaults", "scan_roots", "policy",
        "heartbeat", "rescan", "limits", "media"}


class _Reader:
    """Typed reads from located YAML; problems are collected as issues."""

    def __init__(self, source: str, base: Path):
        self.source = source
        self.base = base
        self.issues: list[Issue] = []

    def issue(self, container: Any, key: Any, path: str, msg: str) -> None:
        self.issues.append(Issue.at(self.source, container, key, path, msg))

    def mapping(self, parent: Any, key: str, path: str, allowed: set[str], required: bool = True) -> dict[str, Any] | None:
        value = parent.get(key) if isinstance(parent, dict) else None
        if value is None:
            if required:
                self.issue(parent, key, path, tr("必填", "required"))
            return None
        if not isinstance(value, dict):
            self.issue(parent, key, path, tr("应为映射（键: 值）", "must be a mapping (key: value)"))
            return None
        for k in value:
            if k not in allowed:
                self.issue(value, k, f"{path}.{k}", unknown_field(allowed))
        return value

    def string(self, m: Any, key: Any, path: str, required: bool = True) -> str | None:
        value = _get(m, key)
        if value is None:
            if required:
                self.issue(m, key, path, tr("必填", "required"))
            return None
        if not isinstance(value, str) or not value.strip():
            self.issue(m, key, path, tr("应为非空字符串", "must be a non-empty string"))
            return None
        return value

    def path(self, m: Any, key: Any, path: str, required: bool = True) -> Path | None:
        value = self.string(m, key, path, required)
        if value is None:
            return None
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else (self.base / p)

    def choice(self, m: Any, key: str, path: str, choices: tuple[str, ...], default: str | None,
               required: bool = False) -> str | None:
        value = m.get(key) if isinstance(m, dict) else None
        if value is None:
            if required:
                self.issue(m, key, path, tr("必填", "required"))
            return default
        if value not in choices:
            self.issue(m, key, path, tr(f"应为 {', '.join(choices)} 之一", f"must be one of {', '.join(choices)}"))
            return default
        return str(value)

    def number(self, m: Any, key: str, path: str, default: float, lo: float, hi: float,
               integer: bool = False) -> Any:
        value = m.get(key) if isinstance(m, dict) else None
        if value is None:
            return default
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or not lo <= value <= hi:
            kind = tr("整数", "an integer") if integer else tr("数值", "a number")
            self.issue(m, key, path, tr(f"应为 {lo:g} 到 {hi:g} 之间的{kind}", f"must be {kind} between {lo:g} and {hi:g}"))
            return default
        return value

    def flag(self, m: Any, key: str, path: str, default: bool) -> bool:
        value = m.get(key) if isinstance(m, dict) else None
        if value is None:
            return default
        if not isinstance(value, bool):
            self.issue(m, key, path, tr("应为 true 或 false", "must be true or false"))
            return default
        return value

    def seq(self, m: Any, key: str, path: str, item: Callable[[Any, int, str], Any]) -> tuple[Any, ...]:
        value = m.get(key) if isinstance(m, dict) else None
        if value is None:
            return ()
        if isinstance(value, str) and key in ("scan_roots", "sources", "trusted_keys"):
            value_list: Any = [value]
            marks = getattr(m, "marks", {})
            return tuple(x for x in (item(_Located(value_list, marks.get(key)), 0, f"{path}[0]"),) if x is not None)
        if not isinstance(value, list):
            self.issue(m, key, path, tr("应为列表", "must be a list"))
            return ()
        out = [item(value, i, f"{path}[{i}]") for i in range(len(value))]
        return tuple(x for x in out if x is not None)


def _get(m: Any, key: Any) -> Any:
    if isinstance(m, dict):
        return m.get(key)
    if isinstance(m, list) and isinstance(key, int) and 0 <= key < len(m):
        return m[key]
    return None


class _Located(list):  # type: ignore[type-arg]
    """A one-item list standing for a scalar written where a list is expected (`scan_roots: /home`)."""

    def __init__(self, items: list[Any], mark: tuple[int, int] | None):
        super().__init__(items)
        self.marks = {0: mark} if mark else {}


def parse_config(data: Any, source: str = "<config>", base: Path | None = None) -> AgentConfig:
    """Build an `AgentConfig` from located YAML data; raise ConfigError listing every problem."""
    r = _Reader(source, base or Path.cwd())
    if not isinstance(data, dict):
        raise ConfigError([Issue(source, 1, 1, "", tr("配置应为 YAML 映射", "the configuration must be a YAML mapping"))])
    for k in data:
        if k not in _TOP:
            r.issue(data, k, str(k), unknown_field(_TOP))

    col = r.mapping(data, "collector", "collector", {"url", "ca"})
    url = r.string(col, "url", "collector.url") if col is not None else None
    if url is not None and not url.startswith(("https://", "http://")):
        r.issue(col, "url", "collector.url", tr("应以 https:// 开头", "must start with https://"))
    ca = r.path(col, "ca", "collector.ca", required=False) if col is not None else None

    state = r.path(data, "state", "state")

    host_m = r.mapping(data, "host", "host", {"role", "level"})
    role = r.choice(host_m, "role", "host.role", ROLES, "unclassified", required=host_m is not None) or "unclassified"
    level = r.choice(host_m, "level", "host.level", LEVELS, None)
    if host_m is not None and role == "classified" and level is None:
        r.issue(host_m, "role", "host.level", tr("涉密计算机须写明核定密级 level", "a classified host needs its approved level"))

    vault_m = r.mapping(data, "vault", "vault", {"path", "officer_key"})
    vpath = r.path(vault_m, "path", "vault.path") if vault_m is not None else None
    vkey = r.path(vault_m, "officer_key", "vault.officer_key") if vault_m is not None else None

    def watch_item(lst: Any, i: int, path: str) -> WatchEntry | None:
        m = lst[i]
        if not isinstance(m, dict):
            r.issue(lst, i, path, tr("应为 {path: …, channel: …}", "must be {path: …, channel: …}"))
            return None
        for k in m:
            if k not in ("path", "channel"):
                r.issue(m, k, f"{path}.{k}", unknown_field({"path", "channel"}))
        p = r.path(m, "path", f"{path}.path")
        ch = r.choice(m, "channel", f"{path}.channel", tuple(CHANNELS), None, required=True)
        return WatchEntry(p, ch) if p is not None and ch is not None else None

    watch = r.seq(data, "watch", "watch", watch_item)

    def path_item(lst: Any, i: int, path: str) -> Path | None:
        return r.path(lst, i, path) if isinstance(lst, list) else None

    scan_roots = r.seq(data, "scan_roots", "scan_roots", path_item)

    pol_m = r.mapping(data, "policy", "policy", {"sources", "trusted_keys", "fetch"}, required=False)
    policy = PolicyConfig()
    if pol_m is not None:
        def src_item(lst: Any, i: int, path: str) -> str | None:
            v = lst[i]
            if not isinstance(v, str) or not v:
                r.issue(lst, i, path, tr("应为策略包名或签名包路径", "must be a pack name or a bundle path"))
                return None
            if "/" in v or v.endswith((".json", ".yaml", ".yml")):
                p = Path(os.path.expanduser(v))
                return str(p if p.is_absolute() else r.base / p)
            return v
        sources = r.seq(pol_m, "sources", "policy.sources", src_item) or policy.sources
        keys = r.seq(pol_m, "trusted_keys", "policy.trusted_keys", path_item)
        policy = PolicyConfig(sources=sources, trusted_keys=keys,
                              fetch=r.flag(pol_m, "fetch", "policy.fetch", True))

    lim_m = r.mapping(data, "limits", "limits", {f for f in LimitsConfig.__dataclass_fields__}, required=False)
    d = LimitsConfig()
    limits = d
    if lim_m is not None:
        limits = LimitsConfig(
            max_concurrent_scans=r.number(lim_m, "max_concurrent_scans", "limits.max_concurrent_scans",
                                          d.max_concurrent_scans, 1, 64, integer=True),
            nice=r.number(lim_m, "nice", "limits.nice", d.nice, 0, 19, integer=True),
            ionice=r.choice(lim_m, "ionice", "limits.ionice", IONICE_CLASSES, d.ionice) or d.ionice,
            debounce=float(r.number(lim_m, "debounce", "limits.debounce", d.debounce, 0.0, 60.0)),
            max_file_size=r.number(lim_m, "max_file_size", "limits.max_file_size", d.max_file_size,
                                   1, 1 << 42, integer=True),
            max_queue=r.number(lim_m, "max_queue", "limits.max_queue", d.max_queue, 100, 10_000_000,
                               integer=True),
            scan_timeout=float(r.number(lim_m, "scan_timeout", "limits.scan_timeout", d.scan_timeout, 1.0, 86400.0)),
            isolate=r.choice(lim_m, "isolate", "limits.isolate", ("auto", "on", "off"), d.isolate) or d.isolate,
            worker_user=r.string(lim_m, "worker_user", "limits.worker_user", required=False) or d.worker_user,
            worker_memory=r.number(lim_m, "worker_memory", "limits.worker_memory", d.worker_memory,
                                   64 * 1024 ** 2, 1 << 40, integer=True))

    media_m = r.mapping(data, "media", "media", {"enabled"}, required=False)
    media = MediaConfig(enabled=r.flag(media_m, "enabled", "media.enabled", True)) if media_m is not None else MediaConfig()

    heartbeat = float(r.number(data, "heartbeat", "heartbeat", 60.0, 0.2, 86400.0))
    rescan = float(r.number(data, "rescan", "rescan", 300.0, 1.0, 7 * 86400.0))
    watch_defaults = r.flag(data, "watch_defaults", "watch_defaults", False)

    if r.issues:
        raise ConfigError(r.issues)
    assert url is not None and state is not None and vpath is not None and vkey is not None
    return AgentConfig(collector=CollectorConfig(url.rstrip("/"), ca), state=state,
                       host=HostConfig(role, level), vault=VaultConfig(vpath, vkey), watch=watch,
                       scan_roots=scan_roots, policy=policy, limits=limits, heartbeat=heartbeat,
                       rescan=rescan, media=media, watch_defaults=watch_defaults, source=source)


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate the agent's YAML file; relative paths are relative to its directory."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError([Issue(str(p), None, None, "", tr(f"无法读取：{exc.strerror or exc}",
                                                            f"cannot read: {exc.strerror or exc}"))]) from None
    try:
        data = load_located(raw, str(p))
    except YamlError as exc:
        raise ConfigError([exc.issue]) from None
    if data is None:
        raise ConfigError([Issue(str(p), None, None, "", tr("配置文件为空", "the configuration is empty"))])
    return parse_config(data, str(p), p.resolve().parent)
