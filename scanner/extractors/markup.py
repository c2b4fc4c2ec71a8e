"""HTML, XHTML and XML: the text a reader sees, one segment per block.

Character references and named entities are decoded by the parser; inline elements are joined
(`机<span>密</span>★5年` is one line) and block elements break lines; `<title>` and
`<meta name=… content=…>` become title/property segments; script and style are never text.
The charset comes from the BOM, `<meta charset>`/`http-equiv`, or the XML declaration (GB2312/GBK
read as their superset GB18030), else from `scanner.decode` (the project's one decoder).

XML is parsed by the hardened parser of `ooxml.parse_xml`: no DTD, no network, and entities are
never expanded (a document declaring them is read without them and reported). Generic XML has no
notion of inline elements, so an element with mixed content (text beside child elements) is one
segment with its children joined, and an element holding only elements is a container.
"""
from __future__ import annotations

import codecs
import html as html_lib
import re
import threading
from collections.abc import Iterator

from lxml import etree

from scanner.decode import decode
from scanner.extractors.base import Context, Extractor
from scanner.extractors.ooxml import parse_xml
from scanner.model import ErrorCode, ExtractItem, ScanError, Segment

_BLOCK = frozenset(
    ["address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details", "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "html", "legend", "li", "main", "menu", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul", "option", "select", "textarea", "iframe", "frame", "noframes", "address", "marquee"]
)
_SKIP = frozenset(["script", "style", "template", "head", "object", "embed", "applet"])
_ROLE = {"td": "cell", "th": "cell", "header": "header", "footer": "footer", "caption": "cell"}
_WS = re.compile(r"[ \t\r\n\f\v]+")

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_XML_DECL_ANY = re.compile(r"^\s*<\?xml[^>]*\?>")
# Leading comments matched possessively (`*+`): each ends at its first `-->`. Backtracking into
# them made a head of k comments not followed by an HTML tag cost 2**k steps (22 comments: 1 s;
# an XML file opening with 30 licence comments never finished).
_SNIFF_HTML = re.compile(rb"^\s*(?:<!--.*?-->\s*)*+<(?:!doctype\s+html|html|head|body|meta|title)\b",
                         re.IGNORECASE | re.DOTALL)
_SNIFF_XML = re.compile(rb"^\s*<\?xml\s")

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
            "gb_2312-80": "gb18030", "big5": "big5hkscs", "x-big5": "big5hkscs"}

_tls = threading.local()


_XHTML_HEAD = re.compile(rb"<!DOCTYPE\s+html|<html[\s>]|http://www\.w3\.org/1999/xhtml", re.I)


def _looks_xhtml(root: etree._Element | None, data: bytes) -> bool:
    if root is not None and _local(root.tag) == "html":
        return True
    return bool(_XHTML_HEAD.search(_as_ascii_view(data)[:4096]))


def _html_parsers() -> tuple[etree.HTMLParser, etree.HTMLParser]:
    # libxml2's HTML parser as lxml.etree gives it, not `lxml.html`'s subclass: that one looks up
    # a Python element class for every element the walk touches (~1 µs each; a quarter of the
    # HTML reader's time on /usr/share/doc's pages, issue 17), and no `HtmlElement` method is used.
    p = getattr(_tls, "html", None)
    if p is None:
        kw = {"remove_comments": True, "remove_pis": True, "no_network": True, "default_doctype": False}
        p = (etree.HTMLParser(**kw), etree.HTMLParser(huge_tree=True, **kw))
        _tls.html = p
    return p


_BLOCK_OPEN = re.compile(r"<(?:script|style)\b|(<!--)", re.IGNORECASE)
_BLOCK_CLOSE = (re.compile(r"</(?:script|style)\s*>", re.IGNORECASE), re.compile("-->"))
_TAG_BREAK = re.compile(r"<\s*/?\s*(?:" + "|".join(sorted(_BLOCK | {"br"})) + r")\b[^>]*>", re.IGNORECASE)
_TAG_ANY = re.compile(r"<[^>]*>")


def _drop_blocks(text: str) -> str:
    """`text` without its script/style elements and comments. A scan, not one lazy regex: with
    that, every unclosed `<script` (`<!--`) searched to the end of the text again (quadratic:
    30,000 of them in a 1 MB page were minutes). One that is never closed is left as text, and
    so is every later opener of its kind (no closer follows it either)."""
    out: list[str] = []
    pos = 0
    dead = [False, False]  # no closer after the last failed search: script/style, comment
    for m in _BLOCK_OPEN.finditer(text):
        kind = 1 if m.group(1) else 0
        if m.start() < pos or dead[kind]:
            continue
        close = _BLOCK_CLOSE[kind].search(text, m.end())
        if close is None:
            dead[kind] = True
            continue
        out.append(text[pos:m.start()])
        pos = close.end()
    out.append(text[pos:])
    return "".join(out)


def _sub_tags(rx: re.Pattern[str], repl: str, text: str) -> str:
    """`rx.sub(repl, text)` for a tag pattern ending with `>`: none matches past the last `>`,
    and searching there from every `<` was quadratic (a page of `<` with no `>` after them)."""
    end = text.rfind(">") + 1
    return rx.sub(repl, text[:end]) + text[end:]


