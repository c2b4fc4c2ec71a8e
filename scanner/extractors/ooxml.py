"""Office Open XML (.docx/.docm/.xlsx/.xlsm/.pptx/.pptm): located text of every part a reader sees.

Word: body, headers, footers, foot/endnotes, comments (found through the main part's
relationships, whatever their part names, and by the usual names), text boxes (VML and DrawingML),
table cells, SmartArt, chart titles; runs, proofing marks, bookmarks and field results rejoined per
paragraph, field codes (`w:instrText`) and deleted text left out. Excel: shared/inline/formula
strings per cell (`Sheet1!B3`), page header/footer (`&L&C&R` codes stripped), comments and threaded
comments, drawing text boxes, chart titles. PowerPoint: slide text (title placeholders as `title`,
tables as `cell`), notes, legacy and modern comments, free shapes on the masters and on the layouts
the slides use. All: core and custom document properties, Word document variables, custom XML data items;
embedded objects are handed back as `Member`s.

This module also holds the hardened zip and XML helpers the other zip-of-XML readers (ODF, OFD)
share: members are inflated in chunks under the size/ratio/total budget, and XML is parsed without
DTD loading, network access or entity expansion.
"""
from __future__ import annotations

import contextlib
import io
import lzma
import operator
import re
import threading
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator

from lxml import etree

from scanner.extractors.archive import LimitHit, Meter, inflate_raw, local_data_start
from scanner.extractors.base import Budget, Context, Extractor
from scanner.model import ErrorCode, ExtractItem, Member, ScanError, Segment, make_segment

# --------------------------------------------------------------------------------------------
# Hardened XML
# --------------------------------------------------------------------------------------------

_tls = threading.local()
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_DOCTYPE = re.compile(rb"<!DOCTYPE[^\[>]*(\[.*?\]\s*)?>", re.DOTALL | re.IGNORECASE)


def _parsers() -> tuple[etree.XMLParser, etree.XMLParser]:
    # lxml parsers are not safe to share between threads: one pair per thread.
    p = getattr(_tls, "parsers", None)
    if p is None:
        kw = {"resolve_entities": False, "no_network": True, "huge_tree": False, "load_dtd": False,
                  "remove_comments": True, "remove_pis": True}
        p = (etree.XMLParser(**kw), etree.XMLParser(recover=True, **kw))
        _tls.parsers = p
    return p


class XmlTrouble(Exception):
    """An XML part that could not be parsed (or was defused); carries the ScanError to report."""

    def __init__(self, error: ScanError) -> None:
        super().__init__(error.detail)
        self.error = error


def parse_xml(data: bytes, member: str | None = None) -> tuple[etree._Element | None, ScanError | None]:
    """Parse one XML document safely. Returns (root, error); root may be set along with an error
    when a damaged or defused document was still partly read.

    Entities are never expanded: a document declaring entities has its DTD removed and is read
    without them (its entity references come back empty), which is reported, not hidden."""
    strict, lenient = _parsers()
    err: ScanError | None = None
    head = data[:65536]
    at = head.find(b"<!DOCTYPE")
    if at < 0:
        at = head.find(b"<!doctype")
    if at >= 0:
        if _ENTITY_DECL.search(data, at, at + (1 << 20)):
            err = ScanError(ErrorCode.UNSUPPORTED, "XML declares entities: not expanded", member)
        # One anchored match (never a search: hostile input may repeat the keyword endlessly).
        m = _DOCTYPE.match(data, at, at + (1 << 20))
        if m:
            data = data[:at] + data[m.end():]
    try:
        return etree.fromstring(data, strict), err
    except etree.XMLSyntaxError as exc:
        try:
            root = etree.fromstring(data, lenient)
        except etree.XMLSyntaxError:
            root = None
        if root is None and _XML_ILLEGAL.search(data):
            # Control bytes are never legal in XML: a part padded with NULs (4 KB before the
            # document) must not hide its text. Read it without them; the part stays `corrupt`.
            try:
                root = etree.fromstring(_XML_ILLEGAL.sub(b"", data), lenient)
            except etree.XMLSyntaxError:
                root = None
        return root, err or ScanError(ErrorCode.CORRUPT, f"malformed XML: {exc}"[:300], member)


#: C0 control bytes XML 1.0 forbids everywhere (TAB, LF and CR are allowed).
_XML_ILLEGAL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def local_name(tag: str) -> str:
    """The local name of an element or attribute name: `{ns}name` -> `name`, and `pfx:name` ->
    `name` for a prefix the document never declared (the recovering parser keeps it in the name;
    `etree.QName` raises ValueError on it, which made a whole file an error record)."""
    return tag.rpartition("}")[2].rpartition(":")[2]


def parse_xml_or_raise(data: bytes, member: str | None = None) -> tuple[etree._Element, list[ScanError]]:
    root, err = parse_xml(data, member)
    if root is None:
        raise XmlTrouble(err or ScanError(ErrorCode.CORRUPT, "empty XML", member))
    return root, [err] if err else []


# --------------------------------------------------------------------------------------------
# Hardened zip
# --------------------------------------------------------------------------------------------



