"""Legacy binary Office files in OLE2 compound files: Word (.doc, WPS .wps), Excel (.xls, WPS
.et), PowerPoint (.ppt, WPS .dps), Outlook (.msg), and the property sets every OLE2 file has.

- Word: the piece table (Clx in the 0Table/1Table stream) gives the text in UTF-16 and
  compressed cp1252 pieces; the text is cut into its stories (body, footnotes, headers and
  footers per PlcfHdd, comments, endnotes, text boxes) and then into paragraphs and table cells;
  field codes are dropped, field results kept. Without a usable piece table (damaged files,
  Word 6/95) the text is recovered heuristically and the file reported `corrupt`.
- Excel (BIFF8, and BIFF5 with its code page): the shared string table including strings split
  over CONTINUE records, LABEL/LABELSST/RSTRING cells located as `Sheet!A1`, formula string
  results, sheet headers/footers, text boxes and comments.
- PowerPoint: TextCharsAtom (UTF-16) and TextBytesAtom text per slide, notes and masters, with
  the title/body/notes type of each block, and the slide footers of HeadersFooters containers.
- Outlook .msg: subject, plain body (else HTML or the decompressed RTF body as a member),
  attachments as members, embedded messages recursively.
- Properties: title, subject, keywords, comments, category, and every user-defined custom
  property (an OA system's `密级` = `机密`) as standalone `property` segments.
- Encryption: Word's fEncrypted, Excel's FILEPASS, PowerPoint's CryptSession10Container and
  encrypted OOXML wrapped in OLE2 (`EncryptionInfo` + `EncryptedPackage`) → `encrypted`.

Dependency: `olefile` (BSD-2-Clause, pure Python) reads the compound file; the record formats
are parsed here ([MS-DOC], [MS-XLS], [MS-PPT], [MS-OXMSG], [MS-OLEPS]).
"""
from __future__ import annotations

import io
import re
import struct
from collections.abc import Iterator
from typing import Any

from scanner.decode import decode
from scanner.extractors.base import Context, Extractor
from scanner.model import ErrorCode, ExtractItem, Member, ScanError, Segment

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BAD = (OSError, ValueError, struct.error, IndexError, KeyError, UnicodeError, TypeError,
        AttributeError, ZeroDivisionError, OverflowError, RecursionError, MemoryError)


class _Damaged(Exception):
    """A structure could not be parsed; carries a detail for the `corrupt` error."""


class _Bomb(Exception):
    """The streams read so far exceed the file's size by more than its decompression budget."""


class _Reads:
    """What the streams read from one compound file cost. Streams may share sectors, so a small
    file can make every stream the whole file: reads beyond the file's own size are charged to
    the decompression budget like inflated bytes (reads within it are the file, already paid)."""

    def __init__(self, ctx: Context, size: int) -> None:
        self.ctx = ctx
        self.free = size

    def charge(self, n: int) -> None:
        own = min(n, self.free)
        self.free -= own
        if n > own and not self.ctx.budget.take(n - own):
            raise _Bomb(f"OLE2 streams read exceed the file's size by more than "
                        f"{self.ctx.limits.max_total_size} bytes (streams sharing sectors)")


def _u16(b: bytes, o: int) -> int:
    return int(struct.unpack_from("<H", b, o)[0])


def _u32(b: bytes, o: int) -> int:
    return int(struct.unpack_from("<I", b, o)[0])


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\x0b", "\n").split("\r")]


