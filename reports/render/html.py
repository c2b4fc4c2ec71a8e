"""HTML report through Jinja2 with autoescape: everything from the log renders inert."""
from __future__ import annotations

import base64
from functools import cache

from markupsafe import Markup

from reports.render.charts import bar_chart
from reports.render.model import ReportData, level_name
from scanner.i18n import tr


@cache
def _env():  # type: ignore[no-untyped-def]
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("reports.render", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.globals.update(tr=tr, level_name=level_name)
    return env


def charts(data: ReportData, fmt: str) -> dict[str, bytes]:
    out = {}
    for key, pairs, zh, en in (("level", [(level_name(k), v) for k, v in data.by_level], "按密级", "by level"),
                               ("rule", data.by_rule, "按规则", "by rule"),
                               ("host", data.by_host, "按主机", "by host"),
                               ("week", data.by_week, "按周", "by week")):
        if pairs:
            out[key] = bar_chart(pairs, tr(zh, en), fmt, horizontal=key != "week")
    return out


def render_html(data: ReportData) -> str:
    # Each chart is a data: URI image, not inline SVG: matplotlib's element ids (clip paths)
    # would collide between charts in one page, and an <img> cannot run anything in it.
    svgs = {k: Markup('<img alt="{}" src="data:image/svg+xml;base64,{}">').format(k, base64.b64encode(v).decode())
            for k, v in charts(data, "svg").items()}
    return _env().get_template("report.html.j2").render(d=data, charts=svgs, lang=tr("zh-CN", "en"))
