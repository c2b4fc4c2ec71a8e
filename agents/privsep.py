"""Privilege separation for the agent: root opens, an unprivileged worker parses.

Where the agent runs as root (it must: it watches every user's outgoing folders and seals files
into the vault), parsing hostile documents as root is the risk. So:

- the privileged part (`ScanBroker`, in the daemon) only opens each file — `O_NOFOLLOW`, so a
  symlink planted in a watched folder cannot point it at `/etc/shadow` — checks it is a regular
  file and hands the open descriptor to a worker over a Unix socket (`SCM_RIGHTS`);
- each worker is a long-lived process (a warm scanner, no interpreter per file) that, before it
  reads any document, leaves the network (a new, empty network namespace), caps its address
  space, open files and core dumps, lowers its CPU and IO priority, drops every group and its
  uid to an unprivileged account, and sets no-new-privileges; it can read only the descriptors
  it is handed;
- the number of workers is the cap on concurrent scans; a worker past the per-file deadline is
  killed and replaced (`timeout` record), one that dies yields a `crash` record; answers come
  back as JSON (never pickle: the parent must not execute what a compromised worker sends).

Site keywords reach the worker through an anonymous memory file (never written to disk), and
the worker compiles its rules before it drops privileges.

    broker = ScanBroker(user="nobody", workers=2)
    broker.scan_path("/home/u/Outbox/a.docx").to_record()   # same record as Scanner.scan_path
"""
from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import pwd
import queue
import resource
import socket
import stat
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("baomi.agent.privsep")

_ENV = "BAOMI_PRIVSEP"
_HDR = struct.Struct(">I")
#: Largest answer accepted from a worker (a record with many findings is far smaller).
MAX_REPLY = 16 * 1024 * 1024
_CLONE_NEWNET = 0x40000000
_PR_SET_NO_NEW_PRIVS = 38


@dataclass(frozen=True)
class WorkerLimits:
    """What confines a scan worker."""

    #: Account the workers run as when the agent is root (None: stay as the agent's user).
    user: str | None = "nobody"
    #: Concurrent scans (= worker processes).
    workers: int = 2
    #: Address space per worker (bytes); 0: unlimited.
    max_memory: int = 2 * 1024 ** 3
    #: CPU seconds one file may use (RLIMIT_CPU, renewed per file) and wall-clock deadline.
    cpu_seconds: int = 60
    timeout: float = 120.0
    #: CPU niceness (0-19) and IO class (`idle`, `best-effort`, `none`) of the workers.
    nice: int = 10
    ionice: str = "idle"
    max_open_files: int = 64
    #: Leave the network (a new network namespace; needs root / CAP_SYS_ADMIN).
    isolate_network: bool = True


@dataclass(frozen=True)
class BrokerResult:
    """A worker's scan record, as `Scanner.scan_path(...).to_record()` gives it."""

    record: dict[str, Any]

    def to_record(self) -> dict[str, Any]:
        return self.record


class PrivsepError(RuntimeError):
    """A worker could not be started (bad account, cannot spawn)."""


def _error_record(path: str, code: str, detail: str) -> BrokerResult:
    from scanner.model import ErrorCode, FileResult, ScanError

    return BrokerResult(FileResult(path, errors=(ScanError(ErrorCode(code), detail),)).to_record())


# --------------------------------------------------------------------------- framing

def _send_msg(sock: socket.socket, obj: Any, fds: Sequence[int] = ()) -> None:
    body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    data = _HDR.pack(len(body)) + body
    # The descriptor travels with the first bytes of the message (ancillary data).
    sent = socket.send_fds(sock, [data], list(fds)) if fds else sock.send(data)
    if sent < len(data):
        sock.sendall(data[sent:])


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError("peer closed")
        buf += chunk
    return bytes(buf)


def _recv_msg(sock: socket.socket, *, with_fd: bool = False, limit: int = MAX_REPLY) -> tuple[Any, list[int]]:
    fds: list[int] = []
    if with_fd:
        head, fds, _flags, _addr = socket.recv_fds(sock, _HDR.size, 1)
        if not head:
            raise EOFError("peer closed")
        if len(head) < _HDR.size:
            head += _recv_exact(sock, _HDR.size - len(head))
    else:
        head = _recv_exact(sock, _HDR.size)
    (n,) = _HDR.unpack(head)
    if n > limit:
        for fd in fds:
            os.close(fd)
        raise ValueError(f"message of {n} bytes exceeds {limit}")
    return json.loads(_recv_exact(sock, n)), fds


# --------------------------------------------------------------------------- worker side

def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _leave_network() -> bool:
    """A new network namespace holds only a loopback interface that is down: no address at all
    is reachable. Needs CAP_SYS_ADMIN (root); False when not permitted."""
    if _libc().unshare(_CLONE_NEWNET) != 0:
        log.warning("worker keeps the host network: unshare(CLONE_NEWNET): %s", os.strerror(ctypes.get_errno()))
        return False
    return True


