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
