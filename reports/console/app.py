"""The officer console served by the collector at `/`: login, dashboard, violations with their
follow-up (督办), agents, media, attestations, the chain, users.

Server-rendered Jinja2 templates with autoescape (file names, markings and explanations from the
log always render inert); no JavaScript at all and no external asset, so the Content-Security-
Policy forbids scripts outright; every form carries the session's CSRF token (the login form a
double-submit cookie); cookies are HttpOnly, SameSite=Strict and Secure over TLS. zh-CN by
default, English by the user's setting or the language switch; times in the user's time zone.
"""
from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from reports.console import accounts, data
from reports.followup import FollowupError, record_step
from reports.render.model import LEVEL_EN, LEVEL_ZH
from reports.store import SqlStore
from scanner.i18n import tr, use_lang

HERE = Path(__file__).parent
SESSION_COOKIE = "baomi_session"
LOGIN_COOKIE = "baomi_login_csrf"
LANG_COOKIE = "baomi_lang"
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
READERS = ("officer", "auditor")
#: Failed logins per user name before a pause (per process), and the pause.
MAX_FAILURES, PAUSE = 5, 300.0

Handler = Callable[[Request], Awaitable[Response]]


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.globals["t"] = tr
    env.filters["level"] = lambda lv: tr(LEVEL_ZH.get(lv, lv or "-"), LEVEL_EN.get(lv, lv or "-"))
    return env