def _strip_tags(text: str) -> Iterator[str]:
    """Lines of an HTML text without its tags (last resort for pages no parser can build)."""
    text = _drop_blocks(text)
    text = _sub_tags(_TAG_BREAK, "\n", text)
    text = html_lib.unescape(_sub_tags(_TAG_ANY, "", text))
    for line in text.split("\n"):
        line = _WS.sub(" ", line).strip()
        if line:
            yield line


def _norm_codec(name: str) -> str | None:
    name = name.strip().lower()
    name = _ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _bom(data: bytes) -> tuple[str | None, int]:
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return enc, len(bom)
    return None, 0


def _as_ascii_view(data: bytes) -> bytes:
    """The first bytes with NULs removed, so UTF-16 without BOM still shows its declarations."""
    head = data[:4096]
    return head.replace(b"\x00", b"") if head.count(b"\x00") > len(head) // 4 else head


def decode_markup(data: bytes) -> tuple[str, str]:
    """Decode an HTML/XML document: (text, codec used). A BOM or a declared charset wins (a
    declared UTF-8 that does not decode is ignored, as browsers do); otherwise the project's
    one decoder guesses."""
    enc, skip = _bom(data)
    if enc:
        return data[skip:].decode(enc, "replace"), enc
    head = data[:4096]
    if head.count(b"\x00") <= len(head) // 4:
        for rx in (_XML_DECL, _META_CHARSET):
            m = rx.search(head)
            if not m:
                continue
            declared = _norm_codec(m.group(1).decode("ascii", "replace"))
            if declared == "utf-8":
                try:
                    return data.decode("utf-8"), "utf-8"
                except UnicodeDecodeError:
                    break
            if declared and not declared.startswith(("utf-16", "utf-32")):
                return data.decode(declared, "replace"), declared
            break
    return decode(data)


def _local(tag: object) -> str:
    try:
        return _LOCAL[tag]
    except KeyError:
        local = tag.rpartition("}")[2].lower() if isinstance(tag, str) else ""
        if len(_LOCAL) < 4096:  # bounded: a hostile file may invent any number of tag names
            _LOCAL[tag] = local
        return local


#: Local names of the tags seen (a page has a few dozen, read at every element's two events).
_LOCAL: dict[object, str] = {}


def html_blocks(root: etree._Element) -> Iterator[tuple[str, str]]:
    """(role, text) of each block of an HTML tree, inline elements joined, in document order."""
    buf: list[str] = []
    roles: list[str] = ["body"]
    skipping = 0
    pre = 0  # inside <pre>: line breaks are the text's own (a published cable's lines)

    def flush() -> Iterator[tuple[str, str]]:
        if buf:
            raw = "".join(buf)
            if pre:
                text = "\n".join(ln.rstrip() for ln in raw.replace("\r\n", "\n").split("\n")).strip("\n")
            else:
                text = _WS.sub(" ", raw).strip()
            buf.clear()
            if text:
                yield roles[-1], text

    for event, el in etree.iterwalk(root, events=("start", "end")):
        tag = _local(el.tag)
        if event == "start":
            if skipping or tag in _SKIP:
                skipping += 1
                continue
            if tag in _BLOCK or tag == "br":
                yield from flush()
                if tag in _BLOCK:
                    roles.append(_ROLE.get(tag, roles[-1]))
                if tag == "pre":
                    pre += 1
            if el.text and tag not in ("br",):
                buf.append(el.text)
        else:
            if skipping:
                skipping -= 1
                if skipping == 0 and tag in _SKIP and el.tail:
                    buf.append(el.tail)
                continue
            if tag in _BLOCK:
                yield from flush()
                if len(roles) > 1:
                    roles.pop()
                if tag == "pre" and pre:
                    pre -= 1
            if el.tail and el is not root:
                buf.append(el.tail)
    yield from flush()


def _head(root: etree._Element, ctx: Context) -> Iterator[Segment]:
    i = 0
    for el in root.iter():
        tag = _local(el.tag)
        if tag == "title":
            text = _WS.sub(" ", "".join(el.itertext())).strip()
            if text:
                yield Segment(text, ctx.member, "title", True, i, "title")
                i += 1
        elif tag == "meta":
            key = el.get("name") or el.get("property") or el.get("itemprop") or el.get("http-equiv")
            content = (el.get("content") or "").strip()
            if key and content and key.lower() not in ("viewport", "content-type", "charset"):
                yield Segment(content, ctx.member, "property", True, i, key)
                i += 1


_NAME_ATTRS = ("name", "key", "Name")
#: Paragraph elements of document vocabularies (WordprocessingML 2003/2006 and Flat OPC, ODF,
#: DrawingML, XHTML-like schemas): their runs are joined even when the paragraph itself holds no
#: text of its own.
_PARA_LOCAL = frozenset({"p", "h"})
_NOT_TEXT = ("{*}instrText", "{*}delText", "{*}delInstrText", "{*}note-citation", "{*}tracked-changes")


