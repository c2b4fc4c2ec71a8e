"""Posture facts of this host, read locally from sysfs/procfs (never probed over the network).

- wireless interfaces: ``/sys/class/net/IF/wireless`` or ``/sys/class/net/IF/phy80211``
- Bluetooth adapters: ``/sys/class/bluetooth/hciN``
- default route: an up route to 0.0.0.0/0 in ``/proc/net/route`` or to ::/0 in
  ``/proc/net/ipv6_route`` (loopback excluded)

`root` lets tests (and agents inspecting a mounted image) point at another tree.
"""
from __future__ import annotations

import socket
from pathlib import Path

from policies.model import Event, Host

_RTF_UP = 0x1


def wireless_interfaces(root: Path) -> tuple[str, ...]:
    net = root / "sys" / "class" / "net"
    if not net.is_dir():
        return ()
    return tuple(sorted(p.name for p in net.iterdir()
                        if (p / "wireless").exists() or (p / "phy80211").exists()))


def bluetooth_adapters(root: Path) -> tuple[str, ...]:
    bt = root / "sys" / "class" / "bluetooth"
    if not bt.is_dir():
        return ()
    return tuple(sorted(p.name for p in bt.iterdir() if p.name.startswith("hci") and ":" not in p.name))


def _read(p: Path) -> list[str]:
    try:
        return p.read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return []


def has_default_route(root: Path) -> bool:
    for line in _read(root / "proc" / "net" / "route")[1:]:
        f = line.split()
        if len(f) >= 8 and f[1] == "00000000" and f[7] == "00000000":
            try:
                if int(f[3], 16) & _RTF_UP:
                    return True
            except ValueError:
                continue
    for line in _read(root / "proc" / "net" / "ipv6_route"):
        f = line.split()
        if len(f) >= 10 and f[0] == "0" * 32 and f[1] == "00" and f[9] != "lo":
            try:
                if int(f[8], 16) & _RTF_UP:
                    return True
            except ValueError:
                continue
    return False


def read_posture(role: str, level: str | None = None, *, root: str | Path = "/", host_id: str | None = None) -> Host:
    r = Path(root)
    return Host(role=role, level=level, id=host_id or socket.gethostname(),
                wireless=wireless_interfaces(r), bluetooth=bluetooth_adapters(r),
                default_route=has_default_route(r))


def posture_event(host: Host) -> Event:
    return Event(kind="posture", operation="observe", host=host)
