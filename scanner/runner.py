"""Running a scan over paths: the walk, the cache and the worker pool, yielding one record per file.

The command-line face (`baomi scan`, with its policy, audit and report wiring) is agents/scan_cli.py;
this module prints nothing and knows no policy or network.
"""
from __future__ import annotations

import collections
import itertools
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rules.loader import RuleSet
from scanner.cache import CLEAN, CacheRefused, ScanCache, default_cache_path
from scanner.config import PoolOptions, ScanConfig, config_digest
from scanner.listing import ListedDir, Listings, listing_digest, walk_listed
from scanner.model import SCHEMA_VERSION
from scanner.walk import DirFiles, DirNames, Entry, WalkOptions, walk_bulk

# The engine, the worker pool and the extractors are imported when a file must be scanned:
# a rescan answered from the cache never loads them.

EXIT_CLEAN, EXIT_CLASSIFIED, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


#: json.dumps(rec, ensure_ascii=False) builds an encoder per call: a third of a 100k-record `--all` rescan.
_JSON = json.JSONEncoder(ensure_ascii=False)


def encode_line(rec: dict[str, Any]) -> bytes:
    # Undecodable file names survive as JSON \udcXX escapes instead of breaking the line.
    return (_JSON.encode(rec) + "\n").encode("utf-8", "backslashreplace")


#: Finding kinds an officer must look at although they set no level (site keyword lists, site rules).
ATTENTION_KINDS = ("keyword", "rule")


def attention(rec: dict[str, Any]) -> bool:
    return any(f.get("kind") in ATTENTION_KINDS for f in rec.get("findings", ()))


def exit_code(records: list[dict[str, Any]]) -> int:
    """markings.md §5: 1 if any file has a level (or a keyword/rule hit, or a policy violation);
    else 3 if any could not be fully scanned; else 0."""
    if any(r.get("level") or r.get("violations") or attention(r) for r in records):
        return EXIT_CLASSIFIED
    if any(r.get("errors") for r in records):
        return EXIT_INCOMPLETE
    return EXIT_CLEAN


def error_record(e: Entry) -> dict[str, Any]:
    """A file or directory the walk could not read: the scan is incomplete there, never clean."""
    return {"schema": SCHEMA_VERSION, "path": e.display, "level": None, "findings": [],
            "errors": [{"member": None, "error": "unreadable", "detail": e.error or ""}]}


def skip_record(e: Entry) -> dict[str, Any]:
    return {"schema": SCHEMA_VERSION, "path": e.display, "level": None, "findings": [], "errors": [],
            "skipped": e.skip}