def xml_segments(root: etree._Element, ctx: Context) -> Iterator[Segment]:
    """Generic XML: each element with text of its own (mixed content joined) is one segment, and
    so is each paragraph element (`w:p`, `text:p`, `a:p`: runs joined); attribute values with
    non-ASCII text are properties keyed by the attribute (or by the element's `name`/`key`
    attribute, as in `<field name="密级" value="机密"/>`)."""
    i = 0
    p = 0
    walker = etree.iterwalk(root, events=("start",))
    for _event, el in walker:
        if not isinstance(el.tag, str):
            continue
        name_attr = next((el.get(a) for a in _NAME_ATTRS if el.get(a)), None)
        for k, v in el.attrib.items():
            if v and not v.isascii() and k not in _NAME_ATTRS:
                key = name_attr or _local(k)
                yield Segment(v.strip(), ctx.member, "property", True, p, key)
                p += 1
        local = _local(el.tag)
        is_para = local in _PARA_LOCAL and len(el) > 0
        own = (el.text or "").strip() or any((c.tail or "").strip() for c in el)
        if is_para or own:
            if is_para:
                etree.strip_elements(el, *_NOT_TEXT, with_tail=False)
            text = _WS.sub(" ", "".join(el.itertext())).strip()
            if text:
                yield Segment(text, ctx.member, "body", True, i, local or None)
                i += 1
            walker.skip_subtree()


class MarkupExtractor(Extractor):
    """HTML/XHTML pages and XML documents."""

    name = "markup"
    mimetypes = ("text/html", "application/xhtml+xml", "text/xml", "application/xml", "image/svg+xml")
    priority = 20

    @classmethod
    def sniff(cls, data: bytes, mime: str) -> bool:
        if super().sniff(data, mime):
            return True
        if mime.startswith("text/") or mime == "application/octet-stream":
            head = _as_ascii_view(data)
            enc, skip = _bom(head)
            head = head[skip:] if enc == "utf-8" else head
            return bool(_SNIFF_XML.match(head) or _SNIFF_HTML.match(head))
        return False

    def extract(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        head = _as_ascii_view(data)
        enc, skip = _bom(head)
        view = head[skip:] if enc == "utf-8" else head
        is_xml = bool(_SNIFF_XML.match(view)) or ctx.mime in ("text/xml", "application/xml", "image/svg+xml")
        if is_xml and not _SNIFF_HTML.match(view):
            yield from self._xml(data, ctx)
        else:
            yield from self._html(data, ctx)

    def _html(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        text, _enc = decode_markup(data)
        text = _XML_DECL_ANY.sub("", text, count=1)
        if not text.strip():
            return
        root = None
        for parser in _html_parsers():
            try:
                root = etree.fromstring(text, parser)
                if root is None:  # as `lxml.html.document_fromstring` says it
                    raise etree.ParserError("Document is empty")
            except (etree.ParserError, etree.XMLSyntaxError, ValueError) as exc:
                yield ScanError(ErrorCode.CORRUPT, f"unreadable HTML: {exc}"[:300], ctx.member)
                return
            # Unclosed inline tags (old pages: hundreds of <font>) nest deeper than libxml2's
            # default limit, which silently drops the rest: retry without it (no entities in
            # HTML, and the walk below is iterative), and fall back to stripping tags.
            if not any(e.type_name == "ERR_RESOURCE_LIMIT" for e in parser.error_log):
                break
            root = None
        if root is None:
            yield ScanError(ErrorCode.CORRUPT, "HTML nested too deep for the parser; read as plain text",
                            ctx.member)
            for i, line in enumerate(_strip_tags(text)):
                yield Segment(line, ctx.member, "body", True, i)
            return
        yield from _head(root, ctx)
        body = root.find("body")
        for i, (role, block) in enumerate(html_blocks(body if body is not None else root)):
            yield Segment(block, ctx.member, role, True, i)

    def _xml(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        root, err = parse_xml(data, ctx.member)
        if root is None or (err is not None and err.error is ErrorCode.CORRUPT):
            # Undeclared or mis-declared encoding, or broken markup: decode ourselves and retry.
            text, _enc = decode_markup(data)
            text = _XML_DECL_ANY.sub("", text, count=1)
            root2, err2 = parse_xml(text.encode("utf-8"), ctx.member)
            if root2 is not None and (err2 is None or root is None):
                root, err = root2, err2
        if err is not None and err.error is ErrorCode.CORRUPT and _looks_xhtml(root, data):
            # XHTML that is not well-formed XML (an unescaped `R&D`, a stray `<br>`): browsers read
            # such pages with their HTML parser, and so does this; it is readable, not corrupt.
            yield from self._html(data, ctx)
            return
        if err is not None:
            yield err
        if root is None:
            # Not even the recovering parser made a tree of it: read it as tag soup, so that a
            # broken file still shows its words (the error above says it is broken).
            yield from self._html(data, ctx)
            return
        if _local(root.tag) == "html":  # XHTML
            yield from _head(root, ctx)
            body = next((el for el in root if _local(el.tag) == "body"), root)
            for i, (role, block) in enumerate(html_blocks(body)):
                yield Segment(block, ctx.member, role, True, i)
            return
        yield from xml_segments(root, ctx)
