"""Officer inspection reports (保密检查报告): one `ReportData` laid out as HTML, DOCX, PDF or CSV.

`render_html(rows)` keeps the old signature of reports/render.py: a list of query rows in,
HTML out.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reports.render.model import ReportData, build_report


def render_html(rows: Iterable[Mapping[str, Any]] | ReportData, title: str | None = None) -> str:
    from reports.render.html import render_html as _html

    data = rows if isinstance(rows, ReportData) else build_report(rows, title=title)
    return _html(data)


__all__ = ["ReportData", "build_report", "render_html"]
