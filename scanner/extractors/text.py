"""Plain text in any Chinese encoding (the fallback for every text-like item)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from scanner.decode import decode
from scanner.extractors.base import Context, Extractor
from scanner.extractors.runs import has_control_bytes, run_segments
from scanner.model import ExtractItem, Segment

_TEXTISH = frozenset({
    "application/json", "application/x-empty", "application/octet-stream", "application/csv",
    "application/javascript", "application/x-sh", "application/x-shellscript", "inode/x-empty",
    "application/x-wine-extension-ini", "application/x-subrip", "application/x-yaml",
})


class TextExtractor(Extractor):
    """Decode and hand the whole text over as one body segment (the classifier reads lines)."""

    name: ClassVar[str] = "text"
    priority: ClassVar[int] = -100

    @classmethod
    def sniff(cls, data: bytes, mime: str) -> bool:
        return mime.startswith("text/") or mime in _TEXTISH

    def extract(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        if not data:
            return
        if ctx.prefilter is not None and not ctx.prefilter(data):
            # No marking-shaped bytes in any encoding (rules/yara/levels.yar): level words in
            # such bytes can only be running text, so they are not decoded at all.
            return
        text, enc = decode(data)
        wide = enc.startswith(("utf-16", "utf-32"))
        if (has_control_bytes(text) if wide else has_control_bytes(data)):
            # Binary bytes in a byte-encoded text (a NUL before the first line, a sparse hole,
            # an unknown binary format): the text is read as runs, each a text of its own, so
            # that the bytes before a marking cannot push it out of its line or its page top.
            yield from run_segments(data, ctx.member, ctx.anchors(data) if ctx.anchors else None)
            return
        yield Segment(text=text, member=ctx.member, role="body", index=0)

