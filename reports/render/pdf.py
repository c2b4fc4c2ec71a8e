"""PDF by LibreOffice headless from the DOCX (one layout for both; see bench/report_bench.py
for why LibreOffice rather than an HTML-to-PDF library)."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from reports.render.docx import render_docx
from reports.render.model import ReportData


class PdfEngineMissing(RuntimeError):
    pass


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def docx_to_pdf(docx: Path, out_dir: Path, timeout: float = 300) -> Path:
    exe = soffice()
    if exe is None:
        raise PdfEngineMissing("LibreOffice (soffice) not found: apt-get install libreoffice-writer-nogui")
    with tempfile.TemporaryDirectory(prefix="baomi-lo-") as profile:
        # A private profile: concurrent conversions and a user's running LibreOffice never clash.
        res = subprocess.run([exe, f"-env:UserInstallation=file://{profile}", "--headless",
                              "--convert-to", "pdf", "--outdir", str(out_dir), str(docx)],
                             capture_output=True, text=True, timeout=timeout, check=False)
    pdf = out_dir / (docx.stem + ".pdf")
    if res.returncode != 0 or not pdf.exists():
        raise RuntimeError(f"LibreOffice failed ({res.returncode}): {res.stderr.strip()[:300]}")
    return pdf


def render_pdf(data: ReportData, out: str | Path) -> None:
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="baomi-pdf-") as tmp:
        docx = Path(tmp) / "report.docx"
        render_docx(data, docx)
        pdf = docx_to_pdf(docx, Path(tmp))
        shutil.move(str(pdf), out)
