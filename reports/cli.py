"""Click groups of the audit log: `baomi server …`, `baomi audit …` and `baomi report …`.

Loaded lazily by `agents.main`; heavy imports (uvicorn, starlette, httpx, psycopg) happen
inside the commands so that `baomi --help` stays fast.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import os
import stat
import sys
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any, NoReturn

import click

from scanner.i18n import lang_option, tr


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


class UserErrors(click.Group):
    """A command group whose unexpected exceptions reach the user as one line and exit 2.

    The errors an officer meets (a collector whose CA is not given, a port in use, a missing
    file, a refused connection, a malformed value) are environment problems, not bugs: a
    traceback helps no one there. BAOMI_DEBUG=1 shows the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            if os.environ.get("BAOMI_DEBUG"):
                raise
            _fail(tr("错误：", "error: ") + explain_error(exc))


def explain_error(exc: BaseException) -> str:
    """One line saying what went wrong and, where it is known, what to do."""
    import ssl

    text = str(exc) or type(exc).__name__
    chain = [exc, exc.__cause__, exc.__context__]
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or "CERTIFICATE_VERIFY_FAILED" in text:
        return tr(f"收集服务的 TLS 证书不受信任（{text}）：请用 --ca 指定其 CA 证书（数据目录下 tls/ca.pem），"
                  "并确认地址在证书名称中（baomi server cert --name）",
                  f"the collector's TLS certificate is not trusted ({text}): give its CA with --ca (tls/ca.pem "
                  "in its data directory) and check that the address is one of its names (baomi server cert --name)")
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return tr(f"地址已被占用：{text}（另一个收集服务在运行？换一个 --listen 端口）",
                  f"address already in use: {text} (another collector running? choose another --listen port)")
    if isinstance(exc, FileNotFoundError):
        return tr(f"文件不存在：{exc.filename}", f"no such file: {exc.filename}")
    if isinstance(exc, PermissionError):
        return tr(f"无权访问：{exc.filename}", f"permission denied: {exc.filename}")
    try:
        import httpx

        if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (401, 403):
            try:
                why = exc.response.json().get("message", "")
            except ValueError:
                why = ""
            return tr(f"收集服务拒绝此令牌（{exc.response.status_code}）：{why}",
                      f"the collector refused this token ({exc.response.status_code}): {why}")
        if isinstance(exc, httpx.ConnectError):
            return tr(f"无法连接收集服务：{text}", f"cannot connect to the collector: {text}")
        if isinstance(exc, httpx.HTTPError):
            return tr(f"与收集服务通信失败：{text}", f"talking to the collector failed: {text}")
    except ImportError:
        pass
    if isinstance(exc, (ValueError, KeyError, json.JSONDecodeError)):
        return text
    return f"{type(exc).__name__}: {text}"


# ---------------------------------------------------------------- baomi server
@click.group("server", cls=UserErrors)
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
        _fail(tr(f"已初始化：{exc}（要为新地址重新签发证书，用 baomi server cert --data {data_dir} --name 主机名）",
                 f"already initialised: {exc} (to reissue the certificate for other names: "
                 f"baomi server cert --data {data_dir} --name HOST)"))
    d = Path(data_dir)
    click.echo(tr("已初始化收集服务数据目录：", "initialised collector data directory: ") + str(d))
    click.echo(tr("CA 证书（分发给终端）：", "CA certificate (give to agents): ") + str(d / "tls" / "ca.pem"))
    click.echo(tr("服务器公钥（交第二方保存）：", "server public key (give to a second party): ")
               + str(d / "server.pub"))
    click.echo(tr("保密员令牌（仅显示一次，已存于 officer.token）：",
                  "officer token (also in officer.token): ") + token)
    click.echo(tr(f"审计员、管理员令牌：baomi server token add --role auditor|admin --name 姓名 --data {data_dir}",
                  f"auditor and admin tokens: baomi server token add --role auditor|admin --name NAME "
                  f"--data {data_dir}"))


@server_group.command("cert")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--name", "names", multiple=True, required=True,
              help="DNS name or IP address agents use to reach the collector (repeatable).")
