"""`baomi check` on prepared host trees: counts, permissions, posture from fixture /sys and /proc,
the signed scan_summary on a real collector, exit codes as documented."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from agent_helpers import Collector, baomi, rows

from reports.server import init_data

MARKED = "机密★10年\n关于某事的通知\n正文。\n"
ROUTE_HEADER = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"


def sys_tree(root: Path, *, wireless: bool = False, bluetooth: bool = False, route: bool = False) -> Path:
    (root / "sys" / "class" / "net" / "lo").mkdir(parents=True)
    (root / "sys" / "class" / "bluetooth").mkdir(parents=True)
    (root / "proc" / "net").mkdir(parents=True)
    if wireless:
        (root / "sys" / "class" / "net" / "wlp2s0" / "phy80211").mkdir(parents=True)
    if bluetooth:
        (root / "sys" / "class" / "bluetooth" / "hci0").mkdir()
    lines = ROUTE_HEADER + "lo\t0000007F\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n"
    if route:
        lines += "eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
    (root / "proc" / "net" / "route").write_text(lines)
    return root


def host_tree(root: Path) -> Path:
    (root / "docs" / "sub").mkdir(parents=True)
    (root / "docs" / "a.txt").write_text(MARKED, encoding="utf-8")
    (root / "docs" / "sub" / "b.txt").write_text(MARKED.replace("机密", "绝密"), encoding="utf-8")
    (root / "docs" / "c.txt").write_text("普通文件。\n", encoding="utf-8")
    for p in (root / "docs" / "a.txt", root / "docs" / "sub" / "b.txt"):
        p.chmod(0o600)
    return root


def check(*args: str) -> tuple[int, dict]:
    p = baomi("check", "--no-cache", "--format", "json", *args, check=False)
    assert p.returncode in (0, 1, 3), p.stderr
    return p.returncode, json.loads(p.stdout)


def test_compliant_classified_host(tmp_path: Path) -> None:
    home = host_tree(tmp_path / "home")
    (home / "docs" / "sub" / "b.txt").unlink()  # nothing above the host's level
    code, out = check("--root", str(home), "--host-role", "classified:secret", "--sys-root",
                      str(sys_tree(tmp_path / "root")))
    assert code == 0, out["violations"]
    assert out["files"] == 2 and out["classified"] == {"secret": 1}
    assert out["posture"] == {"host": out["posture"]["host"], "wireless": [], "bluetooth": [], "default_route": False}


def test_violations_counts_and_posture(tmp_path: Path) -> None:
    home = host_tree(tmp_path / "home")
    (home / "docs" / "a.txt").chmod(0o644)  # readable by everyone
    code, out = check("--root", str(home), "--host-role", "classified:secret", "--sys-root",
                      str(sys_tree(tmp_path / "root", wireless=True, bluetooth=True, route=True)))
    assert code == 1
    assert out["files"] == 3 and out["classified"] == {"secret": 1, "top_secret": 1}
    by_rule: dict[str, list] = {}
    for v in out["violations"]:
        by_rule.setdefault(v["rule"], []).append(v["path"])
    assert by_rule["CN-SEC-002"] == [str(home / "docs" / "sub" / "b.txt")], "top secret above the host's level"
    assert by_rule["CN-SEC-013"] == [str(home / "docs" / "a.txt")], "world-readable classified file"
    assert out["posture"]["wireless"] == ["wlp2s0"] and out["posture"]["bluetooth"] == ["hci0"]
    assert out["posture"]["default_route"] is True
    assert {"CN-SEC-030", "CN-SEC-032"} <= set(by_rule)
    # the same tree on an unclassified host: the classified files themselves are the violation
    code, out = check("--root", str(home), "--host-role", "unclassified", "--sys-root",
                      str(sys_tree(tmp_path / "root2", wireless=True)))
    assert code == 1 and {v["path"] for v in out["violations"] if v["rule"] == "CN-SEC-001"} == {
        str(home / "docs" / "a.txt"), str(home / "docs" / "sub" / "b.txt")}
    assert not any(v["rule"] == "CN-SEC-030" for v in out["violations"]), "wireless is allowed off classified hosts"


def test_acl_reader_outside_the_authorised_group(tmp_path: Path) -> None:
    if not shutil.which("setfacl"):
        pytest.skip("setfacl (Debian package acl) is not installed")
    home = host_tree(tmp_path / "home")
    f = home / "docs" / "a.txt"
    if subprocess.run(["setfacl", "-m", "u:nobody:r", str(f)], capture_output=True).returncode:
        pytest.skip("this file system does not take POSIX ACLs")
    code, out = check("--root", str(home / "docs" / "a.txt"), "--host-role", "classified:secret", "--sys-root",
                      str(sys_tree(tmp_path / "root")))
    assert code == 1
    (v,) = [v for v in out["violations"] if v["rule"] == "CN-SEC-013"]
    assert "user:nobody" in v["rationale_en"]


def test_incomplete_exit_three_and_usage_errors(tmp_path: Path) -> None:
    pyzipper = pytest.importorskip("pyzipper")
    home = tmp_path / "home"
    home.mkdir()
    with pyzipper.AESZipFile(home / "locked.zip", "w", encryption=pyzipper.WZ_AES) as z:
        z.setpassword(b"pw")
        z.writestr("a.txt", MARKED)
    code, out = check("--root", str(home), "--host-role", "unclassified", "--sys-root",
                      str(sys_tree(tmp_path / "root")))
    assert code == 3 and out["incomplete"][0]["errors"] == ["encrypted"]
    p = baomi("check", "--root", str(tmp_path / "nowhere"), "--host-role", "unclassified", check=False)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    p = baomi("check", "--root", str(home), "--host-role", "classified", check=False)
    assert p.returncode == 2 and "classified:secret" in p.stderr
    p = baomi("check", "--root", str(home), check=False)
    assert p.returncode == 2


def test_signed_summary_on_the_collector_from_the_agent_config(tmp_path: Path) -> None:
    import yaml

    from agents.vault import keygen

    init_data(tmp_path / "srv")
    c = Collector(tmp_path / "srv").start()
    try:
        c.enroll(tmp_path / "state").close()
        _key, pub = keygen(tmp_path / "officer")
        home = host_tree(tmp_path / "home")
        cfg = {"collector": {"url": c.url, "ca": str(c.ca)}, "state": str(tmp_path / "state"),
               "host": {"role": "classified", "level": "secret"},
               "vault": {"path": str(tmp_path / "vault"), "officer_key": str(pub)},
               "scan_roots": [str(home)], "policy": {"fetch": False}}
        (tmp_path / "agent.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        p = baomi("check", "--config", str(tmp_path / "agent.yaml"), "--no-cache", "--sys-root",
                  str(sys_tree(tmp_path / "root", route=True)), check=False)
        assert p.returncode == 1, p.stderr
        (summary,) = rows(c, type="scan_summary")
        pl = summary["payload"]
        assert pl["kind"] == "check" and pl["files"] == 3 and pl["classified"] == {"secret": 1, "top_secret": 1}
        assert pl["posture"]["default_route"] is True and pl["policy_version"].startswith("cn-secrecy@")
        assert pl["roots"] == [str(home)]
        rules = {r["rule"] for r in rows(c, type="violation")}
        assert {"CN-SEC-002", "CN-SEC-032"} <= rules
        dump = json.dumps(rows(c), ensure_ascii=False)
        assert "正文" not in dump and "关于某事" not in dump, "no document text in the log"
    finally:
        c.stop()
