"""Issue 11, deployment and everyday use: each user error one clear line and exit 2; a
certificate that can be reissued for real host names; query, CSV and export as officers read them;
attestations that reach the collector; a workstation install without test services."""
from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from tests.reports.audit_helpers import Collector, baomi

REPO = Path(__file__).resolve().parents[2]


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, p.stderr
    return lines[0]


def test_init_twice_points_to_cert_reissue_and_cert_keeps_the_ca(tmp_path: Path) -> None:
    data = tmp_path / "srv"
    baomi("server", "init", "--data", str(data))
    assert "baomi server cert" in one_line_error(baomi("server", "init", "--data", str(data), "--name", "x",
                                                       check=False))
    ca_before = (data / "tls" / "ca.pem").read_bytes()
    baomi("server", "cert", "--data", str(data), "--name", "collector.example.gov", "--name", "10.20.30.40")
    assert (data / "tls" / "ca.pem").read_bytes() == ca_before, "agents keep trusting the same CA"
    cert = x509.load_pem_x509_certificate((data / "tls" / "server.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "collector.example.gov" in san.get_values_for_type(x509.DNSName)
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)][:1] == ["10.20.30.40"]
    # and the reissued certificate serves: a client trusting the old ca.pem verifies it
    c = Collector(data).start()
    try:
        with c.http() as h:
            assert h.get("/v1/health").status_code == 200
    finally:
        c.stop()


def test_port_in_use_and_listen_everywhere(tmp_path: Path) -> None:
    data = tmp_path / "srv"
    baomi("server", "init", "--data", str(data))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        err = one_line_error(baomi("server", "run", "--data", str(data), "--listen", f"127.0.0.1:{port}",
                                   check=False))
        assert "in use" in err
    # 0.0.0.0 is said out loud, with the certificate's missing names (bound on a free port, then stopped)
    proc = subprocess.Popen([*_cmd(), "server", "run", "--data", str(data), "--listen", "0.0.0.0:0",
                             "--port-file", str(tmp_path / "port")], stderr=subprocess.PIPE, text=True,
                            env=_env())
    try:
        err = ""
        assert proc.stderr is not None
        for _ in range(3):
            err += proc.stderr.readline()
            if "baomi server cert" in err:
                break
        assert "every network interface" in err and "baomi server cert" in err
    finally:
        proc.terminate()
        proc.wait(15)


def test_client_without_ca_and_unenrolled_send(collector: Collector, tmp_path: Path) -> None:
    (tmp_path / "enrol.token").write_text(collector.enroll_token())
    err = one_line_error(baomi("audit", "enroll", "--server", collector.url, "--token-file",
                               str(tmp_path / "enrol.token"), "--state", str(tmp_path / "st"), check=False))
    assert "--ca" in err
    (tmp_path / "empty").mkdir()
    ev = tmp_path / "e.jsonl"
    ev.write_text(json.dumps({"type": "device", "payload": {"id": "x"}}) + "\n")
    assert "enrol" in one_line_error(baomi("audit", "send", "--state", str(tmp_path / "empty"), str(ev),
                                           check=False))


@pytest.fixture
def populated(collector: Collector, tmp_path: Path) -> Collector:
    state = tmp_path / "st"
    client = collector.enroll(state)
    client.submit("finding", {"path": "/甲/机密文件.docx", "level": "secret", "rule": "BM-M001",
                              "marking": "机密★10年"})
    client.submit("device", {"id": "usb-1"})
    client.flush(timeout=30)
    client.close()
    return collector


def test_query_header_zone_relative_times(populated: Collector) -> None:
    d = str(populated.data)
    out = baomi("audit", "query", "--data", d, "--since", "yesterday").stdout
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["seq", "time", "host"]
    assert len(rows) == 2
    import time as _t

    zone = _t.strftime("%Z") or _t.strftime("%z")
    assert all(zone in r for r in rows), "times carry the local zone"
    assert baomi("audit", "query", "--data", d, "--since", "today").stdout.count("\n") == 3
    assert baomi("audit", "query", "--data", d, "--until", "2000-01-01").stdout.count("\n") == 1
    assert "yesterday" in one_line_error(baomi("audit", "query", "--data", d, "--since", "last tuesday",
                                               check=False))


