"""`baomi scan` and `baomi demo`: the command-line face of the scanner (rich only here)."""
from __future__ import annotations

import collections
import itertools
import json
import sqlite3
import sys
from collections.abc import Iterator
from typing import Any

import click

from rules.loader import RuleSet
from scanner.cache import CacheRefused, ScanCache, default_cache_path
from scanner.config import PoolOptions, ScanConfig, config_digest
from scanner.extractors.base import Limits
from scanner.i18n import lang_option, tr
from scanner.model import SCHEMA_VERSION, Level, level_rank
from scanner.walk import Entry, WalkOptions, walk

# The engine, the worker pool and the extractors are imported when a file must be scanned:
# a rescan answered from the cache never loads them.

EXIT_CLEAN, EXIT_CLASSIFIED, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3



def parse_size(text: str) -> int:
    """`500M`, `2G`, `1024` → bytes."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}
    try:
        if t and t[-1] in mult:
            return int(float(t[:-1]) * mult[t[-1]])
        return int(t)
    except ValueError:
        raise click.BadParameter(tr(f"无法识别的大小：{text}", f"not a size: {text}")) from None


def _encode_line(rec: dict[str, Any]) -> bytes:
    # Undecodable file names survive as JSON \udcXX escapes instead of breaking the line.
    return (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")


def exit_code(records: list[dict[str, Any]]) -> int:
    """markings.md §5: 1 if any file has a level; else 3 if any could not be fully scanned; else 0."""
    if any(r.get("level") for r in records):
        return EXIT_CLASSIFIED
    if any(r.get("errors") for r in records):
        return EXIT_INCOMPLETE
    return EXIT_CLEAN


def _skip_record(e: Entry) -> dict[str, Any]:
    return {"schema": SCHEMA_VERSION, "path": e.display, "level": None, "findings": [], "errors": [],
            "skipped": e.skip}


def run_scan(paths: list[str], config: ScanConfig, walk_opts: WalkOptions, pool_opts: PoolOptions,
             *, on_skip: Any = None, cache: ScanCache | None = None,
             clean_records: bool = True) -> Iterator[dict[str, Any]]:
    """Scan `paths`; yields the record of every regular file (skipped entries go to `on_skip`).

    With a cache, unchanged files are answered from it at stat speed and the worker pool is
    started only when some file needs scanning."""
    keys: dict[int, Any] = {}
    ready: collections.deque[dict[str, Any]] = collections.deque()

    def tasks() -> Iterator[tuple[int, str, str]]:
        for i, e in enumerate(walk(paths, walk_opts)):
            if e.skip:
                if on_skip:
                    on_skip(e)
                continue
            if cache is not None and e.key is not None:
                rec = cache.lookup(e.key, e.display, clean_record=clean_records)
                if rec is not None:
                    ready.append(rec)
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
        return
    from scanner.pool import WorkerPool

    for idx, rec in WorkerPool(config, pool_opts).run(todo):
        yield finish(idx, rec)
        yield from _drain(ready)
    yield from _drain(ready)


def _drain(q: collections.deque[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    while q:
        yield q.popleft()


def open_cache(path: str | None, config: ScanConfig) -> ScanCache | None:
    """The user's scan cache, or None (with a warning) when it cannot be trusted or opened."""
    digest = config_digest(config, RuleSet(config.rules_dir, config.keywords_file, config.rules_cache))
    try:
        return ScanCache(path or default_cache_path(), digest)
    except (CacheRefused, OSError, sqlite3.Error) as exc:
        click.echo(tr(f"警告：不使用扫描缓存：{exc}", f"warning: scanning without the cache: {exc}"), err=True)
        return None


