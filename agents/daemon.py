"""The endpoint agent: one long-running process (`baomi agent run --config FILE`).

    event source (watchdog, media, rescan timer) → stability debounce (agents.watch)
      → scan queue (bounded) → N scan threads → incremental cache → a warm scanner: confined
      worker processes when root (agents.privsep), else one in-process `Scanner`
      → policy (`PolicySet`) → graded actions (agents.actions)
      → audit client spool → background delivery to the collector

Lifecycle: SIGTERM/SIGINT stop cleanly (an `agent_stop` event, a last delivery attempt);
SIGHUP reloads the configuration and the policy. Readiness, watchdog pings and status go to
systemd through sd_notify (python-systemd) when NOTIFY_SOCKET is set. Logs go to stderr (journald).
A failing callback, a full spool disk or a full vault is logged and reported, never fatal.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from agents.actions import Actions, HoldArea, Judged, Notifier
from agents.config import AgentConfig, load_config
from agents.policy import PolicyHolder
from agents.watch import FolderWatcher, Place, WatchProblem
from policies.engine import events_for_scan_record
from policies.model import Violation
from reports.client import AuditClient, DeliveryError

log = logging.getLogger("baomi.agent")

try:  # python-systemd: sd_notify(3) itself, not a re-implementation of its socket protocol
    from systemd import daemon as _sd
except ImportError:  # pragma: no cover - a workstation without it simply does not notify
    _sd = None


def sd_notify(state: str) -> bool:
    """Send a state string to systemd (READY=1, WATCHDOG=1, STATUS=…); False when not under systemd."""
    if _sd is None or not os.environ.get("NOTIFY_SOCKET"):
        return False
    try:
        return bool(_sd.notify(state))
    except OSError:
        return False


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec (from WATCHDOG_USEC), when it applies to this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2e6
    except ValueError:
        return None


def set_niceness(nice: int, ionice: str) -> None:
    """Lower this process's CPU and IO priority (inherited by every thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError as exc:
        log.warning("cannot set niceness %d: %s", nice, exc)
    if ionice == "none":
        return
    try:
        import psutil

        cls = psutil.IOPRIO_CLASS_IDLE if ionice == "idle" else psutil.IOPRIO_CLASS_BE
        if cls == psutil.IOPRIO_CLASS_BE:
            psutil.Process().ionice(cls, value=7)
        else:
            psutil.Process().ionice(cls)
    except (ImportError, OSError, AttributeError) as exc:
        log.warning("cannot set IO priority %s: %s", ionice, exc)


