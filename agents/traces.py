"""Usage traces a periodic check reads on a Linux workstation (each parser takes the real format).

- USB storage history from the kernel log (`journalctl -k -o json`, or dmesg/kern.log text):
  vendor, model, serial, first and last seen.
- Recently used documents: freedesktop `recently-used.xbel` and LibreOffice's
  `registrymodifications.xcu` PickList. A document opened from a removable medium, or from a path
  that no longer exists, is a finding (`on_removable`, `exists`).
- Browser histories: Chromium `History` and Firefox `places.sqlite`, read from a copy opened
  immutable (the live database is never locked): on a classified host, 违规上网 evidence.

A file in an unexpected format is reported as an error of that trace, never a crash.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lxml import etree

REMOVABLE_PREFIXES = ("/media/", "/run/media/", "/mnt/")


@dataclass
class UsbDevice:
    vendor_id: str = ""
    product_id: str = ""
    vendor: str = ""
    model: str = ""
    serial: str = ""
    first_seen: str | None = None
    last_seen: str | None = None
    storage: bool = False


@dataclass(frozen=True)
class RecentDocument:
    path: str
    opened: str | None
    source: str
    exists: bool
    on_removable: bool


@dataclass(frozen=True)
class BrowserVisit:
    browser: str
    profile: str
    host: str
    visits: int
    last_visit: str | None


@dataclass
class Traces:
    usb: list[UsbDevice] = field(default_factory=list)
    recent: list[RecentDocument] = field(default_factory=list)
    browsing: list[BrowserVisit] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"usb": [asdict(d) for d in self.usb], "recent": [asdict(r) for r in self.recent],
                "browsing": [asdict(b) for b in self.browsing], "errors": self.errors}


# -- USB history ---------------------------------------------------------------------------------
_USB = re.compile(r"\busb (?P<port>\d+-[\d.]+): (?P<msg>.*)$")
_IDS = re.compile(r"idVendor=(?P<v>[0-9a-fA-F]{4}), idProduct=(?P<p>[0-9a-fA-F]{4})")
_SCSI_REMOVABLE = re.compile(r"Attached SCSI removable disk")
_ISO = re.compile(r"^(?P<t>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s")


def usb_history(lines: Iterable[tuple[str | None, str]]) -> list[UsbDevice]:
    """(time, kernel message) pairs → USB storage devices, merged by serial (else vendor:product):
    a stick plugged in ten times is one device, first and last seen."""
    sessions: list[UsbDevice] = []
    by_port: dict[str, UsbDevice] = {}
    last: UsbDevice | None = None
    for when, msg in lines:
        m = _USB.search(msg)
        if m:
            port, text = m.group("port"), m.group("msg")
            if "New USB device found" in text:
                ids = _IDS.search(text)
                by_port[port] = UsbDevice(vendor_id=ids.group("v") if ids else "", product_id=ids.group("p") if ids else "",
                                          first_seen=when, last_seen=when)
                sessions.append(by_port[port])
            d = by_port.get(port)
            if d is None:
                continue
            key, _, value = text.partition(":")
            if key == "Product":
                d.model = value.strip()
            elif key == "Manufacturer":
                d.vendor = value.strip()
            elif key == "SerialNumber":
                d.serial = value.strip()
            d.last_seen = when or d.last_seen
            last = d
        elif last is not None and ("usb-storage" in msg or _SCSI_REMOVABLE.search(msg)):
            last.storage = True
            last.last_seen = when or last.last_seen
    merged: dict[str, UsbDevice] = {}
    for d in sessions:
        if not d.storage:
            continue
        key = d.serial or f"{d.vendor_id}:{d.product_id}"
        k = merged.setdefault(key, d)
        if k is not d:
            k.first_seen = min(filter(None, [k.first_seen, d.first_seen]), default=None)
            k.last_seen = max(filter(None, [k.last_seen, d.last_seen]), default=None)
    return list(merged.values())


def journal_lines(text: str) -> Iterator[tuple[str | None, str]]:
    """`journalctl -k -o json` output: one JSON object a line (MESSAGE, __REALTIME_TIMESTAMP µs)."""
    for line in text.splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        msg = obj.get("MESSAGE")
        if isinstance(msg, list):  # journald stores non-UTF-8 messages as byte arrays
            msg = bytes(msg).decode("utf-8", "replace")
        ts = obj.get("__REALTIME_TIMESTAMP")
        when = datetime.fromtimestamp(int(ts) / 1e6, UTC).isoformat(timespec="seconds") if ts else None
        yield when, str(msg or "")


def kernel_log_lines(text: str) -> Iterator[tuple[str | None, str]]:
    """dmesg/kern.log text; an ISO time at the line start (rsyslog's default) is kept."""
    for line in text.splitlines():
        m = _ISO.match(line)
        yield (m.group("t") if m else None), line


# -- recently used documents ----------------------------------------------------------------------
def _file_url(url: str) -> str | None:
    u = urlparse(url)
    return unquote(u.path) if u.scheme == "file" else None


def _recent(path: str, opened: str | None, source: str) -> RecentDocument:
    return RecentDocument(path, opened, source, os.path.lexists(path), path.startswith(REMOVABLE_PREFIXES))


def recently_used_xbel(data: bytes, source: str = "recently-used.xbel") -> list[RecentDocument]:
    root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False))
    out = []
    for bm in root.iter("bookmark"):
        p = _file_url(bm.get("href", ""))
        if p:
            out.append(_recent(p, bm.get("visited") or bm.get("modified") or bm.get("added"), source))
    return out


