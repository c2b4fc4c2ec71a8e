"""Incremental cache: unchanged files answered from it, any change to file or rules rescans."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scanner.cache import CacheRefused, ScanCache

BAOMI = str(Path(sys.executable).parent / "baomi")
MARKED = "000012\n机密★10年\n特急\n标题\n"


def scan(tree: Path, cache: Path, *extra: str) -> list[dict]:
    p = subprocess.run([BAOMI, "scan", "--format", "jsonl", "--all", "--sort", "--cache", str(cache), *extra,
                        str(tree)], capture_output=True, timeout=120)
    assert p.returncode in (0, 1, 3), p.stderr.decode()
    return [json.loads(x) for x in p.stdout.decode().splitlines()]


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    t = tmp_path / "t"
    t.mkdir()
    (t / "a.txt").write_text(MARKED, encoding="utf-8")
    (t / "b.txt").write_text("普通内容。\n", encoding="utf-8")
    return t


def test_rescan_is_answered_from_cache_and_identical(tree: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner import engine
    from scanner import runner as cli
    from scanner.config import PoolOptions, ScanConfig
    from scanner.walk import WalkOptions

    cache = tmp_path / "c.sqlite"
    first = scan(tree, cache)

    def must_not_scan(self, path, display=None):  # type: ignore[no-untyped-def]
        raise AssertionError(f"{path} was scanned again")

    monkeypatch.setattr(engine.Scanner, "scan_path", must_not_scan)
    config = ScanConfig()
    c = cli.open_cache(str(cache), config)
    second = sorted(cli.run_scan([str(tree)], config, WalkOptions(), PoolOptions(jobs=-1), cache=c),
                    key=lambda r: r["path"])
    assert second == first
    assert second[0]["level"] == "secret"
    assert len(second[0]["sha256"]) == 64, "the content hash is kept"


def test_changed_file_is_rescanned(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    scan(tree, cache)
    time.sleep(0.01)
    (tree / "b.txt").write_text("000001\n绝密★长期\n标题\n", encoding="utf-8")
    recs = {Path(r["path"]).name: r for r in scan(tree, cache)}
    assert recs["b.txt"]["level"] == "top_secret"


def test_same_size_same_mtime_different_ctime_is_rescanned(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    scan(tree, cache)
    b = tree / "b.txt"
    st = b.stat()
    b.write_bytes("秘密★1年\n标题\n".encode()[: st.st_size].ljust(st.st_size, b" "))
    os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime restored: only ctime tells
    recs = {Path(r["path"]).name: r for r in scan(tree, cache)}
    assert recs["b.txt"]["level"] == "confidential"


def test_rules_change_forces_rescan(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    scan(tree, cache)
    kw = tmp_path / "kw.txt"
    kw.write_text("普通\n", encoding="utf-8")
    recs = {Path(r["path"]).name: r for r in scan(tree, cache, "--keywords", str(kw))}
    assert [f["text"] for f in recs["b.txt"]["findings"]] == ["普通"]


def test_transient_errors_are_not_cached(tmp_path: Path) -> None:
    c = ScanCache(tmp_path / "c.sqlite", "cfg")
    key = (1, 2, 3, 4, 5)
    c.store(key, {"path": "x", "errors": [{"error": "timeout"}], "findings": []})
    c.store((1, 3, 3, 4, 5), {"path": "y", "errors": [], "findings": [], "level": None})
    c.close()
    c = ScanCache(tmp_path / "c.sqlite", "cfg")
    assert c.lookup(key) is None
    assert c.lookup((1, 3, 3, 4, 5), "y") == {"schema": 1, "path": "y", "errors": [], "findings": [],
                                              "level": None, "size": 0}
    assert ScanCache(tmp_path / "c.sqlite", "other-config").lookup((1, 3, 3, 4, 5)) is None


def test_cache_writable_by_others_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "c.sqlite"
    ScanCache(p, "cfg").close()
    p.chmod(0o666)
    with pytest.raises(CacheRefused):
        ScanCache(p, "cfg")


def test_cache_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file away")
    p = tmp_path / "c.sqlite"
    ScanCache(p, "cfg").close()
    os.chown(p, 12345, 12345)
    with pytest.raises(CacheRefused):
        ScanCache(p, "cfg")
    # the scan still runs, without the cache, and says so
    t = tmp_path / "t"
    t.mkdir()
    (t / "a.txt").write_text(MARKED, encoding="utf-8")
    r = subprocess.run([BAOMI, "scan", "--format", "jsonl", "--cache", str(p), str(t)], capture_output=True,
                       timeout=60)
    assert r.returncode == 1 and b"cache" in r.stderr


def test_concurrent_scans_share_the_cache(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    for i in range(30):
        (tree / f"f{i}.txt").write_text(MARKED if i % 3 == 0 else "内容\n", encoding="utf-8")
    procs = [subprocess.Popen([BAOMI, "scan", "--format", "jsonl", "--cache", str(cache), str(tree)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 1 for p in procs), [o[1] for o in outs]
    counts = {len(o[0].splitlines()) for o in outs}
    assert counts == {11}


def test_cached_rescan_without_all_prints_the_same_lines_and_exit_code(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    for i in range(20):
        (tree / f"clean{i}.txt").write_text("内容\n", encoding="utf-8")

    def run() -> tuple[int, list[str]]:
        p = subprocess.run([BAOMI, "scan", "--format", "jsonl", "--sort", "--cache", str(cache), str(tree)],
                           capture_output=True, timeout=120, check=False)
        return p.returncode, p.stdout.decode().splitlines()

    first = run()
    second = run()  # answered from the cache; clean files share one read-only record
    assert first == second
    assert first[0] == 1 and len(first[1]) == 1 and json.loads(first[1][0])["level"] == "secret"


def test_verdict_whose_declassification_date_has_passed_since_is_rescanned(tmp_path: Path) -> None:
    """The classifier flags a passed 解密时间 against today; a verdict cached before that day would
    never show it, so such a record is a cache miss (an already flagged one, or a future date, is not)."""
    mark = {"level": "secret", "kind": "marking", "text": "机密★2020年1月1日", "declassify_date": "2020-01-01"}
    future = dict(mark, text="机密★2999年1月1日", declassify_date="2999-01-01")
    flagged = dict(mark, kind="quality", rule="cn.quality.expired")
    c = ScanCache(tmp_path / "c.sqlite", "cfg")
    c.store((1, 1, 1, 1, 1), {"path": "a", "level": "secret", "findings": [mark], "errors": []})
    c.store((1, 2, 1, 1, 1), {"path": "b", "level": "secret", "findings": [future], "errors": []})
    c.store((1, 3, 1, 1, 1), {"path": "c", "level": "secret", "findings": [mark, flagged], "errors": []})
    c.close()
    c = ScanCache(tmp_path / "c.sqlite", "cfg")
    assert c.lookup((1, 1, 1, 1, 1), "a") is None
    assert c.lookup((1, 2, 1, 1, 1), "b")["findings"] == [future]
    assert c.lookup((1, 3, 1, 1, 1), "c")["findings"] == [mark, flagged]


def _clean(i: int) -> dict:
    return {"path": f"f{i}", "level": None, "findings": [], "errors": [], "size": i}


def test_reopened_cache_is_read_from_its_bulk_snapshot(tmp_path: Path) -> None:
    import sqlite3

    p = tmp_path / "c.sqlite"
    c = ScanCache(p, "cfg")
    for i in range(50):
        c.store((1, i, i, 7, 8), _clean(i))
    c.store((1, 99, 3, 7, 8), {"path": "m", "level": "secret", "errors": [],
                               "findings": [{"kind": "marking", "text": "机密"}]})
    c.close()
    db = sqlite3.connect(p)
    db.execute("DELETE FROM files")  # only the snapshot can answer now
    db.commit()
    db.close()
    c = ScanCache(p, "cfg")
    assert c.all_clean([(1, i, i, 7, 8) for i in range(50)])
    assert not c.all_clean([(1, 1, 1, 7, 8), (1, 1, 1, 7, 9)]), "a changed ctime is not clean"
    assert c.not_clean([(1, 2, 2, 7, 8), (1, 99, 3, 7, 8), (1, 2, 2, 8, 8)]) == [1, 2]
    assert c.lookup((1, 99, 3, 7, 8), "m")["level"] == "secret"
    assert c.lookup((1, 3, 3, 7, 8), "f3") == {"schema": 1, "path": "f3", "level": None, "findings": [],
                                               "errors": [], "size": 3}
    assert c.lookup((1, 3, 3, 7, 8), clean_record=False) is not None
    assert c.lookup((1, 3, 4, 7, 8)) is None


def test_damaged_snapshot_falls_back_to_the_rows(tmp_path: Path) -> None:
    import sqlite3

    p = tmp_path / "c.sqlite"
    c = ScanCache(p, "cfg")
    for i in range(5):
        c.store((1, i, i, 7, 8), _clean(i))
    c.close()
    db = sqlite3.connect(p)
    db.execute("UPDATE snapshots_v5 SET clean_ids = substr(clean_ids, 1, 20)")
    db.commit()
    db.close()
    c = ScanCache(p, "cfg")
    assert c.all_clean([(1, i, i, 7, 8) for i in range(5)])


def test_snapshot_written_meanwhile_by_another_scan_is_merged_not_lost(tmp_path: Path) -> None:
    p = tmp_path / "c.sqlite"
    first = ScanCache(p, "cfg")
    first.store((1, 1, 1, 1, 1), _clean(1))
    first.close()
    a, b = ScanCache(p, "cfg"), ScanCache(p, "cfg")
    assert a.all_clean([(1, 1, 1, 1, 1)]) and b.all_clean([(1, 1, 1, 1, 1)])
    b.store((1, 2, 2, 2, 2), _clean(2))
    b.close()
    a.store((1, 3, 3, 3, 3), _clean(3))
    a.store((1, 1, 5, 5, 5), _clean(5))  # the same file changed: its old key must go
    a.close()
    c = ScanCache(p, "cfg")
    assert c.all_clean([(1, 2, 2, 2, 2), (1, 3, 3, 3, 3), (1, 1, 5, 5, 5)])
    assert not c.all_clean([(1, 1, 1, 1, 1)])


def test_lean_rescan_finds_a_file_changed_in_an_otherwise_clean_directory(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    for i in range(30):
        (tree / f"clean{i}.txt").write_text("内容\n", encoding="utf-8")

    def run() -> list[dict]:
        p = subprocess.run([BAOMI, "scan", "--format", "jsonl", "--cache", str(cache), str(tree)],
                           capture_output=True, timeout=120, check=False)
        assert p.returncode == 1, p.stderr.decode()
        return [json.loads(x) for x in p.stdout.decode().splitlines()]

    assert [Path(r["path"]).name for r in run()] == ["a.txt"]
    assert [Path(r["path"]).name for r in run()] == ["a.txt"]  # from the snapshot
    time.sleep(0.01)
    (tree / "clean7.txt").write_text("000002\n绝密★长期\n标题\n", encoding="utf-8")
    recs = {Path(r["path"]).name: r for r in run()}
    assert set(recs) == {"a.txt", "clean7.txt"} and recs["clean7.txt"]["level"] == "top_secret"


def test_run_scan_without_clean_records_counts_clean_files_and_yields_the_rest(tree: Path, tmp_path: Path) -> None:
    from scanner import runner as cli
    from scanner.config import PoolOptions, ScanConfig
    from scanner.walk import WalkOptions

    for i in range(10):
        (tree / f"clean{i}.txt").write_text("内容\n", encoding="utf-8")
    cache = tmp_path / "c.sqlite"
    scan(tree, cache)
    config = ScanConfig()
    c = cli.open_cache(str(cache), config)
    counted: list[int] = []
    recs = list(cli.run_scan([str(tree)], config, WalkOptions(), PoolOptions(jobs=-1), cache=c,
                             clean_records=False, on_clean=counted.append))
    c.close()
    assert [Path(r["path"]).name for r in recs] == ["a.txt"]
    assert sum(counted) == 11  # b.txt and the ten clean files


def test_directory_record_answers_an_unchanged_directory_and_only_that(tree: Path, tmp_path: Path) -> None:
    from scanner import runner as cli
    from scanner.config import ScanConfig
    from scanner.walk import DirFiles, walk_bulk

    for i in range(5):
        (tree / f"clean{i}.txt").write_text("内容\n", encoding="utf-8")
    cache = tmp_path / "c.sqlite"
    subprocess.run([BAOMI, "scan", "--format", "jsonl", "--cache", str(cache), str(tree)], capture_output=True,
                   timeout=120, check=False)

    def batch() -> DirFiles:
        [b] = [b for b in walk_bulk([str(tree)]) if isinstance(b, DirFiles)]
        return b

    c = cli.open_cache(str(cache), ScanConfig())
    b = batch()
    assert c.dir_unchanged(b.dir_id, b.packed()) == [b.names.index("a.txt")], "only the marked file is looked up"
    c.close()
    time.sleep(0.01)
    (tree / "clean3.txt").write_text("内容\n", encoding="utf-8")  # same size and text, new mtime
    c = cli.open_cache(str(cache), ScanConfig())
    b = batch()
    assert c.dir_unchanged(b.dir_id, b.packed()) is None
    c.close()


def test_directory_with_a_file_without_verdict_gets_no_record(tmp_path: Path) -> None:
    from scanner.walk import DirFiles, walk_bulk

    t = tmp_path / "t"
    t.mkdir()
    for i in range(3):
        (t / f"f{i}.txt").write_text("x", encoding="utf-8")
    [b] = [x for x in walk_bulk([str(t)]) if isinstance(x, DirFiles)]
    c = ScanCache(tmp_path / "c.sqlite", "cfg")
    c.store(b.keys[0], _clean(0))
    c.store(b.keys[1], _clean(1))  # f2 has no verdict (a timeout, say)
    c.note_dir(b.dir_id, b.packed())
    c.close()
    c = ScanCache(tmp_path / "c.sqlite", "cfg")
    assert c.dir_unchanged(b.dir_id, b.packed()) is None
    c.store(b.keys[2], _clean(2))
    c.note_dir(b.dir_id, b.packed())
    c.close()
    assert ScanCache(tmp_path / "c.sqlite", "cfg").dir_unchanged(b.dir_id, b.packed()) == []


def lean_scan(tree: Path, cache: Path) -> dict[str, dict]:
    """`baomi scan` as a rescan usually runs: JSONL of flagged files only, so unchanged
    directories are answered by their directory records."""
    p = subprocess.run([BAOMI, "scan", "--format", "jsonl", "--cache", str(cache), str(tree)],
                       capture_output=True, timeout=120, check=False)
    assert p.returncode in (0, 1), p.stderr.decode()
    return {os.path.relpath(r["path"], tree): r for r in map(json.loads, p.stdout.decode().splitlines())}


def test_lean_rescan_sees_a_same_size_same_mtime_edit(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    assert set(lean_scan(tree, cache)) == {"a.txt"}
    assert set(lean_scan(tree, cache)) == {"a.txt"}  # from the directory record
    b = tree / "b.txt"
    st = b.stat()
    b.write_bytes("秘密★1年\n标题\n".encode()[: st.st_size].ljust(st.st_size, b" "))
    os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as before: only ctime tells
    recs = lean_scan(tree, cache)
    assert set(recs) == {"a.txt", "b.txt"} and recs["b.txt"]["level"] == "confidential"


def test_lean_rescan_reports_a_renamed_marked_file_under_its_new_name(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    lean_scan(tree, cache)
    lean_scan(tree, cache)
    os.rename(tree / "a.txt", tree / "a2.txt")  # same inode and content, same place in the listing
    assert set(lean_scan(tree, cache)) == {"a2.txt"}
    os.rename(tree / "a2.txt", tree / "z.txt")  # now after b.txt
    assert set(lean_scan(tree, cache)) == {"z.txt"}
    assert set(lean_scan(tree, cache)) == {"z.txt"}


def test_lean_rescan_of_a_replaced_directory_scans_its_new_files(tmp_path: Path) -> None:
    import shutil

    tree, cache = tmp_path / "t", tmp_path / "c.sqlite"
    sub = tree / "sub"
    sub.mkdir(parents=True)
    for i in range(20):
        (sub / f"f{i:02d}.txt").write_text("普通内容。\n", encoding="utf-8")
    lean_scan(tree, cache)
    assert lean_scan(tree, cache) == {}
    old = {p.name: p.stat() for p in sub.iterdir()}
    shutil.rmtree(sub)
    sub.mkdir()
    for i in range(20):  # the same names and sizes and mtimes; one now marked
        p = sub / f"f{i:02d}.txt"
        p.write_text("秘密★五年\n" if i == 5 else "普通内容。\n", encoding="utf-8")
        assert p.stat().st_size == old[p.name].st_size
        os.utime(p, ns=(old[p.name].st_atime_ns, old[p.name].st_mtime_ns))
    recs = lean_scan(tree, cache)
    assert set(recs) == {"sub/f05.txt"} and recs["sub/f05.txt"]["level"] == "confidential"


def test_lean_rescan_sees_added_and_removed_files(tmp_path: Path) -> None:
    tree, cache = tmp_path / "t", tmp_path / "c.sqlite"
    tree.mkdir()
    for i in range(10):
        (tree / f"f{i}.txt").write_text("普通内容。\n", encoding="utf-8")
    lean_scan(tree, cache)
    assert lean_scan(tree, cache) == {}
    (tree / "g.txt").write_text("绝密★长期\n标题\n", encoding="utf-8")
    assert set(lean_scan(tree, cache)) == {"g.txt"}
    (tree / "f3.txt").unlink()
    assert set(lean_scan(tree, cache)) == {"g.txt"}


def test_clean_part_of_a_snapshot_replaced_meanwhile_comes_from_the_rows(tmp_path: Path) -> None:
    p = tmp_path / "c.sqlite"
    c = ScanCache(p, "cfg")
    for i in range(5):
        c.store((1, i, i, 7, 8), _clean(i))
    c.store((1, 99, 3, 7, 8), {"path": "m", "level": "secret", "errors": [],
                               "findings": [{"kind": "marking", "text": "机密"}]})
    c.close()
    a = ScanCache(p, "cfg")
    assert a.lookup((1, 99, 3, 7, 8), "m")["level"] == "secret"  # the small part only
    assert not a._clean_loaded
    b = ScanCache(p, "cfg")
    b.store((1, 50, 1, 1, 1), _clean(50))
    b.close()  # a new snapshot generation: the one `a` read is gone
    assert a.all_clean([(1, i, i, 7, 8) for i in range(5)] + [(1, 50, 1, 1, 1)])
    assert a.lookup((1, 99, 3, 7, 8), "m")["level"] == "secret"
    a.close()


def test_damaged_small_part_of_a_snapshot_falls_back_to_the_rows(tmp_path: Path) -> None:
    import sqlite3

    p = tmp_path / "c.sqlite"
    c = ScanCache(p, "cfg")
    c.store((1, 1, 1, 1, 1), _clean(1))
    c.store((1, 99, 3, 7, 8), {"path": "m", "level": "secret", "errors": [],
                               "findings": [{"kind": "marking", "text": "机密"}]})
    c.close()
    db = sqlite3.connect(p)
    db.execute("UPDATE snapshots_v5 SET other_ids = substr(other_ids, 1, 9), dirs = x'00'")
    db.commit()
    db.close()
    c = ScanCache(p, "cfg")
    assert c.lookup((1, 99, 3, 7, 8), "m")["level"] == "secret"
    assert c.all_clean([(1, 1, 1, 1, 1)])


def test_code_digest_follows_an_edit_that_keeps_size_and_mtime(tmp_path: Path) -> None:
    from scanner.cache import code_digest

    for pkg in ("scanner", "rules"):
        (tmp_path / pkg).mkdir()
    src = tmp_path / "scanner" / "m.py"
    src.write_text("LIMIT = 1\n")
    (tmp_path / "rules" / "r.yar").write_text("rule r { condition: false }\n")
    before = code_digest(str(tmp_path))
    assert code_digest(str(tmp_path)) == before
    st = src.stat()
    time.sleep(0.01)
    src.write_text("LIMIT = 9\n")
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    edited = code_digest(str(tmp_path))
    assert edited != before, "a same-size edit with its mtime set back still changes the key"
    (tmp_path / "scanner" / "notes.txt").write_text("not code")
    assert code_digest(str(tmp_path)) == edited, "only code and rules count"
    (tmp_path / "rules" / "r2.yar").write_text("rule r2 { condition: false }\n")
    assert code_digest(str(tmp_path)) != edited


def test_cached_rescans_of_the_public_corpus_equal_a_full_scan(tmp_path: Path) -> None:
    """No finding is lost to the cache's fast paths: on the whole labelled corpus, the rescan that
    prints every record (per-file lookups) and the one printing flagged files (directory records,
    lazily read snapshot) give exactly what a scan without the cache gives, exit code included."""
    from tests.conftest import need_shared

    corpus = need_shared("corpus")
    cache = tmp_path / "c.sqlite"

    def run(*args: str) -> tuple[int, list[str]]:
        p = subprocess.run([BAOMI, "scan", "--format", "jsonl", *args, str(corpus)], capture_output=True,
                           timeout=600, stdin=subprocess.DEVNULL, check=False)
        assert p.returncode in (0, 1, 3), p.stderr.decode()[-2000:]
        return p.returncode, sorted(p.stdout.decode().splitlines())

    code, full = run("--no-cache", "--all")
    flagged = sorted(x for x in full if json.loads(x)["findings"] or json.loads(x)["errors"])
    assert len(flagged) > 50, "the corpus is mostly positives"
    assert run("--cache", str(cache)) == (code, flagged)  # fills the cache and the directory records
    assert run("--cache", str(cache), "--all") == (code, full)
    assert run("--cache", str(cache)) == (code, flagged)


def _packed(keys: list[tuple[int, int, int, int, int]]) -> bytes:
    """A directory's stat keys as `scanner.walk.DirFiles.packed` lays them out."""
    import array

    cols = list(zip(*keys, strict=True))
    return b"".join(array.array("Q" if i < 3 else "q", col).tobytes() for i, col in enumerate(cols))