# --------------------------------------------------------------------------- the agent
class Agent:
    def __init__(self, cfg: AgentConfig, config_path: str | None = None):
        self.cfg = cfg
        self.config_path = config_path
        self.stop_event = threading.Event()
        self.reload_event = threading.Event()
        self.client = AuditClient(cfg.state)
        self.policy = PolicyHolder(cfg)
        from scanner.cache import ScanCache

        self._cache_cls = ScanCache
        self._local = threading.local()
        self._scanner_keywords: tuple[str, ...] | None = None
        #: A warm `Scanner`, or an `agents.privsep.ScanBroker` of confined workers (same shape).
        self.scanner: Any = None
        self._build_scanner()
        self.queue: queue.Queue[tuple[Path, Place] | None] = queue.Queue(cfg.limits.max_queue)
        self._judged: dict[str, tuple[tuple[int, ...], str]] = {}
        self._judged_lock = threading.Lock()
        self._flush_wake = threading.Event()
        self.actions = Actions(self.submit, self._open_vault(), HoldArea(cfg.state / "held"), Notifier())
        self.watcher = FolderWatcher(self.enqueue, self.on_watch_problem, debounce=cfg.limits.debounce)
        self.media: Any = None
        self._media_places: dict[tuple[str, str], Place] = {}  # (medium id, mount point)
        self._threads: list[threading.Thread] = []
        self.stats = {"judged": 0, "violations": 0, "errors": 0, "submit_failures": 0}
        #: scan thread name → (path, stat key, start time) of the file it is scanning now
        self._busy: dict[str, tuple[str, tuple[int, ...], float]] = {}
        #: Files whose scan hung: never scanned again in this state (kept across restarts).
        self._poison_file = cfg.state / "poison.json"
        self._poison: set[tuple[str, tuple[int, ...]]] = self._read_poison()
        self._stuck_threads = 0
        self._replaced: set[str] = set()
        self._overflowed: set[Path] = set()

    # -- audit -------------------------------------------------------------------------------
    def submit(self, etype: str, payload: Mapping[str, Any]) -> None:
        """Spool an event; a full disk or a schema slip is logged, never fatal."""
        try:
            self.client.submit(etype, _clip(payload))
        except Exception as exc:  # noqa: BLE001 - sqlite "disk full", SchemaError
            self.stats["submit_failures"] += 1
            log.error("cannot spool %s event: %s", etype, exc)
            return
        self._flush_wake.set()

    def _flusher(self) -> None:
        backoff = 0.5
        while not self.stop_event.is_set():
            self._flush_wake.wait(backoff)
            self._flush_wake.clear()
            if self.stop_event.is_set():
                return
            try:
                res = self.client.flush(timeout=2.0, max_backoff=1.0)
                backoff = 0.5 if not res.pending else min(backoff * 2, 30.0)
            except DeliveryError as exc:
                log.error("collector refused events: %s", exc)
                backoff = 30.0
            except Exception as exc:  # noqa: BLE001 - the delivery thread must survive anything
                log.error("delivery failed: %s", exc)
                backoff = min(backoff * 2, 30.0)

    # -- vault -------------------------------------------------------------------------------
    def _open_vault(self) -> Any:
        try:
            from agents.vault import Vault
        except ImportError as exc:
            log.error("quarantine vault unavailable (%s): quarantine actions will fail", exc)
            return None
        try:
            return Vault(self.cfg.vault.path, self.cfg.vault.officer_key)
        except Exception as exc:  # noqa: BLE001 - reported; detection and audit still run
            log.error("cannot open the vault %s: %s", self.cfg.vault.path, exc)
            return None

    # -- events → scans ----------------------------------------------------------------------
    def enqueue(self, path: Path, place: Place) -> None:
        try:
            self.queue.put_nowait((path, place))
        except queue.Full:
            # Too many at once: drop the hint and let the next periodic rescan catch up (an
            # immediate rescan would only overflow the queue again); reported once per place.
            if place.path not in self._overflowed:
                self._overflowed.add(place.path)
                self.on_watch_problem(WatchProblem("queue_full", place, f"scan queue full ({self.queue.maxsize})"))

    def on_watch_problem(self, p: WatchProblem) -> None:
        log.warning("watch problem %s on %s: %s", p.kind, p.place.path, p.detail)
        self.submit("x_watch_problem", {"problem": p.kind, "path": str(p.place.path), "detail": p.detail[:500],
                                        "location": p.place.location})
        if p.kind == "overflow":
            self.watcher.request_rescan(p.place)

    def _build_scanner(self) -> None:
        """The warm in-process scanner, rebuilt when the policy brings other site keywords.

        Keywords reach the rule compiler through an anonymous memory file and the compiled
        rules are not cached on disk: code names are never written out in plain text."""
        from scanner.config import ScanConfig
        from scanner.engine import Scanner
        from scanner.extractors.base import Limits

        words = self.policy.keywords
        if words == self._scanner_keywords:
            return
        if self._want_isolation():
            self._build_broker(words)
            return
        limits = Limits(max_file_size=self.cfg.limits.max_file_size)
        if not words:
            scanner = Scanner(ScanConfig(limits=limits, ocr_mode="auto"))
        else:
            fd = os.memfd_create("baomi-keywords", os.MFD_CLOEXEC)
            try:
                os.write(fd, "\n".join(words).encode("utf-8"))
                # An uncreatable cache directory: rules.loader then compiles without saving.
                scanner = Scanner(ScanConfig(limits=limits, ocr_mode="auto", keywords_file=f"/proc/self/fd/{fd}",
                                             rules_cache="/dev/null/baomi-no-cache"))
            finally:
                os.close(fd)
        scanner.warm_up()  # every extractor loaded, long-lived objects out of the full GC passes
        self.scanner, self._digest, self._scanner_keywords = scanner, scanner.config_digest, words

    def _want_isolation(self) -> bool:
        mode = self.cfg.limits.isolate
        if mode == "off" or (mode == "auto" and os.geteuid() != 0):
            return False
        import importlib.util

        if importlib.util.find_spec("agents.privsep") is None:
            if mode == "on":
                raise RuntimeError("limits.isolate: on, but agents.privsep is not installed")
            log.warning("confined scan workers unavailable: scanning in-process")
            return False
        return True

    def _build_broker(self, words: tuple[str, ...]) -> None:
        """Confined worker processes (agents.privsep): this root process only opens files."""
        from agents.privsep import ScanBroker, WorkerLimits

        lim = self.cfg.limits
        broker = ScanBroker(WorkerLimits(user=lim.worker_user, workers=lim.max_concurrent_scans,
                                         max_memory=lim.worker_memory, timeout=lim.scan_timeout,
                                         nice=lim.nice, ionice=lim.ionice),
                            keywords=words, max_file_size=lim.max_file_size, ocr_mode="auto")
        old = self.scanner
        self.scanner, self._digest, self._scanner_keywords = broker, broker.config_digest, words
        if old is not None and hasattr(old, "close"):
            old.close()
        log.info("scanning in %d confined workers as %s", lim.max_concurrent_scans, lim.worker_user)

    def _cache(self) -> Any:
        entry = getattr(self._local, "cache", None)
        if entry is None or entry[0] != self._digest:  # new rules: the thread's cache is for the old ones
            if entry and entry[1]:
                entry[1].close()
            try:
                c = self._cache_cls(self.cfg.state / "scan-cache.sqlite", self._digest)
            except Exception as exc:  # noqa: BLE001 - CacheRefused, unwritable: scan without a cache
                log.warning("scan cache unavailable: %s", exc)
                c = None
            entry = self._local.cache = (self._digest, c)
        return entry[1]

    def _scanner_loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            try:
                self.judge(*item)
            except Exception:  # noqa: BLE001 - one file's bug must not stop the agent
                self.stats["errors"] += 1
                log.exception("judging %s failed", item[0])
            name = threading.current_thread().name
            if name in self._replaced:  # came back after being declared stuck: a successor runs
                self._replaced.discard(name)
                self._stuck_threads -= 1
                return

    # -- hung scans ----------------------------------------------------------------------------
    def _read_poison(self) -> set[tuple[str, tuple[int, ...]]]:
        try:
            return {(str(p), tuple(k)) for p, k in json.loads(self._poison_file.read_text())}
        except (OSError, ValueError, TypeError):
            return set()

    def check_stuck_scans(self) -> None:
        """A scan past `scan_timeout` is reported, its file set aside, and a fresh scan thread
        replaces the stuck one (a thread cannot be killed). Too many stuck threads: stop
        answering systemd's watchdog so that the whole agent is restarted."""
        limit = self.cfg.limits.scan_timeout
        now = time.monotonic()
        for name, (spath, key, started) in list(self._busy.items()):
            if now - started < limit or (spath, key) in self._poison:
                continue
            self._poison.add((spath, key))
            try:
                tmp = self._poison_file.with_suffix(".tmp")
                tmp.write_text(json.dumps(sorted([p, list(k)] for p, k in self._poison)))
                os.replace(tmp, self._poison_file)
            except OSError as exc:
                log.error("cannot record the hung file: %s", exc)
            log.error("scan of %s hung for %.0f s: set aside", spath, now - started)
            self.submit("x_scan_error", {"path": spath, "error": "timeout", "thread": name,
                                         "detail": f"no result within {limit:g} s"})
            self._stuck_threads += 1
            self._replaced.add(name)  # it leaves the pool if it ever returns
            self._thread(self._scanner_loop, f"baomi-scan-r{len(self._threads)}")

    @property
    def healthy(self) -> bool:
        return self._stuck_threads <= 4 * self.cfg.limits.max_concurrent_scans

    def judge(self, path: Path, place: Place) -> Judged | None:
        """Scan (or take from the cache), decide and act on one file."""
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return None  # gone (moved on, sealed, deleted) before its turn
        import stat as stat_mod

        if not stat_mod.S_ISREG(st.st_mode):
            return None
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        version = self.policy.version
        spath = str(path)
        with self._judged_lock:
            if self._judged.get(spath) == (key, version):
                return None  # already judged in this state under this policy (a rescan)
        if (spath, key) in self._poison:
            return None  # hung a scan before: reported then, not scanned again while unchanged
        cache = self._cache()
        rec = cache.lookup(key, spath) if cache else None
        if rec is None:
            me = threading.current_thread().name
            self._busy[me] = (spath, key, time.monotonic())
            try:
                rec = self.scanner.scan_path(spath).to_record()
            finally:
                self._busy.pop(me, None)
            if (spath, key) in self._poison:
                return None  # finished after all, but it was already reported and replaced
            # A record holding a site keyword is not cached: the keyword would rest in plain text.
            if cache and not any(f.get("kind") == "keyword" for f in rec.get("findings") or []):
                cache.store(key, rec)
                cache.flush()
        with self._judged_lock:
            self._judged[spath] = (key, version)
        self.stats["judged"] += 1
        errors = rec.get("errors") or []
        if any(e.get("error") in ("unreadable", "crash", "timeout") for e in errors):
            self.submit("x_scan_error", {"path": spath, "error": errors[0].get("error"),
                                         "detail": str(errors[0].get("detail", ""))[:300],
                                         "location": place.location})
        if not rec.get("findings") and not errors:
            return None
        policy = self.policy.policy
        ctx = policy.context()
        vs: list[Violation] = []
        for ev in events_for_scan_record(rec, host_role=self.cfg.host.role, host_level=self.cfg.host.level,
                                         location=place.location, operation="create",
                                         medium_id=place.medium_id, medium_level=place.medium_level):
            vs.extend(policy.evaluate(ev, ctx))
        if not vs:
            return None
        vs.sort(key=lambda v: (-v.severity.rank, -v.action.rank, v.rule_id))
        action = max((v.action for v in vs), key=lambda a: a.rank)
        markings = tuple(f.get("text", "") for f in rec.get("findings") or [] if f.get("kind") == "marking")
        j = Judged(path=path, location=place.location, channel=place.channel, sha256=rec.get("sha256"),
                   level=rec.get("level"), markings=markings, violations=tuple(vs), action=action,
                   policy_version=version, size=rec.get("size"), medium_id=place.medium_id)
        self.stats["violations"] += len(vs)
        outcome = self.actions.apply(j)
        log.info("%s: %s → %s (%s)", path, ",".join(v.rule_id for v in vs), outcome.grade.value, outcome.result)
        return j

    def _files_judged(self) -> int:
        """Distinct files judged since start (a rescan of an unchanged file does not count)."""
        with self._judged_lock:
            return len(self._judged)

    # -- media -------------------------------------------------------------------------------
    def _start_media(self) -> None:
        if not self.cfg.media.enabled:
            return
        try:
            from agents.media import MediaMonitor
        except ImportError as exc:
            log.warning("removable-media monitoring unavailable: %s", exc)
            return
        try:
            self.media = MediaMonitor(self.on_media_event)
            self.media.start()
        except Exception as exc:  # noqa: BLE001 - no udev in a container: the rest still runs
            log.warning("removable-media monitoring not started: %s", exc)
            self.media = None

    def on_media_event(self, ev: Any) -> None:
        """MediaMonitor callback: report the device; on mount scan and watch the medium."""
        try:
            self._media_event(ev)
        except Exception:  # noqa: BLE001 - a callback error must not kill the monitor or the agent
            log.exception("media event failed")

    def _media_event(self, ev: Any) -> None:
        from agents.media import MediaEvent, classify_location

        if not isinstance(ev, MediaEvent):
            raise TypeError(f"not a MediaEvent: {type(ev).__name__}")
        medium = ev.medium
        registry = self.policy.policy.params.get("registered_media") or []
        loc = classify_location(medium, registry)
        info = {k: v for k, v in dataclasses.asdict(medium).items() if isinstance(v, (str, int)) and v != ""}
        self.submit("device", {"event": ev.action, "mountpoint": str(ev.mountpoint) if ev.mountpoint else None,
                               "location": loc.get("kind"), "medium_id": loc.get("medium_id"),
                               "medium_level": loc.get("medium_level"), "holder": loc.get("holder"), **info})
        mid = str(loc.get("medium_id"))
        if ev.action == "mount" and ev.mountpoint:
            place = Place(Path(ev.mountpoint), str(loc.get("kind", "removable_medium")), "medium",
                          medium_id=loc.get("medium_id"), medium_level=loc.get("medium_level"))
            self._media_places[(mid, str(ev.mountpoint))] = place
            self.watcher.add(place)
            self.watcher.request_rescan(place)  # the incremental scan of the medium
        elif ev.action in ("unmount", "remove"):
            for key in [k for k in self._media_places
                        if k[0] == mid and (ev.action == "remove" or k[1] == str(ev.mountpoint))]:
                self.watcher.remove(self._media_places.pop(key).path)

    # -- policy ------------------------------------------------------------------------------
    def fetch_policy(self) -> str | None:
        if not self.cfg.policy.fetch or not self.cfg.policy.trusted_keys:
            return None
        try:
            # Short timeout: this runs on the main loop, which also answers systemd's watchdog.
            resp = self.client._http.get("/v1/policy", headers=self.client.signed_headers("GET", "/v1/policy"),
                                         timeout=5.0)
        except httpx.HTTPError as exc:
            log.info("policy fetch failed: %s", exc)
            return None
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            log.warning("policy fetch answered %s", resp.status_code)
            return None
        try:
            body = resp.json()
        except ValueError:
            body = None
        before = self.policy.version
        status = self.policy.offer(body)
        if status == "installed":
            self._build_scanner()
            log.info("policy %s installed (was %s)", self.policy.version, before)
            self.submit("policy_loaded", {"policy": self.policy.version, "previous": before, "source": "collector"})
        elif status != "same":
            log.warning("policy bundle from the collector refused: %s", status)
            self.submit("policy_loaded", {"policy": self.policy.version, "refused": status[:300],
                                          "source": "collector", "result": "refused"})
        return status

    def reload(self) -> None:
        """SIGHUP: re-read the configuration and the policy; keep the old ones when bad."""
        sd_notify("RELOADING=1")
        try:
            if self.config_path:
                new = load_config(self.config_path)
                old_places = {p.path for p in self._configured_places()}
                self.cfg = new
                self.policy.cfg = new
                new_places = {p.path: p for p in self._configured_places()}
                for path in old_places - set(new_places):
                    self.watcher.remove(path)
                for path, place in new_places.items():
                    if path not in old_places:
                        self.watcher.add(place)
            before = self.policy.version
            fresh = PolicyHolder(self.cfg)
            self.policy.policy, self.policy.created, self.policy.keywords = fresh.policy, fresh.created, fresh.keywords
            self._build_scanner()
            self.submit("policy_loaded", {"policy": self.policy.version, "previous": before, "source": "reload"})
            self.fetch_policy()
            log.info("configuration reloaded")
        except Exception as exc:  # noqa: BLE001 - ConfigError, PolicyError: keep running as before
            log.error("reload failed, keeping the previous configuration: %s", exc)
        sd_notify("READY=1")

    def _configured_places(self) -> list[Place]:
        return [Place(e.path, e.location, e.channel) for e in self.cfg.outgoing()]

    # -- lifecycle ---------------------------------------------------------------------------
    def run(self) -> int:
        set_niceness(self.cfg.limits.nice, self.cfg.limits.ionice)
        if self.client.state.server.rstrip("/") != self.cfg.collector.url:
            log.warning("the state directory is enrolled with %s, not %s (collector.url): events go to the former",
                        self.client.state.server, self.cfg.collector.url)
        self.fetch_policy()
        self.submit("agent_start", {"policy": self.policy.version, "host_role": self.cfg.host.role,
                                    "host_level": self.cfg.host.level, "pid": os.getpid(),
                                    "hostname": socket.gethostname(), "watch": len(self.cfg.outgoing())})
        for i in range(self.cfg.limits.max_concurrent_scans):
            self._thread(self._scanner_loop, f"baomi-scan-{i}")
        self._thread(self._flusher, "baomi-deliver")
        self.watcher.start()
        for place in self._configured_places():
            self.watcher.add(place)
        self.watcher.rescan()  # what arrived while the agent was not running
        self._start_media()
        sd_notify("READY=1")
        log.info("agent running: %d folders watched, policy %s", len(self.watcher.places), self.policy.version)
        now = time.monotonic()
        next_beat = now
        next_rescan = now + self.cfg.rescan
        next_fetch = now + min(self.cfg.rescan, 60.0)
        wd = watchdog_interval()
        next_wd = now
        while not self.stop_event.is_set():
            now = time.monotonic()
            self.check_stuck_scans()
            if wd is not None and now >= next_wd and self.healthy:
                sd_notify("WATCHDOG=1")
                next_wd = now + wd
            if self.reload_event.is_set():
                self.reload_event.clear()
                self.reload()
            if now >= next_beat:
                self.submit("heartbeat", {"policy": self.policy.version, "pending": self.client.pending(),
                                          "queue": self.queue.qsize(), "watched": len(self.watcher.places),
                                          "judged": self._files_judged(), "scans": self.stats["judged"]})
                sd_notify(f"STATUS=watching {len(self.watcher.places)} folders, {self.stats['judged']} files judged")
                next_beat = now + self.cfg.heartbeat
            if now >= next_rescan:
                self._overflowed.clear()
                self.watcher.retry_unwatched()
                self.watcher.rescan()
                next_rescan = now + self.cfg.rescan
            if now >= next_fetch:
                self.fetch_policy()
                next_fetch = now + 60.0
            self.stop_event.wait(min(0.5, wd or 0.5))
        return self.shutdown()

    def _thread(self, fn: Any, name: str) -> None:
        t = threading.Thread(target=fn, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def shutdown(self, reason: str = "signal") -> int:
        sd_notify("STOPPING=1")
        log.info("stopping")
        if self.media is not None:
            try:
                self.media.stop()
            except Exception:  # noqa: BLE001
                log.exception("stopping the media monitor failed")
        self.watcher.stop()
        scanners = [t for t in self._threads if t.name.startswith("baomi-scan") and t.is_alive()]
        for _ in scanners:
            try:
                self.queue.put(None, timeout=1)
            except queue.Full:
                break
        deadline = time.monotonic() + 10
        for t in scanners:
            t.join(max(0.0, deadline - time.monotonic()))
        self._flush_wake.set()
        self.submit("agent_stop", {"policy": self.policy.version, "reason": reason, "judged": self.stats["judged"]})
        try:
            res = self.client.flush(timeout=5.0, max_backoff=1.0)
            if res.pending:
                log.warning("%d events still spooled; delivered at the next start", res.pending)
        except Exception as exc:  # noqa: BLE001
            log.warning("last delivery failed: %s", exc)
        if hasattr(self.scanner, "close"):
            self.scanner.close()  # confined workers
        self.client.close()
        return 0

    def close(self) -> None:
        """Release what `__init__` opened (for an agent that never ran; `run` ends in `shutdown`)."""
        if hasattr(self.scanner, "close"):
            self.scanner.close()
        self.client.close()

    def install_signals(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            log.info("signal %d received", signum)
            self.stop_event.set()

        def hup(_signum: int, _frame: Any) -> None:
            self.reload_event.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)


def _clip(value: Any, limit: int = 1000) -> Any:
    """Strings cut to the audit schema's length (a deep path keeps its end, which names the file)
    so that an event is recorded rather than refused."""
    if isinstance(value, str):
        return value if len(value) <= limit else "…" + value[-(limit - 1):]
    if isinstance(value, Mapping):
        return {k: _clip(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clip(v, limit) for v in value]
    return value


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, level.upper(), logging.INFO),
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per delivered batch is noise


def run_agent(config_path: str) -> int:
    """`baomi agent run`: load, run until a signal, return the exit code."""
    cfg = load_config(config_path)
    agent = Agent(cfg, config_path)
    agent.install_signals()
    return agent.run()
