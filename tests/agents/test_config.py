"""agents/config.py: the documented example, line-precise errors, `baomi agent config`."""
from __future__ import annotations

from pathlib import Path

import pytest
from agent_helpers import baomi

from agents.config import (
    CHANNELS,
    EXAMPLE,
    AgentConfig,
    ConfigError,
    default_watch_entries,
    load_config,
    parse_config,
)
from policies.yamlload import load_located

MINIMAL = """\
collector: {url: "https://collector:8443", ca: ca.pem}
state: /var/lib/baomi/agent
host: {role: unclassified}
vault: {path: /var/lib/baomi/vault, officer_key: /etc/baomi/officer.pub}
watch:
  - {path: /home/user/Outbox, channel: mail}
"""


def test_example_is_valid_and_documents_every_section() -> None:
    cfg = parse_config(load_located(EXAMPLE, "example"))
    assert isinstance(cfg, AgentConfig)
    assert cfg.collector.url == "https://collector:8443"
    assert cfg.host.role == "unclassified" and cfg.host.level is None
    assert [w.channel for w in cfg.watch] == ["mail", "print_spool"]
    assert cfg.watch[0].location == "mail_outbox"
    assert cfg.scan_roots == (Path("/home"),)
    assert cfg.policy.sources == ("cn-secrecy",) and cfg.policy.trusted_keys
    assert cfg.limits.max_concurrent_scans == 2 and cfg.limits.ionice == "idle"
    assert cfg.limits.isolate == "auto" and cfg.limits.worker_user == "nobody"
    assert cfg.media.enabled and cfg.watch_defaults
    for key in ("collector", "state", "host", "vault", "watch", "scan_roots", "policy", "heartbeat",
                "rescan", "limits", "media"):
        assert f"\n{key}:" in "\n" + EXAMPLE


def test_issue_interface_names_parse(tmp_path: Path) -> None:
    p = tmp_path / "agent.yaml"
    p.write_text(MINIMAL)
    cfg = load_config(p)
    assert cfg.collector.ca == tmp_path / "ca.pem"  # relative to the file's directory
    assert cfg.vault.officer_key == Path("/etc/baomi/officer.pub")
    assert cfg.heartbeat == 60.0 and cfg.rescan == 300.0


def test_classified_host_needs_a_level(tmp_path: Path) -> None:
    p = tmp_path / "agent.yaml"
    p.write_text(MINIMAL.replace("{role: unclassified}", "{role: classified, level: secret}"))
    assert load_config(p).host.level == "secret"
    p.write_text(MINIMAL.replace("{role: unclassified}", "{role: classified}"))
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert ":3:" in str(exc.value) and "host.level" in str(exc.value)


@pytest.mark.parametrize(("edit", "line", "field"), [
    (("channel: mail", "channel: fax"), 6, "watch[0].channel"),
    (("https://collector:8443", "ftp://collector"), 1, "collector.url"),
    (("state: /var/lib/baomi/agent\n", "state: /var/lib/baomi/agent\nheartbeat: 0\n"), 3, "heartbeat"),
    (("state: /var/lib/baomi/agent\n", "state: /var/lib/baomi/agent\nwatsh: []\n"), 3, "watsh"),
    (("officer_key: /etc/baomi/officer.pub", "officer: /x"), 4, "vault.officer"),
    (("state: /var/lib/baomi/agent\n", "state: /var/lib/baomi/agent\nlimits: {nice: 99}\n"), 3, "limits.nice"),
])
def test_errors_name_the_line(tmp_path: Path, edit: tuple[str, str], line: int, field: str) -> None:
    p = tmp_path / "agent.yaml"
    p.write_text(MINIMAL.replace(*edit))
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert f"{p}:{line}:" in str(exc.value)
    assert field in str(exc.value)


def test_yaml_syntax_error_and_missing_sections(tmp_path: Path) -> None:
    p = tmp_path / "agent.yaml"
    p.write_text("collector: {url: [\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert "YAML" in str(exc.value) and f"{p}:" in str(exc.value)
    p.write_text("host: {role: unclassified}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    text = str(exc.value)
    assert "collector" in text and "state" in text and "vault" in text


def test_scalar_where_a_list_is_expected(tmp_path: Path) -> None:
    p = tmp_path / "agent.yaml"
    p.write_text(MINIMAL + "scan_roots: /srv/docs\n")
    assert load_config(p).scan_roots == (Path("/srv/docs"),)


def test_default_locations_found_under_homes(tmp_path: Path) -> None:
    home = tmp_path / "home" / "alice"
    (home / ".thunderbird" / "abc.default" / "Mail" / "Local Folders").mkdir(parents=True)
    (home / "Nextcloud").mkdir()
    (home / "Documents" / "WeChat Files" / "wxid_1" / "FileStorage" / "File").mkdir(parents=True)
    entries = default_watch_entries([str(home)])
    got = {(e.path.relative_to(home).as_posix(), e.channel) for e in entries}
    assert got == {(".thunderbird/abc.default/Mail/Local Folders", "mail"), ("Nextcloud", "cloud_sync"),
                   ("Documents/WeChat Files/wxid_1/FileStorage/File", "im")}
    assert all(e.channel in CHANNELS for e in entries)


def test_cli_example_then_check_and_errors(tmp_path: Path) -> None:
    out = baomi("agent", "config", "--example").stdout
    assert out == EXAMPLE
    p = tmp_path / "agent.yaml"
    p.write_text(out)
    res = baomi("agent", "config", "--check", str(p))
    assert "configuration valid" in res.stdout
    p.write_text(MINIMAL.replace("channel: mail", "channel: carrier-pigeon"))
    res = baomi("agent", "config", "--check", str(p), check=False)
    assert res.returncode == 2
    assert f"{p}:6:" in res.stderr and "Traceback" not in res.stderr
    res = baomi("agent", "config", "--check", str(tmp_path / "missing.yaml"), check=False)
    assert res.returncode == 2 and "cannot read" in res.stderr and "Traceback" not in res.stderr
    res = baomi("agent", "run", "--config", str(tmp_path / "missing.yaml"), check=False)
    assert res.returncode == 2 and "cannot read" in res.stderr and "Traceback" not in res.stderr
