"""The live monitor: MediaMonitor.start() with pyudev's netlink monitor and the mountinfo watcher
thread, against a real loop-mounted file system (root with loop devices; skipped otherwise).

A loop device is not USB storage, so its udev `add` is fed through `feed()` — the entry point the
pyudev thread calls — with the properties pyudev and blkid read for the real device; mounting and
unmounting are real and must be noticed by the watcher thread itself, even when the callback
raises on the first event."""
from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.media import MediaEvent, MediaMonitor, medium_of_device_file


@pytest.fixture()
def loop_fs(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    if os.geteuid() != 0:
        pytest.skip("needs root for losetup and mount")
    for tool in ("losetup", "mount", "umount", "blkid"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    kernel_fs = Path("/proc/filesystems").read_text().split()
    img = tmp_path / "stick.img"
    with open(img, "wb") as fh:
        fh.truncate(16 * 1024 * 1024)
    if "vfat" in kernel_fs and shutil.which("mkfs.vfat"):
        subprocess.run(["mkfs.vfat", "-n", "LIVE", "-i", "0BADF00D", str(img)], check=True, capture_output=True)
    elif "ext4" in kernel_fs and shutil.which("mkfs.ext4"):
        subprocess.run(["mkfs.ext4", "-q", "-L", "LIVE", str(img)], check=True, capture_output=True)
    else:
        pytest.skip("neither vfat (mkfs.vfat) nor ext4 available")
    p = subprocess.run(["losetup", "--find", "--show", str(img)], capture_output=True, text=True)
    if p.returncode:
        pytest.skip(f"no loop device here: {p.stderr.strip()}")
    dev = p.stdout.strip()
    mnt = tmp_path / "U盘 live\tmount"  # space, tab and CJK: mountinfo escapes the first two
    mnt.mkdir()
    try:
        yield dev, mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
        subprocess.run(["losetup", "-d", dev], capture_output=True)


def _wait(pred: object, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_live_monitor_sees_real_mounts_and_survives_a_failing_callback(loop_fs: tuple[str, Path]) -> None:
    dev, mnt = loop_fs
    medium = medium_of_device_file(dev)
    assert medium is not None and medium.fs_label == "LIVE"
    seen: list[MediaEvent] = []
    lock = threading.Lock()
    calls = 0

    def on_event(ev: MediaEvent) -> None:
        nonlocal calls
        with lock:
            calls += 1
            seen.append(ev)
            if calls == 1:
                raise RuntimeError("a buggy consumer")  # must not end the monitor

    mon = MediaMonitor(on_event, poll_interval=5.0)  # long: a change must wake the thread (POLLPRI)
    try:
        mon.start()
    except Exception as exc:  # noqa: BLE001 - no libudev / netlink in this sandbox
        pytest.skip(f"pyudev monitor cannot start here: {exc}")
    try:
        with mon._lock:  # noqa: SLF001 - the loop device's udev add, as feed() would record it
            mon.media[medium.devnode] = medium
        if subprocess.run(["mount", dev, str(mnt)], capture_output=True).returncode:
            pytest.skip("cannot mount here (no CAP_SYS_ADMIN)")
        t0 = time.monotonic()
        assert _wait(lambda: any(e.action == "mount" for e in seen), 4.0), seen
        assert time.monotonic() - t0 < 4.0  # woken by the mount table change, not the 5 s timer
        mount = next(e for e in seen if e.action == "mount")
        assert mount.mountpoint == mnt and mount.medium.fs_uuid == medium.fs_uuid
        subprocess.run(["umount", str(mnt)], check=True, capture_output=True)
        # the callback raised on the mount: the thread lives on and reports the unmount
        assert _wait(lambda: any(e.action == "unmount" for e in seen), 4.0), seen
        assert all(t.is_alive() for t in mon._threads)  # noqa: SLF001
    finally:
        mon.stop()
    assert not any(t.is_alive() for t in mon._threads)  # noqa: SLF001
