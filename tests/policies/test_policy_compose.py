"""Pack composition: a site pack overrides a shipped pack with a well-defined precedence."""
from __future__ import annotations

import pytest

from policies.engine import load_policy
from policies.model import event_from_dict
from policies.packs import PolicyError

pytestmark = pytest.mark.usefixtures("en")

COPY_TS = {"event": "file", "operation": "copy", "host": {"role": "classified", "level": "top_secret"},
           "file": {"path": "/d/ts.doc", "level": "top_secret"}}
WORLD = {"event": "file", "operation": "observe", "host": {"role": "classified", "level": "secret"},
         "file": {"path": "/d/s.doc", "level": "secret", "mode": "0640", "owner": "root", "group": "mimi"}}


def _fired(ps, d):
    return ps.fired(event_from_dict(d), ps.context("2026-06-01"))


def test_site_pack_overrides_fields_params_and_disables(write):
    site = write("site.yaml", """
        baomi_policy: 1
        pack: site
        extends: [cn-secrecy]
        params:
          authorized_readers: ["user:root", "group:mimi"]
        rules:
          - id: CN-SEC-008
            action: alert
            severity: low
          - id: CN-SEC-032
            enabled: false
    """)
    base = load_policy(["cn-secrecy"])
    ps = load_policy([str(site)])
    assert ps.pack_names == ("cn-secrecy", "site")
    assert "CN-SEC-013" in _fired(base, WORLD)          # group mimi not authorised by default
    assert "CN-SEC-013" not in _fired(ps, WORLD)        # the site authorises it
    r = ps.rule("CN-SEC-008")
    assert r is not None and r.action.value == "alert" and r.severity.value == "low"
    assert r.when == base.rule("CN-SEC-008").when       # fields not named stay as shipped
    assert r.origin.startswith(str(site))
    assert "CN-SEC-032" not in {x.id for x in ps.rules}
    assert len(ps.rules) == len(base.rules) - 1
    v = ps.evaluate(event_from_dict(COPY_TS), ps.context())
    assert [x.action.value for x in v if x.rule_id == "CN-SEC-008"] == ["alert"]


def test_later_pack_wins_and_order_matters(write):
    a = write("a.yaml", """
        baomi_policy: 1
        pack: a
        rules:
          - id: CN-SEC-008
            action: require_approval
    """)
    ps1 = load_policy(["cn-secrecy", str(a)])
    ps2 = load_policy([str(a), "cn-secrecy"])
    assert ps1.rule("CN-SEC-008").action.value == "require_approval"
    assert ps2.rule("CN-SEC-008").action.value == "block"


def test_new_when_replaces_condition_wholesale(write):
    site = write("s.yaml", """
        baomi_policy: 1
        pack: s
        extends: cn-secrecy
        rules:
          - id: CN-SEC-008
            when:
              file.level: {at_least: secret}
    """)
    ps = load_policy([str(site)])
    secret_copy = dict(COPY_TS, file={"path": "/d/s.doc", "level": "secret"})
    assert "CN-SEC-008" in _fired(ps, secret_copy)
    assert "CN-SEC-008" not in _fired(load_policy(["cn-secrecy"]), secret_copy)


def test_partial_new_rule_is_incomplete(write):
    p = write("s.yaml", """
        baomi_policy: 1
        pack: s
        rules:
          - id: NEW-1
            action: block
    """)
    with pytest.raises(PolicyError) as exc:
        load_policy([str(p)])
    assert any(i.field == "rule NEW-1.title_zh" and i.line == 4 for i in exc.value.issues)


def test_override_error_points_at_the_overriding_file(write):
    site = write("s.yaml", """
        baomi_policy: 1
        pack: s
        extends: [cn-secrecy]
        rules:
          - id: CN-SEC-001
            when:
              host.rol: unclassified
    """)
    with pytest.raises(PolicyError) as exc:
        load_policy([str(site)])
    (issue,) = exc.value.issues
    assert issue.file == str(site) and issue.line == 7 and issue.field == "rule CN-SEC-001.when.host.rol"


def test_extends_each_pack_once_and_cycles_refused(write):
    a = write("a.yaml", "baomi_policy: 1\npack: a\nextends: [b.yaml]\nrules: []\n")
    write("b.yaml", "baomi_policy: 1\npack: b\nextends: [a.yaml]\nrules: []\n")
    with pytest.raises(PolicyError) as exc:
        load_policy([str(a)])
    assert "circular" in str(exc.value)
    s = write("s.yaml", "baomi_policy: 1\npack: s\nextends: [cn-secrecy]\nrules: []\n")
    ps = load_policy(["cn-secrecy", str(s)])
    assert ps.pack_names == ("cn-secrecy", "s")


def test_same_pack_name_from_two_files_refused(write):
    a = write("a.yaml", "baomi_policy: 1\npack: dup\nrules: []\n")
    b = write("b.yaml", "baomi_policy: 1\npack: dup\nrules: []\n")
    with pytest.raises(PolicyError) as exc:
        load_policy([str(a), str(b)])
    assert "already loaded" in str(exc.value)


def test_checklist_wording_is_site_configuration(write):
    site = write("s.yaml", """
        baomi_policy: 1
        pack: s
        extends: [babu]
        params: {attest_group: 机要秘书, attest_period_days: 90}
        checklist:
          - id: babu-3
            text_zh: 不参加任何可能影响公务的宴请（本单位措辞）
          - id: babu-9
            clause: 9
            text_zh: 本单位补充条款
            text_en: Site addition
    """)
    ps = load_policy([str(site)])
    items = {i.id: i for i in ps.checklist}
    assert items["babu-3"].text_zh.endswith("（本单位措辞）") and items["babu-3"].clause == 3
    assert "babu-9" in items and len(items) == 9
    assert ps.params["attest_group"] == "机要秘书"
    ev = {"event": "attestation", "operation": "observe", "actor": {"user": "u", "groups": ["机要秘书"]},
          "attestation": {"status": "missing"}}
    assert _fired(ps, ev) == ["BABU-ATTEST-MISSING"]
    assert _fired(load_policy(["babu"]), ev) == []  # the shipped group is 领导秘书
