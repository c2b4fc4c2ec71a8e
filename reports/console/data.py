"""What the console's pages read from the store: keyset-paged violation lists, one violation with
its chain position and follow-up, the dashboard figures, media and attestations.

Every list is read in SQL with bounded pages (a 100,000-event log pages in milliseconds through
the (etype, gseq) index); the follow-up state is derived from the few follow-up entries.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from reports.followup import TYPES, Followup, derive
from reports.render.aggregate import payload_field
from reports.store import ROW_COLS, SqlStore

PAGE = 50
STATUSES = ("open", "unassigned", "assigned", "overdue", "rectified", "closed")


@dataclass(frozen=True)
class Filters:
    level: str | None = None
    host: str | None = None
    rule: str | None = None
    status: str | None = None
    since: str | None = None  # YYYY-MM-DD in the officer's time zone
    until: str | None = None
    q: str | None = None  # part of the path

    def as_params(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass
class Page:
    rows: list[dict[str, Any]]
    total: int
    next_before: int | None
    followups: dict[int, Followup] = field(default_factory=dict)


def _rows(store: SqlStore, sql: str, args: list[Any]) -> list[tuple[Any, ...]]:
    with store._read() as cur:  # noqa: SLF001 - reads of the store the console belongs with
        cur.execute(store._sql(sql), args)  # noqa: SLF001
        return list(cur.fetchall())


def followups(store: SqlStore) -> dict[int, Followup]:
    return derive(store.followup_rows(TYPES))


def _utc_bound(day: str, tz: str, next_day: bool = False) -> str:
    d = date.fromisoformat(day) + (timedelta(days=1) if next_day else timedelta())
    t = datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(tz))
    return t.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def violation_where(store: SqlStore, f: Filters, fu: dict[int, Followup], today: date,
                    tz: str) -> tuple[str, list[Any]]:
    # etype 'violation' is only ever an agent's event (follow-ups are followup_*, server records
    # have no etype), so the count and the page read the (etype, gseq) index alone.
    where: list[str] = ["etype = 'violation'"]
    args: list[Any] = []
    if f.level:
        where.append("level = ?")
        args.append(store.level_column(f.level) or -1)
    for col, val in (("host", f.host), ("rule", f.rule)):
        if val:
            where.append(f"{col} = ?")
            args.append(val)
    if f.since:
        where.append("etime >= ?")
        args.append(_utc_bound(f.since, tz))
    if f.until:
        where.append("etime < ?")
        args.append(_utc_bound(f.until, tz, next_day=True))
    if f.q:
        where.append(f"{payload_field(store, 'path')} LIKE ?")
        args.append("%" + f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        where[-1] += " ESCAPE '\\'"
    if f.status:
        if f.status == "unassigned":
            ids, neg = list(fu), True
        elif f.status == "open":
            ids, neg = [v for v, s in fu.items() if s.status == "closed"], True
        elif f.status == "overdue":
            ids, neg = [v for v, s in fu.items() if s.overdue(today)], False
        else:
            ids, neg = [v for v, s in fu.items() if s.status == f.status], False
        if ids:
            where.append(f"gseq {'NOT IN' if neg else 'IN'} ({', '.join(str(int(i)) for i in ids)})")
        elif not neg:
            where.append("0 = 1")
    return " AND ".join(where), args


def violations(store: SqlStore, f: Filters, before: int | None, today: date, tz: str,
               limit: int = PAGE) -> Page:
    """One page, newest first; `before` is the keyset cursor (the last gseq shown)."""
    fu = followups(store)
    where, args = violation_where(store, f, fu, today, tz)
    (total,), = _rows(store, f"SELECT COUNT(*) FROM entries WHERE {where}", args)
    page_where, page_args = where, list(args)
    if before is not None:
        page_where += " AND gseq < ?"
        page_args.append(int(before))
    rows = [store.row_dict(r) for r in _rows(
        store, f"SELECT {ROW_COLS} FROM entries WHERE {page_where} ORDER BY gseq DESC LIMIT ?",
        [*page_args, limit + 1])]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, int(total), rows[-1]["gseq"] if more and rows else None, fu)


def violation(store: SqlStore, gseq: int) -> tuple[dict[str, Any], str, str] | None:
    """(row, entry hash, received) of a violation entry, or None."""
    got = _rows(store, f"SELECT {ROW_COLS}, hash, kind FROM entries WHERE gseq = ?", [gseq])
    if not got or got[0][11] != "event" or got[0][7] != "violation":
        return None
    return store.row_dict(got[0][:10]), str(got[0][10]), str(got[0][1])


def distinct(store: SqlStore, col: str) -> list[str]:
    """Hosts or rules seen in violations (the filter's choices)."""
    assert col in ("host", "rule")
    return [str(r[0]) for r in _rows(store, f"SELECT DISTINCT {col} FROM entries WHERE etype = 'violation'"
                                            f" AND {col} IS NOT NULL ORDER BY {col} LIMIT 500", [])]


@dataclass(frozen=True)
class Dashboard:
    events: int
    violations: int
    findings: int
    by_level: list[tuple[str, int]]
    by_week: list[tuple[str, int]]
    top_hosts: list[tuple[str, int]]
    top_rules: list[tuple[str, int]]
    status: dict[str, int]


def dashboard(store: SqlStore, today: date, weeks: int = 12) -> Dashboard:
    from reports.render.aggregate import iso_week  # the report's week arithmetic, one definition
    from scanner.model import Level

    levels = {lv.rank: lv.value for lv in Level}
    by_type = dict(_rows(store, "SELECT etype, COUNT(*) FROM entries WHERE kind = 'event' AND etype IN"
                                " ('violation', 'finding') GROUP BY etype", []))
    (events,), = _rows(store, "SELECT COUNT(*) FROM entries WHERE kind = 'event'", [])
    hits = "kind = 'event' AND etype IN ('violation', 'finding')"
    by_level = [(levels.get(int(lv), "-") if lv is not None else "-", int(n)) for lv, n in _rows(
        store, f"SELECT level, COUNT(*) FROM entries WHERE {hits} GROUP BY level ORDER BY level DESC", [])]
    start = (today - timedelta(weeks=weeks)).isoformat()
    weekly: dict[str, int] = {}
    for day, n in _rows(store, f"SELECT substr(etime, 1, 10), COUNT(*) FROM entries WHERE {hits} AND etime >= ?"
                               " GROUP BY substr(etime, 1, 10)", [start]):
        w = iso_week(str(day))
        weekly[w] = weekly.get(w, 0) + int(n)
    tops = {col: [(str(k), int(n)) for k, n in _rows(
        store, f"SELECT {col}, COUNT(*) AS n FROM entries WHERE kind = 'event' AND etype = 'violation'"
               f" GROUP BY {col} ORDER BY n DESC, {col} LIMIT 10", [])] for col in ("host", "rule")}
    fu = followups(store)
    status = {"assigned": 0, "rectified": 0, "closed": 0}
    for s in fu.values():
        status[s.status] += 1
    status["overdue"] = sum(1 for s in fu.values() if s.overdue(today))
    status["unassigned"] = int(by_type.get("violation", 0)) - len(fu)
    return Dashboard(int(events), int(by_type.get("violation", 0)), int(by_type.get("finding", 0)),
                     by_level, sorted(weekly.items()), tops["host"], tops["rule"], status)


def media(store: SqlStore) -> list[tuple[str, int, list[str], str]]:
    """(medium, events, hosts, last seen) per removable medium, cross-used first."""
    m = f"COALESCE({payload_field(store, 'medium')}, {payload_field(store, 'medium_id')}, "\
        f"{payload_field(store, 'device_serial')})"
    rows = _rows(store, f"SELECT {m} AS medium, host, COUNT(*), MAX(etime) FROM entries WHERE kind = 'event'"
                        f" AND {m} IS NOT NULL GROUP BY {m}, host", [])
    out: dict[str, tuple[int, list[str], str]] = {}
    for medium, host, n, last in rows:
        c, hosts, seen = out.get(str(medium), (0, [], ""))
        out[str(medium)] = (c + int(n), sorted({*hosts, str(host or "-")}), max(seen, str(last or "")))
    return sorted(((k, n, h, t) for k, (n, h, t) in out.items()), key=lambda x: (-len(x[2]), -x[1], x[0]))[:500]


def attestations(store: SqlStore, limit: int = 500) -> list[dict[str, Any]]:
    return [store.row_dict(r) for r in _rows(
        store, f"SELECT {ROW_COLS} FROM entries WHERE kind = 'event' AND etype = 'attestation'"
               " ORDER BY gseq DESC LIMIT ?", [limit])]


def violation_rows(store: SqlStore, f: Filters, today: date, tz: str, limit: int = 100_000) -> tuple[
        list[dict[str, Any]], dict[int, Followup]]:
    """Every violation matching the filters (newest first, bounded), for the CSV export."""
    fu = followups(store)
    where, args = violation_where(store, f, fu, today, tz)
    rows = [store.row_dict(r) for r in _rows(
        store, f"SELECT {ROW_COLS} FROM entries WHERE {where} ORDER BY gseq DESC LIMIT ?", [*args, limit])]
    return rows, fu
