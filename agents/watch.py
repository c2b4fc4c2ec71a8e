"""Outgoing folders: watchdog events → stable files, ready to scan.

    w = FolderWatcher(on_file=..., on_problem=..., debounce=0.3)
    w.add(Place(Path("/home/u/Outbox"), "mail_outbox", channel="mail"))
    w.start(); ...; w.stop()

inotify is a hint, never the truth: watchdog fires "created" before a copy finishes, a storm of
writes fires thousands of "modified", the kernel queue overflows (watchdog then reports
`EventsLostEvent`) and the per-user watch limit runs out (the root of a watch then fails with
ENOSPC; a subdirectory is only logged by watchdog). So:

- every hint only marks a path *pending* (one entry per path: a storm coalesces into one scan);
- a pending file is handed on once it is *stable*: closed after writing (IN_CLOSE_WRITE) and
  unchanged since, or its size and mtime unchanged for `debounce` seconds;
- an overflow or an exhausted watch limit is reported through `on_problem` and answered with a
  rescan of the place; the daemon also rescans every place periodically (`rescan()`), and the
  incremental cache makes an unchanged file cost one stat.
"""
from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    EventsLostEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

log = logging.getLogger("baomi.agent.watch")


@dataclass(frozen=True)
class Place:
    """A watched folder and what the policy calls files in it."""

    path: Path
    #: The policy's `location.kind` (mail_outbox, im_transfer, removable_medium…).
    location: str
    #: The configured channel name (mail, im…), or "medium".
    channel: str = ""
    medium_id: str | None = None
    medium_level: str | None = None


@dataclass(frozen=True)
class WatchProblem:
    """Something that made events unreliable; the place is rescanned."""

    #: `overflow` (events lost), `watch_limit` (no more inotify watches), `error`.
    kind: str
    place: Place
    detail: str = ""


@dataclass
class _Pending:
    place: Place
    closed: bool
    sig: tuple[int, int] | None
    since: float


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: FolderWatcher, place: Place):
        self.w = watcher
        self.place = place

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            self.w._event(self.place, event)
        except Exception:  # noqa: BLE001 - an exception here would end watchdog's dispatch thread
            log.exception("watch event handler failed")


class _WatchLimitLog(logging.Handler):
    """watchdog only logs a subdirectory it could not watch (ENOSPC/EMFILE): turn that log line
    into a `watch_limit` problem of the place being watched."""

    def __init__(self, watcher: FolderWatcher):
        super().__init__(logging.WARNING)
        self.w = watcher

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "Unable to watch" in msg or "watch limit" in msg:
            self.w._limit_hit(msg)


