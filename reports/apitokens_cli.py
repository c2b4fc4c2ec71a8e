"""`baomi server token add|revoke|list` (on the collector's data directory) and
`baomi audit admin enroll-token|revoke|rotate` (an admin-role token against a running collector).

Registered into the groups of reports/cli.py by `register`. Tokens are never taken from the
command line: a token file (`--token-file FILE`, `-` for stdin) holds them.
"""
from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from scanner.i18n import lang_option, tr


def _fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(2)


def token_from_file(path: str) -> str:
    """`--token-file`'s token (a file, or stdin for `-`), or exit 2 with one line saying why not."""
    from reports.apitokens import TokenError, read_token_file

    try:
        return read_token_file(path)
    except TokenError as exc:
        _fail(tr(f"错误：{exc}", f"error: {exc}"))


def _store(data_dir: str, db_url: str | None) -> Any:
    from reports.apitokens import migrate_legacy
    from reports.server import load_data
    from reports.store import SqlStore

    data = load_data(data_dir)
    store = data.open_store(db_url)
    if not isinstance(store, SqlStore):
        store.close()
        _fail(tr("此存储不支持 API 令牌", "this store has no API tokens"))
    migrate_legacy(store, data.officer_token_sha256)
    return store


@click.group("token")
@lang_option
def token_group() -> None:
    """API 令牌：保密员（查询）、审计员（校验、导出）、管理员（注册、吊销）/
    API tokens: officer (query), auditor (verify, export), admin (enrol, revoke)."""


@token_group.command("add")
@click.option("--role", required=True, type=click.Choice(["officer", "auditor", "admin"]))
@click.option("--name", required=True, help="Who holds it (unique among live tokens).")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--db", "db_url", default=None)
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the token to this new file (0600; never overwritten) instead of stdout.")
@lang_option
def token_add(role: str, name: str, data_dir: str, db_url: str | None, out: str | None) -> None:
    """生成一个角色令牌（仅存其 SHA-256）/ create a role token (only its SHA-256 is stored)."""
    import os

    from reports.apitokens import TokenError, add_token, write_token_file

    if out and (os.path.lexists(out)):
        _fail(tr(f"{out} 已存在，不会覆盖", f"{out} exists: not overwritten"))
    store = _store(data_dir, db_url)
    try:
        token = add_token(store, role, name)
    except TokenError as exc:
        _fail(str(exc))
    finally:
        store.close()
    if out:
        try:
            write_token_file(out, token)
        except FileExistsError:
            _fail(tr(f"{out} 已存在，不会覆盖", f"{out} exists: not overwritten"))
        click.echo(tr(f"已生成 {role} 令牌 {name}，写入 {out}", f"{role} token {name} written to {out}"))
    else:
        click.echo(tr(f"{role} 令牌 {name}（仅显示一次）：", f"{role} token {name} (shown once):"), err=True)
        click.echo(token)


@token_group.command("revoke")
@click.argument("name")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--db", "db_url", default=None)
@lang_option
def token_revoke(name: str, data_dir: str, db_url: str | None) -> None:
    """吊销令牌（立即生效）/ revoke a token (takes effect at once)."""
    from reports.apitokens import revoke_token

    store = _store(data_dir, db_url)
    try:
        n = revoke_token(store, name)
    finally:
        store.close()
    if not n:
        _fail(tr(f"没有名为 {name} 的有效令牌", f"no live token named {name}"))
    click.echo(tr(f"已吊销令牌 {name}", f"token {name} revoked"))


@token_group.command("list")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--db", "db_url", default=None)
@lang_option
def token_list(data_dir: str, db_url: str | None) -> None:
    """列出令牌（名称、角色、状态）/ list tokens (name, role, state)."""
    from reports.apitokens import tokens

    store = _store(data_dir, db_url)
    try:
        for t in tokens(store):
            state = f"revoked {t.revoked}" if t.revoked else "active"
            click.echo(f"{t.name}\t{t.role}\t{t.created}\t{state}")
    finally:
        store.close()


# ---------------------------------------------------------------- baomi audit admin
def _admin_options(f: Any) -> Any:
    f = click.option("--ca", type=click.Path(exists=True, dir_okay=False), default=None)(f)
    f = click.option("--token-file", required=True, type=click.Path(dir_okay=False, allow_dash=True),
                     help="File holding an admin-role API token (- reads stdin).")(f)
    f = click.option("--server", required=True, help="https://HOST:PORT of the collector")(f)
    return f


def _post(server: str, token_file: str, ca: str | None, path: str, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    from reports.client import require_tls
    from reports.tls import client_context

    require_tls(server)
    token = token_from_file(token_file)
    verify: Any = client_context(ca) if server.startswith("https:") else True
    with httpx.Client(base_url=server, verify=verify, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as http:
        resp = http.post(path, json=body)
    try:
        reply = resp.json()
    except ValueError:
        reply = {"message": resp.text[:300]}
    if resp.status_code >= 400:
        click.echo(tr(f"收集服务拒绝（{resp.status_code}）：{reply.get('message', reply)}",
                      f"refused by the collector ({resp.status_code}): {reply.get('message', reply)}"), err=True)
        sys.exit(1)
    return dict(reply)


@click.group("admin")
@lang_option
def admin_group() -> None:
    """用管理员令牌远程管理终端身份 / manage agent identities with an admin-role token."""


@admin_group.command("enroll-token")
@_admin_options
@click.option("--expires", default="24h", show_default=True)
@click.option("--hostname", default=None, help="Only an agent declaring this hostname may use it.")
@lang_option
def admin_enroll_token(server: str, token_file: str, ca: str | None, expires: str, hostname: str | None) -> None:
    """生成一次性终端注册令牌 / print a one-time agent enrolment token."""
    click.echo(_post(server, token_file, ca, "/v1/admin/enroll-token",
                     {"expires": expires, "hostname": hostname})["token"])


@admin_group.command("revoke")
@click.argument("who")
@_admin_options
@lang_option
def admin_revoke(who: str, server: str, token_file: str, ca: str | None) -> None:
    """吊销终端（主机名或终端 ID）/ revoke an agent (hostname or agent id)."""
    r = _post(server, token_file, ca, "/v1/admin/revoke", {"who": who})
    click.echo(tr(f"已吊销 {r['agent']}（{r['hostname']}）", f"revoked {r['agent']} ({r['hostname']})"))


@admin_group.command("rotate")
@click.argument("who")
@_admin_options
@click.option("--expires", default="24h", show_default=True)
@lang_option
def admin_rotate(who: str, server: str, token_file: str, ca: str | None, expires: str) -> None:
    """为终端生成一次性密钥轮换令牌 / print a one-time key rotation token for an agent."""
    r = _post(server, token_file, ca, "/v1/admin/rotate-token", {"who": who, "expires": expires})
    click.echo(tr(f"{r['agent']}（{r['hostname']}）的轮换令牌：",
                  f"rotation token for {r['agent']} ({r['hostname']}):"), err=True)
    click.echo(r["token"])


def register(server_group: click.Group, audit_group: click.Group) -> None:
    server_group.add_command(token_group)
    audit_group.add_command(admin_group)
