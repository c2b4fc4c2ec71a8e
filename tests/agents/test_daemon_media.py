"""The daemon's side of removable media, through the real `agents.media.MediaMonitor`: a recorded
udev `add` (the same entry point pyudev's live events take) and a mountinfo change make the
medium a watched place with its policy location: unregistered → removable_medium → CN-SEC-004,
files already on it and copies made while mounted are sealed; registered but approved below the
file's level → CN-SEC-003. `device` events are reported; unmount and removal stop the watch."""
from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from agent_helpers import Collector, marked_docx, rows, wait_for, write_config

from agents.config import load_config
from agents.daemon import Agent
from agents.media import MediaMonitor
from agents.vault import keygen
from reports.server import init_data

SERIAL, FS_UUID = "60A44C3FACF3B1A0B9C1", "1A2B-3C4D"
# `udevadm monitor --property --udev` of a USB stick's partition (as in tests/agents/test_media.py).
STICK = {
    "ACTION": "add", "SUBSYSTEM": "block", "DEVNAME": "/dev/sdb1", "DEVTYPE": "partition", "MAJOR": "8",
    "MINOR": "17", "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host6/target6:0:0/6:0:0:0/block/sdb/sdb1",
    "ID_VENDOR": "Kingston", "ID_MODEL": "DataTraveler_3.0", "ID_SERIAL_SHORT": SERIAL, "ID_BUS": "usb",
    "ID_FS_UUID": FS_UUID, "ID_FS_LABEL": "USB", "ID_FS_TYPE": "vfat", "ID_PART_ENTRY_SIZE": "15126528",
}
ROOT_LINE = "22 1 8:2 / / rw - ext4 /dev/sda2 rw\n"


@pytest.fixture
def running(tmp_path: Path) -> Iterator[SimpleNamespace]:
    init_data(tmp_path / "srv")
    c = Collector(tmp_path / "srv").start()
    agent = t = None
    try:
        c.enroll(tmp_path / "state").close()
        _key, pub = keygen(tmp_path / "officer")
        (tmp_path / "Outbox").mkdir()
        site = tmp_path / "site.yaml"
        site.write_text('baomi_policy: 1\npack: site\nversion: "1"\nextends: [cn-secrecy]\nparams:\n'
                        '  registered_media:\n    - {serial: REG0001, fs_uuid: AAAA-0001, level: confidential,'
                        ' holder: 机要室}\n', encoding="utf-8")
        cfg = write_config(tmp_path / "agent.yaml", collector=c, state=tmp_path / "state", vault=tmp_path / "vault",
                           officer_pub=pub, watch=[(tmp_path / "Outbox", "mail")], heartbeat=30,
                           extra={"media": {"enabled": False}, "policy": {"sources": [str(site)]}})
        agent = Agent(load_config(cfg), str(cfg))
        t = threading.Thread(target=agent.run, daemon=True)
        t.start()
        assert wait_for(lambda: agent.watcher.places, 20)
        mountinfo = tmp_path / "mountinfo"
        mountinfo.write_text(ROOT_LINE)
        monitor = MediaMonitor(agent.on_media_event, mountinfo=str(mountinfo))
        yield SimpleNamespace(root=tmp_path, collector=c, agent=agent, monitor=monitor, mountinfo=mountinfo)
    finally:
        if agent is not None and t is not None:
            agent.stop_event.set()
            t.join(30)
        c.stop()


def test_unregistered_stick_scanned_on_mount_and_watched(running: SimpleNamespace) -> None:
    r = running
    stick = r.root / "media" / "USB"
    stick.mkdir(parents=True)
    already = stick / "already.docx"
    shutil.copyfile(marked_docx(r.root / "a.docx"), already)
    r.monitor.feed("add", STICK)
    r.mountinfo.write_text(ROOT_LINE + f"95 22 8:17 / {stick} rw,nosuid - vfat /dev/sdb1 rw\n")
    r.monitor.check_mounts()  # what the mountinfo poll does
    assert wait_for(lambda: not already.exists(), 10)  # the incremental scan on mount
    later = stick / "sub" / "later.docx"
    later.parent.mkdir()
    shutil.copyfile(r.root / "a.docx", later)  # a copy onto the mounted medium
    assert wait_for(lambda: not later.exists(), 10)
    r.mountinfo.write_text(ROOT_LINE)
    r.monitor.check_mounts()
    assert stick not in [p.path for p in r.agent.watcher.places]
    r.monitor.feed("remove", STICK)
    assert wait_for(lambda: len(rows(r.collector, type="action")) >= 2 and len(rows(r.collector, type="device")) >= 4, 10)
    vio = rows(r.collector, type="violation")
    assert {v["rule"] for v in vio} == {"CN-SEC-004", "CN-SEC-001"}
    assert all(v["payload"]["location"] == "removable_medium" and v["payload"]["medium_id"] == f"{SERIAL}:{FS_UUID}"
               for v in vio)
    dev = rows(r.collector, type="device")
    assert [d["payload"]["event"] for d in dev] == ["add", "mount", "unmount", "remove"]
    p = dev[1]["payload"]
    assert (p["serial"], p["fs_uuid"], p["vendor"], p["mountpoint"], p["location"]) == (
        SERIAL, FS_UUID, "Kingston", str(stick), "removable_medium")


def test_registered_medium_above_its_level(running: SimpleNamespace) -> None:
    r = running
    stick = r.root / "media" / "REG"
    stick.mkdir(parents=True)
    r.monitor.feed("add", {**STICK, "ID_SERIAL_SHORT": "REG0001", "ID_FS_UUID": "AAAA-0001"})
    r.mountinfo.write_text(ROOT_LINE + f"95 22 8:17 / {stick} rw - vfat /dev/sdb1 rw\n")
    r.monitor.check_mounts()
    assert wait_for(lambda: stick in [p.path for p in r.agent.watcher.places], 10)
    f = stick / "secret.docx"
    shutil.copyfile(marked_docx(r.root / "s.docx"), f)  # 机密 (secret) onto a medium approved for 秘密
    assert wait_for(lambda: not f.exists(), 10)
    assert wait_for(lambda: rows(r.collector, type="action"), 10)
    rules = {v["rule"] for v in rows(r.collector, type="violation")}
    assert "CN-SEC-003" in rules and "CN-SEC-004" not in rules
    dev = rows(r.collector, type="device")
    assert dev[-1]["payload"]["location"] == "classified_medium" and dev[-1]["payload"]["holder"] == "机要室"


def test_broken_media_events_never_kill_the_agent(running: SimpleNamespace) -> None:
    r = running
    r.agent.on_media_event(object())  # logged, not raised
    r.monitor.feed("add", {**STICK, "ID_FS_UUID": ""})  # odd properties
    (r.root / "Outbox" / "x.docx").write_bytes((r.root / "a.docx").read_bytes() if (r.root / "a.docx").exists()
                                               else marked_docx(r.root / "a.docx").read_bytes())
    assert wait_for(lambda: not (r.root / "Outbox" / "x.docx").exists(), 10)  # still judging
