"""`baomi attest`: signed self-attestation, non-interactive and interactive, and its status."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from policies import keys
from policies.attest import (
    attestation_events,
    facts_for_user,
    make_record,
    read_records,
    verify_record,
)
from policies.engine import load_policy

BABU = load_policy(["babu"])
ITEMS = BABU.checklist


@pytest.fixture
def user_key(tmp_path: Path) -> Path:
    k = keys.generate_private_key()
    keys.save_private_key(k, tmp_path / "u.key")
    (tmp_path / "u.pub").write_bytes(keys.public_key_pem(k))
    return tmp_path / "u.key"


def _answers(tmp_path: Path, no: tuple[str, ...] = ()) -> Path:
    p = tmp_path / "answers.yaml"
    p.write_text("".join(f"{i.id}: {'否' if i.id in no else '是'}\n" for i in ITEMS), encoding="utf-8")
    return p


def test_attest_with_answers_file_signs_and_records(tmp_path, user_key, run):
    store = tmp_path / "att.jsonl"
    r = run("attest", "--user", "mishu1", "--key", user_key, "--answers", _answers(tmp_path),
            "--store", store)
    assert r.exit_code == 0, r.output
    (rec,) = read_records(store)
    assert rec["user"] == "mishu1" and verify_record(rec)
    assert [i["id"] for i in rec["items"]] == [i.id for i in ITEMS]
    assert all(i["answer"] is True for i in rec["items"])
    assert rec["items"][7]["text_zh"].startswith("不泄露国家机密")  # the wording attested is recorded
    assert oct(store.stat().st_mode & 0o777) == "0o600"


def test_a_no_answer_is_a_violation(tmp_path, user_key, run):
    r = run("--lang", "en", "attest", "--user", "mishu1", "--key", user_key,
            "--answers", _answers(tmp_path, no=("babu-8",)), "--store", tmp_path / "s.jsonl")
    assert r.exit_code == 1
    assert "BABU-8" in r.output and "clause 8" in r.output


def test_interactive_attestation(tmp_path, user_key, run):
    store = tmp_path / "s.jsonl"
    answers = "y\n" * 6 + "n\n" + "y\n"
    r = run("attest", "--user", "mishu2", "--key", user_key, "--store", store, input=answers)
    assert r.exit_code == 1
    assert "不在家里接待有关办事人员" in r.output  # the zh-CN wording is shown
    assert "BABU-7" in r.output
    (rec,) = read_records(store)
    assert [i["answer"] for i in rec["items"]] == [True] * 6 + [False, True]


def test_answers_file_must_answer_everything(tmp_path, user_key, run):
    p = tmp_path / "a.yaml"
    p.write_text("babu-1: 是\nbabu-2: maybe\nbabu-99: 是\n", encoding="utf-8")
    r = run("--lang", "en", "attest", "--user", "u", "--key", user_key, "--answers", p, "--store", tmp_path / "s")
    assert r.exit_code == 2
    assert "babu-2" in r.output and "babu-99" in r.output and "babu-8: not answered" in r.output
    assert not (tmp_path / "s").exists()


def test_status_missing_overdue_ok(tmp_path, user_key, run):
    store = tmp_path / "s.jsonl"
    k = keys.load_private_key(user_key)
    from policies.attest import append_record

    append_record(store, make_record("a", dict.fromkeys([i.id for i in ITEMS], True), ITEMS, k,
                                     when=datetime(2026, 5, 1, tzinfo=UTC)))
    append_record(store, make_record("b", dict.fromkeys([i.id for i in ITEMS], True), ITEMS, k,
                                     when=datetime(2026, 1, 1, tzinfo=UTC)))
    roster = tmp_path / "roster.yaml"
    roster.write_text("a: [领导秘书]\nb: [领导秘书]\nc: [领导秘书]\nd: [办公室]\n", encoding="utf-8")
    reg = tmp_path / "registered"
    reg.mkdir()
    for u in ("a", "b"):
        (reg / f"{u}.pub").write_bytes((tmp_path / "u.pub").read_bytes())
    r = run("--lang", "en", "attest", "--status", "--store", store, "--roster", roster, "--today", "2026-05-20",
            "--user-keys", reg)
    assert r.exit_code == 1
    lines = r.output.splitlines()
    assert "a: ok (last 2026-05-01)" in lines
    assert "b: overdue (last 2026-01-01)" in lines
    assert "c: missing (last —)" in lines
    out = r.output
    assert "BABU-ATTEST-OVERDUE" in out and "BABU-ATTEST-MISSING" in out
    assert out.count("✗") == 2  # d is not in the attested group
    roster.write_text("a: [领导秘书]\n", encoding="utf-8")
    r = run("attest", "--status", "--store", store, "--roster", roster, "--today", "2026-05-20", "--user-keys", reg)
    assert r.exit_code == 0


def test_status_needs_registered_keys_and_refuses_self_signed_forgeries(tmp_path, user_key, run):
    """Issue 11: anyone could write a self-signed "a kept every rule" record into the store."""
    from policies.attest import append_record

    store = tmp_path / "s.jsonl"
    forger = keys.generate_private_key()
    append_record(store, make_record("a", dict.fromkeys([i.id for i in ITEMS], True), ITEMS, forger,
                                     when=datetime(2026, 5, 1, tzinfo=UTC)))
    roster = tmp_path / "roster.yaml"
    roster.write_text("a: [领导秘书]\n", encoding="utf-8")
    r = run("--lang", "en", "attest", "--status", "--store", store, "--roster", roster, "--today", "2026-05-20")
    assert r.exit_code == 2 and "registered public keys" in r.output
    reg = tmp_path / "registered"
    reg.mkdir()
    (reg / "a.pub").write_bytes((tmp_path / "u.pub").read_bytes())  # a's real key
    r = run("--lang", "en", "attest", "--status", "--store", store, "--roster", roster, "--today", "2026-05-20",
            "--user-keys", reg)
    assert r.exit_code == 1 and "BABU-ATTEST-MISSING" in r.output, "the forged record does not count"


def test_tampered_or_foreign_key_records_do_not_count(tmp_path, user_key):
    k = keys.load_private_key(user_key)
    good = make_record("a", dict.fromkeys([i.id for i in ITEMS], True), ITEMS, k)
    bad = json.loads(json.dumps(good))
    bad["items"][0]["answer"] = False
    assert verify_record(good) and not verify_record(bad)
    f = facts_for_user("a", [bad], today=good["time"][:10], period_days=30, items=ITEMS)
    assert f.status == "invalid"
    other = keys.generate_private_key()
    registered = {"a": keys.key_id(other)}
    assert not verify_record(good, registered)
    evs = attestation_events([good, None], roster={"a": ["领导秘书"]}, today=good["time"][:10],
                             period_days=30, items=ITEMS, user_keys=registered)
    assert evs[0].attestation is not None and evs[0].attestation.status == "invalid"
    assert BABU.fired(evs[0], BABU.context()) == ["BABU-ATTEST-MISSING"]


def test_unanswered_item_counts_as_no_when_checklist_grows(tmp_path, user_key):
    k = keys.load_private_key(user_key)
    rec = make_record("a", dict.fromkeys([i.id for i in ITEMS[:7]], True), ITEMS[:7], k)
    f = facts_for_user("a", [rec], today=rec["time"][:10], period_days=30, items=ITEMS)
    assert f.status == "ok" and f.failed == ("babu-8",)


def test_signed_but_malformed_record_is_handled(user_key):
    k = keys.load_private_key(user_key)
    rec = make_record("a", {}, ITEMS, k)
    body = {kk: v for kk, v in rec.items() if kk != "signature"}
    body["items"] = 5  # well signed, nonsense inside
    body["signature"] = keys.sign(k, keys.canonical_json(body))
    f = facts_for_user("a", [body], today=rec["time"][:10], period_days=30, items=ITEMS)
    assert f.status == "ok" and f.failed == tuple(i.id for i in ITEMS)  # nothing answered: all "no"
