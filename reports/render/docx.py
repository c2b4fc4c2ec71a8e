"""DOCX report with python-docx in the layout of a 保密检查报告: title, 检查范围, 检查方法,
发现的问题 (by category, with charts), 整改要求, 附件."""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from docx import Document
from docx.document import Document as DocumentObject
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Cm, Pt

from reports.render.html import charts
from reports.render.model import APPENDIX_ROWS, ReportData, level_name
from scanner.i18n import tr


def _font(doc: DocumentObject) -> None:
    style = doc.styles["Normal"]
    style.font.name = "WenQuanYi Zen Hei"
    style.font.size = Pt(11)
    style.element.rPr.rFonts.set(qn("w:eastAsia"), "WenQuanYi Zen Hei")  # CJK runs use eastAsia


def _table(doc: DocumentObject, head: list[str], rows: Sequence[Sequence[object]]) -> None:
    t = doc.add_table(rows=1, cols=len(head))
    t.style = "Table Grid"
    for cell, h in zip(t.rows[0].cells, head, strict=True):
        cell.text = h
    for r in rows:
        cells = t.add_row().cells
        for cell, v in zip(cells, r, strict=True):
            cell.text = "" if v is None else str(v)


def render_docx(data: ReportData, out: str | Path) -> None:
    doc = Document()
    _font(doc)
    h = doc.add_heading(data.title, 0)
    h.alignment = WD_ALIGN_PARAGRAPH.CENTER
    doc.add_paragraph(tr("生成时间：", "Generated: ") + data.generated).alignment = WD_ALIGN_PARAGRAPH.CENTER

    doc.add_heading(tr("一、检查范围", "1. Scope"), 1)
    _table(doc, [tr("项目", "item"), tr("内容", "value")],
           [[k, v] for k, v in data.scope.items()] + [[tr("事件总数", "events"), data.events]])
    doc.add_heading(tr("二、检查方法", "2. Method"), 1)
    doc.add_paragraph(tr("终端代理扫描文件中的国家秘密标志，按策略判定，事件经签名并写入哈希链审计日志；"
                         "本报告由审计日志生成，并对整条日志链进行校验。",
                         "Agents scan files for classification markings and decide by policy; events are "
                         "signed and recorded in a hash-chained audit log, verified in full for this report."))
    c = data.chain
    verdict = (tr("未校验（缺服务器公钥）", "not verified (no server key)") if c.ok is None
               else tr("完好", "intact") if c.ok
               else tr(f"被篡改或不完整：#{c.first_bad} {c.problem}", f"tampered: #{c.first_bad} {c.problem}"))
    doc.add_paragraph(tr(f"日志链校验：{verdict}；{c.entries} 条记录，{c.checkpoints} 个检查点已核对",
                         f"Chain verification: {verdict}; {c.entries} entries, {c.checkpoints} checkpoints matched")
                      + (f"；{tr('最新检查点', 'latest checkpoint')} #{c.checkpoint_size} {c.checkpoint_time} "
                         f"{c.checkpoint_root[:16]}" if c.checkpoint_size else ""))

    doc.add_heading(tr("三、发现的问题", "3. Findings"), 1)
    pngs = charts(data, "png")
    for n, (key, head, pairs) in enumerate((
            ("level", tr("密级", "level"), [(level_name(k), v) for k, v in data.by_level]),
            ("rule", tr("规则", "rule"), data.by_rule[:20]),
            ("host", tr("主机", "host"), data.by_host[:20]),
            ("channel", tr("渠道", "channel"), data.by_channel),
            ("week", tr("周", "week"), data.by_week)), 1):
        doc.add_heading(tr(f"（{n}）按{head}统计", f"({n}) By {head}"), 2)
        if key in pngs:
            doc.add_picture(io.BytesIO(pngs[key]), width=Cm(14))
        _table(doc, [head, tr("数量", "count")], [[k, v] for k, v in pairs])
    doc.add_heading(tr("（6）违规整改与督办", "(6) Violations and follow-up"), 2)
    doc.add_paragraph(tr(f"未整改 {data.violations_open} 项，已整改 {data.violations_rectified} 项，"
                         f"督办逾期 {data.overdue_followups} 项。",
                         f"{data.violations_open} open, {data.violations_rectified} rectified, "
                         f"{data.overdue_followups} overdue follow-ups."))
    if not data.followups and data.violations_open:
        doc.add_paragraph(tr("尚无督办记录：全部违规按未整改计。", "No follow-up recorded yet: every violation counts as open."))
    if data.followups:
        _table(doc, [tr("违规事件", "violation"), tr("责任人", "owner"), tr("期限", "deadline"), tr("状态", "status")],
               [[f.violation, f.owner, f.deadline, f.status + (tr("（逾期）", " (overdue)") if f.overdue else "")]
                for f in data.followups])
    doc.add_heading(tr("（7）逾期未签署的八不承诺", "(7) Overdue 八不 attestations"), 2)
    doc.add_paragraph(tr(f"{len(data.attestations_overdue)} 项", f"{len(data.attestations_overdue)} items"))
    doc.add_heading(tr("（8）存储介质与交叉使用", "(8) Media and cross-use"), 2)
    doc.add_paragraph(tr(f"发现介质 {len(data.media)} 个，其中跨主机使用 {len(data.media_cross_use)} 个。",
                         f"{len(data.media)} media seen, {len(data.media_cross_use)} used across hosts."))
    if data.media:
        _table(doc, [tr("介质", "medium"), tr("事件", "events"), tr("主机数", "hosts")], [list(m) for m in data.media])
    doc.add_heading(tr("（9）迟报、漏报、瞒报迹象", "(9) Late, missing or withheld reports"), 2)
    doc.add_paragraph(tr(f"失联终端 {len(data.silent)} 个，序号缺口 {len(data.gaps)} 处。",
                         f"{len(data.silent)} silent agents, {len(data.gaps)} sequence gaps."))
    if data.silent:
        _table(doc, [tr("终端", "agent"), tr("主机", "host"), tr("最后上报", "last seen")],
               [[s.agent, s.host, s.last_seen] for s in data.silent])
    if data.gaps:
        _table(doc, ["#", tr("终端", "agent"), tr("缺失序号", "missing seq"), tr("原因", "reason")],
               [[g.gseq, g.agent, f"{g.first}-{g.last}", g.reason] for g in data.gaps])

    doc.add_heading(tr("四、整改要求", "4. Required rectification"), 1)
    for z, en in (("对未整改违规逐项落实责任人和期限，逾期事项报保密委员会督办。",
                   "Assign an owner and deadline to every open violation; report overdue items."),
                  ("失联终端和序号缺口须查明原因并书面说明。", "Explain every silent agent and gap in writing."),
                  ("交叉使用的存储介质须收回检查。", "Recall and inspect media used across hosts.")):
        doc.add_paragraph(tr(z, en), style="List Number")

    doc.add_heading(tr("五、附件：事件明细", "5. Appendix: items"), 1)
    shown = data.items[:APPENDIX_ROWS]
    if data.events > len(shown):
        doc.add_paragraph(tr(f"仅列前 {len(shown)} 条，共 {data.events} 条（完整清单见 CSV 导出）。",
                             f"First {len(shown)} of {data.events} (the CSV export has all)."))
    _table(doc, ["#", tr("时间", "time"), tr("主机", "host"), tr("类型", "type"), tr("密级", "level"),
                 tr("规则", "rule"), tr("路径", "path"), tr("标志", "marking")],
           [[r["gseq"], str(r.get("time", ""))[:19], r.get("host"), r["type"], level_name(r.get("level")),
             r.get("rule"), r.get("path"), r.get("marking")] for r in shown])
    doc.save(str(out))
