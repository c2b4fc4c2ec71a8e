"""Officer report rendering: an HTML inspection summary (保密检查报告) from audit query rows.

Self-contained HTML (no scripts, no external assets) so it can be archived or printed as is;
everything from the log is escaped.
"""
from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable
from typing import Any

from scanner.i18n import tr

_LEVEL_ZH = {"top_secret": "绝密", "secret": "机密", "confidential": "秘密", "internal": "内部"}


def render_html(rows: Iterable[dict[str, Any]], title: str | None = None) -> str:
    rows = list(rows)
    e = html.escape
    title = title or tr("保密检查报告（审计日志）", "Confidentiality inspection report (audit log)")
    by_type = Counter(r["type"] for r in rows)
    by_level = Counter(r.get("level") or "-" for r in rows)
    by_host = Counter(r.get("host") or "-" for r in rows)

    def table(counter: Counter[str], head: str, names: dict[str, str] | None = None) -> str:
        body = "".join(f"<tr><td>{e((names or {}).get(k, k))}</td><td>{v}</td></tr>"
                       for k, v in counter.most_common())
        return f"<table><tr><th>{e(head)}</th><th>{e(tr('数量', 'count'))}</th></tr>{body}</table>"

    detail = "".join(
        "<tr>" + "".join(f"<td>{e(str(x if x is not None else ''))}</td>" for x in (
            r["gseq"], r["time"], r.get("host"), r["type"], _LEVEL_ZH.get(str(r.get("level")), r.get("level")),
            r.get("rule"), r.get("path"), r.get("marking"))) + "</tr>" for r in rows)
    cols = [tr(z, en) for z, en in (("序号", "#"), ("时间", "time"), ("主机", "host"), ("类型", "type"),
                                   ("密级", "level"), ("规则", "rule"), ("路径", "path"), ("标志", "marking"))]
    return f"""<!DOCTYPE html>
<html lang="{tr('zh-CN', 'en')}"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:"Noto Sans CJK SC",sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #999;padding:2px 6px;font-size:90%}}</style></head><body>
<h1>{e(title)}</h1>
<p>{e(tr(f"事件总数：{len(rows)}", f"events: {len(rows)}"))}</p>
{table(by_type, tr("类型", "type"))}{table(by_level, tr("密级", "level"), _LEVEL_ZH)}{table(by_host, tr("主机", "host"))}
<h2>{e(tr("明细", "details"))}</h2>
<table><tr>{"".join(f"<th>{e(c)}</th>" for c in cols)}</tr>{detail}</table>
</body></html>
"""
