"""Command line of the policies package: `baomi policy`, `baomi keys`, `baomi attest`,
`baomi approvals` (loaded lazily by agents/main.py).

Exit codes: 0 success / compliant; 1 violations found or test cases failed; 2 invalid input,
refused signature or usage error. Policy problems are printed as `file:line:col: field: message`,
never as a traceback.
"""
from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import click

from policies import keys
from policies.approvals import (
    Approval,
    ApprovalRegister,
    parse_register,
    write_register,
)
from policies.engine import (
    PolicySet,
    events_for_scan_record,
    load_policy,
    preferred_rationale,
    shipped_packs,
)
from policies.model import (
    Event,
    EventError,
    Issue,
    LocationKind,
    Operation,
    event_from_dict,
    parse_host,
)
from policies.packs import PACKS_DIR, PolicyError
from policies.signing import (
    SignatureError,
    make_bundle,
    read_bundle,
    sign_file,
    verify_file,
)
from policies.testing import SHIPPED_TESTS, run_tests
from policies.yamlload import YamlError, load_located, load_located_file
from scanner.i18n import lang_option, tr

EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2


def _fail(msg: str) -> NoReturn:
    click.echo(msg, err=True)
    sys.exit(EXIT_ERROR)


def _issues(issues: list[Issue]) -> NoReturn:
    for i in sorted(issues, key=lambda x: (x.file, x.line or 0, x.column or 0)):
        click.echo(str(i), err=True)
    click.echo(tr(f"共 {len(issues)} 处错误", f"{len(issues)} error(s)"), err=True)
    sys.exit(EXIT_ERROR)


def _guard(f: Callable[..., Any]) -> Callable[..., Any]:
    """Turn policy, signature and input errors into located messages and exit 2."""
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except (PolicyError, EventError) as exc:
            _issues(exc.issues)
        except YamlError as exc:
            _issues([exc.issue])
        except SignatureError as exc:
            _fail(tr(f"签名校验未通过：{exc}", f"signature refused: {exc}"))
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as exc:
            _fail(tr(f"错误：{exc}", f"error: {exc}"))
    return wrapper


def _policy_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--trust", "trusted", multiple=True, metavar="PUBKEY",
                     help="Trusted officer public key (PEM file or base64); repeatable / 受信任公钥")(f)
    f = click.option("--require-signature", is_flag=True,
                     help="Refuse unsigned or altered policies / 仅接受已签名策略")(f)
    f = click.option("--policy", "-p", "policies", multiple=True, metavar="PACK",
                     help="Pack name, pack YAML, approvals register or signed bundle; repeatable, "
                          "later overrides earlier / 策略包")(f)
    return f


def _load(policies: tuple[str, ...], require_signature: bool, trusted: tuple[str, ...],
          default: tuple[str, ...] = ("cn-secrecy",)) -> PolicySet:
    return load_policy(list(policies or default), require_signature=require_signature,
                       trusted_keys=trusted)


def _today(value: str | None) -> str:
    if value is None:
        return date.today().isoformat()
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        _fail(tr(f"日期格式错误：{value}（应为 YYYY-MM-DD）", f"bad date {value!r} (YYYY-MM-DD)"))


# =========================================================================== baomi policy

@click.group("policy")
@lang_option
def policy_group() -> None:
    """策略包：校验、解释、测试、签名 / policy packs: check, explain, test, sign."""


@policy_group.command("check")
@click.argument("files", nargs=-1, required=True)
@click.option("--require-signature", is_flag=True, help="Refuse unsigned or altered policies")
@click.option("--trust", "trusted", multiple=True, metavar="PUBKEY", help="Trusted public key")
@lang_option
@_guard
def check_cmd(files: tuple[str, ...], require_signature: bool, trusted: tuple[str, ...]) -> None:
    """校验策略包（逐行定位错误）/ validate packs, with line-precise errors.

    Each FILE is checked on its own, then all of them composed in the order given.
    """
    issues: list[Issue] = []
    for f in files:
        try:
            ps = load_policy([f], require_signature=require_signature, trusted_keys=trusted)
        except (PolicyError, EventError) as exc:
            issues.extend(exc.issues)
            continue
        except YamlError as exc:
            issues.append(exc.issue)
            continue
        click.echo(tr(f"通过 {f}：{len(ps.rules)} 条规则（{', '.join(ps.pack_names)}）",
                      f"OK {f}: {len(ps.rules)} rules ({', '.join(ps.pack_names)})"))
    if issues:
        _issues(issues)
    if len(files) > 1:
        ps = load_policy(list(files), require_signature=require_signature, trusted_keys=trusted)
        click.echo(tr(f"组合通过：{len(ps.rules)} 条规则", f"OK composed: {len(ps.rules)} rules"))


