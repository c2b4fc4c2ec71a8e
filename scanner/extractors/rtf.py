"""RTF: a small real tokenizer turning the document into located paragraphs.

Chinese RTF (Word, WPS) writes CJK text as code-page bytes `\\'bb\\'fa` in the document's
`\\ansicpg` (936 → GBK, read as GB18030) or in the code page of the current font (`\\fcharset134`
GBK, 136 Big5 …), and/or as `\\uN` with `\\ucN` fallback characters that must be skipped. Consecutive
byte escapes are decoded together (a GBK character is two of them). Destinations that are not text
(font/colour/style tables, pictures, objects, field instructions, bookmarks, unknown `\\*\\…`
groups) are skipped; headers/footers, footnotes, annotations and text boxes (`\\shptxt`) become
their own streams with their roles; `\\info` and `\\userprops` give property segments. Text under
a tracked deletion (`\\deleted`) is left out, as Word's w:del is.

No maintained RTF→text library on PyPI handles cp936 byte escapes with per-font code pages
(striprtf decodes `\\'xx` one byte at a time), hence this reader.
"""
from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from scanner.extractors.base import Context, Extractor
from scanner.model import ErrorCode, ExtractItem, Member, ScanError, Segment

_TOKEN = re.compile(
    rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?"  # control word with optional parameter
    rb"|((?:\\'[0-9a-fA-F]{2})+)"  # a run of hex bytes (a GBK character is two)
    rb"|\\([^a-zA-Z'])"  # control symbol
    rb"|([{}])"
    rb"|([^\\{}\r\n]+)"  # text run
    rb"|[\r\n]+"
    rb"|\\'|\\",  # dangling escape at the end of input
    re.DOTALL,
)

_CHARSET_CP = {0: None, 1: None, 2: "latin-1", 77: "mac_roman", 128: "cp932", 129: "cp949", 130: "johab",
               134: "gb18030", 136: "big5hkscs", 161: "cp1253", 162: "cp1254", 163: "cp1258",
               177: "cp1255", 178: "cp1256", 186: "cp1257", 204: "cp1251", 222: "cp874", 238: "cp1250"}
_CPG = {936: "gb18030", 950: "big5hkscs", 932: "cp932", 949: "cp949", 54936: "gb18030", 65001: "utf-8",
        10000: "mac_roman", 437: "cp437", 850: "cp850"}

_SKIP_DEST = frozenset({
    "fonttbl", "colortbl", "stylesheet", "listtable", "listoverridetable", "revtbl", "rsidtbl", "pict",
    "themedata", "colorschememapping", "datastore", "latentstyles", "xmlnstbl", "generator", "filetbl",
    "pgdsctbl", "bkmkstart", "bkmkend", "fldinst", "objdata", "datafield", "mmathPr", "panose", "falt",
    "wgrffmtfilter", "pntext", "pntxta", "pntxtb", "listtext", "sp", "nonshppict", "template", "xmlopen",
    "xmlattrname", "xmlattrvalue", "fchars", "lchars", "blipuid", "passwordhash", "docvar", "tc",
    "atnid", "atnauthor", "atntime", "atnref", "atndate", "atnicn", "atrfstart", "atrfend", "formfield",
    "ffname", "ffdeftext", "ffformat", "ffhelptext", "ffstattext", "ffentrymcr", "ffexitmcr",
    "shpgrp", "background", "defchp", "defpap", "protusertbl", "rsid", "mhtmltag", "htmltag",
    "pn", "nesttableprops", "shprslt", "author", "operator", "company", "manager", "hlinkbase", "creatim", "revtim", "printim",
    "buptim", "version", "vern", "edmins", "nofpages", "nofwords", "nofchars", "nofcharsws", "id",
    "comment", "linkval", "propname", "staticval",
})
_STREAM_DEST = {"header": "header", "headerl": "header", "headerr": "header", "headerf": "header",
                "footer": "footer", "footerl": "footer", "footerr": "footer", "footerf": "footer",
                "footnote": "note", "annotation": "comment", "shptxt": "textbox", "dptxbxtext": "textbox"}
