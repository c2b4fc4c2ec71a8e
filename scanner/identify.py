"""Type by content, never by name: libmagic on the first bytes (one handle per process)."""
from __future__ import annotations

import os
import threading

import magic

HEAD = 256 * 1024
_local = threading.local()


def _handle() -> magic.Magic:
    # python-magic handles are not thread-safe and must not cross a fork: one per thread & pid.
    h = getattr(_local, "handle", None)
    if h is None or getattr(_local, "pid", None) != os.getpid():
        h = magic.Magic(mime=True)
        _local.handle, _local.pid = h, os.getpid()
    return h


def identify(data: bytes) -> str:
    """MIME type of `data` as libmagic sees its first bytes."""
    if not data:
        return "application/x-empty"
    try:
        return str(_handle().from_buffer(data[:HEAD]))
    except Exception:  # libmagic can fail on odd input; the extractors' sniffers still look
        return "application/octet-stream"