def _confine(settings: dict[str, Any]) -> dict[str, Any]:
    """Everything done to the worker before it reads a document; what was achieved."""
    from agents.daemon import set_niceness
    from scanner.pool import cap_memory

    facts: dict[str, Any] = {"net_isolated": False}
    if settings.get("isolate_network") and os.geteuid() == 0:
        facts["net_isolated"] = _leave_network()
    if settings.get("max_memory"):
        cap_memory(int(settings["max_memory"]))
    nofile = int(settings.get("max_open_files") or 64)
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file holding document text
    set_niceness(int(settings.get("nice", 10)), str(settings.get("ionice", "idle")))
    return facts


def _drop(uid: int | None, gid: int | None) -> None:
    if uid is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(gid if gid is not None else uid, gid if gid is not None else uid,
                     gid if gid is not None else uid)
        os.setresuid(uid, uid, uid)
        if os.geteuid() == 0 or os.getuid() == 0:
            raise PrivsepError("privileges were not dropped")
    # No setuid binary (or file capabilities) can give the worker privileges back.
    if _libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_NO_NEW_PRIVS) failed: %s", os.strerror(ctypes.get_errno()))


def worker_main() -> int:
    """Entry point of a worker process (`python -m agents.privsep`)."""
    settings = json.loads(os.environ.pop(_ENV))
    sock = socket.socket(fileno=int(settings["sock"]))
    facts = _confine(settings)
    from scanner.config import ScanConfig
    from scanner.engine import Scanner
    from scanner.extractors.base import Limits

    kw_fd = settings.get("keywords_fd")
    kwargs: dict[str, Any] = {"limits": Limits(max_file_size=int(settings["max_file_size"])),
                              "ocr_mode": settings.get("ocr_mode", "auto")}
    if kw_fd is not None:
        # Compiled from the memory file while still able to read it; never cached on disk.
        kwargs.update(keywords_file=f"/proc/self/fd/{kw_fd}", rules_cache="/dev/null/baomi-no-cache")
    scanner = Scanner(ScanConfig(**kwargs))
    if kw_fd is not None:
        os.close(int(kw_fd))
    # Every extractor and what it imports on first use, while the worker can still read the
    # interpreter's files (after the uid drop a lazy import could find them unreadable).
    scanner.warm_up()
    _drop(settings.get("uid"), settings.get("gid"))
    cpu = int(settings.get("cpu_seconds") or 0)
    _send_msg(sock, {"ready": True, "pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(),
                     "digest": scanner.config_digest, **facts})
    while True:
        try:
            req, fds = _recv_msg(sock, with_fd=True, limit=1 << 16)
        except (EOFError, OSError):
            return 0
        if not fds:
            _send_msg(sock, {"error": "no descriptor"})
            continue
        fd = fds[0]
        for extra in fds[1:]:
            os.close(extra)
        try:
            if cpu:
                used = resource.getrusage(resource.RUSAGE_SELF)
                spent = int(used.ru_utime + used.ru_stime) + 1
                _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
                # SIGXCPU (default: terminate) past this file's share: the broker reports a crash.
                resource.setrlimit(resource.RLIMIT_CPU, (spent + cpu, hard))
            record = scanner.scan_fd(fd, str(req.get("display", ""))).to_record()
        except Exception as exc:  # noqa: BLE001 - a scanner bug is this file's error record, not the worker's end
            record = _error_record(str(req.get("display", "")), "crash",
                                   f"{type(exc).__name__}: {exc}"[:300]).record
        finally:
            os.close(fd)
        _send_msg(sock, {"record": record})


# --------------------------------------------------------------------------- privileged side

class _Worker:
    def __init__(self, proc: subprocess.Popen[bytes], sock: socket.socket, info: dict[str, Any]):
        self.proc, self.sock, self.info = proc, sock, info

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.wait()
        self.sock.close()


