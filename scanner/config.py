"""Scan configuration: light to import, so `baomi scan` answering from its cache loads no parser."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scanner.extractors.base import Limits

if TYPE_CHECKING:
    from rules.loader import RuleSet


@dataclass(frozen=True)
class ScanConfig:
    limits: Limits = field(default_factory=Limits)
    rules_dir: str | None = None
    keywords_file: str | None = None
    rules_cache: str | None = None
    #: Which top-level files get a SHA-256 (copy tracking, audit log): `flagged` — files with
    #: findings or errors, the ones copy tracking is about (default; hashing every clean file
    #: of a tree costs a third of a text scan); `all`; `none`.
    hash_files: str = "flagged"
    #: OCR of page images and image-only PDF pages: `off`, `auto` (top band, document-like
    #: images only), `full`.
    ocr_mode: str = "auto"
    #: Seconds of OCR this scanner (one process) may spend; None: unlimited.
    ocr_budget: float | None = None


@dataclass(frozen=True)
class PoolOptions:
    jobs: int = 0  # 0: one worker per core, plus one to overlap file reads with scanning
    timeout: float = 60.0  # seconds per top-level file
    max_memory: int = 3 * 1024 ** 3  # address space per worker (bytes); 0: unlimited


def config_digest(config: ScanConfig, rules: RuleSet) -> str:
    """Everything a file's verdict depends on besides the file: rules, limits, OCR mode, code."""
    from scanner.cache import code_digest

    c = config
    parts = [code_digest(), rules.digest, repr(c.limits), str(c.hash_files), c.ocr_mode, engines_digest()]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


#: Distributions whose version changes what a file's verdict can be (parsers, OCR, matching),
#: as their `*.dist-info` directories are named (lower case, `-` spelled `_`).
_ENGINES = ("rapidocr_onnxruntime", "onnxruntime", "pypdfium2", "yara_python", "python_magic", "olefile",
            "py7zr", "lxml", "pillow", "numpy")


def engines_digest() -> str:
    """Whether OCR can run here, and the versions of the engines a verdict depends on: a verdict
    reached while OCR was not installed ("OCR not available") must not be served from the cache
    once it is, nor one reached by an older PDF or OCR engine.

    Versions are read from the names of the installed `*.dist-info` directories (one listdir per
    site directory; importlib.metadata cost 100 ms at every scan start)."""
    import site
    import sys

    found = []
    for d in dict.fromkeys([*site.getsitepackages(), *sys.path]):
        try:
            names = os.listdir(d or ".")
        except OSError:
            continue
        for n in names:
            if n.endswith(".dist-info") and n.split("-", 1)[0].lower() in _ENGINES:
                found.append(n)
    return f"ocr={ocr_available()};" + ";".join(sorted(found))


def ocr_available() -> bool:
    """Can this process OCR at all (engine and image libraries importable)? Cheap: no model load.
    Here, not in scanner.ocr, so that a rescan's cache key does not import the OCR module."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None
               for m in ("rapidocr_onnxruntime", "onnxruntime", "numpy", "PIL"))