class OleExtractor(Extractor):
    """OLE2 compound files (Word, Excel, PowerPoint, WPS Office, Outlook, others)."""

    name = "ole2"
    mimetypes = ("application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
                 "application/x-ole-storage", "application/vnd.ms-outlook", "application/CDFV2",
                 "application/CDFV2-unknown", "application/vnd.ms-office", "application/encrypted",
                 "application/CDFV2-encrypted", "application/x-msi", "application/vnd.visio")
    priority = 5

    @classmethod
    def sniff(cls, data: bytes, mime: str) -> bool:
        return data[:8] == OLE_MAGIC

    def extract(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        try:
            import olefile
        except ImportError:  # pragma: no cover - declared dependency
            yield ScanError(ErrorCode.UNSUPPORTED, "OLE2: olefile is not installed", ctx.member)
            return
        try:
            ole = olefile.OleFileIO(io.BytesIO(data))
        except _BAD as exc:
            yield ScanError(ErrorCode.CORRUPT, f"unreadable OLE2 compound file: {exc}", ctx.member)
            return
        # A stream cannot hold more than the file: olefile only logs a declared size beyond it,
        # then follows the sector chain for that many sectors, and a chain that loops back makes
        # a 24 KB file yield gigabytes (fuzzer, 2026-12-06). Clamped, a looping chain yields at
        # most the file's size per stream; what streams read in total is charged by `_Reads`.
        for entry in ole.direntries:
            if entry is not None and entry.size > len(data):
                entry.size = len(data)
        try:
            yield from _Reader(ole, ctx, _Reads(ctx, len(data))).run()
        except _Bomb as exc:
            yield ScanError(ErrorCode.BOMB, str(exc), ctx.member)
        finally:
            ole.close()


class _Reader:
    def __init__(self, ole: Any, ctx: Context, reads: _Reads, prefix: str = "", where: str = "") -> None:
        self.ole = ole
        self.ctx = ctx
        self.reads = reads
        #: Storage path of the document inside the compound file ("" at the root).
        self.prefix = prefix
        #: Location prefix for segments ("" for the file itself, "x.msg!" inside an embedded message).
        self.where = where

    # ------------------------------------------------------------------------ helpers

    def child(self, prefix: str, where: str) -> _Reader:
        """A reader for the document stored at `prefix`, sharing this file's read account."""
        return _Reader(self.ole, self.ctx, self.reads, prefix, where)

    def loc(self, part: str | None) -> str | None:
        if part is None:
            return self.ctx.sub(self.where.rstrip("!") or None)
        return self.ctx.sub(self.where + part)

    def has(self, name: str) -> bool:
        try:
            return bool(self.ole.exists(self.prefix + name))
        except _BAD:
            return False

    def read(self, name: str, *, full: bool = False) -> bytes:
        """One stream, charged to the file's read account (`full`: `name` is a path from the root)."""
        with self.ole.openstream(name if full else self.prefix + name) as f:
            data = bytes(f.read())
        self.reads.charge(len(data))
        return data

    def err(self, code: ErrorCode, detail: str, part: str | None = None) -> ScanError:
        return ScanError(code, detail, self.loc(part))

    # ------------------------------------------------------------------------ dispatch

    def run(self) -> Iterator[ExtractItem]:
        yield from self.content()
        yield from self.embedded()

    def content(self) -> Iterator[ExtractItem]:
        """The document stored at `prefix`: properties, then its text by type."""
        if self.has("EncryptionInfo") and self.has("EncryptedPackage"):
            yield self.err(ErrorCode.ENCRYPTED, "password-protected Office Open XML document "
                           "(EncryptionInfo/EncryptedPackage)")
            return
        yield from self.properties()
        kinds = [
            ("WordDocument", self.word),
            ("Workbook", self.excel), ("Book", self.excel), ("WORKBOOK", self.excel),
            ("PowerPoint Document", self.powerpoint),
        ]
        for stream, fn in kinds:
            if self.has(stream):
                try:
                    yield from fn(stream)
                except (_Damaged, *_BAD) as exc:
                    yield self.err(ErrorCode.CORRUPT, f"{stream}: {exc or type(exc).__name__}")
                break
        else:
            if self.has("__properties_version1.0") or self.has("__substg1.0_0037001F") \
                    or self.has("__substg1.0_0037001E"):
                try:
                    yield from self.message()
                except (_Damaged, *_BAD) as exc:
                    yield self.err(ErrorCode.CORRUPT, f"Outlook message: {exc or type(exc).__name__}")
            else:
                yield from self.generic()

    # ------------------------------------------------------------------------ properties

    def properties(self) -> Iterator[ExtractItem]:
        for stream in ("\x05SummaryInformation", "\x05DocumentSummaryInformation"):
            if not self.has(stream):
                continue
            try:
                props = parse_property_sets(self.read(stream))
            except (_Damaged, *_BAD):
                continue  # properties are a bonus: a damaged set must not hide the content
            for key, value in props:
                text = str(value).strip().strip("\0").strip()
                if text:
                    yield Segment(text, self.loc(f"property {key}"), role="property", standalone=True, key=key)

    # ------------------------------------------------------------------------ Word

    def word(self, stream: str) -> Iterator[ExtractItem]:
        wd = self.read(stream)
        if len(wd) < 0x22:
            raise _Damaged("WordDocument stream too short")
        ident, nfib = _u16(wd, 0), _u16(wd, 2)
        flags = _u16(wd, 0x0A)
        if ident not in (0xA5EC, 0xA5DC):
            raise _Damaged(f"not a Word FIB (wIdent {ident:#x})")
        if flags & 0x0100:
            kind = "XOR-obfuscated" if flags & 0x8000 else "password-protected"
            yield self.err(ErrorCode.ENCRYPTED, f"{kind} Word document")
            return
        if nfib < 101:  # Word 6/95: no Unicode piece table; text in the document code page
            fc_min, fc_mac = _u32(wd, 0x18), _u32(wd, 0x1C)
            text = decode(wd[fc_min:fc_mac])[0] if 0 < fc_min < fc_mac <= len(wd) else ""
            if not text:
                raise _Damaged(f"Word 6/95 file (nFib {nfib}) without a text range")
            yield from self._word_story(text, "body", None)
            return
        try:
            full, ccp, hdd = self._word_text(wd, flags)
        except (_Damaged, *_BAD) as exc:
            found = False
            for text in utf16_runs(wd):
                found = True
                yield Segment(text, self.loc(None), role="body")
            yield self.err(ErrorCode.CORRUPT, f"Word piece table unreadable ({exc or type(exc).__name__}); "
                           f"{'text recovered heuristically' if found else 'no text recovered'}")
            return
        names = ("body", "footnotes", "headers", "comments", "endnotes", "textboxes", "header textboxes")
        roles = ("body", "note", "header", "comment", "note", "textbox", "textbox")
        pos = 0
        for i, n in enumerate(ccp):
            story = full[pos:pos + n]
            pos += n
            if not story.strip():
                continue
            if names[i] == "headers":
                yield from self._word_headers(story, hdd)
            else:
                yield from self._word_story(story, roles[i], None if i == 0 else names[i])
        if pos < len(full) and sum(ccp) == 0:  # counts missing: everything is body
            yield from self._word_story(full, "body", None)

    def _word_text(self, wd: bytes, flags: int) -> tuple[str, list[int], list[int]]:
        table_name = "1Table" if flags & 0x0200 else "0Table"
        if not self.has(table_name):
            raise _Damaged(f"{table_name} stream missing")
        table = self.read(table_name)
        csw = _u16(wd, 32)
        lw = 34 + 2 * csw
        cslw = _u16(wd, lw)
        rglw = lw + 2
        ccp = [_u32(wd, rglw + 4 * k) for k in (3, 4, 5, 7, 8, 9, 10)] if cslw >= 11 else []
        fc = rglw + 4 * cslw + 2
        fc_clx, lcb_clx = _u32(wd, fc + 33 * 8), _u32(wd, fc + 33 * 8 + 4)
        fc_hdd, lcb_hdd = _u32(wd, fc + 11 * 8), _u32(wd, fc + 11 * 8 + 4)
        if lcb_clx == 0 or fc_clx + lcb_clx > len(table):
            raise _Damaged("Clx outside the table stream")
        clx = table[fc_clx:fc_clx + lcb_clx]
        i = 0
        while i < len(clx) and clx[i] == 0x01:  # Prc: property modifiers, skipped
            i += 3 + struct.unpack_from("<h", clx, i + 1)[0]
        if i >= len(clx) or clx[i] != 0x02:
            raise _Damaged("no Pcdt in Clx")
        lcb = _u32(clx, i + 1)
        plc = clx[i + 5:i + 5 + lcb]
        n = (len(plc) - 4) // 12
        if n <= 0:
            raise _Damaged("empty piece table")
        cps = struct.unpack_from(f"<{n + 1}I", plc, 0)
        parts = []
        taken = 0  # bytes of `wd` the pieces cover: each byte holds at most one character
        for k in range(n):
            cp0, cp1 = cps[k], cps[k + 1]
            if cp1 <= cp0:
                continue
            fcv = _u32(plc, 4 * (n + 1) + 8 * k + 2)
            length = cp1 - cp0
            if fcv & 0x40000000:
                start = (fcv & 0x3FFFFFFF) // 2
                raw = wd[start:start + length]
                parts.append(raw.decode("cp1252", "replace"))
            else:
                start = fcv & 0x3FFFFFFF
                raw = wd[start:start + 2 * length]
                parts.append(raw.decode("utf-16-le", "replace"))
            taken += len(raw)
            if taken > len(wd):  # pieces overlap: n pieces could make n copies of the stream
                raise _Damaged(f"pieces cover more than the {len(wd)}-byte WordDocument stream")
        hdd: list[int] = []
        if lcb_hdd >= 8 and fc_hdd + lcb_hdd <= len(table):
            hdd = list(struct.unpack_from(f"<{lcb_hdd // 4}I", table, fc_hdd))
        return "".join(parts), ccp, hdd

    def _word_headers(self, story: str, hdd: list[int]) -> Iterator[ExtractItem]:
        """Headers and footers: PlcfHdd cuts the header document into 6 stories per section."""
        kinds = ("header", "header", "footer", "footer", "header", "footer")  # even, odd, first
        if len(hdd) < 8:
            yield from self._word_story(story, "header", "headers")
            return
        done = 0  # stories follow one another: an entry pointing back is not read twice
        for k in range(6, len(hdd) - 1):
            part = story[max(hdd[k], done):hdd[k + 1]]
            done = max(done, hdd[k + 1])
            if part.strip():
                role = kinds[(k - 6) % 6]
                yield from self._word_story(part, role, f"{role} {(k - 6) // 6 + 1}")

    def _word_story(self, story: str, role: str, part: str | None) -> Iterator[ExtractItem]:
        text = strip_fields(story)
        idx = 0
        for piece, mark in _split_marks(text):
            para = piece.replace("\x0b", "\n").strip()
            if not para:
                continue
            seg_role = "cell" if mark == "\x07" and role == "body" else role
            yield Segment(para, self.loc(part), role=seg_role, standalone=True, index=idx)
            idx += 1

    # ------------------------------------------------------------------------ Excel

    def excel(self, stream: str) -> Iterator[ExtractItem]:
        wb = self.read(stream)
        records = list(_biff_records(wb))
        if not records or records[0][1] not in (0x0809, 0x0409, 0x0209, 0x0009):
            raise _Damaged("no BIFF BOF record")
        version = _u16(records[0][2], 0) if len(records[0][2]) >= 2 else 0
        biff8 = version >= 0x0600
        codepage = "cp1252"
        sst: list[str] = []
        sheets: list[tuple[int, str]] = []
        k = 1
        while k < len(records):
            _, typ, rec = records[k]
            if typ == 0x000A:  # EOF of the globals
                break
            if typ == 0x002F:
                yield self.err(ErrorCode.ENCRYPTED, "password-protected Excel workbook (FILEPASS)")
                return
            if typ == 0x0042 and len(rec) >= 2:
                codepage = _codepage_name(_u16(rec, 0)) or codepage
            elif typ == 0x0085 and len(rec) >= 8:
                name = _short_string(rec, 6, biff8, codepage)
                sheets.append((_u32(rec, 0), name))
            elif typ == 0x00FC:
                chunks = [rec]
                while k + 1 < len(records) and records[k + 1][1] == 0x003C:
                    k += 1
                    chunks.append(records[k][2])
                sst = _parse_sst(chunks)
            k += 1
        used: set[int] = set()
        walked = bytearray(len(records))  # sheets sharing records are not walked twice
        by_pos = {pos: i for i, (pos, _, _) in enumerate(records)}
        for offset, sheet in sheets:
            start = by_pos.get(offset)
            if start is None:
                yield self.err(ErrorCode.CORRUPT, f"sheet {sheet!r}: BOF not found at {offset}")
                continue
            yield from self._sheet(records, start, sheet, sst, used, walked, biff8, codepage)
        if not sheets:  # no BOUNDSHEET: read every cell record in the stream
            yield from self._sheet(records, 0, "Sheet1", sst, used, walked, biff8, codepage)
        for i, s in enumerate(sst):
            if i not in used and s.strip():
                yield Segment(s.strip(), self.loc("shared strings"), role="cell", standalone=True, index=i)

    def _sheet(self, records: list[tuple[int, int, bytes]], start: int, sheet: str, sst: list[str],
               used: set[int], walked: bytearray, biff8: bool, codepage: str) -> Iterator[ExtractItem]:
        last_formula: tuple[int, int] | None = None
        k = start + 1 if records[start][1] in (0x0809, 0x0409, 0x0209, 0x0009) else start
        while k < len(records) and not walked[k]:
            walked[k] = 1
            _, typ, rec = records[k]
            k += 1
            if typ == 0x000A:
                break
            try:
                if typ == 0x00FD and len(rec) >= 10:  # LABELSST
                    row, col, isst = _u16(rec, 0), _u16(rec, 2), _u32(rec, 6)
                    if isst < len(sst):
                        used.add(isst)
                        yield from self._cell(sheet, row, col, sst[isst])
                elif typ in (0x0204, 0x00D6) and len(rec) >= 8:  # LABEL, RSTRING
                    text = _xl_string(rec, 6)[0] if biff8 else _byte_string16(rec, 6, codepage)
                    yield from self._cell(sheet, _u16(rec, 0), _u16(rec, 2), text)
                elif typ == 0x0006 and len(rec) >= 4:  # FORMULA: a STRING record may follow
                    last_formula = (_u16(rec, 0), _u16(rec, 2))
                elif typ == 0x0207 and last_formula and len(rec) >= 3:  # STRING (formula result)
                    text = _xl_string(rec, 0)[0] if biff8 else _byte_string16(rec, 0, codepage)
                    yield from self._cell(sheet, *last_formula, text)
                    last_formula = None
                elif typ in (0x0014, 0x0015) and rec:  # HEADER, FOOTER
                    if biff8:
                        text = _xl_string(rec, 0)[0]
                    else:
                        text = rec[1:1 + rec[0]].decode(codepage, "replace")
                    role = "header" if typ == 0x0014 else "footer"
                    for j, part in enumerate(excel_header_parts(text)):
                        yield Segment(part, self.loc(f"{sheet}!{role}"), role=role, standalone=True, index=j)
                elif typ == 0x01B6 and len(rec) >= 12:  # TXO: text box / comment, text in CONTINUE
                    cch = _u16(rec, 10)
                    pieces: list[str] = []
                    while k < len(records) and records[k][1] == 0x003C and cch > 0 and not walked[k]:
                        walked[k] = 1
                        cont = records[k][2]
                        k += 1
                        if not cont:
                            continue
                        high = cont[0] & 0x01
                        body = cont[1:]
                        piece = body.decode("utf-16-le" if high else "latin-1", "replace")
                        pieces.append(piece[:cch])
                        cch -= len(piece[:cch])
                    joined = "".join(pieces)
                    for j, para in enumerate(p for p in _paragraphs(joined.replace("\n", "\r")) if p):
                        yield Segment(para, self.loc(f"{sheet}!textbox"), role="textbox", standalone=True, index=j)
            except _BAD:
                continue

    def _cell(self, sheet: str, row: int, col: int, text: str) -> Iterator[ExtractItem]:
        text = text.strip()
        if text:
            yield Segment(text, self.loc(f"{sheet}!{cell_name(row, col)}"), role="cell", standalone=True, index=row)

    # ------------------------------------------------------------------------ PowerPoint

    def powerpoint(self, stream: str) -> Iterator[ExtractItem]:
        if self.has("EncryptedSummary"):
            yield self.err(ErrorCode.ENCRYPTED, "password-protected PowerPoint presentation")
            return
        doc = self.read(stream)
        state = _PptState()
        try:
            yield from self._ppt_walk(doc, 0, len(doc), state, "slide", 0)
        except _Encrypted:
            yield self.err(ErrorCode.ENCRYPTED, "password-protected PowerPoint presentation")

    def _ppt_walk(self, doc: bytes, start: int, end: int, st: _PptState, ctxkind: str,
                  depth: int) -> Iterator[ExtractItem]:
        if depth > 40:
            return
        pos = start
        while pos + 8 <= end:
            verinst, typ, length = struct.unpack_from("<HHI", doc, pos)
            body = pos + 8
            nxt = body + length
            if nxt > end or length > len(doc):
                break
            ver, inst = verinst & 0x0F, verinst >> 4
            if typ == 0x2F14:  # CryptSession10Container
                raise _Encrypted
            if ver == 0x0F:  # container
                kind = ctxkind
                if typ == 0x03EE:  # Slide
                    st.slide_obj += 1
                    kind = f"slide {st.slide_obj}"
                elif typ == 0x03F0:  # Notes
                    st.notes_obj += 1
                    kind = f"notes {st.notes_obj}"
                elif typ in (0x03F8, 0x0FC9):  # MainMaster, Handout
                    st.master += 1
                    kind = f"master {st.master}"
                elif typ == 0x0FF0:  # SlideListWithText: 0 slides, 1 masters, 2 notes
                    kind = {0: "slidelist", 1: "masterlist", 2: "noteslist"}.get(inst, "slidelist")
                    st.list_no = 0
                elif typ == 0x0FD9:  # HeadersFooters
                    kind = "headersfooters"
                yield from self._ppt_walk(doc, body, nxt, st, kind, depth + 1)
            else:
                data = doc[body:nxt]
                if typ == 0x03F3 and ctxkind.endswith("list"):  # SlidePersistAtom
                    st.list_no += 1
                    st.text_type = 1
                elif typ == 0x0F9F and len(data) >= 4:  # TextHeaderAtom
                    st.text_type = _u32(data, 0)
                elif typ in (0x0FA0, 0x0FA8):  # TextCharsAtom, TextBytesAtom
                    text = data.decode("utf-16-le" if typ == 0x0FA0 else "latin-1", "replace")
                    yield from self._ppt_text(text, st, ctxkind)
                elif typ == 0x0FBA and ctxkind == "headersfooters" and inst in (1, 2):  # CString
                    text = data.decode("utf-16-le", "replace").strip()
                    if text:
                        role = "header" if inst == 1 else "footer"
                        yield Segment(text, self.loc(role), role=role, standalone=True, index=0)
            pos = nxt

    def _ppt_text(self, text: str, st: _PptState, ctxkind: str) -> Iterator[ExtractItem]:
        if ctxkind == "slidelist":
            part = f"slide {max(st.list_no, 1)}"
        elif ctxkind == "noteslist":
            part = f"notes {max(st.list_no, 1)}"
        elif ctxkind == "masterlist":
            part = "master"
        else:
            part = ctxkind
        role = {0: "title", 6: "title", 2: "note"}.get(st.text_type, "body")
        if part.startswith("notes"):
            role = "note"
        for para in _paragraphs(text):
            if para and para != "*":  # "*" stands for a field (date, slide number) in masters
                idx = st.index.get(part, 0)
                st.index[part] = idx + 1
                yield Segment(para, self.loc(part), role=role, standalone=True, index=idx)

    # ------------------------------------------------------------------------ Outlook .msg

    def message(self) -> Iterator[ExtractItem]:
        subject = self._msg_string("0037")
        if subject:
            yield Segment(subject.strip(), self.loc("subject"), role="subject", standalone=True, index=0)
        headers = self._msg_string("007D")
        if headers:
            from scanner.extractors.mail import _CLASS_HEADER, decode_header_value

            for m in re.finditer(r"(?m)^([!-9;-~]+):[ \t]*(.*(?:\r?\n[ \t].*)*)", headers):
                if _CLASS_HEADER.search(m.group(1)):
                    value = decode_header_value(m.group(2))
                    if value:
                        yield Segment(value, self.loc(f"header {m.group(1)}"), role="property",
                                      standalone=True, key=m.group(1))
        body = self._msg_string("1000")
        if body and body.strip():
            yield Segment(body, self.loc("body"), role="body")
        else:
            html = self._msg_binary("1013") or (self._msg_string("1013") or "").encode("utf-8")
            if html:
                yield from self._msg_member("body.html", html)
            else:
                rtf = self._msg_binary("1009")
                if rtf:
                    try:
                        yield from self._msg_member("body.rtf", decompress_rtf(rtf))
                    except (_Damaged, *_BAD) as exc:
                        yield self.err(ErrorCode.CORRUPT, f"compressed RTF body: {exc}", "body")
        for entry in self._children("__attach_version1.0_"):
            yield from self._msg_attachment(entry)

    def _children(self, start: str) -> list[str]:
        depth = self.prefix.count("/")
        found = set()
        for path in self.ole.listdir(streams=True, storages=True):
            if len(path) > depth and "/".join(path[:depth]) + ("/" if depth else "") == self.prefix \
                    and path[depth].startswith(start):
                found.add(path[depth])
        return sorted(found)

    def _msg_string(self, tag: str) -> str | None:
        if self.has(f"__substg1.0_{tag}001F"):
            return self.read(f"__substg1.0_{tag}001F").decode("utf-16-le", "replace").rstrip("\0")
        if self.has(f"__substg1.0_{tag}001E"):
            return decode(self.read(f"__substg1.0_{tag}001E").rstrip(b"\0"))[0]
        return None

    def _msg_binary(self, tag: str) -> bytes | None:
        name = f"__substg1.0_{tag}0102"
        return self.read(name) if self.has(name) else None

    def _msg_member(self, name: str, data: bytes) -> Iterator[ExtractItem]:
        if not self.ctx.budget.take_member():
            yield self.err(ErrorCode.BOMB, f"more than {self.ctx.limits.max_members} members")
            return
        yield Member(self.where + name, data)

    def _msg_attachment(self, storage: str) -> Iterator[ExtractItem]:
        sub = self.child(self.prefix + storage + "/", self.where)
        name = (sub._msg_string("3707") or sub._msg_string("3704") or sub._msg_string("3001")
                or storage.replace("__attach_version1.0_", "attachment ")).strip().replace("!", "_")
        if sub.has("__substg1.0_3701000D"):  # an embedded message
            inner = self.child(sub.prefix + "__substg1.0_3701000D/",
                               f"{self.where}{name if name.endswith('.msg') else name + '.msg'}!")
            try:
                yield from inner.message()
            except (_Damaged, *_BAD) as exc:
                yield inner.err(ErrorCode.CORRUPT, f"embedded message: {exc}")
            return
        data = sub._msg_binary("3701")
        if data is not None:  # None: attached by reference, nothing to scan
            yield from self._msg_member(name, data)

    # ------------------------------------------------------------------------ others

    def streams(self) -> list[list[str]]:
        """Every stream's path; a directory tree olefile cannot list (a storage that contains
        itself: olefile recurses until RecursionError) is a damaged file, said so by the caller."""
        try:
            return list(self.ole.listdir(streams=True, storages=False))
        except _BAD as exc:
            raise _Damaged(f"directory tree unreadable ({type(exc).__name__})") from exc

    def generic(self) -> Iterator[ExtractItem]:
        """Unknown OLE2 document types: UTF-16 text runs of every stream."""
        try:
            paths = self.streams()
        except _Damaged as exc:
            yield self.err(ErrorCode.CORRUPT, f"{exc}: streams not read")
            return
        for path in paths:
            name = "/".join(path)
            if not name.startswith(self.prefix) or name.startswith(("\x05", "\x01")):
                continue
            try:
                data = self.read(name, full=True)
            except _BAD:
                continue
            for text in utf16_runs(data):
                yield Segment(text, self.loc(name[len(self.prefix):]), role="body")

    def embedded(self) -> Iterator[ExtractItem]:
        """Embedded objects: Office documents stored as OLE2 storages (ObjectPool/_123…, MBD…)
        are read in place; OOXML packages and OLE1 native data become members."""
        try:
            paths = self.streams()
        except _Damaged as exc:
            yield self.err(ErrorCode.CORRUPT, f"{exc}: embedded objects not read")
            return
        docs = sorted({tuple(p[:-1]) for p in paths if len(p) > 1 and p[-1] in _DOC_STREAMS
                       and not any(x.startswith(("__substg1.0_", "__attach_")) for x in p)})
        for storage in docs:
            where = "/".join(storage)
            sub = self.child(where + "/", f"{self.where}{where}!")
            try:
                yield from sub.content()
            except (_Damaged, *_BAD) as exc:
                yield self.err(ErrorCode.CORRUPT, f"embedded object {where}: {exc}")
        for path in paths:
            leaf = path[-1]
            if leaf not in ("Package", "\x01Ole10Native", "CONTENTS"):
                continue
            name = "/".join(path)
            try:
                data = self.read(name, full=True)
            except _BAD:
                continue
            if leaf == "\x01Ole10Native":
                fname, data = _ole10_native(data)
            else:
                fname = "/".join(path[:-1] + ["package" if leaf == "Package" else "contents"])
            if data:
                if not self.ctx.budget.take_member():
                    yield self.err(ErrorCode.BOMB, f"more than {self.ctx.limits.max_members} members")
                    return
                yield Member(fname.replace("\x01", ""), data)


_DOC_STREAMS = frozenset({"WordDocument", "Workbook", "Book", "PowerPoint Document"})


class _Encrypted(Exception):
    pass


class _PptState:
    def __init__(self) -> None:
        self.slide_obj = 0
        self.notes_obj = 0
        self.master = 0
        self.list_no = 0
        self.text_type = 1
        self.index: dict[str, int] = {}


# ------------------------------------------------------------------------ Word helpers

_DROP = dict.fromkeys(map(ord, "\x00\x01\x02\x03\x04\x05\x06\x08\x13\x14\x15\x1f"), None)
_DROP.update({0x1E: "-", 0xA0: " ", 0x0C: "\r"})


def strip_fields(text: str) -> str:
    """Drop field instructions (between 0x13 and 0x14) and keep field results (0x14..0x15)."""
    if "\x13" not in text:
        return text.translate(_DROP)
    out = []  # slices of `text` between field marks, never single characters
    stack: list[bool] = []  # True while inside a field's instructions
    hidden = 0
    pos = 0
    for m in _FIELD_MARK.finditer(text):
        at = m.start()
        if hidden == 0 and at > pos:
            out.append(text[pos:at])
        pos = at + 1
        ch = text[at]
        if ch == "\x13":
            stack.append(True)
            hidden += 1
        elif ch == "\x14":
            if stack and stack[-1]:
                stack[-1] = False
                hidden -= 1
        elif stack and stack.pop():
            hidden -= 1
    if hidden == 0:
        out.append(text[pos:])
    return "".join(out).translate(_DROP)


_FIELD_MARK = re.compile("[\x13\x14\x15]")


def _split_marks(text: str) -> Iterator[tuple[str, str]]:
    """Paragraphs with the mark that ends them: \\r paragraph, \\x07 table cell/row end."""
    for m in re.finditer(r"([^\r\x07]*)([\r\x07]|$)", text):
        if m.group(0):
            yield m.group(1), m.group(2)


_RUN = re.compile("[\u0020-\u007e\u00a0-\u00ff\u2000-\u206f\u2605\u2606\u3000-\u303f"
                  "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\t\r\n]{4,}")
_CJK = re.compile("[\u3400-\u9fff\uf900-\ufaff]")


def utf16_runs(data: bytes) -> Iterator[str]:
    """Plausible UTF-16LE text runs in binary data (both byte alignments)."""
    for shift in (0, 1):
        chunk = data[shift:]
        text = chunk[: len(chunk) // 2 * 2].decode("utf-16-le", "replace")
        for m in _RUN.finditer(text):
            run = m.group(0).strip()
            if _CJK.search(run) or (len(run) >= 8 and sum(c.isalpha() for c in run) > len(run) / 2):
                if shift == 1 and not _CJK.search(run):
                    continue
                yield run


# ------------------------------------------------------------------------ Excel helpers

def _biff_records(wb: bytes) -> Iterator[tuple[int, int, bytes]]:
    pos = 0
    n = len(wb)
    while pos + 4 <= n:
        typ, length = struct.unpack_from("<HH", wb, pos)
        if typ == 0 and length == 0:
            break
        yield pos, typ, wb[pos + 4:pos + 4 + length]
        pos += 4 + length


def _codepage_name(cp: int) -> str | None:
    if cp == 1200:
        return "utf-16-le"
    if cp in (0x8000, 10000):
        return "mac_roman"
    if cp == 367:
        return "ascii"
    name = f"cp{cp}"
    try:
        "".encode(name)
    except LookupError:
        return None
    return "gb18030" if cp == 936 else name


def _xl_string(rec: bytes, off: int) -> tuple[str, int]:
    """XLUnicodeString (16-bit count) at `off`; returns (text, end offset)."""
    cch = _u16(rec, off)
    flags = rec[off + 2]
    pos = off + 3
    runs = ext = 0
    if flags & 0x08:
        runs = _u16(rec, pos)
        pos += 2
    if flags & 0x04:
        ext = _u32(rec, pos)
        pos += 4
    if flags & 0x01:
        text = rec[pos:pos + 2 * cch].decode("utf-16-le", "replace")
        pos += 2 * cch
    else:
        text = rec[pos:pos + cch].decode("latin-1")
        pos += cch
    return text, pos + 4 * runs + ext


def _short_string(rec: bytes, off: int, biff8: bool, codepage: str) -> str:
    cch = rec[off]
    if not biff8:
        return rec[off + 1:off + 1 + cch].decode(codepage, "replace")
    flags = rec[off + 1]
    if flags & 0x01:
        return rec[off + 2:off + 2 + 2 * cch].decode("utf-16-le", "replace")
    return rec[off + 2:off + 2 + cch].decode("latin-1")


def _byte_string16(rec: bytes, off: int, codepage: str) -> str:
    cch = _u16(rec, off)
    return rec[off + 2:off + 2 + cch].decode(codepage, "replace")


def _parse_sst(chunks: list[bytes]) -> list[str]:
    """The shared string table, following strings across CONTINUE records (where the
    character data resumes with a fresh high-byte flag)."""
    r = _ChunkReader(chunks)
    r.take(4)
    unique = struct.unpack("<I", r.take(4))[0]
    out: list[str] = []
    for _ in range(min(unique, 10_000_000)):
        if r.eof():
            break
        cch = struct.unpack("<H", r.take(2))[0]
        flags = r.take(1)[0]
        runs = struct.unpack("<H", r.take(2))[0] if flags & 0x08 else 0
        ext = struct.unpack("<I", r.take(4))[0] if flags & 0x04 else 0
        out.append(r.chars(cch, bool(flags & 0x01)))
        r.take(4 * runs)
        r.take(ext)
    return out


class _ChunkReader:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.i = 0
        self.pos = 0

    def eof(self) -> bool:
        while self.i < len(self.chunks) and self.pos >= len(self.chunks[self.i]):
            self.i += 1
            self.pos = 0
        return self.i >= len(self.chunks)

    def take(self, n: int) -> bytes:
        # Pieces joined once: `out += piece` recopied what was taken at every record, quadratic
        # for a length that spans the stream (an SST string's extension size is any u32: 16 MB of
        # CONTINUE records took 8 s).
        out: list[bytes] = []
        while n > 0 and not self.eof():
            chunk = self.chunks[self.i]
            piece = chunk[self.pos:self.pos + n]
            self.pos += len(piece)
            n -= len(piece)
            out.append(piece)
        return b"".join(out)

    def chars(self, cch: int, high: bool) -> str:
        out = []
        while cch > 0 and not self.eof():
            chunk = self.chunks[self.i]
            width = 2 if high else 1
            avail = (len(chunk) - self.pos) // width
            if avail <= 0:  # continue record: a new flags byte decides the width
                self.i += 1
                self.pos = 0
                if self.eof():
                    break
                high = bool(self.chunks[self.i][0] & 0x01)
                self.pos = 1
                continue
            n = min(avail, cch)
            raw = chunk[self.pos:self.pos + n * width]
            self.pos += n * width
            out.append(raw.decode("utf-16-le" if high else "latin-1", "replace"))
            cch -= n
            if cch > 0 and self.pos >= len(chunk) and self.i + 1 < len(self.chunks):
                self.i += 1
                high = bool(self.chunks[self.i][0] & 0x01)
                self.pos = 1
        return "".join(out)


def cell_name(row: int, col: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return f"{letters}{row + 1}"


_HF_CODE = re.compile(r'&(?:"[^"]*"|\d+|[LCRPNDTFAZGBIUESXY&KH]|K[0-9A-Fa-f]{6})')


def excel_header_parts(text: str) -> list[str]:
    """Left/centre/right sections of an Excel header or footer without formatting codes."""
    parts = re.split(r"&[LCR]", text)
    out = []
    for part in parts:
        clean = _HF_CODE.sub(lambda m: "&" if m.group(0) == "&&" else "", part).strip()
        if clean:
            out.append(clean)
    return out


# ------------------------------------------------------------------------ property sets

_FMTID_SUMMARY = bytes.fromhex("e0859ff2f94f6810ab9108002b27b3d9")
_FMTID_DOCSUMMARY = bytes.fromhex("02d5cdd59c2e1b10939708002b2cf9ae")
_FMTID_USER = bytes.fromhex("05d5cdd59c2e1b10939708002b2cf9ae")
_SUMMARY_KEYS = {2: "title", 3: "subject", 5: "keywords", 6: "comments"}
_DOCSUMMARY_KEYS = {2: "category", 14: "manager", 15: "company"}


def parse_property_sets(data: bytes) -> list[tuple[str, object]]:
    """Named values of a SummaryInformation/DocumentSummaryInformation stream: the standard
    text properties that can carry a classification, and all user-defined custom properties."""
    if len(data) < 28 or _u16(data, 0) != 0xFFFE:
        raise _Damaged("not a property set stream")
    count = _u32(data, 24)
    out: list[tuple[str, object]] = []
    for i in range(min(count, 8)):
        fmtid = data[28 + 20 * i:44 + 20 * i]
        off = _u32(data, 44 + 20 * i)
        props = _property_set(data, off)
        if fmtid == _FMTID_SUMMARY:
            out += [(_SUMMARY_KEYS[k], v) for k, v in props.items() if k in _SUMMARY_KEYS and isinstance(v, str)]
        elif fmtid == _FMTID_DOCSUMMARY and i == 0:
            out += [(_DOCSUMMARY_KEYS[k], v) for k, v in props.items() if k in _DOCSUMMARY_KEYS and isinstance(v, str)]
        elif fmtid == _FMTID_USER or (fmtid == _FMTID_DOCSUMMARY and i == 1):
            names = props.get(0)
            if isinstance(names, dict):
                out += [(names[k], v) for k, v in props.items() if k in names and k > 1 and v is not None
                        and not isinstance(v, bytes)]
    return out


def _property_set(data: bytes, off: int) -> dict[int, Any]:
    size, n = _u32(data, off), _u32(data, off + 4)
    end = min(len(data), off + size)
    entries = [(_u32(data, off + 8 + 8 * k), _u32(data, off + 12 + 8 * k)) for k in range(min(n, 4096))]
    codepage = "cp1252"
    for pid, rel in entries:
        if pid == 1 and off + rel + 6 <= end and _u16(data, off + rel) == 0x0002:
            codepage = _codepage_name(_u16(data, off + rel + 4)) or codepage
    props: dict[int, Any] = {}
    for pid, rel in entries:
        pos = off + rel
        if pos + 4 > end:
            continue
        try:
            if pid == 0:
                props[0] = _dictionary(data, pos, codepage)
            elif pid != 1:
                props[pid] = _typed_value(data, pos, codepage)
        except _BAD:
            continue
    return props


def _dictionary(data: bytes, pos: int, codepage: str) -> dict[int, str]:
    n = _u32(data, pos)
    pos += 4
    out = {}
    for _ in range(min(n, 4096)):
        pid, cch = _u32(data, pos), _u32(data, pos + 4)
        pos += 8
        if codepage == "utf-16-le":
            name = data[pos:pos + 2 * cch].decode("utf-16-le", "replace")
            pos += 2 * cch
            pos += (-pos) % 4
        else:
            name = data[pos:pos + cch].decode(codepage, "replace")
            pos += cch
        out[pid] = name.rstrip("\0")
    return out


def _typed_value(data: bytes, pos: int, codepage: str) -> Any:
    vt = _u16(data, pos)
    pos += 4
    if vt == 0x001E:  # VT_LPSTR
        n = _u32(data, pos)
        raw = data[pos + 4:pos + 4 + n]
        if codepage == "utf-16-le":
            return raw.decode("utf-16-le", "replace").rstrip("\0")
        raw = raw.rstrip(b"\0")
        try:
            return raw.decode(codepage)
        except UnicodeDecodeError:
            return decode(raw)[0]
    if vt == 0x001F:  # VT_LPWSTR
        n = _u32(data, pos)
        return data[pos + 4:pos + 4 + 2 * n].decode("utf-16-le", "replace").rstrip("\0")
    if vt == 0x0002:
        return struct.unpack_from("<h", data, pos)[0]
    if vt == 0x0003:
        return struct.unpack_from("<i", data, pos)[0]
    if vt == 0x0005:
        return struct.unpack_from("<d", data, pos)[0]
    if vt == 0x000B:
        return bool(_u16(data, pos))
    return None


# ------------------------------------------------------------------------ embedded objects

def _ole10_native(data: bytes) -> tuple[str, bytes]:
    """OLE1 Package object: size, type, label, file name, …, data size, data."""
    try:
        pos = 4 + 2
        label_end = data.index(b"\0", pos)
        label = data[pos:label_end]
        pos = data.index(b"\0", label_end + 1) + 1  # original path
        pos += 4  # reserved
        size = _u32(data, pos)
        pos += 4
        # the temporary path, NUL-terminated; its length field counts the NUL (some writers not)
        end = data.find(b"\0", pos, pos + size + 1)
        pos = end + 1 if end >= 0 else pos + size
        n = _u32(data, pos)
        payload = data[pos + 4:pos + 4 + n]
        name = decode(label)[0] or "ole10native"
        return name.replace("/", "_"), payload
    except (ValueError, struct.error, IndexError):
        return "ole10native", data[4:]


# ------------------------------------------------------------------------ compressed RTF

_RTF_PREBUF = (b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss "
               b"\\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier"
               b"{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx")


def decompress_rtf(data: bytes) -> bytes:
    """[MS-OXRTFCP] LZFu decompression of PR_RTF_COMPRESSED."""
    if len(data) < 16:
        raise _Damaged("compressed RTF header truncated")
    comp_size, raw_size, magic = _u32(data, 0), _u32(data, 4), _u32(data, 8)
    if magic == 0x414C454D:  # "MELA": stored uncompressed
        return data[16:16 + raw_size]
    if magic != 0x75465A4C:  # "LZFu"
        raise _Damaged("unknown compressed RTF type")
    buf = bytearray(_RTF_PREBUF.ljust(4096, b" ")[:4096])
    wpos = len(_RTF_PREBUF)
    out = bytearray()
    pos, end = 16, min(len(data), comp_size + 4)
    limit = max(raw_size, 1) + 4096
    while pos < end and len(out) < limit:
        flags = data[pos]
        pos += 1
        for bit in range(8):
            if pos >= end:
                break
            if flags & (1 << bit):
                if pos + 2 > end:
                    break
                ref = (data[pos] << 8) | data[pos + 1]
                pos += 2
                off, length = ref >> 4, (ref & 0x0F) + 2
                if off == wpos:
                    return bytes(out)
                for _ in range(length):
                    c = buf[off]
                    out.append(c)
                    buf[wpos] = c
                    wpos = (wpos + 1) % 4096
                    off = (off + 1) % 4096
            else:
                c = data[pos]
                pos += 1
                out.append(c)
                buf[wpos] = c
                wpos = (wpos + 1) % 4096
    return bytes(out)
