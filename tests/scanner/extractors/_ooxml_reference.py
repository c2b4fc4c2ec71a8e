"""The OOXML paragraph walk as it was before issue 17's fast walk: the reference the tests hold
`scanner.extractors.ooxml.Walker` to (same paragraphs, same segments, same findings).

A frozen copy of the plain recursive walk (one Python step per element, one generator per
paragraph emitted); not used by the scanner. Change it only to fix a bug in both."""
from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from scanner.extractors.ooxml import (
    ALT,
    BREAK,
    CELL,
    DASH,
    PAGE,
    PARA,
    PPR,
    SKIP,
    SYM,
    TAB,
    TEXT,
    TEXTBOX,
    TEXTPATH,
    Para,
    Walker,
    _sym_char,
    _truthy,
)
from scanner.model import Segment


class _Buf(list):  # type: ignore[type-arg]
    __slots__ = ("newpage",)

    def __init__(self) -> None:
        super().__init__()
        self.newpage = False


def paragraphs(walker: Walker, root: etree._Element, role: str) -> list[Para]:
    out: list[Para] = []
    state = [0, False]
    _walk(walker, root, _Buf(), role, out, state)
    out.sort(key=lambda p: p[0])
    return out


def _walk(self: Walker, el: etree._Element, buf: _Buf, role: str, out: list[Para], state: list) -> None:  # type: ignore[type-arg]
    actions = self.actions
    for ch in el:
        tag = ch.tag
        if not isinstance(tag, str):
            continue
        act = actions.get(tag, -1)
        if act == TEXT:
            if ch.text:
                buf.append(ch.text)
        elif act == PARA:
            order = state[0]
            state[0] += 1
            sub = _Buf()
            sub.newpage = state[1]
            state[1] = False
            _walk(self, ch, sub, role, out, state)
            out.append((order, role, "".join(sub), sub.newpage))
        elif act == SKIP:
            continue
        elif act == TAB:
            buf.append("\t")
        elif act == BREAK:
            typ = next((v for k, v in ch.attrib.items() if k.endswith("}type")), None)
            if typ == "page":
                _page(buf, state)
            else:
                buf.append("\n")
        elif act == PAGE:
            _page(buf, state)
        elif act == PPR:
            for prop in ch:
                if not isinstance(prop.tag, str):
                    continue
                local = prop.tag.rpartition("}")[2]
                if local == "pageBreakBefore" and _truthy(prop):
                    buf.newpage = True
                elif local == "sectPr":
                    state[1] = True
        elif act == DASH:
            buf.append("-")
        elif act == TEXTPATH:
            text = ch.get("string")
            if text:
                out.append((state[0], role, text, False))
                state[0] += 1
        elif act == SYM:
            buf.append(_sym_char(ch))
        elif act == CELL:
            _walk(self, ch, buf, "cell", out, state)
        elif act == TEXTBOX:
            _walk(self, ch, buf, "textbox", out, state)
        elif act == ALT:
            chosen = None
            for alt in ch:
                if isinstance(alt.tag, str) and alt.tag.endswith("}Choice"):
                    chosen = alt
                    break
            if chosen is None:
                for alt in ch:
                    if isinstance(alt.tag, str) and alt.tag.endswith("}Fallback"):
                        chosen = alt
                        break
            if chosen is not None:
                _walk(self, chosen, buf, role, out, state)
        elif tag in self.shape_tags and self.shape_role is not None:
            r = self.shape_role(ch)
            if r is not None:
                _walk(self, ch, buf, r, out, state)
        else:
            _walk(self, ch, buf, role, out, state)


def _page(buf: _Buf, state: list) -> None:  # type: ignore[type-arg]
    if any(t.strip() for t in buf):
        state[1] = True
    else:
        buf.newpage = True


def _indexed(paras: list[Para]) -> Iterator[tuple[int, str, str]]:
    i = 0
    for _, role, text, newpage in paras:
        if newpage:
            i = 0
        text = text.strip()
        if text:
            yield i, role, text
            i += 1


def emit_paras(paras: list[Para], member: str | None) -> Iterator[Segment]:
    for i, role, text in _indexed(paras):
        yield Segment(text, member, role, True, i)
