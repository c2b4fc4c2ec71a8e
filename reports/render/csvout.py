"""CSV report: the summary counts, then the items, in one file a spreadsheet opens."""
from __future__ import annotations

import csv
import json
from typing import TextIO

from reports.render.model import ReportData


def render_csv(data: ReportData, out: TextIO) -> None:
    w = csv.writer(out)
    w.writerow(["section", "key", "count"])
    for section, pairs in (("level", data.by_level), ("rule", data.by_rule), ("host", data.by_host),
                           ("channel", data.by_channel), ("week", data.by_week), ("type", data.by_type)):
        for k, v in pairs:
            w.writerow([section, k, v])
    w.writerow(["violations", "open", data.violations_open])
    w.writerow(["violations", "rectified", data.violations_rectified])
    w.writerow(["followups", "overdue", data.overdue_followups])
    w.writerow(["attestations", "overdue", len(data.attestations_overdue)])
    w.writerow(["agents", "silent", len(data.silent)])
    w.writerow(["chain", "gaps", len(data.gaps)])
    w.writerow(["chain", "ok", data.chain.ok])
    w.writerow([])
    cols = ["gseq", "time", "agent", "host", "type", "level", "rule", "path", "marking", "event_id", "payload"]
    w.writerow(cols)
    for r in data.items:
        w.writerow([json.dumps(r.get(c), ensure_ascii=False, sort_keys=True) if c == "payload" else r.get(c)
                    for c in cols])
