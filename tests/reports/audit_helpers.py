"""Helpers of the audit-log tests: real collectors (subprocesses on 127.0.0.1, ephemeral ports),
a real PostgreSQL started from the Debian binaries in a temp dir, the `baomi` command."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from reports.client import AuditClient
from reports.server import load_data, new_enroll_token, parse_duration
from reports.testing import TempPostgres
from reports.tls import client_context

BAOMI = [sys.executable, "-c", "from agents.main import cli; cli()"]


def baomi(*args: str, check: bool = True, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BAOMI_LANG": "en"}
    res = subprocess.run([*BAOMI, *args], check=False, capture_output=True, text=True, timeout=timeout,  # type: ignore[call-overload]
                         env=env, **kw)
    if check and res.returncode != 0:
        raise AssertionError(f"baomi {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


class Collector:
    """`baomi server run` in a subprocess; restartable, killable."""

    def __init__(self, data: Path, db_url: str | None = None, insecure: bool = False,
                 checkpoint_interval: float = 0.5, workers: int = 1, extra_args: tuple[str, ...] = (),
                 nofile: tuple[int, int] | None = None):
        self.data, self.db_url, self.insecure, self.workers = data, db_url, insecure, workers
        #: More `server run` options; the (soft, hard) descriptor limit to start it with.
        self.extra_args, self.nofile = list(extra_args), nofile
        self.checkpoint_interval = checkpoint_interval
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.token = (data / "officer.token").read_text().strip()
        self._role_tokens: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"{'http' if self.insecure else 'https'}://127.0.0.1:{self.port}"

    @property
    def ca(self) -> Path:
        return self.data / "tls" / "ca.pem"

    def start(self, port: int = 0) -> Collector:
        port_file = self.data / f"port-{uuid.uuid4().hex}"
        args = [*BAOMI, "server", "run", "--data", str(self.data), "--listen", f"127.0.0.1:{port}",
                "--port-file", str(port_file), "--checkpoint-interval", str(self.checkpoint_interval),
                "--workers", str(self.workers)]
        if self.db_url:
            args += ["--db", self.db_url]
        if self.insecure:
            args.append("--insecure-http")
        args += self.extra_args
        log = open(self.data / "server.log", "ab")  # noqa: SIM115 - owned by the child
        nofile = self.nofile

        def limit() -> None:
            if nofile is not None:
                import resource

                resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

        self.proc = subprocess.Popen(args, stdout=log, stderr=log, preexec_fn=limit if nofile else None)
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("collector did not start: " + (self.data / "server.log").read_text())
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        with self.http() as h:
            while True:
                try:
                    if h.get("/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("collector not healthy")
                time.sleep(0.05)
        return self

    def role_token(self, role: str, name: str | None = None) -> str:
        """A new API token of `role` (reports/apitokens.py), made in the store as
        `baomi server token add` does."""
        from reports.apitokens import add_token

        store = load_data(self.data).open_store(self.db_url)
        try:
            return add_token(store, role, name or f"{role}-{uuid.uuid4().hex[:8]}")  # type: ignore[arg-type]
        finally:
            store.close()

    def http(self, officer: bool = False, role: str | None = None, token: str | None = None) -> httpx.Client:
        """A client of the API: anonymous, with the officer token (`officer=True`), a new token
        of `role`, or a given `token`."""
        if role is not None:
            token = self._role_tokens.get(role) or self._role_tokens.setdefault(role, self.role_token(role))
        elif officer:
            token = self.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        verify = True if self.insecure else client_context(self.ca)
        return httpx.Client(base_url=self.url, verify=verify, headers=headers, timeout=30)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def enroll_token(self, expires: str = "1h") -> str:
        store = load_data(self.data).open_store(self.db_url)
        try:
            return new_enroll_token(store, parse_duration(expires))
        finally:
            store.close()

    def enroll(self, state: Path, **kw: object) -> AuditClient:
        # A hostname of its own for each test agent: the collector refuses a hostname already held.
        kw.setdefault("hostname", f"{state.name}-{uuid.uuid4().hex[:8]}")
        return AuditClient.enroll(state, self.url, self.enroll_token(), ca=self.ca, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ PostgreSQL
class Postgres(TempPostgres):
    """The shared temp cluster; skips the test when the Debian binaries are absent."""

    def __init__(self) -> None:
        try:
            super().__init__()
        except FileNotFoundError as exc:
            pytest.skip(str(exc))


def sync_agents_table(data: Path, db_url: str | None = None) -> None:
    """Make the agents table agree with the (tampered) chain, as a careful attacker would: each
    agent's last seq and hash set from its last event or gap still in the log."""
    from reports.events import GENESIS, AuditEvent
    from reports.store import SqlStore, open_store

    store = open_store(data, db_url)
    assert isinstance(store, SqlStore)
    try:
        last: dict[str, tuple[int, str]] = {}
        for e in store.entries():
            if e.kind == "event":
                ev = AuditEvent.from_dict(e.record)
                last[ev.agent] = (ev.seq, ev.hash)
            elif e.kind == "gap":
                n = e.record["notice"]
                last[n["agent"]] = (n["last"], n["last_hash"])
        agents = store.agents()
        with store._tx() as cur:
            for a in agents:
                seq, h = last.get(a.agent, (0, GENESIS))
                cur.execute(store._sql("UPDATE agents SET last_seq = ?, last_hash = ? WHERE agent = ?"),
                            (seq, h, a.agent))
    finally:
        store.close()
