"""The register of classified removable media (涉密载体登记), carried in a pack's params.

    params:
      registered_media:
        - {serial: 60A44C3FACF3B1A0B9C1, fs_uuid: 1A2B-3C4D, level: secret, holder: 机要室, id: USB-0042}

A medium's identity is its hardware serial (udev ID_SERIAL_SHORT) together with its file
system's UUID (ID_FS_UUID): both survive a change of USB port; a FAT volume id alone is chosen at
will (mkfs.vfat -i) and a serial alone survives a reformat, so an entry must name both. The
register travels in the signed policy bundle; it is validated when the policy is loaded (a bad
entry makes the whole policy, hence the bundle, refused with the file and line) and the endpoint
agent (`agents.media.classify_location`) places a medium found in it as `classified_medium`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scanner.i18n import tr
from scanner.model import Level

PARAM = "registered_media"
ENTRY_KEYS = frozenset({"id", "serial", "fs_uuid", "level", "holder", "note"})
LEVELS = tuple(lv.value for lv in Level)


@dataclass(frozen=True)
class RegisteredMedium:
    serial: str
    fs_uuid: str
    #: Highest level the medium is approved to hold.
    level: str
    holder: str = ""
    #: Register number (e.g. USB-0042), if the site keeps one.
    id: str = ""

    def matches(self, serial: str, fs_uuid: str) -> bool:
        """Both halves of the identity; volume ids are compared case-insensitively (blkid prints
        FAT ids in upper case, some tools in lower case)."""
        return bool(serial) and bool(fs_uuid) and self.serial == serial.strip() \
            and self.fs_uuid.casefold() == fs_uuid.strip().casefold()


def registry_problems(value: Any) -> list[tuple[int | None, str | None, str]]:
    """(entry index or None, field or None, message) for each problem of a register value."""
    if value is None:
        return []
    if not isinstance(value, list):
        return [(None, None, tr("应为列表", "expected a list"))]
    out: list[tuple[int | None, str | None, str]] = []
    seen: dict[tuple[str, str], int] = {}
    for i, e in enumerate(value):
        if not isinstance(e, Mapping):
            out.append((i, None, tr("应为映射 {serial, fs_uuid, level, holder}", "expected a mapping {serial, fs_uuid, level, holder}")))
            continue
        for k in e:
            if k not in ENTRY_KEYS:
                names = ", ".join(sorted(ENTRY_KEYS))
                out.append((i, str(k), tr(f"未知字段（可用：{names}）", f"unknown field (allowed: {names})")))
        if e.get("level") not in LEVELS:
            out.append((i, "level", tr(f"应为以下之一：{', '.join(LEVELS)}", f"expected one of {', '.join(LEVELS)}")))
        for k in ("serial", "fs_uuid"):
            v = e.get(k)
            if not isinstance(v, str) or not v.strip():
                out.append((i, k, tr("必填：序列号与文件系统 UUID 共同标识介质",
                                     "required: the serial and the file-system UUID together identify the medium")))
        for k in ("holder", "note", "id"):
            if k in e and not isinstance(e[k], str):
                out.append((i, k, tr("应为字符串", "expected a string")))
        s, u = e.get("serial"), e.get("fs_uuid")
        if isinstance(s, str) and isinstance(u, str):
            key = (s.strip(), u.strip().casefold())
            if key in seen:
                out.append((i, "serial", tr(f"与第 {seen[key]} 项为同一介质", f"the same medium as entry {seen[key]}")))
            seen.setdefault(key, i)
    return out


def parse_registry(value: Any) -> tuple[RegisteredMedium, ...]:
    """The register as value types; ValueError naming the first problem."""
    problems = registry_problems(value)
    if problems:
        i, k, msg = problems[0]
        where = PARAM + (f"[{i}]" if i is not None else "") + (f".{k}" if k else "")
        raise ValueError(f"{where}: {msg}")
    return tuple(RegisteredMedium(serial=e["serial"].strip(), fs_uuid=e["fs_uuid"].strip(), level=e["level"],
                                  holder=e.get("holder", ""), id=e.get("id", ""))
                 for e in value or [])
