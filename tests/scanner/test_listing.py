"""Rescans from find's listing (scanner.listing): the same records, skips and counts as the plain
walk, on every kind of tree and change; the plain walk wherever find's listing cannot be trusted."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scanner import listing as listing_mod
from scanner import walk as walk_mod
from scanner.config import PoolOptions, ScanConfig
from scanner.listing import FindListing, listing_digest, start
from scanner.runner import open_cache, run_scan
from scanner.walk import DirFiles, WalkOptions, walk_bulk

MARKED = "000012\n机密★10年\n特急\n标题\n"
CLEAN = "普通内容，没有任何标志。\n"


def _gnu_find() -> bool:
    try:
        out = subprocess.run(["find", "--version"], capture_output=True, timeout=10).stdout
    except OSError:
        return False
    return b"GNU findutils" in out


pytestmark = pytest.mark.skipif(not _gnu_find(), reason="GNU find (findutils) is not installed: rescans use the plain walk")


class Run:
    """One lean rescan in this process (as `baomi scan --format jsonl` without --all runs it)."""

    def __init__(self, paths: list[str], cache_path: Path, *, listed: bool,
                 monkeypatch: pytest.MonkeyPatch | None = None) -> None:
        config = ScanConfig()
        self.skips: list[tuple[str, str | None]] = []
        self.clean = 0
        self.plain_dirs = 0  # directories the plain walk read in this run (find's listing aside)
        real = listing_mod.dir_items

        def counting(*a: Any, **k: Any) -> Any:
            self.plain_dirs += 1
            return (yield from real(*a, **k))

        if monkeypatch is not None:  # both names: find's walk and the plain walk it may fall back on
            monkeypatch.setattr(listing_mod, "dir_items", counting)
            monkeypatch.setattr(walk_mod, "dir_items", counting)
        listings = start(paths, WalkOptions()) if listed else None
        cache = open_cache(str(cache_path), config)
        assert cache is not None

        def on_clean(n: int) -> None:
            self.clean += n

        try:
            self.records = list(run_scan(paths, config, WalkOptions(), PoolOptions(jobs=-1),
                                         on_skip=lambda e: self.skips.append((e.display, e.skip)), cache=cache,
                                         clean_records=False, on_clean=on_clean, listings=listings))
        finally:
            cache.close()
            if listings is not None:
                listings.close()
        if monkeypatch is not None:
            monkeypatch.setattr(listing_mod, "dir_items", real)
            monkeypatch.setattr(walk_mod, "dir_items", real)

    def lines(self) -> list[str]:
        return [json.dumps(r, ensure_ascii=False, sort_keys=True) for r in self.records]

    def flagged(self) -> list[str]:
        return sorted(x for x, r in zip(self.lines(), self.records, strict=True) if r["findings"] or r["errors"])


def full_scan(paths: list[str]) -> list[str]:
    """The flagged records of a scan without any cache (the truth the rescans must give)."""
    config = ScanConfig()
    recs = run_scan(paths, config, WalkOptions(), PoolOptions(jobs=-1))
    return sorted(json.dumps(r, ensure_ascii=False, sort_keys=True) for r in recs if r["findings"] or r["errors"])


def same(paths: list[str], tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Run, Run]:
    """A rescan from find's listing and one by the plain walk (each with its own cache, carried
    from step to step): equal records in equal order, equal skips, equal clean counts, and the
    flagged records of a scan without cache."""
    fast = Run(paths, tmp / "fast.sqlite", listed=True, monkeypatch=monkeypatch)
    plain = Run(paths, tmp / "plain.sqlite", listed=False)
    assert fast.lines() == plain.lines()
    assert fast.skips == plain.skips
    assert fast.clean == plain.clean
    assert fast.flagged() == full_scan(paths)
    return fast, plain


def make_tree(root: Path) -> Path:
    t = root / "tree"
    for d in ("", "a", "b", "b/c", "b/c/d", "empty"):
        (t / d).mkdir(parents=True, exist_ok=True)
    for d in ("", "a", "b", "b/c", "b/c/d"):
        for i in range(4):
            (t / d / f"f{i}.txt").write_text(CLEAN + str(i), encoding="utf-8")
        (t / d / "m.txt").write_text(MARKED, encoding="utf-8")
    (t / "a" / "a").write_text(CLEAN, encoding="utf-8")  # "a" before "a.txt": name order, not byte order of records
    (t / "a" / "a.txt").write_text(MARKED, encoding="utf-8")
    (t / "a" / "中文 文件.txt").write_text(MARKED, encoding="utf-8")
    (t / "a" / "line\nbreak.txt").write_text(MARKED, encoding="utf-8")
    return t


def test_listing_digest_equals_find_s_on_real_files(tmp_path: Path) -> None:
    """The digest taken from the plain walk's stat results is the one taken from find's output for
    the same files: names of every kind, times before 1970, at 0 and with nanoseconds."""
    d = tmp_path / "d"
    d.mkdir()
    times = [-1_500_000_000, -1, 0, 1, 1_000_000_001, 1_700_000_000_123_456_789, 4_102_444_800_999_999_999]
    names = ["a", "a.txt", "a b", "a-b", "中文.txt", "x\ny", "Z", "~", "é", "\U0001f600.txt"]
    for i, n in enumerate(names):
        p = d / n
        p.write_text(n * (i + 1), encoding="utf-8")
        t = times[i % len(times)]
        os.utime(p, ns=(t, t))
    (d / "sub").mkdir()
    listing = FindListing(str(tmp_path))
    index = listing.index()
    assert index is not None
    group = index.group(listing_mod.child_key(index.top_key, b"d"))
    (files,) = [x for x in walk_bulk([str(d)]) if isinstance(x, DirFiles)]
    assert group.files is not None and len(group.files) == len(names)
    assert group.digest == listing_digest(files)
    assert [n for n, _ in group.dirs] == [b"sub"]
    st = os.lstat(d / "sub")
    assert group.dirs[0][1] == (st.st_dev, st.st_ino)


def test_names_find_cannot_stand_for_take_the_plain_walk(tmp_path: Path) -> None:
    """Files named in bytes that are not UTF-8, or holding 0x01, get no listing digest (so find's
    listing of their directory never matches a record); a directory with a subdirectory so named
    is walked by the plain walk (its subdirectories are walked in the order of their names as text)."""
    for raw in (b"bad-\xff.txt", b"ctl-\x01.txt"):
        d = tmp_path / raw.hex()
        d.mkdir()
        (d / "ok.txt").write_text(CLEAN, encoding="utf-8")
        with open(os.path.join(os.fsencode(d), raw), "wb") as f:
            f.write(MARKED.encode())
        (files,) = [x for x in walk_bulk([str(d)]) if isinstance(x, DirFiles)]
        assert listing_digest(files) is None
        os.mkdir(os.path.join(os.fsencode(d), b"sub-" + raw))
        listing = FindListing(str(d))
        index = listing.index()
        assert index is not None
        assert index.group(index.top_key).files is None


def test_rescans_equal_the_plain_walk_through_every_kind_of_change(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    t = make_tree(tmp_path)
    paths = [str(t)]
    same(paths, tmp_path, monkeypatch)  # fills both caches and the directory records
    fast, _ = same(paths, tmp_path, monkeypatch)
    assert fast.plain_dirs == 0, "an unchanged tree is read from find's listing alone"
    assert len(fast.records) == 8 and fast.clean == 20 + 1

    # an edit keeping size and mtime (only the ctime tells)
    p = t / "b" / "f1.txt"
    st = p.stat()
    body = p.read_bytes()
    new = MARKED.encode()[: len(body)].ljust(len(body), b"\n")
    assert len(new) == len(body)
    p.write_bytes(new)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert p.stat().st_mtime_ns == st.st_mtime_ns and p.stat().st_size == st.st_size
    fast, _ = same(paths, tmp_path, monkeypatch)
    assert any(r["path"] == str(p) for r in fast.records), "the edited file is scanned again"
    assert fast.plain_dirs == 1, "only the changed directory is walked here"
    fast, _ = same(paths, tmp_path, monkeypatch)
    assert fast.plain_dirs == 0, "and recorded again with its listing"

    # renames: a marked file, then two files swapping names
    (t / "a" / "m.txt").rename(t / "a" / "m2.txt")
    fast, _ = same(paths, tmp_path, monkeypatch)
    assert any(r["path"].endswith("m2.txt") for r in fast.records)
    (t / "b" / "c" / "m.txt").rename(t / "b" / "c" / "tmp")
    (t / "b" / "c" / "f0.txt").rename(t / "b" / "c" / "m.txt")
    (t / "b" / "c" / "tmp").rename(t / "b" / "c" / "f0.txt")
    fast, _ = same(paths, tmp_path, monkeypatch)
    assert any(r["path"] == str(t / "b" / "c" / "f0.txt") and r["level"] for r in fast.records)

    # a directory replaced by another of the same name and contents
    shutil.rmtree(t / "b" / "c")
    (t / "b" / "c" / "d").mkdir(parents=True)
    (t / "b" / "c" / "m.txt").write_text(MARKED, encoding="utf-8")
    (t / "b" / "c" / "d" / "x.txt").write_text(MARKED, encoding="utf-8")
    same(paths, tmp_path, monkeypatch)

    # files added and removed
    (t / "a" / "new.txt").write_text(MARKED, encoding="utf-8")
    (t / "f2.txt").unlink()
    (t / "empty" / "n.txt").write_text(MARKED, encoding="utf-8")
    same(paths, tmp_path, monkeypatch)

    # special files, symlinks (a loop, one leaving the tree, one inside), hostile names
    os.mkfifo(t / "a" / "pipe")
    os.symlink("loop2", t / "b" / "loop1")
    os.symlink("loop1", t / "b" / "loop2")
    os.symlink("/etc", t / "b" / "c" / "out")
    os.symlink("x.txt", t / "b" / "c" / "d" / "in")
    with open(os.path.join(os.fsencode(t), b"bad-\xff\xfe.txt"), "wb") as f:
        f.write(MARKED.encode())
    (t / "empty" / "ctl-\x01.txt").write_text(MARKED, encoding="utf-8")
    fast, plain = same(paths, tmp_path, monkeypatch)
    assert {s for _, s in fast.skips} >= {"fifo", "symlink-loop-or-dangling", "symlink-outside-tree",
                                         "symlink-inside-tree"}
    assert any("\udcff" in r["path"] for r in fast.records), "the undecodable name is scanned by the plain walk"
    fast, _ = same(paths, tmp_path, monkeypatch)
    assert fast.plain_dirs == 6, "directories holding special entries or such names take the plain walk"

    # and gone again: back to find's listing
    for p in (t / "a" / "pipe", t / "b" / "loop1", t / "b" / "loop2", t / "b" / "c" / "out",
              t / "b" / "c" / "d" / "in", t / "empty" / "ctl-\x01.txt"):
        p.unlink()
    os.unlink(os.path.join(os.fsencode(t), b"bad-\xff\xfe.txt"))
    same(paths, tmp_path, monkeypatch)
    fast, _ = same(paths, tmp_path, monkeypatch)
    assert fast.plain_dirs == 0

    # a directory's own times change (a file created and removed): its files are as recorded
    (t / "b" / "tmp").write_text("x")
    (t / "b" / "tmp").unlink()
    fast, _ = same(paths, tmp_path, monkeypatch)
    assert fast.plain_dirs == 0


@pytest.mark.parametrize("spelling", ["slash", "dot", "symlink", "dash", "two"])
def test_tops_spelled_every_way_are_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str) -> None:
    """find is given each top so that it never reads one as an option, and its spelling of the
    directories is followed whatever the top's (trailing slashes, `.`, a symlink, a leading `-`)."""
    t = make_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    if spelling == "slash":
        paths = ["tree//"]
    elif spelling == "dot":
        monkeypatch.chdir(t)
        paths = ["."]
    elif spelling == "symlink":
        os.symlink("tree", tmp_path / "link")
        paths = ["link"]
    elif spelling == "dash":
        t.rename(tmp_path / "-delete")
        paths = ["-delete"]
    else:
        paths = ["tree/a", "tree/b", "tree/a"]
    same(paths, tmp_path, monkeypatch)
    fast, _ = same(paths, tmp_path, monkeypatch)
    assert fast.plain_dirs == 0
    assert fast.records and all(os.path.exists(r["path"]) for r in fast.records)
    if spelling == "dash":
        assert (tmp_path / "-delete" / "m.txt").exists(), "find never took the top for an action"