@click.option("--days", default=825, show_default=True, type=click.IntRange(1, 3650))
@lang_option
def server_cert(data_dir: str, names: tuple[str, ...], days: int) -> None:
    """用现有 CA 为新的主机名/地址重新签发服务器证书（终端的 ca.pem 不变） /
    reissue the server certificate for these names with the existing CA (agents keep their ca.pem)."""
    from reports.tls import issue_server_cert

    tls = Path(data_dir) / "tls"
    all_names = list(dict.fromkeys([*names, "localhost", "127.0.0.1", "::1"]))
    issue_server_cert(tls, all_names, days)
    click.echo(tr(f"已重新签发服务器证书：{', '.join(all_names)}（重启 baomi server run 生效）",
                  f"server certificate reissued for: {', '.join(all_names)} (restart baomi server run)"))


def _limit_options(f: Any) -> Any:
    """`server run` options of reports/limits.py (slow clients, connection cap, agent rate)."""
    from reports.limits import ServeLimits as L

    for name, default, help_ in (
            ("--page-limit", L.page_limit, "Most rows one /v1/query page holds."),
            ("--agent-rate", f"{L.agent_rate:g}/{L.agent_burst}",
             "Batches a second per agent / burst; beyond: 429 with Retry-After."),
            ("--max-connections", L.max_connections, "Open connections beyond which requests get 503."),
            ("--body-timeout", L.body_timeout, "Seconds to receive a request body (else 408)."),
            ("--header-timeout", L.header_timeout, "Seconds to receive a request header (else closed).")):
        kind: Any = str if name == "--agent-rate" else int if name in ("--page-limit",
                                                                       "--max-connections") else float
        f = click.option(name, default=default, show_default=True, type=kind, help=help_)(f)
    return f


def _limits(page_limit: int, agent_rate: str, max_connections: int, body_timeout: float,
            header_timeout: float) -> Any:
    from reports.limits import ServeLimits, parse_rate

    rate, burst = parse_rate(agent_rate)
    return ServeLimits(header_timeout=header_timeout, body_timeout=body_timeout,
                       max_connections=max_connections, agent_rate=rate, agent_burst=burst,
                       page_limit=page_limit)


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
@click.option("--witness", "witnesses", multiple=True, type=click.Path(file_okay=False),
              help="Directory (another volume or host) or syslog://HOST:PORT (UDP), syslog+tcp://HOST:PORT "
                   "receiving each signed tree head; repeatable.")
