"""The officer console over real HTTPS: `baomi server run` in a subprocess serving a fixture log
(built through the real store and ingest code), users added with `baomi server user add`, pages
read with httpx as a browser would send them (cookies, CSRF fields). Assertions are on page
content: what an officer, an auditor and an admin see and may do."""
from __future__ import annotations

import re
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from audit_helpers import BAOMI, Collector

from reports.chain import verify_entries
from reports.render.fixture import build_sample_log
from reports.server import load_data

PASSWORDS = {"off1": "officer-pass-1", "aud1": "auditor-pass-1", "adm1": "admin-pass-01"}
ROLES = {"off1": "officer", "aud1": "auditor", "adm1": "admin"}


@pytest.fixture
def console(sqlite_data: Path) -> Iterator[tuple[Collector, dict]]:
    data = load_data(sqlite_data)
    store = data.open_store()
    try:
        expected = build_sample_log(store, data.key, n_findings=120)
    finally:
        store.close()
    for name, pw in PASSWORDS.items():
        tz = "America/New_York" if name == "aud1" else "Asia/Shanghai"
        r = subprocess.run([*BAOMI, "server", "user", "add", name, "--role", ROLES[name], "--data", str(sqlite_data),
                            "--tz", tz, "--password-file", "-"], input=pw + "\n", capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    c = Collector(sqlite_data).start()
    try:
        yield c, expected
    finally:
        c.stop()


def client(c: Collector) -> httpx.Client:
    return httpx.Client(base_url=c.url, verify=ssl.create_default_context(cafile=str(c.ca)),
                        follow_redirects=True, timeout=30)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def login(h: httpx.Client, name: str, password: str | None = None) -> httpx.Response:
    page = h.get("/login")
    return h.post("/login", data={"name": name, "password": password or PASSWORDS[name],
                                  "csrf": csrf_of(page.text), "next": ""})


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_sign_in_roles_and_headers(console: tuple[Collector, dict]) -> None:
    c, expected = console
    with client(c) as h:
        # not signed in: every page leads to the sign-in form
        r = h.get("/violations?level=secret")
        assert "/login" in str(r.url) and 'name="password"' in r.text
        assert "next=%2Fviolations%3Flevel%3Dsecret" in str(r.url)
        bad = login(h, "off1", "wrong-password")
        assert "用户名或密码错误" in bad.text and "baomi_session" not in h.cookies
        ok = login(h, "off1")
        assert "概览" in ok.text and f'id="n-violations">{expected["violations"]}<' in ok.text
        csp = ok.headers["content-security-policy"]
        assert "script-src" not in csp and "default-src 'none'" in csp  # no script may run at all
        assert ok.headers["x-frame-options"] == "DENY"
        assert "<script" not in ok.text
        cookie = next(ck for ck in h.cookies.jar if ck.name == "baomi_session")
        assert cookie.secure and cookie.has_nonstandard_attr("HttpOnly")
    with client(c) as h:
        login(h, "adm1")
        assert "您的角色无权访问此页面" in h.get("/violations").text  # admin: fleet, not findings
        assert "ws-silent" in h.get("/agents").text
        assert "off1" in h.get("/users").text
    with client(c) as h:
        login(h, "aud1")
        assert "您的角色无权访问此页面" in h.get("/users").text
        v = expected["violations"]
        detail = h.get("/violations").text
        assert f"共 {v} 项" in detail
        assert 'id="assign-form"' not in h.get(f"/violations/{_first_gseq(detail)}").text  # read-only


def _first_gseq(html: str) -> int:
    return int(re.search(r'href="/violations/(\d+)"', html).group(1))  # type: ignore[union-attr]


def test_open_redirect_and_login_csrf_refused(console: tuple[Collector, dict]) -> None:
    c, _ = console
    with client(c) as h:
        page = h.get("/login")
        r = h.post("/login", data={"name": "off1", "password": PASSWORDS["off1"], "csrf": "forged",
                                   "next": ""})
        assert "登录表单已失效" in r.text and "baomi_session" not in h.cookies
        r = h.post("/login", data={"name": "off1", "password": PASSWORDS["off1"], "csrf": csrf_of(page.text),
                                   "next": "//evil.example/x"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"


def test_filters_paging_and_inert_file_names(console: tuple[Collector, dict]) -> None:
    c, expected = console
    with client(c) as h:
        login(h, "off1")
        page = h.get("/violations", params={"level": "top_secret"})
        rows = re.findall(r'<tr class="level-(\w+)', page.text)
        assert rows and set(rows) == {"top_secret"}
        n_top = int(re.search(r"共 (\d+) 项", page.text).group(1))  # type: ignore[union-attr]
        assert 0 < n_top < expected["violations"]
        # the fixture's first file is named <script>alert(1)</script>.docx: shown as text
        everything = h.get("/violations", params={"q": "script"})
        assert "&lt;script&gt;alert(1)&lt;/script&gt;.docx" in everything.text
        assert "<script>" not in everything.text
        # keyset paging: 12 violations, 50 a page → no next page; a path filter narrows
        assert 'id="next"' not in everything.text
        overdue = h.get("/violations", params={"status": "overdue"}).text
        assert "共 1 项" in overdue and "李四" in overdue
        # dates: since tomorrow → nothing
        assert "共 0 项" in h.get("/violations", params={"since": "2999-01-01"}).text
        csv_ = h.get("/violations.csv", params={"status": "overdue"})
        assert csv_.headers["content-type"].startswith("text/csv")
        lines = csv_.content.decode("utf-8-sig").splitlines()
        assert lines[0].startswith("gseq,time,host,level") and len(lines) == 2 and "李四" in lines[1]
        chart = h.get("/charts/level.svg")
        assert chart.headers["content-type"].startswith("image/svg+xml") and b"<svg" in chart.content


def test_follow_up_assign_rectify_close_as_signed_chain_entries(console: tuple[Collector, dict]) -> None:
    c, _expected = console
    with client(c) as h:
        login(h, "off1")
        unassigned = h.get("/violations", params={"status": "unassigned"}).text
        g = _first_gseq(unassigned)
        page = h.get(f"/violations/{g}")
        assert "尚未交办" in page.text and "SHA-256" in page.text and f"#{g} ·" in page.text
        tok = csrf_of(page.text)
        # CSRF: a form without the session's token changes nothing
        r = h.post(f"/violations/{g}/assign", data={"owner": "x", "deadline": "2030-01-01", "csrf": "nope"})
        assert "CSRF" in r.text
        r = h.post(f"/violations/{g}/assign", data={"owner": "<b>赵六</b>", "deadline": "2030-01-01",
                                                   "note": "限期删除", "csrf": tok})
        assert 'id="status">整改中' in r.text.replace("\n", "")
        assert "&lt;b&gt;赵六&lt;/b&gt;" in r.text
        r = h.post(f"/violations/{g}/close", data={"conclusion": "", "csrf": tok})
        assert "已办结" in text(r.text)
        # a closed item cannot be rectified or reassigned
        r = h.post(f"/violations/{g}/rectify", data={"rectification": "late", "csrf": tok})
        assert "只有已交办的事项才能登记整改" in r.text
        g2 = _first_gseq(h.get("/violations", params={"status": "unassigned"}).text)
        assert g2 != g
        h.post(f"/violations/{g2}/assign", data={"owner": "钱七", "deadline": "2030-01-01", "csrf": tok})
        r = h.post(f"/violations/{g2}/rectify", data={"rectification": "已删除副本", "explanation": "误操作",
                                                     "csrf": tok})
        assert "已删除副本" in r.text and "误操作" in r.text
        r = h.post(f"/violations/{g2}/close", data={"conclusion": "整改到位", "csrf": tok})
        assert "整改到位" in r.text
    with client(c) as h:  # an auditor sees the steps but cannot record one
        login(h, "aud1")
        r = h.post(f"/violations/{g2}/assign", data={"owner": "x", "deadline": "2030-01-01",
                                                    "csrf": csrf_of(h.get(f"/violations/{g2}").text)})
        assert "您的角色无权访问此页面" in r.text
        # the auditor verifies the chain from the console: the follow-up entries are signed
        r = h.post("/chain/verify", data={"csrf": csrf_of(h.get("/chain").text)})
        assert "完整" in r.text
    data = load_data(c.data)
    store = data.open_store()
    try:
        steps = [e for e in store.entries() if e.kind == "followup"]
        assert [e.record["type"] for e in steps][-5:] == ["followup_assign", "followup_close", "followup_assign",
                                                          "followup_rectify", "followup_close"]
        assert all(e.record["payload"]["officer"] == "off1" for e in steps[-5:])
        assert verify_entries(store.entries(), data.key.public_key(), store.checkpoints()).ok
    finally:
        store.close()


def test_every_form_carries_a_csrf_token(console: tuple[Collector, dict]) -> None:
    c, _ = console
    for name in ("off1", "aud1"):
        with client(c) as h:
            login(h, name)
            g = _first_gseq(h.get("/violations").text)
            for url in ("/", "/violations", f"/violations/{g}", "/agents", "/media", "/attestations", "/chain"):
                html = h.get(url).text
                forms = re.findall(r"<form\b.*?</form>", html, re.S)
                posts = [f for f in forms if 'method="post"' in f]
                assert all('name="csrf"' in f for f in posts), (name, url)
                assert posts  # at least the sign-out form


def test_english_and_time_zone(console: tuple[Collector, dict]) -> None:
    c, _ = console
    with client(c) as h:
        login(h, "aud1")  # America/New_York
        r = h.get("/lang", params={"to": "en", "next": "/violations"})
        assert "Violations" in r.text and "items" in r.text and "违规事项" not in r.text
        assert "· America/New_York" in r.text


def test_user_cli_refuses_weak_password_and_disables(sqlite_data: Path) -> None:
    r = subprocess.run([*BAOMI, "server", "user", "add", "u1", "--role", "officer", "--data", str(sqlite_data),
                        "--password-file", "-"], input="short\n", capture_output=True, text=True)
    assert r.returncode == 2 and "at least" in r.stderr
    r = subprocess.run([*BAOMI, "server", "user", "disable", "nobody", "--data", str(sqlite_data)],
                       capture_output=True, text=True)
    assert r.returncode == 2


def test_dashboard_figures_match_the_log(sqlite_data: Path) -> None:
    from datetime import UTC, datetime

    from reports.console.data import dashboard

    data = load_data(sqlite_data)
    store = data.open_store()
    try:
        expected = build_sample_log(store, data.key, n_findings=90)
        d = dashboard(store, datetime.now(UTC).date())
    finally:
        store.close()
    assert dict(d.by_level) == expected["level"]
    assert d.violations == expected["violations"] and d.findings == 90 - expected["violations"]
    assert d.status == {"assigned": 2, "rectified": 1, "closed": 0, "overdue": 1,
                        "unassigned": expected["violations"] - 3}
    assert sum(n for _, n in d.by_week) == 90  # the fixture spans 11 days, within the 12 weeks shown


def test_media_attestations_and_user_list(console: tuple[Collector, dict]) -> None:
    c, _ = console
    with client(c) as h:
        login(h, "off1")
        media = text(h.get("/media").text)
        assert "USB-SN-AAA" in media and "交叉使用" in media and "USB-SN-BBB" in media
        att = text(h.get("/attestations").text)
        assert "zhao" in att and "逾期" in att and "qian" in att
    out = subprocess.run([*BAOMI, "server", "user", "list", "--data", str(c.data)], capture_output=True, text=True)
    assert out.returncode == 0
    assert sorted(line.split("\t")[:2] for line in out.stdout.splitlines()) == [
        ["adm1", "admin"], ["aud1", "auditor"], ["off1", "officer"]]
