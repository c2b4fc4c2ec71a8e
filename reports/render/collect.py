"""Gather a report's inputs from a log source (local store or collector) in one chain walk."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from reports.chain import Entry, verify_entries
from reports.render.model import ChainStatus, Gap, ReportData, build_report


def collect(src: Any, query: Any, *, server_key: Any = None, channel: str | None = None,
            scope: Mapping[str, str] | None = None, now: datetime | None = None) -> ReportData:
    """Rows come from the officer's filtered query; gaps, silence and the chain from the whole log.

    The chain is walked once: the same iterator feeds verification and the gap/last-seen scan.
    """
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
        v = verify_entries(tap(), server_key, cps)
        chain = ChainStatus(v.ok, v.entries, v.checkpoints, v.first_bad, v.problem,
                            last_cp.size if last_cp else None, last_cp.root if last_cp else "",
                            last_cp.time if last_cp else "")
    else:
        n = sum(1 for _ in tap())
        chain = ChainStatus(None, n, 0, None, "", last_cp.size if last_cp else None,
                            last_cp.root if last_cp else "", last_cp.time if last_cp else "")
    return build_report(src.query(query), scope=scope, gaps=gaps, agents_last_seen=seen,
                        chain=chain, now=now, channel=channel)
