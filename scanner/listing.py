"""Rescans at stat speed (issue 17): GNU find lists and stats a tree while the interpreter starts.

A rescan answered from the cache spent most of its time in `os.lstat` (~5 µs a file, mostly
building `stat_result` objects). `find -printf` makes the same system calls from C at a fraction
of that cost, in its own process — on the other core, while Python is still importing. Each
directory's regular files as find prints them (name and stat key as text, in name order) are
digested and compared with the digest the cache recorded for that directory (`listing_digest`,
taken from the plain walk's `os.lstat` results when the directory was last checked file by file):
a directory whose digest matches costs no Python work per file.

Everything else takes the plain walk (`scanner.walk.dir_items`), so that entries, records and
errors stay the plain walk's: no GNU find, or a find that failed or said anything at all (an
unreadable directory, a file that vanished, a loop); walk options other than the defaults; a
directory that changed, holds a symlink, FIFO, socket or device, or a name that is not UTF-8
(or holds the byte 0x01, find's field separator here). Only the subdirectories of a directory are
taken from find's listing, and only when that directory matched.

The digest covers each file's name, device, inode, size, mtime and ctime (the cache's key), so an
edit of the same size with the same mtime still changes it (ctime), and so do a rename, a file
added, removed or replaced. Output of find is kept in an anonymous memory file (`memfd`) so that
find never waits for a pipe to be read while the interpreter starts.
"""
from __future__ import annotations

import bisect
import collections
import hashlib
import mmap
import os
import re
import stat
from collections.abc import Callable, Iterator
from typing import IO

from scanner.walk import DirFiles, DirNames, Entry, WalkOptions, dir_items, walk_bulk

#: find's output: a read-only map of its memory file, or bytes.
Buffer = mmap.mmap | bytes

#: One record per entry below the top: `PARENT \0 TYPE NAME \1 DEV INO SIZE MTIME CTIME \0`, the
#: parent as find spells it (the key of the directory's group), `%y` the type letter, times as
#: `%T@`/`%C@` print them (seconds, 9 digits of nanoseconds and a 0; see `_time`).
FIND_FORMAT = r"%h\0%y%f\001%D %i %s %T@ %C@\0"
#: A run of consecutive records with the same parent (a directory's records are consecutive except
#: where find descends into one of its subdirectories first). Possessive: no backtracking state.
_RUN = re.compile(rb"([^\0]*)\0[^\0]*\0(?:\1\0[^\0]*\0)*+")


def _time(ns: int) -> str:
    """A time in nanoseconds as find's `%T@` prints it (floor division, as GNU findutils does)."""
    s, n = divmod(ns, 1_000_000_000)
    return f"{s}.{n:09d}0"


def listing_digest(item: DirFiles) -> bytes | None:
    """The digest of these regular files as find would list them (see `Group`), from the plain
    walk's stat results; None when find's listing could not be compared (a name that is not
    UTF-8 or holds 0x01)."""
    try:
        recs = [b"f%s\1%d %d %d %s %s" % (n.encode("utf-8"), st.st_dev, st.st_ino, st.st_size,
                                          _time(st.st_mtime_ns).encode(), _time(st.st_ctime_ns).encode())
                for n, st in zip(item.names, item.sts, strict=True)]
    except UnicodeEncodeError:
        return None
    blob = b"\0".join(recs)
    if blob.count(b"\1") != len(recs):
        return None
    return hashlib.sha256(blob).digest()


