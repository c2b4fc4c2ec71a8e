"""`baomi attest`: the periodic signed self-attestation of the 八不 rules' conduct clauses.

It lives in agents/ because `--send` records the signed attestation through the audit client
(reports/), which the policies package must not know; the checklist, records and evaluation are
policies.attest and the policy engine.
"""
from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Any

import click

from policies import keys
from policies.attest import (
    append_record,
    attestation_events,
    make_record,
    parse_answers,
    read_records,
)
from policies.cli import (
    EXIT_FOUND,
    EXIT_OK,
    _echo_violation,
    _fail,
    _guard,
    _load,
    _report_violations,
    _today,
)
from policies.engine import PolicySet
from policies.model import Issue
from policies.packs import PolicyError
from policies.yamlload import load_located_file
from scanner.i18n import lang_option, tr


def _default_store() -> str:
    base = os.environ.get("BAOMI_HOME") or str(Path.home() / ".local" / "share" / "baomi")
    return str(Path(base) / "attestations.jsonl")


def _roster(ps: PolicySet, roster_file: str | None, store_records: list[Any]) -> dict[str, list[str]]:
    group = str(ps.params.get("attest_group", ""))
    raw: Any = ps.params.get("attest_roster") or {}
    if roster_file:
        raw = load_located_file(roster_file)
    if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
        raise PolicyError([Issue(roster_file or "params.attest_roster", None, None, "attest_roster",
                                 tr("应为映射：用户 → 组列表", "expected a mapping user → list of groups"))])
    roster = {str(u): [str(g) for g in gs] for u, gs in raw.items()}
    if not roster:  # no roster configured: whoever attested belongs to the group
        for r in store_records:
            if isinstance(r, dict) and isinstance(r.get("user"), str):
                roster.setdefault(r["user"], [group])
    return roster


def _send_attestation(state: str, record: dict[str, Any]) -> None:
    """The signed record (answers and signature; no document content) as an `attestation` event,
    so the officer's collector holds it beside the user-editable local store."""
    from reports.client import AuditClient

    payload = {"user": record["user"], "time": record["time"], "checklist": record["checklist"],
               "key_id": record["key_id"], "public_key": record["public_key"], "signature": record["signature"],
               "answers": {i["id"]: i["answer"] for i in record["items"]},
               "clauses": {i["id"]: i["clause"] for i in record["items"]}}
    with AuditClient(state) as client:
        client.submit("attestation", payload)
        res = client.flush(timeout=10)
    click.echo(tr(f"已记入审计日志（确认 {res.acked} 条，待发送 {res.pending} 条）",
                  f"recorded in the audit log ({res.acked} acknowledged, {res.pending} pending)"))


def _user_keys(specs: tuple[str, ...], keys_dir: str | None = None) -> dict[str, str] | None:
    """Registered public keys of the users (USER=PUBKEY options, and/or USER.pub files in a
    directory the officer keeps): only records signed by these keys count."""
    if not specs and not keys_dir:
        return None
    out = {}
    if keys_dir:
        for f in sorted(Path(keys_dir).glob("*.pub")):
            out[f.stem] = keys.key_id(keys.load_public_key(f))
    for s in specs:
        user, _, key = s.partition("=")
        if not user or not key:
            _fail(tr(f"--user-key 格式应为 用户=公钥：{s}", f"--user-key takes USER=PUBKEY: {s}"))
        out[user] = keys.key_id(keys.load_public_key(key))
    return out


@click.command("attest")
@click.option("--policy", "-p", "policies", multiple=True, metavar="PACK",
              help="Packs holding the checklist (default: babu) / 自查清单所在策略包")