def run_scan(paths: list[str], config: ScanConfig, walk_opts: WalkOptions, pool_opts: PoolOptions,
             *, on_skip: Any = None, cache: ScanCache | None = None,
             clean_records: bool = True, on_clean: Any = None,
             listings: Listings | None = None) -> Iterator[dict[str, Any]]:
    """Scan `paths`; yields the record of every regular file (skipped entries go to `on_skip`).

    With a cache, unchanged files are answered from it at stat speed and the worker pool is
    started only when some file needs scanning. With `clean_records=False`, files the cache knows
    clean are not yielded at all, only counted through `on_clean(n)`: a caller printing files with
    findings or errors then pays nothing per clean file (a directory of them is one set test).
    Without a cache, files the workers find clean are left out and counted the same way.
    With a cache and `clean_records=False` only, `listings` (`scanner.listing.start`, begun while
    the interpreter started) is find's listing of the trees: a directory listed as the cache
    recorded it is not walked here."""
    keys: dict[int, Any] = {}
    lean = cache is not None and not clean_records
    listed = lean and listings is not None and cache is not None and cache.has_dir_records()
    walker: Iterator[Entry | DirNames | ListedDir]
    if listed and listings is not None and cache is not None:
        walker = walk_listed(paths, walk_opts, listings, cache.listing_unchanged)
    else:
        if listings is not None:
            listings.close()  # no directory recorded yet (a first scan): find's listing is of no use
        # Without a cache no stat key is needed: files are walked by name (see walk_bulk).
        walker = walk_bulk(paths, walk_opts, stat_files=cache is not None)
    ready: collections.deque[dict[str, Any]] = collections.deque()
    counter = itertools.count()

    def tasks() -> Iterator[tuple[int, str, str]]:
        for item in walker:
            if isinstance(item, (DirNames, ListedDir)):
                todo: Sequence[int]
                if isinstance(item, ListedDir):
                    n = len(item)
                    todo = item.todo  # find listed it as the cache recorded it: look up the flagged ones
                else:
                    n = len(item.names)
                    if cache is None:
                        # The scan's common case: every file to the workers, nothing looked up.
                        for p in map(item.path, range(n)):
                            yield next(counter), p, p
                        continue
                    assert isinstance(item, DirFiles)  # walked with stat_files: a cache needs keys
                    todo = _check_dir(cache, item, listed) if lean else range(n)
                assert cache is not None  # (a ListedDir comes only from the cache's own listing)
                if lean and on_clean is not None and len(todo) < n:
                    on_clean(n - len(todo))
                for j in todo:
                    p = item.path(j)
                    i = next(counter)
                    key = item.key(j)
                    rec = cache.lookup(key, p)
                    if rec is not None:
                        ready.append(rec)
                        continue
                    keys[i] = key
                    yield i, p, p
                continue
            e: Entry = item  # type: ignore[assignment]
            i = next(counter)
            if e.error:
                ready.append(error_record(e))
                continue
            if e.skip:
                if on_skip:
                    on_skip(e)
                continue
            if cache is not None and e.key is not None:
                rec = cache.lookup(e.key, e.display, clean_record=clean_records)
                if rec is not None:
                    if rec is not CLEAN:
                        ready.append(rec)
                    elif on_clean is not None:
                        on_clean(1)
                    continue
                keys[i] = e.key
            yield i, e.path, e.display

    def finish(idx: int, rec: dict[str, Any]) -> dict[str, Any]:
        if cache is not None and idx in keys:
            cache.store(keys.pop(idx), rec)
        return rec

    todo = tasks()
    first = next(todo, None)  # walks (answering from the cache) up to the first file to scan
    yield from _drain(ready)
    if first is None:
        return
    todo = itertools.chain([first], todo)
    if pool_opts.jobs < 0:  # in-process (debugging): no deadline, no isolation
        from scanner.engine import Scanner

        scanner = Scanner(config)
        for idx, path, display in todo:
            yield finish(idx, scanner.scan_path(path, display).to_record())
            yield from _drain(ready)
        yield from _drain(ready)  # entries walked after the last file scanned
        return
    from scanner.pool import WorkerPool

    # Without a cache to fill, a clean file's record would be built only to be dropped.
    count_clean = (on_clean or _ignore) if cache is None and not clean_records else None
    for idx, rec in WorkerPool(config, pool_opts).run(todo, on_clean=count_clean):
        yield finish(idx, rec)
        yield from _drain(ready)
    yield from _drain(ready)


def _check_dir(cache: ScanCache, item: DirFiles, listed: bool) -> list[int]:
    """The positions of the files of a walked directory to look up one by one.

    A directory whose files are exactly those of its record (same stat keys, same order) costs
    one bytes comparison; another is checked with set tests and recorded for the next scan, with
    the digest of its listing as find prints it (scanner.listing), so that the next rescan need
    not stat its files here."""
    packed = item.packed()
    unchanged = cache.dir_unchanged(item.dir_id, packed) if packed is not None else None
    if unchanged is not None:
        if listed and packed is not None:
            listing = listing_digest(item)
            if listing is not None and cache.listing_unchanged(item.dir_id, listing) is None:
                cache.note_dir(item.dir_id, packed, listing)  # recorded without its listing
        return unchanged
    if packed is not None:
        cache.note_dir(item.dir_id, packed, listing_digest(item))
    return [] if cache.all_clean(item.keys) else cache.not_clean(item.keys)


def _ignore(_n: int) -> None:
    pass


def _drain(q: collections.deque[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    while q:
        yield q.popleft()


def open_cache(path: str | None, config: ScanConfig, rules: RuleSet | None = None,
               warn: Callable[[Exception], None] | None = None) -> ScanCache | None:
    """The user's scan cache, or None (after `warn(exc)`) when it cannot be trusted or opened."""
    digest = config_digest(config, rules or RuleSet(config.rules_dir, config.keywords_file, config.rules_cache))
    try:
        return ScanCache(path or default_cache_path(), digest)
    except (CacheRefused, OSError, sqlite3.Error) as exc:
        if warn is not None:
            warn(exc)
        return None