def _read_events(path: str) -> list[Any]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    text = text.strip()
    if not text:
        return []
    try:
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        pass
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise EventError([Issue(path, n, exc.colno, "", f"invalid JSON: {exc.msg}")]) from None
    return out


def _is_scan_record(obj: Any) -> bool:
    return isinstance(obj, dict) and "findings" in obj and "event" not in obj


@policy_group.command("explain")
@click.argument("event_file", metavar="EVENT.json")
@_policy_options
@click.option("--host-role", default=None, metavar="ROLE[:LEVEL]",
              help="For scan records: unclassified | classified:LEVEL / 主机类别")
@click.option("--host-level", default=None, help="For scan records: approved level of a classified host")
@click.option("--location", type=click.Choice([k.value for k in LocationKind]), default="local_disk",
              help="For scan records: where the files are (publication_gate: 公开前保密审查)")
@click.option("--operation", type=click.Choice([o.value for o in Operation]), default="create",
              help="For scan records: the operation")
@click.option("--today", default=None, metavar="YYYY-MM-DD", help="Evaluation date")
@click.option("--all", "show_all", is_flag=True, help="Also show rules that did not fire / 显示未触发规则")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@lang_option
@_guard
def explain_cmd(event_file: str, policies: tuple[str, ...], require_signature: bool,
                trusted: tuple[str, ...], host_role: str | None, host_level: str | None,
                location: str, operation: str, today: str | None, show_all: bool, fmt: str) -> None:
    """解释事件的判定：触发了哪些规则、依据什么 / every rule that fired for EVENT.json, and why.

    EVENT.json holds an event object, a list of them, JSON lines, or `baomi scan` records
    (with --host-role, and --location/--operation). `-` reads standard input, so that a
    publication gate can run `baomi scan --format jsonl DOC | baomi policy explain -
    --host-role unclassified --location publication_gate` and act on the exit code.
    """
    if host_role is not None:
        try:
            host_role, host_level = parse_host(host_role, host_level)
        except ValueError as exc:
            _fail(str(exc))
    ps = _load(policies, require_signature, trusted)
    ctx = ps.context(_today(today))
    events: list[Event] = []
    for i, obj in enumerate(_read_events(event_file)):
        if _is_scan_record(obj):
            if host_role is None:
                _fail(tr("扫描记录需要 --host-role", "scan records need --host-role"))
            events.extend(events_for_scan_record(obj, host_role=host_role, host_level=host_level,
                                                 location=location, operation=operation))
        else:
            events.append(event_from_dict(obj, f"{event_file}[{i}]"))
    found = False
    out_json = []
    for n, ev in enumerate(events, 1):
        traces = ps.explain(ev, ctx)
        violations = ps.evaluate(ev, ctx)
        found = found or bool(violations)
        if fmt == "json":
            out_json.append({"event": n, "kind": ev.kind, "operation": ev.operation,
                             "violations": [v.to_dict() for v in violations],
                             "rules": [{"rule": t.rule.id, "fired": t.fired,
                                        "steps": [{"test": s.text, "result": s.result} for s in t.steps]}
                                       for t in traces if t.applies and (t.fired or show_all)]})
            continue
        subject = ev.file.path if ev.file and ev.file.path else (ev.device.id if ev.device else ev.actor.user)
        click.echo(tr(f"事件 {n}（{ev.kind}/{ev.operation}）{subject or ''}",
                      f"event {n} ({ev.kind}/{ev.operation}) {subject or ''}"))
        by_id = {v.rule_id: v for v in violations}
        applicable = [t for t in traces if t.applies]
        if not violations:
            click.echo("  " + tr(f"无违规（检查了 {len(applicable)} 条适用规则）",
                                 f"no violation ({len(applicable)} applicable rules checked)"))
        for t in applicable:
            if not t.fired and not show_all:
                continue
            r = t.rule
            mark = "✗" if t.fired else "·"
            click.echo(f"  {mark} {r.id} [{r.severity.value}/{r.action.value}] {tr(r.title_zh, r.title_en)}")
            if t.fired:
                click.echo("      " + preferred_rationale(by_id[r.id]))
                click.echo("      " + tr("定义：", "defined at: ") + r.origin)
            for s in t.steps:
                click.echo("      " + "  " * s.depth + ("✓ " if s.result else "✗ ") + s.text)
    if fmt == "json":
        click.echo(json.dumps(out_json, ensure_ascii=False, indent=1))
    sys.exit(EXIT_FOUND if found else EXIT_OK)


