"""Usage traces in their real formats: kernel log and journal JSON, recently-used.xbel, LibreOffice's
registrymodifications.xcu, Chromium and Firefox history databases (read from a copy while locked)."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from agent_helpers import baomi

from agents.traces import (
    browser_history,
    journal_lines,
    kernel_log_lines,
    libreoffice_picklist,
    read_traces,
    recently_used_xbel,
    usb_history,
)

KERN = """2026-12-01T09:15:02.120000+08:00 ws01 kernel: usb 1-2: new high-speed USB device number 5 using xhci_hcd
2026-12-01T09:15:02.270000+08:00 ws01 kernel: usb 1-2: New USB device found, idVendor=0951, idProduct=1666, bcdDevice= 1.10
2026-12-01T09:15:02.270100+08:00 ws01 kernel: usb 1-2: New USB device strings: Mfr=1, Product=2, SerialNumber=3
2026-12-01T09:15:02.270200+08:00 ws01 kernel: usb 1-2: Product: DataTraveler 3.0
2026-12-01T09:15:02.270300+08:00 ws01 kernel: usb 1-2: Manufacturer: Kingston
2026-12-01T09:15:02.270400+08:00 ws01 kernel: usb 1-2: SerialNumber: 60A44C3FACF3B1A0B9C1
2026-12-01T09:15:02.280000+08:00 ws01 kernel: usb-storage 1-2:1.0: USB Mass Storage device detected
2026-12-01T09:15:03.300000+08:00 ws01 kernel: sd 6:0:0:0: [sdb] Attached SCSI removable disk
2026-12-01T09:20:00.000000+08:00 ws01 kernel: usb 1-3: New USB device found, idVendor=046d, idProduct=c52b, bcdDevice=12.11
2026-12-01T09:20:00.000100+08:00 ws01 kernel: usb 1-3: Product: USB Receiver
2026-12-01T09:20:00.000200+08:00 ws01 kernel: usbhid 1-3:1.0: input: Logitech USB Receiver
"""

XBEL = b"""<?xml version="1.0" encoding="UTF-8"?>
<xbel version="1.0" xmlns:bookmark="http://www.freedesktop.org/standards/desktop-bookmarks"
      xmlns:mime="http://www.freedesktop.org/standards/shared-mime-info">
  <bookmark href="file:///media/zhang/KINGSTON/%E6%9C%BA%E5%AF%86%E6%96%B9%E6%A1%88.docx"
            added="2026-12-01T01:16:00.000000Z" modified="2026-12-01T01:16:00.000000Z" visited="2026-12-01T01:16:00.000000Z">
    <info><metadata owner="http://freedesktop.org"><mime:mime-type type="application/vnd.openxmlformats-officedocument.wordprocessingml.document"/>
    <bookmark:applications><bookmark:application name="LibreOffice" exec="&apos;soffice %u&apos;" modified="2026-12-01T01:16:00Z" count="1"/></bookmark:applications>
    </metadata></info>
  </bookmark>
  <bookmark href="file://{HOME}/Documents/notes.txt" added="2026-11-30T08:00:00Z" modified="2026-11-30T08:00:00Z" visited="2026-11-30T08:00:00Z"/>
  <bookmark href="https://example.org/" added="2026-11-30T08:00:00Z" modified="2026-11-30T08:00:00Z" visited="2026-11-30T08:00:00Z"/>