@click.option("--user", default=None, help="Who attests (default: the login name) / 承诺人")
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The user's private key / 本人签名私钥")
@click.option("--answers", "answers_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="YAML/JSON answers (item id: yes/no) instead of prompts / 答案文件")
@click.option("--store", default=None, help="Attestation store (JSONL) / 承诺记录文件")
@click.option("--status", is_flag=True, help="Report attestation violations instead of attesting / 检查承诺状态")
@click.option("--roster", "roster_file", default=None, help="YAML user → groups (default: params.attest_roster)")
@click.option("--user-key", "user_key_specs", multiple=True, metavar="USER=PUBKEY",
              help="Registered public key of a user (status: records by other keys are invalid)")
@click.option("--user-keys", "user_keys_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Directory of registered user keys USER.pub (status) / 已登记的人员公钥目录")
@click.option("--send", "send_state", type=click.Path(file_okay=False), default=None, metavar="STATE",
              help="Also record the signed attestation in the audit log (an enrolled state dir) / 同时记入审计日志")
@click.option("--today", default=None, metavar="YYYY-MM-DD", help="Evaluation date")
@click.option("--require-signature", is_flag=True, help="Refuse unsigned policies")
@click.option("--trust", "trusted", multiple=True, metavar="PUBKEY", help="Trusted officer public key")
@lang_option
@_guard
def attest_cmd(policies: tuple[str, ...], user: str | None, key_path: str | None, answers_file: str | None,
               store: str | None, status: bool, roster_file: str | None, user_key_specs: tuple[str, ...],
               user_keys_dir: str | None, send_state: str | None,
               today: str | None, require_signature: bool, trusted: tuple[str, ...]) -> None:
    """“八不”定期自查承诺：逐条作答、签名、记录 / periodic signed self-attestation (八不).

    Walks through each checklist item (zh-CN wording), signs the answers with the user's key and
    appends them to the store. With --status, reports missing, overdue or failed attestations.
    A "no" answer, or a missing or overdue attestation, is a violation (exit 1).
    """
    ps = _load(policies, require_signature, trusted, default=("babu",))
    if not ps.checklist:
        _fail(tr("所选策略包没有自查清单", "the selected packs have no checklist"))
    store = store or _default_store()
    day = _today(today)
    period = ps.params.get("attest_period_days", 30)
    if not isinstance(period, int) or isinstance(period, bool) or period <= 0:
        _fail(tr("params.attest_period_days 应为正整数", "params.attest_period_days must be a positive integer"))
    if status:
        registered = _user_keys(user_key_specs, user_keys_dir)
        if registered is None:
            # A record signed by a key that came with it proves only that someone signed it: anyone
            # can write "user X kept every rule" into the store with a fresh key of their own.
            _fail(tr("--status 需要已登记的人员公钥（--user-keys 目录 或 --user-key 用户=公钥）："
                     "自带公钥的签名不能证明是本人承诺",
                     "--status needs the users' registered public keys (--user-keys DIR or --user-key USER=PUBKEY): "
                     "a record signed by a key it carries itself proves nothing"))
        records = read_records(store)
        roster = _roster(ps, roster_file, records)
        events = attestation_events(records, roster=roster, today=day, period_days=period,
                                    items=ps.checklist, user_keys=registered)
        ctx = ps.context(day)
        found = False
        for ev in events:
            vs = ps.evaluate(ev, ctx)
            att = ev.attestation
            assert att is not None
            click.echo(f"{ev.actor.user}: {att.status} ({tr('上次', 'last')} {att.last or '—'})")
            for v in vs:
                found = True
                _echo_violation(v)
        if not events:
            click.echo(tr("名册为空：无需自查的人员", "empty roster: nobody is required to attest"))
        sys.exit(EXIT_FOUND if found else EXIT_OK)

    if key_path is None:
        _fail(tr("需要 --key（本人签名私钥）", "--key (the user's private key) is required"))
    user = user or getpass.getuser()
    items = ps.checklist
    if answers_file:
        answers = parse_answers(load_located_file(answers_file), items, answers_file)
    else:
        click.echo(tr(f"“八不”自查承诺（{user}）：请逐条如实回答。",
                      f"八不 self-attestation for {user}: answer each item truthfully."))
        answers = {}
        for n, it in enumerate(items, 1):
            text = tr(it.text_zh, f"{it.text_en} ({it.text_zh})")
            answers[it.id] = click.confirm(tr(f"[{n}/{len(items)}] 本期内我做到了：{text}",
                                              f"[{n}/{len(items)}] This period I kept: {text}"), default=None)
    if send_state and not (Path(send_state) / "state.json").is_file():
        _fail(tr(f"{send_state} 不是已登记的审计状态目录", f"{send_state} holds no enrolled audit identity"))
    key = keys.load_private_key(key_path)
    record = make_record(user, answers, items, key)
    append_record(store, record)
    if send_state:
        _send_attestation(send_state, record)
    click.echo(tr(f"已签名记录到 {store}（密钥 {record['key_id']}）",
                  f"signed and recorded in {store} (key {record['key_id']})"))
    groups = [str(ps.params.get("attest_group", ""))]
    ev = attestation_events([record], roster={user: groups}, today=day, period_days=period,
                            items=items)[0]
    vs = ps.evaluate(ev, ps.context(day))
    _report_violations(vs)


