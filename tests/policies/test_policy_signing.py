"""Signed bundles: a tampered bundle (one byte, a rule removed, another key) is refused."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from policies import keys
from policies.engine import load_policy
from policies.signing import SignatureError, make_bundle, read_bundle, sign_file

pytestmark = pytest.mark.usefixtures("en")

SITE = """\
baomi_policy: 1
pack: site
extends: [cn-secrecy]
rules:
  - id: CN-SEC-032
    enabled: false
"""


@pytest.fixture
def officer(tmp_path: Path):
    k = keys.generate_private_key()
    keys.save_private_key(k, tmp_path / "officer.key")
    (tmp_path / "officer.pub").write_bytes(keys.public_key_pem(k))
    return k, tmp_path / "officer.pub"


@pytest.fixture
def bundle(tmp_path: Path, officer, run) -> Path:
    (tmp_path / "site.yaml").write_text(SITE, encoding="utf-8")
    out = tmp_path / "bundle.json"
    r = run("policy", "sign", tmp_path / "site.yaml", "--key", tmp_path / "officer.key", "-o", out)
    assert r.exit_code == 0, r.output
    return out


def test_signed_bundle_loads_with_trusted_key(bundle, officer):
    _, pub = officer
    ps = load_policy([str(bundle)], require_signature=True, trusted_keys=[str(pub)])
    assert ps.pack_names == ("cn-secrecy", "site")  # the extended shipped pack travels inside
    assert "CN-SEC-032" not in {r.id for r in ps.rules}
    assert ps.signers == (keys.key_id(officer[0]),)


def test_one_byte_changed_anywhere_in_content_is_refused(bundle, officer, tmp_path):
    _, pub = officer
    body = json.loads(bundle.read_text(encoding="utf-8"))
    text = body["files"][0]["text"]
    for pos in range(0, len(text), max(1, len(text) // 25)):
        b = json.loads(json.dumps(body))
        ch = text[pos]
        b["files"][0]["text"] = text[:pos] + ("X" if ch != "X" else "Y") + text[pos + 1:]
        with pytest.raises(SignatureError):
            _verify(tmp_path, b, pub)


def test_hash_recomputed_by_attacker_still_refused(bundle, officer, tmp_path):
    import hashlib

    _, pub = officer
    body = json.loads(bundle.read_text(encoding="utf-8"))
    t = body["files"][1]["text"].replace("enabled: false", "enabled: true")
    body["files"][1]["text"] = t
    body["files"][1]["sha256"] = hashlib.sha256(t.encode()).hexdigest()
    with pytest.raises(SignatureError, match="does not verify"):
        _verify(tmp_path, body, pub)


def test_rule_removed_is_refused(bundle, officer, tmp_path):
    _, pub = officer
    body = json.loads(bundle.read_text(encoding="utf-8"))
    text = body["files"][0]["text"]
    start = text.index("  - id: CN-SEC-008")
    end = text.index("  - id: CN-SEC-009")
    body["files"][0]["text"] = text[:start] + text[end:]
    with pytest.raises(SignatureError):
        _verify(tmp_path, body, pub)


def test_member_removed_or_reordered_is_refused(bundle, officer, tmp_path):
    _, pub = officer
    body = json.loads(bundle.read_text(encoding="utf-8"))
    b1 = dict(body, files=body["files"][:1])
    b2 = dict(body, files=list(reversed(body["files"])))
    for b in (b1, b2):
        with pytest.raises(SignatureError):
            _verify(tmp_path, b, pub)


def test_signature_from_another_key_is_refused(bundle, officer, tmp_path):
    _, pub = officer
    body = json.loads(bundle.read_text(encoding="utf-8"))
    mallory = keys.generate_private_key()
    forged = make_bundle([(f["name"], f["text"].encode()) for f in body["files"]], mallory)
    with pytest.raises(SignatureError, match="not a trusted key"):
        _verify(tmp_path, forged, pub)
    # keeping the officer's key id but signing with another key
    forged["key_id"] = body["key_id"]
    forged["signature"] = keys.sign(mallory, keys.canonical_json({k: v for k, v in forged.items()
                                                                  if k != "signature"}))
    with pytest.raises(SignatureError, match="does not verify"):
        _verify(tmp_path, forged, pub)


def test_unsigned_inputs_refused_when_signature_required(tmp_path, officer):
    _, pub = officer
    p = tmp_path / "site.yaml"
    p.write_text(SITE, encoding="utf-8")
    with pytest.raises(SignatureError, match="unsigned"):
        load_policy([str(p)], require_signature=True, trusted_keys=[str(pub)])
    with pytest.raises(SignatureError, match="not inside a signed bundle"):
        load_policy(["cn-secrecy"], require_signature=True, trusted_keys=[str(pub)])
    with pytest.raises(SignatureError, match="no trusted key"):
        load_policy(["cn-secrecy"], require_signature=True)


def test_detached_signature_of_a_pack_file(tmp_path, officer):
    k, pub = officer
    p = tmp_path / "own.yaml"
    p.write_text("baomi_policy: 1\npack: own\nrules: []\n", encoding="utf-8")
    sign_file(p, k)
    assert load_policy([str(p)], require_signature=True, trusted_keys=[str(pub)]).pack_names == ("own",)
    p.write_text("baomi_policy: 1\npack: own\nrules: [] \n", encoding="utf-8")  # one byte
    with pytest.raises(SignatureError, match="altered"):
        load_policy([str(p)], require_signature=True, trusted_keys=[str(pub)])


def test_cli_refuses_tampered_bundle_exit_2(bundle, officer, run, tmp_path):
    _, pub = officer
    r = run("policy", "verify", bundle, "--trust", pub)
    assert r.exit_code == 0 and "cn-secrecy.yaml" in r.output
    raw = bundle.read_bytes()
    i = raw.index(b"critical")
    (tmp_path / "t.json").write_bytes(raw[:i] + b"C" + raw[i + 1:])
    r = run("--lang", "en", "policy", "check", tmp_path / "t.json", "--require-signature", "--trust", pub)
    assert r.exit_code == 2 and "signature refused" in r.output
    other = keys.generate_private_key()
    (tmp_path / "other.pub").write_bytes(keys.public_key_pem(other))
    r = run("policy", "verify", bundle, "--trust", tmp_path / "other.pub")
    assert r.exit_code == 2


def _verify(tmp: Path, body: dict, pub: Path) -> None:
    p = tmp / "x.json"
    p.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    read_bundle(p, [str(pub)], require_signature=True)
    load_policy([str(p)], require_signature=True, trusted_keys=[str(pub)])


def test_bundle_resolves_extends_by_member_file_name(tmp_path, officer, run):
    _, pub = officer
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "base.yaml").write_text("baomi_policy: 1\npack: base\nextends: [cn-secrecy]\nrules: []\n",
                                   encoding="utf-8")
    (sub / "site.yaml").write_text("baomi_policy: 1\npack: site2\nextends: [base.yaml]\nrules: []\n",
                                   encoding="utf-8")
    out = tmp_path / "b.json"
    assert run("policy", "sign", sub / "site.yaml", "--key", tmp_path / "officer.key", "-o", out).exit_code == 0
    (sub / "base.yaml").unlink()  # the bundle must not need the files it was made from
    ps = load_policy([str(out)], require_signature=True, trusted_keys=[str(pub)])
    assert ps.pack_names == ("cn-secrecy", "base", "site2")


# -- rollback and expiry (issue 14, item 4) --------------------------------------------------------

def test_older_signed_bundle_is_refused_as_rollback(tmp_path, officer, run):
    """A validly signed older bundle (version 5 after version 6 was accepted) is refused; the
    newer one keeps loading; the mark survives across processes (the CLI in a fresh run)."""
    _, pub = officer
    (tmp_path / "site.yaml").write_text(SITE, encoding="utf-8")
    for v in (5, 6):
        r = run("--lang", "en", "policy", "sign", tmp_path / "site.yaml", "--key", tmp_path / "officer.key",
                "-o", tmp_path / f"v{v}.json", "--bundle-version", v, "--valid-days", 30)
        assert r.exit_code == 0 and f"version {v}, valid until" in r.output, r.output
    load_policy([str(tmp_path / "v6.json")], require_signature=True, trusted_keys=[str(pub)])
    with pytest.raises(Exception, match="rollback refused"):
        load_policy([str(tmp_path / "v5.json")], require_signature=True, trusted_keys=[str(pub)])
    load_policy([str(tmp_path / "v6.json")], require_signature=True, trusted_keys=[str(pub)])
    r = run("--lang", "en", "policy", "check", tmp_path / "v5.json", "--require-signature", "--trust", pub)
    assert r.exit_code == 2 and "rollback refused" in r.output
    # editing the version of the old bundle breaks its signature
    body = json.loads((tmp_path / "v5.json").read_text(encoding="utf-8"))
    body["version"] = 99
    with pytest.raises(SignatureError, match="does not verify"):
        _verify(tmp_path, body, pub)


def test_expired_bundle_is_refused(tmp_path, officer):
    key, pub = officer
    solo = b"baomi_policy: 1\npack: solo\nrules: []\n"
    body = make_bundle([("solo.yaml", solo)], key, created="2020-01-01T00:00:00+00:00", valid_days=30)
    assert body["expires"].startswith("2020-01-31")
    with pytest.raises(SignatureError, match="expired on 2020-01-31"):
        _verify(tmp_path, body, pub)
    fresh = make_bundle([("solo.yaml", solo)], key)
    _verify(tmp_path, fresh, pub)


def test_hwm_file_is_private_and_never_followed_through_a_symlink(tmp_path):
    import os
    import stat

    from policies.hwm import check_and_record

    marks = tmp_path / "state" / "hwm.json"
    check_and_record("k1", 3, "b", marks)
    assert stat.S_IMODE(marks.stat().st_mode) == 0o600 and json.loads(marks.read_text()) == {"k1": 3}
    target = tmp_path / "victim"
    target.write_text("{}")
    marks.unlink()
    os.symlink(target, marks)
    with pytest.raises(SignatureError):
        check_and_record("k1", 4, "b", marks)  # reading through the planted link is refused
    assert target.read_text() == "{}"
