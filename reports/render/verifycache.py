"""Where the officer's machine remembers how far it has verified a log (`reports.chain.Verified`).

A report verifies the whole chain every time; what it need not repeat is checking the signature
of every event it already checked. The state lives in the officer's own cache directory
(`$XDG_CACHE_HOME/baomi/verified/`, mode 0600), one file per server key, never beside the log:
whoever can write the log must not be able to vouch for it. `BAOMI_VERIFY_CACHE=off` (or an
empty cache dir) turns resuming off.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from policies.keys import key_id
from reports.chain import Verified


def cache_dir() -> Path | None:
    if os.environ.get("BAOMI_VERIFY_CACHE", "").lower() in ("off", "0", "no"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "baomi" / "verified"


def _file(server_key: Any, where: Path) -> Path:
    return where / f"{key_id(server_key)}.json"


def load(server_key: Any, where: Path | None) -> Verified | None:
    if where is None:
        return None
    try:
        return Verified.from_dict(json.loads(_file(server_key, where).read_text()))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None  # no state, or an unreadable one: verify everything


def save(server_key: Any, where: Path | None, state: Verified) -> None:
    if where is None:
        return
    try:
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".verified-")  # 0600
        with os.fdopen(fd, "w") as fh:
            json.dump(state.to_dict(), fh)
        os.replace(tmp, _file(server_key, where))
    except OSError:
        pass  # a read-only home only costs the next report a full verification


def verify_resuming(entries: Any, server_key: Any, checkpoints: Any, where: Path | None,
                    on_retry: Any = None) -> Any:
    """Verify `entries()` resuming from this machine's verified prefix in `where`, remembering
    the new state; when something differs from what was verified before, verify afresh (after
    `on_retry()`) so that the report names the first bad entry."""
    from reports.chain import verify_entries

    state = load(server_key, where)
    v = verify_entries(entries(), server_key, checkpoints, resume=state,
                       on_verified=lambda done: save(server_key, where, done))
    if not v.ok and state is not None:
        if on_retry is not None:
            on_retry()
        v = verify_entries(entries(), server_key, checkpoints, on_verified=lambda done: save(server_key, where, done))
    return v