def libreoffice_picklist(data: bytes, source: str = "registrymodifications.xcu") -> list[RecentDocument]:
    root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False))
    out = []
    for item in root.iter("item"):
        where = item.get("{http://openoffice.org/2001/registry}path") or ""
        if "Histories" not in where or ("PickList" not in where and "RecentDocuments" not in where):
            continue
        for node in item.iter("node"):
            p = _file_url(node.get("{http://openoffice.org/2001/registry}name") or "")
            if p:
                out.append(_recent(p, None, source))
    return out


# -- browser histories ------------------------------------------------------------------------------
_WEBKIT_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def _copy_open(db: Path) -> tuple[sqlite3.Connection, str]:
    """A private copy of a (possibly live, locked) SQLite file, opened read-only and immutable."""
    tmp = tempfile.mkdtemp(prefix="baomi-trace-")
    dst = Path(tmp) / "db"
    shutil.copyfile(db, dst)
    for suffix in ("-wal",):  # the newest pages of a live database
        if Path(str(db) + suffix).exists():
            shutil.copyfile(str(db) + suffix, str(dst) + suffix)
    con = sqlite3.connect(f"file:{dst}?mode=ro&immutable=1", uri=True)
    return con, tmp


def browser_history(db: Path, browser: str, profile: str, top: int = 50) -> list[BrowserVisit]:
    con, tmp = _copy_open(db)
    try:
        if browser == "chromium":
            rows = con.execute("SELECT url, visit_count, last_visit_time FROM urls").fetchall()
        else:
            rows = con.execute("SELECT url, visit_count, last_visit_date FROM moz_places "
                               "WHERE visit_count > 0").fetchall()
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)
    hosts: dict[str, tuple[int, int]] = {}
    for url, count, last in rows:
        h = urlparse(str(url)).hostname
        if not h or h in ("localhost",) or h.startswith("127."):
            continue
        c, t = hosts.get(h, (0, 0))
        hosts[h] = (c + int(count or 0), max(t, int(last or 0)))
    ranked = sorted(hosts.items(), key=lambda kv: -kv[1][0])[:top]
    return [BrowserVisit(browser, profile, h, c, _visit_time(browser, t)) for h, (c, t) in ranked]


def _visit_time(browser: str, value: int) -> str | None:
    """Chromium counts µs since 1601 (WebKit), Firefox µs since 1970."""
    if not value:
        return None
    t = _WEBKIT_EPOCH + timedelta(microseconds=value) if browser == "chromium" else \
        datetime.fromtimestamp(value / 1e6, UTC)
    return t.isoformat(timespec="seconds")


# -- a home directory --------------------------------------------------------------------------------
def read_home(home: Path, out: Traces) -> None:
    """Every trace file this parser knows under one home directory."""
    def attempt(path: Path, fn: Any, *args: Any) -> None:
        if not path.is_file():
            return
        try:
            fn(path, *args)
        except Exception as exc:  # noqa: BLE001 - an unexpected format is reported, never fatal
            out.errors.append({"trace": str(path), "error": f"{type(exc).__name__}: {exc}"[:300]})

    attempt(home / ".local/share/recently-used.xbel",
            lambda p: out.recent.extend(recently_used_xbel(p.read_bytes(), str(p))))
    attempt(home / ".config/libreoffice/4/user/registrymodifications.xcu",
            lambda p: out.recent.extend(libreoffice_picklist(p.read_bytes(), str(p))))
    for base, browser in ((".config/chromium", "chromium"), (".config/google-chrome", "chromium")):
        for db in sorted((home / base).glob("*/History")) if (home / base).is_dir() else []:
            attempt(db, lambda p, b=browser: out.browsing.extend(browser_history(p, b, p.parent.name)))
    ff = home / ".mozilla/firefox"
    for db in sorted(ff.glob("*/places.sqlite")) if ff.is_dir() else []:
        attempt(db, lambda p: out.browsing.extend(browser_history(p, "firefox", p.parent.name)))


def read_traces(homes: Iterable[Path], kernel_logs: Iterable[Path] = (), journal: Path | None = None) -> Traces:
    out = Traces()
    for h in homes:
        read_home(Path(h), out)
    lines: list[tuple[str | None, str]] = []
    for log in kernel_logs:
        try:
            lines.extend(kernel_log_lines(Path(log).read_text(encoding="utf-8", errors="replace")))
        except OSError as exc:
            out.errors.append({"trace": str(log), "error": exc.strerror or str(exc)})
    if journal is not None:
        try:
            lines.extend(journal_lines(Path(journal).read_text(encoding="utf-8", errors="replace")))
        except (OSError, ValueError) as exc:
            out.errors.append({"trace": str(journal), "error": f"{type(exc).__name__}: {exc}"[:300]})
    out.usb = usb_history(lines)
    return out
