"""Pick the extractor for an item by content type.

Built-in extractors are discovered by subclass from the modules of this package (a new format is
one new module); sites add their own through the `baomi.extractors` entry point group. When several
claim an item, the highest `priority` wins (a zip is claimed by OOXML, ODF and OFD before the
generic archive reader; a text/plain item that is really a mail message by the mail reader).
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
from functools import lru_cache
from importlib.metadata import entry_points

from scanner.extractors.base import Extractor

log = logging.getLogger(__name__)


def _all_subclasses(cls: type) -> list[type]:
    out: list[type] = []
    sub: type
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


@lru_cache(maxsize=1)
def extractors() -> tuple[Extractor, ...]:
    import scanner.extractors as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in ("base", "registry") and not info.name.startswith("_"):
            importlib.import_module(f"scanner.extractors.{info.name}")
    for ep in entry_points(group="baomi.extractors"):
        try:
            ep.load()
        except Exception as exc:  # a broken site plugin must not stop the scanner
            log.warning("extractor plugin %s failed to load: %s", ep.name, exc)
    found = {c for c in _all_subclasses(Extractor) if getattr(c, "name", "")}
    return tuple(sorted((c() for c in found), key=lambda e: (-e.priority, e.name)))


def pick(data: bytes, mime: str) -> Extractor | None:
    """The highest-priority extractor that claims `data` of libmagic type `mime`."""
    from scanner.extractors.ooxml import sniffing

    with sniffing(data):  # the zip sniffers share one read of the central directory
        for ex in extractors():
            try:
                if ex.sniff(data, mime):
                    return ex
            except Exception as exc:  # a sniff crashing on hostile bytes means "not mine"
                log.debug("sniff of %s failed: %s", ex.name, exc)
    return None