@policy_group.command("test")
@click.argument("paths", nargs=-1)
@click.option("--policy", "-p", "policies", multiple=True, metavar="PACK",
              help="Packs for case files that name none")
@click.option("--require-coverage", is_flag=True,
              help="Fail unless every rule has a positive and a negative case / 要求每条规则正反用例齐全")
@click.option("--verbose", "-v", is_flag=True)
@lang_option
@_guard
def test_cmd(paths: tuple[str, ...], policies: tuple[str, ...], require_coverage: bool, verbose: bool) -> None:
    """运行表格式策略测试用例 / run table-driven policy test cases (default: the shipped ones)."""
    result = run_tests(list(paths) or [str(SHIPPED_TESTS)], list(policies) or None)
    for c in result.cases:
        if c.passed and not verbose:
            continue
        where = f"{c.file}:{c.line}" if c.line else c.file
        if c.passed:
            click.echo(f"PASS {where} {c.name}")
            continue
        click.echo(f"FAIL {where} {c.name}")
        if c.missing:
            click.echo("     " + tr("应触发未触发：", "expected, did not fire: ") + ", ".join(c.missing))
        if c.unexpected:
            click.echo("     " + tr("不应触发却触发：", "fired, not expected: ") + ", ".join(c.unexpected))
        click.echo("     " + tr("实际触发：", "fired: ") + (", ".join(c.fired) or "—"))
    uncovered = result.uncovered
    if uncovered and (require_coverage or verbose):
        for rid, why in uncovered.items():
            click.echo(tr(f"未覆盖 {rid}：", f"UNCOVERED {rid}: ") + why)
    n, nf = len(result.cases), len(result.failed)
    click.echo(tr(f"{n} 个用例，{n - nf} 通过，{nf} 失败；{len(result.coverage)} 条规则，"
                  f"{len(uncovered)} 条覆盖不全",
                  f"{n} cases, {n - nf} passed, {nf} failed; {len(result.coverage)} rules, "
                  f"{len(uncovered)} not fully covered"))
    if nf or (require_coverage and uncovered):
        sys.exit(EXIT_FOUND)


def _bundle_members(items: list[str]) -> list[tuple[str, bytes]]:
    """Files to sign, in precedence order, with every pack they extend pulled in first."""
    out: list[tuple[str, bytes]] = []
    names: set[str] = set()
    packs_seen: set[str] = set()

    def add(item: str, base: Path | None) -> None:
        p = Path(item)
        if base is not None and not p.is_absolute() and (base / p).exists():
            p = base / p
        if not p.exists():
            shipped = PACKS_DIR / f"{item}.yaml"
            if "/" in item or not shipped.is_file():
                raise PolicyError([Issue(item, None, None, "", tr("没有这个策略包文件或内置策略包", "no such pack file or shipped pack"))])
            p = shipped
        data = p.read_bytes()
        doc = load_located(data, str(p))
        if isinstance(doc, dict) and isinstance(doc.get("pack"), str):
            if doc["pack"] in packs_seen:
                return
            ext = doc.get("extends") or []
            for e in [ext] if isinstance(ext, str) else ext:
                if isinstance(e, str):
                    add(e, p.parent)
            packs_seen.add(doc["pack"])
        if p.name in names:
            raise PolicyError([Issue(str(p), None, None, "", tr(f"有两个同名成员 {p.name}", f"two members named {p.name}"))])
        names.add(p.name)
        out.append((p.name, data))

    for it in items:
        add(it, None)
    return out


