"""`baomi quarantine`: the security officer's tools for the sealed vault.

keygen makes the officer's key pair (the public half goes into each agent's config); list and
show read the vault's metadata without any key; restore needs the officer's private key and
gives back the exact bytes and mode; purge deletes an item for good (after a 销毁 decision).
"""
from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import NoReturn

import click

from scanner.i18n import lang_option, tr

DEFAULT_VAULT = "/var/lib/baomi/vault"


def _fail(msg: str) -> NoReturn:
    click.echo(tr(f"错误：{msg}", f"error: {msg}"), err=True)
    sys.exit(2)


def _vault(path: str):  # type: ignore[no-untyped-def]
    from agents.vault import Vault

    return Vault(path)


@click.group("quarantine")
def quarantine_group() -> None:
    """隔离区（保密员）：密钥、列表、查看、恢复、清除 / the quarantine vault (officer)."""


@quarantine_group.command("keygen")
@click.option("--out", "prefix", required=True, metavar="PREFIX", help="writes PREFIX.key (0600) and PREFIX.pub")
@lang_option
def keygen_cmd(prefix: str) -> None:
    """生成保密员隔离密钥对 / make the officer's vault key pair."""
    from agents.vault import VaultError, keygen

    try:
        key, pub = keygen(prefix)
    except (VaultError, OSError) as exc:
        _fail(str(exc))
    click.echo(tr(f"私钥：{key}（仅保密员保管，勿放在终端上）\n公钥：{pub}（写入各终端 agent 配置的 vault.officer_key）",
                  f"private key: {key} (the officer keeps it; never on a workstation)\n"
                  f"public key: {pub} (vault.officer_key in each agent's config)"))


def _vault_option(f):  # type: ignore[no-untyped-def]
    return click.option("--vault", "vault_path", default=DEFAULT_VAULT, show_default=True,
                        help="vault directory")(f)


@quarantine_group.command("list")
@_vault_option
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table")
@lang_option
def list_cmd(vault_path: str, fmt: str) -> None:
    """列出隔离文件（无需私钥） / list sealed files (no key needed)."""
    from agents.vault import VaultError

    problems: list[str] = []
    try:
        items = _vault(vault_path).items(problems)
    except VaultError as exc:
        _fail(str(exc))
    for msg in problems:  # listed on stderr; the other items are still shown
        click.echo(tr(f"警告：{msg}", f"warning: {msg}"), err=True)
    if fmt == "jsonl":
        for it in items:
            click.echo(json.dumps(it.__dict__, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=tr("隔离区", "Quarantine vault"))
    for col in (tr("编号", "Id"), tr("隔离时间", "Sealed"), tr("原路径", "Original path"), tr("大小", "Size"),
                tr("规则", "Rule"), "SHA-256"):
        t.add_column(col, overflow="fold")
    for it in items:
        when = datetime.fromisoformat(it.sealed_at).astimezone().strftime("%Y-%m-%d %H:%M %Z")
        t.add_row(it.id, when, it.original_path, str(it.size), str((it.reason or {}).get("rule", "")), it.sha256[:16])
    Console().print(t)
    click.echo(tr(f"共 {len(items)} 个隔离文件", f"{len(items)} sealed files"))


@quarantine_group.command("show")
@click.argument("item_id")
@_vault_option
@lang_option
def show_cmd(item_id: str, vault_path: str) -> None:
    """查看一个隔离文件的记录 / show one item's record."""
    from agents.vault import VaultError

    try:
        it = _vault(vault_path).get(item_id)
    except VaultError as exc:
        _fail(str(exc))
    click.echo(json.dumps(it.__dict__, ensure_ascii=False, indent=1))


@quarantine_group.command("restore")
@click.argument("item_id")
@_vault_option
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="the officer's private key (PREFIX.key)")
@click.option("--to", "dest", default=None, help="where to write (default: the original path)")
@lang_option
def restore_cmd(item_id: str, vault_path: str, key_path: str, dest: str | None) -> None:
    """用保密员私钥恢复原文件（字节与权限不变） / restore the exact bytes and mode with the officer's key."""
    from agents.vault import VaultError, load_private

    try:
        target = _vault(vault_path).restore(item_id, load_private(key_path), dest)
    except VaultError as exc:
        _fail(str(exc))
    click.echo(tr(f"已恢复 {item_id} → {target}", f"restored {item_id} -> {target}"))


@quarantine_group.command("purge")
@click.argument("item_id")
@_vault_option
@click.option("--yes", is_flag=True, help="do not ask")
@lang_option
def purge_cmd(item_id: str, vault_path: str, yes: bool) -> None:
    """永久删除一个隔离文件（销毁） / delete a sealed item for good."""
    from agents.vault import VaultError

    v = _vault(vault_path)
    try:
        it = v.get(item_id)
        if not yes and not click.confirm(tr(f"永久删除 {it.id}（{it.original_path}）？",
                                            f"delete {it.id} ({it.original_path}) for good?")):
            sys.exit(1)
        v.purge(item_id)
    except VaultError as exc:
        _fail(str(exc))
    click.echo(tr(f"已清除 {item_id}", f"purged {item_id}"))
