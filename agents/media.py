"""Removable media: USB and SD/MMC storage seen through udev (pyudev), mounts through mountinfo.

    MediaMonitor(on_event).start()   # on_event(MediaEvent(action, medium, mountpoint))

Actions: `add` and `remove` (the block device, from udev), `mount` and `unmount` (from
/proc/self/mountinfo: udev's `add` arrives before the desktop or the officer mounts the medium,
so mounts are found by watching mountinfo, not by waiting on udev). A medium's identity is its
hardware serial and its file system's UUID — stable across USB ports and hubs, unlike the device
node (`/dev/sdb1` today, `/dev/sdc1` tomorrow).

Recorded udev events (the properties `udevadm monitor --property` prints) go through the same
`feed()` that pyudev's monitor thread calls, so tests drive the real code path. An exception in
the callback is logged and the monitor goes on (pyudev's own observer thread would die of it).

`classify_location(medium, registry)` places a medium for the policy: a medium registered in the
signed policy bundle (`params.registered_media`: serial + file-system UUID → approved level and
holder) is a `classified_medium` with its `medium_level`; any other is a `removable_medium`.
"""
from __future__ import annotations

import logging
import os
import re
import select
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policies.media import RegisteredMedium, parse_registry

log = logging.getLogger("baomi.agent.media")

__all__ = ["MediaEvent", "MediaMonitor", "Medium", "RegisteredMedium", "classify_location", "device_event",
           "medium_from_properties",
           "parse_mountinfo", "registry_from_params"]


@dataclass(frozen=True)
class Medium:
    """A removable storage medium (a partition, or a whole disk holding a file system)."""

    devnode: str
    serial: str
    fs_uuid: str
    vendor: str = ""
    model: str = ""
    size: int = 0
    fs_label: str = ""
    fs_type: str = ""
    bus: str = ""
    devnum: str = ""  # "major:minor", as mountinfo names the device

    @property
    def medium_id(self) -> str:
        """Stable identity: hardware serial and file-system UUID (either may be missing)."""
        return f"{self.serial or '?'}:{self.fs_uuid or '?'}"


@dataclass(frozen=True)
class MediaEvent:
    action: str  # add | remove | mount | unmount
    medium: Medium
    mountpoint: Path | None = None


# -- udev properties → Medium ------------------------------------------------------------------
def _is_removable_storage(props: Mapping[str, str]) -> bool:
    if props.get("SUBSYSTEM", "block") != "block":
        return False
    if props.get("DEVTYPE") not in ("disk", "partition"):
        return False
    bus = props.get("ID_BUS", "")
    path = props.get("DEVPATH", "") + props.get("ID_PATH", "")
    sd = props.get("ID_DRIVE_FLASH_SD") == "1" or "/mmc" in path or props.get("DEVNAME", "").startswith("/dev/mmcblk")
    return bus == "usb" or "usb" in props.get("ID_PATH", "") or sd


def medium_from_properties(props: Mapping[str, str]) -> Medium | None:
    """The medium a udev block event describes, or None for anything that is not removable
    storage with a file system (internal disks, loop devices, a stick's bare partition table)."""
    if not _is_removable_storage(props) or not props.get("ID_FS_TYPE"):
        return None
    size = 0
    try:
        size = int(props.get("SIZE_BYTES") or 0) or int(props.get("ID_PART_ENTRY_SIZE") or 0) * 512
    except ValueError:
        size = 0
    major, minor = props.get("MAJOR", ""), props.get("MINOR", "")
    return Medium(devnode=props.get("DEVNAME", ""),
                  serial=props.get("ID_SERIAL_SHORT") or props.get("ID_SERIAL", ""),
                  fs_uuid=props.get("ID_FS_UUID", ""),
                  vendor=_udev_unescape(props.get("ID_VENDOR_ENC") or props.get("ID_VENDOR", "")).strip(),
                  model=_udev_unescape(props.get("ID_MODEL_ENC") or props.get("ID_MODEL", "")).strip(),
                  size=size, fs_label=_udev_unescape(props.get("ID_FS_LABEL_ENC") or props.get("ID_FS_LABEL", "")),
                  fs_type=props.get("ID_FS_TYPE", ""),
                  bus=props.get("ID_BUS", "mmc" if "mmc" in props.get("DEVNAME", "") else ""),
                  devnum=f"{major}:{minor}" if major and minor else "")


_HEX_ESC = re.compile(rb"\\x([0-9a-fA-F]{2})")


def _udev_unescape(s: str) -> str:
    """udev's `*_ENC` values escape unsafe bytes as \\xNN and keep valid UTF-8 as it is, so a
    Chinese label mixes both (`保密\\x20U盘`): unescape on the bytes, then decode."""
    if "\\x" not in s:
        return s
    raw = _HEX_ESC.sub(lambda m: bytes([int(m.group(1), 16)]), s.encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "replace")