_INFO_KEYS = {"title": "title", "subject": "subject", "keywords": "keywords", "doccomm": "description",
              "category": "category"}
_SYMBOLS = {"emdash": "—", "endash": "–", "bullet": "•", "lquote": "‘", "rquote": "’", "ldblquote": "“",
            "rdblquote": "”", "emspace": "\u2003", "enspace": "\u2002", "qmspace": "\u2005", "tab": "\t",
            "line": "\n", "zwj": "", "zwnj": "", "ltrmark": "", "rtlmark": "", "zwbo": "", "zwnbo": ""}
_CTRL_SYMBOLS = {b"~": "\u00a0", b"_": "-", b"-": "", b"\\": "\\", b"{": "{", b"}": "}", b"|": "", b":": ""}
_MAX_DEPTH = 2000
_SURROGATE = re.compile("[\ud800-\udfff]")
_PASS_DEST = frozenset({"fldrslt", "field", "shp", "shpinst", "do", "ud"})


@dataclass
class _Stream:
    role: str
    member: str | None
    buf: list[str] = field(default_factory=list)
    index: int = 0
    cell: bool = False


@dataclass
class _State:
    stream: _Stream
    skip: bool = False
    uc: int = 1
    codec: str = "cp1252"
    dest: str = ""
    capture: list[str] | None = None  # text of \info fields and \userprops names/values
    fresh: bool = True  # no control word seen yet in this group (destination position)
    ignorable: bool = False
    deleted: bool = False  # tracked deletion (`\deleted`): struck-out text a reader does not keep