_MARKED_REC = {"path": "m", "level": "secret", "errors": [], "findings": [{"kind": "marking", "text": "机密"}]}


def _drop_rows(p: Path) -> None:
    import sqlite3

    db = sqlite3.connect(p)
    db.execute("DELETE FROM files")  # only the snapshot can answer now
    db.commit()
    db.close()


def test_a_first_scan_keeps_a_bounded_number_of_verdicts_in_memory(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 17: a first scan of a million files kept every verdict (and every noted directory's
    stat keys) as Python objects until the cache closed, 834 MB. Beyond _DELTA_MAX verdicts the
    snapshot is rebuilt from the rows, and a directory is settled as its verdicts arrive."""
    import tracemalloc

    from scanner import cache as cache_mod

    monkeypatch.setattr(cache_mod, "_DELTA_MAX", 500)
    p = tmp_path / "c.sqlite"
    c = ScanCache(p, "cfg")

    def dir_keys(d: int) -> list[tuple[int, int, int, int, int]]:
        return [(1, d * 1000 + i, i, 7, 8) for i in range(500)]

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for d in range(40):  # 40 directories of 500 files, noted before their verdicts (the runner's order)
        keys = dir_keys(d)
        c.note_dir((1, d), _packed(keys))
        for i, k in enumerate(keys):
            c.store(k, _MARKED_REC if i == 7 else _clean(i))
        del keys
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert len(c._delta) <= 500 and not c._wanted
    # 20,000 verdicts held as objects were ~7 MB here; what is left is bounded by _DELTA_MAX,
    # the rows waiting for their transaction and 40 small directory entries.
    assert grown < 1_000_000, grown
    c.close()
    _drop_rows(p)
    c = ScanCache(p, "cfg")
    for d in range(40):
        keys = dir_keys(d)
        assert c.dir_unchanged((1, d), _packed(keys)) == [7]
        assert c.all_clean(keys[:7] + keys[8:]) and c.lookup(keys[7], "m")["level"] == "secret"


def test_directory_noted_before_its_verdicts_is_recorded_when_they_have_all_arrived(tmp_path: Path) -> None:
    p = tmp_path / "c.sqlite"
    c = ScanCache(p, "cfg")
    a = [(1, 10 + i, 1, 7, 8) for i in range(4)]
    b = [(1, 20 + i, 1, 7, 8) for i in range(3)]
    c.note_dir((1, 1), _packed(a))
    c.note_dir((1, 2), _packed(b))
    for i, k in enumerate(a):
        c.store(k, _MARKED_REC if i == 2 else _clean(i))
    c.store(b[0], _clean(0))
    c.store(b[1], {"path": "t", "level": None, "findings": [],
                   "errors": [{"member": None, "error": "timeout", "detail": ""}]})  # transient: not cached
    c.store(b[2], _clean(2))
    c.close()
    c = ScanCache(p, "cfg")
    assert c.dir_unchanged((1, 1), _packed(a)) == [2]
    assert c.dir_unchanged((1, 2), _packed(b)) is None, "a file without a verdict: no directory record"
    # A rescan that settles the missing file records the directory, its other files known from the snapshot.
    c.note_dir((1, 2), _packed(b))
    c.store(b[1], _MARKED_REC)
    c.close()
    assert ScanCache(p, "cfg").dir_unchanged((1, 2), _packed(b)) == [1]


def test_snapshot_merge_replaces_the_old_verdicts_of_files_stored_again(tmp_path: Path) -> None:
    """The snapshot read at open plus a rescan's few verdicts, merged column by column: a file stored
    again (same device and inode) leaves only its new verdict, whichever part each one is in."""
    p = tmp_path / "c.sqlite"
    c = ScanCache(p, "cfg")
    for i in range(10):
        c.store((1, i, i, 7, 8), _MARKED_REC if i in (4, 8) else _clean(i))
    c.close()
    c = ScanCache(p, "cfg")
    assert c.all_clean([(1, 0, 0, 7, 8)])  # the snapshot read in full
    c.store((1, 3, 3, 9, 9), _clean(3))  # edited, still clean
    c.store((1, 4, 4, 9, 9), _clean(4))  # its marking removed
    c.store((1, 5, 5, 9, 9), _MARKED_REC)  # marked since
    c.store((1, 20, 1, 1, 1), _clean(20))  # new
    c.close()
    _drop_rows(p)
    c = ScanCache(p, "cfg")
    assert c.all_clean([(1, i, i, 7, 8) for i in (0, 1, 2, 6, 7, 9)] + [(1, 3, 3, 9, 9), (1, 4, 4, 9, 9),
                                                                        (1, 20, 1, 1, 1)])
    assert c._generation is not None and (c._n_clean, c._n_other) == (9, 2), "read from the snapshot"
    assert c.not_clean([(1, 3, 3, 7, 8), (1, 4, 4, 7, 8), (1, 5, 5, 7, 8)]) == [0, 1, 2]
    assert c.lookup((1, 4, 4, 7, 8)) is None and c.lookup((1, 5, 5, 7, 8)) is None
    assert c.lookup((1, 5, 5, 9, 9), "m")["level"] == "secret"
    assert c.lookup((1, 8, 8, 7, 8), "m")["level"] == "secret"