class ScanBroker:
    """The privileged side: opens files and hands their descriptors to confined workers.

    `scan_path(path)` has the shape of `Scanner.scan_path` (an object with `to_record()`), so the
    daemon can use either; it blocks while all workers are busy (the concurrency cap)."""

    def __init__(self, limits: WorkerLimits | None = None, *, keywords: Sequence[str] = (),
                 max_file_size: int = 4 * 1024 ** 3, ocr_mode: str = "auto"):
        self.limits = limits or WorkerLimits()
        self.keywords = tuple(keywords)
        self.max_file_size = max_file_size
        self.ocr_mode = ocr_mode
        self.uid: int | None = None
        self.gid: int | None = None
        if self.limits.user is not None and os.geteuid() == 0:
            try:
                pw = pwd.getpwnam(self.limits.user)
            except KeyError:
                raise PrivsepError(f"no such account for scan workers: {self.limits.user!r}") from None
            if pw.pw_uid == 0:
                raise PrivsepError(f"scan workers must not run as root ({self.limits.user!r} is uid 0)")
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(max(1, self.limits.workers)):
            self._add(self._spawn())

    # -- workers ---------------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        kw_fd = None
        pass_fds = [child.fileno()]
        if self.keywords:
            kw_fd = os.memfd_create("baomi-keywords", 0)  # inherited by the worker, not on disk
            os.write(kw_fd, "\n".join(self.keywords).encode("utf-8"))
            pass_fds.append(kw_fd)
        lim = self.limits
        settings = {"sock": child.fileno(), "uid": self.uid, "gid": self.gid, "keywords_fd": kw_fd,
                    "max_memory": lim.max_memory, "cpu_seconds": lim.cpu_seconds, "nice": lim.nice,
                    "ionice": lim.ionice, "max_open_files": lim.max_open_files,
                    "isolate_network": lim.isolate_network, "max_file_size": self.max_file_size,
                    "ocr_mode": self.ocr_mode}
        env = {**os.environ, _ENV: json.dumps(settings)}
        try:
            proc = subprocess.Popen([sys.executable, "-m", "agents.privsep"], pass_fds=pass_fds, env=env,
                                    stdin=subprocess.DEVNULL, close_fds=True, cwd="/")
        except OSError as exc:
            parent.close()
            raise PrivsepError(f"cannot start a scan worker: {exc}") from None
        finally:
            child.close()
            if kw_fd is not None:
                os.close(kw_fd)
        parent.settimeout(120)  # imports and rule compilation
        try:
            info, _ = _recv_msg(parent, limit=1 << 16)
        except (EOFError, OSError, ValueError) as exc:
            proc.kill()
            proc.wait()
            parent.close()
            raise PrivsepError(f"scan worker did not start ({exc}); exit code {proc.poll()}") from None
        if not isinstance(info, dict) or not info.get("ready"):
            proc.kill()
            proc.wait()
            parent.close()
            raise PrivsepError("scan worker sent no ready message")
        if self.uid is not None and info.get("uid") != self.uid:
            proc.kill()
            proc.wait()
            parent.close()
            raise PrivsepError(f"scan worker runs as uid {info.get('uid')}, not {self.uid}")
        parent.settimeout(None)
        log.info("scan worker %d started (uid %s, network isolated: %s)", proc.pid, info.get("uid"),
                 info.get("net_isolated"))
        return _Worker(proc, parent, info)

    def _add(self, w: _Worker) -> None:
        with self._lock:
            self._all.append(w)
        self._idle.put(w)

    def _replace(self, w: _Worker) -> None:
        w.kill()
        with self._lock:
            if w in self._all:
                self._all.remove(w)
            closed = self._closed
        if not closed:
            try:
                self._add(self._spawn())
            except PrivsepError as exc:
                log.error("scan worker not replaced: %s", exc)

    @property
    def workers(self) -> list[dict[str, Any]]:
        """What each worker reported at start (pid, uid, gid, net_isolated, digest)."""
        with self._lock:
            return [dict(w.info) for w in self._all]

    @property
    def config_digest(self) -> str:
        ws = self.workers
        return str(ws[0].get("digest", "")) if ws else ""

    # -- scanning --------------------------------------------------------------------------------
    def scan_path(self, path: str, display: str | None = None) -> BrokerResult:
        shown = display if display is not None else str(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            return _error_record(shown, "skipped" if exc.errno == errno.ELOOP else "unreadable",
                                 exc.strerror or str(exc))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return _error_record(shown, "skipped", "not a regular file")
            return self._scan_fd(fd, shown)
        finally:
            os.close(fd)

    def _scan_fd(self, fd: int, shown: str) -> BrokerResult:
        for attempt in (1, 2):
            if self._closed:
                return _error_record(shown, "crash", "scan broker closed")
            try:
                w = self._idle.get(timeout=self.limits.timeout)
            except queue.Empty:
                return _error_record(shown, "timeout", "no scan worker free")
            try:
                os.lseek(fd, 0, os.SEEK_SET)
                _send_msg(w.sock, {"display": shown}, [fd])
            except OSError:
                # The worker died while idle (killed, OOM): not this file's fault; once more.
                self._replace(w)
                if attempt == 1:
                    continue
                return _error_record(shown, "crash", "scan worker unavailable")
            w.sock.settimeout(self.limits.timeout)
            try:
                reply, _ = _recv_msg(w.sock)
            except TimeoutError:
                self._replace(w)
                return _error_record(shown, "timeout", f"no answer within {self.limits.timeout:g} s")
            except (EOFError, OSError, ValueError) as exc:
                code = w.proc.poll()
                self._replace(w)
                return _error_record(shown, "crash", f"scan worker died ({exc}; exit {code})")
            finally:
                if w.sock.fileno() >= 0:
                    w.sock.settimeout(None)
            self._idle.put(w)
            rec = reply.get("record") if isinstance(reply, dict) else None
            if not isinstance(rec, dict):
                return _error_record(shown, "crash", "scan worker gave no record")
            rec["path"] = shown  # the name is the broker's, not whatever the worker says
            return BrokerResult(rec)
        return _error_record(shown, "crash", "scan worker unavailable")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            ws = list(self._all)
            self._all.clear()
        for w in ws:
            try:
                w.sock.close()  # EOF: the worker exits
                w.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                w.kill()

    def __enter__(self) -> ScanBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(worker_main())
