"""OFD (GB/T 33190-2016), the e-government layout format: a zip of XML.

OFD.xml → DocBody/DocRoot (Document.xml) → Pages/Page@BaseLoc (Content.xml). Text lives in
`TextObject/TextCode` with positions; producers often place one character (or a few) per
`TextCode` or per `TextObject`, so pieces are put back on the page by position and regrouped into
lines by baseline, left to right, lines top to bottom. Template pages are merged into the pages
that use them (a header drawn by a template stands on every page); annotations (watermarks,
stamps) are read per page; a page with no text at all (a scan) hands its images to the engine as
members, for OCR. Each line is one standalone segment, indexed from the top of its page
(lines are not rejoined into paragraphs: a marking after a full line of prose must stay on its
own). DocInfo metadata and CustomDatas become property segments; attached files (the
`Attachments` list, e.g. the Word original of an issued document) are members.
"""
from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass

from lxml import etree

from scanner.extractors.base import Context, Extractor
from scanner.extractors.ooxml import SafeZip, local_name, parse_xml, resolve_part, zip_member, zip_names
from scanner.model import ErrorCode, ExtractItem, Member, ScanError, Segment

_WORD = re.compile(r"\S+")
_NUMS = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|g")


@dataclass(slots=True)
class Piece:
    x: float
    y: float
    end: float
    size: float
    text: str


def _floats(s: str | None) -> list[float]:
    if not s:
        return []
    out = []
    for t in _NUMS.findall(s):
        if t == "g":
            continue
        try:
            out.append(float(t))
        except ValueError:
            pass
    return out


def _deltas(s: str | None, need: int | None = None) -> list[float]:
    """DeltaX/DeltaY: numbers, with `g N v` meaning N times v (GB/T 33190 §11.3); the first `need`
    of them (a TextCode uses one per gap between its characters). Without that bound a short
    attribute (`g 100000 1` repeated) expanded into hundreds of millions of list entries."""
    if not s:
        return []
    if need is not None and need < 0:
        need = 0
    if "g" not in s:  # the common case: plain numbers
        try:
            return list(map(float, s.split() if need is None else s.split(None, need)[:need]))
        except ValueError:
            pass  # a token that is no number: skipped by the reading below
    return _read_deltas(s, need)


def _read_deltas(s: str, need: int | None) -> list[float]:
    """`_deltas` token by token, reading tokens only as far as the values needed."""
    words = (m.group() for m in _WORD.finditer(s))
    toks: list[str] = []

    def have(k: int) -> bool:
        while len(toks) <= k:
            w = next(words, None)
            if w is None:
                return False
            toks.append(w)
        return True

    out: list[float] = []
    i = 0
    while (need is None or len(out) < need) and have(i):
        t = toks[i]
        try:
            if t == "g" and have(i + 2):
                n = int(float(toks[i + 1]))
                v = float(toks[i + 2])
                left = 100_000 if need is None else need - len(out)
                out.extend([v] * max(0, min(n, 100_000, left)))
                i += 3
                continue
            out.append(float(t))
        except (ValueError, OverflowError):  # `g inf 1`: no count
            pass
        i += 1
    return out


def _char_width(ch: str, size: float) -> float:
    return size if ord(ch) > 0x2E7F else size * 0.5


def _pieces(root: etree._Element) -> list[Piece]:
    """Every text piece of a page/template/annotation in page coordinates."""
    out: list[Piece] = []
    # Outermost text objects: one nested in another (no producer writes that) is read with it,
    # its codes being in the outer one's subtree; reading it again at each level of a nest was
    # quadratic (200 levels around 8,000 codes, 1.7 KB zipped: 1.6 M pieces, 20 s, 560 MB).
    walker = etree.iterwalk(root, events=("start",), tag="{*}TextObject")
    for _event, to in walker:
        walker.skip_subtree()
        box = _floats(to.get("Boundary"))
        bx, by = (box[0], box[1]) if len(box) >= 2 else (0.0, 0.0)
        ctm = _floats(to.get("CTM"))
        size_l = _floats(to.get("Size"))
        size = size_l[0] if size_l and size_l[0] > 0 else 3.5
        if len(ctm) == 6:
            a, b, c, d, e, f = ctm
            scale = (abs(a * d - b * c) ** 0.5) or 1.0
        else:
            a, b, c, d, e, f = 1.0, 0.0, 0.0, 1.0, 0.0, 0.0
            scale = 1.0
        eff = size * scale
        cx, cy = 0.0, 0.0
        for tc in to.iter("{*}TextCode"):
            text = tc.text or ""
            xs = _floats(tc.get("X"))
            ys = _floats(tc.get("Y"))
            if xs:
                cx = xs[0]
            if ys:
                cy = ys[0]
            dx = _deltas(tc.get("DeltaX"), len(text) - 1)
            if text:
                width = sum(dx[: len(text) - 1]) if dx else sum(_char_width(ch, size) for ch in text[:-1])
                width += _char_width(text[-1], size)
            else:
                width = 0.0
            px, py = a * cx + c * cy + e + bx, b * cx + d * cy + f + by
            if text.strip():
                out.append(Piece(px, py, px + width * scale, eff, text))
            cx += width
    return out


