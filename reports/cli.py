"""Click groups of the audit log: `baomi server …`, `baomi audit …` and `baomi report …`.

Loaded lazily by `agents.main`; heavy imports (uvicorn, starlette, httpx, psycopg) happen
inside the commands so that `baomi --help` stays fast.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import click

from scanner.i18n import lang_option, tr


def _fail(message: str, code: int = 2) -> None:
    click.echo(message, err=True)
    sys.exit(code)


# ---------------------------------------------------------------- baomi server
@click.group("server")
@lang_option
def server_group() -> None:
    """审计日志收集服务 / the audit log collector."""


@server_group.command("init")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False))
@click.option("--name", "names", multiple=True, help="Extra DNS name or IP for the certificate.")
@click.option("--db", "db_url", default=None, help="postgresql://… (default: DATA/audit.sqlite)")
@click.option("--checkpoint-interval", default=30.0, show_default=True, type=float)
@lang_option
def server_init(data_dir: str, names: tuple[str, ...], db_url: str | None,
                checkpoint_interval: float) -> None:
    """创建服务器密钥、CA 与证书、配置和空日志库 / create keys, CA, certificate, config, store."""
    from reports.server import init_data

    try:
        token = init_data(data_dir, list(names), db_url, checkpoint_interval)
    except FileExistsError as exc:
        _fail(tr(f"已初始化：{exc}", f"already initialised: {exc}"))
    d = Path(data_dir)
    click.echo(tr("已初始化收集服务数据目录：", "initialised collector data directory: ") + str(d))
    click.echo(tr("CA 证书（分发给终端）：", "CA certificate (give to agents): ") + str(d / "tls" / "ca.pem"))
    click.echo(tr("服务器公钥（交第二方保存）：", "server public key (give to a second party): ")
               + str(d / "server.pub"))
    click.echo(tr("保密员令牌（仅显示一次，已存于 officer.token）：",
                  "officer token (also in officer.token): ") + token)


@server_group.command("run")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--listen", default="127.0.0.1:8443", show_default=True, help="HOST:PORT (port 0: any)")
@click.option("--db", "db_url", default=None, help="postgresql://… overrides the configured store")
@click.option("--insecure-http", is_flag=True, help="Plain HTTP, loopback only (demos).")
@click.option("--port-file", type=click.Path(dir_okay=False), default=None,
              help="Write the bound port here once listening.")
@click.option("--checkpoint-interval", type=float, default=None)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes sharing the port (use the cores for signature checks).")
@lang_option
def server_run(data_dir: str, listen: str, db_url: str | None, insecure_http: bool,
               port_file: str | None, checkpoint_interval: float | None, workers: int) -> None:
    """运行收集服务 / run the collector."""
    from reports.server import serve

    try:
        serve(data_dir, listen, db_url, insecure_http, port_file, checkpoint_interval, workers)
    except ValueError as exc:
        _fail(str(exc))


@server_group.command("enroll-token")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--expires", default="24h", show_default=True)
@click.option("--db", "db_url", default=None)
@lang_option
def server_enroll_token(data_dir: str, expires: str, db_url: str | None) -> None:
    """生成一次性终端注册令牌 / print a one-time agent enrolment token."""
    from reports.server import load_data, new_enroll_token, parse_duration

    try:
        ttl = parse_duration(expires)
    except ValueError as exc:
        _fail(str(exc))
    store = load_data(data_dir).open_store(db_url)
    try:
        click.echo(new_enroll_token(store, ttl))
    finally:
        store.close()


# ---------------------------------------------------------------- baomi audit
@click.group("audit")
@lang_option
def audit_group() -> None:
    """审计日志：注册、发送、校验、查询、导出 / audit log: enrol, send, verify, query, export."""


@audit_group.command("enroll")
@click.option("--server", "server", required=True, help="https://HOST:PORT")
@click.option("--token", required=True)
@click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False))
@click.option("--ca", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--hostname", default=None)
@lang_option
def audit_enroll(server: str, token: str, state_dir: str, ca: str | None, hostname: str | None) -> None:
    """用一次性令牌注册终端身份 / enrol this machine with a one-time token."""
    from reports.client import AuditClient, DeliveryError

    try:
        client = AuditClient.enroll(state_dir, server, token, ca=ca, hostname=hostname)
    except FileExistsError as exc:
        _fail(tr(f"已注册：{exc}", f"already enrolled: {exc}"))
    except DeliveryError as exc:
        _fail(tr(f"注册被拒绝：{exc}", f"enrolment refused: {exc}"), 1)
    click.echo(tr("已注册终端：", "enrolled agent: ") + client.agent)
    client.close()


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any], str | None]]:
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                yield ("heartbeat", {"blank_line": n}, None)  # keeps line numbers stable
                continue
            obj = json.loads(line)
            if not isinstance(obj, dict) or "type" not in obj:
                raise click.ClickException(f"{path}:{n}: need a JSON object with a type")
            payload = obj.get("payload", {k: v for k, v in obj.items() if k not in ("type", "time")})
            yield (str(obj["type"]), payload, obj.get("time"))


@audit_group.command("send")
@click.option("--state", "state_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to keep retrying.")
@click.option("--batch-size", default=200, show_default=True, type=click.IntRange(1, 1000))
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@lang_option
def audit_send(state_dir: str, timeout: float, batch_size: int, file: str) -> None:
    """签名、暂存并发送事件（每行一个 JSON）；崩溃后可安全重跑 / sign, spool, deliver events."""
    from reports.client import AuditClient, DeliveryError
    from reports.events import SchemaError

    path = Path(file)
    source = "file:" + hashlib.sha256(path.read_bytes()).hexdigest()
    with AuditClient(state_dir, batch_size=batch_size) as client:
        try:
            new, skipped = client.submit_source(source, _read_jsonl(path))
        except (SchemaError, json.JSONDecodeError) as exc:
            _fail(tr(f"事件无效：{exc}", f"invalid event: {exc}"))
        try:
            res = client.flush(timeout=timeout)
        except DeliveryError as exc:
            _fail(tr(f"服务器拒绝：{exc}", f"refused by the collector: {exc}"), 1)
        click.echo(tr(f"已暂存 {new} 条（此前已暂存 {skipped} 条），服务器已确认 {res.acked} 条，"
                      f"待发送 {res.pending} 条",
                      f"spooled {new} (already spooled before: {skipped}), acknowledged {res.acked}, "
                      f"pending {res.pending}"))
        if res.pending:
            sys.exit(1)


def _source(data_dir: str | None, db_url: str | None, server: str | None, token_file: str | None,
            ca: str | None) -> Any:
    from reports.officer import ServerSource, StoreSource

    if server:
        if not token_file:
            _fail(tr("--server 需要 --officer-token-file", "--server needs --officer-token-file"))
        token = Path(token_file).read_text().strip()  # type: ignore[arg-type]
        return ServerSource(server, token, ca)
    if not data_dir:
        _fail(tr("需要 --data 或 --server", "need --data or --server"))
    from reports.server import load_data

    data = load_data(data_dir)  # type: ignore[arg-type]
    return StoreSource(data.open_store(db_url), data.key)


def _source_options(f: Any) -> Any:
    f = click.option("--ca", type=click.Path(exists=True, dir_okay=False), default=None)(f)
    f = click.option("--officer-token-file", "token_file", type=click.Path(exists=True), default=None)(f)
    f = click.option("--server", default=None, help="https://HOST:PORT of a running collector")(f)
    f = click.option("--db", "db_url", default=None)(f)
    f = click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False), default=None)(f)
    return f


def _read_checkpoints(path: str) -> list[Any]:
    from reports.chain import Checkpoint

    lines = Path(path).read_text().splitlines()
    return [Checkpoint.from_dict(json.loads(x)) for x in lines if x.strip()]


@audit_group.command("verify")
@_source_options
@click.option("--log", "log_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Offline: an exported log (JSONL of entries).")
@click.option("--server-key", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The server's public key (PEM); default DATA/server.pub.")
@click.option("--checkpoints", "cp_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Checkpoints held by a second party (JSONL); repeatable.")
@lang_option
def audit_verify(data_dir: str | None, db_url: str | None, server: str | None, token_file: str | None,
                 ca: str | None, log_file: str | None, server_key: str | None,
                 cp_files: tuple[str, ...]) -> None:
    """校验日志完整性：完好退出 0，否则指出第一条问题记录并退出 1 / verify the log."""
    from policies.keys import load_public_key
    from reports.chain import Entry, verify_entries

    extra = [cp for f in cp_files for cp in _read_checkpoints(f)]
    if log_file:
        if not server_key:
            _fail(tr("离线校验需要 --server-key", "offline verification needs --server-key"))
        with open(log_file, encoding="utf-8") as fh:
            entries = (Entry.from_dict(json.loads(x)) for x in fh if x.strip())
            report = verify_entries(entries, load_public_key(Path(server_key)), extra)  # type: ignore[arg-type]
    else:
        if server_key is None and data_dir:
            server_key = str(Path(data_dir) / "server.pub")
        if server_key is None:
            _fail(tr("需要 --server-key（固定的服务器公钥）", "need --server-key (the pinned server key)"))
        src = _source(data_dir, db_url, server, token_file, ca)
        try:
            cps = src.checkpoints() + extra
            report = verify_entries(src.entries(), load_public_key(Path(server_key)), cps)  # type: ignore[arg-type]
        finally:
            src.close()
    if report.ok:
        click.echo(tr(f"日志完好：{report.entries} 条记录，{report.agents} 个终端，"
                      f"{report.checkpoints} 个检查点已核对",
                      f"log intact: {report.entries} entries, {report.agents} agents, "
                      f"{report.checkpoints} checkpoints matched"))
        return
    click.echo(tr(f"日志被篡改或不完整：第一条问题记录 #{report.first_bad}：{report.problem}",
                  f"log tampered or incomplete: first bad entry #{report.first_bad}: {report.problem}"))
    sys.exit(1)


def _query_options(f: Any) -> Any:
    for name, help_ in (("--limit", "max rows"), ("--agent", "agent id"), ("--type", "event type"),
                        ("--rule", "rule id"), ("--level", "at least this level"),
                        ("--host", "hostname"), ("--until", "ISO time or 24h/7d ago"),
                        ("--since", "ISO time or 24h/7d ago")):
        kind: Any = int if name == "--limit" else str
        if name == "--level":
            kind = click.Choice(["internal", "confidential", "secret", "top_secret"])
        f = click.option(name, default=None, help=help_, type=kind)(f)
    return f


def _when(value: str | None) -> str | None:
    if value is None:
        return None
    from reports.server import iso, parse_duration

    try:
        from datetime import datetime

        return iso(datetime.now(UTC) - parse_duration(value))
    except ValueError:
        from reports.events import parse_time

        return iso(parse_time(value))


def _make_query(since: str | None, until: str | None, host: str | None, level: str | None,
                rule: str | None, type: str | None, agent: str | None, limit: int | None) -> Any:
    from reports.store import Query

    return Query(since=_when(since), until=_when(until), host=host, level=level, rule=rule,
                 type=type, agent=agent, limit=limit)


CSV_COLUMNS = ["gseq", "received", "time", "agent", "host", "seq", "event_id", "type", "level",
               "rule", "path", "marking", "payload"]


def write_rows(rows: Any, fmt: str, out: Any) -> int:
    n = 0
    if fmt == "csv":
        w = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "payload": json.dumps(r["payload"], ensure_ascii=False, sort_keys=True)})
            n += 1
    elif fmt == "jsonl":
        for r in rows:
            out.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    else:
        for r in rows:
            out.write(f"{r['gseq']:>7}  {r['time'][:19]}  {r['host'] or '-':<16} {r['type']:<13}"
                      f" {r['level'] or '-':<12} {r['rule'] or '-':<9} {r['path'] or ''}"
                      f" {r['marking'] or ''}\n")
            n += 1
    return n


@audit_group.command("query")
@_source_options
@_query_options
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv"]), default="table")
@lang_option
def audit_query(data_dir: str | None, db_url: str | None, server: str | None, token_file: str | None,
                ca: str | None, fmt: str, **filters: Any) -> None:
    """按时间、主机、密级、规则、类型查询事件 / query events."""
    src = _source(data_dir, db_url, server, token_file, ca)
    try:
        n = write_rows(src.query(_make_query(**filters)), fmt, sys.stdout)
    finally:
        src.close()
    if fmt == "table":
        click.echo(tr(f"共 {n} 条", f"{n} events"), err=True)


@audit_group.command("export")
@_source_options
@_query_options
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="File (default stdout).")
@click.option("--checkpoints-out", type=click.Path(dir_okay=False), default=None,
              help="Also write the signed checkpoints (JSONL) for a second party.")
@lang_option
def audit_export(data_dir: str | None, db_url: str | None, server: str | None, token_file: str | None,
                 ca: str | None, fmt: str, out: str | None, checkpoints_out: str | None,
                 **filters: Any) -> None:
    """导出：无筛选条件的 JSONL 为可离线校验的完整链；否则导出事件行 / export the log.

    JSONL without filters writes the raw chain entries (verifiable offline with
    `baomi audit verify --log`); with filters, or as CSV, it writes event rows.
    """
    src = _source(data_dir, db_url, server, token_file, ca)
    with contextlib.ExitStack() as stack:
        stack.callback(src.close)
        fh = stack.enter_context(open(out, "w", encoding="utf-8", newline="")) if out else sys.stdout
        if checkpoints_out:
            cps = src.checkpoint_now()
            Path(checkpoints_out).write_text("".join(json.dumps(c.to_dict()) + "\n" for c in cps))
        if fmt == "jsonl" and not any(v is not None for v in filters.values()):
            n = 0
            for _n, e in enumerate(src.entries(), 1):
                fh.write(json.dumps(e.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
        else:
            n = write_rows(src.query(_make_query(**filters)), fmt, fh)
    click.echo(tr(f"已导出 {n} 条", f"exported {n} records"), err=True)


@audit_group.command("checkpoint")
@_source_options
@click.option("--out", type=click.Path(dir_okay=False), default=None)
@lang_option
def audit_checkpoint(data_dir: str | None, db_url: str | None, server: str | None,
                     token_file: str | None, ca: str | None, out: str | None) -> None:
    """签署当前检查点并输出全部检查点，交第二方保存 / sign a checkpoint now and print all."""
    src = _source(data_dir, db_url, server, token_file, ca)
    try:
        text = "".join(json.dumps(c.to_dict()) + "\n" for c in src.checkpoint_now())
    finally:
        src.close()
    if out:
        Path(out).write_text(text)
    else:
        click.echo(text, nl=False)


@audit_group.command("forward")
@_source_options
@click.option("--syslog", "url", required=True, help="tcp://HOST:PORT or tls://HOST:PORT")
@click.option("--format", "fmt", type=click.Choice(["rfc5424", "cef"]), default="rfc5424")
@click.option("--syslog-ca", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--cursor", type=click.Path(dir_okay=False), default=None,
              help="File remembering the last forwarded entry (default DATA/forward-<hash>.cursor).")
@lang_option
def audit_forward(data_dir: str | None, db_url: str | None, server: str | None, token_file: str | None,
                  ca: str | None, url: str, fmt: str, syslog_ca: str | None, cursor: str | None) -> None:
    """转发到 SIEM（syslog RFC 5424 / CEF）/ forward events to a SIEM over syslog."""
    from reports.siem import forward
    from reports.store import Query

    if cursor is None:
        if not data_dir:
            _fail(tr("需要 --cursor", "need --cursor"))
        tag = hashlib.sha256(f"{url} {fmt}".encode()).hexdigest()[:12]
        cursor = str(Path(data_dir) / f"forward-{tag}.cursor")  # type: ignore[arg-type]
    cpath = Path(cursor)
    after = int(cpath.read_text().strip() or 0) if cpath.exists() else 0
    src = _source(data_dir, db_url, server, token_file, ca)
    try:
        sent, last = forward(src.query(Query(after=after)), url, fmt, syslog_ca)
    finally:
        src.close()
    if last is not None:
        cpath.write_text(f"{last}\n")
    click.echo(tr(f"已转发 {sent} 条", f"forwarded {sent} events"))


# ---------------------------------------------------------------- baomi report
@click.group("report")
@lang_option
def report_group() -> None:
    """保密员报告 / officer reports."""


def _report_command(fmt: str, zh: str, en: str) -> None:
    @report_group.command(fmt, help=f"{zh} / {en}")
    @_source_options
    @_query_options
    @click.option("--channel", default=None, help="only events of this channel (usb, share, mail…)")
    @click.option("--server-key", type=click.Path(exists=True, dir_okay=False), default=None,
                  help="The server's public key to verify the chain (default DATA/server.pub).")
    @click.option("--out", type=click.Path(dir_okay=False), required=True)
    @lang_option
    def command(data_dir: str | None, db_url: str | None, server: str | None, token_file: str | None,
                ca: str | None, out: str, channel: str | None, server_key: str | None,
                **filters: Any) -> None:
        from reports.render.cli import write_report

        if server_key is None and data_dir and (Path(data_dir) / "server.pub").exists():
            server_key = str(Path(data_dir) / "server.pub")
        src = _source(data_dir, db_url, server, token_file, ca)
        try:
            n = write_report(fmt, src, _make_query(**filters), out, server_key=server_key,
                             channel=channel, filters={**filters, "channel": channel,
                                                       "source": server or data_dir})
        except RuntimeError as exc:
            _fail(str(exc))
        finally:
            src.close()
        click.echo(tr(f"报告已写入 {out}（{n} 条事件）", f"report written to {out} ({n} events)"))


for _fmt, _zh, _en in (("html", "生成 HTML 检查报告", "render an HTML inspection report"),
                       ("docx", "生成 DOCX 检查报告", "render a DOCX inspection report"),
                       ("pdf", "生成 PDF 检查报告（LibreOffice）", "render a PDF inspection report"),
                       ("csv", "导出 CSV 统计与明细", "export counts and items as CSV")):
    _report_command(_fmt, _zh, _en)


__all__ = ["audit_group", "report_group", "server_group"]