class _Reader:
    def __init__(self, data: bytes, ctx: Context) -> None:
        self.data = data
        self.ctx = ctx
        self.out: list[ExtractItem] = []
        self.default_codec = "cp1252"
        self.fonts: dict[int, str | None] = {}
        self.default_font: int | None = None
        self.pending = bytearray()
        self.pending_codec = "cp1252"
        self.to_skip = 0
        self.body = _Stream("body", ctx.member)
        self.prop_index = 0
        self.user_name: list[str] = []
        self.user_value: list[str] = []
        self.streams: dict[str, int] = {}
        self.font_entry: int | None = None
        self._state_for_flush: _State | None = None
        self.hidden = 0  # characters of tracked deletions left out
        self.objects = 0  # embedded objects seen
        self.root_deleted = False  # the document group ended inside a deletion

    # -- output -------------------------------------------------------------------------
    def emit_par(self, st: _Stream, page: bool = False) -> None:
        self.flush_bytes(None)
        text = "".join(st.buf)
        st.buf.clear()
        if _SURROGATE.search(text):  # \uN pairs for characters beyond the BMP
            text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        text = text.strip()
        if text:
            role = "cell" if st.cell and st.role == "body" else st.role
            self.out.append(Segment(text, st.member, role, True, st.index))
            st.index += 1
        if page:
            st.index = 0

    def prop(self, key: str, text: str) -> None:
        text = text.strip()
        if text:
            self.out.append(Segment(text, self.ctx.member, "property", True, self.prop_index, key))
            self.prop_index += 1

    # -- text ---------------------------------------------------------------------------
    def flush_bytes(self, state: _State | None) -> None:
        if not self.pending:
            return
        text = bytes(self.pending).decode(self.pending_codec, "replace")
        self.pending.clear()
        self._put(self._state_for_flush, text)

    def _put(self, state: _State | None, text: str) -> None:
        if state is None or state.skip or not text:
            return
        if self.to_skip:
            n = min(self.to_skip, len(text))
            text = text[n:]
            self.to_skip -= n
            if not text:
                return
        if state.deleted:
            self.hidden += len(text)
            return
        if state.capture is not None:
            state.capture.append(text)
        else:
            state.stream.buf.append(text)

    def add_bytes(self, state: _State, raw: bytes) -> None:
        if state.skip:
            return
        if self.to_skip:  # \uN fallback: each byte escape counts as one character
            drop = min(self.to_skip, len(raw))
            raw = raw[drop:]
            self.to_skip -= drop
            if not raw:
                return
        if state.deleted:
            self.hidden += len(raw)
            return
        if self.pending and (self.pending_codec != state.codec or self._state_for_flush is not state):
            self.flush_bytes(None)
        self.pending_codec = state.codec
        self._state_for_flush = state
        self.pending += raw

    def add_text(self, state: _State, text: str) -> None:
        self.flush_bytes(None)
        self._put(state, text)

    # -- main loop ----------------------------------------------------------------------
    def run(self) -> list[ExtractItem]:
        data = self.data
        state = _State(self.body)
        self._state_for_flush = state
        stack: list[_State] = []
        overflow = 0  # unmatched `{` beyond _MAX_DEPTH, read as part of the deepest group
        pos = 0
        n = len(data)
        match = _TOKEN.match
        while pos < n:
            m = match(data, pos)
            if m is None:  # cannot happen with this grammar; stay safe
                pos += 1
                continue
            pos = m.end()
            word, param, hexb, sym, brace, run = m.groups()
            if run is not None:
                if state.skip:
                    continue
                if state.dest == "fonttbl-entry":
                    continue
                if run.isascii():
                    self.add_text(state, run.decode("ascii"))
                else:
                    self.add_bytes(state, run)  # raw 8-bit text in the code page
            elif hexb is not None:
                self.add_bytes(state, binascii.unhexlify(hexb.replace(b"\\'", b"")))
            elif word is not None:
                w = word.decode("ascii")
                if w == "bin":
                    size = int(param) if param and param.lstrip(b"-").isdigit() else 0
                    if size > n - pos:
                        self.out.append(ScanError(ErrorCode.CORRUPT, f"RTF \\bin{size}: {n - pos} bytes left in "
                                                  "the file (truncated?)", self.ctx.member))
                        break
                    pos += max(0, size)
                    continue
                self.control(state, stack, w, int(param) if param is not None else None)
            elif brace is not None:
                if brace == b"{":
                    self.flush_bytes(None)
                    if len(stack) >= _MAX_DEPTH:
                        # Deeper groups are read as part of the deepest one (their text is not
                        # lost); the structure below it is not honoured, hence the error.
                        if not overflow:
                            self.out.append(ScanError(ErrorCode.TOO_DEEP, f"RTF groups nested deeper than "
                                                      f"{_MAX_DEPTH}: read flattened", self.ctx.member))
                        overflow += 1
                        continue
                    stack.append(state)
                    parent = state
                    state = _State(parent.stream, parent.skip, parent.uc, parent.codec, parent.dest, parent.capture)
                    state.deleted = parent.deleted
                    if parent.dest == "upr":
                        state.skip, state.dest = True, "upr-part"
                    self.to_skip = 0
                elif overflow:
                    overflow -= 1
                else:
                    self.flush_bytes(None)
                    self.end_group(state, stack[-1] if stack else None)
                    if len(stack) == 1:  # the document group closes
                        self.root_deleted = self.root_deleted or state.deleted
                    if not stack:
                        break
                    state = stack.pop()
                    self.to_skip = 0
            elif sym is not None:
                if sym == b"*":
                    state.ignorable = True
                    continue
                if state.skip:
                    continue
                if sym in (b"\n", b"\r"):  # an escaped line end is \par
                    self.emit_par(state.stream)
                    continue
                ch = _CTRL_SYMBOLS.get(sym)
                if ch is not None:
                    self.add_text(state, ch)
                state.fresh = False
        self.flush_bytes(None)
        self.emit_par(self.body)
        if stack:  # the file ends inside the document group (stack[0] is the state outside it)
            self.root_deleted = self.root_deleted or (stack[1] if len(stack) >= 2 else state).deleted
        if self.root_deleted and self.hidden:
            # A deletion switched on at the document level and never switched off hides all that
            # follows: said, not silently dropped.
            self.out.append(ScanError(ErrorCode.CORRUPT, f"tracked deletion (\\deleted) never ended: {self.hidden} "
                                      "characters of deleted text not read", self.ctx.member))
        return self.out

    def end_group(self, state: _State, parent: _State | None) -> None:
        if parent is None:
            return
        dest = state.dest
        if dest != parent.dest:
            if dest == "objdata" and state.capture is not None:
                self.embedded_object("".join(state.capture))
            elif dest in _INFO_KEYS and state.capture is not None:
                self.prop(_INFO_KEYS[dest], "".join(state.capture))
            elif dest == "propname" and state.capture is not None:
                self.user_name = state.capture
            elif dest == "staticval" and state.capture is not None:
                self.user_value = state.capture
                if self.user_name:
                    self.prop("".join(self.user_name).strip(), "".join(self.user_value))
                self.user_name, self.user_value = [], []
            elif state.stream is not parent.stream:
                self.emit_par(state.stream)
            elif dest == "fonttbl-entry":
                self.font_entry = None

    def embedded_object(self, hexdata: str) -> None:
        """An `\\objdata` group: the OLE1 object's native data (a Word/Excel object's compound
        file, or a Package's file) becomes a member the engine scans like any other."""
        digits = _NOT_HEX.sub("", hexdata)
        blob = binascii.unhexlify(digits[: len(digits) // 2 * 2])
        try:
            found = _ole1_native(blob)
        except ValueError as exc:
            self.out.append(ScanError(ErrorCode.CORRUPT, f"embedded object: {exc}", self.ctx.member))
            return
        if found is None:
            return
        name, content = found
        self.objects += 1
        if not content:
            return
        if not self.ctx.budget.take_member():
            self.out.append(ScanError(ErrorCode.BOMB, f"more than {self.ctx.limits.max_members} members",
                                      self.ctx.member))
            return
        self.out.append(Member(f"object {self.objects}/{name}", content))

    def control(self, state: _State, stack: list[_State], w: str, param: int | None) -> None:
        fresh = state.fresh
        state.fresh = False
        # ---- destinations (first control word of a group)
        if fresh:
            parent_dest = stack[-1].dest if stack else ""
            if w == "rtf" and not stack[1:]:
                return
            if w in _STREAM_DEST:
                role = _STREAM_DEST[w]
                k = self.streams.get(w, 0)
                self.streams[w] = k + 1
                name = w if role in ("header", "footer") else {"note": "footnotes", "comment": "comments",
                                                               "textbox": "textbox"}[role]
                member = self.ctx.sub(name if k == 0 or role == "textbox" else f"{name} {k + 1}")
                if role == "textbox" and state.stream.role == "body":
                    member = state.stream.member  # a text box stands in the body it is drawn on
                state.stream = _Stream(role, member)
                state.dest = w
                state.skip = bool(stack) and stack[-1].skip
                return
            if w == "info":
                state.dest = "info"
                return
            if w == "objdata":  # an embedded object's OLE1 data, in hex: handed out as a member
                state.dest, state.capture, state.skip = "objdata", [], False
                return
            if parent_dest == "info" and w in _INFO_KEYS:
                state.dest = w
                state.capture = []
                return
            if w == "userprops":
                state.dest = "userprops"
                return
            if parent_dest == "userprops" and w in ("propname", "staticval"):
                state.dest = w
                state.capture = []
                return
            if w == "fonttbl":
                state.dest = "fonttbl"
                state.skip = True
                return
            if parent_dest == "fonttbl" and w == "f":
                state.dest = "fonttbl-entry"
                state.skip = True
                self.font_entry = param
                return
            if parent_dest == "upr" and w == "ud":
                state.dest = "ud"
                state.skip = stack[-1].skip
                return
            if w == "upr":  # {\upr{ANSI form}{\*\ud{Unicode form}}}: read the Unicode form only
                state.dest = "upr"
                return
            if w in _PASS_DEST:
                state.dest = w
                state.skip = stack[-1].skip if stack else False
                return
            if w in _SKIP_DEST or state.ignorable:
                state.dest = w
                state.skip = True
                return
        if state.dest == "fonttbl-entry" or state.dest == "fonttbl":
            if w == "f":
                self.font_entry = param
            elif w == "fcharset" and self.font_entry is not None and param is not None:
                self.fonts[self.font_entry] = _CHARSET_CP.get(param, None)
            elif w == "cpg" and self.font_entry is not None and param is not None and param in _CPG:
                self.fonts[self.font_entry] = _CPG[param]
            return
        if w == "ansicpg" and param is not None:
            cp = _CPG.get(param) or f"cp{param}"
            try:
                "".encode(cp)
                self.default_codec = cp
                state.codec = cp
                for st in stack:
                    st.codec = cp
            except LookupError:
                pass
            return
        if w == "deff" and param is not None:
            self.default_font = param
            return
        if w in ("mac",):
            self.default_codec = "mac_roman"
            return
        if state.skip:
            return
        if w == "f" and param is not None:
            self.flush_bytes(None)
            state.codec = self.fonts.get(param) or self.default_codec
            return
        if w in ("loch", "hich", "dbch"):
            return
        if w == "deleted":  # revision marking: `\deleted` on, `\deleted0` off, `\plain` resets
            self.flush_bytes(None)
            state.deleted = param != 0
            return
        if w == "plain":
            self.flush_bytes(None)
            state.deleted = False
            return
        if w == "u" and param is not None:
            code = param + 65536 if param < 0 else param
            self.add_text(state, chr(code) if 0 <= code < 0x110000 else "")
            self.to_skip = state.uc
            return
        if w == "uc" and param is not None:
            state.uc = max(0, param)
            return
        if w == "par" or w == "sect":
            self.emit_par(state.stream, page=(w == "sect" and state.stream is self.body))
            return
        if w == "page":
            self.emit_par(state.stream, page=True)
            return
        if w in ("cell", "nestcell"):
            state.stream.cell = True
            self.emit_par(state.stream)
            return
        if w in ("row", "nestrow"):
            self.emit_par(state.stream)
            return
        if w == "intbl":
            state.stream.cell = True
            return
        if w == "pard":
            state.stream.cell = False
            return
        if w == "pagebb":
            self.emit_par(state.stream, page=True)
            return
        sym = _SYMBOLS.get(w)
        if sym is not None:
            self.add_text(state, sym)


class RtfExtractor(Extractor):
    """Rich Text Format documents (Word, WPS, WordPad)."""

    name = "rtf"
    mimetypes = ("text/rtf", "application/rtf", "text/richtext")
    priority = 20

    @classmethod
    def sniff(cls, data: bytes, mime: str) -> bool:
        head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
        return head.startswith(b"{\\rtf") or (mime in cls.mimetypes and head.startswith(b"{"))

    def extract(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        start = data.find(b"{\\rtf", 0, 1024)
        if start < 0:
            yield ScanError(ErrorCode.CORRUPT, "no RTF header", ctx.member)
            return
        yield from _Reader(data[start:], ctx).run()


_NOT_HEX = re.compile(r"[^0-9A-Fa-f]")


def _ole1_native(blob: bytes) -> tuple[str, bytes] | None:
    """(name, native data) of an OLE1 embedded object (MS-OLEDS 2.2.4: version, format 2 =
    embedded, class name, topic and item names, native data size and data); a `Package`'s native
    data is unwrapped to the file it carries. Bytes that are no OLE1 object are handed out as they
    are; None for a linked or static object. ValueError for a header cut short."""
    from scanner.extractors.ole import _ole10_native

    def u32(pos: int) -> int:
        if pos + 4 > len(blob):
            raise ValueError("truncated")
        return int.from_bytes(blob[pos:pos + 4], "little")

    try:
        kind = u32(4)
    except ValueError:
        kind = 0
    if kind in (1, 3):  # linked or static: the data lives elsewhere or is a picture
        return None
    if kind != 2:  # not an OLE1 object at all: the bytes themselves, typed by the engine
        return ("objdata", blob) if blob else None
    try:
        pos = 8
        n = u32(pos)
        cls = blob[pos + 4:pos + 4 + n].rstrip(b"\0").decode("ascii", "replace")
        pos += 4 + n
        for _ in range(2):  # topic and item names
            pos += 4 + u32(pos)
        size = u32(pos)
    except ValueError:
        raise ValueError(f"OLE1 object header cut short ({len(blob)} bytes)") from None
    native = blob[pos + 4:pos + 4 + size]
    if cls == "Package":
        return _ole10_native(blob[pos:pos + 4 + size])
    return (cls.replace("/", "_") or "object"), native
