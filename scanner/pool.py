"""Worker processes that scan files with a hard per-file deadline and a memory cap.

yara-python timeouts are soft and a C parser can hang or balloon, so every file is scanned in a
worker process: a worker past its deadline is killed (`timeout` error record) and replaced; a
worker that dies (segfault, OOM) yields a `crash` error record for the file it held. Workers are
forked once and reused, so per-file overhead is one pipe round trip.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import resource
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Iterable, Iterator

from scanner.engine import ScanConfig, Scanner
from scanner.model import ErrorCode, FileResult, ScanError

Task = tuple[int, str, str]  # (index, path to open, path as displayed)


@dataclass(frozen=True)
class PoolOptions:
    jobs: int = 0  # 0: all cores
    timeout: float = 60.0  # seconds per top-level file
    max_memory: int = 3 * 1024 ** 3  # address space per worker (bytes); 0: unlimited


def _worker(conn: Connection, config: ScanConfig, max_memory: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the scan ends
    if max_memory:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))
        except (ValueError, OSError):
            pass
    scanner = Scanner(config)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        idx, path, display = task
        try:
            rec = scanner.scan_path(path, display).to_record()
        except MemoryError:
            rec = FileResult(display, errors=(ScanError(ErrorCode.TOO_LARGE, "out of memory"),)).to_record()
        except Exception as exc:  # a bug must cost one file, not the scan
            rec = FileResult(display, errors=(ScanError(ErrorCode.CRASH, f"{type(exc).__name__}: {exc}"[:300]),)
                             ).to_record()
        try:
            conn.send((idx, rec))
        except (OSError, ValueError):
            return


class _Slot:
    def __init__(self, ctx: Any, config: ScanConfig, opts: PoolOptions) -> None:
        self.parent, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker, args=(child, config, opts.max_memory), daemon=True)
        self.proc.start()
        child.close()
        self.task: Task | None = None
        self.deadline = 0.0

    def kill(self) -> None:
        try:
            self.proc.kill()
        except Exception:
            pass
        self.proc.join(5)
        self.parent.close()


class WorkerPool:
    """`for idx, record in pool.run(tasks)`: records in completion order."""

    def __init__(self, config: ScanConfig, opts: PoolOptions | None = None) -> None:
        self.config = config
        self.opts = opts or PoolOptions()
        self.jobs = self.opts.jobs or os.cpu_count() or 1
        # fork: workers inherit the loaded modules; the rules are compiled (or loaded from the
        # on-disk cache) once in the parent first so workers find the cache warm.
        Scanner(config)
        self._ctx = mp.get_context("fork")

    def run(self, tasks: Iterable[Task]) -> Iterator[tuple[int, dict[str, Any]]]:
        it = iter(tasks)
        slots = [_Slot(self._ctx, self.config, self.opts) for _ in range(self.jobs)]
        pending = True
        try:
            while True:
                for i, s in enumerate(slots):
                    if s.task is None and pending:
                        try:
                            task = next(it)
                        except StopIteration:
                            pending = False
                            break
                        try:
                            s.parent.send(task)
                        except (OSError, ValueError):
                            s.kill()
                            slots[i] = s = _Slot(self._ctx, self.config, self.opts)
                            s.parent.send(task)
                        s.task, s.deadline = task, time.monotonic() + self.opts.timeout
                busy = [s for s in slots if s.task is not None]
                if not busy:
                    return
                now = time.monotonic()
                wait_for = max(0.0, min(s.deadline for s in busy) - now)
                ready = wait([s.parent for s in busy] + [s.proc.sentinel for s in busy], timeout=wait_for)
                for i, s in enumerate(slots):
                    if s.task is None:
                        continue
                    if s.parent in ready:
                        try:
                            idx, rec = s.parent.recv()
                        except (EOFError, OSError):
                            yield self._failed(s, ErrorCode.CRASH, "worker died")
                            slots[i] = _Slot(self._ctx, self.config, self.opts)
                            continue
                        s.task = None
                        yield idx, rec
                    elif s.proc.sentinel in ready or not s.proc.is_alive():
                        yield self._failed(s, ErrorCode.CRASH, f"worker died (exit {s.proc.exitcode})")
                        slots[i] = _Slot(self._ctx, self.config, self.opts)
                    elif time.monotonic() >= s.deadline:
                        yield self._failed(s, ErrorCode.TIMEOUT, f"no result within {self.opts.timeout:g} s")
                        slots[i] = _Slot(self._ctx, self.config, self.opts)
        finally:
            for s in slots:
                try:
                    s.parent.send(None)
                except (OSError, ValueError):
                    pass
            for s in slots:
                s.proc.join(0.5)
                if s.proc.is_alive():
                    s.kill()

    @staticmethod
    def _failed(slot: _Slot, code: ErrorCode, detail: str) -> tuple[int, dict[str, Any]]:
        assert slot.task is not None
        idx, _path, display = slot.task
        slot.kill()
        slot.task = None
        return idx, FileResult(display, errors=(ScanError(code, detail),)).to_record()
