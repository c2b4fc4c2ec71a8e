"""What an inspection report says, computed once from the log and shared by every format.

`build_report` folds event rows (already filtered by the officer's query), the chain's gap
records, the verification outcome and the checkpoints into a frozen `ReportData`; the HTML,
DOCX, PDF and CSV writers only lay it out, so all formats state the same figures.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from scanner.i18n import tr

LEVEL_ZH = {"top_secret": "绝密", "secret": "机密", "confidential": "秘密", "internal": "内部"}
LEVEL_EN = {"top_secret": "top secret", "secret": "secret", "confidential": "confidential",
            "internal": "internal"}
#: An agent silent this long before the report's end is listed (迟报/漏报 suspicion).
SILENT_AFTER = timedelta(hours=24)
#: Follow-up (督办) steps. The hook for the officer console: an event of type `followup_<step>`
#: (or, older, an `officer_action` with payload {"followup": step}) whose payload names the
#: `violation` (its event id) and, when assigning, `owner` and `deadline`; later steps override.
CLOSED_STEPS = frozenset({"closed", "close"})
RECTIFIED_STEPS = frozenset({"rectified", "rectify", "closed", "close"})
#: Appendix rows in HTML, DOCX and PDF (a 100k-row table helps nobody); the CSV export has all.
APPENDIX_ROWS = 2000


def level_name(level: str | None) -> str:
    if not level:
        return "-"
    return tr(LEVEL_ZH.get(level, level), LEVEL_EN.get(level, level))


def _parse(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def week_of(ts: str | None) -> str:
    t = _parse(ts)
    if t is None:
        return "-"
    y, w, _ = t.isocalendar()
    return f"{y}-W{w:02d}"


@dataclass(frozen=True)
class Gap:
    """A sequence gap an agent admitted (signed notice) - shown, never hidden."""

    gseq: int
    agent: str
    first: int
    last: int
    reason: str


@dataclass(frozen=True)
class SilentAgent:
    agent: str
    host: str
    last_seen: str


@dataclass(frozen=True)
class Followup:
    violation: str
    owner: str
    deadline: str
    status: str  # assigned | rectified | closed
    overdue: bool


@dataclass(frozen=True)
class ChainStatus:
    ok: bool | None          # None: not verified (no server key at hand)
    entries: int
    checkpoints: int
    first_bad: int | None
    problem: str
    checkpoint_size: int | None
    checkpoint_root: str
    checkpoint_time: str


@dataclass(frozen=True)
class ReportData:
    title: str
    generated: str
    scope: Mapping[str, str]
    events: int
    by_type: list[tuple[str, int]]
    by_level: list[tuple[str, int]]
    by_rule: list[tuple[str, int]]
    by_host: list[tuple[str, int]]
    by_channel: list[tuple[str, int]]
    by_week: list[tuple[str, int]]
    violations_open: int
    violations_rectified: int
    followups: list[Followup]
    attestations_overdue: list[dict[str, Any]]
    media: list[tuple[str, int, int]]  # (medium id, events, hosts it was seen on)
    silent: list[SilentAgent]
    gaps: list[Gap]
    chain: ChainStatus
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def overdue_followups(self) -> int:
        return sum(1 for f in self.followups if f.overdue)

    @property
    def media_cross_use(self) -> list[tuple[str, int, int]]:
        return [m for m in self.media if m[2] > 1]


def channel_of(row: Mapping[str, Any]) -> str:
    p = row.get("payload") or {}
    return str(p.get("channel") or p.get("source") or "-")


def followup_step(row: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
    """(violation id, step, payload) of a follow-up event, or None."""
    p = row.get("payload") or {}
    etype = str(row.get("type") or "")
    step = etype[len("followup_"):] if etype.startswith("followup_") else (
        p.get("followup") if etype == "officer_action" else None)
    if not step or not p.get("violation"):
        return None
    return str(p["violation"]), str(step), dict(p)


def overdue_attestation(row: Mapping[str, Any], now: datetime) -> bool:
    p = row.get("payload") or {}
    if row.get("type") != "attestation" or not p.get("due") or p.get("signed"):
        return False
    due = _parse(str(p["due"]))
    return due is not None and due < now


def build_report(rows: Iterable[Mapping[str, Any]], *, scope: Mapping[str, str] | None = None,
                 gaps: Iterable[Gap] = (), agents_last_seen: Mapping[str, tuple[str, str]] | None = None,
                 chain: ChainStatus | None = None, now: datetime | None = None,
                 channel: str | None = None, title: str | None = None,
                 appendix_rows: int | None = None) -> ReportData:
    """One pass over the rows in Python: for a scan's records and a remote collector; a local
    store is aggregated by the database instead (`aggregate.store_report`, same figures)."""
    now = now or datetime.now(UTC)
    by_type: Counter[str] = Counter()
    by_level: Counter[str] = Counter()
    by_rule: Counter[str] = Counter()
    by_host: Counter[str] = Counter()
    by_channel: Counter[str] = Counter()
    by_week: Counter[str] = Counter()
    violation_ids: set[str] = set()
    followup: list[dict[str, Any]] = []
    attest: list[dict[str, Any]] = []
    media: dict[str, tuple[int, set[str]]] = {}
    items: list[dict[str, Any]] = []
    for r in rows:
        if followup_step(r) is not None:
            followup.append(dict(r))  # steps count whatever the channel (as in the SQL path)
        if channel is not None and channel_of(r) != channel:
            continue
        p = r.get("payload") or {}
        etype = r["type"]
        if appendix_rows is None or len(items) < appendix_rows:
            items.append(dict(r))
        by_type[etype] += 1
        if etype in ("finding", "violation"):
            by_level[r.get("level") or "-"] += 1
            by_rule[r.get("rule") or "-"] += 1
            by_host[r.get("host") or "-"] += 1
            by_channel[channel_of(r)] += 1
            by_week[week_of(r.get("time"))] += 1
        if etype == "violation":
            violation_ids.add(str(r.get("event_id")))
        elif etype == "attestation":
            attest.append(dict(r))
        medium = p.get("medium") or p.get("device_serial")
        if medium:
            n, hosts = media.get(str(medium), (0, set()))
            hosts.add(r.get("host") or "-")
            media[str(medium)] = (n + 1, hosts)
    return finish_report(
        now=now, scope=scope, events=sum(by_type.values()), by_type=by_type, by_level=by_level,
        by_rule=by_rule, by_host=by_host, by_channel=by_channel, by_week=by_week,
        violations=by_type.get("violation", 0), violation_ids=violation_ids, followup_rows=followup,
        attestation_rows=attest, media=[(m, n, len(h)) for m, (n, h) in media.items()],
        agents_last_seen=agents_last_seen, gaps=list(gaps), chain=chain, items=items, title=title)


def _ranked(c: Counter[str]) -> list[tuple[str, int]]:
    # Ties by name: the same figures give the same order whichever path counted them.
    return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))


def finish_report(*, now: datetime, scope: Mapping[str, str] | None, events: int, by_type: Counter[str],
                  by_level: Counter[str], by_rule: Counter[str], by_host: Counter[str],
                  by_channel: Counter[str], by_week: Counter[str], violations: int,
                  violation_ids: set[str], followup_rows: list[dict[str, Any]],
                  attestation_rows: list[dict[str, Any]], media: list[tuple[str, int, int]],
                  agents_last_seen: Mapping[str, tuple[str, str]] | None, gaps: list[Gap],
                  chain: ChainStatus | None, items: list[dict[str, Any]],
                  title: str | None = None) -> ReportData:
    """The part both paths share: follow-up state, overdue items, silent agents, ordering."""
    steps: dict[str, dict[str, Any]] = {}
    for r in sorted(followup_rows, key=lambda r: r["gseq"]):
        f = followup_step(r)
        if f is None or f[0] not in violation_ids:
            continue
        vid, step, p = f
        steps[vid] = {**steps.get(vid, {}), **{k: v for k, v in p.items() if v is not None}, "step": step}
    followups: list[Followup] = []
    rectified = 0
    for vid, s in steps.items():
        status = str(s["step"])
        if status in RECTIFIED_STEPS:
            rectified += 1
        due = _parse(str(s.get("deadline") or ""))
        followups.append(Followup(vid, str(s.get("owner") or "-"), str(s.get("deadline") or "-"),
                                  status, due is not None and due < now and status not in RECTIFIED_STEPS))
    silent = [SilentAgent(a, host, last) for a, (host, last) in sorted((agents_last_seen or {}).items())
              if (t := _parse(last)) is None or now - t > SILENT_AFTER]
    return ReportData(
        title=title or tr("保密检查报告", "Confidentiality inspection report"),
        generated=now.strftime("%Y-%m-%d %H:%M UTC"),
        scope=dict(scope or {}), events=events,
        by_type=_ranked(by_type), by_level=_ranked(by_level), by_rule=_ranked(by_rule),
        by_host=_ranked(by_host), by_channel=_ranked(by_channel),
        by_week=sorted(by_week.items()),
        violations_open=violations - rectified, violations_rectified=rectified,
        followups=followups,
        attestations_overdue=[a for a in attestation_rows if overdue_attestation(a, now)],
        media=sorted(media, key=lambda x: (-x[2], -x[1], x[0])),
        silent=silent, gaps=gaps,
        chain=chain or ChainStatus(None, 0, 0, None, tr("未校验", "not verified"), None, "", ""),
        items=items)