class SafeZip:
    """A zip read entirely in memory with per-member limits and the shared budget.

    When the central directory is missing or damaged (a truncated download, half a file on a
    broken stick), the members are recovered from their local headers and `problems` says so:
    what survives is still scanned."""

    def __init__(self, zf: zipfile.ZipFile | None, ctx: Context, data: bytes = b"",
                 listing: list[zipfile.ZipInfo] | None = None) -> None:
        self.zf = zf
        self.ctx = ctx
        self.problems: list[ScanError] = []
        self.infos: dict[str, zipfile.ZipInfo] = {}
        #: Read from a central directory (else from local headers, `_salvage`).
        self.listed = zf is not None or listing is not None
        for info in listing if listing is not None else zf.infolist() if zf is not None else ():
            self.infos.setdefault(info.filename.lstrip("/"), info)
        self._lower = {n.lower(): n for n in self.infos}
        self._data = data
        self._offsets: dict[str, int] = {}

    @classmethod
    def package(cls, data: bytes, ctx: Context) -> Generator[ScanError, None, SafeZip | None]:
        """Open a zip-of-XML package for an extractor: yields why it cannot be opened (None
        returned) or what was salvaged from a broken one, and returns the zip."""
        z = cls.open(data, ctx)
        if isinstance(z, ScanError):
            yield z
            return None
        yield from z.problems
        return z

    @classmethod
    def open(cls, data: bytes, ctx: Context) -> SafeZip | ScanError:
        listing = _sniffed_listing(data)
        if listing is not None:
            return cls(None, ctx, data, listing)
        try:
            return cls(zipfile.ZipFile(io.BytesIO(data)), ctx, data)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
                NotImplementedError) as exc:  # NotImplementedError: `zip file version 14.8`
            err = ScanError(ErrorCode.CORRUPT, f"not a readable zip: {exc}"[:300], ctx.member)
        z = cls(None, ctx)
        z._salvage(data)
        if not z.infos:
            return err
        z.problems.append(ScanError(ErrorCode.CORRUPT, f"{err.detail}; {len(z.infos)} member(s) recovered "
                                    "from local headers", ctx.member))
        return z

    def _salvage(self, data: bytes) -> None:
        self._data = data
        pos = data.find(b"PK\x03\x04")
        while pos != -1 and len(self.infos) < self.ctx.limits.max_members:
            hdr = data[pos:pos + 30]
            if len(hdr) < 30:
                break
            flags, method = int.from_bytes(hdr[6:8], "little"), int.from_bytes(hdr[8:10], "little")
            csize, usize = int.from_bytes(hdr[18:22], "little"), int.from_bytes(hdr[22:26], "little")
            nlen, xlen = int.from_bytes(hdr[26:28], "little"), int.from_bytes(hdr[28:30], "little")
            raw_name = data[pos + 30:pos + 30 + nlen]
            start = pos + 30 + nlen + xlen
            nxt = pos + 4
            if method in (0, 8) and 0 < nlen < 1024 and start <= len(data):
                name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace").lstrip("/")
                if method == 0 and flags & 0x8 and not csize:
                    name = ""  # stored with a data descriptor: its length is unknowable
                if name and name not in self.infos:
                    info = zipfile.ZipInfo(name)
                    info.flag_bits, info.compress_type = flags, method
                    info.compress_size = csize if csize and not flags & 0x8 else len(data) - start
                    info.file_size = usize if usize and not flags & 0x8 else 0
                    self.infos[name] = info
                    self._offsets[name] = start
                if csize and not flags & 0x8:
                    nxt = max(nxt, start + csize)
            pos = data.find(b"PK\x03\x04", nxt)
        self._lower = {n.lower(): n for n in self.infos}

    def _raw(self, real: str, info: zipfile.ZipInfo) -> memoryview | None:
        """The member's compressed bytes, located by its local header (salvaged: by the walk)."""
        start = local_data_start(self._data, info.header_offset) if self.listed else self._offsets.get(real)
        if start is None:
            return None
        return memoryview(self._data)[start:start + info.compress_size]

    @property
    def names(self) -> list[str]:
        return list(self.infos)

    def find(self, name: str) -> str | None:
        """The stored name matching `name` (zip names in OOXML are case-insensitive)."""
        if name in self.infos:
            return name
        return self._lower.get(name.lower())

    def read(self, name: str) -> bytes | ScanError:
        """Inflate one member in chunks; never more than the limits allow."""
        real = self.find(name)
        where = self.ctx.sub(name)
        if real is None:
            return ScanError(ErrorCode.CORRUPT, f"missing part {name}", where)
        info = self.infos[real]
        if self.ctx.budget.spent:  # by an earlier part: refuse before inflating
            return ScanError(ErrorCode.BOMB, f"{name}: decompressed data of the file exceeds "
                             f"{self.ctx.limits.max_total_size} bytes in total", where)
        if info.flag_bits & 0x1 or info.compress_type == 99:
            return ScanError(ErrorCode.ENCRYPTED, f"encrypted zip entry {name}", where)
        raw = self._raw(real, info)
        if raw is None:
            return ScanError(ErrorCode.CORRUPT, f"{name}: local header missing (truncated?)", where)
        # The archive reader's bounded inflater: real output is counted (a central directory that
        # lies about sizes neither cuts the part short nor slips past the limits).
        # A package part beyond the member limit is no document part: it is reported as a bomb.
        meter = Meter(self.ctx, len(raw), name, oversize=ErrorCode.BOMB)
        try:
            meter.check_declared(info.file_size)
            out, _complete = inflate_raw(raw, info.compress_type, meter)
        except LimitHit as hit:
            return ScanError(hit.code, hit.detail, where)
        except (zlib.error, lzma.LZMAError, EOFError, OSError, ValueError) as exc:
            return ScanError(ErrorCode.CORRUPT, f"{name}: {exc}"[:300], where)
        return out

    def xml(self, name: str) -> tuple[etree._Element | None, list[ScanError]]:
        """Read and parse one XML part; (None, errors) when it cannot be had."""
        data = self.read(name)
        if isinstance(data, ScanError):
            return None, [data]
        root, err = parse_xml(data, self.ctx.sub(name))
        return root, [err] if err else []

    def rels(self, part: str) -> dict[str, tuple[str, str]]:
        """Relationships of `part`: Id -> (type, absolute target part name)."""
        d, _, base = part.rpartition("/")
        rels_name = f"{d}/_rels/{base}.rels" if d else f"_rels/{base}.rels"
        if self.find(rels_name) is None:
            return {}
        root, _ = self.xml(rels_name)
        out: dict[str, tuple[str, str]] = {}
        if root is None:
            return out
        for rel in root.iter("{*}Relationship"):
            if rel.get("TargetMode") == "External":
                continue
            target = rel.get("Target") or ""
            out[rel.get("Id") or ""] = (rel.get("Type") or "", resolve_part(d, target))
        return out


def resolve_part(base_dir: str, target: str) -> str:
    """Resolve a relationship target against the directory of its source part."""
    if target.startswith("/"):
        path = target[1:]
    else:
        path = f"{base_dir}/{target}" if base_dir else target
    parts: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts:
                parts.pop()
            continue
        parts.append(seg)
    return "/".join(parts)


def zip_names(data: bytes) -> list[str] | None:
    """Names in a zip's central directory, None if it is not a zip (for sniffing).

    Within `sniffing(data)` (the registry's pick) the names are read once: the ODF, OFD and
    OOXML sniffers each asked for them, three central-directory parses for every office file."""
    if not data.startswith(b"PK"):
        return None
    memo = getattr(_tls, "sniff", None)
    if memo is not None and memo[0] is data and memo[1] is not _UNREAD:
        return memo[1]  # type: ignore[no-any-return]
    zf = None
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        names: list[str] | None = zf.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, KeyError, NotImplementedError):
        names = None
    if memo is not None and memo[0] is data:
        memo[1] = names
        if zf is not None:
            _keep_listing(data, zf)
    return names


_UNREAD = object()
#: Bytes before the central directory also compared (zipfile reads a zip64 locator there).
_LISTING_MARGIN = 64
#: A central directory (with what follows it) larger than this is not kept after a pick.
_LISTING_MAX = 1 << 20
#: Nor one of more members (what is kept between a pick and its extraction stays small).
_LISTING_MAX_MEMBERS = 4096


def _keep_listing(data: bytes, zf: zipfile.ZipFile) -> None:
    """Keep the members the pick's sniffers read, for `SafeZip.open` of the same bytes.

    The zip's listing is a function of its length and of its bytes from (just before) the central
    directory to the end (zipfile reads nothing else to list it); those bytes are kept, never the
    whole file, and the listing is reused only for bytes equal there (issue 17: a second parse of
    the central directory was a tenth of a .pptx extraction)."""
    start = max(0, zf.start_dir - _LISTING_MARGIN)
    infos = zf.infolist()
    if len(data) - start <= _LISTING_MAX and len(infos) <= _LISTING_MAX_MEMBERS:
        _tls.listing = (len(data), start, data[start:], infos)


def _sniffed_listing(data: bytes) -> list[zipfile.ZipInfo] | None:
    """The listing the last pick read of these very bytes, if any (taken: used once)."""
    kept = getattr(_tls, "listing", None)
    if kept is None:
        return None
    _tls.listing = None
    size, start, tail, infos = kept
    if len(data) != size or data[start:] != tail:
        return None
    return infos  # type: ignore[no-any-return]


