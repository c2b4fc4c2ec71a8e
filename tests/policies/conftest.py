"""Helpers for the policies tests: write packs to temp files, build events, run the CLI."""
from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from agents.main import cli


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """write(name, yaml_text) → path (text is dedented)."""
    def _write(name: str, text: str) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return p
    return _write


@pytest.fixture
def run() -> Callable[..., Result]:
    """run(*args, input=None) → click Result of `baomi ARGS` (zh-CN unless --lang en given)."""
    def _run(*args: Any, input: str | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)
    return _run


@pytest.fixture(autouse=True)
def _zh_default() -> Iterator[None]:
    """zh-CN for every test; language and BAOMI_LANG restored afterwards (set_lang writes the
    environment, and other packages' tests must not inherit our choice)."""
    from scanner.i18n import get_lang, set_lang

    saved_env = os.environ.get("BAOMI_LANG")
    saved = get_lang()
    set_lang("zh")
    yield
    set_lang(saved)
    if saved_env is None:
        os.environ.pop("BAOMI_LANG", None)
    else:
        os.environ["BAOMI_LANG"] = saved_env


@pytest.fixture
def en() -> None:
    """English messages for tests that assert on message words (zh-CN is the default)."""
    from scanner.i18n import set_lang

    set_lang("en")
