"""`baomi scan` and `baomi demo`: the command line of the scanner (rich only here).

It lives in agents/ because it wires the scanner to the other packages: a policy pack
(`--policy`), the audit client (`--send`) and the inspection report (`--report`). The scan itself
is scanner.runner; policies and reports are imported only when their option is given, so a
cached rescan loads neither. The scanner itself is imported once `scan` runs, after it started
find's listing of the trees (scanner.listing): a cached rescan then lists on the other core while
the interpreter imports and loads the rules (issue 17).
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import click

from scanner.i18n import Tr, TrCommand, lang_option, tr

if TYPE_CHECKING:
    from scanner.config import ScanConfig
    from scanner.walk import Entry, WalkOptions


def _exit_usage() -> NoReturn:
    from scanner.runner import EXIT_USAGE

    sys.exit(EXIT_USAGE)


def cache_warning(exc: Exception) -> None:
    click.echo(tr(f"警告：不使用扫描缓存：{exc}", f"warning: scanning without the cache: {exc}"), err=True)


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


#: Error codes as an officer reads them in the Chinese table.
ERROR_ZH = {"encrypted": "已加密", "corrupt": "文件损坏", "too_large": "超过大小上限", "too_deep": "嵌套过深",
            "bomb": "压缩炸弹", "timeout": "超时", "unreadable": "无法读取", "unsupported": "不支持的格式",
            "crash": "解析崩溃"}
KIND_ZH = {"marking": "密级标志", "keyword": "关键词", "rule": "规则", "label": "标签",
           "label_mismatch": "标签与标志不一致", "quality": "标注问题"}
#: Findings about markings shown in the table beside them (they do not change the exit code).
NOTICE_KINDS = ("label_mismatch", "quality")
NOTICE_ZH = {"cn.quality.expired": "解密时间已过，应解密或延长保密期限", "cn.quality.no_period": "★后未标保密期限（按法定最长期限）",
             "cn.quality.paragraph_above": "段落密级高于文件密级", "cn.label_mismatch": "文件属性标签与正文密级标志不一致"}


def _error_text(code: str) -> str:
    return tr(ERROR_ZH.get(code, code), code)


def _render_table(records: list[dict[str, Any]], skipped: int, out: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from scanner.model import Level, level_rank
    from scanner.runner import ATTENTION_KINDS, attention

    console = Console(file=out, soft_wrap=False)
    table = Table(title=tr("保密检查结果", "Scan findings"), show_lines=False)
    table.add_column(tr("文件", "File"), overflow="fold")
    table.add_column(tr("密级", "Level"))
    table.add_column(tr("类别", "Kind"))
    table.add_column(tr("标志/命中", "Marking / hit"), overflow="fold")
    table.add_column(tr("位置", "Where"), overflow="fold")
    table.add_column(tr("问题", "Errors"), overflow="fold")
    shown = sorted(records, key=lambda r: (-level_rank(r.get("level")), r["path"]))
    for r in shown:
        marks = [f for f in r["findings"] if f["kind"] == "marking"]
        others = [f for f in r["findings"] if f["kind"] in ATTENTION_KINDS]
        if not marks and not others and not r["errors"] and not r.get("violations"):
            continue
        lv = r.get("level")
        level = (Level(lv).zh if tr("zh", "en") == "zh" else lv) if lv else "—"
        hits = marks or others
        notices = [f for f in r["findings"] if f["kind"] in NOTICE_KINDS]
        kind = ", ".join(tr(KIND_ZH.get(k, k), k) for k in dict.fromkeys(f["kind"] for f in hits + notices))
        text = ", ".join(dict.fromkeys(f["text"] for f in hits))[:60]
        if notices:
            text += " ⚠ " + "; ".join(dict.fromkeys(f"{tr(NOTICE_ZH.get(f['rule'], f['text']), f.get('detail') or f['text'])}"
                                                 for f in notices))[:120]
        where = (hits[0].get("member") or "") if hits else ""
        errs = "; ".join(f"{_error_text(e['error'])}{(' ' + e['member']) if e.get('member') else ''}"
                         for e in r["errors"])[:80]
        style = "bold red" if lv in ("top_secret", "secret") else ("yellow" if lv or others else "")
        table.add_row(r["path"], level, kind, text, where, errs, style=style)
    console.print(table)
    _render_violations(records, console)
    n_cls = sum(1 for r in records if r.get("level"))
    n_err = sum(1 for r in records if r.get("errors"))
    n_hit = sum(1 for r in records if attention(r))
    n_vio = sum(len(r.get("violations") or ()) for r in records)
    n_men = sum(1 for r in records if not r.get("level") and any(f["kind"] == "mention" for f in r["findings"]))
    console.print(tr(
        f"共扫描 {len(records)} 个文件：{n_cls} 个含密级标志，{n_hit} 个命中关键词或规则，{n_vio} 项策略违规，"
        f"{n_err} 个未能完整扫描，{n_men} 个仅提及密级词（不定密），跳过 {skipped} 个特殊文件。",
        f"Scanned {len(records)} files: {n_cls} carry a classification marking, {n_hit} hit a keyword or rule, "
        f"{n_vio} policy violations, {n_err} could not be fully scanned, {n_men} only mention level words, "
        f"{skipped} special entries skipped."))


def _render_violations(records: list[dict[str, Any]], console: Any) -> None:
    from rich.table import Table

    rows = [(r["path"], v) for r in records for v in (r.get("violations") or ())]
    if not rows:
        return
    table = Table(title=tr("策略违规", "Policy violations"))
    table.add_column(tr("规则", "Rule"))
    table.add_column(tr("严重程度", "Severity"))
    table.add_column(tr("处置", "Action"))
    table.add_column(tr("文件", "File"), overflow="fold")
    table.add_column(tr("说明", "Rationale"), overflow="fold")
    for path, v in rows:
        why = v.get("rationale_en") if tr("zh", "en") == "en" else v.get("rationale_zh")
        why = why or (v.get("title_en") if tr("zh", "en") == "en" else v.get("title_zh"))
        table.add_row(str(v.get("rule") or v.get("rule_id") or ""), str(v.get("severity", "")),
                      str(v.get("action", "")), path, str(why or ""),
                      style="bold red" if v.get("severity") in ("critical", "high") else "")
    console.print(table)


@click.command("scan", cls=TrCommand)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=False, readable=False))
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "json"]), default=None,
              help=Tr("输出格式：table（终端默认）| jsonl（其他情况默认）| json", "table (default on a terminal) | jsonl (default otherwise) | json"))
@click.option("--all", "show_all", is_flag=True, help=Tr("报告每个文件，而不只是有发现或错误的文件", "Report every file, not only those with findings/errors"))
@click.option("--exclude", multiple=True, metavar="GLOB", help=Tr("跳过匹配 GLOB 的路径：文件名（*.tmp）或相对扫描根的路径（sub/*、**/*.docx），可重复", "Skip paths matching GLOB: a name (*.tmp) or a path relative to the scan root (sub/*, **/*.docx); repeatable"))
@click.option("--one-file-system", is_flag=True, help=Tr("不跨越文件系统边界", "Do not cross file-system boundaries"))
@click.option("--max-file-size", default="4G", show_default=True, help=Tr("超过此大小的文件报告为 too_large", "Larger files are reported too_large"))
@click.option("--max-depth", default=8, show_default=True, help=Tr("容器嵌套层数上限", "Container nesting limit"))
@click.option("--rules", "rules_dir", type=click.Path(exists=True, file_okay=False), help=Tr("本单位 YARA 规则目录", "Site YARA rules dir"))
@click.option("--keywords", "keywords_file", type=click.Path(exists=True, dir_okay=False),
              help=Tr("关键词表，每行一个（UTF-8、GBK/GB18030、UTF-16 均可）", "Keyword list, one per line (UTF-8, GBK/GB18030 or UTF-16)"))
@click.option("--jobs", "-j", default=0, show_default=True, help=Tr("工作进程数（0：核数+1；-1：本进程内）", "Worker processes (0: cores+1; -1: in-process)"))
@click.option("--timeout", default=60.0, show_default=True, help=Tr("每个顶层文件的时限（秒）", "Seconds per top-level file"))
@click.option("--sort", "sort_output", is_flag=True, help=Tr("按路径排序输出", "Deterministic output order (by path)"))
@click.option("--hash", "hash_files", type=click.Choice(["flagged", "all", "none"]), default="flagged",
              show_default=True, help=Tr("计算 SHA-256：有发现或错误的文件 | 全部 | 不计算", "SHA-256 of files with findings/errors, of all files, or none"))
@click.option("--ocr", "ocr_mode", type=click.Choice(["off", "auto", "full"]), default="auto", show_default=True,
              envvar="BAOMI_OCR",
              help=Tr("图像与扫描版 PDF 的文字识别：auto 识别文档类图像的页眉区域，full 识别整页，off 不识别", "OCR of images and scanned PDF pages: top band of document-like images (auto), whole pages (full)"))
@click.option("--ocr-budget", type=float, default=600.0, show_default=True,
              help=Tr("整个扫描的文字识别总时限（秒），超出后未识别的页面报告为 timeout", "Seconds of OCR for the whole scan (unread pages beyond it are timeout errors)"))
@click.option("--no-cache", is_flag=True, help=Tr("重新扫描每个文件（不使用增量缓存）", "Scan every file again (no incremental cache)"))
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False), help=Tr("缓存文件（默认：每用户一个）", "Cache file (default: per user)"))
@click.option("--no-progress", is_flag=True, help=Tr("不在标准错误上显示进度条", "No progress bar on stderr"))
@click.option("--policy", "policies", multiple=True, help=Tr("策略包名称或文件：输出策略违规", "Policy pack name or file: adds violations"))
@click.option("--trust", "trusted", multiple=True, type=click.Path(exists=True, dir_okay=False), metavar="PUBKEY",
              help=Tr("受信任的保密员公钥：策略文件与签名包须由其签名（可重复）",
                      "Trusted officer public key: policy files and bundles must be signed by it (repeatable)"))
@click.option("--host-role", default="unclassified", show_default=True,
              help=Tr("主机类别：unclassified | classified:密级（如 classified:secret 或 classified:机密）", "unclassified | classified:LEVEL (e.g. classified:secret), for --policy"))
@click.option("--location", default="local_disk", show_default=True, help=Tr("位置类别（local_disk、removable_medium、mail_outbox……），用于 --policy", "Location class (local_disk, removable_medium, mail_outbox…), for --policy"))
@click.option("--send", "send_state", type=click.Path(file_okay=False), default=None, metavar="STATE",
              help=Tr("把本次扫描的发现、错误与汇总签名记入审计日志（STATE 为 baomi audit enroll --state 的目录）；"
                      "不记录文档内容",
                      "Record this scan's findings, errors and summary as signed audit events (STATE: the "
                      "directory of baomi audit enroll --state); document content is never recorded"))
@click.option("--raw", is_flag=True,
              help=Tr("把路径当作块设备或磁盘镜像只读读取：报告已删除文件和未分配空间中的密级标志及其字节偏移",
                      "Read each path as a block device or disk image (read-only): markings in deleted files and "
                      "unallocated space, with byte offsets"))
@click.option("--report", "report_file", type=click.Path(dir_okay=False), default=None,
              help=Tr("另外写出本次扫描的检查报告（.html/.docx/.pdf/.csv）",
                      "Also write an inspection report (.html/.docx/.pdf/.csv) of this scan"))
@lang_option
def scan(paths: tuple[str, ...], fmt: str | None, show_all: bool, exclude: tuple[str, ...],
         one_file_system: bool, max_file_size: str, max_depth: int, rules_dir: str | None,
         keywords_file: str | None, jobs: int, timeout: float, sort_output: bool, hash_files: str, ocr_mode: str,
         ocr_budget: float, no_cache: bool,
         cache_path: str | None, no_progress: bool, policies: tuple[str, ...], host_role: str,
         location: str, send_state: str | None, raw: bool, trusted: tuple[str, ...],
         report_file: str | None = None) -> None:
    """扫描文件和目录中的国家秘密标志 / Scan files and trees for classification markings."""
    fmt = fmt or ("table" if sys.stdout.isatty() else "jsonl")
    missing = [p for p in paths if not os.path.lexists(p)]
    if missing:
        # A mistyped mount point must not read as a clean medium.
        for p in missing:
            click.echo(tr(f"错误：路径不存在：{p}", f"error: no such file or directory: {p}"), err=True)
        _exit_usage()
    stream = fmt == "jsonl" and not sort_output
    # Printing only files with findings or errors, clean cached files need no record of their own.
    lean = stream and not show_all and not policies and not send_state and not report_file
    listings = _start_listings(list(paths), lean and not (raw or no_cache or exclude or one_file_system))
    from rules.loader import RuleSet
    from scanner.config import PoolOptions, ScanConfig
    from scanner.extractors.base import Limits
    from scanner.model import SCHEMA_VERSION
    from scanner.runner import encode_line, exit_code, open_cache, run_scan, skip_record
    from scanner.walk import WalkOptions
    host_role, host_level, location = _check_host(host_role, location)
    sender = _open_sender(send_state, location) if send_state else None
    started = time.monotonic()
    try:
        config = ScanConfig(limits=Limits(max_depth=max_depth, max_file_size=parse_size(max_file_size)),
                            rules_dir=rules_dir, keywords_file=keywords_file, hash_files=hash_files,
                            ocr_mode=ocr_mode, ocr_budget=ocr_budget if ocr_budget > 0 else None)
        rules = RuleSet(rules_dir, keywords_file)  # compile rules now: a bad rule file is a usage error
    except click.BadParameter:
        raise
    except Exception as exc:
        click.echo(tr(f"错误：规则无法加载：{exc}", f"error: rules could not be loaded: {exc}"), err=True)
        _exit_usage()
    policy = None
    if policies:
        policy = _load_policy(list(policies), list(trusted))
    cache = None if no_cache else open_cache(cache_path, config, rules, warn=cache_warning)
    if cache is None and listings is not None:
        listings.close()
        listings = None
    skipped: list[Entry] = []
    records: list[dict[str, Any]] = []
    out = sys.stdout.buffer
    progress = None
    walk_opts = WalkOptions(tuple(exclude), one_file_system)
    if not no_progress and sys.stderr.isatty():
        progress, bar = _start_progress(list(paths), walk_opts)
    try:
        source = _raw_records(list(paths), config) if raw else run_scan(
            list(paths), config, walk_opts, PoolOptions(jobs=jobs, timeout=timeout), on_skip=skipped.append,
            cache=cache, clean_records=not lean,
            on_clean=(lambda n: progress.advance(bar, n)) if progress is not None else None, listings=listings)
        # Streamed JSONL needs the records afterwards only for the exit code: keeping just those that
        # can set it holds memory to the flagged files (a million-file scan kept every record).
        keep_all = not stream or bool(report_file)
        for rec in source:
            if policy is not None:
                rec["violations"] = _violations(policy, rec, host_role, host_level, location)
            if keep_all or rec.get("level") or rec.get("violations") or rec["findings"] or rec["errors"]:
                records.append(rec)
            if sender is not None:
                sender.add(rec)
            if progress is not None:
                progress.advance(bar)
            if stream and (show_all or rec["findings"] or rec["errors"] or rec.get("violations")):
                out.write(encode_line(rec))
                out.flush()
    except KeyboardInterrupt:
        click.echo(tr("已中断", "interrupted"), err=True)
        _exit_usage()
    finally:
        if progress is not None:
            progress.stop()
        if cache is not None:
            cache.close()
    if show_all:
        records.extend(skip_record(e) for e in skipped)
    selected = [r for r in records if show_all or r["findings"] or r["errors"] or r.get("violations")]
    if sort_output or fmt != "jsonl":
        selected.sort(key=lambda r: r["path"])
    if fmt == "jsonl" and not stream:
        for rec in selected:
            out.write(encode_line(rec))
    elif fmt == "jsonl" and show_all:
        for e in skipped:
            out.write(encode_line(skip_record(e)))
    elif fmt == "json":
        out.write((json.dumps({"schema": SCHEMA_VERSION, "files": selected}, ensure_ascii=False, indent=1) + "\n")
                  .encode("utf-8", "backslashreplace"))
    elif fmt == "table":
        out.flush()
        _render_table(records, len(skipped), sys.stdout)
    out.flush()
    if sender is not None:
        _finish_sender(sender, paths, time.monotonic() - started,
                       {"policy": list(policies), "host_role": host_role, "host_level": host_level,
                        "location": location, "skipped": len(skipped)})
    if report_file:
        from reports.render.cli import write_scan_report_cli

        write_scan_report_cli(records, report_file, paths)
    sys.exit(exit_code(records))


def _start_listings(paths: list[str], lean: bool) -> Any:
    """For a rescan printing only flagged files, find lists and stats the trees (scanner.listing)
    on the other core while the scanner is imported and the rules and the cache load; None
    otherwise. Stopped, if it still runs, when the command ends."""
    if not lean:
        return None
    from scanner.listing import start
    from scanner.walk import WalkOptions

    listings = start(paths, WalkOptions())
    if listings is not None:
        click.get_current_context().call_on_close(listings.close)
    return listings


def _load_policy(names: list[str], trusted: list[str] | None = None) -> Any:
    try:
        from policies.engine import load_policy
    except ImportError:
        click.echo(tr("错误：策略模块不可用", "error: the policy engine is not available"), err=True)
        _exit_usage()
    try:
        return load_policy(names, trusted_keys=trusted or ())
    except Exception as exc:
        click.echo(tr(f"错误：策略无法加载：{exc}", f"error: policy could not be loaded: {exc}"), err=True)
        _exit_usage()


def _start_progress(paths: list[str], walk_opts: WalkOptions) -> tuple[Any, Any]:
    """A progress bar on stderr (never stdout: JSONL may be redirected there) whose total comes
    from a second walk in a thread, so that the bar shows a count, a total and an ETA."""
    import threading

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from scanner.walk import walk

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True)
    progress.start()
    bar = progress.add_task(tr("扫描中", "scanning"), total=None)

    def count() -> None:
        n = 0
        for e in walk(paths, walk_opts):
            if e.skip is None:
                n += 1
        progress.update(bar, total=n)

    threading.Thread(target=count, name="progress-total", daemon=True).start()
    return progress, bar


def _raw_records(paths: list[str], config: ScanConfig) -> Iterator[dict[str, Any]]:
    """`--raw`: one record per device or image (deleted files and unallocated space)."""
    from scanner.engine import Scanner
    from scanner.raw import scan_raw

    scanner = Scanner(config)
    for p in paths:
        yield scan_raw(p, scanner)


def _open_sender(state: str, location: str | None = None) -> Any:
    """The audit client of an enrolled state directory, or exit 2 with one line saying why not."""
    if not os.path.isfile(os.path.join(state, "state.json")):
        click.echo(tr(f"错误：{state} 不是已登记的审计状态目录（先运行 baomi audit enroll --state {state}）",
                      f"error: {state} holds no enrolled identity (run baomi audit enroll --state {state} first)"),
                   err=True)
        _exit_usage()
    from reports.scanlog import ScanSender

    try:
        return ScanSender(state, location)
    except Exception as exc:  # an unreadable key or spool: the scan would be recorded nowhere
        click.echo(tr(f"错误：无法打开审计状态目录 {state}：{exc}", f"error: cannot open audit state {state}: {exc}"),
                   err=True)
        _exit_usage()


def _finish_sender(sender: Any, paths: tuple[str, ...], seconds: float, extra: dict[str, Any]) -> None:
    try:
        acked, pending = sender.finish(paths, seconds, extra)
    except Exception as exc:
        # The events are in the spool; a refused or failed delivery is said, never hidden.
        click.echo(tr(f"警告：审计事件已暂存但未送达：{exc}", f"warning: audit events spooled but not delivered: {exc}"),
                   err=True)
        return
    n = sender.tally.files
    if pending:
        click.echo(tr(f"审计日志：{n} 个文件的扫描已签名暂存，服务器确认 {acked} 条事件，{pending} 条待发送"
                      f"（下次 baomi audit send 或 scan --send 时补发）",
                      f"audit log: scan of {n} files signed and spooled; {acked} events acknowledged, "
                      f"{pending} pending (sent on the next baomi audit send or scan --send)"), err=True)
    else:
        click.echo(tr(f"审计日志：{n} 个文件的扫描已记录，服务器确认 {acked} 条事件",
                      f"audit log: scan of {n} files recorded, {acked} events acknowledged"), err=True)


#: `scan`'s --host-role and --location defaults.
_DEFAULT_HOST = ("unclassified", "local_disk")


def _check_host(host_role: str, location: str) -> tuple[str, str | None, str]:
    """--host-role and --location validated as `baomi policy explain` validates them (one helper)."""
    if (host_role, location) == _DEFAULT_HOST:
        # The defaults parse to themselves (a test holds this): the policy model, a fifth of a
        # cached rescan's start-up, is imported only when a role or location must be checked.
        return host_role, None, location
    from policies.model import parse_host, parse_location

    try:
        role, level = parse_host(host_role)
        return role, level, parse_location(location)
    except ValueError as exc:
        click.echo(tr(f"错误：{exc}", f"error: {exc}"), err=True)
        _exit_usage()


def _violations(policy: Any, rec: dict[str, Any], host_role: str, host_level: str | None,
                location: str) -> list[dict[str, Any]]:
    from policies.engine import violations_for_scan_record

    return list(violations_for_scan_record(policy, rec, host_role=host_role, host_level=host_level,
                                           location=location))


@click.command("demo", cls=TrCommand)
@click.option("--dir", "target", default="demo-samples", show_default=True, help=Tr("示例文件写入的目录", "Where to write the samples"))
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
        from scanner.runner import EXIT_CLASSIFIED, EXIT_CLEAN

        code = exc.code if isinstance(exc.code, int) else 0
        # The samples are meant to hold classified files: exit 1 is the expected outcome here.
        sys.exit(0 if code in (EXIT_CLEAN, EXIT_CLASSIFIED) else code)
