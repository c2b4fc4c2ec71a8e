"""Issue 11: a scan's results reach the signed audit log without hand-written jq.

`baomi scan --send STATE` records findings, errors, violations and a summary; `baomi audit send`
takes scan records, `-` and `/dev/stdin`, continues a grown file, records an identical scan
again, and signs no heartbeat for a blank line. Never the document text.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.reports.audit_helpers import Collector, baomi

MARKED = "000012\n机密★10年\n特急\n关于加强办公室工作的通知\n正文保密内容：蓝天工程的进度。\n"


def _tree(tmp_path: Path) -> Path:
    d = tmp_path / "stick"
    d.mkdir()
    (d / "notice.txt").write_text(MARKED, encoding="utf-8")
    (d / "clean.txt").write_text("今天天气很好。\n", encoding="utf-8")
    (d / "big.txt").write_bytes(b"x" * 5000)
    return d


def _events(c: Collector, etype: str) -> list[dict]:
    out = baomi("audit", "query", "--data", str(c.data), "--format", "jsonl", "--type", etype).stdout
    return [json.loads(x) for x in out.splitlines() if x.strip()]


def test_scan_send_records_findings_errors_summary(collector: Collector, tmp_path: Path) -> None:
    state = tmp_path / "officer-state"
    collector.enroll(state).close()
    stick = _tree(tmp_path)
    p = baomi("scan", "--format", "jsonl", "--no-cache", "--max-file-size", "1K", "--send", str(state),
              "--policy", "cn-secrecy", "--host-role", "unclassified", "--location", "removable_medium",
              str(stick), check=False)
    assert p.returncode == 1, p.stderr
    assert "audit log" in p.stderr
    findings = _events(collector, "finding")
    assert {Path(str(f["path"])).name for f in findings} == {"notice.txt", "big.txt"}
    vio = _events(collector, "violation")
    assert vio and all(v["type"] == "violation" for v in vio)
    # what the console shows beside the rule: the marking and the rendered rationale
    p0 = vio[0].get("payload") or vio[0]
    assert p0["marking"] == "机密★10年" and p0["rationale_zh"] and p0["rationale_en"]
    assert p0["location"] == "removable_medium"
    summary = _events(collector, "scan_summary")
    assert len(summary) == 1
    # nothing of the document beyond the marking: the body's words are nowhere in the log
    dump = baomi("audit", "export", "--data", str(collector.data), "--format", "jsonl").stdout
    assert "机密★10年" in dump
    assert "蓝天工程" not in dump and "加强办公室" not in dump
    assert baomi("audit", "verify", "--data", str(collector.data), check=False).returncode == 0

    # the identical scan next week is recorded again (a scan is an event of its own)
    baomi("scan", "--format", "jsonl", "--no-cache", "--max-file-size", "1K", "--send", str(state), str(stick),
          check=False)
    assert len(_events(collector, "scan_summary")) == 2


def test_scan_send_needs_an_enrolled_state(tmp_path: Path) -> None:
    stick = _tree(tmp_path)
    p = baomi("scan", "--send", str(tmp_path / "never-enrolled"), str(stick), check=False)
    assert p.returncode == 2
    assert "enrol" in p.stderr and "Traceback" not in p.stderr
    p = baomi("audit", "send", "--state", str(tmp_path), "-", check=False, input="")
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_audit_send_takes_scan_records_from_stdin_and_files(collector: Collector, tmp_path: Path) -> None:
    state = tmp_path / "st"
    collector.enroll(state).close()
    stick = _tree(tmp_path)
    scan = baomi("scan", "--format", "jsonl", "--no-cache", str(stick), check=False).stdout
    assert scan.strip()
    # a pipe: `baomi scan … | baomi audit send --state S -`
    p = baomi("audit", "send", "--state", str(state), "-", input=scan)
    assert "spooled 1 " in p.stdout and "acknowledged 2" in p.stdout, p.stdout  # the finding and a summary
    # /dev/stdin is read, not a silent no-op
    p = subprocess.run(["bash", "-c", f"{_cmd()} audit send --state {state} /dev/stdin"], input=scan,
                       capture_output=True, text=True, timeout=120, env=_env())
    assert p.returncode == 0 and "acknowledged 2" in p.stdout, p.stdout + p.stderr
    assert len(_events(collector, "finding")) == 2

    # a file: blank lines sign nothing; a grown file continues where it stopped
    log = tmp_path / "events.jsonl"
    log.write_text(json.dumps({"type": "device", "payload": {"id": "usb-1"}}) + "\n\n\n", encoding="utf-8")
    baomi("audit", "send", "--state", str(state), str(log))
    assert _events(collector, "heartbeat") == []
    with log.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"type": "device", "payload": {"id": "usb-2"}}) + "\n")
    p = baomi("audit", "send", "--state", str(state), str(log))
    assert "spooled 1" in p.stdout, p.stdout
    assert len(_events(collector, "device")) == 2


def _cmd() -> str:
    import shlex
    import sys

    return " ".join(shlex.quote(x) for x in [sys.executable, "-c", "from agents.main import cli; cli()"])


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "BAOMI_LANG": "en"}
