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


def use_lang(lang: str) -> None:
    """The language of the current context only (one web request), environment untouched."""
    _LANG.set("en" if lang == "en" else "zh")


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


#: Chinese help text → English, filled by `Tr` (click turns help values into plain strings).
_HELP_EN: dict[str, str] = {}


def Tr(zh: str, en: str) -> str:  # noqa: N802 - reads as a constructor at the call sites
    """A help text in both languages: the Chinese text, whose English twin `TrCommand` swaps in
    when the help page is formatted (option help is built at import time, before a `--lang`
    after the subcommand is parsed)."""
    _HELP_EN[zh] = en
    return zh


def _tr_command_class():  # type: ignore[no-untyped-def]
    import click

    class TrCommand(click.Command):
        """A click command whose option help (`Tr` values) follows the language in force."""

        def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
            for p in self.params:
                h = getattr(p, "help", None)
                if isinstance(h, str) and h in _HELP_EN:
                    p.help = tr(h, _HELP_EN[h])  # type: ignore[attr-defined]
            super().format_help(ctx, formatter)

    return TrCommand


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # TrCommand is built on first use so that importing i18n does not import click.
    if name == "TrCommand":
        cls = _tr_command_class()
        globals()["TrCommand"] = cls
        return cls
    raise AttributeError(name)
