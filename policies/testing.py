"""Table-driven policy tests (`baomi policy test DIR`), written by officers for their site.

A case file (YAML)::

    baomi_policy_test: 1
    policy: [cn-secrecy, ../site.yaml]   # packs to load (paths relative to this file);
                                          # default: the packs given with --policy
    today: 2026-06-01                     # evaluation date (default: today)
    approvals:                            # optional approvals register entries (same fields
      - {id: A1, operation: destroy, …}  # as in the register)
    cases:
      - name: 秘密文件写入未登记U盘
        event: {event: file, operation: copy, location: {kind: removable_medium}, file: {level: confidential}}
        expect: [CN-SEC-004]              # rules that must fire
        expect_not: [CN-SEC-011]          # rules that must not fire
        exact: false                      # true: `expect` is the exact set of rules that fire

A rule is *covered* when some passing case expects it to fire (`expect`, positive) and some
passing case names it in `expect_not` (negative); `require_coverage` turns a missing side into a
failure.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policies.approvals import ApprovalRegister, parse_register
from policies.engine import PolicySet, load_policy
from policies.model import EventError, Issue, event_from_dict, unknown_field
from policies.packs import PACKS_DIR, PolicyError
from policies.yamlload import YamlError, load_located_file
from scanner.i18n import tr

TEST_FORMAT = 1
SHIPPED_TESTS = PACKS_DIR / "tests"
_FILE_KEYS = {"baomi_policy_test", "policy", "today", "approvals", "cases"}
_CASE_KEYS = {"name", "event", "expect", "expect_not", "exact"}


@dataclass(frozen=True)
class CaseResult:
    file: str
    line: int | None
    name: str
    passed: bool
    fired: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # expected to fire, did not
    unexpected: tuple[str, ...] = ()  # fired, expected not to (or not in `exact` expect)
    expect: tuple[str, ...] = ()
    expect_not: tuple[str, ...] = ()
    exact: bool = False


@dataclass(frozen=True)
class SuiteResult:
    cases: tuple[CaseResult, ...]
    #: rule id → (positive cases passed, negative cases passed), for every rule of the policies tested
    coverage: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def failed(self) -> tuple[CaseResult, ...]:
        return tuple(c for c in self.cases if not c.passed)

    @property
    def uncovered(self) -> dict[str, str]:
        out = {}
        for rid, (pos, neg) in sorted(self.coverage.items()):
            if not pos or not neg:
                out[rid] = "no positive case" if not pos else "no negative case"
                if not pos and not neg:
                    out[rid] = "no case"
        return out


def _is_case_file(p: Path) -> bool:
    try:
        with p.open("rb") as fh:
            return b"baomi_policy_test" in fh.read(4096)
    except OSError:
        return False


def case_files(paths: list[str]) -> list[Path]:
    """Files named, plus the case files found under directories named (packs living beside
    their tests are skipped)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(x for x in p.rglob("*")
                              if x.suffix in (".yaml", ".yml") and x.is_file() and _is_case_file(x)))
        elif p.exists():
            out.append(p)
        else:
            raise PolicyError([Issue(str(p), None, None, "", tr("文件或目录不存在", "no such file or directory"))])
    return out


def _err(source: str, container: Any, key: Any, path: str, msg: str) -> Issue:
    marks = getattr(container, "marks", None)
    line, col = marks[key] if marks and key in marks else getattr(container, "mark", (None, None))
    return Issue(source, line, col, path, msg)


def _ids(case: Any, key: str, source: str, path: str, issues: list[Issue]) -> tuple[str, ...]:
    v = case.get(key, [])
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        issues.append(_err(source, case, key, f"{path}.{key}", tr("应为规则编号列表", "expected a list of rule ids")))
        return ()
    return tuple(v)


class _Cache:
    def __init__(self) -> None:
        self.sets: dict[tuple[str, ...], PolicySet] = {}

    def get(self, items: tuple[str, ...]) -> PolicySet:
        if items not in self.sets:
            self.sets[items] = load_policy(list(items))
        return self.sets[items]


