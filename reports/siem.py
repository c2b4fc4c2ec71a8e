"""Forwarding to an existing SIEM: syslog RFC 5424 over TCP or TLS, message as JSON or CEF.

Framing is octet counting (RFC 6587 §3.4.1: `LEN SP MSG`), which rsyslog's imtcp and most SIEM
collectors accept and which survives newlines in values. Facility 13 (log audit); severity from
the event's level. Structured data uses the `baomi@32473` SD-ID (32473 is the documentation
enterprise number of RFC 5612 until the project registers its own).

`forward(rows, url, …)` sends query rows (see `reports.store.AuditStore.query`) and returns the
last gseq sent, which the CLI keeps as a cursor so a re-run continues where it stopped.
"""
from __future__ import annotations

import json
import re
import socket
import ssl
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reports.tls import client_context

FACILITY_LOG_AUDIT = 13
SD_ID = "baomi@32473"
#: syslog severity (RFC 5424) and CEF severity (0-10) by classification level.
SEVERITY = {"top_secret": (2, 10), "secret": (3, 8), "confidential": (4, 6), "internal": (5, 3)}
_DEFAULT_SEVERITY = (6, 1)


def _severity(row: dict[str, Any]) -> tuple[int, int]:
    sev = SEVERITY.get(str(row.get("level")), _DEFAULT_SEVERITY)
    if row.get("type") == "violation":
        sev = (max(sev[0] - 1, 0), min(sev[1] + 1, 10))
    return sev


def _ascii_token(value: Any, limit: int) -> str:
    s = "".join(ch for ch in str(value or "") if 33 <= ord(ch) <= 126)[:limit]
    return s or "-"


def _sd_escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def rfc5424(row: dict[str, Any], body: str | None = None) -> bytes:
    """One RFC 5424 message for a query row; `body` defaults to the row as JSON."""
    sev, _ = _severity(row)
    pri = FACILITY_LOG_AUDIT * 8 + sev
    params = {"gseq": row.get("gseq"), "agent": row.get("agent"), "seq": row.get("seq"),
              "eventId": row.get("event_id"), "rule": row.get("rule"), "level": row.get("level")}
    sd = "[" + SD_ID + "".join(f' {k}="{_sd_escape(v)}"' for k, v in params.items() if v is not None) + "]"
    msg = body if body is not None else json.dumps(row, ensure_ascii=False, sort_keys=True)
    header = (f"<{pri}>1 {row.get('time') or '-'} {_ascii_token(row.get('host'), 255)} baomi - "
              f"{_ascii_token(row.get('type'), 32)} {sd} ")
    # The BOM marks MSG as UTF-8 (RFC 5424 §6.4): marking text is Chinese.
    return header.encode("ascii") + b"\xef\xbb\xbf" + msg.encode("utf-8")


def _cef_header(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|")


def _cef_ext(value: Any) -> str:
    return (str(value).replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r")
            .replace("\n", "\\n"))


def cef(row: dict[str, Any], version: str = "0.1") -> str:
    """One ArcSight CEF line for a query row."""
    _, sev = _severity(row)
    p = row.get("payload") or {}
    name = {"finding": "Classified marking found", "violation": "Confidentiality policy violation"}.get(
        str(row.get("type")), str(row.get("type")))
    ext: dict[str, Any] = {
        "rt": _epoch_ms(row.get("received")), "dvchost": row.get("host"),
        "deviceExternalId": row.get("agent"), "externalId": row.get("event_id"),
        "filePath": row.get("path"), "fname": _basename(row.get("path")),
        "fileHash": p.get("sha256"), "cs1Label": "marking", "cs1": row.get("marking"),
        "cs2Label": "rule", "cs2": row.get("rule"), "cs3Label": "level", "cs3": row.get("level"),
        "cn1Label": "gseq", "cn1": row.get("gseq"), "act": p.get("action"), "suser": p.get("user"),
    }
    if ext["cs1"] is None:
        del ext["cs1Label"]
    if ext["cs2"] is None:
        del ext["cs2Label"]
    if ext["cs3"] is None:
        del ext["cs3Label"]
    head = "|".join(_cef_header(x) for x in ("CEF:0", "Baomi", "baomi", version,
                                              row.get("type"), name, sev))
    return head + "|" + " ".join(f"{k}={_cef_ext(v)}" for k, v in ext.items() if v is not None)


def _basename(path: Any) -> str | None:
    # Agents on Windows send backslash paths; os.path on the collector would not split them.
    return re.split(r"[\\/]", str(path))[-1] if path else None


def _epoch_ms(value: Any) -> int | None:
    try:
        return int(datetime.fromisoformat(str(value)).timestamp() * 1000)
    except ValueError:
        return None


def connect(url: str, ca: str | Path | None = None, timeout: float = 10.0) -> socket.socket:
    """`tcp://host:port` or `tls://host:port` (TLS verifies the receiver against `ca`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or not parts.port:
        raise ValueError(f"bad syslog URL {url!r}; use tcp://HOST:PORT or tls://HOST:PORT")
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    if parts.scheme == "tls":
        ctx: ssl.SSLContext = client_context(ca)
        sock = ctx.wrap_socket(sock, server_hostname=parts.hostname)
    return sock


def forward(rows: Iterable[dict[str, Any]], url: str, fmt: str = "rfc5424",
            ca: str | Path | None = None) -> tuple[int, int | None]:
    """Send rows in order; returns (messages sent, last gseq sent)."""
    if fmt not in ("rfc5424", "cef"):
        raise ValueError("format is rfc5424 or cef")
    sent, last = 0, None
    with connect(url, ca) as sock:
        for row in rows:
            msg = rfc5424(row, cef(row) if fmt == "cef" else None)
            sock.sendall(str(len(msg)).encode() + b" " + msg)
            sent, last = sent + 1, row.get("gseq")
    return sent, last