@dataclass(slots=True)
class Line:
    text: str
    x0: float
    x1: float
    y: float
    size: float


def _lines(pieces: list[Piece]) -> list[Line]:
    """Group pieces into lines by baseline (top to bottom), join each line left to right."""
    if not pieces:
        return []
    pieces = sorted(pieces, key=lambda p: (p.y, p.x))
    groups: list[list[Piece]] = []
    cur: list[Piece] = [pieces[0]]
    base = pieces[0].y
    for p in pieces[1:]:
        tol = 0.35 * min(p.size, cur[-1].size)
        if abs(p.y - base) <= tol:
            cur.append(p)
        else:
            groups.append(cur)
            cur = [p]
            base = p.y
    groups.append(cur)
    lines = []
    for g in groups:
        g.sort(key=lambda p: p.x)
        parts = [g[0].text]
        end = g[0].end
        for p in g[1:]:
            if p.x - end > 1.5 * p.size:  # a real gap (another column): keep words apart
                parts.append(" ")
            parts.append(p.text)
            end = max(end, p.end)
        text = "".join(parts).strip()
        if text:
            lines.append(Line(text, g[0].x, end, g[0].y, max(p.size for p in g)))
    return lines


_MAX_PAGE_IMAGES = 200
_META_KEYS = ("Title", "Author", "Subject", "Abstract", "Keywords", "DocUsage")