@contextlib.contextmanager
def sniffing(data: bytes) -> Iterator[None]:
    """While the extractors sniff `data`: `zip_names(data)` is read once (then forgotten, so that
    no file's bytes outlive its pick)."""
    outer = getattr(_tls, "sniff", None)
    _tls.sniff = [data, _UNREAD]
    try:
        yield
    finally:
        _tls.sniff = outer


# --------------------------------------------------------------------------------------------
# A small table-driven walker: paragraphs of runs, rejoined
# --------------------------------------------------------------------------------------------

# Actions of the walker per tag.
PARA, TEXT, TAB, BREAK, SKIP, SYM, ALT, CELL, TEXTBOX, DASH, PAGE, PPR, TEXTPATH = range(13)
Para = tuple[int, str, str, bool]  # (document order, role, text, starts a new page)
_ORDER = operator.itemgetter(0)


class _Buf(list):  # type: ignore[type-arg]
    """Text pieces of one paragraph, and whether the paragraph starts a page."""

    # A class default rather than an `__init__`: a Python-level constructor per paragraph was a
    # measurable share of a large document's walk.
    newpage = False


def _truthy(el: etree._Element) -> bool:
    val = next((v for k, v in el.attrib.items() if k.endswith("}val")), "true")
    return val not in ("0", "false", "off")


class Walker:
    """Collect paragraph texts from a tree: `actions` maps a tag to what it means.

    Nested paragraphs (a text box inside a paragraph) become paragraphs of their own, numbered
    by where they start; everything unknown is descended into. Page breaks (explicit, the last
    rendered layout break, page-break-before, section ends) are noted so that indexes restart
    at the top of each page."""

    def __init__(self, actions: dict[str, int], shape_role: Callable[[etree._Element], str | None] | None = None,
                 shape_tags: frozenset[str] = frozenset()) -> None:
        self.actions = actions
        self.shape_role = shape_role
        self.shape_tags = shape_tags

    def paragraphs(self, root: etree._Element, role: str) -> list[Para]:
        out: list[Para] = []
        state = [0, False]  # next paragraph number, page break pending for the next paragraph
        self._walk(root, _Buf(), role, out, state)
        out.sort(key=_ORDER)
        return out

    def _walk(self, el: etree._Element, buf: _Buf, role: str, out: list[Para], state: list) -> None:  # type: ignore[type-arg]
        # The hot loop of a document's extraction (issue 17: two thirds of a 100 KB .docx verdict):
        # the commonest cases come first — text, skipped properties, and elements only descended
        # into, whose children (a run's properties and text) are read inline, one call less per run.
        get = self.actions.get
        for ch in el:
            tag = ch.tag
            act = get(tag, -1)
            if act == TEXT:
                text = ch.text
                if text:
                    buf.append(text)
            elif act == SKIP:
                continue
            elif act == -1 and tag not in self.shape_tags:
                if not isinstance(tag, str):
                    continue  # an entity reference left unexpanded
                for g in ch:
                    gtag = g.tag
                    gact = get(gtag, -1)
                    if gact == TEXT:
                        text = g.text
                        if text:
                            buf.append(text)
                    elif gact != SKIP:
                        self._one(g, gtag, gact, buf, role, out, state)
            else:
                self._one(ch, tag, act, buf, role, out, state)

    def _one(self, ch: etree._Element, tag: object, act: int, buf: _Buf, role: str, out: list[Para],
             state: list) -> None:  # type: ignore[type-arg]
        """One element of any action but TEXT and SKIP (which `_walk` reads inline)."""
        if act == PARA:
            order = state[0]
            state[0] += 1
            sub = _Buf()
            if state[1]:
                sub.newpage = True
                state[1] = False
            self._walk(ch, sub, role, out, state)
            out.append((order, role, "".join(sub), sub.newpage))
        elif act == -1:
            if not isinstance(tag, str):
                return
            if tag in self.shape_tags and self.shape_role is not None:
                r = self.shape_role(ch)
                if r is not None:
                    self._walk(ch, buf, r, out, state)
            else:
                self._walk(ch, buf, role, out, state)
        elif act == TAB:
            buf.append("\t")
        elif act == BREAK:
            typ = next((v for k, v in ch.attrib.items() if k.endswith("}type")), None)
            if typ == "page":
                self._page(buf, state)
            else:
                buf.append("\n")
        elif act == PAGE:
            self._page(buf, state)
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
            # VML WordArt, which is how Word draws a text watermark ("机密" across every page,
            # from the header): the text is an attribute and stands on its own.
            text = ch.get("string")
            if text:
                out.append((state[0], role, text, False))
                state[0] += 1
        elif act == SYM:
            buf.append(_sym_char(ch))
        elif act == CELL:
            self._walk(ch, buf, "cell", out, state)
        elif act == TEXTBOX:
            self._walk(ch, buf, "textbox", out, state)
        elif act == ALT:
            # mc:AlternateContent: the first Choice, else the Fallback (never both: a text box
            # is stored twice, as DrawingML and as VML).
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
                self._walk(chosen, buf, role, out, state)

    @staticmethod
    def _page(buf: _Buf, state: list) -> None:  # type: ignore[type-arg]
        if any(t.strip() for t in buf):
            state[1] = True  # text before the break: the next paragraph opens the page
        else:
            buf.newpage = True


_SYMBOL_FONT_MAP = {0xAB: "★", 0xB5: "☆", 0x6C: "●", 0xA1: "○",  # Wingdings stars/bullets
                    # Wingdings boxes and ticks of a form's tick-box field (`密级：□绝密 ☑机密`)
                    0xFE: "☑", 0xFD: "☒", 0xFC: "✓", 0xFB: "✗", 0xA8: "☐", 0x6F: "□", 0x71: "❑", 0x6E: "■"}
#: Wingdings 2 places its boxes and ticks elsewhere.
_SYMBOL2_FONT_MAP = {0x52: "☑", 0x53: "☒", 0x54: "☒", 0x50: "✓", 0x4F: "✗", 0xA3: "☐", 0x2A: "☐", 0xAB: "★"}


def _sym_char(el: etree._Element) -> str:
    code = None
    font = ""
    for k, v in el.attrib.items():
        if k.endswith("}char"):
            code = v
        elif k.endswith("}font"):
            font = v.lower()
    if not code:
        return ""
    try:
        n = int(code, 16)
    except ValueError:
        return ""
    if n >= 0xF000:
        low = n - 0xF000
        if font.replace(" ", "") == "wingdings2" and low in _SYMBOL2_FONT_MAP:
            return _SYMBOL2_FONT_MAP[low]
        if "wingdings" in font and low in _SYMBOL_FONT_MAP:
            return _SYMBOL_FONT_MAP[low]
        if font == "symbol" and low == 0x2A:
            return "*"
    # Beyond U+10FFFF chr() raises, and that made the whole document an error record.
    return chr(n) if n < 0x110000 else ""


def _both(ns_a: str, ns_b: str, *local: str) -> list[str]:
    return [f"{{{ns}}}{n}" for ns in (ns_a, ns_b) for n in local]


W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W_STRICT = "http://purl.oclc.org/ooxml/wordprocessingml/main"
A = "http://schemas.openxmlformats.org/drawingml/2006/main"
A_STRICT = "http://purl.oclc.org/ooxml/drawingml/main"
P = "http://schemas.openxmlformats.org/presentationml/2006/main"
P_STRICT = "http://purl.oclc.org/ooxml/presentationml/main"
S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
S_STRICT = "http://purl.oclc.org/ooxml/spreadsheetml/main"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
DGM = "http://schemas.openxmlformats.org/drawingml/2006/diagram"
TC = "http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments"