# -- mountinfo -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mount:
    devnum: str
    mountpoint: str
    source: str
    fs_type: str


_OCT_ESC = re.compile(rb"\\([0-7]{3})")


def _mount_unescape(s: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040); every other byte —
    a Chinese label's UTF-8 included — stands as it is. Work on the bytes (text read with
    surrogateescape goes back to them exactly) and decode like any file name."""
    raw = _OCT_ESC.sub(lambda m: bytes([int(m.group(1), 8) & 0xFF]), os.fsencode(s))
    return os.fsdecode(raw)


def parse_mountinfo(text: str) -> list[Mount]:
    """Mounts listed in /proc/PID/mountinfo (proc(5)); malformed lines are skipped."""
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        f = left.split(" ")
        r = right.split(" ")
        if not sep or len(f) < 5 or len(r) < 2:
            continue
        out.append(Mount(devnum=f[2], mountpoint=_mount_unescape(f[4]), source=_mount_unescape(r[1]), fs_type=r[0]))
    return out


def mountpoints_of(medium: Medium, mounts: Iterable[Mount]) -> list[Path]:
    return [Path(m.mountpoint) for m in mounts
            if (medium.devnum and m.devnum == medium.devnum) or (medium.devnode and m.source == medium.devnode)]


# -- policy location -------------------------------------------------------------------------------
def registry_from_params(entries: Any) -> list[RegisteredMedium]:
    """`params.registered_media` of a policy pack, validated (ValueError naming the entry); the
    same check refuses a bad register when the policy is loaded (`policies.media`)."""
    return list(parse_registry(entries))


def classify_location(medium: Medium, registry: Any) -> dict[str, Any]:
    """The policy location of a medium: registered (both identities match) or not."""
    try:
        regs = registry if all(isinstance(r, RegisteredMedium) for r in registry or []) \
            else registry_from_params(registry)
    except ValueError as exc:
        log.error("registered media list ignored: %s", exc)
        regs = []
    for r in regs:
        # both halves must match: a cloned file system on another stick (same UUID) or a
        # reformatted registered stick (same serial) is not the registered medium
        if r.matches(medium.serial, medium.fs_uuid):
            loc = {"kind": "classified_medium", "medium_level": r.level, "medium_id": medium.medium_id,
                   "holder": r.holder}
            if r.id:
                loc["register_id"] = r.id
            return loc
    return {"kind": "removable_medium", "medium_id": medium.medium_id}


def device_event(medium: Medium, loc: Mapping[str, Any], *, host_role: str, host_level: str | None = None,
                 host_id: str = "", operation: str = "mount", time: str | None = None) -> Any:
    """The policy `device` event of a medium seen on this host (for CN-SEC-015: a registered
    classified medium mounted on an unclassified host; cross-use, CN-SEC-014, is decided centrally
    from the sightings every agent reports)."""
    from policies.model import DeviceFacts, Event, Host, Sighting

    registered = loc.get("kind") == "classified_medium"
    return Event(kind="device", operation=operation, host=Host(role=host_role, level=host_level, id=host_id),
                 device=DeviceFacts(id=str(loc.get("register_id") or medium.medium_id), registered=registered,
                                    level=loc.get("medium_level") if registered else None,
                                    sightings=(Sighting(host_id, host_role, host_level, time),)),
                 time=time[:10] if time else None)


# -- the monitor -----------------------------------------------------------------------------------
class MediaMonitor:
    """udev block events and mountinfo changes → MediaEvents for `on_event`."""

    def __init__(self, on_event: Callable[[MediaEvent], None], *, mountinfo: str = "/proc/self/mountinfo",
                 poll_interval: float = 1.0):
        self.on_event = on_event
        self.mountinfo = mountinfo
        self.poll_interval = poll_interval
        self.media: dict[str, Medium] = {}  # devnode → medium (added, not yet removed)
        self.mounted: dict[tuple[str, str], Path] = {}  # (devnode, mountpoint)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._udev_monitor: Any = None

    # The one entry point of udev events, live or recorded.
    def feed(self, action: str, props: Mapping[str, str]) -> None:
        medium = medium_from_properties(props)
        if medium is None and action == "remove":
            # A removal may carry only the kernel's properties (no udev database entry left):
            # the device node names the medium that was added.
            with self._lock:
                medium = self.media.get(props.get("DEVNAME", ""))
        if medium is None:
            return
        if action in ("add", "change"):
            with self._lock:
                known = medium.devnode in self.media
                self.media[medium.devnode] = medium
            if not known:
                self._emit(MediaEvent("add", medium))
            self.check_mounts()  # mounted already (an automounter can be quicker than us)
        elif action == "remove":
            with self._lock:
                gone = self.media.pop(medium.devnode, None) or medium
                points = [(k, p) for k, p in self.mounted.items() if k[0] == medium.devnode]
                for k, _p in points:
                    del self.mounted[k]
            for _k, p in points:  # pulled out without unmounting
                self._emit(MediaEvent("unmount", gone, p))
            self._emit(MediaEvent("remove", gone))

    def check_mounts(self) -> None:
        """Compare mountinfo with what was seen mounted; emit mount/unmount."""
        try:
            mounts = parse_mountinfo(Path(self.mountinfo).read_text(encoding="utf-8", errors="surrogateescape"))
        except OSError as exc:
            log.warning("cannot read %s: %s", self.mountinfo, exc)
            return
        events = []
        with self._lock:
            now = {(m.devnode, str(p)): (m, p) for m in self.media.values() for p in mountpoints_of(m, mounts)}
            for key, (m, p) in now.items():
                if key not in self.mounted:
                    self.mounted[key] = p
                    events.append(MediaEvent("mount", m, p))
            for key in [k for k in self.mounted if k not in now]:
                p = self.mounted.pop(key)
                gone = self.media.get(key[0])
                if gone is not None:
                    events.append(MediaEvent("unmount", gone, p))
        for ev in events:
            self._emit(ev)

    def _emit(self, ev: MediaEvent) -> None:
        try:
            self.on_event(ev)
        except Exception:  # noqa: BLE001 - a failing callback must not end the monitoring
            log.exception("media event callback failed for %s %s", ev.action, ev.medium.devnode)

    # -- live sources -----------------------------------------------------------------------------
    def start(self) -> None:
        import pyudev

        ctx = pyudev.Context()
        mon = pyudev.Monitor.from_netlink(ctx)
        mon.filter_by("block")
        mon.start()
        self._udev_monitor = mon
        for dev in ctx.list_devices(subsystem="block"):  # sticks plugged in before the agent started
            try:
                self.feed("add", _props(dev))
            except Exception:  # noqa: BLE001
                log.exception("reading %s failed", dev.device_node)
        self._threads = [threading.Thread(target=self._udev_loop, name="media-udev", daemon=True),
                         threading.Thread(target=self._mount_loop, name="media-mounts", daemon=True)]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)

    def _udev_loop(self) -> None:
        while not self._stop.is_set():
            try:
                dev = self._udev_monitor.poll(timeout=0.5)
                if dev is not None:
                    self.feed(dev.action or "change", _props(dev))
            except Exception:  # noqa: BLE001 - one bad event must not end the monitor
                log.exception("udev event failed")

    def _mount_loop(self) -> None:
        # mountinfo signals a change of the mount table with POLLPRI; poll it with a timeout so
        # that a missed signal costs at most one interval
        fd = None
        try:
            fd = os.open(self.mountinfo, os.O_RDONLY)
            poller: Any = select.poll()
            poller.register(fd, select.POLLPRI | select.POLLERR)
        except OSError:
            poller = None
        try:
            while not self._stop.is_set():
                if poller is not None:
                    poller.poll(self.poll_interval * 1000)
                    os.lseek(fd, 0, os.SEEK_SET)  # type: ignore[arg-type]
                    os.read(fd, 65536)  # type: ignore[arg-type]
                else:
                    self._stop.wait(self.poll_interval)
                try:
                    self.check_mounts()
                except Exception:  # noqa: BLE001
                    log.exception("mount check failed")
        finally:
            if fd is not None:
                os.close(fd)


def _props(dev: Any) -> dict[str, str]:
    props = {str(k): str(v) for k, v in dev.properties.items()}
    props.setdefault("DEVNAME", dev.device_node or "")
    props.setdefault("SUBSYSTEM", dev.subsystem or "")
    try:
        props.setdefault("SIZE_BYTES", str(int(dev.attributes.asint("size")) * 512))
    except Exception:  # noqa: BLE001 - no size attribute (removed already)
        pass
    return props


def medium_of_device_file(devnode: str) -> Medium | None:
    """The Medium of a device node, from the udev database (the real path of a test with a loop
    device: loop devices are not removable storage, so the bus check is bypassed here)."""
    import pyudev

    dev = pyudev.Devices.from_device_file(pyudev.Context(), devnode)
    props = _props(dev)
    props.setdefault("ID_BUS", "usb")
    if not props.get("ID_FS_TYPE"):
        props.update(_blkid(devnode))  # no udevd here to probe it (a container): ask blkid
    return medium_from_properties(props)


def _blkid(devnode: str) -> dict[str, str]:
    import subprocess

    try:
        out = subprocess.run(["blkid", "-p", "-o", "udev", devnode], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
