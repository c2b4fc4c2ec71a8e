"""Gather a report's inputs from a log source (local store or collector) in one chain walk."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from reports.chain import Entry
from reports.render.aggregate import fleet_state, store_report
from reports.render.model import APPENDIX_ROWS, ChainStatus, Gap, ReportData, build_report
from reports.store import SqlStore


def collect(src: Any, query: Any, *, server_key: Any = None, channel: str | None = None,
            scope: Mapping[str, str] | None = None, now: datetime | None = None,
            appendix_rows: int | None = APPENDIX_ROWS, verify_cache: Path | None = None) -> ReportData:
    """Figures from the officer's filtered query; gaps, silence and the chain from the whole log.

    A local store aggregates in SQL (`aggregate.store_report`); a remote collector's rows are
    folded here. When verifying, the chain is walked once and the same iterator feeds the
    gap/last-seen scan; otherwise those come from the database too. `verify_cache`: the officer's
    directory of verified-prefix states (`verifycache`), so that only new entries' signatures are
    checked; None checks every signature.
    """
    store = getattr(src, "store", None)
    if not isinstance(store, SqlStore):
        store = None
    gaps: list[Gap] = []
    seen: dict[str, tuple[str, str]] = {}
    hosts: dict[str, str] = {}

    def tap() -> Iterator[Entry]:
        for e in src.entries():
            rec = e.record
            if e.kind == "gap":
                n = rec.get("notice", {})
                gaps.append(Gap(e.gseq, str(n.get("agent")), int(n.get("first", 0)),
                                int(n.get("last", 0)), str(n.get("reason", ""))))
            elif e.kind == "enrol":
                hosts[str(rec.get("agent"))] = str(rec.get("hostname", "-"))
                seen.setdefault(str(rec.get("agent")), (str(rec.get("hostname", "-")), str(rec.get("time", ""))))
            elif e.kind == "event":
                a = str(rec.get("agent"))
                seen[a] = (hosts.get(a, "-"), str(rec.get("time", "")))
            yield e

    cps = src.checkpoints()
    last_cp = max(cps, key=lambda c: c.size) if cps else None
    if server_key is not None:
        from reports.render.verifycache import verify_resuming

        def restart() -> None:
            gaps.clear()
            seen.clear()

        v = verify_resuming(tap, server_key, cps, verify_cache, on_retry=restart)
        chain = ChainStatus(v.ok, v.entries, v.checkpoints, v.first_bad, v.problem,
                            last_cp.size if last_cp else None, last_cp.root if last_cp else "",
                            last_cp.time if last_cp else "")
    elif store is not None:
        gaps, seen = fleet_state(store)
        size, _ = store.head()
        chain = ChainStatus(None, size, 0, None, "", last_cp.size if last_cp else None,
                            last_cp.root if last_cp else "", last_cp.time if last_cp else "")
    else:
        n = sum(1 for _ in tap())
        chain = ChainStatus(None, n, 0, None, "", last_cp.size if last_cp else None,
                            last_cp.root if last_cp else "", last_cp.time if last_cp else "")
    if store is not None:
        return store_report(store, query, channel=channel, scope=scope, gaps=gaps, agents_last_seen=seen,
                            chain=chain, now=now, appendix_rows=appendix_rows)
    return build_report(src.query(query), scope=scope, gaps=gaps, agents_last_seen=seen,
                        chain=chain, now=now, channel=channel, appendix_rows=appendix_rows)