def local_time(ts: str | None, tz: str) -> str:
    """An ISO UTC time in the officer's zone, to the minute."""
    if not ts:
        return "-"
    try:
        t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def console_routes(store: SqlStore, server_key: Any, data_dir: Path, secure: bool) -> list[BaseRoute]:
    env = _env()
    failures: dict[str, tuple[int, float]] = {}
    chart_cache: dict[tuple[str, str, bool], bytes] = {}
    verify_file = data_dir / "console-verify.json"
    memo: dict[tuple[Any, ...], tuple[float, Any]] = {}

    async def cached(key: tuple[Any, ...], ttl: float, fn: Callable[..., Any], *args: Any) -> Any:
        """Figures over the whole log (dashboard, filter choices) for `ttl` seconds: a page view
        must not re-aggregate 100,000 events while agents keep appending."""
        hit = memo.get(key)
        if hit is not None and time.monotonic() - hit[0] < ttl:
            return hit[1]
        value = await run_in_threadpool(fn, *args)
        if len(memo) > 256:
            memo.clear()
        memo[key] = (time.monotonic(), value)
        return value

    def headers(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def lang_of(request: Request, sess: accounts.Session | None) -> str:
        lang = request.cookies.get(LANG_COOKIE) or (sess.user.lang if sess else "zh")
        return lang if lang in ("zh", "en") else "zh"

    def page(request: Request, name: str, sess: accounts.Session | None, status: int = 200,
             **ctx: Any) -> Response:
        tz = sess.user.tz if sess else "Asia/Shanghai"
        html = env.get_template(name).render(
            request=request, me=sess.user if sess else None, csrf=sess.csrf if sess else "",
            lang=lang_of(request, sess), tz=tz, local=lambda ts: local_time(ts, tz), **ctx)
        return headers(HTMLResponse(html, status_code=status))

    def today(sess: accounts.Session) -> date:
        return datetime.now(ZoneInfo(sess.user.tz)).date()

    def guarded(roles: tuple[str, ...], *, post: bool = False) -> Callable[[Callable[..., Awaitable[Response]]], Handler]:
        """Sign-in, role and (for forms) CSRF checks around a page handler(request, session)."""
        def wrap(fn: Callable[..., Awaitable[Response]]) -> Handler:
            async def handler(request: Request) -> Response:
                sess = await run_in_threadpool(accounts.session, store, request.cookies.get(SESSION_COOKIE))
                use_lang(lang_of(request, sess))
                if sess is None:
                    nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return headers(RedirectResponse("/login?" + urlencode({"next": nxt}), status_code=303))
                if sess.user.role not in roles:
                    return page(request, "error.html.j2", sess, 403,
                                message=tr("您的角色无权访问此页面。", "Your role may not open this page."))
                if post:
                    form = await request.form()
                    if not hmac.compare_digest(str(form.get("csrf", "")), sess.csrf):
                        return page(request, "error.html.j2", sess, 403,
                                    message=tr("表单已失效（CSRF 校验失败），请返回重试。",
                                               "The form expired (CSRF check failed); go back and retry."))
                    request.state.form = form
                return await fn(request, sess)
            return handler
        return wrap

    # ------------------------------------------------------------ sign in / out, language
    async def login_page(request: Request) -> Response:
        use_lang(lang_of(request, None))
        token = secrets.token_urlsafe(24)
        resp = page(request, "login.html.j2", None, login_csrf=token, next=_safe_next(request.query_params.get("next")),
                    error=None)
        resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/login")
        return resp

    async def login_post(request: Request) -> Response:
        use_lang(lang_of(request, None))
        form = await request.form()
        name, password = str(form.get("name", ""))[:64], str(form.get("password", ""))[:256]
        nxt = _safe_next(str(form.get("next", "")))
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        if not cookie or not hmac.compare_digest(str(form.get("csrf", "")), cookie):
            return page(request, "error.html.j2", None, 403,
                        message=tr("登录表单已失效，请刷新后重试。", "The sign-in form expired; reload and retry."))
        n, until = failures.get(name, (0, 0.0))
        if n >= MAX_FAILURES and time.monotonic() < until:
            err = tr("失败次数过多，请稍后再试。", "Too many failed attempts; try again later.")
            return page(request, "login.html.j2", None, 429, login_csrf=cookie, next=nxt, error=err)
        got = await run_in_threadpool(accounts.login, store, name, password)
        if got is None:
            if len(failures) > 10_000:  # names are attacker-chosen: keep the table bounded
                failures.clear()
            failures[name] = (n + 1, time.monotonic() + PAUSE)
            return page(request, "login.html.j2", None, 401, login_csrf=cookie, next=nxt,
                        error=tr("用户名或密码错误。", "Wrong user name or password."))
        failures.pop(name, None)
        sid, sess = got
        resp = headers(RedirectResponse(nxt or ("/agents" if sess.user.role == "admin" else "/"), status_code=303))
        resp.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="strict", secure=secure, path="/")
        resp.delete_cookie(LOGIN_COOKIE, path="/login")
        return resp

    @guarded(accounts.ROLES, post=True)
    async def logout(request: Request, sess: accounts.Session) -> Response:
        await run_in_threadpool(accounts.logout, store, request.cookies.get(SESSION_COOKIE))
        resp = headers(RedirectResponse("/login", status_code=303))
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    async def set_lang(request: Request) -> Response:
        # A link, not a form: it only sets the display language of this browser.
        lang = str(request.query_params.get("to", "zh"))
        back = _safe_next(request.query_params.get("next")) or "/"
        resp = headers(RedirectResponse(back, status_code=303))
        resp.set_cookie(LANG_COOKIE, lang if lang in ("zh", "en") else "zh", httponly=True,
                        samesite="strict", secure=secure, path="/", max_age=365 * 86400)
        return resp

    # ------------------------------------------------------------ pages
    @guarded(READERS)
    async def dashboard(request: Request, sess: accounts.Session) -> Response:
        d = await cached(("dashboard", today(sess)), 30, data.dashboard, store, today(sess))
        size, _root = await run_in_threadpool(store.head)
        return page(request, "dashboard.html.j2", sess, d=d, size=size)

    @guarded(READERS)
    async def chart(request: Request, sess: accounts.Session) -> Response:
        from reports.render.charts import bar_chart

        which = request.path_params["which"]
        if which not in ("level", "week", "host", "rule"):
            return headers(Response(status_code=404))
        d = await cached(("dashboard", today(sess)), 30, data.dashboard, store, today(sess))
        pairs, title, horizontal = {
            "level": ([(env.filters["level"](k), n) for k, n in d.by_level], tr("按密级", "By level"), True),
            "week": (d.by_week, tr("按周（近 12 周）", "By week (last 12 weeks)"), False),
            "host": (d.top_hosts, tr("违规最多的终端", "Hosts with most violations"), True),
            "rule": (d.top_rules, tr("触发最多的规则", "Rules violated most"), True)}[which]
        key = (title, repr(pairs), horizontal)  # the drawing depends on these alone
        if key not in chart_cache:
            if len(chart_cache) > 64:
                chart_cache.clear()
            chart_cache[key] = await run_in_threadpool(bar_chart, pairs, title, "svg", horizontal)
        resp = Response(chart_cache[key], media_type="image/svg+xml")
        headers(resp)
        # matplotlib's SVG carries a <style> element; as an <img> it can run nothing anyway.
        resp.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
        return resp

    def filters_of(request: Request) -> data.Filters:
        p = request.query_params

        def get(k: str, ok: Callable[[str], bool] = lambda v: True) -> str | None:
            v = (p.get(k) or "").strip()[:200]
            return v if v and ok(v) else None

        def is_day(v: str) -> bool:
            try:
                date.fromisoformat(v)
                return True
            except ValueError:
                return False
        return data.Filters(level=get("level", lambda v: v in LEVEL_ZH), host=get("host"), rule=get("rule"),
                            status=get("status", lambda v: v in data.STATUSES), since=get("since", is_day),
                            until=get("until", is_day), q=get("q"))

    @guarded(READERS)
    async def violations(request: Request, sess: accounts.Session) -> Response:
        f = filters_of(request)
        before = request.query_params.get("before")
        cursor = int(before) if before and before.isdigit() else None
        pg = await run_in_threadpool(data.violations, store, f, cursor, today(sess), sess.user.tz)
        hosts = await cached(("distinct", "host"), 60, data.distinct, store, "host")
        rules = await cached(("distinct", "rule"), 60, data.distinct, store, "rule")
        nxt = "/violations?" + urlencode({**f.as_params(), "before": pg.next_before}) if pg.next_before else None
        return page(request, "violations.html.j2", sess, f=f, pg=pg, hosts=hosts, rules=rules, next_url=nxt,
                    statuses=data.STATUSES, levels=list(LEVEL_ZH), today=today(sess))

    @guarded(READERS)
    async def violations_csv(request: Request, sess: accounts.Session) -> Response:
        import csv
        import io

        f = filters_of(request)
        rows, fu = await run_in_threadpool(data.violation_rows, store, f, today(sess), sess.user.tz)
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["gseq", "time", "host", "level", "marking", "path", "rule", "sha256", "followup", "owner",
                    "deadline"])
        for r in rows:
            p, s = r["payload"], fu.get(r["gseq"])
            status = ("overdue" if s.overdue(today(sess)) else s.status) if s else "unassigned"
            # a cell starting with = + - @ would be a formula in a spreadsheet: quote it inert
            cells = [r["gseq"], local_time(r["time"], sess.user.tz), r["host"], r["level"], p.get("marking"),
                     p.get("path"), r["rule"], p.get("sha256"), status, s.owner if s else "", s.deadline if s else ""]
            w.writerow([("'" + c) if isinstance(c, str) and c[:1] in "=+-@\t\r" else c for c in cells])
        resp = Response(("\ufeff" + buf.getvalue()).encode("utf-8"), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="violations.csv"'})
        return headers(resp)

    @guarded(READERS)
    async def violation(request: Request, sess: accounts.Session) -> Response:
        return await _detail(request, sess, None)

    async def _detail(request: Request, sess: accounts.Session, error: str | None, status: int = 200) -> Response:
        gseq = int(request.path_params["gseq"])
        got = await run_in_threadpool(data.violation, store, gseq)
        if got is None:
            return page(request, "error.html.j2", sess, 404, message=tr("没有这条违规记录。", "No such violation."))
        row, h, received = got
        fu = (await run_in_threadpool(data.followups, store)).get(gseq)
        return page(request, "violation.html.j2", sess, status, v=row, p=row["payload"], entry_hash=h,
                    received=received, fu=fu, error=error, today=today(sess))

    def step_handler(step: str) -> Handler:
        @guarded(("officer",), post=True)
        async def handler(request: Request, sess: accounts.Session) -> Response:
            gseq = int(request.path_params["gseq"])
            form = request.state.form
            fields = {k: str(form.get(k, "")) for k in ("owner", "deadline", "note", "rectification",
                                                         "explanation", "conclusion")}
            try:
                await run_in_threadpool(lambda: record_step(store, server_key, step, gseq, sess.user.name,
                                                            sess.user.role, **fields))
            except FollowupError as exc:
                return await _detail(request, sess, _followup_message(str(exc)), 400)
            return headers(RedirectResponse(f"/violations/{gseq}", status_code=303))
        return handler

    @guarded(accounts.ROLES)
    async def agents_page(request: Request, sess: accounts.Session) -> Response:
        from reports.fleet import DEFAULT_SILENT_AFTER, agent_statuses

        rows = await run_in_threadpool(agent_statuses, store, DEFAULT_SILENT_AFTER)
        return page(request, "agents.html.j2", sess, agents=sorted(rows, key=lambda a: (not a.silent, a.hostname)))

    @guarded(READERS)
    async def media_page(request: Request, sess: accounts.Session) -> Response:
        rows = await run_in_threadpool(data.media, store)
        return page(request, "media.html.j2", sess, media=rows)

    @guarded(READERS)
    async def attestations_page(request: Request, sess: accounts.Session) -> Response:
        rows = await run_in_threadpool(data.attestations, store)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return page(request, "attestations.html.j2", sess, rows=rows, now=now)

    def _last_verify() -> dict[str, Any] | None:
        try:
            return dict(json.loads(verify_file.read_text()))
        except (OSError, ValueError):
            return None

    @guarded(accounts.ROLES)
    async def chain_page(request: Request, sess: accounts.Session) -> Response:
        size, root = await run_in_threadpool(store.head)
        cps = await run_in_threadpool(store.checkpoints)
        return page(request, "chain.html.j2", sess, size=size, root=root, cps=cps[-20:][::-1],
                    ncps=len(cps), last=_last_verify())

    @guarded(("auditor",), post=True)
    async def chain_verify(request: Request, sess: accounts.Session) -> Response:
        from reports.render.verifycache import verify_resuming

        def run() -> dict[str, Any]:
            v = verify_resuming(store.entries, server_key.public_key(), store.checkpoints(), data_dir / "verified")
            out = {"ok": v.ok, "entries": v.entries, "checkpoints": v.checkpoints, "first_bad": v.first_bad,
                   "problem": v.problem, "by": sess.user.name,
                   "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
            tmp = verify_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(out))
            tmp.replace(verify_file)
            return out

        await run_in_threadpool(run)
        return headers(RedirectResponse("/chain", status_code=303))

    @guarded(("admin",))
    async def users_page(request: Request, sess: accounts.Session) -> Response:
        rows = await run_in_threadpool(accounts.users, store)
        return page(request, "users.html.j2", sess, users=rows)

    routes: list[BaseRoute] = [
        Route("/", dashboard), Route("/login", login_page), Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]), Route("/lang", set_lang),
        Route("/charts/{which}.svg", chart), Route("/violations", violations), Route("/violations.csv", violations_csv),
        Route("/violations/{gseq:int}", violation)]
    routes += [Route(f"/violations/{{gseq:int}}/{s}", step_handler(s), methods=["POST"])
               for s in ("assign", "rectify", "close")]
    routes += [Route("/agents", agents_page), Route("/media", media_page), Route("/attestations", attestations_page),
               Route("/chain", chain_page), Route("/chain/verify", chain_verify, methods=["POST"]),
               Route("/users", users_page), Mount("/static", StaticFiles(directory=str(HERE / "static")))]
    return routes


def _safe_next(nxt: str | None) -> str:
    """Only a local path (no scheme, no host, no `//`): no open redirect after sign-in."""
    if not nxt or not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt or len(nxt) > 500:
        return ""
    return nxt


_MESSAGES = {
    "owner is required": ("请填写责任人。", "Name the owner."),
    "deadline must be a date (YYYY-MM-DD)": ("请填写整改期限（日期）。", "Give a deadline (a date)."),
    "rectification is required": ("请填写整改情况。", "Describe the rectification."),
    "the follow-up is closed": ("该督办事项已办结。", "This follow-up is closed."),
    "only an assigned violation can be rectified": ("只有已交办的事项才能登记整改。",
                                                    "Only an assigned violation can be rectified."),
    "only an open follow-up can be closed": ("只有未办结的督办事项才能办结。", "Only an open follow-up can be closed."),
}


def _followup_message(msg: str) -> str:
    zh, en = _MESSAGES.get(msg, (msg, msg))
    return tr(zh, en)
