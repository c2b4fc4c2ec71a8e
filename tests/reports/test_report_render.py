"""Inspection reports from a fixture log built through the real store and ingest code: the
figures every format states, DOCX through python-docx and LibreOffice, PDF text through PDFium,
one page of each rendered to PNG in the artefacts directory."""
from __future__ import annotations

import csv
import io
import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from audit_helpers import BAOMI, baomi

from reports.officer import StoreSource
from reports.render.collect import collect
from reports.render.fixture import build_sample_log
from reports.server import load_data
from reports.store import Query

ARTEFACTS = Path(os.environ.get("BAOMI_ARTEFACTS") or Path(__file__).parent.parent / "artefacts")


@pytest.fixture
def sample(sqlite_data: Path) -> tuple[Path, dict]:  # type: ignore[type-arg]
    data = load_data(sqlite_data)
    store = data.open_store(None)
    try:
        expected = build_sample_log(store, data.key, n_findings=100)
    finally:
        store.close()
    return sqlite_data, expected


def _data(srv: Path, **q: object):  # type: ignore[no-untyped-def]
    d = load_data(srv)
    src = StoreSource(d.open_store(None), d.key)
    try:
        return collect(src, Query(**q), server_key=d.key.public_key(), channel=None)  # type: ignore[arg-type]
    finally:
        src.close()


def test_report_data_states_the_log(sample: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    srv, exp = sample
    d = _data(srv)
    assert dict(d.by_level) == exp["level"]
    assert dict(d.by_rule) == exp["rule"]
    assert dict(d.by_host) == exp["host"]
    assert dict(d.by_channel) == exp["channel"]
    assert sum(n for _, n in d.by_week) == exp["findings"]
    assert (d.violations_open, d.violations_rectified) == (exp["open"], exp["rectified"])
    assert d.overdue_followups == exp["overdue_followups"]
    assert [f.owner for f in d.followups if f.overdue] == ["李四"]
    assert len(d.attestations_overdue) == exp["overdue_attestations"]
    assert len(d.media) == exp["media"] and [m[0] for m in d.media_cross_use] == ["USB-SN-AAA"]
    assert [s.agent for s in d.silent] == exp["silent"]
    assert [(g.agent, g.first, g.last) for g in d.gaps] == [("a-ws-02", 36, 40)]
    assert d.chain.ok is True and d.chain.entries > 100
    assert d.chain.checkpoints == 1 and d.chain.checkpoint_size == d.chain.entries


def test_tampered_chain_is_reported_not_hidden(sample: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    import sqlite3

    srv, _ = sample
    db = sqlite3.connect(srv / "audit.sqlite")
    rec = db.execute("SELECT record FROM entries WHERE gseq = 10").fetchone()[0]
    db.execute("UPDATE entries SET record = ? WHERE gseq = 10", (rec.replace("/home/u/docs", "/tmp/x", 1),))
    assert "/home/u/docs" in rec
    db.commit()
    db.close()
    d = _data(srv)
    assert d.chain.ok is False and d.chain.first_bad == 10
    out = srv / "t.html"
    baomi("report", "html", "--data", str(srv), "--out", str(out))
    assert "tampered or incomplete" in out.read_text() and "#10" in out.read_text()


def test_html_report_cli_filters_and_inert_text(sample: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    srv, exp = sample
    out = tmp_path / "r.html"
    res = baomi("report", "html", "--data", str(srv), "--out", str(out), "--host", "ws-01")
    assert "report written" in res.stdout
    html = out.read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;.docx" in html
    by_host = re.search(r'<table id="by-host">(.*?)</table>', html, re.S).group(1)  # type: ignore[union-attr]
    assert "ws-01" in by_host and "ws-02" not in by_host
    assert f"<td>{exp['host']['ws-01']}</td>" in by_host
    assert 'src="data:image/svg+xml;base64,' in html and not re.search(r'(src|href)="(https?:)?//', html)  # no external assets
    out2 = tmp_path / "c.html"
    baomi("report", "html", "--data", str(srv), "--out", str(out2), "--channel", "usb", "--level", "secret")
    d = re.search(r'<table id="by-channel">(.*?)</table>', out2.read_text(), re.S).group(1)  # type: ignore[union-attr]
    assert "usb" in d and "mail" not in d
    assert "a-ws-silent" in html and "a-ws-02" in html  # silent agent and gap shown even when filtered


def test_csv_report(sample: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    srv, exp = sample
    out = tmp_path / "r.csv"
    baomi("report", "csv", "--data", str(srv), "--out", str(out))
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    counts = {(r[0], r[1]): r[2] for r in rows if len(r) == 3}
    assert counts[("level", "secret")] == str(exp["level"]["secret"])
    assert counts[("followups", "overdue")] == "1" and counts[("agents", "silent")] == "1"


def _png_of_pdf_page(pdf: Path, png: Path) -> None:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))
    try:
        doc[0].render(scale=1.5).to_pil().save(png)
    finally:
        doc.close()


def _pdf_text(pdf: Path) -> str:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))
    try:
        return "\n".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
    finally:
        doc.close()