def _acts(pairs: Iterable[tuple[list[str], int]]) -> dict[str, int]:
    d: dict[str, int] = {}
    for tags, act in pairs:
        for t in tags:
            d[t] = act
    return d


_DML_ACTS = [
    (_both(A, A_STRICT, "p"), PARA),
    (_both(A, A_STRICT, "t"), TEXT),
    (_both(A, A_STRICT, "br"), BREAK),
    (_both(A, A_STRICT, "tc"), CELL),
    (_both(A, A_STRICT, "rPr", "pPr", "endParaRPr", "bodyPr", "lstStyle", "spPr", "xfrm",
           "ln", "solidFill", "effectLst", "extLst"), SKIP),
    ([f"{{{MC}}}AlternateContent"], ALT),
]

WORD_WALKER = Walker(_acts([
    (_both(W, W_STRICT, "p"), PARA),
    (_both(W, W_STRICT, "t"), TEXT),
    (_both(W, W_STRICT, "tab", "ptab"), TAB),
    (_both(W, W_STRICT, "br", "cr"), BREAK),
    (_both(W, W_STRICT, "noBreakHyphen"), DASH),
    (_both(W, W_STRICT, "sym"), SYM),
    (_both(W, W_STRICT, "tc"), CELL),
    (_both(W, W_STRICT, "txbxContent"), TEXTBOX),
    (_both(W, W_STRICT, "lastRenderedPageBreak"), PAGE),
    (["{urn:schemas-microsoft-com:vml}textpath"], TEXTPATH),
    (_both(W, W_STRICT, "pPr"), PPR),
    # field codes, deleted/moved-away text, phonetic guides and properties: not what a reader sees
    (_both(W, W_STRICT, "instrText", "delInstrText", "delText", "moveFrom", "rt", "rPr",
           "sectPr", "tblPr", "tcPr", "trPr", "tblGrid", "sdtPr", "sdtEndPr", "softHyphen",
           "fldData", "bookmarkStart", "bookmarkEnd", "proofErr"), SKIP),
    *_DML_ACTS,
]))

# SmartArt data (`dgm:t`) and chart titles/labels (`c:rich`) hold DrawingML text bodies
# (`a:bodyPr`, `a:p`…): walked like any other, as containers.
DML_WALKER = Walker(_acts(_DML_ACTS))


def _indexed(paras: list[Para]) -> Iterator[tuple[int, str, str]]:
    """Non-empty paragraphs with their index among the non-empty ones of their page (empty
    paragraphs do not count; a page break restarts the count)."""
    i = 0
    for _, role, text, newpage in paras:
        if newpage:
            i = 0
        text = text.strip()
        if text:
            yield i, role, text
            i += 1


# --------------------------------------------------------------------------------------------
# Properties (shared by every OOXML kind)
# --------------------------------------------------------------------------------------------

_CORE_KEYS = {"title", "subject", "keywords", "category", "description", "contentStatus"}


def _properties(z: SafeZip, ctx: Context) -> Iterator[ExtractItem]:
    i = 0
    if z.find("docProps/core.xml"):
        root, errs = z.xml("docProps/core.xml")
        yield from errs
        if root is not None:
            for el in root:
                if not isinstance(el.tag, str):
                    continue
                key = local_name(el.tag)
                text = (el.text or "").strip()
                if key in _CORE_KEYS and text:
                    yield Segment(text, ctx.sub("docProps/core.xml"), "property", True, i, key)
                    i += 1
    if z.find("docProps/custom.xml"):
        root, errs = z.xml("docProps/custom.xml")
        yield from errs
        i = 0
        if root is not None:
            for prop in root:
                if not isinstance(prop.tag, str):
                    continue
                name = prop.get("name") or ""
                text = "".join(prop.itertext()).strip()
                if text:
                    yield Segment(text, ctx.sub("docProps/custom.xml"), "property", True, i, name)
                    i += 1
    # Custom XML data items: OA systems and SharePoint keep classification columns here.
    for name in z.names:
        low = name.lower()
        if low.startswith("customxml/item") and low.endswith(".xml") and "props" not in low:
            root, errs = z.xml(name)
            yield from errs
            if root is None:
                continue
            i = 0
            for el in root.iter():
                if not isinstance(el.tag, str) or len(el):
                    continue
                text = (el.text or "").strip()
                if text:
                    yield Segment(text, ctx.sub(name), "property", True, i, local_name(el.tag))
                    i += 1


# --------------------------------------------------------------------------------------------
# Word
# --------------------------------------------------------------------------------------------

_WORD_PARTS = [  # (regex on the file name inside the main part's folder, role)
    (re.compile(r"header\d*\.xml$"), "header"),
    (re.compile(r"footer\d*\.xml$"), "footer"),
    (re.compile(r"(footnotes|endnotes)\.xml$"), "note"),
    (re.compile(r"comments\.xml$"), "comment"),
]
_NUM = re.compile(r"(\d+)")


def _natural(name: str) -> list[object]:
    # A run of digits compares by its value, without int(): a member name with a run of over
    # 4,300 digits made int() raise, and the whole package an error record.
    return [(len(t.lstrip("0")), t.lstrip("0")) if t.isdigit() else t for t in _NUM.split(name)]


def _emit_paras(paras: list[Para], member: str | None) -> list[Segment]:
    # `_indexed`, inline, into a list (one generator step less per paragraph of a large
    # document), each segment built by `make_segment` (issue 17).
    out: list[Segment] = []
    i = 0
    for _, role, text, newpage in paras:
        if newpage:
            i = 0
        text = text.strip()
        if text:
            out.append(make_segment(text, member, role, True, i))
            i += 1
    return out


_WORD_REL_ROLES = {"header": "header", "footer": "footer", "footnotes": "note", "endnotes": "note",
                   "comments": "comment"}


def _word_story_parts(z: SafeZip, main: str, prefix: str) -> list[tuple[str, str]]:
    """(part, role) of the headers, footers, notes and comments: those the main part's
    relationships name (whatever their file names: producers other than Word do not always call
    them `header1.xml`), then any left by the usual names (a package with damaged relationships)."""
    found: dict[str, str] = {}
    for (typ, target) in z.rels(main).values():
        role = _WORD_REL_ROLES.get(typ.rpartition("/")[2])
        real = z.find(target) if role else None
        if role and real and real != main and real not in found:
            found[real] = role
    by_name = sorted((n for n in z.names if n.startswith(prefix) and "/" not in n[len(prefix):]), key=_natural)
    for name in by_name:
        if name in found:
            continue
        base = name[len(prefix):]
        for rx, role in _WORD_PARTS:
            if rx.match(base):
                found[name] = role
                break
    order = {name: i for i, name in enumerate(by_name)}
    return sorted(found.items(), key=lambda kv: (order.get(kv[0], len(order)), _natural(kv[0])))


