"""The engine on scan records (markings.md §5), its index, and what a violation says."""
from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.engine import (
    events_for_scan_record,
    load_policy,
    violations_for_scan_record,
)
from policies.model import (
    OUTGOING,
    Actor,
    DeviceFacts,
    Event,
    EventKind,
    FileFacts,
    Host,
    Location,
    LocationKind,
    MarkingFacts,
    Operation,
    Sighting,
)
from scanner.model import ErrorCode, FileResult, Finding, Kind, Level, ScanError

POLICY = load_policy(["cn-secrecy", "babu", "capco-basic"])


def _record(*findings: Finding, **kw) -> dict:
    return FileResult(path=kw.pop("path", "docs/a.docx"), findings=findings, **kw).to_record()


def _ids(vs: list[dict]) -> list[str]:
    return [v["rule"] for v in vs]


def test_classified_record_on_unclassified_host():
    rec = _record(Finding(Level.SECRET, Kind.MARKING, "机密★5年", period={"years": 5}))
    vs = violations_for_scan_record(POLICY, rec, host_role="unclassified")
    assert _ids(vs) == ["CN-SEC-001"]
    v = vs[0]
    assert v["severity"] == "critical" and v["action"] == "quarantine" and v["pack"] == "cn-secrecy"
    assert v["rationale_zh"].startswith("[CN-SEC-001]") and "机密" in v["rationale_zh"]
    assert "docs/a.docx" in v["rationale_en"] and "secret" in v["rationale_en"]
    assert "保守国家秘密法" in v["source"]
    assert v["rationale_zh"].endswith(f"（依据：{v['source']}）")  # names its rule and its source
    assert v["rationale_en"].endswith(f"(source: {v['source']})")
    assert v["subject"] == {"path": "docs/a.docx"}
    json.dumps(vs, ensure_ascii=False)  # JSON-able


def test_clean_and_mention_only_records_have_no_violation():
    assert violations_for_scan_record(POLICY, _record(), host_role="unclassified") == []
    rec = _record(Finding(Level.SECRET, Kind.MENTION, "机密"))
    assert violations_for_scan_record(POLICY, rec, host_role="unclassified") == []


def test_marking_findings_become_marking_events():
    rec = _record(Finding(Level.CONFIDENTIAL, Kind.MARKING, "秘密", member="word/header1.xml"),
                  Finding(Level.SECRET, Kind.MARKING, "机密·10年", period={"years": 10}, nonstandard=True),
                  Finding(Level.SECRET, Kind.MENTION, "机密"))
    evs = events_for_scan_record(rec, host_role="classified", host_level="secret")
    assert [e.kind for e in evs] == ["file", "marking", "marking"]
    vs = violations_for_scan_record(POLICY, rec, host_role="classified", host_level="secret")
    assert sorted(_ids(vs)) == ["CN-SEC-020", "CN-SEC-021", "CN-SEC-025"]
    by = {v["rule"]: v for v in vs}
    assert by["CN-SEC-021"]["subject"] == {"path": "docs/a.docx", "marking": "秘密", "member": "word/header1.xml"}
    # most severe first
    sev = ["critical", "high", "medium", "low", "info"]
    assert [sev.index(v["severity"]) for v in vs] == sorted(sev.index(v["severity"]) for v in vs)


def test_declassified_and_superseded_markings_do_not_classify():
    old = Finding(Level.SECRET, Kind.MARKING, "机密★5年", period={"years": 5}, superseded=True)
    new = Finding(Level.INTERNAL, Kind.MARKING, "内部")
    rec = _record(old, new)
    assert rec["level"] == "internal"
    vs = violations_for_scan_record(POLICY, rec, host_role="unclassified")
    assert _ids(vs) == ["CN-SEC-024"]
    rec = _record(Finding(Level.TOP_SECRET, Kind.MARKING, "绝密★长期", period="long_term", declassified=True))
    assert _ids(violations_for_scan_record(POLICY, rec, host_role="unclassified")) == ["CN-SEC-023"]


def test_location_and_operation_and_record_facts_are_used():
    rec = _record(Finding(Level.CONFIDENTIAL, Kind.MARKING, "秘密★1年", period={"years": 1}),
                  sha256="ab" * 32, extra={"mode": "0644", "owner": "root", "group": "root"})
    vs = violations_for_scan_record(POLICY, rec, host_role="classified", host_level="secret",
                                    location="upload_staging", operation="create")
    assert sorted(_ids(vs)) == ["CN-SEC-005", "CN-SEC-013"]
    vs = violations_for_scan_record(POLICY, rec, host_role="classified", host_level="secret",
                                    operation="delete")
    assert _ids(vs) == ["CN-SEC-012"]


