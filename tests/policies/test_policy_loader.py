"""Pack loading: located validation errors, unsafe YAML refused, fuzzed input never crashes."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_helpers import MINIMAL_RULE, pack_text

from policies.engine import load_policy
from policies.packs import PACKS_DIR, PolicyError
from policies.signing import SignatureError
from policies.yamlload import YamlError, load_located

pytestmark = pytest.mark.usefixtures("en")


def _issues(path: Path) -> list[tuple[int | None, str, str]]:
    with pytest.raises(PolicyError) as exc:
        load_policy([str(path)])
    return [(i.line, i.field, i.message) for i in exc.value.issues]


def test_minimal_pack_loads(write):
    ps = load_policy([str(write("p.yaml", pack_text()))])
    assert [r.id for r in ps.rules] == ["T-1"]
    assert ps.rules[0].origin.endswith("p.yaml:4")


def test_unknown_field_in_condition_names_line_and_field(write):
    p = write("p.yaml", pack_text(rules=MINIMAL_RULE.replace("file.level: {at_least: secret}",
                                                             "file.levle: {at_least: secret}")))
    issues = _issues(p)
    assert len(issues) == 1
    line, field, msg = issues[0]
    assert line == 10 and field == "rule T-1.when.file.levle"
    assert "unknown field" in msg and "file.level" in msg  # suggests the right name


@pytest.mark.parametrize("old,new,line,field,words", [
    ("severity: high", "severity: hihg", 11, "rule T-1.severity", "critical"),
    ("action: block", "action: burn", 12, "rule T-1.action", "quarantine"),
    ("on: file", "on: files", 8, "rule T-1.on", "event kind"),
    ("{at_least: secret}", "{at_leest: secret}", 10, "rule T-1.when.file.level.at_leest", "operator"),
    ("{at_least: secret}", "{at_least: sekret}", 10, "rule T-1.when.file.level.at_least", "level"),
    ('"{file.path} is {file.level}"', '"{file.pth}"', 14, "rule T-1.rationale_en", "placeholder"),
    ("{at_least: secret}", "{at_least: $params.nope}", 10, "rule T-1.when.file.level.at_least", "parameter"),
    ("{at_least: secret}", "{above: $host.role}", 10, "rule T-1.when.file.level.above", "str field"),
])
def test_rule_errors_are_located(write, old, new, line, field, words):
    assert old in MINIMAL_RULE
    p = write("p.yaml", pack_text(rules=MINIMAL_RULE.replace(old, new)))
    issues = _issues(p)
    assert [(i[0], i[1]) for i in issues] == [(line, field)]
    assert words in issues[0][2]


def test_missing_required_fields_and_unknown_keys(write):
    p = write("p.yaml", """
        baomi_policy: 1
        pack: t
        colour: blue
        rules:
          - id: T-1
            on: file
            severity: low
            action: alert
    """)
    issues = _issues(p)
    fields = {i[1] for i in issues}
    assert "colour" in fields
    assert {"rule T-1.title_zh", "rule T-1.source", "rule T-1.rationale_en"} <= fields


def test_format_version_required(write):
    p = write("p.yaml", "pack: t\nrules: []\n")
    assert any(f == "baomi_policy" for _, f, _ in _issues(p))
    p = write("q.yaml", "baomi_policy: 7\npack: t\nrules: []\n")
    assert any("unsupported" in m for _, _, m in _issues(p))


def test_duplicate_rule_ids_and_duplicate_keys(write):
    p = write("p.yaml", pack_text(rules=MINIMAL_RULE + MINIMAL_RULE))
    assert any("duplicate id" in m for _, _, m in _issues(p))
    p = write("q.yaml", "baomi_policy: 1\npack: t\npack: u\n")
    with pytest.raises(PolicyError) as exc:
        load_policy([str(p)])
    assert exc.value.issues[0].line == 3 and "duplicate" in exc.value.issues[0].message


@pytest.mark.parametrize("text,words", [
    ("a: &x [1]\nb: *x\n", "aliases"),
    ("a: !!python/object:os.system ls\n", "tag"),
    ("a: !!binary aGVsbG8=\n", "tag"),
    ("<<: {a: 1}\n", "tag"),
    ("a: [1\n", "YAML syntax"),
    ("a: 1\n---\nb: 2\n", "one YAML document"),
    ("[" * 100 + "]" * 100, "nest"),
])
def test_unsafe_or_broken_yaml_is_refused_with_position(text, words):
    with pytest.raises(YamlError) as exc:
        load_located(text, "x.yaml")
    assert words in exc.value.issue.message
    assert exc.value.issue.file == "x.yaml"


def test_keys_stay_text_norway_problem():
    data = load_located("on: file\nyes: 1\n1: x\n", "x")
    assert set(data) == {"on", "yes", "1"}
    assert data.marks["yes"] == (2, 1)


def test_non_utf8_and_nul_refused():
    with pytest.raises(YamlError):
        load_located(b"\xff\xfe\x00a", "x")
    with pytest.raises(YamlError):
        load_located("a: \x00", "x")


def test_unknown_pack_name():
    with pytest.raises(PolicyError) as exc:
        load_policy(["no-such-pack"])
    assert "cn-secrecy" in exc.value.issues[0].message


# --------------------------------------------------------------------------- fuzzing

_SHIPPED = [p.read_text(encoding="utf-8") for p in sorted(PACKS_DIR.glob("*.yaml"))]


def _load_text(tmp: Path, text: str) -> None:
    p = tmp / "fuzz.yaml"
    p.write_bytes(text.encode("utf-8", errors="replace"))
    try:
        load_policy([str(p)])
    except (PolicyError, SignatureError):
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_mutated_shipped_packs_never_crash(tmp_path, data):
    """Byte-level mutations of real packs: only PolicyError/SignatureError may escape."""
    text = data.draw(st.sampled_from(_SHIPPED))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(text)))
        op = data.draw(st.sampled_from(["delete", "insert", "replace"]))
        chunk = data.draw(st.text(alphabet=st.sampled_from(list(":-[]{}&*!|>'\"#\n \t,?%@`$0aZ中★")),
                                  min_size=1, max_size=6))
        if op == "delete":
            text = text[:pos] + text[pos + len(chunk):]
        elif op == "insert":
            text = text[:pos] + chunk + text[pos:]
        else:
            text = text[:pos] + chunk + text[pos + len(chunk):]
    _load_text(tmp_path, text)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=8),
                     st.sampled_from(["file", "secret", "block", "$params.x", "$host.level", "T-1",
                                      "at_least", "unclassified", "2026-01-01"]))
_keys = st.sampled_from(["baomi_policy", "pack", "rules", "id", "on", "when", "severity", "action",
                         "file.level", "all", "any", "not", "at_least", "some", "params", "extends",
                         "checklist", "enabled", "device.sightings", "host_role", "x"])
_trees = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(_keys, inner, max_size=5)),
                      max_leaves=25)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=st.dictionaries(_keys, _trees, max_size=6))
def test_fuzz_structured_documents_never_crash(tmp_path, tree):
    import yaml

    tree.setdefault("baomi_policy", 1)
    _load_text(tmp_path, yaml.safe_dump(tree, allow_unicode=True))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_fuzz_arbitrary_text_never_crashes(tmp_path, text):
    _load_text(tmp_path, text)


def test_cli_check_exit_2_with_location_no_traceback(write, run):
    p = write("bad.yaml", pack_text(rules=MINIMAL_RULE.replace("severity: high", "severity: hihg")))
    r = run("--lang", "en", "policy", "check", p)
    assert r.exit_code == 2
    assert f"{p}:11:5: rule T-1.severity" in r.output
    assert "Traceback" not in r.output
    r = run("policy", "check", write("syn.yaml", "baomi_policy: 1\npack: [a\n"))
    assert r.exit_code == 2 and "syn.yaml:3:1" in r.output


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_cli_check_exits_0_or_2_without_traceback(tmp_path, run, data):
    text = data.draw(st.sampled_from(_SHIPPED))
    pos = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 40))
    junk = data.draw(st.text(alphabet=st.sampled_from(list(":-[]{}&*!|>'\"#\n ,$a中")), max_size=5))
    p = tmp_path / "f.yaml"
    p.write_bytes((text[:pos] + junk + text[pos + cut:]).encode("utf-8"))
    r = run("policy", "check", p)
    assert r.exit_code in (0, 2), r.output
    assert "Traceback" not in r.output
    if r.exit_code == 2:
        assert str(p) in r.output  # every problem names the file
