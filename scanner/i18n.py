"""User-facing language: zh-CN by default, English with `--lang en` (or BAOMI_LANG=en).

Code and logs are English; every message a user reads goes through `tr(zh, en)`.
"""
from __future__ import annotations

import os
from contextvars import ContextVar

_DEFAULT_LANG: str = os.environ.get("BAOMI_LANG", "zh")
_LANG: ContextVar[str] = ContextVar("baomi_lang", default=_DEFAULT_LANG)
LANGS = ("zh", "en")


def set_lang(lang: str) -> None:
    lang = (lang or "zh").lower()
    if lang.startswith("zh"):
        lang = "zh"
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; use zh or en")
    _LANG.set(lang)
    os.environ["BAOMI_LANG"] = lang  # child processes (workers) speak the same language


def get_lang() -> str:
    return _LANG.get()


def tr(zh: str, en: str) -> str:
    """Pick the message for the current language."""
    return en if _LANG.get() == "en" else zh


def lang_option(f):  # type: ignore[no-untyped-def]
    """`--lang` accepted after a subcommand too (`baomi scan --lang en …`)."""
    import click

    def _cb(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value:
            set_lang(value)

    return click.option("--lang", type=click.Choice(["zh", "en"]), default=None, expose_value=False,
                        callback=_cb, is_eager=True, help="zh | en")(f)
