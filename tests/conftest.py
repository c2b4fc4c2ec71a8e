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


def pdf_from_objects(objs: list[bytes], version: bytes = b"1.4") -> bytes:
    """A PDF file of the given objects (numbered from 1; object 1 the catalog) with its xref
    table and trailer: for tests that need a PDF no generator writes."""
    out = bytearray(b"%PDF-" + version + b"\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


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
