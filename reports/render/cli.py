"""Glue of `baomi report FORMAT` and `baomi scan --report`: gather, then write one format."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from reports.render.model import ReportData
from scanner.i18n import tr

_SCOPE_NAMES = {"since": ("起始时间", "since"), "until": ("截止时间", "until"), "host": ("主机", "host"),
                "level": ("最低密级", "minimum level"), "rule": ("规则", "rule"), "type": ("事件类型", "type"),
                "agent": ("终端", "agent"), "channel": ("渠道", "channel"), "source": ("数据来源", "source")}


def scope_of(filters: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for k, v in filters.items():
        if v is not None and k in _SCOPE_NAMES:
            out[tr(*_SCOPE_NAMES[k])] = str(v)
    return out or {tr("范围", "scope"): tr("全部日志", "whole log")}


def write_data(fmt: str, data: ReportData, out: str | Path) -> None:
    if fmt == "html":
        from reports.render.html import render_html

        Path(out).write_text(render_html(data), encoding="utf-8")
    elif fmt == "docx":
        from reports.render.docx import render_docx

        render_docx(data, out)
    elif fmt == "pdf":
        from reports.render.pdf import render_pdf

        render_pdf(data, out)
    elif fmt == "csv":
        from reports.render.csvout import render_csv

        with open(out, "w", encoding="utf-8-sig", newline="") as fh:  # BOM: Excel reads UTF-8 CJK
            render_csv(data, fh)
    else:
        raise RuntimeError(tr(f"不支持的报告格式：{fmt}", f"unsupported report format: {fmt}"))


def write_report(fmt: str, src: Any, query: Any, out: str | Path, *, server_key: str | None = None,
                 channel: str | None = None, filters: Mapping[str, Any] | None = None) -> int:
    from policies.keys import load_public_key
    from reports.render.collect import collect

    key = load_public_key(Path(server_key)) if server_key else None
    # The CSV export lists every item; the other formats an appendix of APPENDIX_ROWS.
    from reports.render.verifycache import cache_dir

    data = collect(src, query, server_key=key, channel=channel, scope=scope_of(filters or {}),
                   verify_cache=cache_dir(), **({"appendix_rows": None} if fmt == "csv" else {}))
    write_data(fmt, data, out)
    return data.events


def write_scan_report(rows: Iterable[Mapping[str, Any]], out: str | Path, scope: Mapping[str, str]) -> None:
    """`baomi scan --report FILE.html|docx|pdf|csv`: a report from a scan with no collector."""
    from reports.render.model import build_report

    fmt = Path(out).suffix.lower().lstrip(".")
    write_data(fmt, build_report(rows, scope=scope), out)


def scan_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Scan records (`baomi scan` JSON) as report rows: a finding per classified file, a violation
    per policy decision, an error row per unreadable file (never counted as clean)."""
    import socket

    from reports.events import utcnow

    host, now, rows = socket.gethostname(), utcnow(), []
    for rec in records:
        marks = [f for f in rec.get("findings") or [] if f.get("kind") == "marking"]
        base = {"time": now, "host": host, "agent": "scan", "path": rec.get("path"),
                "payload": {"sha256": rec.get("sha256"), "channel": "scan"}}
        if rec.get("level"):
            rows.append({**base, "type": "finding", "level": rec["level"],
                         "rule": marks[0].get("rule") if marks else None,
                         "marking": marks[0].get("text") if marks else None})
        for v in rec.get("violations") or []:
            rows.append({**base, "type": "violation", "level": rec.get("level"),
                         "rule": v.get("rule") or v.get("rule_id"), "marking": marks[0].get("text") if marks else None})
        for e in rec.get("errors") or []:
            rows.append({**base, "type": "scan_error", "level": None, "rule": e.get("code"), "marking": None})
    for n, r in enumerate(rows, 1):
        r["gseq"], r["event_id"] = n, f"scan-{n}"
    return rows


def write_scan_report_cli(records: Iterable[Mapping[str, Any]], out: str, paths: Iterable[str]) -> None:
    """The one call `baomi scan --report FILE` makes; a bad suffix or engine is one line, exit 2."""
    import sys

    import click

    fmt = Path(out).suffix.lower().lstrip(".")
    if fmt not in ("html", "docx", "pdf", "csv"):
        click.echo(tr(f"错误：报告文件须以 .html/.docx/.pdf/.csv 结尾：{out}",
                      f"error: the report file must end in .html/.docx/.pdf/.csv: {out}"), err=True)
        sys.exit(2)
    try:
        write_scan_report(scan_rows(records), out, {tr("扫描路径", "scanned paths"): ", ".join(paths),
                                                    tr("数据来源", "source"): tr("本机扫描（无收集服务）",
                                                                             "local scan (no collector)")})
    except (RuntimeError, OSError) as exc:
        click.echo(tr(f"错误：报告未写成：{exc}", f"error: report not written: {exc}"), err=True)
        sys.exit(2)
    click.echo(tr(f"报告已写入 {out}", f"report written to {out}"), err=True)
