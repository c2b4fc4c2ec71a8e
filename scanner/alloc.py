"""Freed heap memory kept for the next file, in every process that scans (issue 17).

A scan allocates and frees buffers of the size of each file: its bytes, its decoded text, the
pieces the classifier reads. With glibc's defaults, free memory above 128 KB at the top of the
heap goes back to the kernel (M_TRIM_THRESHOLD), and blocks from 128 KB up (a threshold that
adapts) are mmap'ed apart; so the next file's buffer is made of fresh pages, one page fault per
4 KB. Measured on this machine (a virtual machine, where faults are dear), 4,000 prose files of
~30 KB: open + read + close 47 -> 22 µs a file, copying one 24 -> 9 µs; the warm verdict of a
1 MB text the prefilter clears, p50 1.9 -> 1.3 ms.

`tune()` sets both thresholds: blocks up to `MMAP_MAX` come from the heap, and up to
`TRIM_MAX` of free heap stays mapped for reuse (a 1 MB text's verdict works in ~5 MB). Larger
blocks are still mmap'ed and returned to the kernel when freed, so what a process holds beyond
its live data stays bounded: `TRIM_MAX` per malloc arena, and the agent daemon scans in two
threads by default (`limits.max_concurrent_scans`). Another C
library (musl has no `mallopt`) keeps its defaults. `BAOMI_MALLOC_TUNE=0` keeps them too (for
measuring the difference)."""
from __future__ import annotations

import ctypes
import os

#: mallopt parameters (glibc malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
TRIM_MAX = 16 << 20
MMAP_MAX = 4 << 20

_tuned = False


def tune() -> bool:
    """Set the thresholds for this process (and the workers it forks later); True when set."""
    global _tuned
    if _tuned:
        return True
    if os.environ.get("BAOMI_MALLOC_TUNE", "1") == "0":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    _tuned = mallopt(_M_TRIM_THRESHOLD, TRIM_MAX) == 1 and mallopt(_M_MMAP_THRESHOLD, MMAP_MAX) == 1
    return _tuned