def run_case_file(path: Path, default_policy: list[str] | None = None,
                  cache: _Cache | None = None) -> tuple[list[CaseResult], PolicySet]:
    """Run one case file; raise PolicyError (located) if the file itself is malformed."""
    cache = cache or _Cache()
    src = str(path)
    try:
        data = load_located_file(path)
    except YamlError as exc:
        raise PolicyError([exc.issue]) from None
    issues: list[Issue] = []
    if not isinstance(data, dict) or data.get("baomi_policy_test") != TEST_FORMAT:
        raise PolicyError([Issue(src, 1, 1, "baomi_policy_test",
                                 tr(f"不是策略测试文件（需要 baomi_policy_test: {TEST_FORMAT}）", f"not a policy test file (needs baomi_policy_test: {TEST_FORMAT})"))])
    for k in data:
        if k not in _FILE_KEYS:
            issues.append(_err(src, data, k, str(k), unknown_field(_FILE_KEYS)))
    pol = data.get("policy", default_policy)
    if isinstance(pol, str):
        pol = [pol]
    if not pol or not isinstance(pol, list) or not all(isinstance(x, str) for x in pol):
        raise PolicyError([_err(src, data, "policy", "policy",
                                tr("应为策略包列表（或使用 --policy 指定）", "expected a list of packs (or give --policy)"))] + issues)
    items = []
    for x in pol:
        cand = path.parent / x
        items.append(str(cand) if "policy" in data and (cand.suffix in (".yaml", ".yml", ".json") or cand.exists())
                     else x)
    policy = cache.get(tuple(items))
    today = data.get("today")
    if today is not None and not (isinstance(today, str) and len(today) >= 10):
        issues.append(_err(src, data, "today", "today", tr("应为日期 YYYY-MM-DD", "expected a date YYYY-MM-DD")))
        today = None
    if "approvals" in data:
        reg_doc = {"baomi_approvals": 1, "approvals": data["approvals"]}
        try:
            reg = parse_register(reg_doc, src)
        except PolicyError as exc:
            issues.extend(exc.issues)
            reg = ApprovalRegister()
        policy = PolicySet(policy.composed, policy.register.merged(reg), policy.signers)
    cases = data.get("cases")
    if not isinstance(cases, list) or not cases:
        issues.append(_err(src, data, "cases", "cases", tr("应为非空的用例列表", "expected a non-empty list of cases")))
        cases = []
    known = {r.id for r in policy.composed.rules}
    prepared = []
    for i, c in enumerate(cases):
        p = f"cases[{i}]"
        if not isinstance(c, dict):
            issues.append(_err(src, cases, i, p, tr("应为映射", "expected a mapping")))
            continue
        for k in c:
            if k not in _CASE_KEYS:
                issues.append(_err(src, c, k, f"{p}.{k}", unknown_field(_CASE_KEYS)))
        name = str(c["name"]) if isinstance(c.get("name"), str) else f"case {i + 1}"
        expect = _ids(c, "expect", src, p, issues)
        expect_not = _ids(c, "expect_not", src, p, issues)
        for key, ids in (("expect", expect), ("expect_not", expect_not)):
            for rid in ids:
                if rid not in known:
                    issues.append(_err(src, c, key, f"{p}.{key}", tr(f"未知规则编号 {rid!r}", f"unknown rule id {rid!r}")))
        exact = c.get("exact", False)
        if not isinstance(exact, bool):
            issues.append(_err(src, c, "exact", f"{p}.exact", tr("应为 true 或 false", "expected true or false")))
        if not expect and not expect_not and not exact:
            issues.append(_err(src, c, "name", p, tr("用例需要 expect、expect_not 或 exact: true", "a case needs expect, expect_not or exact: true")))
        try:
            ev = event_from_dict(c.get("event"), src)
        except EventError as exc:
            issues.extend(Issue(x.file, x.line, x.column, f"{p}.event.{x.field}".rstrip("."), x.message)
                          for x in exc.issues)
            continue
        mark = getattr(c, "mark", None)
        line = mark[0] if mark else None
        prepared.append((name, line, ev, expect, expect_not, exact is True))
    if issues:
        raise PolicyError(issues)
    ctx = policy.context(today)
    results = []
    for name, line, ev, expect, expect_not, exact in prepared:
        fired = tuple(policy.fired(ev, ctx))
        fs = set(fired)
        missing = tuple(r for r in expect if r not in fs)
        unexpected = tuple(r for r in expect_not if r in fs)
        if exact:
            unexpected += tuple(r for r in fired if r not in expect and r not in unexpected)
        results.append(CaseResult(src, line, name, not missing and not unexpected, fired, missing,
                                  unexpected, expect, expect_not, exact))
    return results, policy


def run_tests(paths: list[str], policy: list[str] | None = None) -> SuiteResult:
    """Run every case file under `paths`; coverage counts passing cases per rule."""
    cache = _Cache()
    all_results: list[CaseResult] = []
    coverage: dict[str, list[int]] = {}
    files = case_files(paths)
    if not files:
        raise PolicyError([Issue(", ".join(paths), None, None, "",
                                 tr("未找到测试用例文件（需要 baomi_policy_test: 1）",
                                    "no test case files found (they start with baomi_policy_test: 1)"))])
    for f in files:
        results, pset = run_case_file(f, policy, cache)
        rule_ids = {r.id for r in pset.rules}
        for rid in rule_ids:
            coverage.setdefault(rid, [0, 0])
        all_results.extend(results)
        for res in results:
            if not res.passed:
                continue
            for rid in res.expect:
                coverage.setdefault(rid, [0, 0])[0] += 1
            # negatives count only when named: `exact` cases do not vouch for unrelated rules
            for rid in set(res.expect_not):
                coverage.setdefault(rid, [0, 0])[1] += 1
    return SuiteResult(tuple(all_results), {k: (v[0], v[1]) for k, v in coverage.items()})
