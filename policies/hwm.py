"""Rollback protection for signed policy bundles: the highest bundle version accepted from each
signing key is remembered, and an older validly signed bundle is refused.

An officer's tools keep the marks in `$XDG_STATE_HOME/baomi/policy-hwm.json` (default
`~/.local/state/baomi/`); an agent keeps them in its own state directory. The file is written
atomically with mode 0600 and never through a symlink.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from policies.keys import write_temp_beside
from policies.signing import SignatureError
from scanner.i18n import tr


def default_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "baomi" / "policy-hwm.json"


def _read(path: Path) -> dict[str, int]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SignatureError(tr(f"{path}：无法读取策略版本记录：{exc.strerror or exc}",
                                f"{path}: cannot read the policy version marks: {exc.strerror or exc}")) from None
    with os.fdopen(fd, "rb") as f:
        try:
            data = json.loads(f.read() or b"{}")
        except ValueError:
            raise SignatureError(tr(f"{path}：策略版本记录已损坏", f"{path}: the policy version marks are damaged")) from None
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def check_and_record(key_id: str, version: int, source: str, path: Path | None = None) -> None:
    """Refuse `version` below the mark of `key_id`; raise the mark when it is higher."""
    path = path or default_path()
    marks = _read(path)
    seen = marks.get(key_id, -1)
    if version < seen:
        raise SignatureError(tr(
            f"{source}：策略版本 {version} 低于此前接受过的版本 {seen}（回退被拒绝）",
            f"{source}: policy version {version} is older than version {seen} accepted before (rollback refused)"))
    if version == seen:
        return
    marks[key_id] = version
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = write_temp_beside(path, json.dumps(marks, sort_keys=True).encode())
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
