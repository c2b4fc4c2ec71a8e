"""SIEM forwarding: RFC 5424 and CEF formatting, and delivery to a real rsyslog on loopback over
TCP and TLS (the test starts rsyslogd with its own configuration in a temp dir)."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from audit_helpers import Collector, baomi

from reports.siem import cef, rfc5424
from reports.testing import free_port
from reports.tls import make_ca_and_server_cert

ROW = {"gseq": 7, "received": "2026-03-01T08:00:00.000001Z", "time": "2026-03-01T07:59:59.5Z",
       "agent": "a-0123", "host": "ws-财务-01", "seq": 3, "event_id": "e-1", "type": "violation",
       "level": "secret", "rule": "BM-P|01", "path": "C:\\docs\\a=b.docx", "marking": "机密★10年",
       "payload": {"sha256": "ab" * 32, "action": "quarantine"}}


def test_rfc5424_shape() -> None:
    msg = rfc5424(ROW)
    head, _, body = msg.partition(b"\xef\xbb\xbf")
    pri_version, ts, host, app, procid, msgid, rest = head.decode("ascii").split(" ", 6)
    assert pri_version == "<106>1"  # facility 13 (log audit) * 8 + severity 2, version 1
    assert (ts, host, app, procid, msgid) == (ROW["time"], "ws--01", "baomi", "-", "violation")
    assert rest.startswith('[baomi@32473 gseq="7" agent="a-0123" seq="3" eventId="e-1" rule="BM-P|01"')
    assert "机密★10年" in body.decode("utf-8")


def test_cef_escaping() -> None:
    line = cef(ROW)
    assert line.startswith("CEF:0|Baomi|baomi|0.1|violation|Confidentiality policy violation|9|")
    assert "cs2=BM-P|01" in line  # '|' needs no escape in extensions
    assert r"filePath=C:\\docs\\a\=b.docx" in line and r" fname=a\=b.docx " in line
    assert "cs1=机密★10年" in line and "act=quarantine" in line and "|9|rt=1772352000000 " in line
    assert f"fileHash={'ab' * 32}" in line
    assert cef({**ROW, "type": "a|b"}).split("|")[4] == "a\\"


RSYSLOGD = shutil.which("rsyslogd") or next(
    (p for p in ("/usr/sbin/rsyslogd", "/sbin/rsyslogd") if Path(p).exists()), None)


class Rsyslog:
    def __init__(self, root: Path, tls: bool):
        self.root, self.port, self.out = root, free_port(), root / "out.log"
        root.mkdir(parents=True, exist_ok=True)
        glob = f'global(workDirectory="{root}"'
        mod = 'module(load="imtcp"'
        if tls:
            make_ca_and_server_cert(root / "tls", ["127.0.0.1"])
            glob += (f' DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="{root}/tls/ca.pem"'
                     f' DefaultNetstreamDriverCertFile="{root}/tls/server.pem"'
                     f' DefaultNetstreamDriverKeyFile="{root}/tls/server.key"')
            mod += ' StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon"'
        conf = root / "rsyslog.conf"
        conf.write_text(
            glob + ")\n" + mod + ")\n"
            'template(name="f" type="string" string="%pri%|%app-name%|%msgid%|%hostname%|'
            '%structured-data%|%msg%\\n")\n'
            f'ruleset(name="r") {{ action(type="omfile" file="{self.out}" template="f") }}\n'
            f'input(type="imtcp" port="{self.port}" address="127.0.0.1" ruleset="r")\n')
        self.proc = subprocess.Popen([str(RSYSLOGD), "-n", "-f", str(conf), "-i", str(root / "pid")],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    out = self.proc.stdout.read() if self.proc.stdout else b""
                    raise RuntimeError(f"rsyslogd did not start: {out!r}") from None
                time.sleep(0.1)

    def lines(self, n: int, timeout: float = 10) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.out.exists():
                got = self.out.read_text(encoding="utf-8").splitlines()
                if len(got) >= n:
                    return got
            time.sleep(0.1)
        return self.out.read_text(encoding="utf-8").splitlines() if self.out.exists() else []

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(params=["tcp", "tls"])
def rsyslog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rsyslog]:
    if not RSYSLOGD:
        pytest.skip("rsyslogd (Debian package rsyslog) is not installed")
    r = Rsyslog(tmp_path / "rsyslog", tls=request.param == "tls")
    r.scheme = request.param  # type: ignore[attr-defined]
    try:
        yield r
    finally:
        r.stop()


def test_forward_to_rsyslog(collector: Collector, rsyslog: Rsyslog, tmp_path: Path) -> None:
    client = collector.enroll(tmp_path / "a", hostname="ws-07")
    client.submit("finding", {"path": "/u/计划.docx", "marking": "机密★10年", "level": "secret",
                              "rule": "BM-M001", "sha256": "cd" * 32})
    client.submit("heartbeat", {})
    client.flush()
    url = f"{rsyslog.scheme}://127.0.0.1:{rsyslog.port}"  # type: ignore[attr-defined]
    extra = ["--syslog-ca", str(rsyslog.root / "tls" / "ca.pem")] if url.startswith("tls") else []
    out = baomi("audit", "forward", "--data", str(collector.data), "--syslog", url, *extra).stdout
    assert "forwarded 2" in out
    lines = rsyslog.lines(2)
    assert len(lines) == 2, lines
    pri, app, msgid, host, sd, msg = lines[0].split("|", 5)
    assert (pri, app, msgid, host) == ("107", "baomi", "finding", "ws-07")
    assert 'rule="BM-M001"' in sd and 'level="secret"' in sd
    assert "机密★10年" in msg and "/u/计划.docx" in msg
    # The cursor makes a re-run send only what is new, here as CEF.
    again = baomi("audit", "forward", "--data", str(collector.data), "--syslog", url, *extra).stdout
    assert "forwarded 0" in again
    client.submit("violation", {"path": "/u/b.doc", "level": "top_secret", "rule": "BM-P002"})
    client.flush()
    client.close()
    cef_out = baomi("audit", "forward", "--data", str(collector.data), "--syslog", url, "--format", "cef",
                    "--cursor", str(tmp_path / "cef.cursor"), *extra).stdout
    assert "forwarded 3" in cef_out
    lines = rsyslog.lines(5)
    assert len(lines) == 5 and lines[-1].split("|", 5)[5].lstrip("\ufeff").startswith(
        "CEF:0|Baomi|baomi|0.1|violation|")