def _word(z: SafeZip, ctx: Context, main: str) -> Iterator[ExtractItem]:
    folder = main.rpartition("/")[0]
    root, errs = z.xml(main)
    yield from errs
    if root is not None:
        yield from _emit_paras(WORD_WALKER.paragraphs(root, "body"), ctx.sub(main))
    prefix = f"{folder}/" if folder else ""
    for name, role in _word_story_parts(z, main, prefix):
        r, errs = z.xml(name)
        yield from errs
        if r is not None:
            yield from _emit_paras(WORD_WALKER.paragraphs(r, role), ctx.sub(name))
    # Document variables (w:docVar): another place OA add-ins write 密级.
    if z.find(f"{prefix}settings.xml"):
        r, errs = z.xml(f"{prefix}settings.xml")
        yield from errs
        if r is not None:
            i = 0
            for dv in r.iter(f"{{{W}}}docVar", f"{{{W_STRICT}}}docVar"):
                name = dv.get(f"{{{W}}}name") or dv.get(f"{{{W_STRICT}}}name") or ""
                val = (dv.get(f"{{{W}}}val") or dv.get(f"{{{W_STRICT}}}val") or "").strip()
                if val:
                    yield Segment(val, ctx.sub(f"{prefix}settings.xml"), "property", True, i, name)
                    i += 1
    yield from _diagrams(z, ctx, prefix)


_DRAWING_PART = re.compile(r"(diagrams/data|drawings/drawing|charts/chart)\d*\.xml$")


def _diagrams(z: SafeZip, ctx: Context, prefix: str) -> Iterator[ExtractItem]:
    """SmartArt data, drawing text boxes and chart titles stored in their own parts."""
    wanted = [n for n in z.names if n.startswith(prefix) and _DRAWING_PART.match(n, len(prefix))]
    for name in sorted(wanted, key=_natural):
        r, errs = z.xml(name)
        yield from errs
        if r is not None:
            yield from _emit_paras(DML_WALKER.paragraphs(r, "textbox"), ctx.sub(name))


# --------------------------------------------------------------------------------------------
# Excel
# --------------------------------------------------------------------------------------------

_S_T = set(_both(S, S_STRICT, "t"))
_S_R = set(_both(S, S_STRICT, "r"))
_S_IS = frozenset(_both(S, S_STRICT, "is"))
_S_V = frozenset(_both(S, S_STRICT, "v"))
_HF_CODE = re.compile(r'&(?:"[^"]*"|\d+|[A-Za-z])')
_HF_SECTION = re.compile(r"&([LCR])")


def _rich_text(el: etree._Element) -> str:
    """Text of a shared/inline string: direct `t`, or `r/t` runs; phonetic runs left out."""
    parts: list[str] = []
    for ch in el:
        if ch.tag in _S_T:
            parts.append(ch.text or "")
        elif ch.tag in _S_R:
            for t in ch:
                if t.tag in _S_T:
                    parts.append(t.text or "")
    return "".join(parts)


_ITERPARSE = {"resolve_entities": False, "no_network": True, "huge_tree": False, "load_dtd": False,
              "remove_comments": True}


def _iter_tag(data: bytes, tags: tuple[str, ...]) -> Iterator[etree._Element]:
    """Stream `end` events of `tags` over a large part, clearing as it goes (bounded memory)."""
    ctxp = etree.iterparse(io.BytesIO(data), events=("end",), tag=tags, **_ITERPARSE)
    for _, el in ctxp:
        yield el
        _free(el)


def _free(el: etree._Element) -> None:
    """Drop a streamed element's content and the siblings before it (read already)."""
    el.clear(keep_tail=False)
    parent = el.getparent()
    if parent is not None:
        while el.getprevious() is not None:
            del parent[0]


def split_header_footer(code: str) -> list[str]:
    """`&L左&C中&R右` -> sections with every formatting/field code removed (`&&` is `&`)."""
    code = code.replace("&&", "\x00")
    pieces = _HF_SECTION.split(code)
    # pieces: [before, 'L', text, 'C', text, ...]
    texts = [pieces[0]] + [pieces[k] for k in range(2, len(pieces), 2)]
    out = []
    for t in texts:
        t = _HF_CODE.sub("", t).replace("\x00", "&").strip()
        if t:
            out.append(t)
    return out


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
        # Each worksheet part once: a workbook listing one part 200,000 times (a few KB zipped)
        # made as many reads of it, each charged only its few bytes (the same holds for slides).
        listed: set[str] = set()
        for sh in wb.iter(f"{{{S}}}sheet", f"{{{S_STRICT}}}sheet"):
            rid = next((v for k, v in sh.attrib.items() if k.endswith("}id")), None)
            if rid and rid in rels and z.find(rels[rid][1]) and rels[rid][1] not in listed:
                listed.add(rels[rid][1])
                sheets.append((sh.get("name") or rels[rid][1], rels[rid][1]))
    if not sheets:  # no usable workbook: read whatever worksheets there are
        for n in sorted(z.names, key=_natural):
            if re.match(rf"{re.escape(folder)}/worksheets/[^/]+\.xml$", n):
                sheets.append((n.rpartition("/")[2][:-4], n))
    if shared_part is None and z.find(f"{folder}/sharedStrings.xml"):
        shared_part = f"{folder}/sharedStrings.xml"

    shared: list[str] = []
    reads = _SharedReads(ctx.budget, 0)
    if shared_part and z.find(shared_part):
        data = z.read(shared_part)
        if isinstance(data, ScanError):
            yield data
        else:
            reads.free = len(data)
            try:
                whole = _shared_whole(data)
                shared = whole if whole is not None else [_rich_text(si) for si in _iter_tag(data, _XL_SI)]
            except etree.XMLSyntaxError as exc:
                yield ScanError(ErrorCode.CORRUPT, f"shared strings: {exc}"[:300], ctx.sub(shared_part))

    for sheet_name, part in sheets:
        data = z.read(part)
        if isinstance(data, ScanError):
            yield data
            continue
        blocks = _sheet_blocks(data)
        if blocks is not None:
            read = _sheet_whole(blocks, ctx, sheet_name, part, shared, reads)
        else:
            read = _sheet_streamed(data, ctx, sheet_name, part, shared, reads)
        del blocks  # the tree lives as long as its read, not on into the next sheet's
        if not (yield from read):
            return  # the budget is spent
        # comments of this sheet (each part once, however many relationships name it)
        for (typ, target) in dict.fromkeys(z.rels(part).values()):
            if typ.endswith("/comments") and z.find(target):
                r, errs = z.xml(target)
                yield from errs
                if r is None:
                    continue
                # Outermost comments, each with what is nested in it: read again at every level
                # of a nest, 200 levels around 30,000 runs (2.4 KB zipped) took 8 s.
                walker = etree.iterwalk(r, events=("start",), tag=(f"{{{S}}}comment", f"{{{S_STRICT}}}comment"))
                for k, (_event, cm) in enumerate(walker):
                    walker.skip_subtree()
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
                # Replies are siblings; one nested in another is read with it (once).
                walker = etree.iterwalk(r, events=("start",), tag=f"{{{TC}}}threadedComment")
                for _event, tc in walker:
                    walker.skip_subtree()
                    for t in tc.iter(f"{{{TC}}}text"):
                        if t.text and t.text.strip():
                            yield Segment(t.text.strip(), ctx.sub(f"{sheet_name}!{tc.get('ref') or k}"),
                                          "comment", True, k)
                            k += 1
    yield from _diagrams(z, ctx, f"{folder}/")


