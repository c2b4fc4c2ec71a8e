"""A report's figures computed by the database (GROUP BY), not by a Python loop over every event.

`store_report` gives the same `ReportData` as `model.build_report` over the same rows (a test
holds them equal), but a 100,000-event log costs a handful of aggregate queries plus the few
rows that are listed one by one (follow-ups, attestations, media, the capped appendix).
SQLite and PostgreSQL differ only in how a payload field is read from the stored JSON record.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from reports.render.model import (
    APPENDIX_ROWS,
    ChainStatus,
    Gap,
    ReportData,
    finish_report,
)
from reports.store import QUERY_KINDS, ROW_COLS, Query, SqlStore


def payload_field(store: SqlStore, key: str) -> str:
    """SQL expression of `payload.<key>` as text, in the store's dialect."""
    if store.backend == "postgresql":
        return f"(record::jsonb #>> '{{payload,{key}}}')"
    return f"json_extract(record, '$.payload.{key}')"


def _channel(store: SqlStore) -> str:
    # model.channel_of: payload.channel, else payload.source, else '-'.
    return f"COALESCE({payload_field(store, 'channel')}, {payload_field(store, 'source')}, '-')"


def _where(store: SqlStore, q: Query, channel: str | None) -> tuple[str, list[Any]]:
    """The officer's filters, as `SqlStore.query` applies them, plus the channel."""
    where, args = store.query_filters(q)
    if channel is not None:
        where.append(f"{_channel(store)} = ?")
        args.append(channel)
    return " AND ".join(where), args


def _rows(store: SqlStore, sql: str, args: list[Any]) -> list[tuple[Any, ...]]:
    with store._read() as cur:  # noqa: SLF001 - the render package reads the store it belongs with
        cur.execute(store._sql(sql), args)  # noqa: SLF001
        return list(cur.fetchall())


def _items(store: SqlStore, where: str, args: list[Any], extra: str = "",
           limit: int | None = None) -> list[dict[str, Any]]:
    sql = (f"SELECT {ROW_COLS} FROM entries WHERE {where}{extra} ORDER BY gseq"
           + (f" LIMIT {int(limit)}" if limit else ""))
    return [store.row_dict(r) for r in _rows(store, sql, args)]


def iso_week(day: str) -> str:
    try:
        y, w, _ = date.fromisoformat(day[:10]).isocalendar()
    except ValueError:
        return "-"
    return f"{y}-W{w:02d}"


def store_report(store: SqlStore, q: Query, *, channel: str | None = None,
                 scope: Mapping[str, str] | None = None, gaps: list[Gap] | None = None,
                 agents_last_seen: Mapping[str, tuple[str, str]] | None = None,
                 chain: ChainStatus | None = None, now: datetime | None = None,
                 appendix_rows: int | None = APPENDIX_ROWS) -> ReportData:
    now = now or datetime.now(UTC)
    where, args = _where(store, q, channel)
    by_type = Counter({str(t): int(n) for t, n in _rows(
        store, f"SELECT etype, COUNT(*) FROM entries WHERE {where} GROUP BY etype", args)})
    hits = f"{where} AND etype IN ('finding', 'violation')"
    level, chan = payload_field(store, "level"), _channel(store)
    counts: dict[str, Counter[str]] = {}
    for name, expr in (("level", f"COALESCE({level}, '-')"), ("rule", "COALESCE(rule, '-')"),
                       ("host", "COALESCE(host, '-')"), ("channel", chan)):
        counts[name] = Counter({str(k): int(n) for k, n in _rows(
            store, f"SELECT {expr}, COUNT(*) FROM entries WHERE {hits} GROUP BY {expr}", args)})
    # Days in SQL, ISO weeks here: neither SQLite nor PostgreSQL share an ISO-week function, and a
    # log spans a few hundred days at most.
    by_week: Counter[str] = Counter()
    for day, n in _rows(store, f"SELECT substr(etime, 1, 10), COUNT(*) FROM entries WHERE {hits}"
                               " GROUP BY substr(etime, 1, 10)", args):
        by_week[iso_week(str(day or ""))] += int(n)
    # Follow-up steps name their violation; only the ids of followed-up violations are looked up.
    # Steps come from the whole log: a level or host filter must not turn a rectified violation
    # back into an open one (the steps carry no level and are recorded on the officer's host).
    followup = _items(store, f"kind IN ({', '.join(repr(k) for k in QUERY_KINDS)})", [], " AND (substr(etype, 1, 9) = 'followup_' OR (etype = 'officer_action'"
                                          f" AND {payload_field(store, 'followup')} IS NOT NULL))")
    vids = sorted({str((r["payload"] or {}).get("violation")) for r in followup})
    known: set[str] = set()
    for i in range(0, len(vids), 500):
        chunk = vids[i:i + 500]
        known.update(str(r[0]) for r in _rows(
            store, f"SELECT event_id FROM entries WHERE {where} AND etype = 'violation' AND event_id IN"
                   f" ({', '.join('?' * len(chunk))})", args + chunk))
    attest = _items(store, where, args, " AND etype = 'attestation'")
    medium = f"COALESCE({payload_field(store, 'medium')}, {payload_field(store, 'device_serial')})"
    media = [(str(m), int(n), int(h)) for m, n, h in _rows(
        store, f"SELECT {medium}, COUNT(*), COUNT(DISTINCT COALESCE(host, '-')) FROM entries"
               f" WHERE {where} AND {medium} IS NOT NULL GROUP BY {medium}", args)]
    return finish_report(
        now=now, scope=scope, events=sum(by_type.values()), by_type=by_type, by_level=counts["level"],
        by_rule=counts["rule"], by_host=counts["host"], by_channel=counts["channel"], by_week=by_week,
        violations=by_type.get("violation", 0), violation_ids=known, followup_rows=followup,
        attestation_rows=attest, media=media, agents_last_seen=agents_last_seen, gaps=gaps or [],
        chain=chain, items=_items(store, where, args, limit=appendix_rows))


def fleet_state(store: SqlStore) -> tuple[list[Gap], dict[str, tuple[str, str]]]:
    """Sequence gaps and each agent's (host, last event time) of the whole log, by the database
    (when the chain is not walked for verification anyway)."""
    import json

    gaps = []
    for gseq, record in _rows(store, "SELECT gseq, record FROM entries WHERE kind = 'gap' ORDER BY gseq", []):
        n = json.loads(record).get("notice", {})
        gaps.append(Gap(int(gseq), str(n.get("agent")), int(n.get("first", 0)), int(n.get("last", 0)),
                        str(n.get("reason", ""))))
    last = {str(a): str(t) for a, t in _rows(
        store, "SELECT agent, MAX(etime) FROM entries WHERE kind = 'event' GROUP BY agent", [])}
    seen = {}
    for a, host, enrolled in _rows(store, "SELECT agent, hostname, enrolled FROM agents", []):
        seen[str(a)] = (str(host), last.get(str(a), str(enrolled)))
    return gaps, seen
