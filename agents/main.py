"""The `baomi` command: a thin shell that assembles each package's click group lazily.

`baomi scan` must not import the server stack, so subcommands are named here as import paths
and loaded only when invoked.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

from scanner.i18n import set_lang

#: command name → "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "scan": "agents.scan_cli:scan",
    "demo": "agents.scan_cli:demo",
    "rules": "rules.cli:rules_group",
    "policy": "policies.cli:policy_group",
    "keys": "policies.cli:keys_group",
    "attest": "agents.attest_cli:attest_cmd",
    "approvals": "policies.cli:approvals_group",
    "server": "reports.cli:server_group",
    "audit": "reports.cli:audit_group",
    "report": "reports.cli:report_group",
    "agent": "agents.cli:agent_group",
    "check": "agents.check:check_cmd",
    "quarantine": "agents.quarantine:quarantine_group",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in COMMANDS if self._available(n))

    @staticmethod
    def _available(name: str) -> bool:
        mod = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(mod) is not None

    def get_command(self, ctx: click.Context, name: str) -> Any:
        target = COMMANDS.get(name)
        if target is None:
            return None
        mod_name, attr = target.split(":")
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name == mod_name:
                return None
            raise
        return getattr(mod, attr, None)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--lang", type=click.Choice(["zh", "en"]), default=None, envvar="BAOMI_LANG",
              help="Language of messages (zh-CN default) / 界面语言")
@click.version_option(package_name="baomi")
def cli(lang: str | None) -> None:
    """baomi 保密 — 国家秘密标志扫描与保密合规工具 / confidentiality-compliance scanner."""
    if lang:
        set_lang(lang)