@click.option("--checkpoint-key", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Tree-head signing key kept outside DATA (default DATA/checkpoint.key).")
@_limit_options
@lang_option
def server_run(data_dir: str, listen: str, db_url: str | None, insecure_http: bool,
               port_file: str | None, checkpoint_interval: float | None, workers: int,
               witnesses: tuple[str, ...], checkpoint_key: str | None, **limit_args: Any) -> None:
    """运行收集服务 / run the collector."""
    from reports.server import is_loopback, parse_listen, serve
    from reports.tls import certificate_names

    try:
        host, _port = parse_listen(listen)
    except ValueError as exc:
        _fail(str(exc))
    if not insecure_http and not is_loopback(host):
        names = certificate_names(Path(data_dir) / "tls" / "server.pem")
        public = [n for n in names if n not in ("localhost", "127.0.0.1", "::1")]
        where = tr("所有网络接口", "every network interface") if host in ("0.0.0.0", "::", "") else host
        click.echo(tr(f"注意：收集服务在 {where} 上监听。", f"note: the collector listens on {where}."), err=True)
        if not public:
            click.echo(tr("警告：服务器证书只含 localhost，其他主机上的终端将无法校验证书；"
                          f"请先运行 baomi server cert --data {data_dir} --name 本机主机名或IP",
                          "warning: the server certificate names only localhost: agents on other hosts will "
                          f"refuse it; run baomi server cert --data {data_dir} --name THIS-HOST first"), err=True)
        elif host not in ("0.0.0.0", "::") and host not in names:
            click.echo(tr(f"警告：{host} 不在服务器证书的名称中（{', '.join(names)}）",
                          f"warning: {host} is not among the certificate's names ({', '.join(names)})"), err=True)
    try:
        serve(data_dir, listen, db_url, insecure_http, port_file, checkpoint_interval, workers,
              limits=_limits(**limit_args), witnesses=witnesses, checkpoint_key=checkpoint_key)
    except ValueError as exc:
        _fail(str(exc))


@server_group.command("rotate-checkpoint-key")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@lang_option
def server_rotate_checkpoint_key(data_dir: str) -> None:
    """更换 Merkle 树头签名密钥（旧公钥保留以校验旧树头）/ rotate the tree-head signing key
    (the old public key moves to DATA/checkpoint-keys/ so that older heads still verify)."""
    from reports.witness import rotate_checkpoint_key

    old, new = rotate_checkpoint_key(data_dir)
    click.echo(tr(f"树头签名密钥已更换：{old} → {new}。重启 baomi server run 生效；"
                  f"把新的 {data_dir}/checkpoint.pub 交给第二方与见证方",
                  f"checkpoint key rotated: {old} -> {new}. Restart baomi server run; give the new "
                  f"{data_dir}/checkpoint.pub to second parties and witnesses"))


@server_group.command("enroll-token")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--expires", default="24h", show_default=True)
@click.option("--db", "db_url", default=None)
@click.option("--hostname", default=None, help="Only an agent declaring this hostname may use the token.")
@lang_option
def server_enroll_token(data_dir: str, expires: str, db_url: str | None, hostname: str | None) -> None:
    """生成一次性终端注册令牌 / print a one-time agent enrolment token."""
    from reports.identity import enroll_token
    from reports.server import load_data, new_enroll_token, parse_duration

    try:
        ttl = parse_duration(expires)
    except ValueError as exc:
        _fail(str(exc))
    store = load_data(data_dir).open_store(db_url)
    try:
        click.echo(enroll_token(store, ttl, hostname) if hostname else new_enroll_token(store, ttl))  # type: ignore[arg-type]
    finally:
        store.close()


@server_group.group("user", cls=UserErrors)
def server_user() -> None:
    """控制台用户（保密员/审计员/管理员）/ console users (officer, auditor, admin)."""


def _console_store(data_dir: str, db_url: str | None):  # type: ignore[no-untyped-def]
    from reports.server import load_data
    from reports.store import SqlStore

    store = load_data(data_dir).open_store(db_url)
    if not isinstance(store, SqlStore):
        _fail(tr("此存储不支持控制台用户", "this store has no console users"))
    return store


@server_user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["officer", "auditor", "admin"]))
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--db", "db_url", default=None)
@click.option("--tz", default="Asia/Shanghai", show_default=True, help="IANA time zone for dates")
@click.option("--user-lang", "user_lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("--password-file", type=click.File("r"), default=None,
              help="Read the password from this file (- for stdin); asked for on a terminal otherwise.")