class OfdExtractor(Extractor):
    """OFD documents (GB/T 33190-2016)."""

    name = "ofd"
    mimetypes = ("application/ofd",)
    priority = 50

    @classmethod
    def sniff(cls, data: bytes, mime: str) -> bool:
        if super().sniff(data, mime):
            return True
        names = zip_names(data) or []
        return any(n.lstrip("/").lower() == "ofd.xml" for n in names)

    def extract(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        z = yield from SafeZip.package(data, ctx)
        if z is None:
            return
        entry = next((n for n in z.names if n.lower() == "ofd.xml"), None)
        if entry is None:
            yield ScanError(ErrorCode.CORRUPT, "OFD package without OFD.xml", ctx.member)
            return
        root, errs = z.xml(entry)
        yield from errs
        if root is None:
            return
        bodies = list(root.iter("{*}DocBody"))
        for n, body in enumerate(bodies):
            prefix = f"doc{n} " if len(bodies) > 1 else ""
            yield from self._docinfo(body, ctx, entry)
            doc_root = body.find("{*}DocRoot")
            if doc_root is None or not (doc_root.text or "").strip():
                continue
            yield from self._document(z, ctx, resolve_part("", doc_root.text.strip()), prefix)

    @staticmethod
    def _docinfo(body: etree._Element, ctx: Context, entry: str) -> Iterator[ExtractItem]:
        info = body.find("{*}DocInfo")
        if info is None:
            return
        i = 0
        for el in info:
            if not isinstance(el.tag, str):
                continue
            local = local_name(el.tag)
            if local in _META_KEYS:
                text = " ".join(t.strip() for t in el.itertext() if t.strip())
                if text:
                    yield Segment(text, ctx.sub(entry), "property", True, i, local)
                    i += 1
            elif local == "CustomDatas":
                for cd in el:
                    if not isinstance(cd.tag, str):
                        continue
                    text = (cd.text or "").strip()
                    if text:
                        yield Segment(text, ctx.sub(entry), "property", True, i, cd.get("Name") or "")
                        i += 1

    def _document(self, z: SafeZip, ctx: Context, doc_part: str, prefix: str) -> Iterator[ExtractItem]:
        if z.find(doc_part) is None:
            yield ScanError(ErrorCode.CORRUPT, f"missing {doc_part}", ctx.member)
            return
        doc, errs = z.xml(doc_part)
        yield from errs
        if doc is None:
            return
        folder = doc_part.rpartition("/")[0]
        yield from _custom_tags(z, ctx, doc, folder)
        templates: dict[str, str] = {}
        for tp in doc.iter("{*}TemplatePage"):
            loc = tp.get("BaseLoc")
            if loc:
                templates[tp.get("ID") or ""] = resolve_part(folder, loc)
        #: part -> (its pieces, its decompressed size)
        tcache: dict[str, tuple[list[Piece], int]] = {}

        def template_pieces(part: str) -> Iterator[ExtractItem | list[Piece]]:
            """A template's pieces, parsed once; each further page drawing them is charged their
            decompressed size, as if it held them itself (a template drawn on 100,000 pages
            listed in a few KB of Document.xml was 100,000 times its pieces, uncharged)."""
            if part in tcache:
                pieces, size = tcache[part]
                if not ctx.budget.take(size):
                    yield ScanError(ErrorCode.BOMB, f"template {part} drawn on more pages than the file's "
                                    f"decompression budget ({ctx.limits.max_total_size} bytes) allows",
                                    ctx.sub(part))
                    return
                yield pieces
                return
            raw = z.read(part)
            if isinstance(raw, ScanError):
                yield raw
                tcache[part] = ([], 0)
                return
            troot, err = parse_xml(raw, ctx.sub(part))
            if err is not None:
                yield err
            tcache[part] = (_pieces(troot) if troot is not None else [], len(raw))
            yield tcache[part][0]

        pages: dict[str, int] = {}
        media: dict[str, str] | None = None
        sent: set[str] = set()
        for num, page in enumerate(doc.iter("{*}Page"), 1):
            pages[page.get("ID") or ""] = num
            loc = page.get("BaseLoc")
            if not loc:
                continue
            part = resolve_part(folder, loc)
            if z.find(part) is None:
                yield ScanError(ErrorCode.CORRUPT, f"missing page {part}", ctx.sub(f"{prefix}page {num}"))
                continue
            proot, perrs = z.xml(part)
            yield from perrs
            if ctx.budget.spent:
                return  # the file's decompression budget is spent: every later part would fail too
            if proot is None:
                continue
            pieces = _pieces(proot)
            # Each template once per page: the same one named twice draws the same text twice
            # at the same place (and a page naming one template 3,000 times took minutes).
            drawn: set[str] = set()
            for tref in proot.iter("{*}Template"):
                tpart = templates.get(tref.get("TemplateID") or "")
                if tpart is None or tpart in drawn or z.find(tpart) is None:
                    continue
                drawn.add(tpart)
                for item in template_pieces(tpart):
                    if isinstance(item, list):
                        pieces.extend(item)
                    else:
                        yield item
            member = ctx.sub(f"{prefix}page {num}")
            lines = _lines(pieces)
            for i, line in enumerate(lines):
                yield Segment(line.text, member, "body", True, i)
            if not lines:  # a scanned page: its images go to OCR as members
                if media is None:
                    media = self._media(z, doc, folder)
                for img in proot.iter("{*}ImageObject"):
                    path = media.get(img.get("ResourceID") or "")
                    if path and path not in sent and len(sent) < _MAX_PAGE_IMAGES:
                        sent.add(path)
                        blob = z.read(path)
                        if isinstance(blob, ScanError):
                            yield blob
                        elif blob:
                            yield Member(path, blob)
        yield from self._annotations(z, ctx, doc, folder, pages, prefix)
        yield from self._attachments(z, ctx, doc, folder)

    @staticmethod
    def _attachments(z: SafeZip, ctx: Context, doc: etree._Element, folder: str) -> Iterator[ExtractItem]:
        """Files attached to the document (GB/T 33190 §18: `Attachments` list, each `FileLoc`),
        such as the Word original of an issued document: handed back as members."""
        listed = yield from _listed_part(z, doc, folder, "{*}Attachments")
        if listed is None:
            return
        for _entry, part in _entries(z, *listed, "{*}Attachment"):
            if not (yield from zip_member(z, ctx, part)):
                return

    @staticmethod
    def _media(z: SafeZip, doc: etree._Element, folder: str) -> dict[str, str]:
        """Resource ID -> part name of every MultiMedia in the document's resource files."""
        out: dict[str, str] = {}
        for tag in ("{*}PublicRes", "{*}DocumentRes"):
            for ref in doc.iter(tag):
                part = resolve_part(folder, (ref.text or "").strip())
                if not ref.text or z.find(part) is None:
                    continue
                root, _errs = z.xml(part)
                if root is None:
                    continue
                base = resolve_part(part.rpartition("/")[0], root.get("BaseLoc") or "")
                for mm in root.iter("{*}MultiMedia"):
                    mf = mm.find("{*}MediaFile")
                    if mf is not None and mf.text and mf.text.strip():
                        found = z.find(resolve_part(base, mf.text.strip()))
                        if found:
                            out[mm.get("ID") or ""] = found
        return out

    @staticmethod
    def _annotations(z: SafeZip, ctx: Context, doc: etree._Element, folder: str,
                     pages: dict[str, int], prefix: str) -> Iterator[ExtractItem]:
        listed = yield from _listed_part(z, doc, folder, "{*}Annotations")
        if listed is None:
            return
        # Each annotation part is read once: a list naming one part for 10,000 pages (or the
        # list itself, or Document.xml) costs one parse, not 10,000 inflations of the same bytes.
        for page, part in _entries(z, *listed, "{*}Page"):
            num = pages.get(page.get("PageID") or "", 0)
            r, errs = z.xml(part)
            yield from errs
            if ctx.budget.spent:
                return
            if r is None:
                continue
            member = ctx.sub(f"{prefix}page {num} annotations")
            i = 0
            # Outermost annotations, each with what is nested in it (read at every level of a
            # nest, 200 levels around 8,000 codes took 17 s).
            walker = etree.iterwalk(r, events=("start",), tag="{*}Annot")
            for _event, annot in walker:
                walker.skip_subtree()
                for line in _lines(_pieces(annot)):
                    yield Segment(line.text, member, "note", True, i)
                    i += 1
                for remark in annot.iter("{*}Remark"):
                    if (remark.text or "").strip():
                        yield Segment(remark.text.strip(), member, "note", True, i)
                        i += 1


def _listed_part(z: SafeZip, doc: etree._Element, folder: str,
                 tag: str) -> Generator[ExtractItem, None, tuple[etree._Element, str] | None]:
    """The part a document-level list names (`Attachments`, `Annotations`), parsed, and its
    folder (the list's own paths are relative to it); None when absent or unreadable."""
    ref = doc.find(tag)
    if ref is None or not (ref.text or "").strip():
        return None
    part = resolve_part(folder, (ref.text or "").strip())
    if z.find(part) is None:
        return None
    root, errs = z.xml(part)
    yield from errs
    return (root, part.rpartition("/")[0]) if root is not None else None



def _entries(z: SafeZip, root: etree._Element, folder: str, tag: str) -> Iterator[tuple[etree._Element, str]]:
    """(entry, part) of each `tag` entry of an OFD list whose `FileLoc` names a part of the
    package (relative to the list's `folder`), each part once."""
    seen: set[str] = set()
    for entry in root.iter(tag):
        fl = entry.find("{*}FileLoc")
        if fl is None or not (fl.text or "").strip():
            continue
        part = z.find(resolve_part(folder, (fl.text or "").strip()))
        if part is None or part in seen or part.endswith("/"):
            continue
        seen.add(part)
        yield entry, part


#: Elements of an OFD custom-tag file (GB/T 33190 §7.x; 公文 semantic tags) that carry the
#: document's classification: 密级, 密级和保密期限, Classification …
_TAG_KEY = re.compile(r"^(?:密级|密级和保密期限|保密期限|保密等级|密级标志|classification|securitylevel|MJ)$", re.I)


def _custom_tags(z: SafeZip, ctx: Context, doc: etree._Element, folder: str) -> Iterator[ExtractItem]:
    """Classification tags of the document's CustomTags (a label beside the visible page: compared
    with the page's own marking by the classifier)."""
    def parts(base: str, refs: Iterator[etree._Element]) -> Iterator[ExtractItem | tuple[str, etree._Element]]:
        for ref in refs:
            part = resolve_part(base, (ref.text or "").strip())
            if not (ref.text or "").strip() or z.find(part) is None:
                continue
            root, errs = z.xml(part)
            yield from errs
            if root is not None:
                yield part, root

    i = 0
    for got in parts(folder, doc.iter("{*}CustomTags")):
        if not isinstance(got, tuple):
            yield got
            continue
        index, root = got
        for tag in parts(index.rpartition("/")[0], root.iter("{*}FileLoc")):
            if not isinstance(tag, tuple):
                yield tag
                continue
            part, troot = tag
            # A tag's text includes the tags nested in it, not read again on their own.
            walker = etree.iterwalk(troot, events=("start",))
            for _event, el in walker:
                if not isinstance(el.tag, str) or not _TAG_KEY.match(local_name(el.tag)):
                    continue
                walker.skip_subtree()
                text = " ".join(t.strip() for t in el.itertext() if t.strip())
                if text:
                    yield Segment(text, ctx.sub(part), "property", True, i, "密级")
                    i += 1
