"""Fuzz targets: each takes arbitrary bytes and drives one parser in-process the way the engine does.

A target returns normally for any input the engine would turn into a record: extractors yield
`ScanError`s for bad input, and an `Exception` escaping an extractor is caught by the engine and
becomes a `corrupt` error record (`scanner.engine.Scanner._scan_item`), so it is caught here too.
What a target lets through is what the engine could NOT contain: a native crash (signal), a hang
(libFuzzer `-timeout`), a memory blow-up (`-rss_limit_mb`), or a `BaseException` that is not an
`Exception`. Those are the crashes this fuzzing hunts; every one found is fixed and its minimised
input kept under `tests/fuzz/regressions/<target>/`.
"""
from __future__ import annotations

from collections.abc import Callable

from scanner.extractors.base import Budget, Context, Extractor, Limits
from scanner.extractors.registry import extractors
from scanner.model import Segment

# Small enough that a bomb stops in milliseconds, large enough that real fixtures open.
LIMITS = Limits(max_member_size=32 * 1024 * 1024, max_total_size=64 * 1024 * 1024, max_members=2_000)

#: Extractor targets: fuzz target name -> extractor `name` in the registry.
EXTRACTORS = {
    "ooxml": "ooxml", "odf": "odf", "ole": "ole2", "pdf": "pdf", "ofd": "ofd", "rtf": "rtf",
    "markup": "markup", "mail": "mail", "zip": "zip", "tar": "tar", "7z": "7z",
    "compressed": "compressed", "image": "image",
}


def _extractor(name: str) -> Extractor:
    for ex in extractors():
        if ex.name == name:
            return ex
    raise KeyError(name)


def _extract_target(name: str) -> Callable[[bytes], None]:
    ex = _extractor(name)
    mime = ex.mimetypes[0] if ex.mimetypes else "application/octet-stream"

    def run(data: bytes) -> None:
        try:
            ex.sniff(data, mime)  # sniffing hostile bytes is part of the attack surface too
        except Exception:
            pass  # the registry treats a crashing sniff as "not mine"
        ctx = Context(member=None, depth=0, mime=mime, limits=LIMITS, budget=Budget(LIMITS), name="fuzz")
        try:
            for _ in ex.extract(data, ctx):
                pass
        except Exception:
            pass  # contained by the engine as a `corrupt` error record
    return run


def _decode(data: bytes) -> None:
    from scanner.decode import decode, detect

    detect(data)
    decode(data)


def _grammar(data: bytes) -> None:
    """Marking grammar and classifier on decoded text, as a body and as a standalone element."""
    from scanner.classify import classify
    from scanner.decode import decode

    text, _ = decode(data)
    classify([Segment(text)])
    classify([Segment(text, role="header", standalone=True), Segment(text[::-1])])


def _image_precheck(data: bytes) -> None:
    from scanner import ocr

    try:
        ocr.looks_like_document(data)
    except Exception:
        pass


def targets() -> dict[str, Callable[[bytes], None]]:
    out: dict[str, Callable[[bytes], None]] = {"grammar": _grammar, "decode": _decode, "image-precheck": _image_precheck}
    for target, ex_name in EXTRACTORS.items():
        if target == "image":
            continue  # the image extractor is OCR; its hostile-input surface is the pre-check
        out[target] = _extract_target(ex_name)
    return out
