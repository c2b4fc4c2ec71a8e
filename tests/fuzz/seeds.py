"""Build the committed seed corpus `tests/fuzz/corpus/<target>/` from ../shared/corpus, the
hostile set, and a few generated files for formats the shared corpus lacks (RTF, ODF, tar).

`python -m tests.fuzz.seeds [SHARED]`. Seeds are small (≤ 48 KiB) and few per target so the CI
smoke run over the saved corpus stays within seconds."""
from __future__ import annotations

import io
import sys
import tarfile
import zipfile
from pathlib import Path

HERE = Path(__file__).parent
SUFFIXES = {
    "ooxml": (".docx", ".xlsx", ".pptx"), "ole": (".doc", ".xls", ".ppt", ".wps", ".et", ".dps"),
    "pdf": (".pdf",), "ofd": (".ofd",), "markup": (".html", ".htm", ".xml"), "mail": (".eml",),
    "zip": (".zip",), "7z": (".7z",), "compressed": (".gz",), "image-precheck": (".jpg", ".png"),
    "grammar": (".txt", ".md"), "decode": (".txt", ".md"),
}
PER_TARGET = 8
MAX_SIZE = 48 * 1024


def _generated() -> dict[str, dict[str, bytes]]:
    rtf = rb"{\rtf1\ansi\ansicpg936{\fonttbl{\f0 SimSun;}}{\header \'bb\'fa\'c3\'dc\u9733?10\'c4\'ea\par}\f0 body\par}"
    odt = io.BytesIO()
    with zipfile.ZipFile(odt, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text")
        z.writestr("content.xml", '<?xml version="1.0"?><office:document-content xmlns:office="urn:oasis:names:tc:'
                   'opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0">'
                   "<office:body><office:text><text:p>机密★10年</text:p></office:text></office:body>"
                   "</office:document-content>")
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as t:
        body = "秘密★5年\n正文".encode()
        info = tarfile.TarInfo("a.txt")
        info.size = len(body)
        t.addfile(info, io.BytesIO(body))
    return {"rtf": {"header.rtf": rtf}, "odf": {"min.odt": odt.getvalue()}, "tar": {"one.tar": tar.getvalue()},
            "grammar": {"star.txt": "机密★10年\n".encode(), "banner.txt": b"TOP SECRET//NOFORN\n"},
            "decode": {"gbk.txt": "机密★长期".encode("gbk"), "utf16.txt": "秘密".encode("utf-16")}}


def build(shared: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    files = sorted(p for d in ("corpus", "hostile") for p in (shared / d).rglob("*")
                   if p.is_file() and p.stat().st_size <= MAX_SIZE)
    for target, suffixes in SUFFIXES.items():
        picked = [p for p in files if p.name.lower().endswith(suffixes)][:PER_TARGET]
        out = HERE / "corpus" / target
        out.mkdir(parents=True, exist_ok=True)
        for p in picked:
            (out / p.name).write_bytes(p.read_bytes())
    for target, gen in _generated().items():
        out = HERE / "corpus" / target
        out.mkdir(parents=True, exist_ok=True)
        for name, data in gen.items():
            (out / name).write_bytes(data)
    for d in (HERE / "corpus").iterdir():
        counts[d.name] = sum(1 for _ in d.iterdir())
    return counts



if __name__ == "__main__":
    print(build(Path(sys.argv[1] if len(sys.argv) > 1 else HERE.parents[2] / "shared")))