def _render_table(records: list[dict[str, Any]], skipped: int, out: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, soft_wrap=False)
    table = Table(title=tr("保密检查结果", "Scan findings"), show_lines=False)
    table.add_column(tr("文件", "File"), overflow="fold")
    table.add_column(tr("密级", "Level"))
    table.add_column(tr("标志", "Marking"), overflow="fold")
    table.add_column(tr("位置", "Where"), overflow="fold")
    table.add_column(tr("问题", "Errors"), overflow="fold")
    shown = sorted(records, key=lambda r: (-level_rank(r.get("level")), r["path"]))
    for r in shown:
        marks = [f for f in r["findings"] if f["kind"] == "marking"]
        others = [f for f in r["findings"] if f["kind"] in ("keyword", "rule")]
        if not marks and not others and not r["errors"]:
            continue
        lv = r.get("level")
        level = (Level(lv).zh if tr("zh", "en") == "zh" else lv) if lv else "—"
        first = (marks or others or [None])[0]
        text = ", ".join(dict.fromkeys(f["text"] for f in (marks or others)))[:60] if first else ""
        where = (first.get("member") or "") if first else ""
        errs = "; ".join(f"{e['error']}{(' ' + e['member']) if e.get('member') else ''}" for e in r["errors"])[:80]
        style = "bold red" if lv in ("top_secret", "secret") else ("yellow" if lv else "")
        table.add_row(r["path"], level, text, where, errs, style=style)
    console.print(table)
    n_cls = sum(1 for r in records if r.get("level"))
    n_err = sum(1 for r in records if r.get("errors"))
    n_men = sum(1 for r in records if not r.get("level") and any(f["kind"] == "mention" for f in r["findings"]))
    console.print(tr(
        f"共扫描 {len(records)} 个文件：{n_cls} 个含密级标志，{n_err} 个未能完整扫描，"
        f"{n_men} 个仅提及密级词（不定密），跳过 {skipped} 个特殊文件。",
        f"Scanned {len(records)} files: {n_cls} carry a classification marking, {n_err} could not be "
        f"fully scanned, {n_men} only mention level words, {skipped} special entries skipped."))


@click.command("scan")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=False))
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "json"]), default=None,
              help="table (default on a terminal) | jsonl (default otherwise) | json")
@click.option("--all", "show_all", is_flag=True, help="Report every file, not only those with findings/errors")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip paths matching GLOB (repeatable)")
@click.option("--one-file-system", is_flag=True, help="Do not cross file-system boundaries")
@click.option("--max-file-size", default="4G", show_default=True, help="Larger files are reported too_large")
@click.option("--max-depth", default=8, show_default=True, help="Container nesting limit")
@click.option("--rules", "rules_dir", type=click.Path(exists=True, file_okay=False), help="Site YARA rules dir")
@click.option("--keywords", "keywords_file", type=click.Path(exists=True, dir_okay=False),
              help="Keyword list, one per line (UTF-8)")
@click.option("--jobs", "-j", default=0, show_default=True, help="Worker processes (0: cores+1; -1: in-process)")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds per top-level file")
@click.option("--sort", "sort_output", is_flag=True, help="Deterministic output order (by path)")
@click.option("--hash", "hash_files", type=click.Choice(["flagged", "all", "none"]), default="flagged",
              show_default=True, help="SHA-256 of files with findings/errors, of all files, or none")
@click.option("--ocr", "ocr_mode", type=click.Choice(["off", "auto", "full"]), default="auto", show_default=True,
              envvar="BAOMI_OCR",
              help="OCR of images and scanned PDF pages: top band of document-like images (auto), whole pages (full)")
@click.option("--ocr-budget", type=float, default=600.0, show_default=True,
              help="Seconds of OCR for the whole scan (unread pages beyond it are timeout errors)")
@click.option("--no-cache", is_flag=True, help="Scan every file again (no incremental cache)")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False), help="Cache file (default: per user)")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr")
@click.option("--policy", "policies", multiple=True, help="Policy pack name or file: adds violations")
@click.option("--host-role", default="unclassified", show_default=True,
              help="unclassified | classified[:LEVEL] (for --policy)")
@click.option("--location", default="local_disk", show_default=True, help="Location class (for --policy)")
@click.option("--report", "report_file", type=click.Path(dir_okay=False), default=None,
              help="Also write an inspection report (.html/.docx/.pdf/.csv) of this scan")