#: Local name of each streamed worksheet tag (`c`, `row`, `oddHeader`…), and the cell types
#: (`t`) that hold words.
_XL_KIND = {tag: tag.rpartition("}")[2] for tag in _both(
    S, S_STRICT, "c", "row", "oddHeader", "oddFooter", "evenHeader", "evenFooter", "firstHeader", "firstFooter")}
_XL_TEXT_TYPES = frozenset(("inlineStr", "s", "str"))
_XL_STREAMED = tuple(_XL_KIND)
_XL_ROW = frozenset(_both(S, S_STRICT, "row"))
_XL_CELL = frozenset(_both(S, S_STRICT, "c"))
_XL_SHEET_DATA = frozenset(_both(S, S_STRICT, "sheetData"))
_XL_HEADER_FOOTER = frozenset(_both(S, S_STRICT, "headerFooter"))
_XL_HF = frozenset(_XL_KIND) - _XL_ROW - _XL_CELL
_XL_SI = tuple(_both(S, S_STRICT, "si"))
_XL_SI_SET = frozenset(_XL_SI)
#: Cells of a row (rows of a sheet) whose freeing is put off at most (bounded memory).
_FREE_EVERY = 256


def _cell_text(c: etree._Element, shared: list[str], t: str | None) -> str | None:
    """The text of cell `c` of type `t` (its `t` attribute, which the one caller has read)."""
    if t == "inlineStr":
        for ch in c:
            if ch.tag.endswith("}is"):
                return _rich_text(ch)
        return None
    if t in ("s", "str"):
        v = None
        for ch in c:
            if ch.tag.endswith("}v"):
                v = ch.text
        return _value_text(v, shared, t)
    return None  # numbers, booleans, errors, dates: no words


def _value_text(v: str | None, shared: list[str], t: str) -> str | None:
    """The text of a `s` or `str` cell whose (last) `v` holds `v`."""
    if v is None:
        return None
    if t == "str":
        return v
    try:
        return shared[int(v)]
    except (ValueError, IndexError):
        return None


def _cell_text_quick(c: etree._Element, shared: list[str], t: str) -> str | None:
    """`_cell_text`, in fewer lxml calls (~0.3 µs each) for the cells workbooks are made of: one
    `is` holding one `t`, or one `v` (1.9 -> 1.2 µs an inline string cell); a cell of any other
    shape is read by `_cell_text` itself."""
    if len(c) == 1:
        ch = c[0]
        if t == "inlineStr":
            if ch.tag in _S_IS and len(ch) == 1:
                g = ch[0]
                if g.tag in _S_T:
                    return g.text or ""  # `_rich_text` of one `t`
        elif ch.tag in _S_V:
            return _value_text(ch.text, shared, t)
    return _cell_text(c, shared, t)


class _SharedReads:
    """What the cells of a workbook cost by reading its shared strings. A string is stored once
    and read for every cell naming it (a 1 MB string named by 40,000 cells, 4.5 KB zipped, was
    40 GB of text: 9 s to strip). As ole's `_Reads`: readings within the shared-string part's
    own inflated size (charged when it was inflated) are that part; only what goes beyond is
    charged to the decompression budget. Each string read once costs nothing more (a character
    of it took at least a byte of the part), where charging every reading counted a workbook's
    strings twice."""

    __slots__ = ("budget", "free")

    def __init__(self, budget: Budget, free: int) -> None:
        self.budget = budget
        #: Characters still to be read within the part's own size.
        self.free = free

    def take(self, n: int) -> bool:
        """Account for a reading of `n` characters; False when the file exceeds its budget."""
        free = self.free
        if n <= free:
            self.free = free - n
            return True
        self.free = 0
        return self.budget.take(n - free)


def _shared_bomb(ctx: Context, part: str) -> ScanError:
    return ScanError(ErrorCode.BOMB, f"{part}: cells name shared strings beyond the file's decompression "
                     f"budget ({ctx.limits.max_total_size} bytes)", ctx.sub(part))


def _cell_item(el: etree._Element, text: str | None, t: str, i: int, where: str, reads: _SharedReads,
               ctx: Context, part: str) -> Segment | ScanError | None:
    """The segment of the `i`th text cell `el` of a sheet, which reads `text` (None when it shows
    nothing), or the `bomb` error when its reading of a shared string spends the file's budget: a
    shared string is stored once but read for every cell naming it, and what the readings add up
    to beyond the part's own size is charged like decompressed data (see `_SharedReads`)."""
    if not text:
        return None
    if t == "s" and not reads.take(len(text)):
        return _shared_bomb(ctx, part)
    text = text.strip()
    if not text:
        return None
    return make_segment(text, where + (el.get("r") or f"#{i}"), "cell", True, i)


def _sheet_streamed(data: bytes, ctx: Context, sheet_name: str, part: str, shared: list[str],
                    reads: _SharedReads) -> Generator[ExtractItem, None, bool]:
    """Cells and headers/footers of worksheet part `data`, streamed (bounded memory: any part,
    however large or damaged). Returns False when shared strings spent the file's budget."""
    i = 0
    where = ctx.sub(f"{sheet_name}!") or ""  # + the cell reference: `ctx.sub(f"{sheet}!{ref}")`
    in_row = 0  # cells of the current row not yet freed
    rows = 0  # rows emptied but not yet deleted
    try:
        # `_iter_tag`, inline (a cell is the commonest element of a workbook: one generator
        # step and one string split less per cell; number cells never reach `_cell_text`).
        ctxp = etree.iterparse(io.BytesIO(data), events=("end",), tag=_XL_STREAMED, **_ITERPARSE)
        for _, el in ctxp:
            kind = _XL_KIND[el.tag]
            if kind == "c":
                t = el.get("t")
                if t in _XL_TEXT_TYPES:
                    item = _cell_item(el, _cell_text(el, shared, t), t, i, where, reads, ctx, part)
                    if item is not None:
                        yield item
                        if type(item) is ScanError:
                            return False
                        i += 1
                # A cell in a row is read by nothing after its end event: freeing it (the
                # commonest step of a workbook, issue 17) is put off to the row's end, or to
                # every `_FREE_EVERY`th cell of a long row, which leaves the same tree to
                # every later read. Cells anywhere else (a hostile nesting) are freed at once.
                parent = el.getparent()
                if parent is not None and parent.tag in _XL_ROW:
                    in_row += 1
                    if in_row < _FREE_EVERY:
                        continue
                in_row = 0  # (freed below, with every cell before it)
            elif kind == "row":
                in_row = 0
                parent = el.getparent()
                if parent is not None and parent.tag in _XL_SHEET_DATA:
                    # Rows of the sheet's data: emptied now, their shells deleted now and then.
                    el.clear(keep_tail=False)
                    rows += 1
                    if rows < _FREE_EVERY:
                        continue
                    rows = 0
            elif el.text:
                yield from _header_footer(el, kind, ctx, sheet_name)
            _free(el)
    except etree.XMLSyntaxError as exc:
        yield ScanError(ErrorCode.CORRUPT, f"{part}: {exc}"[:300], ctx.sub(part))
    return True


