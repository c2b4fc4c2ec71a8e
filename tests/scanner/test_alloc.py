"""scanner.alloc: a process that scans reuses freed heap for the next file's buffers instead of
faulting in fresh pages (issue 17). Counted as the kernel counts it: minor page faults while a
process reads 900 files of 30 KB to 1 MB, each buffer copied once and freed, as a scan does."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from tests.conftest import ROOT

_SCRIPT = r"""
import os, resource, sys, tempfile
from scanner.config import ScanConfig
from scanner.engine import Scanner
Scanner(ScanConfig())  # tunes the allocator of the process
d = tempfile.mkdtemp(dir=sys.argv[1])
paths = []
for i, size in enumerate((30_000, 300_000, 1_000_000)):
    p = os.path.join(d, f"f{i}")
    with open(p, "wb") as fh:
        fh.write(b"x" * size)
    paths.append(p)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(300):
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        b = os.read(fd, os.fstat(fd).st_size + 1)
        os.close(fd)
        c = b[:-1]
        del b, c
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(tmp_path: os.PathLike[str], tune: bool) -> int:
    env = dict(os.environ, BAOMI_MALLOC_TUNE="1" if tune else "0")
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path)], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=120)
    return int(out.stdout.strip())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt thresholds are glibc's")
def test_buffers_reuse_the_heap_instead_of_fresh_pages(tmp_path: os.PathLike[str]) -> None:
    tuned = _faults(tmp_path, True)
    default = _faults(tmp_path, False)
    # 900 buffers of 30 KB-1 MB read and copied: ~100,000 pages if each came fresh
    assert tuned < 2_000, (tuned, default)
    assert default > 10 * tuned, (tuned, default)  # the measurement sees the difference
