"""A `baomi scan` as audit events: what an officer's scan of a stick or a share leaves in the chain.

`baomi scan --send STATE` (and `baomi audit send` given scan records) turns the scan's JSONL
records into signed events through the enrolled audit client and its spool:

- `finding` — one per file with a marking, a site keyword/rule hit or an error: the file's path,
  SHA-256, size, type and level, the markings themselves (their text is the marking, never the
  document), the ids of site rules that fired (never a keyword's words: code names are sensitive
  themselves) and the error codes;
- `violation` — one per policy violation (`--policy`): rule, pack, severity, action;
- `scan_summary` — one per scan: roots, totals by level, errors, violations, duration.

Nothing else of a document is recorded: `reports.events.check_payload` refuses content keys.
"""
from __future__ import annotations

import collections
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from reports.events import MAX_STRING

Item = tuple[str, Mapping[str, Any], str | None]

#: Most markings recorded per file (a file of 100,000 marked lines is one event, not a flood).
MAX_MARKINGS = 20
MAX_ERRORS = 20


def is_scan_record(obj: Mapping[str, Any]) -> bool:
    """A record of `baomi scan --format jsonl` (markings.md §5), not an audit event."""
    return "path" in obj and "findings" in obj and "errors" in obj and "type" not in obj


def _cut(value: Any, n: int = 256) -> Any:
    return value[:n] if isinstance(value, str) else value


def finding_payload(rec: Mapping[str, Any], scan_id: str) -> dict[str, Any] | None:
    """The `finding` event of one scan record, or None when it has nothing to record."""
    findings = [f for f in rec.get("findings") or () if isinstance(f, Mapping)]
    marks = [f for f in findings if f.get("kind") == "marking"]
    hits = [f for f in findings if f.get("kind") in ("keyword", "rule")]
    errors = [e for e in rec.get("errors") or () if isinstance(e, Mapping)]
    if not marks and not hits and not errors:
        return None
    payload: dict[str, Any] = {
        "scan": scan_id, "path": _cut(rec.get("path"), MAX_STRING), "sha256": rec.get("sha256"),
        "size": rec.get("size"), "mime": _cut(rec.get("mime"), 128), "level": rec.get("level"),
        "markings": [{"marking": _cut(f.get("text"), 128), "level": f.get("level"),
                      "member": _cut(f.get("member")), "rule": f.get("rule"), "line": f.get("line"),
                      **({"declassified": True} if f.get("declassified") else {})}
                     for f in marks[:MAX_MARKINGS]],
        # the rule id only: a keyword's words (a project's code name) are not written to the log
        "hits": sorted({str(f.get("rule")) for f in hits}),
        "errors": [{"error": e.get("error"), "member": _cut(e.get("member")), "detail": _cut(e.get("detail"))}
                   for e in errors[:MAX_ERRORS]],
    }
    if len(marks) > MAX_MARKINGS:
        payload["markings_total"] = len(marks)
    if rec.get("text_source"):
        payload["text_source"] = rec["text_source"]
    return payload


def violation_payloads(rec: Mapping[str, Any], scan_id: str) -> Iterator[dict[str, Any]]:
    marks = [f for f in rec.get("findings") or () if isinstance(f, Mapping) and f.get("kind") == "marking"]
    top = max(marks, key=lambda f: f.get("confidence") or 0, default=None)
    for v in rec.get("violations") or ():
        if isinstance(v, Mapping):
            # the marking and the rendered rationale: what the officer's console shows beside the rule
            yield {"scan": scan_id, "path": _cut(rec.get("path"), MAX_STRING), "sha256": rec.get("sha256"),
                   "level": rec.get("level"), "rule": v.get("rule"), "pack": v.get("pack"),
                   "severity": v.get("severity"), "action": v.get("action"),
                   "title_zh": _cut(v.get("title_zh")), "title_en": _cut(v.get("title_en")),
                   **({"marking": _cut(top.get("text"), 200)} if top else {}),
                   "rationale_zh": _cut(v.get("rationale_zh"), 500), "rationale_en": _cut(v.get("rationale_en"), 500)}


@dataclass
class ScanTally:
    """Totals of one scan, for its `scan_summary` event."""

    scan_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    files: int = 0
    by_level: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    incomplete: int = 0
    hits: int = 0
    violations: int = 0

    def add(self, rec: Mapping[str, Any]) -> None:
        self.files += 1
        if rec.get("level"):
            self.by_level[str(rec["level"])] += 1
        errs = [e for e in rec.get("errors") or () if isinstance(e, Mapping)]
        if errs:
            self.incomplete += 1
            self.errors.update(str(e.get("error")) for e in errs)
        if any(isinstance(f, Mapping) and f.get("kind") in ("keyword", "rule") for f in rec.get("findings") or ()):
            self.hits += 1
        self.violations += len(rec.get("violations") or ())

    def summary(self, roots: Iterable[str], seconds: float | None, extra: Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
        return {"scan": self.scan_id, "roots": [_cut(r, MAX_STRING) for r in roots][:64], "files": self.files,
                "classified": dict(self.by_level), "incomplete": self.incomplete, "errors": dict(self.errors),
                "keyword_or_rule_hits": self.hits, "violations": self.violations,
                **({"seconds": round(seconds, 3)} if seconds is not None else {}), **(extra or {})}


def scan_events(records: Iterable[Mapping[str, Any]], tally: ScanTally, location: str | None = None) -> Iterator[Item]:
    """The events of scan records (the tally counts every record, events only for the flagged)."""
    for rec in records:
        tally.add(rec)
        p = finding_payload(rec, tally.scan_id)
        if p is not None:
            yield ("finding", p, None)
        for v in violation_payloads(rec, tally.scan_id):
            yield ("violation", {**v, "location": location} if location else v, None)


class ScanSender:
    """Spools a scan's events as it runs (records arrive one by one), then its summary, and
    delivers them; the spool keeps them across a collector outage or a crash."""

    def __init__(self, state_dir: str, location: str | None = None) -> None:
        from reports.client import AuditClient

        self.client = AuditClient(state_dir)
        self.location = location  # the scan's --location, told with each violation
        self.tally = ScanTally()
        self._batches = 0
        self._pending: list[Item] = []

    def add(self, rec: Mapping[str, Any]) -> None:
        self._pending.extend(scan_events([rec], self.tally, self.location))
        if len(self._pending) >= 500:
            self._spool()

    def _spool(self) -> None:
        if self._pending:
            # one transaction per batch (events and progress together); each batch is a source of
            # its own, named by the scan's id, so a re-run of the same scan is a new scan
            self._batches += 1
            self.client.submit_source(f"scan:{self.tally.scan_id}:{self._batches}", list(self._pending))
            self._pending.clear()

    def finish(self, roots: Iterable[str], seconds: float, extra: Mapping[str, Any] | None = None,
               timeout: float = 10.0) -> tuple[int, int]:
        """Spool the rest and the summary; try to deliver for `timeout` s. (acked, pending)."""
        self._pending.append(("scan_summary", self.tally.summary(roots, seconds, extra), None))
        self._spool()
        try:
            res = self.client.flush(timeout=timeout)
            return res.acked, res.pending
        finally:
            self.client.close()