def test_english_banner_record():
    rec = _record(Finding(Level.SECRET, Kind.MARKING, "SECRET//NOFORN", rule="en.banner", caveats=("NOFORN",)))
    vs = violations_for_scan_record(POLICY, rec, host_role="unclassified")
    assert sorted(_ids(vs)) == ["CAPCO-001", "CN-SEC-001"]


def test_unscannable_file_at_publication_gate():
    rec = FileResult(path="p.zip", errors=(ScanError(ErrorCode.ENCRYPTED, "AES"),)).to_record()
    vs = violations_for_scan_record(POLICY, rec, host_role="unclassified", location="publication_gate")
    assert _ids(vs) == ["CN-SEC-007"]
    assert "encrypted" in vs[0]["rationale_zh"]


def test_english_rendering_of_levels():
    rec = _record(Finding(Level.TOP_SECRET, Kind.MARKING, "绝密★30年", period={"years": 30}))
    (v,) = violations_for_scan_record(POLICY, rec, host_role="unclassified")
    assert "top secret" in v["rationale_en"] and "绝密" in v["rationale_zh"]


# --------------------------------------------------------------------------- index consistency

_levels = st.sampled_from([None, *[lv.value for lv in Level]])
_events = st.builds(
    Event,
    kind=st.sampled_from([k.value for k in EventKind]),
    operation=st.sampled_from([o.value for o in Operation]),
    host=st.builds(Host, role=st.sampled_from(["classified", "unclassified"]), level=_levels,
                   wireless=st.sampled_from([(), ("wlan0",)]), default_route=st.booleans()),
    location=st.builds(Location, kind=st.sampled_from([k.value for k in LocationKind]),
                       medium_id=st.sampled_from([None, "USB-1"]), medium_level=_levels),
    actor=st.builds(Actor, user=st.sampled_from([None, "u"]),
                    groups=st.sampled_from([(), ("领导秘书",)])),
    file=st.one_of(st.none(), st.builds(
        FileFacts, path=st.just("/f"), declared_level=_levels, mode=st.sampled_from([None, 0o600, 0o644]),
        owner=st.sampled_from([None, "root", "bob"]), known_copies=st.integers(1, 3),
        markings=st.lists(st.builds(MarkingFacts, level=_levels, text=st.sampled_from(["机密", "SECRET"]),
                                    superseded=st.booleans(), declassified=st.booleans()),
                          max_size=3).map(tuple))),
    marking=st.one_of(st.none(), st.builds(MarkingFacts, level=_levels, text=st.sampled_from(["秘密", "TOP SECRET"]),
                                           nonstandard=st.booleans(), declassify_date=st.sampled_from([None, "2020-01-01"]))),
    device=st.one_of(st.none(), st.builds(DeviceFacts, registered=st.booleans(), sightings=st.lists(
        st.builds(Sighting, host_role=st.sampled_from(["classified", "unclassified"])), max_size=3).map(tuple))),
)


@settings(max_examples=400, deadline=None)
@given(ev=_events)
def test_indexed_evaluation_equals_full_evaluation(ev):
    """The role/location index and the reduced conditions never change a decision."""
    ctx = POLICY.context("2026-06-01")
    fine = POLICY.fired(ev, ctx)
    coarse = POLICY.fired(ev, ctx, coarse=True)
    assert fine == coarse
    assert sorted(v.rule_id for v in POLICY.evaluate(ev, ctx)) == sorted(fine)


def test_outgoing_set_is_the_channels():
    assert OUTGOING == {"mail_outbox", "im_transfer", "cloud_sync", "upload_staging", "network_share",
                        "print_spool", "publication_gate"}


_junk = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                               st.sampled_from(["secret", "marking", "0644", "2020-01-01"])),
                     lambda inner: st.one_of(st.lists(inner, max_size=3),
                                             st.dictionaries(st.sampled_from(
                                                 ["level", "kind", "text", "member", "caveats", "period",
                                                  "declassify_date", "superseded", "error"]), inner, max_size=4)),
                     max_leaves=15)


@settings(max_examples=300, deadline=None)
@given(rec=st.dictionaries(st.sampled_from(["path", "level", "findings", "errors", "sha256", "mode", "owner",
                                            "group", "acl_readers", "known_copies", "schema"]), _junk, max_size=8))
def test_fuzz_scan_records_never_crash(rec):
    """Records come from other processes: anything JSON-shaped is decided, never a traceback."""
    vs = violations_for_scan_record(POLICY, rec, host_role="unclassified", location="mail_outbox")
    json.dumps(vs, ensure_ascii=False)