class FolderWatcher:
    """watchdog observer + stability debounce. Callbacks run on the watcher's own thread."""

    def __init__(self, on_file: Callable[[Path, Place], None],
                 on_problem: Callable[[WatchProblem], None], *, debounce: float = 0.3,
                 tick: float = 0.05):
        self.on_file = on_file
        self.on_problem = on_problem
        self.debounce = debounce
        self.tick = tick
        self._observer = Observer()
        self._watches: dict[Path, tuple[Place, object]] = {}
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="baomi-debounce", daemon=True)
        self._rescans: list[Place] = []
        self._log_hook = _WatchLimitLog(self)
        self._limit_reported: set[Path] = set()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        logging.getLogger("watchdog.observers.inotify").addHandler(self._log_hook)
        self._observer.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        logging.getLogger("watchdog.observers.inotify").removeHandler(self._log_hook)
        try:
            self._observer.stop()
            self._observer.join(5)
        except Exception:  # noqa: BLE001 - stopping must not fail the daemon's shutdown
            log.exception("stopping the observer failed")
        if self._thread.is_alive():
            self._thread.join(5)

    @property
    def places(self) -> list[Place]:
        return [p for p, _ in self._watches.values()]

    def add(self, place: Place) -> bool:
        """Watch a place (recursively). False when it cannot be watched (reported as a problem)."""
        if place.path in self._watches:
            return True
        if not place.path.is_dir():
            self.on_problem(WatchProblem("error", place, "not a directory (yet): rescanned periodically"))
            self._watches[place.path] = (place, None)
            return False
        try:
            handle = self._observer.schedule(_Handler(self, place), str(place.path), recursive=True)
        except OSError as exc:
            kind = "watch_limit" if exc.errno in (errno.ENOSPC, errno.EMFILE) else "error"
            self.on_problem(WatchProblem(kind, place, str(exc)))
            self._watches[place.path] = (place, None)  # still rescanned periodically
            self.request_rescan(place)
            return False
        self._watches[place.path] = (place, handle)
        return True

    def remove(self, path: Path) -> None:
        entry = self._watches.pop(path, None)
        if entry and entry[1] is not None:
            try:
                self._observer.unschedule(entry[1])  # type: ignore[arg-type]
            except (KeyError, OSError):
                pass  # the medium went away first
        with self._lock:
            for k in [k for k, p in self._pending.items() if p.place.path == path]:
                del self._pending[k]

    def retry_unwatched(self) -> None:
        """Try again to watch places that could not be watched (created later, limit raised)."""
        for path, (place, handle) in list(self._watches.items()):
            if handle is None and path.is_dir():
                del self._watches[path]
                self.add(place)

    # -- hints -------------------------------------------------------------------------------
    def hint(self, path: str | bytes | os.PathLike[str], place: Place, closed: bool = False) -> None:
        """Mark a file as changed (also for tests and other event sources)."""
        key = os.fsdecode(path)
        now = time.monotonic()
        with self._lock:
            p = self._pending.get(key)
            if p is None:
                self._pending[key] = _Pending(place, closed, None, now)
            else:
                p.closed = closed
                p.since = now
                p.sig = None
        self._wake.set()  # the debounce thread sleeps while nothing is pending

    def request_rescan(self, place: Place) -> None:
        with self._lock:
            self._rescans.append(place)
        self._wake.set()

    def _event(self, place: Place, ev: FileSystemEvent) -> None:
        if isinstance(ev, EventsLostEvent):
            self.on_problem(WatchProblem("overflow", place, "inotify queue overflowed: events lost"))
            self.request_rescan(place)
            return
        if ev.is_directory:
            if ev.event_type in ("created", "moved"):
                # A directory moved or copied in: its files may predate the new watches.
                target = ev.dest_path if ev.event_type == "moved" else ev.src_path
                for f in _files_under(os.fsdecode(target)):
                    self.hint(f, place)
            return
        if isinstance(ev, FileMovedEvent):
            dest = os.fsdecode(ev.dest_path)
            if dest == str(place.path) or dest.startswith(str(place.path) + os.sep):
                self.hint(dest, place)  # moved within or into the place (out of it: not ours)
        elif isinstance(ev, FileClosedEvent):
            self.hint(ev.src_path, place, closed=True)
        elif isinstance(ev, (FileCreatedEvent, FileModifiedEvent)):
            self.hint(ev.src_path, place)

    def _limit_hit(self, detail: str) -> None:
        for path, (place, _h) in list(self._watches.items()):
            if path not in self._limit_reported and detail.find(os.fsdecode(path)) >= 0:
                self._limit_reported.add(path)
                self.on_problem(WatchProblem("watch_limit", place, detail[:300]))
                self.request_rescan(place)

    # -- stability ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                idle = not self._pending and not self._rescans
            # Idle: sleep until a hint arrives (no polling); busy: re-check stability every tick.
            if idle:
                self._wake.wait()
            else:
                self._wake.wait(self.tick)
            self._wake.clear()
            try:
                self._settle()
                with self._lock:
                    rescans, self._rescans = self._rescans, []
                for place in dict.fromkeys(rescans):
                    self._rescan_place(place)
            except Exception:  # noqa: BLE001 - the debounce thread must survive a callback bug
                log.exception("debounce loop failed")

    def _settle(self) -> None:
        now = time.monotonic()
        with self._lock:
            items = list(self._pending.items())
        ready: list[tuple[str, Place]] = []
        for key, p in items:
            try:
                st = os.stat(key, follow_symlinks=False)
                sig: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
            except OSError:
                sig = None  # vanished (moved on, deleted): nothing left to scan
            with self._lock:
                cur = self._pending.get(key)
                if cur is not p:
                    continue  # re-hinted meanwhile
                if sig is None:
                    del self._pending[key]
                    continue
                if p.closed or (p.sig == sig and now - p.since >= self.debounce):
                    del self._pending[key]
                    ready.append((key, p.place))
                elif p.sig != sig:
                    p.sig, p.since = sig, now
        for key, place in ready:
            self._emit(Path(key), place)

    def _emit(self, path: Path, place: Place) -> None:
        try:
            self.on_file(path, place)
        except Exception:  # noqa: BLE001 - one bad callback must not stop the others
            log.exception("file callback failed for %s", path)

    def _rescan_place(self, place: Place) -> None:
        for f in _files_under(str(place.path)):
            self._emit(Path(f), place)

    def rescan(self, places: list[Place] | None = None) -> int:
        """Hand every regular file of the places (default: all) to `on_file`; returns the count.
        The caller's cache makes unchanged files cheap."""
        n = 0
        for place in places if places is not None else self.places:
            for f in _files_under(str(place.path)):
                self._emit(Path(f), place)
                n += 1
        return n

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)


def _files_under(root: str) -> Iterator[str]:
    """Regular files under `root`, symlinks not followed, unreadable directories skipped."""
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
                        elif e.is_file(follow_symlinks=False):
                            yield e.path
                    except OSError:
                        continue
        except OSError:
            continue
