"""Approvals register: matching rules, validation, signing, and its effect on decisions."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from policies import keys
from policies.approvals import Approval, ApprovalRegister, approval_kind, parse_register
from policies.engine import PolicySet, load_policy
from policies.model import event_from_dict
from policies.packs import PolicyError
from policies.signing import SignatureError, trusted_key_map, verify_file
from policies.yamlload import load_located

H = "ab" * 32
BASE = load_policy(["cn-secrecy"])


def _ev(op: str, loc: dict | None = None, user: str = "zs", time: str | None = None, h: str = H):
    d = {"event": "file", "operation": op, "host": {"role": "classified", "level": "secret"},
         "actor": {"user": user}, "location": loc or {}, "file": {"path": "/d/a", "level": "secret", "sha256": h}}
    if time:
        d["time"] = time
    return event_from_dict(d)


@pytest.mark.parametrize("approval,event,covered", [
    (Approval("A", "copy", H, "zs", "*", "2026-12-31", "L"), _ev("copy"), True),
    (Approval("A", "copy", H, "zs", "*", "2026-12-31", "L"), _ev("print"), True),
    (Approval("A", "copy", H, "zs", "*", "2026-12-31", "L"), _ev("delete"), False),      # wrong kind
    (Approval("A", "copy", H, "ls", "*", "2026-12-31", "L"), _ev("copy"), False),        # wrong person
    (Approval("A", "copy", H, "*", "*", "2026-12-31", "L"), _ev("copy", user="x"), True),
    (Approval("A", "copy", "cd" * 32, "zs", "*", "2026-12-31", "L"), _ev("copy"), False),  # other content
    (Approval("A", "copy", H, "zs", "*", "2026-05-31", "L"), _ev("copy"), False),        # expired
    (Approval("A", "copy", H, "zs", "*", "2026-06-01", "L"), _ev("copy"), True),         # last valid day
    (Approval("A", "copy", H, "zs", "*", "2026-12-31", "L"), _ev("copy", time="2027-01-01"), False),
    (Approval("A", "transfer", H, "zs", "USB-1", "2026-12-31", "L"),
     _ev("move", {"kind": "classified_medium", "medium_id": "USB-1"}), True),
    (Approval("A", "transfer", H, "zs", "USB-1", "2026-12-31", "L"),
     _ev("move", {"kind": "classified_medium", "medium_id": "USB-2"}), False),           # other medium
    (Approval("A", "transfer", H, "zs", "classified_medium", "2026-12-31", "L"),
     _ev("create", {"kind": "classified_medium", "medium_id": "USB-2"}), True),
    (Approval("A", "destroy", H, "zs", "elsewhere", "2026-12-31", "L"), _ev("delete"), True),  # `to` unused
])
def test_matching(approval, event, covered):
    reg = ApprovalRegister.of([approval])
    assert (reg.covering(event, "2026-06-01") is not None) is covered


def test_no_hash_no_approval():
    reg = ApprovalRegister.of([Approval("A", "copy", H, "*", "*", "2099-01-01", "L")])
    ev = event_from_dict({"event": "file", "operation": "copy", "file": {"level": "secret"}})
    assert reg.covering(ev, "2026-06-01") is None
    assert approval_kind(_ev("modify")) is None


def test_register_validation_is_located():
    text = (
        "baomi_approvals: 1\n"
        "approvals:\n"
        '  - {id: A1, operation: copy, sha256: abc, who: zs, until: "2026-12-31", approved_by: L}\n'
        f"  - {{id: A2, operation: shred, sha256: {H}, who: zs, until: tomorrow, approved_by: L}}\n"
        f'  - {{id: A1, operation: copy, sha256: {H}, who: zs, until: "2026-12-31", approved_by: L, colour: red}}\n'
    )
    with pytest.raises(PolicyError) as exc:
        parse_register(load_located(text, "r.yaml"), "r.yaml")
    got = {(i.line, i.field) for i in exc.value.issues}
    assert (3, "approvals[0].sha256") in got
    assert (4, "approvals[1].operation") in got and (4, "approvals[1].until") in got
    assert (5, "approvals[2].colour") in got


def test_approval_turns_violation_into_compliance():
    ev = _ev("delete")
    assert BASE.fired(ev, BASE.context("2026-06-01")) == ["CN-SEC-012"]
    ps = PolicySet(BASE.composed, ApprovalRegister.of([Approval("A", "destroy", H, "zs", "*", "2026-12-31", "L")]))
    assert ps.fired(ev, ps.context("2026-06-01")) == []


def test_cli_add_sign_list_and_use(tmp_path: Path, run):
    doc = tmp_path / "doc.txt"
    doc.write_bytes("秘密文件".encode())
    digest = hashlib.sha256(doc.read_bytes()).hexdigest()
    reg = tmp_path / "reg.yaml"
    r = run("approvals", "add", reg, "--id", "AP-1", "--operation", "destroy", "--file", doc,
            "--who", "zs", "--until", "2026-12-31", "--by", "李四")
    assert r.exit_code == 0, r.output
    k = keys.generate_private_key()
    keys.save_private_key(k, tmp_path / "o.key")
    (tmp_path / "o.pub").write_bytes(keys.public_key_pem(k))
    assert run("approvals", "sign", reg, "--key", tmp_path / "o.key").exit_code == 0
    r = run("--lang", "en", "approvals", "list", reg, "--trust", tmp_path / "o.pub")
    assert r.exit_code == 0 and "signed (key" in r.output and "AP-1" in r.output
    ps = load_policy(["cn-secrecy", str(reg)])
    assert ps.register.approvals[0].sha256 == digest
    ev = _ev("delete", h=digest)
    assert ps.fired(ev, ps.context("2026-06-01")) == []
    trusted = trusted_key_map([str(tmp_path / "o.pub")])
    assert verify_file(reg, reg.read_bytes(), trusted, require_signature=True) == keys.key_id(k)
    # an edited register is refused when signatures are required
    reg.write_text(reg.read_text(encoding="utf-8").replace("2026-12-31", "2029-12-31"), encoding="utf-8")
    with pytest.raises(SignatureError, match="altered"):
        load_policy([str(reg)], require_signature=True, trusted_keys=[str(tmp_path / "o.pub")])
    r = run("--lang", "en", "approvals", "list", reg, "--trust", tmp_path / "o.pub")
    assert "INVALID" in r.output
    # adding an approval removes the now stale signature
    r = run("approvals", "add", reg, "--id", "AP-2", "--operation", "copy", "--sha256", H,
            "--who", "*", "--until", "2026-12-31", "--by", "李四")
    assert r.exit_code == 0 and not (tmp_path / "reg.yaml.sig").exists()
    r = run("approvals", "add", reg, "--id", "AP-3", "--operation", "copy", "--sha256", "xyz",
            "--who", "*", "--until", "2026-12-31", "--by", "李四")
    assert r.exit_code == 2 and "sha256" in r.output