def test_the_hostile_set_rescans_as_the_plain_walk_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import need_shared

    gen = need_shared("tools") / "gen_hostile.py"
    out = tmp_path / "hostile"
    subprocess.run([sys.executable, str(gen), "--out", str(out)], check=True, capture_output=True, timeout=300)
    for _ in range(3):
        same([str(out)], tmp_path, monkeypatch)


def test_the_public_corpus_rescans_as_the_plain_walk_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import need_shared

    corpus = need_shared("corpus")
    same([str(corpus)], tmp_path, monkeypatch)
    fast, _ = same([str(corpus)], tmp_path, monkeypatch)
    assert fast.plain_dirs == 0 and len(fast.records) > 50


def test_find_failing_or_missing_leaves_the_plain_walk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A find that reports an error (here one that lists part of the tree, then fails), says
    anything on stderr, or is not there: the whole tree takes the plain walk, same records."""
    t = make_tree(tmp_path)
    paths = [str(t)]
    same(paths, tmp_path, monkeypatch)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "find"
    real = shutil.which("find")
    for script in (f'#!/bin/sh\n"{real}" "$@" | head -c 300; echo "find: x: Permission denied" >&2; exit 1\n',
                   f'#!/bin/sh\n"{real}" "$@"; echo "find: warning" >&2\n',
                   '#!/bin/sh\nprintf "garbage"\n'):
        fake.write_text(script)
        fake.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
        fast, _ = same(paths, tmp_path, monkeypatch)
        assert fast.plain_dirs == 6, "every directory is walked here"
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert start(paths, WalkOptions()) is None


def test_walk_options_other_than_the_defaults_start_no_find(tmp_path: Path) -> None:
    assert start([str(tmp_path)], WalkOptions(excludes=("*.tmp",))) is None
    assert start([str(tmp_path)], WalkOptions(one_file_system=True)) is None
    assert start([str(tmp_path / "missing"), __file__], WalkOptions()) is None, "no directory to list"


def test_cli_rescan_prints_the_same_lines_with_and_without_find(tmp_path: Path) -> None:
    """`baomi scan` end to end: the lean rescan (find's listing) prints what the full scan flags."""
    t = make_tree(tmp_path)
    baomi = str(Path(sys.executable).parent / "baomi")

    def run(*args: str) -> tuple[int, list[str]]:
        p = subprocess.run([baomi, "scan", "--format", "jsonl", *args, str(t)], capture_output=True, timeout=300,
                           stdin=subprocess.DEVNULL, check=False)
        assert p.returncode in (0, 1, 3), p.stderr.decode()[-2000:]
        return p.returncode, sorted(p.stdout.decode().splitlines())

    truth = run("--no-cache")
    cache = str(tmp_path / "c.sqlite")
    assert run("--cache", cache) == truth
    assert run("--cache", cache) == truth
    (t / "b" / "new.txt").write_text(MARKED, encoding="utf-8")
    truth = run("--no-cache")
    assert run("--cache", cache) == truth
    assert run("--cache", cache) == truth


def test_a_first_scan_stops_find_and_frees_its_listing(tmp_path: Path) -> None:
    """No directory recorded yet: find's listing is of no use, and is not kept while the tree is
    scanned (a first scan of a million files would hold it for the whole scan)."""
    t = make_tree(tmp_path)
    listings = start([str(t)], WalkOptions())
    assert listings is not None
    config = ScanConfig()
    cache = open_cache(str(tmp_path / "c.sqlite"), config)
    assert cache is not None
    gen = run_scan([str(t)], config, WalkOptions(), PoolOptions(jobs=-1), cache=cache, clean_records=False,
                   listings=listings)
    next(gen)
    (listing,) = listings.by_top.values()
    assert all(r.pid is None and r.out == -1 for r in listing._runs), "find reaped, its output freed"
    list(gen)
    cache.close()


def test_closing_a_listing_stops_find(tmp_path: Path) -> None:
    listing = FindListing("/")  # a large tree: find is still running when closed
    runs = list(listing._runs)
    pids = [r.pid for r in runs if r.pid is not None]
    listing.close()
    assert pids and all(r.pid is None for r in runs)
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped: no zombie left behind
    assert listing.index() is None
