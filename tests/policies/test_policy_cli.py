"""`baomi policy check|explain|test|sign|show` and `baomi keys`: exit codes and what they print."""
from __future__ import annotations

import json
from pathlib import Path

from policy_helpers import MINIMAL_RULE, pack_text

from policies import keys
from policies.testing import SHIPPED_TESTS
from scanner.model import FileResult, Finding, Kind, Level

EVENT = {"event": "file", "operation": "copy", "host": {"role": "classified", "level": "secret"},
         "location": {"kind": "removable_medium"}, "file": {"path": "/media/x/a.doc", "level": "confidential"}}


def test_check_ok_and_composed(write, run):
    p = write("p.yaml", pack_text())
    r = run("--lang", "en", "policy", "check", p, "cn-secrecy")
    assert r.exit_code == 0, r.output
    assert f"OK {p}: 1 rules" in r.output and "OK composed: 25 rules" in r.output


def test_check_reports_every_file(write, run):
    a = write("a.yaml", pack_text(rules=MINIMAL_RULE.replace("action: block", "action: nuke")))
    b = write("b.yaml", "baomi_policy: 1\npack: b\nrules: 3\n")
    r = run("policy", "check", a, b)
    assert r.exit_code == 2
    assert f"{a}:12:5" in r.output and f"{b}:3:1: rules" in r.output
    assert "共 2 处错误" in r.output


def test_explain_text(write, run):
    ev = write("ev.json", json.dumps(EVENT))
    r = run("policy", "explain", ev)
    assert r.exit_code == 1
    assert "✗ CN-SEC-004 [critical/block]" in r.output
    assert "（依据：" in r.output and "定义：" in r.output and "cn-secrecy.yaml:" in r.output
    assert "✓ location.kind = 'removable_medium'" in r.output
    r = run("--lang", "en", "policy", "explain", ev, "--all")
    assert "· CN-SEC-001" in r.output and "✗ host.role = 'classified'  eq 'unclassified'" in r.output


def test_explain_json_and_jsonl_and_scan_records(write, run):
    clean = dict(EVENT, location={"kind": "local_disk"}, operation="create")
    ev = write("ev.jsonl", json.dumps(EVENT) + "\n" + json.dumps(clean) + "\n")
    r = run("policy", "explain", ev, "--format", "json")
    assert r.exit_code == 1
    out = json.loads(r.output)
    assert [sorted(v["rule"] for v in e["violations"]) for e in out] == [["CN-SEC-004"], []]
    rec = FileResult("a.txt", (Finding(Level.SECRET, Kind.MARKING, "机密★5年", period={"years": 5}),)).to_record()
    f = write("scan.jsonl", json.dumps(rec, ensure_ascii=False) + "\n")
    r = run("policy", "explain", f)
    assert r.exit_code == 2 and "--host-role" in r.output
    r = run("policy", "explain", f, "--host-role", "unclassified", "--format", "json")
    assert r.exit_code == 1 and json.loads(r.output)[0]["violations"][0]["rule"] == "CN-SEC-001"
    r = run("policy", "explain", f, "--host-role", "classified", "--host-level", "secret")
    assert r.exit_code == 0


def test_explain_bad_event_is_located(write, run):
    ev = write("ev.json", json.dumps({"event": "file", "host": {"role": "clasified"}, "flie": {}}))
    r = run("--lang", "en", "policy", "explain", ev)
    assert r.exit_code == 2
    assert "host.role: 'clasified' is not one of" in r.output and "flie: unknown field" in r.output
    r = run("--lang", "zh", "policy", "explain", ev)
    assert "host.role: 'clasified' 不在可选值之列" in r.output and "flie: 未知字段" in r.output


def test_policy_test_default_runs_shipped_cases(run):
    r = run("--lang", "en", "policy", "test", "--require-coverage")
    assert r.exit_code == 0, r.output
    assert "0 failed" in r.output and "0 not fully covered" in r.output


def test_policy_test_site_cases_fail_and_coverage(write, run):
    site = write("site/site.yaml", pack_text(name="site"))
    cases = write("site/tests/cases.yaml", """
        baomi_policy_test: 1
        policy: [../site.yaml]
        cases:
          - name: fires
            event: {event: file, file: {path: /a, level: top_secret}}
            expect: [T-1]
          - name: wrong
            event: {event: file, file: {path: /a, level: internal}}
            expect: [T-1]
    """)
    assert site.exists()
    r = run("--lang", "en", "policy", "test", cases.parent, "--require-coverage")
    assert r.exit_code == 1
    assert "FAIL" in r.output and "wrong" in r.output and "UNCOVERED T-1: no negative case" in r.output
    bad = write("bad/cases.yaml", """
        baomi_policy_test: 1
        policy: [cn-secrecy]
        cases:
          - name: typo
            event: {event: file}
            expect: [CN-SEC-999]
    """)
    r = run("policy", "test", bad)
    assert r.exit_code == 2 and "CN-SEC-999" in r.output and ":6:" in r.output


def test_show_rule_table(run):
    r = run("policy", "show", "--format", "markdown")
    assert r.exit_code == 0
    assert "| CN-SEC-008 |" in r.output and "| BABU-8-REPRO |" in r.output and "| CAPCO-001 |" in r.output
    rows = json.loads(run("policy", "show", "babu", "--format", "json").output)
    assert {x["id"] for x in rows} >= {f"BABU-{n}" for n in range(1, 9)}


def test_keys_create_and_show(tmp_path: Path, run):
    p = tmp_path / "k" / "officer.key"
    r = run("keys", "create", p)
    assert r.exit_code == 0
    kid = keys.key_id(keys.load_private_key(p))
    assert kid in r.output and oct(p.stat().st_mode & 0o777) == "0o600"
    assert run("keys", "create", p).exit_code == 2  # never overwrite silently
    for f in (p, p.with_name("officer.key.pub")):
        r = run("keys", "show", f)
        assert r.exit_code == 0 and f"key_id: {kid}" in r.output


def test_sign_refuses_invalid_policy(write, tmp_path, run):
    k = tmp_path / "o.key"
    run("keys", "create", k)
    bad = write("bad.yaml", pack_text(rules=MINIMAL_RULE.replace("on: file", "on: fiel")))
    r = run("policy", "sign", bad, "--key", k, "-o", tmp_path / "b.json")
    assert r.exit_code == 2 and not (tmp_path / "b.json").exists()


def test_shipped_cases_dir_exists():
    assert SHIPPED_TESTS.is_dir()


def test_policy_test_with_no_cases_is_an_error(tmp_path, run):
    (tmp_path / "pack.yaml").write_text("baomi_policy: 1\npack: p\nrules: []\n", encoding="utf-8")
    r = run("policy", "test", tmp_path)
    assert r.exit_code == 2 and "未找到测试用例文件" in r.output


def test_readme_rule_table_is_in_sync(run):
    readme = (Path(__file__).resolve().parents[2] / "policies" / "README.md").read_text(encoding="utf-8")
    start = readme.index("-->\n", readme.index("<!-- rule-table")) + 4
    table = readme[start:readme.index("<!-- /rule-table -->")].strip()
    r = run("--lang", "en", "policy", "show", "--format", "markdown")
    assert r.output.strip() == table
