"""Removable media edge cases: a registration must name the whole identity, and a removal whose
udev event carries only the kernel's properties still ends the medium's life in the monitor."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from agents.media import MediaEvent, MediaMonitor, Medium, classify_location, registry_from_params

STICK = {
    "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host6/target6:0:0/6:0:0:0/block/sdb/sdb1",
    "SUBSYSTEM": "block", "DEVNAME": "/dev/sdb1", "DEVTYPE": "partition", "MAJOR": "8", "MINOR": "17",
    "ID_VENDOR": "Kingston", "ID_MODEL": "DataTraveler_3.0", "ID_SERIAL_SHORT": "60A44C3FACF3B1A0B9C1",
    "ID_BUS": "usb", "ID_PATH": "pci-0000:00:14.0-usb-0:2:1.0-scsi-0:0:0:0", "ID_FS_UUID": "1A2B-3C4D",
    "ID_FS_TYPE": "vfat",
}
# What the kernel itself announces on removal (`udevadm monitor --kernel --property`): no ID_*
# properties — the udev database entry may be gone (udevd restarted, db cleaned).
KERNEL_REMOVE = {"ACTION": "remove", "DEVPATH": STICK["DEVPATH"], "SUBSYSTEM": "block", "DEVNAME": "/dev/sdb1",
                 "DEVTYPE": "partition", "MAJOR": "8", "MINOR": "17", "SEQNUM": "5123"}


@pytest.mark.parametrize("entry", [
    {"fs_uuid": "1A2B-3C4D", "level": "secret"},
    {"serial": "60A44C3FACF3B1A0B9C1", "level": "secret"},
])
def test_a_registration_needs_both_serial_and_file_system_uuid(entry: dict[str, str]) -> None:
    # A FAT volume id is set at will (mkfs.vfat -i 1A2B3C4D): an entry naming only the UUID would
    # make any stick formatted so a classified medium; one naming only the serial survives a
    # reformat that the register should notice.
    with pytest.raises(ValueError, match=r"\.(serial|fs_uuid): "):
        registry_from_params([entry])
    forged = Medium(devnode="/dev/sdc1", serial="ANYSTICK", fs_uuid="1A2B-3C4D")
    assert classify_location(forged, [entry])["kind"] == "removable_medium"


def test_full_identity_matches_whatever_the_port(tmp_path: Path) -> None:
    reg = [{"serial": "60A44C3FACF3B1A0B9C1", "fs_uuid": "1a2b-3c4d", "level": "secret", "holder": "机要室"}]
    a = Medium(devnode="/dev/sdb1", serial="60A44C3FACF3B1A0B9C1", fs_uuid="1A2B-3C4D", devnum="8:17")
    b = Medium(devnode="/dev/sdd1", serial="60A44C3FACF3B1A0B9C1", fs_uuid="1A2B-3C4D", devnum="8:49")
    assert classify_location(a, reg) == classify_location(b, reg)
    assert classify_location(a, reg)["medium_level"] == "secret"


def test_kernel_only_remove_event_still_removes_the_medium(tmp_path: Path) -> None:
    mi = tmp_path / "mountinfo"
    mi.write_text("22 1 8:2 / / rw - ext4 /dev/sda2 rw\n")
    seen: list[MediaEvent] = []
    mon = MediaMonitor(seen.append, mountinfo=str(mi))
    mon.feed("add", STICK)
    mi.write_text("22 1 8:2 / / rw - ext4 /dev/sda2 rw\n95 22 8:17 / /media/u/STICK rw - vfat /dev/sdb1 rw\n")
    mon.check_mounts()
    mon.feed("remove", KERNEL_REMOVE)  # yanked while mounted; the event lacks the ID_* properties
    assert [(e.action, e.medium.serial) for e in seen] == [
        ("add", "60A44C3FACF3B1A0B9C1"), ("mount", "60A44C3FACF3B1A0B9C1"),
        ("unmount", "60A44C3FACF3B1A0B9C1"), ("remove", "60A44C3FACF3B1A0B9C1")]
    assert mon.media == {} and mon.mounted == {}
    # a remove for a device never added (an internal disk, a loop device) stays silent
    mon.feed("remove", {**KERNEL_REMOVE, "DEVNAME": "/dev/loop3", "DEVPATH": "/devices/virtual/block/loop3"})
    assert len(seen) == 4


def test_mountinfo_with_raw_utf8_names() -> None:
    """The kernel escapes only space, tab, newline and backslash in mountinfo; a Chinese volume
    label mounted by udisks (/media/张三/保密 U盘) appears as raw UTF-8. One such mount anywhere on
    the system used to make every mount check fail, so no medium was ever seen mounted."""
    from agents.media import parse_mountinfo

    text = ("22 1 8:2 / / rw - ext4 /dev/sda2 rw\n"
            "95 22 8:17 / /media/张三/保密\\040U盘 rw,nosuid - vfat /dev/sdb1 rw\n"
            "96 22 8:33 / /mnt/back\\134slash\\011tab rw - vfat /dev/sdc1 rw\n")
    mounts = parse_mountinfo(text)
    assert [m.mountpoint for m in mounts] == ["/", "/media/张三/保密 U盘", "/mnt/back\\slash\ttab"]
    # the same, read the way the monitor reads the file (invalid UTF-8 kept as surrogates)
    raw = text.encode() + b"97 22 8:49 / /mnt/\xff\xfe rw - vfat /dev/sdd1 rw\n"
    mounts = parse_mountinfo(raw.decode("utf-8", "surrogateescape"))
    assert mounts[1].mountpoint == "/media/张三/保密 U盘"
    assert os.fsencode(mounts[3].mountpoint) == b"/mnt/\xff\xfe"


def test_a_chinese_mount_elsewhere_does_not_blind_the_monitor(tmp_path: Path) -> None:
    mi = tmp_path / "mountinfo"
    mi.write_text("22 1 8:2 / / rw - ext4 /dev/sda2 rw\n"
                  "40 22 8:65 / /media/李四/资料 rw - vfat /dev/sde1 rw\n"
                  "95 22 8:17 / /media/zhang/STICK rw - vfat /dev/sdb1 rw\n", encoding="utf-8")
    seen: list[MediaEvent] = []
    mon = MediaMonitor(seen.append, mountinfo=str(mi))
    mon.feed("add", STICK)
    assert [(e.action, e.mountpoint) for e in seen] == [("add", None), ("mount", Path("/media/zhang/STICK"))]


def test_udev_encoded_label_with_raw_chinese() -> None:
    """udev's *_ENC values escape only unsafe bytes (\\x20 for a space) and keep valid UTF-8 as it
    is, so a label mixes both: `保密\\x20U盘`. It used to come out as '?? U?'."""
    from agents.media import medium_from_properties

    m = medium_from_properties({**STICK, "ID_FS_LABEL": "保密_U盘", "ID_FS_LABEL_ENC": "保密\\x20U盘",
                                "ID_VENDOR_ENC": "\\xe5\\x8d\\x8e\\xe4\\xb8\\xba\\x20", "ID_MODEL_ENC": "USB\\x20DISK\\x202.0"})
    assert m is not None
    assert m.fs_label == "保密 U盘"
    assert m.vendor == "华为" and m.model == "USB DISK 2.0"
