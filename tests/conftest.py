"""Shared test helpers. ../shared is optional: tests that need it skip with a reason."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"


def need_shared(sub: str) -> Path:
    p = SHARED / sub
    if not p.exists():
        pytest.skip(f"{p} is absent (clone without ../shared)")
    return p


def pytest_configure(config: pytest.Config) -> None:
    # Compiled-rules and scan caches of every test — module-scoped fixtures and the `baomi`
    # subprocesses they start included — go to a private temp dir, never the user's home.
    import tempfile

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="baomi-test-cache-")
    # and the policy version marks (policies.hwm) likewise
    os.environ["XDG_STATE_HOME"] = os.path.join(os.environ["XDG_CACHE_HOME"], "state")


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    d = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.basename(d).startswith("baomi-test-cache-"):
        shutil.rmtree(d, ignore_errors=True)