def _meaning(ps: PolicySet) -> list[str]:
    """Rules, parameters and checklist, without where they were read from."""
    where = re.compile(r"""(where|origin)=(['"]).*?\2(?=[,)])""")
    return [where.sub("", repr(r)) for r in ps.rules] + [repr(sorted(ps.params.items())), repr(ps.checklist)]


@policy_group.command("sign")
@click.argument("items", nargs=-1, required=True)
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Officer's private key / 签名私钥")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="Bundle to write")
@click.option("--bundle-version", "version", type=click.IntRange(0), default=None,
              help="Version number (default: the signing time in seconds); verifiers refuse an older one than they accepted")
@click.option("--valid-days", type=click.IntRange(1, 3650), default=365, show_default=True,
              help="Days until the bundle expires / 有效天数")
@lang_option
@_guard
def sign_cmd(items: tuple[str, ...], key_path: str, output: str, version: int | None, valid_days: int) -> None:
    """把策略包与审批登记簿签名打包 / sign packs and approval registers into one bundle.

    ITEMS are pack names or files, in precedence order; packs they extend are included first.
    The policy is validated before signing.
    """
    members = _bundle_members(list(items))
    expected = load_policy(list(items))  # refuse to sign an invalid policy
    key = keys.load_private_key(key_path)
    bundle = make_bundle(members, key, version=version, valid_days=valid_days)
    tmp = Path(output).with_name(Path(output).name + ".tmp.json")
    tmp.write_text(json.dumps(bundle, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    try:  # the bundle must stand on its own and mean what the files meant
        got = load_policy([str(tmp)], require_signature=True, trusted_keys=[key])
        if _meaning(got) != _meaning(expected):
            raise PolicyError([Issue(output, None, None, "", tr("签名包与源文件含义不一致",
                                                                "the bundle does not mean what its files mean"))])
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(output)
    click.echo(tr(f"已签名 {output}：{len(members)} 个文件（{', '.join(n for n, _ in members)}），密钥 {bundle['key_id']}，"
                  f"版本 {bundle['version']}，有效至 {bundle['expires']}",
                  f"signed {output}: {len(members)} files ({', '.join(n for n, _ in members)}), key {bundle['key_id']}, "
                  f"version {bundle['version']}, valid until {bundle['expires']}"))


@policy_group.command("verify")
@click.argument("bundle")
@click.option("--trust", "trusted", multiple=True, required=True, metavar="PUBKEY", help="Trusted public key")
@lang_option
@_guard
def verify_cmd(bundle: str, trusted: tuple[str, ...]) -> None:
    """校验签名包 / verify a signed bundle against trusted keys."""
    b = read_bundle(bundle, trusted, require_signature=True)
    load_policy([bundle], require_signature=True, trusted_keys=trusted)
    click.echo(tr(f"签名有效：密钥 {b.key_id}，{b.created}", f"valid signature: key {b.key_id}, {b.created}"))
    for f in b.files:
        click.echo(f"  {f.sha256[:16]}  {f.name}")


@policy_group.command("show")
@click.argument("items", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text")
@lang_option
@_guard
def show_cmd(items: tuple[str, ...], fmt: str) -> None:
    """列出规则表 / print the rule table (id, source, event watched, action)."""
    click.echo(rule_table(load_policy(list(items) or shipped_packs()), fmt))


def rule_table(ps: PolicySet, fmt: str = "markdown") -> str:
    """The rule table: id, source clause, event watched (kind, operations, condition), action."""
    from policies.conditions import describe_condition

    rows = []
    for r in ps.rules:
        watched = "/".join(r.on) + (f" [{','.join(r.operations)}]" if r.operations else "")
        rows.append({"id": r.id, "pack": r.pack, "title": tr(r.title_zh, r.title_en), "source": r.source,
                     "event": watched, "when": describe_condition(r.when), "severity": r.severity.value,
                     "action": r.action.value})
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False, indent=1)
    if fmt == "markdown":
        lines = ["| id | source clause | event watched | action (severity) |", "|---|---|---|---|"]
        lines += [f"| {x['id']} | {x['source']} | {x['event']}: `{x['when']}` | {x['action']} ({x['severity']}) |"
                  for x in rows]
        return "\n".join(lines)
    return "\n".join(f"{x['id']:<20} {x['action']:<16} {x['severity']:<9} {x['event']:<40} {x['title']}"
                     for x in rows)


@policy_group.command("posture")
@_policy_options
@click.option("--host-role", type=click.Choice(["unclassified", "classified"]), required=True,
              help="Role of this host / 本机类别")
@click.option("--host-level", type=click.Choice(["internal", "confidential", "secret", "top_secret"]),
              default=None, help="Approved level of this classified host / 核定密级")
@click.option("--root", default="/", type=click.Path(exists=True, file_okay=False),
              help="Read sysfs/procfs under this root (default /)")
@lang_option
@_guard
def posture_cmd(policies: tuple[str, ...], require_signature: bool, trusted: tuple[str, ...],
                host_role: str, host_level: str | None, root: str) -> None:
    """检查本机状态（无线网卡、蓝牙、默认路由）/ check this host's posture (read locally)."""
    from policies.posture import posture_event, read_posture

    ps = _load(policies, require_signature, trusted)
    host = read_posture(host_role, host_level, root=root)
    click.echo(f"{host.id}: wireless={','.join(host.wireless) or '—'} bluetooth={','.join(host.bluetooth) or '—'} "
               f"default_route={'yes' if host.default_route else 'no'}")
    vs = ps.evaluate(posture_event(host), ps.context())
    _report_violations(vs)


# =========================================================================== baomi keys

@click.group("keys")
@lang_option
def keys_group() -> None:
    """签名密钥：创建、查看 / Ed25519 signing keys: create, show."""


@keys_group.command("create")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing key")
@lang_option
@_guard
def keys_create(path: str, force: bool) -> None:
    """创建私钥 PATH（0600）及公钥 PATH.pub / create a private key and PATH.pub."""
    p = Path(path)
    if p.exists() and not force:
        _fail(tr(f"{p} 已存在（--force 覆盖）", f"{p} exists (use --force)"))
    key = keys.generate_private_key()
    keys.save_private_key(key, p)
    pub = p.with_name(p.name + ".pub")
    pub.write_bytes(keys.public_key_pem(key))
    click.echo(tr(f"密钥 {keys.key_id(key)}：私钥 {p}，公钥 {pub}",
                  f"key {keys.key_id(key)}: private {p}, public {pub}"))


@keys_group.command("show")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@lang_option
@_guard
def keys_show(path: str) -> None:
    """显示密钥编号与公钥 / show a key's id and public key (private or public key file)."""
    data = Path(path).read_bytes()
    obj: Any
    if b"PRIVATE KEY" in data:
        obj = keys.load_private_key(path)
    else:
        obj = keys.load_public_key(data)
    click.echo(f"key_id: {keys.key_id(obj)}")
    click.echo(f"public_key: {keys.public_key_b64(obj)}")
    click.echo(keys.public_key_pem(obj).decode("ascii").rstrip())


# =========================================================================== baomi approvals

@click.group("approvals")
@lang_option
def approvals_group() -> None:
    """审批登记簿：复制、传递、销毁审批 / approvals register: approved copies, transfers, destructions."""


def _read_register(path: str) -> ApprovalRegister:
    p = Path(path)
    if not p.exists():
        return ApprovalRegister(source=path)
    return parse_register(load_located_file(p), path)


@approvals_group.command("add")
@click.argument("register")
@click.option("--id", "aid", required=True, help="Approval number / 审批编号")
@click.option("--operation", type=click.Choice(["copy", "transfer", "destroy"]), required=True)
@click.option("--sha256", default=None, help="Content hash of the file approved")
@click.option("--file", "file_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Compute the hash of this file")
@click.option("--who", required=True, help="Account allowed to act ('*': anyone) / 经办人")
@click.option("--to", "dest", default="*", help="Medium id or location class ('*': anywhere) / 去向")
@click.option("--until", required=True, metavar="YYYY-MM-DD", help="Last valid day / 有效期至")
@click.option("--by", "approved_by", required=True, help="Approving officer / 审批人")
@click.option("--note", default="")
@lang_option
@_guard
def approvals_add(register: str, aid: str, operation: str, sha256: str | None, file_path: str | None,
                  who: str, dest: str, until: str, approved_by: str, note: str) -> None:
    """登记一条审批（之后须重新签名）/ add an approval (the register must then be re-signed)."""
    from policies.signing import sha256_hex, sig_path

    if (sha256 is None) == (file_path is None):
        _fail(tr("需要 --sha256 或 --file 之一", "give exactly one of --sha256 or --file"))
    digest = sha256 if sha256 is not None else sha256_hex(Path(str(file_path)).read_bytes())
    reg = _read_register(register)
    new = Approval(aid, operation, digest.lower(), who, dest, _today(until), approved_by, note)
    candidate = ApprovalRegister.of(reg.approvals + (new,), register)
    # validate through the same parser the engine uses
    parse_register(load_located(_dump(candidate), register), register)
    write_register(register, candidate)
    sp = sig_path(register)
    if sp.exists():
        sp.unlink()
        click.echo(tr("登记簿已变更，原签名已失效并删除：请重新签名（baomi approvals sign）",
                      "register changed: its old signature was removed; sign it again (baomi approvals sign)"))
    click.echo(tr(f"已登记 {aid}", f"added {aid}"))


def _dump(reg: ApprovalRegister) -> str:
    from policies.approvals import dump_register

    return dump_register(reg)


@approvals_group.command("list")
@click.argument("register")
@click.option("--trust", "trusted", multiple=True, metavar="PUBKEY", help="Trusted public key")
@lang_option
@_guard
def approvals_list(register: str, trusted: tuple[str, ...]) -> None:
    """列出审批记录及签名状态 / list approvals and the register's signature status."""
    from policies.signing import trusted_key_map

    p = Path(register)
    if not p.exists():
        _fail(tr(f"{register} 不存在", f"{register} does not exist"))
    reg = _read_register(register)
    try:
        kid = verify_file(p, p.read_bytes(), trusted_key_map(trusted), require_signature=bool(trusted))
        state = tr(f"已签名（密钥 {kid}）", f"signed (key {kid})") if kid else tr("未签名", "unsigned")
    except SignatureError as exc:
        state = tr(f"签名无效：{exc}", f"INVALID signature: {exc}")
    click.echo(f"{register}: {state}")
    for a in reg.approvals:
        click.echo(f"  {a.id:<14} {a.operation:<8} {a.sha256[:16]}… {a.who} → {a.to}  "
                   f"{tr('至', 'until')} {a.until}  {tr('审批', 'by')} {a.approved_by}  {a.note}")


@approvals_group.command("sign")
@click.argument("register")
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False))
@lang_option
@_guard
def approvals_sign(register: str, key_path: str) -> None:
    """签名登记簿（写入 REGISTER.sig）/ sign the register (writes REGISTER.sig)."""
    _read_register(register)  # refuse to sign an invalid register
    if not Path(register).exists():
        _fail(tr(f"{register} 不存在", f"{register} does not exist"))
    out = sign_file(register, keys.load_private_key(key_path))
    click.echo(tr(f"已签名：{out}", f"signed: {out}"))


def _echo_violation(v: Any) -> None:
    click.echo(f"  ✗ {v.rule_id} [{v.severity.value}/{v.action.value}] {preferred_rationale(v)}")


def _report_violations(vs: list[Any]) -> None:
    """Print each violation, then exit 1 when there is any (0 otherwise)."""
    for v in vs:
        _echo_violation(v)
    sys.exit(EXIT_FOUND if vs else EXIT_OK)