def _sheet_whole(blocks: list[tuple[bool, list[etree._Element]]], ctx: Context, sheet_name: str, part: str,
                 shared: list[str], reads: _SharedReads) -> Generator[ExtractItem, None, bool]:
    """`_sheet_streamed` of a worksheet part that `_sheet_blocks` read whole: the same items, from
    a tree where every cell stands in a row of the sheet data (so nothing freed by the streamed
    read could have changed a later read, and end order is document order)."""
    i = 0
    where = ctx.sub(f"{sheet_name}!") or ""
    for in_data, els in blocks:
        if not in_data:  # the header/footer element's children
            for el in els:
                if el.text:
                    yield from _header_footer(el, _XL_KIND[el.tag], ctx, sheet_name)
            continue
        for el in els:
            t = el.get("t")
            if t in _XL_TEXT_TYPES:
                item = _cell_item(el, _cell_text_quick(el, shared, t), t, i, where, reads, ctx, part)
                if item is not None:
                    yield item
                    if type(item) is ScanError:
                        return False
                    i += 1
    return True


def _header_footer(el: etree._Element, kind: str, ctx: Context, sheet_name: str) -> Iterator[Segment]:
    role = "header" if "Header" in kind else "footer"
    for k, text in enumerate(split_header_footer(el.text)):
        yield Segment(text, ctx.sub(f"{sheet_name}!{role}"), role, True, k)


#: Worksheet and shared-string parts of up to `_WHOLE_MAX` bytes and `_WHOLE_TAGS` tags (`<`
#: counted) are parsed whole (`_parse_whole`); others are streamed, in bounded memory. What a
#: whole parse grew the process by: 4 MB of number cells (580,000 tags) 109 MB, 1 MB of them
#: (150,000) 27 MB, 150,000 empty cells (`<c/>`) 44 MB, 3.9 MB of text cells (91,000) 16 MB.
#: Tags are counted only in a part that could hold more (`<a/>` is 4 bytes): 0.1 ms saved a
#: 350 KB sheet.
_WHOLE_MAX = 4 << 20
_WHOLE_TAGS = 150_000
_WHOLE_COUNTED = 4 * _WHOLE_TAGS


def _parse_whole(data: bytes) -> etree._Element | None:
    """Part `data` parsed in one go, by the parser `iterparse` feeds (a push parser with the
    same options, given the whole part): what it accepts, the streamed read accepts too. None
    for a part over `_WHOLE_MAX` bytes or `_WHOLE_TAGS` tags, or one that does not parse (the
    streamed read reports where).

    Why: `iterparse` cost a 460 KB sheet 7.4 ms where this parse takes 4.3 ms (each event is a
    Python object, and freeing every row and cell was more lxml calls)."""
    if len(data) > _WHOLE_MAX or (len(data) > _WHOLE_COUNTED and data.count(b"<") > _WHOLE_TAGS):
        return None
    parser = etree.XMLParser(**_ITERPARSE)
    try:
        parser.feed(data)
        return parser.close()  # type: ignore[no-any-return]
    except etree.LxmlError:
        return None


def _count(root: etree._Element, tags: tuple[str, ...]) -> int:
    return sum(1 for _ in root.iter(tags))


def _sheet_blocks(data: bytes) -> list[tuple[bool, list[etree._Element]]] | None:
    """What `_sheet_streamed` would visit in worksheet part `data`, from a whole parse: per child
    of the root that is sheet data (True) or the header/footer element (False), in document
    order, its cells (of its rows) or its header/footer elements. None for the streamed read to
    take over: a part `_parse_whole` does not read, or one with a cell, row or header/footer
    element anywhere else (a cell in a cell, a row under the root).

    That check (one `iter` over those tags, 0.5 ms of a 460 KB sheet) is what makes the two
    reads the same: with every element where the schema puts it, none is inside another, so
    end order is document order, and nothing the streamed read frees is read after."""
    root = _parse_whole(data)
    if root is None:
        return None
    out: list[tuple[bool, list[etree._Element]]] = []
    found = 0
    for top in root:
        tag = top.tag
        if tag in _XL_SHEET_DATA:
            els: list[etree._Element] = []
            for row in top:
                if row.tag in _XL_ROW:
                    found += 1
                    els += [c for c in row if c.tag in _XL_CELL]
            out.append((True, els))
        elif tag in _XL_HEADER_FOOTER:
            els = [el for el in top if el.tag in _XL_HF]
            out.append((False, els))
        else:
            continue
        found += len(els)
    return out if found == _count(root, _XL_STREAMED) else None


def _shared_whole(data: bytes) -> list[str] | None:
    """The shared strings of part `data` from a whole parse, when every `si` is a child of the
    root (see `_sheet_blocks`); None for the streamed read to take over."""
    root = _parse_whole(data)
    if root is None:
        return None
    sis = [si for si in root if si.tag in _XL_SI_SET]
    return [_rich_text(si) for si in sis] if len(sis) == _count(root, _XL_SI) else None


# --------------------------------------------------------------------------------------------
# PowerPoint
# --------------------------------------------------------------------------------------------

_PH_ROLE = {"title": "title", "ctrTitle": "title", "ftr": "footer", "hdr": "header",
            "sldNum": None, "dt": None, "sldImg": None}


def _shape_role_factory(default: str) -> Callable[[etree._Element], str | None]:
    def role(sp: etree._Element) -> str | None:
        for ph in sp.iter(f"{{{P}}}ph", f"{{{P_STRICT}}}ph"):
            typ = ph.get("type") or "body"
            return _PH_ROLE.get(typ, default)
        return default
    return role


_PPT_SHAPES = frozenset(_both(P, P_STRICT, "sp"))
_PPT_ACTS = _acts(_DML_ACTS + [(_both(P, P_STRICT, "nvSpPr", "spPr", "style", "txStyles", "clrMap",
                                        "sldLayoutIdLst", "timing", "transition", "extLst"), SKIP)])
SLIDE_WALKER = Walker(_PPT_ACTS, _shape_role_factory("body"), _PPT_SHAPES)
NOTES_WALKER = Walker(_PPT_ACTS, _shape_role_factory("note"), _PPT_SHAPES)


def _master_role(sp: etree._Element) -> str | None:
    # On masters and layouts, placeholders hold prompt text ("单击此处编辑母版标题样式"); only
    # footer/header placeholders and free shapes (a banner drawn on every slide) are content.
    for ph in sp.iter(f"{{{P}}}ph", f"{{{P_STRICT}}}ph"):
        typ = ph.get("type")
        return {"ftr": "footer", "hdr": "header"}.get(typ or "", None)
    return "body"


MASTER_WALKER = Walker(_PPT_ACTS, _master_role, _PPT_SHAPES)


