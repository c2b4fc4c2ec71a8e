"""The shipped packs' own `policy test` cases, their coverage, and that they can fail."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from policies.engine import load_policy, shipped_packs
from policies.packs import PACKS_DIR
from policies.testing import SHIPPED_TESTS, run_tests

SEED_GLOB = "000_*.txt"


def test_shipped_packs_are_the_three_named():
    assert shipped_packs() == ["babu", "capco-basic", "cn-secrecy"]


@pytest.mark.parametrize("pack", ["cn-secrecy", "babu", "capco-basic"])
def test_shipped_cases_pass_with_full_coverage(pack):
    result = run_tests([str(SHIPPED_TESTS / f"{pack}.yaml")])
    assert result.cases, "no cases"
    assert not result.failed, [(c.name, c.missing, c.unexpected) for c in result.failed]
    rules = {r.id for r in load_policy([pack]).rules}
    assert set(result.coverage) == rules
    assert result.uncovered == {}, result.uncovered  # a positive and a negative case per rule


def test_every_babu_clause_has_a_rule_and_a_checklist_item():
    ps = load_policy(["babu"])
    clauses = {i.clause for i in ps.checklist}
    assert clauses == set(range(1, 9))
    ids = {r.id for r in ps.rules}
    for n in range(1, 9):
        assert f"BABU-{n}" in ids
    # clause 8's technical parts: leak, exposure, unauthorised reproduction/destruction
    assert {"BABU-8-LEAK", "BABU-8-EXPOSE", "BABU-8-REPRO"} <= ids
    for r in ps.rules:
        m = re.match(r"BABU-(\d)", r.id)
        if m:
            assert "八不" in r.source


_SIMP = "请领导义乱关权谋当动违规设项参对执务响业营厅娱乐级单车处办员国机让属无触阅览电与谈论复录销毁"
_TRAD = "請領導義亂關權謀當動違規設項參對執務響業營廳娛樂級單車處辦員國機讓屬無觸閱覽電與談論復錄銷毀"
_PUNCT = re.compile(r"[\s,，;；、。:：]")


def test_checklist_wording_matches_the_seed_text():
    """The attested zh-CN wording is the 八不 of the seed paragraph (五是…), clause by clause."""
    seeds = Path(__file__).resolve().parents[3] / "shared" / "seeds"
    files = sorted(seeds.glob(SEED_GLOB))
    if not files:
        pytest.skip(f"{seeds} is absent (clone without ../shared)")
    text = files[0].read_text(encoding="utf-8", errors="replace")
    para = next(line for line in text.splitlines() if line.startswith("五是") and "八不" in line)
    para = _PUNCT.sub("", para)
    to_trad = str.maketrans(_SIMP, _TRAD)
    items = load_policy(["babu"]).checklist
    assert len(items) == 8
    for it in items:
        assert _PUNCT.sub("", it.text_zh).translate(to_trad) in para, it.id


def test_cases_can_fail(tmp_path: Path):
    """Flip one expectation per shipped file: the runner must report a failure."""
    for f in SHIPPED_TESTS.glob("*.yaml"):
        text = f.read_text(encoding="utf-8")
        m = re.search(r"expect: \[([A-Z0-9-]+)\]", text)
        assert m, f
        broken = text.replace(m.group(0), "expect: [NOPE-0]", 1)
        bad = tmp_path / f.name
        bad.write_text(broken.replace("expect: [NOPE-0]", "expect_not: [" + m.group(1) + "]", 1),
                       encoding="utf-8")
        result = run_tests([str(bad)])
        assert result.failed, f


def test_a_rule_weakened_in_a_site_pack_fails_the_shipped_cases(tmp_path: Path):
    """Switching a rule's condition off makes its positive cases fail: the cases test the rules."""
    site = tmp_path / "site.yaml"
    site.write_text("baomi_policy: 1\npack: site\nextends: [cn-secrecy]\nrules:\n"
                    "  - id: CN-SEC-004\n    when: {file.level: {above: top_secret}}\n", encoding="utf-8")
    cases = tmp_path / "cases.yaml"
    text = (SHIPPED_TESTS / "cn-secrecy.yaml").read_text(encoding="utf-8")
    cases.write_text(text.replace("policy: [cn-secrecy]", f"policy: [{site}]"), encoding="utf-8")
    result = run_tests([str(cases)])
    assert {c.name for c in result.failed} == {"秘密文件复制到未登记U盘"}
    assert result.uncovered.get("CN-SEC-004") == "no positive case"


def test_every_rule_names_its_source_and_both_languages():
    ps = load_policy(shipped_packs())
    for r in ps.rules:
        assert r.source and r.title_zh and r.title_en and r.rationale_zh and r.rationale_en
        assert re.search(r"[\u4e00-\u9fff]", r.rationale_zh), r.id


def test_pack_files_are_package_data():
    cfg = (Path(__file__).resolve().parents[2] / "setup.cfg").read_text(encoding="utf-8")
    assert "packs/*.yaml" in cfg and "packs/*/*.yaml" in cfg
    assert all(p.parent == PACKS_DIR for p in PACKS_DIR.glob("*.yaml"))
    assert sorted(p.name for p in SHIPPED_TESTS.glob("*.yaml")) == [
        "babu.yaml", "capco-basic.yaml", "cn-secrecy.yaml"]
