"""The condition language: each operator's meaning, references, parameters, quantifiers."""
from __future__ import annotations

from typing import Any

import pytest

from policies.approvals import ApprovalRegister
from policies.conditions import compile_condition, explain_condition, parse_condition
from policies.engine import EvalContext
from policies.model import Event, event_from_dict
from policies.yamlload import YamlError, load_located

pytestmark = pytest.mark.usefixtures("en")


def _cond(text: str, params: dict[str, Any] | None = None):
    issues: list = []
    cond = parse_condition(load_located(text, "c.yaml"), source="c.yaml", path="when",
                           params=params or {}, issues=issues)
    assert not issues, issues
    return compile_condition(cond), cond


def _ev(d: dict[str, Any]) -> Event:
    return event_from_dict(d)


CTX = EvalContext("2026-06-01", ApprovalRegister())


@pytest.mark.parametrize("cond,event,expected", [
    ("file.level: {at_least: secret}", {"file": {"level": "secret"}}, True),
    ("file.level: {at_least: secret}", {"file": {"level": "confidential"}}, False),
    ("file.level: {at_least: secret}", {"file": {}}, False),
    ("file.level: {at_least: internal}", {}, False),  # no file at all
    ("file.level: {above: secret}", {"file": {"level": "top_secret"}}, True),
    ("file.level: {above: secret}", {"file": {"level": "secret"}}, False),
    ("file.level: {at_most: secret}", {"file": {"level": "internal"}}, True),
    ("file.level: {at_most: secret}", {"file": {}}, False),
    ("file.level: {below: confidential}", {"file": {"level": "internal"}}, True),
    ("file.level: secret", {"file": {"level": "secret"}}, True),
    ("file.level: [secret, top_secret]", {"file": {"level": "confidential"}}, False),
    ("file.level: {not_in: [secret]}", {"file": {"level": "confidential"}}, True),
    ("file.level: {ne: secret}", {"file": {"level": "secret"}}, False),
    ("file.level: {exists: false}", {"file": {}}, True),
    ("file.known_copies: {ge: 2}", {"file": {"known_copies": 2}}, True),
    ("file.known_copies: {gt: 2}", {"file": {"known_copies": 2}}, False),
    ("file.known_copies: {lt: 2}", {"file": {"known_copies": 1}}, True),
    ("file.level: {above: $host.level}", {"host": {"role": "classified", "level": "confidential"},
                                         "file": {"level": "secret"}}, True),
    ("file.level: {above: $host.level}", {"host": {"role": "classified"}, "file": {"level": "secret"}}, False),
    ("marking.declassify_date: {before: $now}", {"marking": {"declassify_date": "2026-05-31"}}, True),
    ("marking.declassify_date: {before: $now}", {"marking": {"declassify_date": "2026-06-01"}}, False),
    ("marking.declassify_date: {before: $now}", {"time": "2027-01-01",
                                                "marking": {"declassify_date": "2026-12-31"}}, True),
    ("marking.declassify_date: {after: '2026-01-01'}", {"marking": {}}, False),
    ("host.wireless: {exists: true}", {"host": {"wireless": ["wlan0"]}}, True),
    ("host.wireless: {empty: true}", {"host": {}}, True),
    ("actor.groups: {contains: a}", {"actor": {"groups": ["b", "a"]}}, True),
    ("actor.groups: {contains_any: [x, y]}", {"actor": {"groups": ["b", "a"]}}, False),
    ("file.readers: {not_subset_of: ['user:root']}", {"file": {"mode": "0600", "owner": "root"}}, False),
    ("file.readers: {not_subset_of: ['user:root']}", {"file": {"mode": "0604", "owner": "root"}}, True),
    ("file.world_readable: true", {"file": {"mode": 0o644}}, True),
    ("location.outgoing: true", {"location": {"kind": "cloud_sync"}}, True),
    ("location.outgoing: true", {"location": {"kind": "classified_medium"}}, False),
    ("any: [{file.level: secret}, {host.role: classified}]", {"host": {"role": "classified"}}, True),
    ("not: {host.role: classified}", {"host": {"role": "classified"}}, False),
    ("all: [{event: file}, {operation: copy}]", {"event": "file", "operation": "copy"}, True),
    ("device.sightings: {some: {host_role: unclassified}}",
     {"event": "device", "device": {"sightings": [{"host_role": "classified"}]}}, False),
    ("device.sightings: {every: {host_role: classified}}",
     {"event": "device", "device": {"sightings": [{"host_role": "classified"}, {"host_role": "classified"}]}}, True),
    ("device.sightings: {every: {host_level: {at_least: secret}}}",
     {"event": "device", "device": {"sightings": [{"host_role": "classified", "host_level": "confidential"}]}},
     False),
    ("file.cover_level: {below: $file.parts_level}",
     {"file": {"markings": [{"level": "internal"}, {"level": "secret", "superseded": True}]}}, False),
])
def test_operator_semantics(cond, event, expected):
    pred, ast = _cond(cond)
    ev = _ev(event)
    assert pred(ev, CTX) is expected
    res, steps = explain_condition(ast, ev, CTX)
    assert res is expected and steps  # explanation agrees with the compiled predicate


def test_params_are_substituted_at_load_time():
    pred, _ = _cond("actor.groups: {contains: $params.g}", {"g": "领导秘书"})
    assert pred(_ev({"actor": {"groups": ["领导秘书"]}}), CTX)
    assert not pred(_ev({"actor": {"groups": ["办公室"]}}), CTX)


def test_param_of_wrong_type_is_an_error():
    issues: list = []
    parse_condition(load_located("file.readers: {not_subset_of: $params.r}", "c"), source="c", path="when",
                    params={"r": "user:root"}, issues=issues)
    assert issues and "list" in issues[0].message and issues[0].line == 1


@pytest.mark.parametrize("text,words", [
    ("file.level: {some: {x: 1}}", "does not apply"),
    ("device.sightings: {some: {host_rol: classified}}", "unknown field"),
    ("host.role: {in: []}", "non-empty list"),
    ("all: {host.role: classified}", "non-empty list"),
    ("file.level: {at_least: $nope.x}", "unknown field reference"),
    ("location.kind: mail_outbx", "not one of"),
    ("file.known_copies: {ge: two}", "integer"),
    ("host.default_route: {eq: 'yes'}", "true or false"),
])
def test_invalid_conditions(text, words):
    issues: list = []
    parse_condition(load_located(text, "c"), source="c", path="when", params={}, issues=issues)
    assert issues and any(words in i.message for i in issues), issues
    assert all(i.line == 1 for i in issues)


def test_conditions_cannot_execute_code():
    # YAML tags are refused before any condition is parsed; strings are only ever compared.
    pred, _ = _cond("file.path: \"__import__('os').system('false')\"")
    assert pred(_ev({"file": {"path": "/x"}}), CTX) is False
    with pytest.raises(YamlError) as exc:
        load_located("a: !!python/name:os.system x", "c")
    assert "not allowed" in str(exc.value)
