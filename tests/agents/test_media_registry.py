"""The register of classified media travels in the signed policy bundle, is validated when the
policy loads (a bad register refuses the bundle, with file and line), and decides — through the
shipped cn-secrecy rules and the real policy engine — whether a copy onto a stick is a violation."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agents.media import classify_location, medium_from_properties
from policies.engine import PolicySet, events_for_scan_record, load_policy
from policies.packs import PACKS_DIR, PolicyError
from policies.signing import SignatureError, make_bundle

# `udevadm info --query=property` of a Kingston stick's partition.
STICK = {
    "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host6/target6:0:0/6:0:0:0/block/sdb/sdb1",
    "SUBSYSTEM": "block", "DEVNAME": "/dev/sdb1", "DEVTYPE": "partition", "MAJOR": "8", "MINOR": "17",
    "ID_VENDOR": "Kingston", "ID_MODEL": "DataTraveler_3.0", "ID_SERIAL_SHORT": "60A44C3FACF3B1A0B9C1",
    "ID_BUS": "usb", "ID_PATH": "pci-0000:00:14.0-usb-0:2:1.0-scsi-0:0:0:0", "ID_FS_UUID": "1A2B-3C4D",
    "ID_FS_TYPE": "vfat", "ID_FS_LABEL": "BAOMI",
}
SHA = "ab" * 32
SITE = """baomi_policy: 1
pack: site
version: "2026.3"
extends: [cn-secrecy]
params:
  registered_media:
    - {id: USB-0042, serial: 60A44C3FACF3B1A0B9C1, fs_uuid: 1a2b-3c4d, level: secret, holder: 机要室 张三}
"""
APPROVALS = f"""baomi_approvals: 1
approvals:
  - id: AP-2026-007
    operation: transfer
    sha256: {SHA}
    who: "*"
    to: "60A44C3FACF3B1A0B9C1:1A2B-3C4D"
    until: 2099-12-31
    approved_by: 李四
