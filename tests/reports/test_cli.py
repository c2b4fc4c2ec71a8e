"""The officer's command line: init, tokens, query filters, exports, online verify, HTML report,
and the lazy loading that keeps the server stack out of `baomi scan`."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from audit_helpers import Collector, baomi


@pytest.fixture
def populated(collector: Collector, tmp_path: Path) -> Collector:
    a = collector.enroll(tmp_path / "a", hostname="ws-a")
    b = collector.enroll(tmp_path / "b", hostname="ws-b")
    a.submit("finding", {"path": "/a/1.docx", "marking": "机密★10年", "level": "secret", "rule": "BM-M001"})
    a.submit("finding", {"path": "/a/2.docx", "marking": "秘密", "level": "confidential", "rule": "BM-M002"})
    a.submit("heartbeat", {})
    b.submit("violation", {"path": "/b/3.pdf", "marking": "绝密", "level": "top_secret", "rule": "BM-M001"})
    b.submit("device", {"device": "usb", "serial": "X1"}, time="2020-01-01T00:00:00Z")
    for c in (a, b):
        c.flush()
        c.close()
    return collector


def query(c: Collector, *args: str) -> list[dict[str, object]]:
    out = baomi("audit", "query", "--data", str(c.data), "--format", "jsonl", *args).stdout
    return [json.loads(x) for x in out.splitlines()]


def test_init_prints_what_to_hand_out(tmp_path: Path) -> None:
    out = baomi("--lang", "en", "server", "init", "--data", str(tmp_path / "d"), "--name", "audit.example.gov.cn").stdout
    token = (tmp_path / "d" / "officer.token").read_text().strip()
    assert token in out and "ca.pem" in out
    assert (tmp_path / "d" / "officer.token").stat().st_mode & 0o077 == 0
    assert token not in (tmp_path / "d" / "config.json").read_text()
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((tmp_path / "d" / "tls" / "server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "audit.example.gov.cn" in names.get_values_for_type(x509.DNSName)
    again = baomi("server", "init", "--data", str(tmp_path / "d"), check=False)
    assert again.returncode == 2
    zh = baomi("--lang", "zh", "server", "init", "--data", str(tmp_path / "e")).stdout
    assert "保密员令牌" in zh
    bad = baomi("server", "enroll-token", "--data", str(tmp_path / "d"), "--expires", "soon", check=False)
    assert bad.returncode == 2
    assert baomi("server", "enroll-token", "--data", str(tmp_path / "d"), "--expires", "2d").stdout.startswith("enrol-")


def test_query_filters(populated: Collector) -> None:
    assert len(query(populated)) == 5
    assert {r["path"] for r in query(populated, "--rule", "BM-M001")} == {"/a/1.docx", "/b/3.pdf"}
    assert {r["level"] for r in query(populated, "--level", "secret")} == {"secret", "top_secret"}
    assert {r["host"] for r in query(populated, "--host", "ws-b")} == {"ws-b"}
    assert [r["type"] for r in query(populated, "--type", "heartbeat")] == ["heartbeat"]
    assert [r["type"] for r in query(populated, "--until", "2021-01-01")] == ["device"]
    assert len(query(populated, "--since", "1d")) == 4
    assert len(query(populated, "--limit", "2")) == 2
    table = baomi("audit", "query", "--data", str(populated.data), "--level", "top_secret")
    assert "绝密" in table.stdout and "1 events" in table.stderr


def test_exports_and_online_verify(populated: Collector, tmp_path: Path) -> None:
    out = baomi("audit", "export", "--data", str(populated.data), "--format", "csv", "--type", "finding").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["marking"] for r in rows] == ["机密★10年", "秘密"]
    assert json.loads(rows[0]["payload"])["rule"] == "BM-M001"
    auditor = tmp_path / "auditor.token"
    baomi("server", "token", "add", "--role", "auditor", "--name", "li.shenji", "--data", str(populated.data),
          "--out", str(auditor))
    full = baomi("audit", "export", "--server", populated.url, "--token-file",
                 str(auditor), "--ca", str(populated.ca)).stdout
    kinds = [json.loads(x)["kind"] for x in full.splitlines()]
    assert kinds == ["enrol", "enrol", "event", "event", "event", "event", "event"]
    online = baomi("audit", "verify", "--server", populated.url, "--token-file",
                   str(auditor), "--ca", str(populated.ca), "--server-key",
                   str(populated.data / "server.pub"))
    assert "log intact: 7 entries, 2 agents" in online.stdout
    no_key = baomi("audit", "verify", "--server", populated.url, "--token-file",
                   str(auditor), "--ca", str(populated.ca), check=False)
    assert no_key.returncode == 2


def test_html_report(populated: Collector, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    baomi("--lang", "zh", "report", "html", "--data", str(populated.data), "--out", str(out))
    page = out.read_text(encoding="utf-8")
    assert "保密检查报告" in page and "机密★10年" in page and page.count("<tr>") >= 5 + 1
    assert "<script" not in page


def test_cli_shell_stays_light() -> None:
    code = ("import sys; from agents.main import cli; import reports.cli; "
            "heavy = {'starlette', 'uvicorn', 'httpx', 'psycopg'} & set(sys.modules); print(sorted(heavy))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
    helptext = baomi("--help").stdout
    assert "audit" in helptext and "server" in helptext
    assert "verify" in baomi("audit", "--help").stdout
