"""agents/watch.py on real inotify: stable files only, storms coalesced, moves, overflow and watch
limits reported and answered with a rescan."""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_helpers import wait_for
from watchdog.events import EventsLostEvent

from agents.watch import FolderWatcher, Place, WatchProblem


class Sink:
    def __init__(self) -> None:
        self.files: list[tuple[Path, Place, float]] = []
        self.problems: list[WatchProblem] = []
        self.lock = threading.Lock()

    def on_file(self, path: Path, place: Place) -> None:
        with self.lock:
            self.files.append((path, place, time.monotonic()))

    def on_problem(self, p: WatchProblem) -> None:
        self.problems.append(p)

    def names(self) -> list[str]:
        with self.lock:
            return [p.name for p, _, _ in self.files]


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[FolderWatcher, Sink, Place]]:
    sink = Sink()
    w = FolderWatcher(sink.on_file, sink.on_problem, debounce=0.3)
    out = tmp_path / "Outbox"
    out.mkdir()
    place = Place(out, "mail_outbox", "mail")
    w.start()
    assert w.add(place)
    try:
        yield w, sink, place
    finally:
        w.stop()


def test_file_still_being_written_is_not_handed_on_half_way(watched: tuple[FolderWatcher, Sink, Place]) -> None:
    w, sink, place = watched
    w.debounce = 1.0  # writes every 0.2 s: a wide margin on a loaded machine
    fd = os.open(place.path / "big.bin", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(12):  # 2.4 s of writing, well past the debounce, the file never stable
            os.write(fd, b"x" * 4096)
            time.sleep(0.2)
            assert "big.bin" not in sink.names()
    finally:
        os.close(fd)
    assert wait_for(lambda: "big.bin" in sink.names(), 5)
    time.sleep(0.5)
    assert sink.names().count("big.bin") == 1


def test_close_after_write_is_handed_on_without_waiting(watched: tuple[FolderWatcher, Sink, Place]) -> None:
    w, sink, place = watched
    w.debounce = 3.0
    t0 = time.monotonic()
    (place.path / "a.txt").write_bytes(b"hello")
    assert wait_for(lambda: sink.names(), 5) == ["a.txt"]
    assert sink.files[0][2] - t0 < 1.5  # closed: not held for the 3 s debounce


def test_storm_of_rewrites_is_coalesced(watched: tuple[FolderWatcher, Sink, Place]) -> None:
    w, sink, place = watched
    w.debounce = 1.0  # long enough that all rewrites land while the first is pending
    p = place.path / "storm.txt"
    with open(p, "wb") as fh:
        for i in range(500):
            fh.write(b"line %d\n" % i)
            fh.flush()
    assert wait_for(lambda: sink.names(), 5)
    time.sleep(0.6)
    assert sink.names() == ["storm.txt"]


def test_moved_in_file_and_directory(watched: tuple[FolderWatcher, Sink, Place], tmp_path: Path) -> None:
    w, sink, place = watched
    (tmp_path / "elsewhere.txt").write_bytes(b"moved")
    os.rename(tmp_path / "elsewhere.txt", place.path / "moved.txt")
    d = tmp_path / "bundle"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "inner.txt").write_bytes(b"inner")
    os.rename(d, place.path / "bundle")
    assert wait_for(lambda: {"moved.txt", "inner.txt"} <= set(sink.names()), 5)


def test_overflow_is_reported_and_answered_by_a_rescan(watched: tuple[FolderWatcher, Sink, Place]) -> None:
    w, sink, place = watched
    # Files that arrived while events were lost: the kernel told us nothing about them.
    w.remove(place.path)
    for i in range(3):
        (place.path / f"lost{i}.txt").write_bytes(b"x")
    w.add(place)
    handler = next(iter(w._observer._handlers.values()))  # the dispatch path watchdog uses
    for h in handler:
        h.dispatch(EventsLostEvent(str(place.path), is_directory=True))
    assert wait_for(lambda: {"lost0.txt", "lost1.txt", "lost2.txt"} <= set(sink.names()), 5)
    assert [p.kind for p in sink.problems] == ["overflow"]


def test_exhausted_watch_limit_is_reported(watched: tuple[FolderWatcher, Sink, Place]) -> None:
    w, sink, place = watched
    (place.path / "old.txt").write_bytes(b"x")
    sink.files.clear()
    # What watchdog logs when a subdirectory cannot be watched (ENOSPC) while running.
    logging.getLogger("watchdog.observers.inotify").warning(
        "Unable to watch %r: %s", os.fsencode(place.path / "deep"), OSError(28, "inotify watch limit reached"))
    assert wait_for(lambda: sink.problems, 2)
    assert sink.problems[0].kind == "watch_limit"
    assert wait_for(lambda: "old.txt" in sink.names(), 5)  # the rescan


def test_missing_folder_is_reported_and_watched_once_created(tmp_path: Path) -> None:
    sink = Sink()
    w = FolderWatcher(sink.on_file, sink.on_problem, debounce=0.1)
    w.start()
    try:
        place = Place(tmp_path / "later", "im_transfer", "im")
        assert not w.add(place)
        assert sink.problems[0].kind == "error"
        place.path.mkdir()
        w.retry_unwatched()
        (place.path / "f.txt").write_bytes(b"x")
        assert wait_for(lambda: sink.names() == ["f.txt"], 5)
    finally:
        w.stop()


def test_callback_exception_does_not_stop_the_watcher(tmp_path: Path) -> None:
    seen: list[str] = []

    def bad(path: Path, place: Place) -> None:
        seen.append(path.name)
        if path.name == "boom.txt":
            raise RuntimeError("callback bug")

    w = FolderWatcher(bad, lambda p: None, debounce=0.1)
    w.start()
    try:
        w.add(Place(tmp_path, "mail_outbox", "mail"))
        (tmp_path / "boom.txt").write_bytes(b"x")
        assert wait_for(lambda: "boom.txt" in seen, 5)
        (tmp_path / "after.txt").write_bytes(b"x")
        assert wait_for(lambda: "after.txt" in seen, 5)
    finally:
        w.stop()


def test_rescan_lists_every_regular_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "1.txt").write_bytes(b"1")
    (tmp_path / "2.txt").write_bytes(b"2")
    os.symlink("/etc/passwd", tmp_path / "link")
    sink = Sink()
    w = FolderWatcher(sink.on_file, sink.on_problem)
    w._watches[tmp_path] = (Place(tmp_path, "local_disk"), None)
    assert w.rescan() == 2
    assert sorted(sink.names()) == ["1.txt", "2.txt"]
