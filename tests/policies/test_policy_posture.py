"""Host posture read from a fake sysfs/procfs tree; decisions; the event parser under fuzzing."""
from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.engine import load_policy
from policies.model import EventError, event_from_dict
from policies.posture import posture_event, read_posture

ROUTE_HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"


def _tree(root: Path, *, wlan: bool = False, bt: bool = False, default4: bool = False,
          default6: bool = False) -> Path:
    net = root / "sys" / "class" / "net"
    (net / "eth0").mkdir(parents=True)
    (net / "lo").mkdir()
    if wlan:
        (net / "wlp2s0" / "phy80211").mkdir(parents=True)
    if bt:
        (root / "sys" / "class" / "bluetooth" / "hci0").mkdir(parents=True)
    (root / "proc" / "net").mkdir(parents=True)
    rows = ["eth0\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0"]
    if default4:
        rows.append("eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0")
    (root / "proc" / "net" / "route").write_text(ROUTE_HEADER + "\n".join(rows) + "\n")
    z = "0" * 32
    v6 = [f"{z} 00 {z} 00 {z} ffffffff 00000001 00000000 00200200 lo"]
    if default6:
        v6.append(f"{z} 00 {z} 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0")
    (root / "proc" / "net" / "ipv6_route").write_text("\n".join(v6) + "\n")
    return root


POLICY = load_policy(["cn-secrecy"])


def test_clean_classified_host(tmp_path):
    host = read_posture("classified", "secret", root=_tree(tmp_path), host_id="pc1")
    assert host.wireless == () and host.bluetooth == () and host.default_route is False
    assert POLICY.evaluate(posture_event(host)) == []


def test_wireless_bluetooth_and_default_routes(tmp_path):
    host = read_posture("classified", "secret", root=_tree(tmp_path, wlan=True, bt=True, default4=True),
                        host_id="pc1")
    assert host.wireless == ("wlp2s0",) and host.bluetooth == ("hci0",) and host.default_route
    d = POLICY.decide(posture_event(host))
    assert sorted(v.rule_id for v in d.violations) == ["CN-SEC-030", "CN-SEC-031", "CN-SEC-032"]
    assert d.action is not None and d.action.value == "alert" and not d.compliant
    assert "wlp2s0" in d.violations[0].rationale_zh or "wlp2s0" in d.violations[1].rationale_zh


def test_ipv6_default_route_counts_loopback_does_not(tmp_path):
    assert read_posture("classified", root=_tree(tmp_path / "a", default6=True), host_id="x").default_route
    assert not read_posture("classified", root=_tree(tmp_path / "b"), host_id="x").default_route


def test_unclassified_host_posture_is_not_a_violation(tmp_path):
    host = read_posture("unclassified", root=_tree(tmp_path, wlan=True, bt=True, default4=True), host_id="x")
    assert POLICY.decide(posture_event(host)).compliant


def test_cli_posture(tmp_path, run):
    root = _tree(tmp_path, bt=True)
    r = run("--lang", "en", "policy", "posture", "--host-role", "classified", "--host-level", "secret",
            "--root", root)
    assert r.exit_code == 1 and "CN-SEC-031" in r.output and "bluetooth=hci0" in r.output


def test_decide_picks_the_strongest_action():
    ev = event_from_dict({"event": "file", "operation": "copy", "host": {"role": "unclassified"},
                          "file": {"path": "/a", "level": "top_secret", "mode": "0644"}})
    d = POLICY.decide(ev)
    assert {v.action.value for v in d.violations} == {"block", "quarantine", "alert"}
    assert d.action is not None and d.action.value == "block"


_json = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=6),
                               st.sampled_from(["file", "secret", "copy", "classified", "mail_outbox", "0644"])),
                     lambda inner: st.one_of(st.lists(inner, max_size=3),
                                             st.dictionaries(st.sampled_from(
                                                 ["event", "operation", "host", "role", "level", "file", "mode",
                                                  "markings", "device", "sightings", "attestation", "status",
                                                  "location", "kind", "actor", "groups", "time", "x"]),
                                                 inner, max_size=4)),
                     max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(data=st.dictionaries(st.sampled_from(["event", "operation", "host", "location", "actor", "file",
                                             "marking", "device", "attestation", "time", "bogus"]),
                            _json, max_size=6))
def test_fuzz_event_parser_only_raises_event_error(data):
    try:
        ev = event_from_dict(data)
    except EventError as exc:
        assert exc.issues
        return
    POLICY.evaluate(ev)  # a parsed event can always be decided
