"""Helpers of the agent tests: marked .docx files, agent configs, `baomi agent run` as a real
subprocess next to a real collector (the collector helpers of tests/reports are reused)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reports"))

from audit_helpers import BAOMI, Collector, baomi  # noqa: E402

__all__ = ["BAOMI", "AgentProc", "Collector", "baomi", "marked_docx", "rows", "wait_for", "write_config"]


def marked_docx(path: Path, marking: str = "机密★10年", pad_to: int = 0, title: str = "关于某项目的通知") -> Path:
    """A real .docx (python-docx) with a classification marking at the top, optionally padded
    with incompressible bytes in an embedded part to reach about `pad_to` bytes."""
    import docx

    d = docx.Document()
    d.add_paragraph(marking)
    d.add_paragraph(title)
    d.add_paragraph("各有关单位：请按要求办理。")
    if pad_to:
        # Body paragraphs of random hex (compresses to about half) until the file is big enough.
        import io

        while True:
            buf = io.BytesIO()
            d.save(buf)
            if len(buf.getvalue()) >= pad_to:
                break
            need = pad_to - len(buf.getvalue())
            for _ in range(max(1, need // 1000)):
                d.add_paragraph(os.urandom(512).hex())
    tmp = path.with_name("." + path.name + ".tmp")
    d.save(str(tmp))
    os.replace(tmp, path)
    return path


def write_config(path: Path, *, collector: Collector, state: Path, vault: Path, officer_pub: Path,
                 watch: list[tuple[Path, str]], role: str = "unclassified", level: str | None = None,
                 heartbeat: float = 1.0, rescan: float = 30.0, extra: dict[str, Any] | None = None) -> Path:
    host: dict[str, Any] = {"role": role}
    if level:
        host["level"] = level
    cfg: dict[str, Any] = {
        "collector": {"url": collector.url, "ca": str(collector.ca)},
        "state": str(state), "host": host,
        "vault": {"path": str(vault), "officer_key": str(officer_pub)},
        "watch": [{"path": str(p), "channel": ch} for p, ch in watch],
        "heartbeat": heartbeat, "rescan": rescan,
        "limits": {"debounce": 0.2, "nice": 0, "ionice": "none"},
        "media": {"enabled": False},
    }
    cfg.update(extra or {})
    path.write_text(json.dumps(cfg, ensure_ascii=False, indent=1))  # JSON is YAML
    return path


HERE = Path(__file__).resolve().parent


def agent_command() -> list[str]:
    """`baomi` for the agent."""
    return BAOMI


class AgentProc:
    """`baomi agent run --config FILE` in a subprocess, its stderr in a log file."""

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None):
        self.config, self.log = config, log
        self.env = {**os.environ, "BAOMI_LANG": "en", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready: float = 60) -> AgentProc:
        fh = open(self.log, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen([*agent_command(), "agent", "run", "--config", str(self.config)],
                                     stdout=fh, stderr=fh, env=self.env)
        wait_for(lambda: "agent running" in self.text() or self.proc.poll() is not None, ready)  # type: ignore[union-attr]
        if self.proc.poll() is not None:
            raise AssertionError(f"agent exited {self.proc.returncode}:\n{self.text()}")
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_for(cond: Callable[[], Any], timeout: float = 10, step: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            return v
        time.sleep(step)


def rows(collector: Collector, **params: Any) -> list[dict[str, Any]]:
    """Events on the collector (officer query over HTTPS)."""
    with collector.http(officer=True) as h:
        r = h.get("/v1/query", params=params)
        r.raise_for_status()
        return list(r.json()["rows"])
