"""Worker processes that scan files with a hard per-file deadline and a memory cap.

yara-python timeouts are soft and a C parser can hang or balloon, so every file is scanned in a
worker process: a worker past its deadline is killed (`timeout` error record) and replaced; a
worker that dies (segfault, OOM) yields a `crash` error record for the file it held. Workers are
forked once (after the extractors and rules are loaded, so they share them) and reused. Tasks go
out and results come back in batches (one pipe message for up to 64 files, about 20 ms of work;
two batches queued per worker so that none waits for the parent); each worker publishes in
shared memory which file it is scanning since when, so the deadline and the blame for a hang or a
crash still apply to that one file, and the rest of its batch is handed to another worker.
"""
from __future__ import annotations

import collections
import ctypes
import dataclasses
import itertools
import multiprocessing as mp
import os
import resource
import selectors
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from scanner import ocr
from scanner.config import PoolOptions, ScanConfig
from scanner.engine import Scanner
from scanner.extractors.registry import extractors
from scanner.model import SCHEMA_VERSION, ErrorCode, FileResult, ScanError

Task = tuple[int, str, str]  # (index, path to open, path as displayed)
#: Tasks handed to a worker at once (their results come back in one message): a worker's first
#: batch, and the bounds of the next ones, sized to take about BATCH_SECONDS each by the time its
#: last batch took per file — few messages for small text files, few files behind a slow
#: document (at the end of a scan, no worker sits on a long queue while the others idle).
BATCH, MIN_BATCH, MAX_BATCH = 8, 2, 64
BATCH_SECONDS = 0.02
#: Batches kept in each worker's pipe: it finds the next one there when it finishes one, however
#: late the parent (sharing the cores with the workers) gets to run.
DEPTH = 2


def cap_memory(max_memory: int) -> int:
    """Cap this process's address space at `max_memory` bytes, or at the hard limit it already
    has when that is lower (a hard limit cannot be raised: asking for more would fail and leave
    no cap at all). The cap applied."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = max_memory if hard == resource.RLIM_INFINITY else min(max_memory, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))  # lowering is always allowed
    return cap


#: Open files a worker may hold: a parser needs a handful; a hostile one opening thousands gets
#: EMFILE (an error record for its file) instead of exhausting the machine's descriptors.
MAX_OPEN_FILES = 256
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000


@dataclasses.dataclass(frozen=True)
class Confinement:
    """What `confine` managed to apply in this worker (see docs/security.md)."""

    open_files: int
    #: RLIMIT_FSIZE 0: writing a byte to any regular file fails (EFBIG); creating an empty file,
    #: a directory, renaming or deleting is NOT prevented by it.
    no_file_writes: bool
    #: The worker's private, empty temporary directory (TMPDIR), removed when it exits.
    tmpdir: str
    #: In a network namespace of its own (no interface but a down loopback): nothing to reach.
    no_network: bool


def _unshare_net() -> bool:
    """A network namespace of our own: as root directly, else through a user namespace where
    the kernel allows unprivileged ones. False when neither works (the worker keeps the network)."""
    libc = ctypes.CDLL(None, use_errno=True)
    flags = [_CLONE_NEWNET] if os.geteuid() == 0 else [_CLONE_NEWUSER | _CLONE_NEWNET]
    return any(libc.unshare(f) == 0 for f in flags)


def confine(tmp: str | None = None) -> Confinement:
    """Limit what a worker parsing hostile bytes can do beyond returning a record. Called once in
    each forked worker; the parent (audit log, cache, results) is untouched."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(MAX_OPEN_FILES, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    tmp = tmp or tempfile.mkdtemp(prefix="baomi-worker-")
    os.environ["TMPDIR"] = tmp
    tempfile.tempdir = tmp
    # A write past RLIMIT_FSIZE raises SIGXFSZ (fatal by default): ignored, it becomes EFBIG.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        no_writes = True
    except (ValueError, OSError):
        no_writes = False
    return Confinement(nofile, no_writes, tmp, _unshare_net())


