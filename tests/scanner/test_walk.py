"""The tree walk: bulk per-directory form and per-entry form agree with the file system."""
from __future__ import annotations

import os
from pathlib import Path

from scanner.walk import DirFiles, WalkOptions, walk, walk_bulk


def _key(p: Path) -> tuple[int, int, int, int, int]:
    st = os.lstat(p)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _tree(tmp_path: Path) -> Path:
    t = tmp_path / "t"
    (t / "b" / "deep").mkdir(parents=True)
    (t / "a").mkdir()
    for rel in ("z.txt", "c.txt", "a/1.txt", "b/2.txt", "b/deep/3.txt", "b/deep/4.txt"):
        (t / rel).write_text(rel, encoding="utf-8")
    (t / "link-in").symlink_to(t / "c.txt")
    (t / "link-out").symlink_to("/etc/hostname")
    os.mkfifo(t / "b" / "pipe")
    return t


def test_walk_yields_every_entry_in_name_order_depth_first(tmp_path: Path) -> None:
    t = _tree(tmp_path)
    got = [(os.path.relpath(e.path, t), e.skip, e.key) for e in walk([str(t)])]
    files = ["c.txt", "z.txt", "a/1.txt", "b/2.txt", "b/deep/3.txt", "b/deep/4.txt"]
    assert [g[0] for g in got if g[1] is None] == files
    assert all(g[2] == _key(t / g[0]) for g in got if g[1] is None), "keys are the files' own lstat"
    assert {(g[0], g[1]) for g in got if g[1]} == {("link-in", "symlink-inside-tree"),
                                                    ("link-out", "symlink-outside-tree"), ("b/pipe", "fifo")}


def test_walk_bulk_gives_each_directory_s_files_at_once(tmp_path: Path) -> None:
    t = _tree(tmp_path)
    batches = [b for b in walk_bulk([str(t)]) if isinstance(b, DirFiles)]
    assert [(os.path.relpath(b.dir, t), b.names) for b in batches] == [
        (".", ["c.txt", "z.txt"]), ("a", ["1.txt"]), ("b", ["2.txt"]), ("b/deep", ["3.txt", "4.txt"])]
    deep = batches[-1]
    assert deep.keys == [_key(t / "b/deep/3.txt"), _key(t / "b/deep/4.txt")]
    assert deep.path(1) == os.path.join(str(t), "b", "deep", "4.txt")


def test_excludes_apply_before_stat(tmp_path: Path) -> None:
    t = _tree(tmp_path)
    got = [os.path.relpath(e.path, t) for e in walk([str(t)], WalkOptions(excludes=("b/*", "*.txt")))]
    assert got == ["link-in", "link-out"]


def test_file_gone_between_listing_and_stat_is_an_error_entry_and_the_rest_is_walked(
        tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The race (a file deleted between the directory listing and its lstat) cannot be timed from
    # a test; the lstat is made to fail for one name as it would then.
    t = _tree(tmp_path)
    real = os.lstat

    def lstat(path, *, dir_fd=None):  # type: ignore[no-untyped-def]
        if path == "c.txt":
            raise FileNotFoundError(2, "No such file or directory")
        return real(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "lstat", lstat)
    got = {os.path.relpath(e.path, t): e for e in walk([str(t)])}
    assert got["c.txt"].error == "No such file or directory" and got["c.txt"].key is None
    assert got["z.txt"].key == _key(t / "z.txt") and got["b/deep/4.txt"].key == _key(t / "b/deep/4.txt")


def test_entry_that_vanishes_or_is_missing_is_an_error_not_a_crash(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    [e] = list(walk([str(missing)]))
    assert e.error and e.key is None


def test_walk_by_name_finds_what_the_stat_walk_finds(tmp_path: Path) -> None:
    """Without a cache the walk tells regular files by their entry type, unstat'ed (`DirNames`):
    the same files in the same order, the same skips, errors and subdirectories as the stat walk."""
    from scanner.walk import DirNames

    t = _tree(tmp_path)
    os.mkfifo(t / "a" / "fifo")
    (t / "b" / "deep" / "link").symlink_to("../../z.txt")

    def shape(items: list) -> list:  # type: ignore[type-arg]
        return [("files", b.dir, b.dir_id, b.names) if isinstance(b, DirNames) else b for b in items]

    for opts in (WalkOptions(), WalkOptions(excludes=("b/*", "z.txt")), WalkOptions(one_file_system=True)):
        by_stat = list(walk_bulk([str(t)], opts))
        by_name = list(walk_bulk([str(t)], opts, stat_files=False))
        assert shape(by_name) == shape(by_stat)
        assert any(isinstance(b, DirNames) for b in by_name)
        assert not any(isinstance(b, DirFiles) for b in by_name), "no stat per file"
        assert all(isinstance(b, DirFiles) for b in by_stat if isinstance(b, DirNames))
    named = list(walk_bulk([str(t / "c.txt"), str(t / "b" / "pipe")], stat_files=False))
    assert named == list(walk_bulk([str(t / "c.txt"), str(t / "b" / "pipe")]))


def test_walk_by_name_stats_an_entry_of_unknown_type(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Where the listing gives no type and DirEntry's own lstat fails (or says "not a file" of
    what is one by the time it is stat'ed again), the entry is stat'ed: a regular file is
    still a file, as in the stat walk."""
    from scanner.walk import DirNames

    t = _tree(tmp_path)
    want = [(b.dir, b.names) if isinstance(b, DirNames) else b for b in walk_bulk([str(t)])]
    real = os.scandir

    class Entry:
        def __init__(self, e: os.DirEntry) -> None:  # type: ignore[type-arg]
            self._e, self.name = e, e.name

        def is_file(self, *, follow_symlinks: bool = True) -> bool:
            if self.name == "c.txt":
                raise PermissionError(13, "Permission denied")
            return False if self.name == "z.txt" else self._e.is_file(follow_symlinks=follow_symlinks)

    class Listing:
        def __init__(self, fd: int) -> None:
            self._it = real(fd)

        def __enter__(self):  # type: ignore[no-untyped-def]
            return (Entry(e) for e in self._it.__enter__())

        def __exit__(self, *exc: object) -> None:
            self._it.__exit__(*exc)

    monkeypatch.setattr(os, "scandir", Listing)
    got = [(b.dir, b.names) if isinstance(b, DirNames) else b for b in walk_bulk([str(t)], stat_files=False)]
    assert got == want
