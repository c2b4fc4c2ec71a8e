"""Which files a scan reads: trees walked without following symlinks out of them.

Special files (FIFOs, sockets, devices) are never opened — a FIFO would hang the scan — and are
reported as skipped entries; so are symlinks that leave the tree or loop. Symlinks to files inside
the tree are skipped too: their target is scanned under its own name.
"""
from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple


class Entry(NamedTuple):
    """One walked path. A NamedTuple, not a dataclass: a tree walk creates one per file."""

    path: str  # path to open
    display: str  # path as reported
    size: int = 0
    #: (device, inode, size, mtime_ns, ctime_ns) at walk time: the incremental cache's key.
    key: tuple[int, int, int, int, int] | None = None
    #: Why the entry is not scanned (`fifo`, `socket`, `device`, `symlink-outside`, `symlink-loop`…).
    skip: str | None = None
    #: Why a file or directory that should have been read could not be (`Permission denied`…):
    #: unlike a skip, this leaves the scan incomplete and becomes an `unreadable` error record.
    error: str | None = None


@dataclass(frozen=True)
class WalkOptions:
    excludes: tuple[str, ...] = ()
    one_file_system: bool = False


def _excluded(rel: str, name: str, excludes: tuple[str, ...]) -> bool:
    """A pattern matches the basename, or the path relative to the scan root (`sub/*`,
    `**/*.docx`: `**/` also matches no directory at all)."""
    for g in excludes:
        if fnmatch.fnmatch(name, g) or fnmatch.fnmatch(rel, g):
            return True
        if g.startswith("**/") and (fnmatch.fnmatch(rel, g[3:]) or fnmatch.fnmatch(name, g[3:])):
            return True
    return False


def _special(mode: int) -> str | None:
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return None


def walk(paths: list[str], opts: WalkOptions | None = None) -> Iterator[Entry]:
    opts = opts or WalkOptions()
    for top in paths:
        try:
            st = os.stat(top)  # an explicit argument is followed, as the user named it
        except OSError as exc:
            yield Entry(top, top, error=exc.strerror or str(exc))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(top, opts, st.st_dev)
        elif stat.S_ISREG(st.st_mode):
            yield Entry(top, top, st.st_size, _key(st))
        else:
            yield Entry(top, top, skip=_special(st.st_mode) or "special")


def _walk_dir(root: str, opts: WalkOptions, dev: int) -> Iterator[Entry]:
    real_root = os.path.realpath(root)
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield Entry(d, d, error=exc.strerror or str(exc))
            continue
        subdirs = []
        for e in entries:
            if opts.excludes and _excluded(os.path.relpath(e.path, root), e.name, opts.excludes):
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except OSError as exc:
                yield Entry(e.path, e.path, error=exc.strerror or str(exc))
                continue
            if stat.S_ISLNK(st.st_mode):
                yield _symlink(e.path, real_root)
            elif stat.S_ISDIR(st.st_mode):
                if opts.one_file_system and st.st_dev != dev:
                    continue
                subdirs.append(e.path)
            elif stat.S_ISREG(st.st_mode):
                p = e.path
                yield Entry(p, p, st.st_size, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
            else:
                yield Entry(e.path, e.path, skip=_special(st.st_mode) or "special")
        stack.extend(reversed(subdirs))


def _key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _symlink(path: str, real_root: str) -> Entry:
    try:
        target = os.path.realpath(path, strict=True)
    except (OSError, RuntimeError):
        return Entry(path, path, skip="symlink-loop-or-dangling")
    inside = target == real_root or target.startswith(real_root + os.sep)
    if not inside:
        return Entry(path, path, skip="symlink-outside-tree")
    return Entry(path, path, skip="symlink-inside-tree")