@lang_option
def server_user_add(name: str, role: str, data_dir: str, db_url: str | None, tz: str, user_lang: str,
                    password_file) -> None:  # type: ignore[no-untyped-def]
    """添加控制台用户；密码从终端或文件读取，从不出现在命令行 / add a console user (the password is
    never taken from the command line)."""
    from reports.console.accounts import AccountError, add_user

    if password_file is not None:
        password = password_file.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = click.prompt(tr("密码", "Password"), hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    store = _console_store(data_dir, db_url)
    try:
        add_user(store, name, role, password, tz=tz, lang=user_lang)
    except AccountError as exc:
        _fail(str(exc))
    finally:
        store.close()
    click.echo(tr(f"已添加用户 {name}（{role}）", f"user {name} ({role}) added"))


@server_user.command("disable")
@click.argument("name")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--db", "db_url", default=None)
@lang_option
def server_user_disable(name: str, data_dir: str, db_url: str | None) -> None:
    """停用用户并结束其会话 / disable a user and end their sessions."""
    from reports.console.accounts import disable_user

    store = _console_store(data_dir, db_url)
    try:
        if not disable_user(store, name):
            _fail(tr(f"没有启用中的用户 {name}", f"no active user {name}"))
    finally:
        store.close()
    click.echo(tr(f"已停用用户 {name}", f"user {name} disabled"))


@server_user.command("list")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--db", "db_url", default=None)
@lang_option
def server_user_list(data_dir: str, db_url: str | None) -> None:
    """列出控制台用户 / list console users."""
    from reports.console.accounts import users

    store = _console_store(data_dir, db_url)
    try:
        for u, disabled in users(store):
            click.echo(f"{u.name}\t{u.role}\t{u.tz}\t{u.lang}\t{'disabled' if disabled else 'active'}")
    finally:
        store.close()


# ---------------------------------------------------------------- agent identities (reports/identity.py)
@server_group.group("agents", cls=UserErrors)
@lang_option
def server_agents() -> None:
    """终端身份：吊销、轮换密钥 / agent identities: revoke, rotate keys."""


def _with_store(data_dir: str, db_url: str | None) -> Any:
    from reports.server import load_data

    data = load_data(data_dir)
    return data, data.open_store(db_url)


@server_agents.command("revoke")
@click.argument("who")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--db", "db_url", default=None)
@lang_option
def server_agents_revoke(who: str, data_dir: str, db_url: str | None) -> None:
    """吊销终端（主机名或终端 ID）：此后其上报一律拒绝（403），日志链记录吊销 /
    revoke an agent (hostname or agent id): its batches are refused (403) from now on; the chain records it."""
    from reports.identity import revoke_agent

    data, store = _with_store(data_dir, db_url)
    try:
        info = revoke_agent(store, data.key, who)
    except LookupError as exc:
        _fail(str(exc.args[0]))
    finally:
        store.close()
    click.echo(tr(f"已吊销 {info.agent}（{info.hostname}）", f"revoked {info.agent} ({info.hostname})"))


@server_agents.command("rotate")
@click.argument("who")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--db", "db_url", default=None)
@click.option("--expires", default="24h", show_default=True)
@lang_option
def server_agents_rotate(who: str, data_dir: str, db_url: str | None, expires: str) -> None:
    """为终端生成一次性密钥轮换令牌（在终端上运行 baomi audit rotate-key）/
    print a one-time key rotation token for an agent (then run baomi audit rotate-key on it)."""
    from reports.identity import rotation_token
    from reports.server import parse_duration

    try:
        ttl = parse_duration(expires)
    except ValueError as exc:
        _fail(str(exc))
    _data, store = _with_store(data_dir, db_url)
    try:
        info, token = rotation_token(store, who, ttl)
    except LookupError as exc:
        _fail(str(exc.args[0]))
    finally:
        store.close()
    click.echo(tr(f"{info.agent}（{info.hostname}）的轮换令牌：", f"rotation token for {info.agent} "
                  f"({info.hostname}):"), err=True)
    click.echo(token)


# ---------------------------------------------------------------- baomi audit
@click.group("audit", cls=UserErrors)
@lang_option
def audit_group() -> None:
    """审计日志：注册、发送、校验、查询、导出 / audit log: enrol, send, verify, query, export."""


@audit_group.command("enroll")
@click.option("--server", "server", required=True, help="https://HOST:PORT")
@click.option("--token-file", default=None, type=click.Path(dir_okay=False, allow_dash=True),
              help="File holding the enrolment token (- reads stdin).")
@click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False))
@click.option("--ca", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--hostname", default=None)
@lang_option
def audit_enroll(server: str, token_file: str | None, state_dir: str, ca: str | None,
                 hostname: str | None) -> None:
    """用一次性令牌注册终端身份 / enrol this machine with a one-time token."""
    from reports.apitokens_cli import token_from_file
    from reports.client import AuditClient, DeliveryError

    if token_file is None:  # never from argv: other users see a process's arguments
        _fail(tr("需要 --token-file（- 为标准输入）", "need --token-file (- reads stdin)"))
    token = token_from_file(token_file)

    try:
        client = AuditClient.enroll(state_dir, server, token, ca=ca, hostname=hostname)
    except FileExistsError as exc:
        _fail(tr(f"已注册：{exc}", f"already enrolled: {exc}"))
    except DeliveryError as exc:
        _fail(tr(f"注册被拒绝：{exc}", f"enrolment refused: {exc}"), 1)
    click.echo(tr("已注册终端：", "enrolled agent: ") + client.agent)
    client.close()


def _read_jsonl(lines: Iterable[str], name: str, tally: Any) -> Iterator[tuple[str, dict[str, Any], str | None] | None]:
    """Events of a JSONL stream: audit events (`{"type": …, "payload": …}`) or `baomi scan`
    records (turned into finding/violation events, with a scan_summary at the end). A blank
    line is skipped (None keeps the line count that resumable progress is measured in)."""
    from reports.scanlog import finding_payload, is_scan_record, violation_payloads

    for n, line in enumerate(lines, 1):
        if not line.strip():
            yield None
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise click.ClickException(f"{name}:{n}: {exc}") from None
        if isinstance(obj, dict) and is_scan_record(obj):
            tally.add(obj)
            p = finding_payload(obj, tally.scan_id)
            # one item per line (progress is counted in lines): a record's violations travel
            # inside its line's finding event
            vio = list(violation_payloads(obj, tally.scan_id))
            if p is None and not vio:
                yield None
            elif p is None:
                yield ("violation", vio[0], None)
            else:
                if vio:
                    p["violations"] = [{k: v[k] for k in ("rule", "pack", "severity", "action")} for v in vio]
                yield ("finding", p, None)
            continue
        if not isinstance(obj, dict) or "type" not in obj:
            raise click.ClickException(f"{name}:{n}: need a JSON object with a type, or a baomi scan record")
        payload = obj.get("payload", {k: v for k, v in obj.items() if k not in ("type", "time")})
        yield (str(obj["type"]), payload, obj.get("time"))


@audit_group.command("rotate-key")
@click.option("--state", "state_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--token-file", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="File holding the rotation token (- reads stdin); never on the command line.")
@lang_option
def audit_rotate_key(state_dir: str, token_file: str) -> None:
    """用轮换令牌更换本终端的签名密钥 / replace this agent's signing key with a rotation token."""
    from reports.apitokens_cli import token_from_file
    from reports.client import AuditClient, DeliveryError

    token = token_from_file(token_file)
    with AuditClient(state_dir) as client:
        try:
            kid = client.rotate_key(token)
        except DeliveryError as exc:
            _fail(tr(f"服务器拒绝：{exc}", f"refused by the collector: {exc}"), 1)
    click.echo(tr(f"已更换密钥：{kid}", f"key rotated: {kid}"))


@audit_group.command("send")
@click.option("--state", "state_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to keep retrying.")
@click.option("--batch-size", default=200, show_default=True, type=click.IntRange(1, 1000))
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@lang_option
def audit_send(state_dir: str, timeout: float, batch_size: int, file: str) -> None:
    """签名、暂存并发送事件或 baomi scan 记录（每行一个 JSON；- 为标准输入）；崩溃后可安全重跑 /
    sign, spool and deliver events or baomi scan records (JSON lines; - reads stdin); safe to re-run.

    Progress is kept per input: a file that grew since the last run is continued where it stopped
    (keyed by the file's identity and its first line); standard input is a new input each time."""
    import httpx

    from reports.client import AuditClient, DeliveryError
    from reports.events import SchemaError
    from reports.scanlog import ScanTally

    if not (Path(state_dir) / "state.json").is_file():
        _fail(tr(f"{state_dir} 不是已登记的审计状态目录（先运行 baomi audit enroll）",
                 f"{state_dir} holds no enrolled identity (run baomi audit enroll first)"))
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        _fail(tr(f"无法读取 {file}：{exc.strerror}", f"cannot read {file}: {exc.strerror}"))
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    source = _send_source(file, lines)
    tally = ScanTally()
    with AuditClient(state_dir, batch_size=batch_size) as client:
        try:
            new, skipped = client.submit_source(source, _read_jsonl(lines, file, tally))
            if tally.files and new:
                client.submit("scan_summary", tally.summary([file], None, {"source": "audit send"}))
        except (SchemaError, json.JSONDecodeError) as exc:
            _fail(tr(f"事件无效：{exc}", f"invalid event: {exc}"))
        try:
            res = client.flush(timeout=timeout)
        except DeliveryError as exc:
            _fail(tr(f"服务器拒绝：{exc}", f"refused by the collector: {exc}"), 1)
        except httpx.HTTPError as exc:
            _fail(tr(f"无法连接审计服务器：{exc}", f"cannot reach the collector: {exc}"), 1)
        click.echo(tr(f"已暂存 {new} 条（此前已暂存 {skipped} 条），服务器已确认 {res.acked} 条，"
                      f"待发送 {res.pending} 条",
                      f"spooled {new} (already spooled before: {skipped}), acknowledged {res.acked}, "
                      f"pending {res.pending}"))
        if res.resent:
            click.echo(tr(f"警告：收集服务丢失了已确认的事件（从旧备份恢复？），已重新发送 {res.resent} 条",
                          f"warning: the collector had lost acknowledged events (restored from an older "
                          f"backup?): {res.resent} sent again"), err=True)
        if res.set_aside:
            click.echo(tr(f"警告：{res.set_aside} 条事件因内容被服务器拒绝，已移出发送队列（以签名缺口通知报告），"
                          f"保存在 {state_dir}/spool.sqlite 的 rejected 表中",
                          f"warning: {res.set_aside} events refused by the collector for their content were set "
                          f"aside (reported by a signed gap notice), kept in the rejected table of "
                          f"{state_dir}/spool.sqlite"), err=True)
        if res.pending:
            sys.exit(1)


def _send_source(file: str, lines: list[str]) -> str:
    """The name progress is kept under: a regular file by its identity (device, inode) and first
    line, so that a grown file continues where it stopped; anything else (stdin, a pipe) is new."""
    if file != "-":
        try:
            st = os.stat(file)
        except OSError:
            st = None
        if st is not None and stat.S_ISREG(st.st_mode):
            first = hashlib.sha256(lines[0].encode() if lines else b"").hexdigest()[:32]
            return f"file:{st.st_dev}:{st.st_ino}:{first}"
    return f"stream:{uuid.uuid4()}"


def _source(data_dir: str | None, db_url: str | None, server: str | None, token_file: str | None,
            ca: str | None) -> Any:
    from reports.officer import ServerSource, StoreSource

    if server:
        if not token_file:
            _fail(tr("--server 需要 --token-file", "--server needs --token-file"))
        from reports.apitokens_cli import token_from_file

        return ServerSource(server, token_from_file(token_file), ca)  # type: ignore[arg-type]
    if not data_dir:
        _fail(tr("需要 --data 或 --server", "need --data or --server"))
    from reports.server import load_data

    data = load_data(data_dir)  # type: ignore[arg-type]
    return StoreSource(data.open_store(db_url), data.key)


def _source_options(f: Any) -> Any:
    f = click.option("--ca", type=click.Path(exists=True, dir_okay=False), default=None)(f)
    f = click.option("--token-file", "--officer-token-file", "token_file", default=None,
                     type=click.Path(exists=True, dir_okay=False, allow_dash=True),
                     help="API token of the role the command needs (- reads stdin).")(f)
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
@click.option("--witness", "witnesses", multiple=True, type=click.Path(exists=True),
              help="A witness directory of signed tree heads (server run --witness), or the file a "
                   "syslog witness wrote; repeatable.")
@click.option("--agent-state", "agent_states", multiple=True, type=click.Path(exists=True),
              help="An agent's state directory or its tree-head.json (heads it was acknowledged with).")
@click.option("--checkpoint-key", "cp_keys", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Trusted tree-head signing key (PEM); default DATA/checkpoint.pub and retired keys.")
@lang_option
def audit_verify(data_dir: str | None, db_url: str | None, server: str | None, token_file: str | None,
                 ca: str | None, log_file: str | None, server_key: str | None,
                 cp_files: tuple[str, ...], witnesses: tuple[str, ...], agent_states: tuple[str, ...],
                 cp_keys: tuple[str, ...]) -> None:
    """校验日志完整性：完好退出 0，否则指出第一条问题记录并退出 1 / verify the log."""
    from policies.keys import load_public_key
    from reports.chain import Entry, VerifyReport, verify_entries
    from reports.witness import EvidenceError, gather_evidence

    extra = [cp for f in cp_files for cp in _read_checkpoints(f)]
    if log_file:
        if not server_key:
            _fail(tr("离线校验需要 --server-key", "offline verification needs --server-key"))
        try:
            evidence = gather_evidence(None, data_dir, witnesses, agent_states, cp_keys)
        except EvidenceError as exc:
            report = VerifyReport(False, 0, 0, 0, exc.first_bad, str(exc))
        else:
            with open(log_file, encoding="utf-8") as fh:
                entries = (Entry.from_dict(json.loads(x)) for x in fh if x.strip())
                report = verify_entries(entries, load_public_key(Path(server_key)), extra,  # type: ignore[arg-type]
                                        evidence=evidence)
    else:
        if server_key is None and data_dir:
            server_key = str(Path(data_dir) / "server.pub")
        if server_key is None and not data_dir and not server:
            _fail(tr("请指明要校验的日志：--data 收集服务数据目录，或 --server 地址（另加 --server-key），"
                     "或 --log 导出文件（另加 --server-key）",
                     "say which log to verify: --data DIR of the collector, --server URL (with --server-key), "
                     "or --log FILE (with --server-key)"))
        if server_key is None:
            _fail(tr("校验远程收集服务需要 --server-key（事先固定保存的服务器公钥 server.pub）",
                     "verifying a remote collector needs --server-key (the server.pub you pinned beforehand)"))
        src = _source(data_dir, db_url, server, token_file, ca)
        try:
            cps = src.checkpoints() + extra
            try:
                evidence = gather_evidence(src, data_dir, witnesses, agent_states, cp_keys)
            except EvidenceError as exc:
                report = VerifyReport(False, 0, 0, 0, exc.first_bad, str(exc))
            else:
                report = verify_entries(src.entries(), load_public_key(Path(server_key)), cps,  # type: ignore[arg-type]
                                        evidence=evidence)
        finally:
            src.close()
    if report.ok:
        click.echo(tr(f"日志完好：{report.entries} 条记录，{report.agents} 个终端，"
                      f"{report.checkpoints} 个检查点已核对",
                      f"log intact: {report.entries} entries, {report.agents} agents, "
                      f"{report.checkpoints} checkpoints matched"))
        if report.tree_heads:
            click.echo(tr(f"Merkle 树头：{report.tree_heads} 个已核对，{report.consistent_pairs} 对一致性已证明",
                          f"tree heads: {report.tree_heads} matched, {report.consistent_pairs} "
                          "consecutive pairs proven consistent"))
        return
    if report.first_bad is None:
        click.echo(tr(f"日志被篡改或不完整：{report.problem}", f"log tampered or incomplete: {report.problem}"))
        sys.exit(1)
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
    """`--since/--until`: 24h or 7d ago, today/yesterday (local midnight), or an ISO 8601 time
    (a time without a zone is local time). Anything else is one clear line and exit 2."""
    if value is None:
        return None
    from datetime import datetime, timedelta

    from reports.server import iso, parse_duration

    v = value.strip().lower()
    midnight = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    named = {"now": datetime.now(UTC), "today": midnight, "今天": midnight,
             "yesterday": midnight - timedelta(days=1), "昨天": midnight - timedelta(days=1)}
    if v in named:
        return iso(named[v].astimezone(UTC))
    try:
        return iso(datetime.now(UTC) - parse_duration(v))
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        _fail(tr(f"无法识别的时间“{value}”：可用 24h、7d、today、yesterday 或 2026-12-01、2026-12-01T08:00+08:00",
                 f"cannot read the time {value!r}: use 24h, 7d, today, yesterday, 2026-12-01 or "
                 f"2026-12-01T08:00+08:00"))
        raise
    if t.tzinfo is None:
        t = t.astimezone()  # a local wall-clock time, as an officer types it
    return iso(t.astimezone(UTC))


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
        # A UTF-8 BOM: Excel on a Chinese Windows reads a CSV without one as GBK (mojibake).
        out.write("\ufeff")
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
        out.write(f"{tr('序号', 'seq'):>7}  {tr('时间', 'time'):<25}  {tr('主机', 'host'):<16} "
                  f"{tr('类型', 'type'):<13} {tr('密级', 'level'):<12} {tr('规则', 'rule'):<9} "
                  f"{tr('路径', 'path')} {tr('标志', 'marking')}\n")
        for r in rows:
            out.write(f"{r['gseq']:>7}  {local_time(r['time']):<25}  {r['host'] or '-':<16} {r['type']:<13}"
                      f" {r['level'] or '-':<12} {r['rule'] or '-':<9} {r['path'] or ''}"
                      f" {r['marking'] or ''}\n")
            n += 1
    return n


def local_time(value: str) -> str:
    """An event time (UTC in the log) in this machine's zone, with the zone named."""
    from datetime import datetime

    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value[:25]
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    local = t.astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S ") + (local.strftime("%Z") or local.strftime("%z"))


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
            for e in src.entries():
                fh.write(json.dumps(e.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
                n += 1
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


# ---------------------------------------------------------------- endpoint agents (reports/fleet.py)
@audit_group.command("agents")
@_source_options
@click.option("--silent-after", default="3m", show_default=True,
              help="Flag agents not heard from for this long (e.g. 90s, 3m, 1h).")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table")
@lang_option
def audit_agents(data_dir: str | None, db_url: str | None, server: str | None, token_file: str | None,
                 ca: str | None, silent_after: str, fmt: str) -> None:
    """列出终端代理：最近心跳、策略版本、是否失联 / list agents: last heartbeat, policy, silent."""
    from reports.fleet import AgentStatus, agent_statuses
    from reports.server import load_data, parse_duration

    try:
        window = parse_duration(silent_after)
    except ValueError as exc:
        _fail(str(exc))
    if server:
        src = _source(None, None, server, token_file, ca)
        try:
            resp = src.http.get("/v1/agents/status", params={"silent_after": window.total_seconds()})
            resp.raise_for_status()
            rows = [AgentStatus(**r) for r in resp.json()["agents"]]
        finally:
            src.close()
    else:
        if not data_dir:
            _fail(tr("需要 --data 或 --server", "need --data or --server"))
        store = load_data(data_dir).open_store(db_url)  # type: ignore[arg-type]
        try:
            rows = agent_statuses(store, window)
        finally:
            store.close()
    for r in rows:
        if fmt == "jsonl":
            click.echo(json.dumps(r.to_dict(), ensure_ascii=False, sort_keys=True))
            continue
        state = tr("失联", "SILENT") if r.silent else tr("已停止", "stopped") if r.stopped else tr("在线", "ok")
        click.echo(f"{r.agent:<24} {r.hostname[:20]:<20} {state:<8} {(r.last_heartbeat or '-')[:19]:<19}  "
                   f"{r.policy or '-'}")
    if any(r.silent for r in rows):
        sys.exit(1)


@server_group.command("publish-policy")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False))
@lang_option
def server_publish_policy(data_dir: str, bundle: str) -> None:
    """发布已签名策略包，供终端代理拉取 / serve a signed policy bundle to the agents (GET /v1/policy)."""
    from policies.signing import SignatureError
    from reports.fleet import publish_policy

    try:
        info = publish_policy(data_dir, bundle)
    except SignatureError as exc:
        _fail(tr(f"签名包无效：{exc}", f"bad bundle: {exc}"))
    click.echo(tr(f"已发布策略包（{info['created']}，签名密钥 {info['key_id']}）",
                  f"published bundle {info['created']} (signed by {info['key_id']})"))


# ---------------------------------------------------------------- baomi report
@click.group("report", cls=UserErrors)
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


from reports.apitokens_cli import register as _register_tokens  # noqa: E402 - server token, audit admin

_register_tokens(server_group, audit_group)

__all__ = ["audit_group", "report_group", "server_group"]