class Group:
    """One directory's entries in find's listing. `files`: its regular files' records, sorted —
    by name, as the plain walk sorts them, for UTF-8 names sort alike as bytes and as text and
    0x01 sorts below any other byte of a name; None when the directory must take the plain walk
    (it holds entries of another type, or subdirectories not named in UTF-8).
    `dirs`: its subdirectories, (raw name, (dev, ino)), by name."""

    __slots__ = ("files", "digest", "dirs")

    def __init__(self, recs: list[bytes]) -> None:
        recs.sort()
        d0, d1 = bisect.bisect_left(recs, b"d"), bisect.bisect_left(recs, b"e")
        f0, f1 = bisect.bisect_left(recs, b"f"), bisect.bisect_left(recs, b"g")
        self.dirs: list[tuple[bytes, tuple[int, int]]] = []
        for r in recs[d0:d1]:
            name, _, info = r[1:].rpartition(b"\1")
            dev, ino = info.split(b" ", 2)[:2]
            self.dirs.append((name, (int(dev), int(ino))))
        files = recs[f0:f1]
        self.files: list[bytes] | None = files
        self.digest = b""
        # The files' names need no check here: a recorded digest is of UTF-8 names without 0x01
        # (`listing_digest`), so files named otherwise never match one and take the plain walk.
        if (d1 - d0) + (f1 - f0) != len(recs) or any(b"\1" in n for n, _ in self.dirs):
            self.files = None  # a symlink, FIFO, socket or device, or a subdirectory named with 0x01
        else:
            try:
                for n, _ in self.dirs:
                    n.decode("utf-8")  # subdirectories are walked in the order of their names as text
            except UnicodeDecodeError:
                self.files = None
            else:
                self.digest = hashlib.sha256(b"\0".join(files)).digest()


_EMPTY: list[bytes] = []


class Index:
    """find's listing of one tree (the outputs of its find runs), grouped by parent directory:
    byte spans into the outputs, which are read in place (a million files print ~80 MB)."""

    def __init__(self, outputs: list[Buffer], top_key: bytes) -> None:
        self.outputs = outputs
        self.top_key = top_key
        self.runs: dict[bytes, list[tuple[int, int, int]]] = {}
        for i, data in enumerate(outputs):
            end = 0
            for m in _RUN.finditer(data):
                if m.start() != end:
                    raise ValueError("unexpected output of find")
                end = m.end()
                self.runs.setdefault(m.group(1), []).append((i, m.start(), end))
            if end != len(data):
                raise ValueError("unexpected output of find")

    def group(self, key: bytes) -> Group:
        spans = self.runs.get(key)
        if not spans:
            return Group(list(_EMPTY))  # find saw the directory and nothing in it
        outs = self.outputs
        blob = b"".join(outs[i][s:e] for i, s, e in spans)
        return Group(blob.split(b"\0")[1::2])


def child_key(key: bytes, name: bytes) -> bytes:
    """How find spells a subdirectory `name` of the directory it spells `key`."""
    return key + name if key.endswith(b"/") else key + b"/" + name


