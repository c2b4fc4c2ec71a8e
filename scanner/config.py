"""Scan configuration: light to import, so `baomi scan` answering from its cache loads no parser."""
from __future__ import annotations

import hashlib
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
    parts = [code_digest(), rules.digest, repr(c.limits), str(c.hash_files), c.ocr_mode]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()