def test_csv_bom_and_export_counts(populated: Collector, tmp_path: Path) -> None:
    d = str(populated.data)
    out = tmp_path / "q.csv"
    baomi("audit", "export", "--data", d, "--format", "csv", "--out", str(out))
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "Excel on a Chinese Windows needs the BOM"
    assert "机密★10年" in raw.decode("utf-8-sig")
    full = tmp_path / "chain.jsonl"
    p = baomi("audit", "export", "--data", d, "--out", str(full))
    n = len(full.read_text().splitlines())
    assert n >= 2 and f"exported {n} records" in p.stderr


def test_verify_without_arguments_says_what_it_needs() -> None:
    err = one_line_error(baomi("audit", "verify", check=False))
    assert "--data" in err and "--log" in err


def test_attestation_reaches_the_collector(collector: Collector, tmp_path: Path) -> None:
    from policies import keys

    state = tmp_path / "st"
    collector.enroll(state).close()
    k = keys.generate_private_key()
    keys.save_private_key(k, tmp_path / "u.key")
    from policies.engine import load_policy

    answers = tmp_path / "a.yaml"
    answers.write_text("".join(f"{i.id}: 是\n" for i in load_policy(["babu"]).checklist), encoding="utf-8")
    p = baomi("attest", "--user", "mishu1", "--key", str(tmp_path / "u.key"), "--answers", str(answers),
              "--store", str(tmp_path / "att.jsonl"), "--send", str(state))
    assert "acknowledged" in p.stdout
    rows = baomi("audit", "query", "--data", str(collector.data), "--format", "jsonl", "--type", "attestation").stdout
    (row,) = [json.loads(x) for x in rows.splitlines()]
    assert row["payload"]["user"] == "mishu1" and all(row["payload"]["answers"].values())
    assert row["payload"]["key_id"] == keys.key_id(k)


def test_workstation_install_has_no_test_services() -> None:
    runtime = (REPO / ".ci" / "debian-packages.txt").read_text().split()
    assert "python3-venv" in runtime
    assert not {"postgresql", "rsyslog", "rsyslog-gnutls"} & set(runtime)
    test_only = (REPO / ".ci" / "debian-packages-test.txt").read_text().split()
    assert {"postgresql", "rsyslog"} <= set(test_only)
    demo = subprocess.run(["make", "-n", "-W", "setup.cfg", "demo"], cwd=REPO, capture_output=True, text=True).stdout
    assert "debian-packages.txt" in demo and "debian-packages-test.txt" not in demo
    test = subprocess.run(["make", "-n", "test"], cwd=REPO, capture_output=True, text=True).stdout
    assert "debian-packages-test.txt" in test


def _cmd() -> list[str]:
    import sys

    return [sys.executable, "-c", "from agents.main import cli; cli()"]


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "BAOMI_LANG": "en"}


def test_a_missing_or_empty_token_file_is_one_line_and_no_request(tmp_path: Path) -> None:
    # 192.0.2.0/24 is TEST-NET: nothing may be sent there (the token is read before any request)
    server = ("--server", "https://192.0.2.10:8443")
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    assert "no token in stdin" in one_line_error(
        baomi("audit", "enroll", *server, "--state", str(tmp_path / "s"), "--token-file", "-", input="",
              check=False))
    assert "cannot read a token from" in one_line_error(
        baomi("audit", "enroll", *server, "--state", str(tmp_path / "s"), "--token-file",
              str(tmp_path / "absent.token"), check=False))
    assert f"no token in {empty}" in one_line_error(
        baomi("audit", "admin", "revoke", "ws-1", *server, "--token-file", str(empty), check=False))
