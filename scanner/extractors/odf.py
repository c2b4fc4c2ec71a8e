"""OpenDocument (.odt/.ods/.odp, also written by WPS and Yozo Office): located text.

content.xml: paragraphs and headings (spans, spaces `text:s`, tabs and line breaks rejoined),
table cells, text boxes/frames, footnotes, annotations; spreadsheets cell by cell with their
address (`Sheet1!B3`, repeated rows/columns counted); presentations slide by slide with titles and
notes. styles.xml: page headers/footers of the master pages. meta.xml: title, subject,
description, keywords and user-defined fields (`密级`). Tracked deletions are left out; a soft page
break restarts the paragraph index. Embedded objects (`Object 1/…`) come back as members.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

from lxml import etree

from scanner.extractors.base import Context, Extractor
from scanner.extractors.ooxml import SafeZip, zip_names
from scanner.model import ErrorCode, ExtractItem, Member, ScanError, Segment

TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
STYLE = "urn:oasis:names:tc:opendocument:xmlns:style:1.0"
PRES = "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"
META = "urn:oasis:names:tc:opendocument:xmlns:meta:1.0"
DC = "http://purl.org/dc/elements/1.1/"

PARA, SKIP, SPACE, TAB, BREAK, CELL, TEXTBOX, NOTE, COMMENT, PAGE = range(10)
_ACTS = {
    f"{{{TEXT}}}p": PARA, f"{{{TEXT}}}h": PARA,
    f"{{{TEXT}}}s": SPACE, f"{{{TEXT}}}tab": TAB, f"{{{TEXT}}}line-break": BREAK,
    f"{{{TEXT}}}tracked-changes": SKIP, f"{{{TEXT}}}note-citation": SKIP,
    f"{{{TEXT}}}sequence-decls": SKIP, f"{{{TEXT}}}variable-decls": SKIP, f"{{{OFFICE}}}forms": SKIP,
    f"{{{DC}}}creator": SKIP, f"{{{DC}}}date": SKIP, f"{{{TEXT}}}bookmark-ref": -1,
    f"{{{TABLE}}}table-cell": CELL, f"{{{TABLE}}}covered-table-cell": CELL,
    f"{{{DRAW}}}text-box": TEXTBOX, f"{{{DRAW}}}custom-shape": TEXTBOX, f"{{{DRAW}}}rect": TEXTBOX,
    f"{{{DRAW}}}ellipse": TEXTBOX,
    f"{{{TEXT}}}note-body": NOTE, f"{{{OFFICE}}}annotation": COMMENT,
    f"{{{TEXT}}}soft-page-break": PAGE,
    f"{{{PRES}}}notes": SKIP, f"{{{DRAW}}}image": SKIP, f"{{{OFFICE}}}event-listeners": SKIP,
    f"{{{OFFICE}}}annotation-end": SKIP,
    f"{{{TEXT}}}ruby-text": SKIP,  # phonetic guide over the base text (as Word's w:rt): not the text
}
_ROLE_OF = {CELL: "cell", TEXTBOX: "textbox", NOTE: "note", COMMENT: "comment"}
Para = tuple[int, str, str, bool]


class _Walk:
    """Paragraphs of an ODF subtree; mixed content (text, spans and their tails) rejoined."""

    def __init__(self, shapes_keep_role: bool = False, fence: str | None = None) -> None:
        #: On slides every shape is a text box: the frame's role (title, body) is what counts.
        self.keep = shapes_keep_role
        #: `fence`: an element not descended into (a slide or master page nested in another is
        #: read as one of its own; reading it again from every page around it was quadratic).
        self.acts = _ACTS if fence is None else {**_ACTS, fence: SKIP}
        self.out: list[Para] = []
        self.n = 0
        self.pending_page = False

    def run(self, root: etree._Element, role: str) -> list[Para]:
        self._walk(root, [], role)
        self.out.sort(key=lambda p: p[0])
        return self.out

    def walk_one(self, el: etree._Element, role: str) -> None:
        """Walk `el` itself as one top-level shape (a slide frame)."""
        self._walk([el], [], role)

    def _walk(self, el: Iterable[etree._Element], buf: list[str], role: str) -> None:
        acts = self.acts
        for ch in el:
            tag = ch.tag
            if not isinstance(tag, str):
                if ch.tail:
                    buf.append(ch.tail)
                continue
            act = acts.get(tag, -1)
            if act == PARA:
                order = self.n
                self.n += 1
                newpage, self.pending_page = self.pending_page, False
                sub: list[str] = [ch.text or ""]
                self._walk(ch, sub, role)
                self.out.append((order, role, "".join(sub), newpage))
            elif act == SKIP:
                pass
            elif act == SPACE:
                buf.append(" " * _count(ch.get(f"{{{TEXT}}}c"), 100))
            elif act == TAB:
                buf.append("\t")
            elif act == BREAK:
                buf.append("\n")
            elif act == PAGE:
                self.pending_page = True
            elif act in _ROLE_OF:
                self._walk(ch, [], role if self.keep and act == TEXTBOX else _ROLE_OF[act])
            else:  # inline (span, a, bookmark…) or a container: descend
                if ch.text:
                    buf.append(ch.text)
                self._walk(ch, buf, role)
            if ch.tail:
                buf.append(ch.tail)


def _indexed(paras: list[Para]) -> Iterator[tuple[int, str, str]]:
    i = 0
    for _, role, text, newpage in paras:
        if newpage:
            i = 0
        text = text.strip()
        if text:
            yield i, role, text
            i += 1


def _col_name(n: int) -> str:
    s = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


_TABLE_TAG = f"{{{TABLE}}}table"
_PAGE_TAG = f"{{{DRAW}}}page"
_MASTER_TAG = f"{{{STYLE}}}master-page"


def _outside_tables(el: etree._Element, tag: str) -> Iterator[etree._Element]:
    """The `tag` elements under `el`, in document order, that are neither inside a table nested
    in `el` nor inside another `tag` element. A sub-table is content of the cell holding it (the
    cell's walk reads it): reading it again as a table of its own, at every level of a chain of
    nested tables, was quadratic (80 levels of tables around 1,000 spans, 709 bytes zipped: 10 s).
    An explicit stack: nesting is as deep as the XML parser allows."""
    stack = [iter(el)]
    while stack:
        for ch in stack[-1]:
            t = ch.tag
            if t == tag:
                yield ch
            elif isinstance(t, str) and t != _TABLE_TAG and len(ch):
                stack.append(iter(ch))
                break
        else:
            stack.pop()


def _count(v: str | None, cap: int) -> int:
    """A count attribute, at most `cap`; 1 when it is no count. `str.isdigit` alone let `²` and
    5,000-digit values through to int(), whose ValueError made the whole document an error
    record, none of its text read."""
    if not v or not v.isascii() or not v.isdigit():
        return 1
    return cap if len(v) > 9 else min(int(v), cap)


def _rep(el: etree._Element, attr: str) -> int:
    return _count(el.get(f"{{{TABLE}}}{attr}"), 1 << 20)


class OdfExtractor(Extractor):
    """OpenDocument text, spreadsheet and presentation files."""

    name = "odf"
    mimetypes = (
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.text-template",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.spreadsheet-template",
        "application/vnd.oasis.opendocument.presentation",
        "application/vnd.oasis.opendocument.presentation-template",
        "application/vnd.oasis.opendocument.graphics",
        "application/vnd.oasis.opendocument.text-master",
    )
    priority = 50

    @classmethod
    def sniff(cls, data: bytes, mime: str) -> bool:
        if super().sniff(data, mime):
            return True
        if data[30:38] == b"mimetype" and b"application/vnd.oasis.opendocument" in data[38:140]:
            return True
        names = zip_names(data) or []
        return "content.xml" in names and "META-INF/manifest.xml" in names

    def extract(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        z = yield from SafeZip.package(data, ctx)
        if z is None:
            return
        manifest = z.find("META-INF/manifest.xml")
        if manifest is not None:
            root, _ = z.xml(manifest)
            if root is not None and any(
                    el.tag.endswith("}encryption-data") for el in root.iter() if isinstance(el.tag, str)):
                yield ScanError(ErrorCode.ENCRYPTED, "password-protected OpenDocument", ctx.member)
                return
        if z.find("content.xml") is None:
            yield ScanError(ErrorCode.CORRUPT, "OpenDocument package without content.xml", ctx.member)
            return
        root, errs = z.xml("content.xml")
        yield from errs
        if root is not None:
            yield from self._content(root, ctx)
        if z.find("styles.xml"):
            sroot, errs = z.xml("styles.xml")
            yield from errs
            if sroot is not None:
                yield from self._styles(sroot, ctx)
        if z.find("meta.xml"):
            mroot, errs = z.xml("meta.xml")
            yield from errs
            if mroot is not None:
                yield from self._meta(mroot, ctx)
        for name in z.names:
            if name.startswith("Object ") and not name.endswith("/") and name.rpartition("/")[2] in (
                    "content.xml", "styles.xml"):
                if name.endswith("content.xml"):
                    r, errs = z.xml(name)
                    yield from errs
                    if r is not None:
                        for i, role, text in _indexed(_Walk().run(r, "body")):
                            yield Segment(text, ctx.sub(name), role, True, i)
            elif name.startswith("Object ") and not name.endswith("/") and "/" not in name:
                blob = z.read(name)
                if isinstance(blob, ScanError):
                    yield blob
                elif blob:
                    yield Member(name, blob)

    def _content(self, root: etree._Element, ctx: Context) -> Iterator[ExtractItem]:
        body = root.find(f"{{{OFFICE}}}body")
        if body is None:
            return
        for kind in body:
            if not isinstance(kind.tag, str):
                continue
            local = kind.tag.rpartition("}")[2]
            if local == "spreadsheet":
                yield from self._sheets(kind, ctx)
            elif local in ("presentation", "drawing"):
                yield from self._slides(kind, ctx)
            else:
                for i, role, text in _indexed(_Walk().run(kind, "body")):
                    yield Segment(text, ctx.sub("content.xml"), role, True, i)

    @staticmethod
    def _sheets(sheet_root: etree._Element, ctx: Context) -> Iterator[ExtractItem]:
        for t, table in enumerate(_outside_tables(sheet_root, _TABLE_TAG)):
            name = table.get(f"{{{TABLE}}}name") or f"Sheet{t + 1}"
            row_no = 0
            i = 0
            for row in _outside_tables(table, f"{{{TABLE}}}table-row"):
                col = 0
                rrep = _rep(row, "number-rows-repeated")
                for cell in row:
                    if not isinstance(cell.tag, str) or not cell.tag.endswith("table-cell"):
                        continue
                    crep = _rep(cell, "number-columns-repeated")
                    paras = _Walk().run(cell, "cell")
                    text = "\n".join(p[2].strip() for p in paras if p[2].strip())
                    if text:
                        ref = f"{_col_name(col)}{row_no + 1}"
                        yield Segment(text, ctx.sub(f"{name}!{ref}"), "cell", True, i)
                        i += 1
                    col += min(crep, 1 << 14)
                row_no += min(rrep, 1 << 20)
            for shape_root in _outside_tables(table, f"{{{TABLE}}}shapes"):
                for k, role, text in _indexed(_Walk().run(shape_root, "textbox")):
                    yield Segment(text, ctx.sub(f"{name}!shapes"), role, True, k)

    @staticmethod
    def _slides(pres: etree._Element, ctx: Context) -> Iterator[ExtractItem]:
        for n, page in enumerate(pres.iter(_PAGE_TAG), 1):
            w = _Walk(shapes_keep_role=True, fence=_PAGE_TAG)
            for frame in page:
                if not isinstance(frame.tag, str) or frame.tag == f"{{{PRES}}}notes":
                    continue
                cls = frame.get(f"{{{PRES}}}class") or ""
                role = "title" if cls in ("title", "subtitle") else "footer" if cls == "footer" else \
                    "header" if cls == "header" else "body"
                if cls in ("page-number", "date-time"):
                    continue
                w.walk_one(frame, role)
            w.out.sort(key=lambda p: p[0])
            for i, role, text in _indexed(w.out):
                yield Segment(text, ctx.sub(f"slide{n}"), role, True, i)
            notes = page.find(f"{{{PRES}}}notes")
            if notes is not None:
                nw = _Walk(shapes_keep_role=True, fence=_PAGE_TAG)
                for frame in notes:
                    if isinstance(frame.tag, str) and frame.get(f"{{{PRES}}}class") == "notes":
                        nw.walk_one(frame, "note")
                nw.out.sort(key=lambda p: p[0])
                for i, _role, text in _indexed(nw.out):
                    yield Segment(text, ctx.sub(f"slide{n} notes"), "note", True, i)

    @staticmethod
    def _styles(root: etree._Element, ctx: Context) -> Iterator[ExtractItem]:
        for mp in root.iter(_MASTER_TAG):
            shapes = _Walk(shapes_keep_role=True, fence=_MASTER_TAG)
            for part in mp:
                if not isinstance(part.tag, str):
                    continue
                if part.tag.startswith(f"{{{DRAW}}}"):
                    # A presentation/drawing master: shapes drawn on it stand on every slide.
                    # Placeholders (title, outline…) hold only prompt text; footer/header ones and
                    # free shapes are content.
                    cls = part.get(f"{{{PRES}}}class")
                    if cls is None:
                        shapes.walk_one(part, "body")
                    elif cls in ("footer", "header"):
                        shapes.walk_one(part, cls)
                    continue
                local = part.tag.rpartition("}")[2]
                if not local.startswith(("header", "footer")) or local.endswith("-style"):
                    continue
                role = "header" if local.startswith("header") else "footer"
                for i, _r, text in _indexed(_Walk(fence=_MASTER_TAG).run(part, role)):
                    yield Segment(text, ctx.sub(f"styles.xml!{role}"), role, True, i)
            shapes.out.sort(key=lambda p: p[0])
            name = mp.get(f"{{{STYLE}}}name") or ""
            for i, role, text in _indexed(shapes.out):
                yield Segment(text, ctx.sub(f"styles.xml!master {name}".rstrip()), role, True, i)

    @staticmethod
    def _meta(root: etree._Element, ctx: Context) -> Iterator[ExtractItem]:
        i = 0
        keys = {f"{{{DC}}}title": "title", f"{{{DC}}}subject": "subject", f"{{{DC}}}description": "description",
                f"{{{META}}}keyword": "keywords"}
        walker = etree.iterwalk(root, events=("start",))
        for _event, el in walker:
            if not isinstance(el.tag, str):
                continue
            key = keys.get(el.tag)
            if el.tag == f"{{{META}}}user-defined":
                key = el.get(f"{{{META}}}name") or ""
            elif key is None:
                continue
            # A field's text includes any field nested in it, which is not read again on its own
            # (at every level of a 200-deep nest it was: 14 KB zipped took 29 s).
            walker.skip_subtree()
            text = "".join(el.itertext()).strip()
            if text:
                yield Segment(text, ctx.sub("meta.xml"), "property", True, i, key)
                i += 1