def _memfile() -> IO[bytes] | int:
    try:
        return os.memfd_create("baomi-find", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        import tempfile

        return tempfile.TemporaryFile()


class _FindRun:
    """One find process, its output and its messages in memory files. Started by posix_spawn (no
    fork of the interpreter, and no import of subprocess on a rescan's start-up path)."""

    def __init__(self, args: list[str]) -> None:
        self.pid: int | None = None
        self.out: IO[bytes] | int = -1
        self.err: IO[bytes] | int = -1
        self.out, self.err = _memfile(), _memfile()
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            # Only these three reach find: every other descriptor is close-on-exec (PEP 446).
            self.pid = os.posix_spawnp(
                "find", ["find", *args], dict(os.environ, LC_ALL="C"),
                file_actions=[(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, _fileno(self.out), 1),
                              (os.POSIX_SPAWN_DUP2, _fileno(self.err), 2)])
        except BaseException:
            self.close()
            raise
        finally:
            os.close(null)

    def _wait(self) -> int | None:
        """find's exit code (it is reaped), or None when it was not running."""
        pid, self.pid = self.pid, None
        if pid is None:
            return None
        try:
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        except ChildProcessError:
            return None

    def result(self) -> Buffer | None:
        """What find printed (mapped, not copied), or None when it failed or said anything on stderr."""
        try:
            if self._wait() != 0 or _size(self.err) != 0:
                return None
            out = self.out
            size = _size(out)
            if not size:
                return b""
            try:
                return mmap.mmap(_fileno(out), size, prot=mmap.PROT_READ)
            except (OSError, ValueError):  # no mmap of it here: read it
                return os.pread(_fileno(out), size, 0)
        finally:
            self.close()

    def close(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, 9)  # SIGKILL: a scan that ended early needs no more of it
            except ProcessLookupError:
                pass
            self._wait()
        for f in (self.out, self.err):
            if isinstance(f, int):
                if f >= 0:
                    os.close(f)
            else:
                f.close()
        self.out = self.err = -1


def _fileno(f: IO[bytes] | int) -> int:
    return f if isinstance(f, int) else f.fileno()


#: At most this many subdirectories of a top are named on find's command line (see FindListing).
_MAX_SPLIT = 2000


class FindListing:
    """find started at once over one directory tree; `index()` waits for it and reads the result.

    Two cores: the top's own entries are listed by one find, the trees of its subdirectories by two
    more (every other one each), so that both cores list while the interpreter starts."""

    def __init__(self, top: str) -> None:
        # find takes an argument starting with -, (, ), ! or , for an expression: never pass one.
        arg = top.rstrip("/") or "/"
        if arg[0] in "-()!,":
            arg = os.path.join(".", arg)
        #: How find spells the top directory in its entries' records (%h): `arg` itself.
        self.top_key = os.fsencode(arg)
        self._index: Index | None = None
        self._done = False
        # -H: the top is followed when it is a symlink, as the plain walk's os.stat(top) does;
        # nothing below it is. -mindepth 1: a starting point itself is not listed (its key could be
        # its entries', for `.`; a subdirectory is listed with the top's entries).
        common = ["-mindepth", "1", "-printf", FIND_FORMAT]
        self._runs = [_FindRun(["-H", arg, "-maxdepth", "1", *common])]
        try:
            try:
                with os.scandir(top) as it:  # d_type: no stat per entry
                    subdirs = sorted(os.fsencode(e.name) for e in it if e.is_dir(follow_symlinks=False))
            except OSError:
                subdirs = []  # the top's own find says why
            if len(subdirs) > _MAX_SPLIT:  # a command line too long for the system: one find
                self._runs[0].close()
                self._runs = [_FindRun(["-H", arg, *common])]
            else:
                for part in (subdirs[0::2], subdirs[1::2]):
                    if part:
                        starts = [os.fsdecode(child_key(self.top_key, n)) for n in part]
                        self._runs.append(_FindRun([*starts, *common]))
        except BaseException:
            self.close()
            raise

    def index(self) -> Index | None:
        """The tree as find listed it, or None when it cannot be used (find failed or warned)."""
        if self._done:
            return self._index
        self._done = True
        outs = [r.result() for r in self._runs]
        if all(o is not None for o in outs):
            try:
                self._index = Index(outs, self.top_key)  # type: ignore[arg-type]
            except ValueError:
                self._index = None
        return self._index

    def close(self) -> None:
        """Stop find if it still runs (a scan that ended early) and free its output."""
        for r in self._runs:
            r.close()
        self._done = True
        self._index = None


def _size(f: IO[bytes] | int) -> int:
    return os.fstat(_fileno(f)).st_size


class Listings:
    """The find runs of one scan, one per directory given (started by `start`)."""

    def __init__(self, by_top: dict[str, FindListing]) -> None:
        self.by_top = by_top

    def close(self) -> None:
        for f in self.by_top.values():
            f.close()


def start(paths: list[str], opts: WalkOptions) -> Listings | None:
    """Start find over each directory in `paths` (None when the plain walk must serve: walk
    options other than the defaults, or no find to run)."""
    if opts != WalkOptions():
        return None
    by_top: dict[str, FindListing] = {}
    try:
        for p in dict.fromkeys(paths):
            if os.path.isdir(p):
                by_top[p] = FindListing(p)
    except (OSError, AttributeError):  # no find here (or no posix_spawn): the plain walk serves
        for f in by_top.values():
            f.close()
        return None
    return Listings(by_top) if by_top else None


class ListedDir:
    """The regular files of one directory that find listed and the cache knows unchanged: `todo`,
    the positions (in name order) of those to look up one by one — those with findings or errors."""

    __slots__ = ("dir", "dir_id", "recs", "todo", "_prefix")

    def __init__(self, d: str, dir_id: tuple[int, int], recs: list[bytes], todo: list[int]) -> None:
        self.dir, self.dir_id, self.recs, self.todo = d, dir_id, recs, todo
        self._prefix = os.path.join(d, "")

    def __len__(self) -> int:
        return len(self.recs)

    def path(self, i: int) -> str:
        r = self.recs[i]
        return self._prefix + r[1:r.rindex(b"\1")].decode("utf-8")

    def key(self, i: int) -> tuple[int, int, int, int, int]:
        """The file's stat key as find saw it (that of the record the cache holds for it)."""
        r = self.recs[i]
        dev, ino, size, mtime, ctime = r[r.rindex(b"\1") + 1:].split(b" ")
        return int(dev), int(ino), int(size), _ns(mtime), _ns(ctime)


def _ns(t: bytes) -> int:
    s, _, frac = t.partition(b".")
    return int(s) * 1_000_000_000 + int(frac[:9])


#: `known(dir_id, digest)`: the positions of the files to look up one by one when the cache's
#: record of that directory has this listing digest, else None.
Known = Callable[[tuple[int, int], bytes], "list[int] | None"]


def walk_listed(paths: list[str], opts: WalkOptions, listings: Listings,
                known: Known) -> Iterator[Entry | DirNames | ListedDir]:
    """`scanner.walk.walk_bulk`, with the directories that find listed and `known` recognises as
    `ListedDir`s (in the plain walk's order)."""
    left = collections.Counter(paths)
    for top in paths:
        listing = listings.by_top.get(top)
        index = listing.index() if listing is not None else None
        left[top] -= 1
        if listing is not None and not left[top]:
            listing.close()  # its output is freed once this top is walked (index holds it until then)
        if index is None:
            yield from walk_bulk([top], opts)
            continue
        try:
            st = os.stat(top)
        except OSError as exc:
            yield Entry(top, top, error=exc.strerror or str(exc))
            continue
        if not stat.S_ISDIR(st.st_mode):
            yield from walk_bulk([top], opts)
            continue
        yield from _walk_listed(top, opts, st, index, known)


#: A directory still to walk: its path, (dev, ino), find's key for it (None: find did not list it
#: under that name) and the (dev, ino) find listed it with (None: find did not see it).
_Todo = tuple[str, tuple[int, int], "bytes | None", "tuple[int, int] | None"]


def _walk_listed(root: str, opts: WalkOptions, root_st: os.stat_result, index: Index,
                 known: Known) -> Iterator[Entry | DirNames | ListedDir]:
    real_root = os.path.realpath(root)
    dev = root_st.st_dev
    root_id = (root_st.st_dev, root_st.st_ino)
    stack: list[_Todo] = [(root, root_id, index.top_key, root_id)]
    while stack:
        d, dir_id, key, seen = stack.pop()
        # find's entries for this directory, when find listed this very directory under this name
        group = index.group(key) if key is not None and seen == dir_id else None
        todo = None
        if group is not None and group.files is not None:
            todo = known(dir_id, group.digest) if group.files else []
        subdirs: list[_Todo] = []
        if group is not None and todo is not None:
            assert key is not None and group.files is not None
            if group.files:
                yield ListedDir(d, dir_id, group.files, todo)
            for name, sub_id in group.dirs:  # names checked UTF-8 by Group
                subdirs.append((os.path.join(d, name.decode("utf-8")), sub_id, child_key(key, name), sub_id))
        else:
            found = yield from dir_items(d, dir_id, root, real_root, dev, opts)
            seen_ids = dict(group.dirs) if group is not None else {}
            for path, sub_id in found:
                name = os.fsencode(os.path.basename(path))
                subdirs.append((path, sub_id, child_key(key, name) if key is not None else None, seen_ids.get(name)))
        stack.extend(reversed(subdirs))