def test_docx_report_opens_and_converts(sample: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    import docx

    from reports.render.pdf import docx_to_pdf, soffice

    srv, exp = sample
    out = tmp_path / "r.docx"
    baomi("report", "docx", "--lang", "zh", "--data", str(srv), "--out", str(out))
    doc = docx.Document(str(out))
    heads = [p.text for p in doc.paragraphs if p.style.name.startswith("Heading") or p.style.name == "Title"]
    for h in ("保密检查报告", "检查范围", "检查方法", "发现的问题", "整改要求", "附件"):
        assert any(h in x for x in heads), (h, heads)
    assert len(doc.inline_shapes) >= 4  # the charts
    cells = [c.text for t in doc.tables for r in t.rows for c in r.cells]
    assert "<script>alert(1)</script>.docx" in cells  # literal text in Word, never markup
    if soffice() is None:
        pytest.skip("LibreOffice not installed: DOCX conversion not checked")
    pdf = docx_to_pdf(out, tmp_path)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    _png_of_pdf_page(pdf, ARTEFACTS / "report-docx-page1.png")
    assert "保密检查报告" in _pdf_text(pdf)


def test_pdf_report_text_holds_the_counts(sample: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    from reports.render.pdf import soffice

    if soffice() is None:
        pytest.skip("LibreOffice not installed: the PDF engine is absent")
    srv, exp = sample
    out = tmp_path / "r.pdf"
    baomi("report", "pdf", "--lang", "zh", "--data", str(srv), "--out", str(out))
    text = _pdf_text(out)
    assert f"未整改 {exp['open']} 项，已整改 1 项，督办逾期 1 项" in text.replace("\r", "").replace("\n", "")
    assert "失联终端 1 个，序号缺口 1 处" in text
    assert "跨主机使用 1 个" in text
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    _png_of_pdf_page(out, ARTEFACTS / "report-pdf-page1.png")


def test_missing_pdf_engine_is_one_line_exit_2(sample: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    srv, _ = sample
    res = subprocess.run([*BAOMI, "report", "pdf", "--data", str(srv), "--out", str(tmp_path / "x.pdf")],
                         capture_output=True, text=True, timeout=120, check=False,
                         env={**os.environ, "BAOMI_LANG": "en", "PATH": "/nonexistent"})
    assert res.returncode == 2 and "LibreOffice" in res.stderr and "Traceback" not in res.stderr


def test_legacy_render_html_signature() -> None:
    from reports.render import render_html

    rows = [{"gseq": 1, "time": datetime.now(UTC).isoformat(), "host": "h", "type": "finding",
             "level": "secret", "rule": "R", "path": "<b>x</b>", "marking": "机密", "payload": {}}]
    html = render_html(rows)
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html


def test_scan_report_without_collector(tmp_path: Path) -> None:
    tree = tmp_path / "stick"
    tree.mkdir()
    (tree / "<script>x<script>.txt").write_text("机密★10年\n关于某项目的通知\n", encoding="utf-8")
    (tree / "clean.txt").write_text("会议纪要\n", encoding="utf-8")
    out = tmp_path / "scan.html"
    res = subprocess.run([*BAOMI, "scan", "--no-cache", "--no-progress", "--format", "jsonl", "-j", "-1",
                          "--report", str(out), str(tree)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "BAOMI_LANG": "en"}, check=False)
    assert res.returncode == 1, res.stderr  # classified content found
    html = out.read_text()
    assert "&lt;script&gt;x&lt;script&gt;.txt" in html and "<script>x" not in html
    by_level = re.search(r'<table id="by-level">(.*?)</table>', html, re.S).group(1)  # type: ignore[union-attr]
    assert "<td>secret</td><td>1</td>" in by_level
    bad = subprocess.run([*BAOMI, "scan", "--no-cache", "--report", str(tmp_path / "r.txt"), str(tree)],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "BAOMI_LANG": "en"},
                         check=False)
    assert bad.returncode == 2 and "must end in" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("channel", [None, "usb"])
def test_sql_aggregates_equal_the_python_fold(server_data: Path, channel: str | None) -> None:
    """The database's GROUP BY (SQLite and PostgreSQL) states the same figures as folding the
    rows in Python, with and without the channel filter."""
    from reports.render.aggregate import fleet_state, store_report
    from reports.render.model import build_report

    d = load_data(server_data)
    store = d.open_store(None)
    try:
        exp = build_sample_log(store, d.key, n_findings=60)
        now = datetime.now(UTC)
        gaps, seen = fleet_state(store)
        sql = store_report(store, Query(), channel=channel, gaps=gaps, agents_last_seen=seen, now=now)  # type: ignore[arg-type]
        py = build_report(store.query(Query()), channel=channel, gaps=gaps, agents_last_seen=seen, now=now,
                          appendix_rows=2000)
        # A level filter drops the follow-up steps (they carry no level) but not their effect.
        secret = store_report(store, Query(level="secret"), gaps=gaps, agents_last_seen=seen, now=now)  # type: ignore[arg-type]
    finally:
        store.close()
    assert sql == py
    if channel is None:
        assert dict(sql.by_level) == exp["level"] and sql.violations_rectified == 1
        assert sum(n for k, n in secret.by_type if k == "violation") < exp["violations"]
        assert (secret.violations_open + secret.violations_rectified, secret.violations_rectified) == (
            sum(n for k, n in secret.by_type if k == "violation"), 1)
        assert sql.overdue_followups == 1 and [m[0] for m in sql.media_cross_use] == ["USB-SN-AAA"]
    else:
        assert [k for k, _ in sql.by_channel] == ["usb"] and sql.by_channel[0][1] == exp["channel"]["usb"]
    assert [(g.agent, g.first) for g in gaps] == [("a-ws-02", 60 // 3 + 2 + 1)]  # after its findings and 2 media events
    assert "a-ws-silent" in [s.agent for s in sql.silent]


def test_appendix_capped_but_counts_whole(sample: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    srv, exp = sample
    d = load_data(srv)
    src = StoreSource(d.open_store(None), d.key)
    try:
        data = collect(src, Query(), appendix_rows=10)
    finally:
        src.close()
    assert len(data.items) == 10 and data.events > 100 and sum(n for _, n in data.by_week) == exp["findings"]
    from reports.render.html import render_html

    assert f"First 10 of {data.events}" in render_html(data) or f"仅列前 10 条，共 {data.events} 条" in render_html(data)


def test_verification_resumes_from_this_machines_state(sample: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    """A second report re-hashes what was verified before instead of re-checking signatures, yet
    tampering inside that prefix is still found and named, and new entries are fully checked."""
    import sqlite3

    from reports.chain import Verified
    from reports.render import verifycache

    srv, _ = sample
    vc = tmp_path / "vc"
    d = load_data(srv)

    def run():  # type: ignore[no-untyped-def]
        src = StoreSource(d.open_store(None), d.key)
        try:
            return collect(src, Query(), server_key=d.key.public_key(), verify_cache=vc)
        finally:
            src.close()

    first = run()
    state = verifycache.load(d.key.public_key(), vc)
    assert first.chain.ok and isinstance(state, Verified) and state.size == first.chain.entries
    assert run().chain.ok
    # A new event with a bad signature after the remembered prefix: checked in full.
    db = sqlite3.connect(srv / "audit.sqlite")
    db.execute("UPDATE entries SET record = replace(record, 'docs', 'DOCS') WHERE gseq = 10")
    db.commit()
    db.close()
    bad = run()
    assert bad.chain.ok is False and bad.chain.first_bad == 10  # named, not just "differs"


def test_followup_events_of_the_console_count() -> None:
    """The hook the officer console writes to: `followup_<step>` events naming the violation."""
    from reports.render.model import build_report

    now = datetime.now(UTC)
    rows = [{"gseq": 1, "type": "violation", "event_id": "v1", "level": "secret", "payload": {}},
            {"gseq": 2, "type": "violation", "event_id": "v2", "level": "secret", "payload": {}},
            {"gseq": 3, "type": "followup_assign", "payload": {"violation": "v1", "owner": "张三",
                                                               "deadline": "2000-01-01T00:00:00Z"}},
            {"gseq": 4, "type": "followup_assign", "payload": {"violation": "v2", "owner": "李四",
                                                               "deadline": "2000-01-01T00:00:00Z"}},
            {"gseq": 5, "type": "followup_close", "payload": {"violation": "v2"}}]
    d = build_report(rows, now=now)
    assert (d.violations_open, d.violations_rectified, d.overdue_followups) == (1, 1, 1)
    from reports.render.html import render_html

    assert "No follow-up recorded yet" not in render_html(d)
    bare = build_report(rows[:2], now=now)
    assert (bare.violations_open, bare.violations_rectified) == (2, 0)
    assert "No follow-up recorded yet" in render_html(bare) or "尚无督办记录" in render_html(bare)
    assert [(f.violation, f.owner, f.status, f.overdue) for f in d.followups] == [
        ("v1", "张三", "assign", True), ("v2", "李四", "close", False)]