def _powerpoint(z: SafeZip, ctx: Context, main: str) -> Iterator[ExtractItem]:
    pres, errs = z.xml(main)
    yield from errs
    rels = z.rels(main)
    slides: list[str] = []
    if pres is not None:
        listed: dict[str, None] = {}  # each slide part once, as worksheets
        for sid in pres.iter(f"{{{P}}}sldId", f"{{{P_STRICT}}}sldId"):
            rid = next((v for k, v in sid.attrib.items() if k.endswith("}id")), None)
            if rid and rid in rels and z.find(rels[rid][1]):
                listed.setdefault(rels[rid][1], None)
        slides = list(listed)
    folder = main.rpartition("/")[0]
    if not slides:
        slides = sorted((n for n in z.names if re.match(rf"{re.escape(folder)}/slides/[^/]+\.xml$", n)),
                        key=_natural)
    layouts: dict[str, None] = {}  # the layouts the slides use, in order (then the masters)
    for num, part in enumerate(slides, 1):
        r, errs = z.xml(part)
        yield from errs
        if r is not None:
            yield from _emit_paras(SLIDE_WALKER.paragraphs(r, "body"), ctx.sub(f"slide{num}"))
        # Each related part once, however many relationships name it (100,000 naming one notes
        # part were as many reads of it).
        for (typ, target) in dict.fromkeys(z.rels(part).values()):
            if typ.endswith("/notesSlide") and z.find(target):
                nr, errs = z.xml(target)
                yield from errs
                if nr is not None:
                    yield from _emit_paras(NOTES_WALKER.paragraphs(nr, "note"), ctx.sub(f"slide{num} notes"))
            elif typ.endswith("/slideLayout") and z.find(target):
                layouts.setdefault(z.find(target) or target, None)
            elif typ.endswith("/comments") and z.find(target):
                # Legacy comments (`p:cm/p:text`) and PowerPoint 365 modern comments
                # (`p188:cm/p188:txBody/a:p`, a relationship type that also ends in /comments).
                cr, errs = z.xml(target)
                yield from errs
                if cr is not None:
                    k = 0
                    for t in cr.iter(f"{{{P}}}text", f"{{{P_STRICT}}}text"):
                        if t.text and t.text.strip():
                            yield Segment(t.text.strip(), ctx.sub(f"slide{num} comments"), "comment", True, k)
                            k += 1
                    for _, _, text in _indexed(DML_WALKER.paragraphs(cr, "comment")):
                        yield Segment(text, ctx.sub(f"slide{num} comments"), "comment", True, k)
                        k += 1
    # Masters: text drawn there stands on every slide. Of the layouts, only those a slide uses
    # (most layouts of a template are never shown); on both, placeholders hold prompt text and
    # only free shapes and footer/header placeholders are read. (The masters are picked out of
    # the names, then sorted: sorting every name of a 50-slide deck by `_natural` first was
    # 0.3 ms a file; a stable sort of the picked names gives them in the same order.)
    master = re.compile(rf"{re.escape(folder)}/slideMasters/[^/]+\.xml$")
    for name in sorted((n for n in z.names if master.match(n)), key=_natural):
        layouts[name] = None
    for name in layouts:
        r, errs = z.xml(name)
        yield from errs
        if r is not None:
            yield from _emit_paras(MASTER_WALKER.paragraphs(r, "body"), ctx.sub(name))
    yield from _diagrams(z, ctx, f"{folder}/")


# --------------------------------------------------------------------------------------------
# The extractor
# --------------------------------------------------------------------------------------------

_MAIN_HINTS = ("word/document.xml", "xl/workbook.xml", "ppt/presentation.xml")
_OFFICE_DOC_REL = "/officeDocument"


def _main_part(z: SafeZip) -> str | None:
    for _rid, (typ, target) in z.rels("").items() if z.find("_rels/.rels") else []:
        if typ.endswith(_OFFICE_DOC_REL) and z.find(target):
            return z.find(target)
    for hint in _MAIN_HINTS:
        if z.find(hint):
            return z.find(hint)
    return None


class OoxmlExtractor(Extractor):
    """Word, Excel and PowerPoint 2007+ documents (and their macro-enabled variants)."""

    name = "ooxml"
    mimetypes = (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.template",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.openxmlformats-officedocument.presentationml.slideshow",
        "application/vnd.openxmlformats-officedocument.presentationml.template",
        "application/vnd.ms-word.document.macroEnabled.12",
        "application/vnd.ms-word.template.macroEnabled.12",
        "application/vnd.ms-excel.sheet.macroEnabled.12",
        "application/vnd.ms-excel.template.macroEnabled.12",
        "application/vnd.ms-powerpoint.presentation.macroEnabled.12",
        "application/vnd.ms-powerpoint.slideshow.macroEnabled.12",
        "application/vnd.ms-excel.addin.macroEnabled.12",
    )
    priority = 50

    @classmethod
    def sniff(cls, data: bytes, mime: str) -> bool:
        if super().sniff(data, mime):
            return True
        if mime.startswith("application/vnd.openxmlformats-officedocument."):
            return True
        if not data.startswith(b"PK"):
            return False
        names = zip_names(data)
        if not names:
            return False
        low = {n.lower() for n in names}
        return "[content_types].xml" in low and any(h in low for h in _MAIN_HINTS)

    def extract(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        z = yield from SafeZip.package(data, ctx)
        if z is None:
            return
        try:
            yield from self._extract(z, ctx)
        except XmlTrouble as exc:
            yield exc.error

    def _extract(self, z: SafeZip, ctx: Context) -> Iterator[ExtractItem]:
        main = _main_part(z)
        chars = 0
        if main is None:
            yield ScanError(ErrorCode.CORRUPT, "OOXML package without a main document part", ctx.member)
        else:
            top = main.split("/")[0].lower()
            if top == "xl" or main.lower().endswith("workbook.xml"):
                content = _excel(z, ctx, main)
            elif top == "ppt" or main.lower().endswith("presentation.xml"):
                content = _powerpoint(z, ctx, main)
            else:
                content = _word(z, ctx, main)
            items = iter(content)
            for item in items:
                if isinstance(item, Segment):
                    chars += len(item.text)
                    if chars >= _SCAN_TEXT_FLOOR:
                        # Enough text to be no scanned page: the rest is handed on uncounted.
                        yield item
                        yield from items
                        break
                yield item
        yield from _properties(z, ctx)
        yield from _embedded(z, ctx)
        if chars < _SCAN_TEXT_FLOOR:
            yield from _page_images(z, ctx)


_SCAN_TEXT_FLOOR = 20  # fewer characters than this: a scan wrapped in a document
_MAX_IMAGES = 200
_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")


def _page_images(z: SafeZip, ctx: Context) -> Iterator[ExtractItem]:
    """A document with (almost) no text is a scanned page pasted into Word/PowerPoint/Excel:
    its pictures go to the engine as members, which reads them by OCR."""
    sent = 0
    for name in sorted(z.names, key=_natural):
        low = name.lower()
        if "/media/" in low and low.endswith(_IMAGE_EXT) and sent < _MAX_IMAGES:
            data = z.read(name)
            if isinstance(data, ScanError):
                yield data
            elif data:
                sent += 1
                yield Member(name, data)


def _embedded(z: SafeZip, ctx: Context) -> Iterator[ExtractItem]:
    """Embedded objects and imported chunks (altChunk): scanned recursively by the engine."""
    for name in z.names:
        low = name.lower()
        if "/embeddings/" in low or "afchunk" in low:
            if name.endswith("/"):
                continue
            if not (yield from zip_member(z, ctx, name)):
                return


def zip_member(z: SafeZip, ctx: Context, name: str) -> Generator[ExtractItem, None, bool]:
    """Hand part `name` to the engine as a member, within the scan's member budget (a `bomb`
    error and False once it is spent: the caller stops handing out members)."""
    if not ctx.budget.take_member():
        yield ScanError(ErrorCode.BOMB, "too many members", ctx.sub(name))
        return False
    data = z.read(name)
    if isinstance(data, ScanError):
        yield data
    elif data:
        yield Member(name, data)
    return True
