"""Which files a scan reads: trees walked without following symlinks out of them.

Special files (FIFOs, sockets, devices) are never opened — a FIFO would hang the scan — and are
reported as skipped entries; so are symlinks that leave the tree or loop. Symlinks to files inside
the tree are skipped too: their target is scanned under its own name.
"""
from __future__ import annotations

import array
import fnmatch
import itertools
import operator
import os
import stat
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple


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


class DirNames:
    """The regular files of one directory, walked in bulk, by name: what a scan without a cache
    needs of them (`walk_bulk(..., stat_files=False)`)."""

    __slots__ = ("dir", "dir_id", "names", "_prefix")

    def __init__(self, d: str, dir_id: tuple[int, int], names: list[str]) -> None:
        self.dir, self.dir_id, self.names = d, dir_id, names
        # What os.path.join(d, name) gives for a listed name (never absolute, never empty), without
        # its call per file (a tenth of a rescan printing every record).
        self._prefix = os.path.join(d, "")

    def path(self, i: int) -> str:
        return self._prefix + self.names[i]


class DirFiles(DirNames):
    """The regular files of one directory, walked in bulk: names and their lstat results side by
    side, so that a rescan can check a whole directory against its cache without one Python
    object per file (`packed`); stat keys are built only when asked for."""

    __slots__ = ("sts", "_keys")

    def __init__(self, d: str, dir_id: tuple[int, int], names: list[str], sts: list[os.stat_result]) -> None:
        super().__init__(d, dir_id, names)
        self.sts = sts
        self._keys: list[tuple[int, int, int, int, int]] | None = None

    @property
    def keys(self) -> list[tuple[int, int, int, int, int]]:
        if self._keys is None:
            self._keys = list(map(_KEY, self.sts))
        return self._keys

    def key(self, i: int) -> tuple[int, int, int, int, int]:
        return _KEY(self.sts[i])

    def packed(self) -> bytes | None:
        """Every file's stat key as fixed-width columns (dev, ino, size; mtime_ns, ctime_ns), built
        by C code: two rescans of an unchanged directory give equal bytes. None when a field does
        not fit 64 bits."""
        sts = self.sts
        try:
            return (array.array("Q", map(_DEV, sts)).tobytes() + array.array("Q", map(_INO, sts)).tobytes()
                    + array.array("Q", map(_SIZE, sts)).tobytes() + array.array("q", map(_MTIME, sts)).tobytes()
                    + array.array("q", map(_CTIME, sts)).tobytes())
        except OverflowError:
            return None


#: The stat key of a file (see `Entry.key`), read by C code over a whole directory at once.
_KEY = operator.attrgetter("st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")
_MODE = operator.attrgetter("st_mode")
_NAME = operator.attrgetter("name")
_DEV, _INO, _SIZE = operator.attrgetter("st_dev"), operator.attrgetter("st_ino"), operator.attrgetter("st_size")
_MTIME, _CTIME = operator.attrgetter("st_mtime_ns"), operator.attrgetter("st_ctime_ns")


def unpack_keys(packed: bytes) -> list[tuple[int, int, int, int, int]]:
    """The stat keys `DirFiles.packed` holds, in order."""
    n = len(packed) // 40
    u, t = array.array("Q"), array.array("q")
    u.frombytes(packed[: 24 * n])
    t.frombytes(packed[24 * n:])
    return list(zip(u[:n], u[n:2 * n], u[2 * n:], t[:n], t[n:], strict=True))


def walk(paths: list[str], opts: WalkOptions | None = None) -> Iterator[Entry]:
    for item in walk_bulk(paths, opts):
        if type(item) is DirFiles:
            for i, key in enumerate(item.keys):
                p = item.path(i)
                yield Entry(p, p, key[2], key)
        else:
            yield item  # type: ignore[misc]


def walk_bulk(paths: list[str], opts: WalkOptions | None = None, stat_files: bool = True
              ) -> Iterator[Entry | DirNames]:
    """`walk`, with the regular files of each directory as one `DirFiles` (in name order, before
    the other entries of that directory); errors, skips and named files stay `Entry`s.

    With `stat_files=False` they come as `DirNames`, by name only: the file system's entry type
    (d_type) tells a regular file, and only the other entries are stat'ed. For a scan with no
    cache, which needs no stat key: a worker's fstat of the open file decides what is read. The
    lstat per file was ~3 µs of the parent's CPU per file of a prose tree (issue 17)."""
    opts = opts or WalkOptions()
    for top in paths:
        try:
            st = os.stat(top)  # an explicit argument is followed, as the user named it
        except OSError as exc:
            yield Entry(top, top, error=exc.strerror or str(exc))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(top, opts, st, stat_files)
        elif stat.S_ISREG(st.st_mode):
            yield Entry(top, top, st.st_size, _key(st))
        else:
            yield Entry(top, top, skip=_special(st.st_mode) or "special")