def _worker(conn: Connection, scanner: Scanner, max_memory: int, progress: Any, tmp: str) -> None:
    """Scan batches of files. `progress` (shared memory: task index, start time) tells the parent
    which file is being scanned since when, so results can travel per batch while the deadline
    and the blame for a hang or a crash still apply to the one file."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the scan ends
    if max_memory:
        cap_memory(max_memory)
    confine(tmp)  # its temporary directory is removed by the parent, also after a kill
    _serve(conn, scanner, progress)


def _serve(conn: Connection, scanner: Scanner, progress: Any) -> None:
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        out: list[tuple[int, Any]] = []
        append, now, scan = out.append, time.monotonic, scanner.scan_path  # per file: no lookups
        began = now()
        for idx, path, display in batch:
            progress[1] = now()  # start first, then the index: the parent reads the index first
            progress[0] = idx
            try:
                res = scan(path, display)
                if not res.findings and not res.errors and not res.extra:
                    # A clean file travels as a small tuple; the parent rebuilds its record.
                    append((idx, (res.size, res.mime, res.sha256)))
                    continue
                rec = res.to_record()
            except MemoryError:
                rec = FileResult(display, errors=(ScanError(ErrorCode.TOO_LARGE, "out of memory"),)).to_record()
            except Exception as exc:  # a bug must cost one file, not the scan
                rec = FileResult(display, errors=(ScanError(ErrorCode.CRASH, f"{type(exc).__name__}: {exc}"[:300]),)
                                 ).to_record()
            out.append((idx, rec))
        progress[0] = -1
        try:
            conn.send((time.monotonic() - began, out))
        except (OSError, ValueError):
            return


def _clean_record(display: str, size: int | None, mime: str | None, sha256: str | None) -> dict[str, Any]:
    rec: dict[str, Any] = {"schema": SCHEMA_VERSION, "path": display, "level": None, "findings": [], "errors": []}
    if size is not None:
        rec["size"] = size
    if mime:
        rec["mime"] = mime
    if sha256:
        rec["sha256"] = sha256
    return rec


class _Slot:
    def __init__(self, ctx: Any, scanner: Scanner, opts: PoolOptions) -> None:
        self.parent, child = ctx.Pipe(duplex=True)
        self.progress = ctx.RawArray("d", 2)
        self.progress[0] = -1
        self.tmp = tempfile.mkdtemp(prefix="baomi-worker-")
        self.proc = ctx.Process(target=_worker, args=(child, scanner, opts.max_memory, self.progress, self.tmp),
                                daemon=True)
        self.proc.start()
        child.close()
        self.tasks: dict[int, Task] = {}
        self.batches = 0  # batches sent whose results have not come back
        self.batch = BATCH  # the size of its next batch

    def current(self) -> tuple[int | None, float]:
        """(index of the file being scanned, its start time), or (None, 0) between batches."""
        idx = int(self.progress[0])
        return (None, 0.0) if idx < 0 or idx not in self.tasks else (idx, self.progress[1])

    def kill(self) -> None:
        try:
            self.proc.kill()
        except Exception:
            pass
        self.proc.join(5)
        self.parent.close()
        self.cleanup()

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class WorkerPool:
    """`for idx, record in pool.run(tasks)`: records in completion order."""

    def __init__(self, config: ScanConfig, opts: PoolOptions | None = None) -> None:
        self.opts = opts or PoolOptions()
        self.jobs = self.opts.jobs or (os.cpu_count() or 1) + 1
        if config.ocr_budget is not None:  # each worker spends its share of the scan's OCR budget
            config = dataclasses.replace(config, ocr_budget=config.ocr_budget / self.jobs)
        # Load rules and every extractor module before forking: workers inherit them.
        self.scanner = Scanner(config)
        extractors()
        self._ctx = mp.get_context("fork")

    def _spawn(self) -> _Slot:
        return _Slot(self._ctx, self.scanner, self.opts)

    def run(self, tasks: Iterable[Task], on_clean: Callable[[int], None] | None = None
            ) -> Iterator[tuple[int, dict[str, Any]]]:
        """With `on_clean`, files found clean (no finding, no error) are not yielded, only
        counted through `on_clean(n)`: a caller that prints the others pays nothing per clean file."""
        it = iter(tasks)
        requeued: collections.deque[Task] = collections.deque()
        exhausted = False
        timeout = self.opts.timeout

        def take(n: int) -> list[Task]:
            nonlocal exhausted
            out: list[Task] = []
            while len(out) < n and requeued:
                out.append(requeued.popleft())
            if len(out) < n and not exhausted:
                out.extend(itertools.islice(it, n - len(out)))
                exhausted = len(out) < n
            return out

        # The first batches decide what the workers inherit: Pillow imported once here, not in
        # every worker, when they will pre-check images (a name hint; files are typed by content).
        requeued.extend(take(BATCH * DEPTH * self.jobs))
        if self.scanner.ocr.mode is not ocr.OcrMode.OFF and any(
                t[1].lower().endswith(ocr.IMAGE_SUFFIXES) for t in requeued):
            ocr.preload()
        slots = [self._spawn() for _ in range(self.jobs)]
        sel = selectors.DefaultSelector()  # one selector for the whole run, not one per wait

        def watch(i: int, slot: _Slot) -> None:
            # The pipe says "a result is ready" (or EOF), the sentinel "the worker is gone".
            sel.register(slot.parent.fileno(), selectors.EVENT_READ, (i, True))
            sel.register(slot.proc.sentinel, selectors.EVENT_READ, (i, False))

        def replace(i: int) -> None:
            old = slots[i]
            for fd in (old.parent.fileno(), old.proc.sentinel):
                try:
                    sel.unregister(fd)
                except (KeyError, ValueError, OSError):
                    pass
            old.kill()
            slots[i] = self._spawn()
            watch(i, slots[i])

        def fail(i: int, code: ErrorCode, detail: str, idx: int | None) -> tuple[int, dict[str, Any]]:
            """Blame the file being scanned (or the first outstanding one); the rest go on elsewhere."""
            s = slots[i]
            if idx is None:
                idx = next(iter(s.tasks))
            task = s.tasks.pop(idx)
            requeued.extendleft(reversed(list(s.tasks.values())))
            s.tasks.clear()
            replace(i)
            return idx, FileResult(task[2], errors=(ScanError(code, detail),)).to_record()

        def results(s: _Slot, msg: tuple[float, list[tuple[int, Any]]]) -> Iterator[tuple[int, dict[str, Any]]]:
            took, batch = msg
            s.batches -= 1
            if batch:
                s.batch = max(MIN_BATCH, min(MAX_BATCH, int(BATCH_SECONDS * len(batch) / max(took, 1e-6))))
            pop = s.tasks.pop
            clean = 0
            for idx, rec in batch:
                task = pop(idx)
                if type(rec) is tuple:
                    if on_clean is not None:
                        clean += 1
                        continue
                    rec = _clean_record(task[2], *rec)
                yield idx, rec
            if clean and on_clean is not None:
                on_clean(clean)

        def died(i: int) -> tuple[int, dict[str, Any]]:
            s = slots[i]
            idx, _ = s.current()
            s.proc.join(0.5)  # its pipe closed as it exited: let it be reaped for the exit code
            return fail(i, ErrorCode.CRASH, f"worker died (exit {s.proc.exitcode})", idx)

        for i, slot in enumerate(slots):
            watch(i, slot)
        try:
            while True:
                for depth in range(1, DEPTH + 1):  # round by round: a short run is shared by all
                    for s in slots:
                        if s.batches >= depth:
                            continue
                        batch = take(s.batch)
                        if not batch:
                            break
                        try:
                            s.parent.send(batch)
                        except (OSError, ValueError):
                            requeued.extendleft(reversed(batch))
                            continue  # the dead worker is noticed below
                        s.batches += 1
                        s.tasks.update((t[0], t) for t in batch)
                busy = [s for s in slots if s.tasks]
                if not busy:
                    return
                now = time.monotonic()
                starts = [st for s in busy for idx, st in [s.current()] if idx is not None]
                wait_for = min([timeout] + [max(0.0, st + timeout - now) for st in starts]) + 0.01
                ready = sel.select(timeout=min(wait_for, 1.0))
                gone = set()
                for key, _ in ready:
                    i, is_pipe = key.data
                    s = slots[i]
                    if not is_pipe or not s.tasks or i in gone:
                        continue
                    try:
                        # One message per wake-up: epoll is level-triggered, a second one queued
                        # behind it wakes the next select at once (no poll() per message, which
                        # builds a selector each time).
                        batch = s.parent.recv()
                    except (EOFError, OSError):
                        gone.add(i)
                        yield died(i)
                        continue
                    yield from results(s, batch)
                for key, _ in ready:
                    i, is_pipe = key.data
                    s = slots[i]
                    if is_pipe or i in gone:
                        continue
                    if not s.tasks:  # an idle worker gone (an OOM killer's pick): a fresh one
                        gone.add(i)
                        replace(i)
                        continue
                    # The worker exited: results it sent before are still in its pipe.
                    try:
                        while s.tasks and s.parent.poll():
                            yield from results(s, s.parent.recv())
                    except (EOFError, OSError):
                        pass
                    if s.tasks:
                        gone.add(i)
                        yield died(i)
                now = time.monotonic()
                for i, s in enumerate(slots):
                    if i in gone or not s.tasks:
                        continue
                    idx, started = s.current()
                    if idx is not None and now - started >= timeout:
                        yield fail(i, ErrorCode.TIMEOUT, f"no result within {timeout:g} s", idx)
        finally:
            sel.close()
            for s in slots:
                try:
                    s.parent.send(None)
                except (OSError, ValueError):
                    pass
            for s in slots:
                s.proc.join(0.5)
                if s.proc.is_alive():
                    s.kill()
                s.cleanup()
