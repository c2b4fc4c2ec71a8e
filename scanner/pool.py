"""Worker processes that scan files with a hard per-file deadline and a memory cap.

yara-python timeouts are soft and a C parser can hang or balloon, so every file is scanned in a
worker process: a worker past its deadline is killed (`timeout` error record) and replaced; a
worker that dies (segfault, OOM) yields a `crash` error record for the file it held. Workers are
forked once (after the extractors and rules are loaded, so they share them) and reused; tasks go
out in small batches and results come back one by one, so per-file overhead is a fraction of a
pipe round trip and the deadline still applies to each file.
"""
from __future__ import annotations

import collections
import dataclasses
import multiprocessing as mp
import os
import resource
import selectors
import signal
import time
from collections.abc import Iterable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from scanner.config import PoolOptions, ScanConfig
from scanner.engine import Scanner
from scanner.extractors.registry import extractors
from scanner.model import SCHEMA_VERSION, ErrorCode, FileResult, ScanError

Task = tuple[int, str, str]  # (index, path to open, path as displayed)
#: Tasks handed to a worker at once (results still come back per file).
BATCH = 16


def _worker(conn: Connection, scanner: Scanner, max_memory: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the scan ends
    if max_memory:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))
        except (ValueError, OSError):
            pass
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        for idx, path, display in batch:
            try:
                res = scanner.scan_path(path, display)
                if not res.findings and not res.errors and not res.extra:
                    # A clean file travels as a small tuple; the parent rebuilds its record.
                    conn.send((idx, (res.size, res.mime, res.sha256)))
                    continue
                rec = res.to_record()
            except MemoryError:
                rec = FileResult(display, errors=(ScanError(ErrorCode.TOO_LARGE, "out of memory"),)).to_record()
            except Exception as exc:  # a bug must cost one file, not the scan
                rec = FileResult(display, errors=(ScanError(ErrorCode.CRASH, f"{type(exc).__name__}: {exc}"[:300]),)
                                 ).to_record()
            try:
                conn.send((idx, rec))
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
        self.proc = ctx.Process(target=_worker, args=(child, scanner, opts.max_memory), daemon=True)
        self.proc.start()
        child.close()
        self.tasks: collections.deque[Task] = collections.deque()
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

    def run(self, tasks: Iterable[Task]) -> Iterator[tuple[int, dict[str, Any]]]:
        it = iter(tasks)
        requeued: collections.deque[Task] = collections.deque()
        slots = [self._spawn() for _ in range(self.jobs)]
        exhausted = False

        def take(n: int) -> list[Task]:
            nonlocal exhausted
            out: list[Task] = []
            while len(out) < n and requeued:
                out.append(requeued.popleft())
            while len(out) < n and not exhausted:
                try:
                    out.append(next(it))
                except StopIteration:
                    exhausted = True
            return out

        sel = selectors.DefaultSelector()  # one selector for the whole run, not one per wait

        def watch(i: int, slot: _Slot) -> None:
            sel.register(slot.parent.fileno(), selectors.EVENT_READ, i)
            sel.register(slot.proc.sentinel, selectors.EVENT_READ, i)

        def replace(i: int) -> _Slot:
            old = slots[i]
            for fd in (old.parent.fileno(), old.proc.sentinel):
                try:
                    sel.unregister(fd)
                except (KeyError, ValueError, OSError):
                    pass
            old.kill()
            slots[i] = self._spawn()
            watch(i, slots[i])
            return slots[i]

        for i, slot in enumerate(slots):
            watch(i, slot)
        try:
            while True:
                for s in slots:
                    # Keep a second batch queued in the pipe so a worker never waits for the parent.
                    if len(s.tasks) <= BATCH // 2:
                        batch = take(BATCH)
                        if batch:
                            if not s.tasks:
                                s.deadline = time.monotonic() + self.opts.timeout
                            try:
                                s.parent.send(batch)
                            except (OSError, ValueError):
                                requeued.extendleft(reversed(batch))
                                continue  # the dead worker is noticed below
                            s.tasks.extend(batch)
                busy = [s for s in slots if s.tasks]
                if not busy:
                    return
                wait_for = max(0.0, min(s.deadline for s in busy) - time.monotonic())
                ready = {key.data for key, _ in sel.select(timeout=wait_for)}
                for i, s in enumerate(slots):
                    if not s.tasks:
                        continue
                    failed: tuple[ErrorCode, str] | None = None
                    if i in ready:
                        try:
                            while s.tasks and s.parent.poll():
                                idx, rec = s.parent.recv()
                                task = s.tasks.popleft()
                                s.deadline = time.monotonic() + self.opts.timeout
                                if isinstance(rec, tuple):
                                    rec = _clean_record(task[2], *rec)
                                yield idx, rec
                            if s.proc.is_alive() or not s.tasks:
                                continue
                            failed = (ErrorCode.CRASH, f"worker died (exit {s.proc.exitcode})")
                        except (EOFError, OSError):
                            failed = (ErrorCode.CRASH, f"worker died (exit {s.proc.exitcode})")
                    elif time.monotonic() >= s.deadline:
                        failed = (ErrorCode.TIMEOUT, f"no result within {self.opts.timeout:g} s")
                    if failed is not None:
                        yield self._failed(s, *failed)
                        requeued.extendleft(reversed(s.tasks))  # the rest of its batch goes on elsewhere
                        s.tasks.clear()
                        replace(i)
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

    @staticmethod
    def _failed(slot: _Slot, code: ErrorCode, detail: str) -> tuple[int, dict[str, Any]]:
        idx, _path, display = slot.tasks.popleft()
        return idx, FileResult(display, errors=(ScanError(code, detail),)).to_record()
