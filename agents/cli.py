"""`baomi agent …`: run the endpoint daemon, check its configuration, override a held file."""
from __future__ import annotations

import getpass
import sys

import click

from scanner.i18n import lang_option, tr


def _fail(message: str, code: int = 2) -> None:
    click.echo(message, err=True)
    sys.exit(code)


@click.group("agent")
@lang_option
def agent_group() -> None:
    """终端代理：监视外发目录与移动介质、按策略处置、上报审计 / the endpoint agent."""


@agent_group.command("run")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="agent.yaml (see `baomi agent config --example`)")
@click.option("--log-level", default="INFO", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
@lang_option
def agent_run(config_path: str, log_level: str) -> None:
    """运行终端代理直至收到 SIGTERM / run the agent until SIGTERM (SIGHUP reloads)."""
    from agents.config import ConfigError
    from agents.daemon import run_agent, setup_logging
    from policies.packs import PolicyError
    from policies.signing import SignatureError

    setup_logging(log_level)
    try:
        code = run_agent(config_path)
    except ConfigError as exc:
        _fail(str(exc))
    except (PolicyError, SignatureError) as exc:
        _fail(tr(f"策略无法载入：{exc}", f"cannot load the policy: {exc}"))
    except FileNotFoundError as exc:
        _fail(tr(f"状态目录未登记（先运行 baomi audit enroll --state …）：{exc.filename}",
                 f"state directory not enrolled (run baomi audit enroll --state … first): {exc.filename}"))
    sys.exit(code)


@agent_group.command("config")
@click.option("--example", is_flag=True, help="Print a documented example configuration.")
@click.option("--check", "check_path", type=click.Path(dir_okay=False), default=None,
              help="Validate a configuration file (exit 2 with the line of each problem).")
@lang_option
def agent_config(example: bool, check_path: str | None) -> None:
    """打印示例配置或校验配置文件 / print the example or check a configuration."""
    from agents.config import EXAMPLE, ConfigError, load_config

    if example == bool(check_path):
        _fail(tr("请指定 --example 或 --check FILE 之一", "give one of --example or --check FILE"))
    if example:
        click.echo(EXAMPLE, nl=False)
        return
    try:
        cfg = load_config(check_path)  # type: ignore[arg-type]
    except ConfigError as exc:
        _fail(str(exc))
    click.echo(tr(f"配置有效：{len(cfg.watch)} 个外发目录，主机 {cfg.host.role}，采集端 {cfg.collector.url}",
                  f"configuration valid: {len(cfg.watch)} outgoing folders, host {cfg.host.role}, "
                  f"collector {cfg.collector.url}"))


@agent_group.command("override")
@click.argument("hold_id")
@click.option("--reason", required=True, help="Why the file must be sent anyway (recorded).")
@click.option("--config", "config_path", default="/etc/baomi/agent.yaml", show_default=True,
              type=click.Path(dir_okay=False))
@lang_option
def agent_override(hold_id: str, reason: str, config_path: str) -> None:
    """放行被暂扣的文件并记录理由 / release a held file, recording the justification."""
    from agents.actions import HoldArea, record_override
    from agents.config import ConfigError, load_config
    from reports.client import AuditClient

    if len(reason.strip()) < 4:
        _fail(tr("请写明理由（至少 4 个字符）", "give a reason (at least 4 characters)"))
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        _fail(str(exc))
    hold = HoldArea(cfg.state / "held")
    try:
        client = AuditClient(cfg.state)
    except (OSError, ValueError) as exc:
        _fail(tr(f"无法打开审计状态目录：{exc}", f"cannot open the audit state: {exc}"))
    try:
        dest = record_override(client.submit, hold, hold_id, reason.strip(), getpass.getuser())
    except KeyError:
        _fail(tr(f"没有暂扣编号 {hold_id}", f"no held file {hold_id}"))
    except FileExistsError as exc:
        _fail(tr(f"原位置已有文件：{exc}", f"a file already exists at the original place: {exc}"))
    finally:
        client.close()
    click.echo(tr(f"已放行：{dest}（理由已记录）", f"released: {dest} (reason recorded)"))


@agent_group.command("held")
@click.option("--config", "config_path", default="/etc/baomi/agent.yaml", show_default=True,
              type=click.Path(dir_okay=False))
@lang_option
def agent_held(config_path: str) -> None:
    """列出被暂扣的文件 / list held files."""
    from agents.actions import HoldArea
    from agents.config import ConfigError, load_config

    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        _fail(str(exc))
    for m in HoldArea(cfg.state / "held").list():
        click.echo(f"{m['id']}  {m.get('rule', '-'):<11} {m['original_path']}")
