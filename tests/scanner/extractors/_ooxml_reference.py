"""The OOXML paragraph walk and worksheet read as they were before issue 17's fast walk: the reference the tests hold
`scanner.extractors.ooxml.Walker` to (same paragraphs, same segments, same findings).

A frozen copy of the plain recursive walk (one Python step per element, one generator per
paragraph emitted); not used by the scanner. Change it only to fix a bug in both."""
from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree

from scanner.extractors.base import Context
from scanner.extractors.ooxml import (
    ALT,
    BREAK,
    CELL,
    DASH,
    PAGE,
    PARA,
    PPR,
    S_STRICT,
    SKIP,
    SYM,
    TAB,
    TC,
    TEXT,
    TEXTBOX,
    TEXTPATH,
    Para,
    S,
    SafeZip,
    Walker,
    _both,
    _cell_text,
    _diagrams,
    _iter_tag,
    _natural,
    _rich_text,
    _sym_char,
    _truthy,
    split_header_footer,
)
from scanner.model import ErrorCode, ExtractItem, ScanError, Segment


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


def _excel(z: SafeZip, ctx: Context, main: str) -> Iterator[ExtractItem]:
    folder = main.rpartition("/")[0]
    wb, errs = z.xml(main)
    yield from errs
    rels = z.rels(main)
    sheets: list[tuple[str, str]] = []  # (sheet name, part)
    shared_part = None
    for (typ, target) in rels.values():
        if typ.endswith("/sharedStrings"):
            shared_part = target
    if wb is not None:
        for sh in wb.iter(f"{{{S}}}sheet", f"{{{S_STRICT}}}sheet"):
            rid = next((v for k, v in sh.attrib.items() if k.endswith("}id")), None)
            if rid and rid in rels and z.find(rels[rid][1]):
                sheets.append((sh.get("name") or rels[rid][1], rels[rid][1]))
    if not sheets:  # no usable workbook: read whatever worksheets there are
        for n in sorted(z.names, key=_natural):
            if re.match(rf"{re.escape(folder)}/worksheets/[^/]+\.xml$", n):
                sheets.append((n.rpartition("/")[2][:-4], n))
    if shared_part is None and z.find(f"{folder}/sharedStrings.xml"):
        shared_part = f"{folder}/sharedStrings.xml"

    shared: list[str] = []
    if shared_part and z.find(shared_part):
        data = z.read(shared_part)
        if isinstance(data, ScanError):
            yield data
        else:
            try:
                shared = [_rich_text(si) for si in _iter_tag(data, tuple(_both(S, S_STRICT, "si")))]
            except etree.XMLSyntaxError as exc:
                yield ScanError(ErrorCode.CORRUPT, f"shared strings: {exc}"[:300], ctx.sub(shared_part))

    c_tags = tuple(_both(S, S_STRICT, "c", "row"))  # rows too, so that finished rows are freed
    hf_tags = tuple(_both(S, S_STRICT, "oddHeader", "oddFooter", "evenHeader", "evenFooter",
                          "firstHeader", "firstFooter"))
    for sheet_name, part in sheets:
        data = z.read(part)
        if isinstance(data, ScanError):
            yield data
            continue
        i = 0
        try:
            for el in _iter_tag(data, c_tags + hf_tags):
                local = el.tag.rpartition("}")[2]
                if local == "row":
                    continue
                if local == "c":
                    text = _cell_text(el, shared, el.get("t"))
                    if text and text.strip():
                        ref = el.get("r") or f"#{i}"
                        yield Segment(text.strip(), ctx.sub(f"{sheet_name}!{ref}"), "cell", True, i)
                        i += 1
                elif el.text:
                    role = "header" if "Header" in local else "footer"
                    for k, t in enumerate(split_header_footer(el.text)):
                        yield Segment(t, ctx.sub(f"{sheet_name}!{role}"), role, True, k)
        except etree.XMLSyntaxError as exc:
            yield ScanError(ErrorCode.CORRUPT, f"{part}: {exc}"[:300], ctx.sub(part))
        # comments of this sheet
        for (typ, target) in z.rels(part).values():
            if typ.endswith("/comments") and z.find(target):
                r, errs = z.xml(target)
                yield from errs
                if r is None:
                    continue
                for k, cm in enumerate(r.iter(f"{{{S}}}comment", f"{{{S_STRICT}}}comment")):
                    text = "".join(cm.itertext()).strip()
                    if text:
                        yield Segment(text, ctx.sub(f"{sheet_name}!{cm.get('ref') or k}"), "comment", True, k)
            elif typ.endswith("/threadedComment") and z.find(target):
                # Excel 365 threaded comments (and their replies): `threadedComment/text`.
                r, errs = z.xml(target)
                yield from errs
                if r is None:
                    continue
                k = 0
                for tc in r.iter(f"{{{TC}}}threadedComment"):
                    for t in tc.iter(f"{{{TC}}}text"):
                        if t.text and t.text.strip():
                            yield Segment(t.text.strip(), ctx.sub(f"{sheet_name}!{tc.get('ref') or k}"),
                                          "comment", True, k)
                            k += 1
    yield from _diagrams(z, ctx, f"{folder}/")