</xbel>
"""

XCU = b"""<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Histories/Histories/org.openoffice.Office.Histories:HistoryInfo['PickList']/ItemList"><node oor:name="file:///home/zhang/%E5%B7%B2%E5%88%A0%E9%99%A4.odt" oor:op="replace"><prop oor:name="Title" oor:op="fuse"><value>x</value></prop></node></item>
<item oor:path="/org.openoffice.Office.Common/Misc"><prop oor:name="FirstRun" oor:op="fuse"><value>false</value></prop></item>
</oor:items>
"""


def test_usb_history_from_kernel_log_and_journal() -> None:
    (d,) = usb_history(kernel_log_lines(KERN))  # the mouse receiver is not storage
    assert (d.vendor, d.model, d.serial, d.vendor_id, d.product_id) == (
        "Kingston", "DataTraveler 3.0", "60A44C3FACF3B1A0B9C1", "0951", "1666")
    assert d.first_seen.startswith("2026-12-01T09:15:02")
    journal = "\n".join(json.dumps({"MESSAGE": line.split("kernel: ", 1)[1], "__REALTIME_TIMESTAMP": str(
        1764551702000000 + i * 1000000)}) for i, line in enumerate(KERN.strip().splitlines())) + "\n"
    (j,) = usb_history(journal_lines(journal))
    assert j.serial == "60A44C3FACF3B1A0B9C1" and j.first_seen and j.last_seen and j.first_seen <= j.last_seen
    # the same stick again a day later: one device, first and last seen
    again = KERN.replace("2026-12-01", "2026-12-02")
    (both,) = usb_history(kernel_log_lines(KERN + again))
    assert both.first_seen.startswith("2026-12-01") and both.last_seen.startswith("2026-12-02")


def test_recent_documents(tmp_path: Path) -> None:
    (tmp_path / "Documents").mkdir()
    (tmp_path / "Documents" / "notes.txt").write_text("x")
    docs = recently_used_xbel(XBEL.replace(b"{HOME}", str(tmp_path).encode()))
    by = {Path(d.path).name: d for d in docs}
    assert set(by) == {"机密方案.docx", "notes.txt"}, "web bookmarks are not documents"
    assert by["机密方案.docx"].on_removable and not by["机密方案.docx"].exists
    assert by["notes.txt"].exists and not by["notes.txt"].on_removable
    (lo,) = libreoffice_picklist(XCU)
    assert lo.path == "/home/zhang/已删除.odt" and not lo.exists


def _chromium(db: Path) -> None:
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE urls(id INTEGER PRIMARY KEY AUTOINCREMENT, url LONGVARCHAR, title LONGVARCHAR, "
                "visit_count INTEGER DEFAULT 0 NOT NULL, typed_count INTEGER DEFAULT 0 NOT NULL, "
                "last_visit_time INTEGER NOT NULL, hidden INTEGER DEFAULT 0 NOT NULL)")
    # 2025-12-01 01:00 UTC in WebKit µs since 1601
    t = (1764550800 + 11644473600) * 1_000_000
    con.executemany("INSERT INTO urls(url, title, visit_count, last_visit_time) VALUES (?,?,?,?)",
                    [("https://www.baidu.com/s?wd=x", "百度", 12, t), ("https://mail.qq.com/", "QQ邮箱", 3, t - 10**9),
                     ("http://127.0.0.1:8443/", "local", 5, t)])
    con.commit()
    con.close()


def _firefox(db: Path) -> None:
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url LONGVARCHAR, title LONGVARCHAR, "
                "rev_host LONGVARCHAR, visit_count INTEGER DEFAULT 0, hidden INTEGER DEFAULT 0 NOT NULL, "
                "typed INTEGER DEFAULT 0 NOT NULL, frecency INTEGER DEFAULT -1 NOT NULL, last_visit_date INTEGER)")
    con.executemany("INSERT INTO moz_places(url, title, visit_count, last_visit_date) VALUES (?,?,?,?)",
                    [("https://www.weibo.com/", "微博", 4, 1764550800_000000), ("place:sort=8", None, 0, None)])
    con.commit()
    con.close()


def test_browser_histories_read_from_a_copy_while_locked(tmp_path: Path) -> None:
    home = tmp_path / "home"
    chrome = home / ".config" / "chromium" / "Default" / "History"
    chrome.parent.mkdir(parents=True)
    _chromium(chrome)
    ff = home / ".mozilla" / "firefox" / "abcd.default-release" / "places.sqlite"
    ff.parent.mkdir(parents=True)
    _firefox(ff)
    lock = sqlite3.connect(chrome)
    lock.execute("BEGIN EXCLUSIVE")  # the browser is running and holds the database
    try:
        visits = browser_history(chrome, "chromium", "Default")
    finally:
        lock.rollback()
        lock.close()
    assert [(v.host, v.visits) for v in visits] == [("www.baidu.com", 12), ("mail.qq.com", 3)]
    assert visits[0].last_visit == "2025-12-01T01:00:00+00:00"  # WebKit µs since 1601 read right
    t = read_traces([home])
    assert {(b.browser, b.host) for b in t.browsing} == {("chromium", "www.baidu.com"), ("chromium", "mail.qq.com"),
                                                          ("firefox", "www.weibo.com")}
    assert t.errors == []


def test_unexpected_formats_are_reported_not_fatal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".local" / "share").mkdir(parents=True)
    (home / ".local" / "share" / "recently-used.xbel").write_bytes(b"<xbel><bookmark href=")
    bad = home / ".config" / "chromium" / "Default" / "History"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a database at all" * 100)
    t = read_traces([home])
    assert len(t.errors) == 2 and t.recent == [] and t.browsing == []


def test_check_reports_traces_on_a_classified_host(tmp_path: Path) -> None:
    home = tmp_path / "home"
    chrome = home / ".config" / "chromium" / "Default" / "History"
    chrome.parent.mkdir(parents=True)
    _chromium(chrome)
    (home / ".local" / "share").mkdir(parents=True)
    (home / ".local" / "share" / "recently-used.xbel").write_bytes(XBEL.replace(b"{HOME}", str(home).encode()))
    (home / "Documents").mkdir()
    (home / "Documents" / "notes.txt").write_text("x")  # still there: not a finding
    kern = tmp_path / "kern.log"
    kern.write_text(KERN)
    root = tmp_path / "root"
    (root / "sys" / "class" / "net").mkdir(parents=True)
    (root / "proc" / "net").mkdir(parents=True)
    (root / "proc" / "net" / "route").write_text("Iface\tDestination\n")
    docs = tmp_path / "docs"
    docs.mkdir()
    p = baomi("check", "--root", str(docs), "--host-role", "classified:secret", "--home", str(home),
              "--kernel-log", str(kern), "--sys-root", str(root), "--no-cache", "--format", "json", check=False)
    out = json.loads(p.stdout)
    kinds = [f["trace"] for f in out["trace_findings"]]
    assert kinds.count("web_use") == 2 and kinds.count("usb_storage") == 1 and kinds.count("recent_document") == 1
    assert p.returncode == 1
    p = baomi("check", "--root", str(docs), "--host-role", "unclassified", "--home", str(home), "--sys-root",
              str(root), "--no-cache", "--format", "json", check=False)
    out = json.loads(p.stdout)
    assert [f["trace"] for f in out["trace_findings"]] == ["recent_document"], "web use is fine off classified hosts"
