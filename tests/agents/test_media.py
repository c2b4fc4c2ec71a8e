"""Removable media: recorded udev events through the monitor's real entry point, mountinfo,
registered vs unregistered media decided by the shipped cn-secrecy rules, and a real loop-mounted
FAT image where the machine allows it."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agents.media import (
    MediaEvent,
    MediaMonitor,
    Medium,
    classify_location,
    medium_from_properties,
    medium_of_device_file,
    mountpoints_of,
    parse_mountinfo,
    registry_from_params,
)

# Properties as `udevadm monitor --property --udev` prints them for a Kingston stick's partition.
STICK = {
    "ACTION": "add", "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host6/target6:0:0/6:0:0:0/block/sdb/sdb1",
    "SUBSYSTEM": "block", "DEVNAME": "/dev/sdb1", "DEVTYPE": "partition", "MAJOR": "8", "MINOR": "17",
    "ID_VENDOR": "Kingston", "ID_VENDOR_ENC": "Kingston", "ID_MODEL": "DataTraveler_3.0",
    "ID_MODEL_ENC": "DataTraveler\\x203.0", "ID_SERIAL": "Kingston_DataTraveler_3.0_60A44C3FACF3B1A0B9C1-0:0",
    "ID_SERIAL_SHORT": "60A44C3FACF3B1A0B9C1", "ID_BUS": "usb", "ID_PATH": "pci-0000:00:14.0-usb-0:2:1.0-scsi-0:0:0:0",
    "ID_FS_UUID": "1A2B-3C4D", "ID_FS_LABEL": "____", "ID_FS_LABEL_ENC": "\\xe4\\xbf\\x9d\\xe5\\xaf\\x86",
    "ID_FS_TYPE": "vfat", "ID_PART_ENTRY_SIZE": "15126528",
}
INTERNAL = {**STICK, "DEVNAME": "/dev/sda2", "ID_BUS": "ata", "ID_PATH": "pci-0000:00:17.0-ata-1",
            "DEVPATH": "/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda2"}
SD = {"SUBSYSTEM": "block", "DEVNAME": "/dev/mmcblk0p1", "DEVTYPE": "partition", "MAJOR": "179", "MINOR": "1",
      "DEVPATH": "/devices/platform/soc/mmc_host/mmc0/mmc0:aaaa/block/mmcblk0/mmcblk0p1", "ID_FS_TYPE": "exfat",
      "ID_FS_UUID": "64E1-5F0A", "ID_SERIAL": "0x1a2b3c4d", "ID_NAME": "SC32G"}
MOUNTINFO = (
    "22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw\n"
    "95 22 8:17 / /media/zhang/\\344\\277\\235\\345\\257\\206\\040U\\347\\233\\230 rw,nosuid,nodev shared:50 - vfat "
    "/dev/sdb1 rw,uid=1000\n"
)


def test_udev_properties_to_medium() -> None:
    m = medium_from_properties(STICK)
    assert m is not None
    assert (m.vendor, m.model, m.serial, m.fs_uuid, m.fs_type, m.bus) == (
        "Kingston", "DataTraveler 3.0", "60A44C3FACF3B1A0B9C1", "1A2B-3C4D", "vfat", "usb")
    assert m.fs_label == "保密" and m.size == 15126528 * 512 and m.devnum == "8:17"
    assert medium_from_properties(INTERNAL) is None, "an internal disk is not removable media"
    assert medium_from_properties({**STICK, "ID_FS_TYPE": ""}) is None, "no file system, nothing to mount"
    sd = medium_from_properties(SD)
    assert sd is not None and sd.bus == "mmc"


def test_port_change_keeps_the_identity() -> None:
    other_port = {**STICK, "DEVNAME": "/dev/sdc1", "MINOR": "33",
                  "DEVPATH": STICK["DEVPATH"].replace("1-2/1-2:1.0", "2-1/2-1:1.0").replace("sdb", "sdc"),
                  "ID_PATH": "pci-0000:00:14.0-usb-0:1:1.0-scsi-0:0:0:0"}
    a, b = medium_from_properties(STICK), medium_from_properties(other_port)
    assert a is not None and b is not None and a.devnode != b.devnode
    assert a.medium_id == b.medium_id


def test_mountinfo_with_escaped_chinese_mountpoint() -> None:
    mounts = parse_mountinfo(MOUNTINFO + "garbage line\n")
    m = medium_from_properties(STICK)
    assert m is not None
    assert mountpoints_of(m, mounts) == [Path("/media/zhang/保密 U盘")]


def test_recorded_events_through_the_monitor(tmp_path: Path) -> None:
    mi = tmp_path / "mountinfo"
    mi.write_text("22 1 8:2 / / rw - ext4 /dev/sda2 rw\n")
    seen: list[MediaEvent] = []
    boom = {"n": 0}

    def on_event(ev: MediaEvent) -> None:
        seen.append(ev)
        if ev.action == "add" and boom["n"] == 0:
            boom["n"] += 1
            raise RuntimeError("a callback bug")  # must not kill the monitor

    mon = MediaMonitor(on_event, mountinfo=str(mi))
    mon.feed("add", STICK)  # udev's add comes before the mount
    mon.feed("add", INTERNAL)
    assert [e.action for e in seen] == ["add"]
    mi.write_text(MOUNTINFO)
    mon.check_mounts()
    assert [e.action for e in seen] == ["add", "mount"]
    assert seen[1].mountpoint == Path("/media/zhang/保密 U盘")
    mon.check_mounts()
    assert len(seen) == 2, "no duplicate mount event"
    mi.write_text("22 1 8:2 / / rw - ext4 /dev/sda2 rw\n")
    mon.check_mounts()
    assert seen[-1].action == "unmount"
    mi.write_text(MOUNTINFO)
    mon.check_mounts()
    mon.feed("remove", STICK)  # pulled out while mounted
    assert [e.action for e in seen] == ["add", "mount", "unmount", "mount", "unmount", "remove"]


def test_registry_and_location() -> None:
    m = medium_from_properties(STICK)
    assert m is not None
    reg = [{"serial": "60A44C3FACF3B1A0B9C1", "fs_uuid": "1a2b-3c4d", "level": "secret", "holder": "机要室 张三"}]
    loc = classify_location(m, reg)
    assert loc["kind"] == "classified_medium" and loc["medium_level"] == "secret"
    cloned = Medium(devnode="/dev/sdc1", serial="OTHERSERIAL", fs_uuid="1A2B-3C4D")
    assert classify_location(cloned, reg)["kind"] == "removable_medium", "a cloned file system is not the medium"
    assert classify_location(m, [])["kind"] == "removable_medium"
    with pytest.raises(ValueError, match="level"):
        registry_from_params([{"serial": "x", "level": "机密"}])


def _violations(level_marking: str, loc: dict) -> set[str]:
    from policies.engine import events_for_scan_record, load_policy

    ps = load_policy(["cn-secrecy"])
    rec = {"path": "/media/zhang/U/a.docx", "level": None, "errors": [], "sha256": "0" * 64,
           "findings": [{"level": level_marking, "kind": "marking", "text": "x", "member": None, "period": None,
                         "rule": "cn.marking", "confidence": 0.98}]}
    ctx = ps.context()
    out: set[str] = set()
    for ev in events_for_scan_record(rec, host_role="classified", host_level="top_secret", location=loc["kind"],
                                     operation="copy", medium_id=loc.get("medium_id"),
                                     medium_level=loc.get("medium_level")):
        out |= {v.rule_id for v in ps.evaluate(ev, ctx)}
    return out


def test_shipped_rules_decide_registered_vs_unregistered() -> None:
    m = medium_from_properties(STICK)
    assert m is not None
    reg = [{"serial": m.serial, "fs_uuid": m.fs_uuid, "level": "secret"}]
    unregistered = _violations("secret", classify_location(m, []))
    registered_ok = _violations("secret", classify_location(m, reg))
    above = _violations("top_secret", classify_location(m, reg))
    assert "CN-SEC-004" in unregistered
    assert "CN-SEC-004" not in registered_ok and "CN-SEC-003" not in registered_ok
    assert "CN-SEC-003" in above


def test_real_loop_device_with_a_fat_file_system(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for losetup and mount")
    for tool in ("losetup", "mkfs.vfat", "mount", "blkid"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    img = tmp_path / "stick.img"
    with open(img, "wb") as fh:
        fh.truncate(16 * 1024 * 1024)
    kernel_fs = Path("/proc/filesystems").read_text().split()
    if "vfat" in kernel_fs:
        fs, want_uuid = "vfat", "1A2B-3C4D"
        subprocess.run(["mkfs.vfat", "-n", "BAOMI", "-i", "1A2B3C4D", str(img)], check=True, capture_output=True)
    elif "ext4" in kernel_fs and shutil.which("mkfs.ext4"):
        # this kernel has no vfat (a container host): the same path with the file system it has
        fs, want_uuid = "ext4", "5f2b3c4d-1a2b-4c3d-8e9f-0123456789ab"
        subprocess.run(["mkfs.ext4", "-q", "-L", "BAOMI", "-U", want_uuid, str(img)], check=True, capture_output=True)
    else:
        pytest.skip("the kernel mounts neither vfat nor ext4")
    p = subprocess.run(["losetup", "--find", "--show", str(img)], capture_output=True, text=True)
    if p.returncode:
        pytest.skip(f"no loop device here: {p.stderr.strip()}")
    dev = p.stdout.strip()
    mnt = tmp_path / "mnt point"
    mnt.mkdir()
    try:
        m = medium_of_device_file(dev)
        assert m is not None and m.fs_uuid.upper() == want_uuid.upper() and m.fs_type == fs and m.fs_label == "BAOMI"
        if subprocess.run(["mount", dev, str(mnt)], capture_output=True).returncode:
            pytest.skip("cannot mount here (no CAP_SYS_ADMIN)")
        try:
            mounts = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
            assert mountpoints_of(m, mounts) == [mnt], "the mount point is found from mountinfo, space and all"
            seen: list[MediaEvent] = []
            mon = MediaMonitor(seen.append)
            mon.media[m.devnode] = m
            mon.check_mounts()
            assert [(e.action, e.mountpoint) for e in seen] == [("mount", mnt)]
        finally:
            subprocess.run(["umount", str(mnt)], check=False)
        mon.check_mounts()
        assert seen[-1].action == "unmount"
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)