"""


def _signed(tmp_path: Path, members: list[tuple[str, str]]) -> tuple[Path, Path]:
    key = Ed25519PrivateKey.generate()
    pub = tmp_path / "officer-sign.pub"
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    bundle = tmp_path / "bundle.json"
    shipped = (PACKS_DIR / "cn-secrecy.yaml").read_text(encoding="utf-8")  # what `extends` names, signed along
    files = [("cn-secrecy.yaml", shipped), *members]
    bundle.write_text(json.dumps(make_bundle([(n, t.encode()) for n, t in files], key), ensure_ascii=False))
    return bundle, pub


def _rules(ps: PolicySet, level: str, loc: dict, host_role: str = "classified", host_level: str = "top_secret") -> set[str]:
    marking = {"secret": "机密★10年", "top_secret": "绝密★长期", "confidential": "秘密★5年"}[level]
    rec = {"path": "/media/zhang/BAOMI/通知.docx", "sha256": SHA, "errors": [],
           "findings": [{"level": level, "kind": "marking", "text": marking, "member": None,
                         "period": {"years": 10}, "rule": "cn.marking", "confidence": 0.98}]}
    ctx = ps.context()
    out: set[str] = set()
    for ev in events_for_scan_record(rec, host_role=host_role, host_level=host_level, location=loc["kind"],
                                     operation="create", medium_id=loc.get("medium_id"),
                                     medium_level=loc.get("medium_level")):
        out |= {v.rule_id for v in ps.evaluate(ev, ctx)}
    return out


def test_register_in_a_signed_bundle_decides_registered_vs_unregistered(tmp_path: Path) -> None:
    bundle, pub = _signed(tmp_path, [("site.yaml", SITE), ("approvals.yaml", APPROVALS)])
    ps = load_policy([str(bundle)], require_signature=True, trusted_keys=[str(pub)])
    stick = medium_from_properties(STICK)
    assert stick is not None
    # the same stick on another port (sdd, another USB path) is the same registered medium
    moved = medium_from_properties({**STICK, "DEVNAME": "/dev/sdd1", "MINOR": "49",
                                    "ID_PATH": "pci-0000:00:14.0-usb-0:4:1.0-scsi-0:0:0:0"})
    assert moved is not None
    registry = ps.params["registered_media"]
    loc = classify_location(stick, registry)
    assert loc == classify_location(moved, registry)
    assert loc["kind"] == "classified_medium" and loc["medium_level"] == "secret"
    assert loc["register_id"] == "USB-0042" and loc["holder"] == "机要室 张三"

    other = medium_from_properties({**STICK, "ID_SERIAL_SHORT": "0401AB19E8F3"})
    assert other is not None
    unregistered = classify_location(other, registry)
    assert unregistered["kind"] == "removable_medium"

    # a secret file onto an unregistered stick: the unregistered-medium rule blocks it
    assert "CN-SEC-004" in _rules(ps, "secret", unregistered)
    # onto the stick registered at secret, with the transfer approved: nothing to report
    assert _rules(ps, "secret", loc) == set()
    # a top-secret file onto it: above the medium's level
    assert "CN-SEC-003" in _rules(ps, "top_secret", loc)


def test_without_approval_only_the_transfer_record_is_missing(tmp_path: Path) -> None:
    bundle, pub = _signed(tmp_path, [("site.yaml", SITE)])
    ps = load_policy([str(bundle)], require_signature=True, trusted_keys=[str(pub)])
    stick = medium_from_properties(STICK)
    assert stick is not None
    assert _rules(ps, "secret", classify_location(stick, ps.params["registered_media"])) == {"CN-SEC-011"}


@pytest.mark.parametrize("entry, field", [
    ("{fs_uuid: 5E6F-7A8B, level: secret}", "serial"),
    ("{serial: 0401AB19E8F3, level: secret}", "fs_uuid"),
    ("{serial: 0401AB19E8F3, fs_uuid: 5E6F-7A8B, level: 机密}", "level"),
    ("{serial: 0401AB19E8F3, fs_uuid: 5E6F-7A8B, level: secret, colour: red}", "colour"),
])
def test_a_bad_register_refuses_the_policy_with_its_line(tmp_path: Path, entry: str, field: str) -> None:
    text = SITE + f"    - {entry}\n"
    site = tmp_path / "site.yaml"
    site.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as e:
        load_policy([str(site)])
    assert len(e.value.issues) == 1, [str(i) for i in e.value.issues]
    issue = e.value.issues[0]
    assert issue.file == str(site) and issue.line == 8
    assert issue.field == f"params.registered_media[1].{field}"
    # signed by a trusted key, the bundle is refused all the same: no half-applied register
    bundle, pub = _signed(tmp_path, [("site.yaml", text)])
    with pytest.raises((PolicyError, SignatureError)):
        load_policy([str(bundle)], require_signature=True, trusted_keys=[str(pub)])


def test_the_same_medium_registered_twice_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(SITE + "    - {serial: 60A44C3FACF3B1A0B9C1, fs_uuid: 1A2B-3C4D, level: top_secret}\n",
                    encoding="utf-8")
    with pytest.raises(PolicyError, match="same medium|同一介质"):
        load_policy([str(site)])


def test_shipped_pack_loads_with_an_empty_register() -> None:
    ps = load_policy(["cn-secrecy"])
    assert ps.params["registered_media"] == []


@pytest.mark.parametrize("registered, host_role, expected", [
    (True, "unclassified", {"CN-SEC-015"}),   # a classified stick on an office PC
    (True, "classified", set()),
    (False, "unclassified", set()),            # an ordinary stick: its files are judged, not the mount
])
def test_mount_of_a_registered_medium_on_an_unclassified_host(tmp_path: Path, registered: bool, host_role: str,
                                                              expected: set[str]) -> None:
    from agents.media import device_event

    bundle, pub = _signed(tmp_path, [("site.yaml", SITE)])
    ps = load_policy([str(bundle)], require_signature=True, trusted_keys=[str(pub)])
    stick = medium_from_properties(STICK if registered else {**STICK, "ID_SERIAL_SHORT": "0401AB19E8F3"})
    assert stick is not None
    loc = classify_location(stick, ps.params["registered_media"])
    ev = device_event(stick, loc, host_role=host_role, host_level="secret" if host_role == "classified" else None,
                      host_id="pc-office-17", time="2026-12-05T12:00:00+00:00")
    vs = ps.evaluate(ev, ps.context())
    assert {v.rule_id for v in vs} == expected
    if expected:
        assert "USB-0042" in vs[0].rationale_zh  # the register number the officer knows it by