def _walk_dir(root: str, opts: WalkOptions, root_st: os.stat_result, stat_files: bool = True
              ) -> Iterator[Entry | DirNames]:
    real_root = os.path.realpath(root)
    dev = root_st.st_dev
    stack = [(root, (root_st.st_dev, root_st.st_ino))]
    while stack:
        d, dir_id = stack.pop()
        subdirs = yield from dir_items(d, dir_id, root, real_root, dev, opts, stat_files)
        stack.extend(reversed(subdirs))


def dir_items(d: str, dir_id: tuple[int, int], root: str, real_root: str, dev: int,
              opts: WalkOptions, stat_files: bool = True
              ) -> Generator[Entry | DirNames, None, list[tuple[str, tuple[int, int]]]]:
    """The entries of one directory `d` of the tree under `root` (see `walk_bulk`); returns its
    subdirectories to walk, (path, (dev, ino)), in name order."""
    subdirs: list[tuple[str, tuple[int, int]]] = []
    try:
        # lstat relative to the directory's descriptor (no path walk from the root per file):
        # a rescan's walk is mostly these calls (issue 17: ~4.5 µs a file here).
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        yield Entry(d, d, error=exc.strerror or str(exc))
        return subdirs
    sts: list[Any]  # os.stat_result, or the OSError of its lstat; None for a file not stat'ed
    try:
        if stat_files:
            names, sts, regular = _list_stat(d, root, fd, opts)
        else:
            names, sts, regular = _list_types(d, root, fd, opts)
    except OSError as exc:
        yield Entry(d, d, error=exc.strerror or str(exc))
        return subdirs
    finally:
        os.close(fd)
    if all(regular):  # a leaf directory of files: the common case, no Python loop per file
        if names:
            yield DirFiles(d, dir_id, names, sts) if stat_files else DirNames(d, dir_id, names)
        return subdirs
    if any(regular):
        files = list(itertools.compress(names, regular))
        yield (DirFiles(d, dir_id, files, list(itertools.compress(sts, regular))) if stat_files
               else DirNames(d, dir_id, files))
    for n, st, reg in zip(names, sts, regular, strict=True):
        if reg:
            continue
        path = os.path.join(d, n)
        if not isinstance(st, os.stat_result):
            yield Entry(path, path, error=st.strerror or str(st))
        elif stat.S_ISLNK(st.st_mode):
            yield _symlink(path, real_root)
        elif stat.S_ISDIR(st.st_mode):
            if opts.one_file_system and st.st_dev != dev:
                continue
            subdirs.append((path, (st.st_dev, st.st_ino)))
        else:
            yield Entry(path, path, skip=_special(st.st_mode) or "special")
    return subdirs


def _list_stat(d: str, root: str, fd: int, opts: WalkOptions) -> tuple[list[str], list[Any], list[bool]]:
    """The names of directory `fd` (in name order, excludes left out), the lstat of each (or the
    OSError it raised), and which are regular files."""
    names = os.listdir(fd)
    names.sort()
    if opts.excludes:
        names = [n for n in names
                 if not _excluded(os.path.relpath(os.path.join(d, n), root), n, opts.excludes)]
    try:
        # A list comprehension: map() over a functools.partial with a keyword costs
        # a microsecond more a call (measured, issue 17).
        lstat = os.lstat
        sts: list[Any] = [lstat(n, dir_fd=fd) for n in names]
    except OSError:
        # One entry vanished or is unreadable: stat them one by one.
        sts = [_lstat(n, fd) for n in names]
        return names, sts, [isinstance(st, os.stat_result) and stat.S_ISREG(st.st_mode) for st in sts]
    return names, sts, list(map(stat.S_ISREG, map(_MODE, sts)))


def _list_types(d: str, root: str, fd: int, opts: WalkOptions) -> tuple[list[str], list[Any], list[bool]]:
    """`_list_stat`, with regular files told by their directory entry's type (no system call
    where the file system gives it; an lstat where it does not) and left unstat'ed (None)."""
    with os.scandir(fd) as it:
        entries = sorted(it, key=_NAME)
    if opts.excludes:
        entries = [e for e in entries
                   if not _excluded(os.path.relpath(os.path.join(d, e.name), root), e.name, opts.excludes)]
    names = list(map(_NAME, entries))
    try:
        regular = [e.is_file(follow_symlinks=False) for e in entries]
    except OSError:  # an lstat in place of an unknown type failed: that entry is stat'ed below
        regular = [_is_file(e) for e in entries]
    sts: list[Any] = [None] * len(names)
    if not all(regular):
        for i, reg in enumerate(regular):
            if not reg:
                st = sts[i] = _lstat(names[i], fd)
                if isinstance(st, os.stat_result) and stat.S_ISREG(st.st_mode):
                    # A regular file after all (no type in its entry and a failed lstat, or
                    # replaced since the listing): a file, as the stat walk would have it.
                    regular[i], sts[i] = True, None
    return names, sts, regular


def _is_file(e: os.DirEntry[str]) -> bool:
    try:
        return e.is_file(follow_symlinks=False)
    except OSError:
        return False


def _lstat(name: str, fd: int) -> os.stat_result | OSError:
    try:
        return os.lstat(name, dir_fd=fd)
    except OSError as exc:
        return exc


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