@lang_option
def scan(paths: tuple[str, ...], fmt: str | None, show_all: bool, exclude: tuple[str, ...],
         one_file_system: bool, max_file_size: str, max_depth: int, rules_dir: str | None,
         keywords_file: str | None, jobs: int, timeout: float, sort_output: bool, hash_files: str, ocr_mode: str,
         ocr_budget: float, no_cache: bool,
         cache_path: str | None, no_progress: bool, policies: tuple[str, ...], host_role: str,
         location: str, report_file: str | None = None) -> None:
    """扫描文件和目录中的国家秘密标志 / Scan files and trees for classification markings."""
    fmt = fmt or ("table" if sys.stdout.isatty() else "jsonl")
    try:
        config = ScanConfig(limits=Limits(max_depth=max_depth, max_file_size=parse_size(max_file_size)),
                            rules_dir=rules_dir, keywords_file=keywords_file, hash_files=hash_files,
                            ocr_mode=ocr_mode, ocr_budget=ocr_budget if ocr_budget > 0 else None)
        RuleSet(rules_dir, keywords_file)  # compile rules now: a bad rule file is a usage error
    except click.BadParameter:
        raise
    except Exception as exc:
        click.echo(tr(f"错误：规则无法加载：{exc}", f"error: rules could not be loaded: {exc}"), err=True)
        sys.exit(EXIT_USAGE)
    policy = None
    if policies:
        policy = _load_policy(list(policies))
    cache = None if no_cache else open_cache(cache_path, config)
    skipped: list[Entry] = []
    records: list[dict[str, Any]] = []
    out = sys.stdout.buffer
    stream = fmt == "jsonl" and not sort_output
    progress = None
    if not no_progress and sys.stderr.isatty():
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed}"),
                            TimeElapsedColumn(), transient=True)
        progress.start()
        bar = progress.add_task(tr("扫描中", "scanning"), total=None)
    try:
        # Printing only files with findings or errors, clean cached files need no record of their own.
        lean = stream and not show_all and policy is None
        for rec in run_scan(list(paths), config, WalkOptions(tuple(exclude), one_file_system),
                            PoolOptions(jobs=jobs, timeout=timeout), on_skip=skipped.append, cache=cache,
                            clean_records=not lean):
            if policy is not None:
                rec["violations"] = _violations(policy, rec, host_role, location)
            records.append(rec)
            if progress is not None:
                progress.advance(bar)
            if stream and (show_all or rec["findings"] or rec["errors"] or rec.get("violations")):
                out.write(_encode_line(rec))
                out.flush()
    except KeyboardInterrupt:
        click.echo(tr("已中断", "interrupted"), err=True)
        sys.exit(EXIT_USAGE)
    finally:
        if progress is not None:
            progress.stop()
        if cache is not None:
            cache.close()
    if show_all:
        records.extend(_skip_record(e) for e in skipped)
    selected = [r for r in records if show_all or r["findings"] or r["errors"] or r.get("violations")]
    if sort_output or fmt != "jsonl":
        selected.sort(key=lambda r: r["path"])
    if fmt == "jsonl" and not stream:
        for rec in selected:
            out.write(_encode_line(rec))
    elif fmt == "jsonl" and show_all:
        for e in skipped:
            out.write(_encode_line(_skip_record(e)))
    elif fmt == "json":
        out.write((json.dumps({"schema": SCHEMA_VERSION, "files": selected}, ensure_ascii=False, indent=1) + "\n")
                  .encode("utf-8", "backslashreplace"))
    elif fmt == "table":
        out.flush()
        _render_table(records, len(skipped), sys.stdout)
    out.flush()
    if report_file:
        from reports.render.cli import write_scan_report_cli

        write_scan_report_cli(records, report_file, paths)
    sys.exit(exit_code(records))


def _load_policy(names: list[str]) -> Any:
    try:
        from policies.engine import load_policy
    except ImportError:
        click.echo(tr("错误：策略模块不可用", "error: the policy engine is not available"), err=True)
        sys.exit(EXIT_USAGE)
    try:
        return load_policy(names)
    except Exception as exc:
        click.echo(tr(f"错误：策略无法加载：{exc}", f"error: policy could not be loaded: {exc}"), err=True)
        sys.exit(EXIT_USAGE)


def _violations(policy: Any, rec: dict[str, Any], host_role: str, location: str) -> list[dict[str, Any]]:
    from policies.engine import violations_for_scan_record

    role, _, lvl = host_role.partition(":")
    return list(violations_for_scan_record(policy, rec, host_role=role, host_level=lvl or None,
                                           location=location))


@click.command("demo")
@click.option("--dir", "target", default="demo-samples", show_default=True, help="Where to write the samples")
@lang_option
def demo(target: str) -> None:
    """生成示例文件并扫描 / Build the bundled sample set and scan it."""
    from scanner.samples import build_samples

    n = build_samples(target)
    click.echo(tr(f"已在 {target}/ 生成 {n} 个示例文件，开始扫描……", f"Wrote {n} sample files to {target}/; scanning…"))
    ctx = click.get_current_context()
    try:
        ctx.invoke(scan, paths=(target,), fmt="table", no_progress=True, no_cache=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
        # The samples are meant to hold classified files: exit 1 is the expected outcome here.
        sys.exit(0 if code in (EXIT_CLEAN, EXIT_CLASSIFIED) else code)
