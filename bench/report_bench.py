"""Report benchmark: a 100,000-event log (built through the real store ingest) renders the
HTML inspection report in < 10 s (figures aggregated by the database, appendix capped, the chain
verified by re-hashing what this machine verified before plus checking new entries in full); and the PDF engine choice, measured on a 100-item report:
LibreOffice headless (DOCX -> PDF) against WeasyPrint (HTML -> PDF) where installed.

    .venv/bin/python bench/report_bench.py [--events 100000]
Results also go to bench/out/report.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reports.officer import StoreSource  # noqa: E402
from reports.render.collect import collect  # noqa: E402
from reports.render.fixture import build_sample_log  # noqa: E402
from reports.server import init_data, load_data  # noqa: E402
from reports.store import Query  # noqa: E402


def _log(tmp: Path, n: int) -> Path:
    srv = tmp / f"srv-{n}"
    init_data(srv)
    d = load_data(srv)
    store = d.open_store(None)
    try:
        build_sample_log(store, d.key, n_findings=n)
    finally:
        store.close()
    return srv


def _report(srv: Path, fmt: str, out: Path, verify: bool = True,
            cache: Path | None = None) -> tuple[float, int]:
    from reports.render.cli import write_data

    d = load_data(srv)
    t0 = time.perf_counter()
    src = StoreSource(d.open_store(None), d.key)
    try:
        data = collect(src, Query(), server_key=d.key.public_key() if verify else None, verify_cache=cache)
    finally:
        src.close()
    write_data(fmt, data, out)
    return time.perf_counter() - t0, data.events


def _console(srv: Path, runs: int = 20) -> dict[str, object]:
    """The console's pages over real HTTPS against `baomi server run` serving the big log:
    median and worst of `runs` requests each (target: violation list pages < 200 ms)."""
    import re
    import ssl
    import statistics
    import subprocess

    import httpx

    baomi = [sys.executable, "-c", "from agents.main import cli; cli()"]
    subprocess.run([*baomi, "server", "user", "add", "bench", "--role", "officer", "--data", str(srv),
                    "--password-file", "-"], input="bench-password\n", text=True, check=True, capture_output=True)
    port_file = srv / "port"
    proc = subprocess.Popen([*baomi, "server", "run", "--data", str(srv), "--listen", "127.0.0.1:0",
                             "--port-file", str(port_file), "--checkpoint-interval", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out: dict[str, object] = {}
    try:
        while not port_file.exists():
            time.sleep(0.05)
        ctx = ssl.create_default_context(cafile=str(srv / "tls" / "ca.pem"))
        with httpx.Client(base_url=f"https://127.0.0.1:{port_file.read_text().strip()}", verify=ctx,
                          follow_redirects=True, timeout=60) as h:
            while True:
                try:
                    page = h.get("/login")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            h.post("/login", data={"name": "bench", "password": "bench-password", "csrf": csrf, "next": ""})
            first = h.get("/violations").text
            nxt = re.search(r'href="(/violations\?[^"]*before=\d+)"', first)
            one = re.search(r'href="/violations/(\d+)"', first)
            pages = {"violations": "/violations", "violations_level": "/violations?level=secret",
                     "violations_overdue": "/violations?status=overdue",
                     "violations_host_path": "/violations?host=ws-02&q=%E6%96%87%E4%BB%B6",
                     "violations_page2": nxt.group(1).replace("&amp;", "&") if nxt else "/violations",
                     "violation_detail": f"/violations/{one.group(1) if one else 1}", "dashboard": "/"}
            for name, url in pages.items():
                h.get(url)  # warm
                times = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    r = h.get(url)
                    times.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200 and ("违规" in r.text or "概览" in r.text), (name, r.status_code)
                out[name] = {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}
                print(f"console {name}: median {out[name]['median_ms']} ms, worst {out[name]['max_ms']} ms "  # type: ignore[index]
                      f"(target < 200 ms for list pages)", flush=True)
    finally:
        proc.terminate()
        proc.wait(30)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    args = ap.parse_args()
    res: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="baomi-rbench-") as t:
        tmp = Path(t)
        t0 = time.perf_counter()
        big = _log(tmp, args.events)
        res["build_log_s"] = round(time.perf_counter() - t0, 1)
        # First report on this machine: every event's signature is checked (the verified state is
        # remembered in the officer's cache); the next report re-hashes that prefix instead.
        secs, n = _report(big, "html", tmp / "big.html", cache=tmp / "vcache")
        res["html_report_first_s"] = round(secs, 2)
        res["html_report_events"] = n
        res["html_bytes"] = (tmp / "big.html").stat().st_size
        secs, _ = _report(big, "html", tmp / "big1.html", cache=tmp / "vcache")
        res["html_report_s"] = round(secs, 2)
        secs, _ = _report(big, "html", tmp / "big2.html", verify=False)
        res["html_report_no_verify_s"] = round(secs, 2)
        print(f"HTML report of {n} events, whole chain verified: {res['html_report_s']} s (target < 10 s); "
              f"first report on this machine (every signature checked): {res['html_report_first_s']} s; "
              f"without verification {res['html_report_no_verify_s']} s; {res['html_bytes'] / 1e6:.1f} MB",
              flush=True)

        res["console"] = _console(big)

        small = _log(tmp, 100)
        from reports.render.pdf import soffice

        if soffice():
            runs = [_report(small, "pdf", tmp / f"lo{i}.pdf")[0] for i in range(3)]
            res["pdf_libreoffice_s"] = [round(x, 2) for x in runs]
            print(f"PDF of a 100-item report by LibreOffice (DOCX -> PDF): {res['pdf_libreoffice_s']} s")
        try:
            import weasyprint
        except ImportError:
            res["pdf_weasyprint_s"] = None
            print("WeasyPrint not installed: not measured")
        else:
            _report(small, "html", tmp / "small.html")
            runs = []
            for i in range(3):
                t0 = time.perf_counter()
                weasyprint.HTML(filename=str(tmp / "small.html")).write_pdf(tmp / f"wp{i}.pdf")
                runs.append(round(time.perf_counter() - t0, 2))
            res["pdf_weasyprint_s"] = runs
            print(f"PDF of the same report by WeasyPrint (HTML -> PDF, render time only): {runs} s")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
