"""OLE2 extractor: Word/Excel/PowerPoint binaries (and WPS Office), Outlook .msg, property sets,
encryption, damaged files. Fixtures are compound files built here (see `_bin_fixtures.ole_file`)
from hand-made streams, plus the corpus files when present."""
from __future__ import annotations

import io
import random
import struct

import pytest
from _bin_fixtures import (
    corpus_file,
    ctx,
    errors,
    hostile_file,
    members,
    ole_file,
    run,
    segments,
)

from scanner.extractors.base import Limits
from scanner.extractors.ole import (
    _DROP,
    OleExtractor,
    cell_name,
    decompress_rtf,
    excel_header_parts,
    parse_property_sets,
    strip_fields,
)
from scanner.model import ErrorCode, Member, ScanError, Segment

FMTID_SUMMARY = bytes.fromhex("e0859ff2f94f6810ab9108002b27b3d9")
FMTID_DOCSUMMARY = bytes.fromhex("02d5cdd59c2e1b10939708002b2cf9ae")
FMTID_USER = bytes.fromhex("05d5cdd59c2e1b10939708002b2cf9ae")


def by_member(items: list) -> dict[str | None, list[Segment]]:
    out: dict[str | None, list[Segment]] = {}
    for s in segments(items):
        out.setdefault(s.member, []).append(s)
    return out


# ------------------------------------------------------------------------ property sets

def _pad4(b: bytes) -> bytes:
    return b + b"\0" * ((-len(b)) % 4)


def _value(v: object, codepage: int) -> bytes:
    if isinstance(v, bool):
        return struct.pack("<HHH", 0x000B, 0, 0xFFFF if v else 0) + b"\0\0"
    if isinstance(v, int):
        return struct.pack("<HHi", 0x0003, 0, v)
    assert isinstance(v, str)
    if codepage == 1200:
        raw = (v + "\0").encode("utf-16-le")
        return _pad4(struct.pack("<HHI", 0x001F, 0, len(v) + 1) + raw)
    raw = (v + "\0").encode(f"cp{codepage}")
    return _pad4(struct.pack("<HHI", 0x001E, 0, len(raw)) + raw)


def _section(props: dict[int, object], codepage: int, names: dict[int, str] | None = None) -> bytes:
    items: list[tuple[int, bytes]] = [(1, struct.pack("<HHh", 0x0002, 0, codepage - 65536 if codepage > 32767 else codepage) + b"\0\0")]
    if names is not None:
        d = struct.pack("<I", len(names))
        for pid, name in names.items():
            if codepage == 1200:
                d += _pad4(struct.pack("<II", pid, len(name) + 1) + (name + "\0").encode("utf-16-le"))
            else:
                raw = (name + "\0").encode(f"cp{codepage}")
                d += struct.pack("<II", pid, len(raw)) + raw
        items.insert(0, (0, _pad4(d)))
    items += [(pid, _value(v, codepage)) for pid, v in props.items()]
    head = 8 + 8 * len(items)
    table, body = b"", b""
    for pid, blob in items:
        table += struct.pack("<II", pid, head + len(body))
        body += blob
    return struct.pack("<II", head + len(body), len(items)) + table + body


def property_stream(sections: list[tuple[bytes, bytes]]) -> bytes:
    head = 28 + 20 * len(sections)
    out = struct.pack("<HHI", 0xFFFE, 0, 0x00020006) + b"\0" * 16 + struct.pack("<I", len(sections))
    body = b""
    for fmtid, sec in sections:
        out += fmtid + struct.pack("<I", head + len(body))
        body += sec
    return out + body


def summary_streams(title: str = "关于工作的通知", custom: dict[int, object] | None = None,
                    names: dict[int, str] | None = None, codepage: int = 1200) -> dict[str, bytes]:
    si = property_stream([(FMTID_SUMMARY, _section({2: title, 3: "秘密★5年", 4: "作者", 5: "保密"}, 936))])
    dsi = property_stream([(FMTID_DOCSUMMARY, _section({2: "机密文件类"}, 1200)),
                           (FMTID_USER, _section(custom or {2: "机密", 3: "10年", 4: True},
                                                 codepage, names or {2: "密级", 3: "保密期限", 4: "已定密"}))])
    return {"\x05SummaryInformation": si, "\x05DocumentSummaryInformation": dsi}


@pytest.mark.parametrize("codepage", [1200, 936])
def test_property_sets_standard_and_custom(codepage: int) -> None:
    streams = summary_streams(codepage=codepage)
    props = parse_property_sets(streams["\x05SummaryInformation"]) + \
        parse_property_sets(streams["\x05DocumentSummaryInformation"])
    assert dict(props) == {"title": "关于工作的通知", "subject": "秘密★5年", "keywords": "保密",
                           "category": "机密文件类", "密级": "机密", "保密期限": "10年", "已定密": True}


def test_custom_property_becomes_a_property_segment() -> None:
    data = ole_file({**summary_streams(), "Unknown": b"\0" * 100})
    props = {s.key: s for s in segments(run(OleExtractor(), data)) if s.role == "property"}
    assert props["密级"].text == "机密" and props["密级"].standalone
    assert props["密级"].member == "property 密级"
    assert props["subject"].text == "秘密★5年"


def test_damaged_property_set_does_not_hide_content() -> None:
    data = ole_file({"\x05SummaryInformation": b"\xfe\xff" + b"\xff" * 60, "Workbook": _workbook()})
    assert any(s.role == "cell" for s in segments(run(OleExtractor(), data)))


# --------------------------------------------------------------------------------- Excel

def rec(typ: int, data: bytes) -> bytes:
    return struct.pack("<HH", typ, len(data)) + data


def xl_str(s: str, wide: bool = True) -> bytes:
    if wide:
        return struct.pack("<HB", len(s), 1) + s.encode("utf-16-le")
    return struct.pack("<HB", len(s), 0) + s.encode("latin-1")


def _workbook(encrypted: bool = False, copies: int = 1) -> bytes:
    """A BIFF8 workbook with one sheet; `copies` BOUNDSHEET records all name that sheet's BOF."""
    long_cjk = "关于开展保密检查的通知" * 30  # split over a CONTINUE record below
    sst_strings = ["秘密★", long_cjk, "plain ascii", "未引用的字符串"]
    sst = struct.pack("<II", 10, len(sst_strings))
    for s in sst_strings:
        sst += xl_str(s, wide=not s.isascii())
    cut = sst.index("开展".encode("utf-16-le"), 200)  # inside the long string's characters
    first, rest = sst[:cut], sst[cut:]
    sheet_name = "汇总"
    def bound(off: int) -> bytes:
        return rec(0x0085, struct.pack("<IBB", off, 0, 0) + struct.pack("<BB", len(sheet_name), 1)
                   + sheet_name.encode("utf-16-le"))
    globals_ = [rec(0x0809, struct.pack("<HHHHII", 0x0600, 0x0005, 0, 0, 0, 0)), rec(0x0042, struct.pack("<H", 1200))]
    if encrypted:
        globals_.append(rec(0x002F, b"\0" * 54))
    tail = [rec(0x00FC, first), rec(0x003C, b"\x01" + rest), rec(0x000A, b"")]
    size = sum(map(len, globals_)) + copies * len(bound(0)) + sum(map(len, tail))
    sheet = [
        rec(0x0809, struct.pack("<HHHHII", 0x0600, 0x0010, 0, 0, 0, 0)),
        rec(0x0014, xl_str("&L&\"宋体,常规\"&12机密★10年&R第&P页")),
        rec(0x0015, xl_str("&C内部资料 注意保存")),
        rec(0x00FD, struct.pack("<HHHI", 0, 0, 15, 0)),
        rec(0x00FD, struct.pack("<HHHI", 2, 1, 15, 1)),
        rec(0x00FD, struct.pack("<HHHI", 3, 2, 15, 2)),
        rec(0x0204, struct.pack("<HHH", 4, 27, 15) + xl_str("绝密★长期")),
        rec(0x0006, struct.pack("<HHH", 5, 0, 15) + b"\0" * 14),
        rec(0x0207, xl_str("公式结果文本")),
        rec(0x01B6, struct.pack("<HH6sHHI", 0x0212, 0, b"\0" * 6, 6, 16, 0)),
        rec(0x003C, b"\x01" + "文本框内容".encode("utf-16-le") + "。".encode("utf-16-le")),
        rec(0x003C, b"\0" * 16),
        rec(0x000A, b""),
    ]
    return b"".join(globals_) + bound(size) * copies + b"".join(tail) + b"".join(sheet)


def test_excel_cells_sst_continue_headers_textboxes() -> None:
    items = run(OleExtractor(), ole_file({"Workbook": _workbook()}))
    cells = {s.member: s for s in segments(items) if s.role == "cell"}
    assert cells["汇总!A1"].text == "秘密★" and cells["汇总!A1"].standalone and cells["汇总!A1"].index == 0
    assert cells["汇总!B3"].text == "关于开展保密检查的通知" * 30  # crosses the CONTINUE record
    assert cells["汇总!C4"].text == "plain ascii"
    assert cells["汇总!AB5"].text == "绝密★长期"
    assert cells["汇总!A6"].text == "公式结果文本"
    assert cells["shared strings"].text == "未引用的字符串"
    hf = [(s.role, s.text) for s in segments(items) if s.role in ("header", "footer")]
    assert hf == [("header", "机密★10年"), ("header", "第页"), ("footer", "内部资料 注意保存")]
    assert [s.text for s in segments(items) if s.role == "textbox"] == ["文本框内容。"]
    assert not errors(items)


def test_excel_sheets_sharing_records_are_walked_once() -> None:
    """300 BOUNDSHEET records naming one BOF: each record is read once, not 300 times (a small
    hostile workbook would otherwise cost sheets x records)."""
    items = run(OleExtractor(), ole_file({"Workbook": _workbook(copies=300)}))
    cells = [s.member for s in segments(items) if s.role == "cell" and s.member != "shared strings"]
    assert sorted(cells) == ["汇总!A1", "汇总!A6", "汇总!AB5", "汇总!B3", "汇总!C4"]
    assert [s.text for s in segments(items) if s.role == "textbox"] == ["文本框内容。"]


def test_sst_extension_spanning_many_continue_records_is_linear() -> None:
    # A string's extension size is any u32: skipping 32 MB of CONTINUE records recopied what was
    # taken at every record (16 MB: 8 s; 32 MB: about 30 s). Now a join: milliseconds.
    import time

    from scanner.extractors.ole import _parse_sst

    n = 4000
    first = struct.pack("<II", 2, 2) + struct.pack("<HB", 0, 0x04) + struct.pack("<I", n * 8224)
    last = struct.pack("<HB", 2, 0x01) + "机密".encode("utf-16-le")
    t = time.process_time()
    assert _parse_sst([first] + [b"\0" * 8224] * n + [last]) == ["", "机密"]
    assert time.process_time() - t < 3  # previously about 30 s


def test_excel_filepass_is_encrypted() -> None:
    items = run(OleExtractor(), ole_file({"Workbook": _workbook(encrypted=True)}))
    assert [e.error for e in errors(items)] == [ErrorCode.ENCRYPTED]
    assert not [s for s in segments(items) if s.role == "cell"]


def test_excel_header_codes() -> None:
    assert excel_header_parts('&L&"Arial,Bold"&14SECRET&C&D&R&P / &N') == ["SECRET", "/"]
    assert excel_header_parts("&CA && B") == ["A & B"]


def test_cell_names() -> None:
    assert [cell_name(0, 0), cell_name(9, 25), cell_name(0, 26), cell_name(1, 701)] == ["A1", "Z10", "AA1", "ZZ2"]


# ---------------------------------------------------------------------------------- Word

def word_streams(main: str, header_stories: list[str] | None = None, *, encrypted: bool = False,
                 ascii_piece: str = "") -> dict[str, bytes]:
    """WordDocument + 1Table with a two-piece table (UTF-16 and compressed cp1252)."""
    hdr = header_stories or []
    header_doc = "".join(hdr)
    wd = bytearray(0x2000)
    struct.pack_into("<HH", wd, 0, 0xA5EC, 0x00C1)
    struct.pack_into("<H", wd, 0x0A, 0x0200 | (0x0100 if encrypted else 0))
    struct.pack_into("<H", wd, 32, 14)
    struct.pack_into("<H", wd, 62, 22)
    struct.pack_into("<I", wd, 64 + 12, len(main) + len(ascii_piece))  # ccpText
    struct.pack_into("<I", wd, 64 + 20, len(header_doc))  # ccpHdd
    struct.pack_into("<H", wd, 152, 0x5D)
    fc = 154
    utf16 = (main + header_doc).encode("utf-16-le")
    wd[0x800:0x800 + len(utf16)] = utf16
    # piece 1: main text (UTF-16); piece 2: ASCII text (compressed); piece 3: header doc (UTF-16)
    wd[0x1800:0x1800 + len(ascii_piece)] = ascii_piece.encode("cp1252")
    cps = [0, len(main), len(main) + len(ascii_piece), len(main) + len(ascii_piece) + len(header_doc)]
    pcds = [0x800, (0x1800 * 2) | 0x40000000, 0x800 + 2 * len(main)]
    plc = struct.pack(f"<{len(cps)}I", *cps) + b"".join(struct.pack("<HIH", 0, f, 0) for f in pcds)
    clx = b"\x01" + struct.pack("<h", 2) + b"\0\0" + b"\x02" + struct.pack("<I", len(plc)) + plc
    table = bytearray(b"\0" * 64) + clx
    struct.pack_into("<II", wd, fc + 33 * 8, 64, len(clx))
    if hdr:
        starts = [0] * 6
        pos = 0
        for story in hdr:
            starts.append(pos)
            pos += len(story)
        starts.append(pos)
        plcf = struct.pack(f"<{len(starts)}I", *starts)
        struct.pack_into("<II", wd, fc + 11 * 8, len(table), len(plcf))
        table += plcf
    return {"WordDocument": bytes(wd), "1Table": bytes(table)}


MAIN = ("000001\r机密★10年\r特急\r"
        "单元格一\x07秘密\x07\x07"
        "\x13 PAGE \\* MERGEFORMAT \x14第3页\x15 正文\x0b第二行\r"
        "见\x13 HYPERLINK \"http://x\" \x13 SEQ \x14内层\x15\x14链接文字\x15。\r")
HEADERS = ["", "秘密★5年\r", "", "- 1 -\r", "", ""]


def test_word_paragraphs_cells_fields_and_pieces() -> None:
    items = run(OleExtractor(), ole_file(word_streams(MAIN, HEADERS, ascii_piece="TOP SECRET//NOFORN\r")))
    body = [(s.role, s.text, s.index) for s in segments(items) if s.member is None]
    assert body == [("body", "000001", 0), ("body", "机密★10年", 1), ("body", "特急", 2),
                    ("cell", "单元格一", 3), ("cell", "秘密", 4),
                    ("body", "第3页 正文\n第二行", 5), ("body", "见链接文字。", 6),
                    ("body", "TOP SECRET//NOFORN", 7)]
    assert all(s.standalone for s in segments(items))
    groups = by_member(items)
    assert [(s.role, s.text) for s in groups["header 1"]] == [("header", "秘密★5年")]
    assert [(s.role, s.text) for s in groups["footer 1"]] == [("footer", "- 1 -")]
    assert not errors(items)


def test_wps_document_uses_the_same_reader() -> None:
    items = run(OleExtractor(), ole_file({**word_streams("绝密★2046年7月3日\r正文\r"), **summary_streams()}))
    assert segments(items)[0].role == "property"
    assert "绝密★2046年7月3日" in [s.text for s in segments(items) if s.role == "body"]


def test_word_encrypted_flag() -> None:
    items = run(OleExtractor(), ole_file(word_streams("机密★1年\r", encrypted=True)))
    assert [e.error for e in errors(items)] == [ErrorCode.ENCRYPTED]
    assert not [s for s in segments(items) if s.role == "body"]


def test_word_broken_piece_table_recovers_text() -> None:
    streams = word_streams("000001\r机密★10年\r关于开展工作的通知\r")
    streams["1Table"] = b"\xff" * 200  # Clx destroyed
    items = run(OleExtractor(), ole_file(streams))
    assert any("机密★10年" in s.text for s in segments(items))
    [err] = errors(items)
    assert err.error is ErrorCode.CORRUPT and "recovered heuristically" in err.detail


def test_word_missing_table_stream() -> None:
    streams = word_streams("机密★10年\r")
    del streams["1Table"]
    items = run(OleExtractor(), ole_file(streams))
    assert errors(items)[0].error is ErrorCode.CORRUPT
    assert any("机密★10年" in s.text for s in segments(items))


def _pieces_pointing_at_one_text(main: str, n: int) -> dict[str, bytes]:
    """`word_streams(main)` with its piece table replaced by `n` pieces that all point at the
    main text: a fuzzer-found shape (CI, 2026-12-06) that multiplied a small file's text."""
    streams = word_streams(main)
    wd, table = bytearray(streams["WordDocument"]), bytearray(streams["1Table"])
    cps = [len(main) * k for k in range(n + 1)]
    plc = struct.pack(f"<{n + 1}I", *cps) + struct.pack("<HIH", 0, 0x800, 0) * n
    clx = b"\x02" + struct.pack("<I", len(plc)) + plc
    struct.pack_into("<II", wd, 154 + 33 * 8, len(table), len(clx))
    struct.pack_into("<I", wd, 64 + 12, cps[-1])  # ccpText
    return {"WordDocument": bytes(wd), "1Table": bytes(table + clx)}


def test_overlapping_pieces_are_corrupt_not_multiplied() -> None:
    """Pieces that cover the same bytes again are a damaged table: the text is recovered once,
    heuristically, with a `corrupt` error, not n copies of the stream."""
    main = "机密★10年\r" + "关于开展保密检查的通知\x13 PAGE \x141\x15\r" * 20
    streams = _pieces_pointing_at_one_text(main, 500)
    items = run(OleExtractor(), ole_file(streams))
    [err] = errors(items)
    assert err.error is ErrorCode.CORRUPT and "pieces cover more" in err.detail
    body = [s.text for s in segments(items) if s.role == "body"]
    assert any("机密★10年" in t for t in body)
    assert sum(map(len, body)) <= len(streams["WordDocument"])
    # the same table with the pieces in sequence (each its own copy of the text) is read whole
    ok = _pieces_pointing_at_one_text(main, 1)
    assert not errors(run(OleExtractor(), ole_file(ok)))


def test_header_entries_pointing_back_are_read_once() -> None:
    streams = word_streams(MAIN, HEADERS)
    wd, table = bytearray(streams["WordDocument"]), bytearray(streams["1Table"])
    story = "".join(HEADERS)
    plcf = [0] * 6 + [0, len(story)] * 400 + [len(story)]  # every header entry: the whole story
    blob = struct.pack(f"<{len(plcf)}I", *plcf)
    struct.pack_into("<II", wd, 154 + 11 * 8, len(table), len(blob))
    items = run(OleExtractor(), ole_file({"WordDocument": bytes(wd), "1Table": bytes(table + blob)}))
    hf = [s.text for s in segments(items) if s.role in ("header", "footer")]
    assert hf == ["秘密★5年", "- 1 -"]


def _sharing_sectors(copies: int, pad: int) -> bytes:
    """A compound file with a Word document whose WordDocument stream is `pad` bytes long, and
    `copies` embedded storages whose WordDocument and 1Table entries all point at that
    document's sectors: small on disk, `copies` times larger to read."""
    import olefile

    main = word_streams("正文\r")
    main["WordDocument"] += b"\0" * pad
    pool = {f"_{i}": {"WordDocument": b"", "1Table": b""} for i in range(copies)}
    data = bytearray(ole_file({**main, "ObjectPool": pool}))
    ole = olefile.OleFileIO(bytes(data))
    first_dir = struct.unpack_from("<I", data, 48)[0]
    target = {e.name: (e.isectStart, e.size) for e in ole.direntries[:4] if e is not None}
    for sid, e in enumerate(ole.direntries):
        if e is not None and e.name in ("WordDocument", "1Table") and sid > 3:
            struct.pack_into("<IQ", data, 512 + 512 * first_dir + 128 * sid + 116, *target[e.name])
    return bytes(data)


def test_streams_sharing_sectors_are_charged_to_the_budget() -> None:
    """Reads beyond the file's own size count like inflated bytes: past the budget the reader
    stops with a `bomb` error, instead of reading the same sectors again and again."""
    data = _sharing_sectors(40, 200_000)
    items = run(OleExtractor(), data, ctx(Limits(max_total_size=2_000_000)))
    assert [e.error for e in errors(items)] == [ErrorCode.BOMB]
    read = {s.member for s in segments(items)}
    assert 5 < len(read) < 20, read  # ~9 copies of 216 KB fit in 2 MB, beyond the file's 550 KB
    assert len(by_member(run(OleExtractor(), data))) == 41  # the default budget reads them all


def test_reading_a_file_once_costs_no_budget() -> None:
    """A file's own streams (their sum is at most its size) are not decompression: a budget
    smaller than the file does not stop it (a member's bytes were charged by its container)."""
    pool = {f"_{i}": word_streams(f"机密★{i}年\r") for i in range(40)}
    data = ole_file({**word_streams("正文\r"), "ObjectPool": pool})
    items = run(OleExtractor(), data, ctx(Limits(max_total_size=len(data) // 10)))
    assert not errors(items)
    assert len(by_member(items)) == 41


def test_declared_size_beyond_the_file_with_a_looping_chain() -> None:
    """A WordDocument entry declaring 200 MB whose sector chain loops back to its start: olefile
    only logs the size as a defect and reads that many sectors round the loop (a fuzzer's 24 KB
    file reached 6 GB). The size is clamped to the file's, so the stream is at most the file."""
    import tracemalloc

    import olefile

    data = bytearray(ole_file(word_streams("机密★10年\r关于开展保密检查的通知\r")))
    ole = olefile.OleFileIO(bytes(data))
    sid = next(i for i, e in enumerate(ole.direntries) if e is not None and e.name == "WordDocument")
    entry = ole.direntries[sid]
    chain, sect = [], entry.isectStart
    while sect < len(ole.fat) and len(chain) < 100:
        chain.append(sect)
        sect = ole.fat[sect]
    first_dir, first_fat = struct.unpack_from("<I", data, 48)[0], struct.unpack_from("<I", data, 76)[0]
    struct.pack_into("<I", data, 512 + 512 * first_fat + 4 * chain[-1], chain[0])  # the loop
    struct.pack_into("<Q", data, 512 + 512 * first_dir + 128 * sid + 120, 200_000_000)
    tracemalloc.start()
    try:
        items = run(OleExtractor(), bytes(data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert any(s.text == "机密★10年" for s in segments(items))
    assert peak < 40 * len(data), (peak, len(data))


def test_directory_loop_is_reported_not_skipped() -> None:
    """A fuzzer-made workbook (kept as a regression input) whose directory tree loops back to the
    root: olefile's listing recurses until RecursionError. Embedded objects used to be skipped
    without a word; the cells are read and an error says what was not."""
    from pathlib import Path

    data = (Path(__file__).parents[2] / "fuzz/regressions/ole/recursion-directory-loop.xls").read_bytes()
    items = run(OleExtractor(), data)
    assert any(s.text == "机密★7年" for s in segments(items))
    assert any(e.error is ErrorCode.CORRUPT and "embedded objects not read" in e.detail
               and "RecursionError" in e.detail for e in errors(items))


def _strip_fields_per_char(text: str) -> str:
    """The rule, character by character, as the reference: a character is kept when no open field
    is still in its instructions (0x13 opens one, 0x14 turns the innermost to its result, 0x15
    closes it); the marks themselves are never kept."""
    fields: list[str] = []  # "i" instructions / "r" result, innermost last
    kept = []
    for ch in text:
        if ch not in "\x13\x14\x15":
            if "i" not in fields:
                kept.append(ch)
        elif ch == "\x13":
            fields.append("i")
        elif fields:
            fields[-1:] = ["r"] if ch == "\x14" else []
    return "".join(kept).translate(_DROP)


def test_strip_fields_equals_the_per_character_reference() -> None:
    rng = random.Random(17)
    alphabet = "\x13\x14\x15ab密★\r\x07\x01 "
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert strip_fields(text) == _strip_fields_per_char(text), repr(text)


def test_strip_fields_memory_is_linear_in_bytes() -> None:
    """A field mark once made every later character its own list entry (~80 bytes each for CJK):
    a fuzzer-found 24 KB file reached 2.7 GB. Peak allocation must stay a few times the text."""
    import sys
    import tracemalloc

    text = "\x13 PAGE \x141\x15" + "关于开展保密检查的通知。" * 20_000
    tracemalloc.start()
    try:
        strip_fields(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * sys.getsizeof(text), (peak, sys.getsizeof(text))


def test_strip_fields_nested() -> None:
    assert strip_fields("a\x13 IF \x13 PAGE \x141\x15 = 1 \x14yes\x15b") == "ayesb"
    assert strip_fields("x\x13 TOC \x15y") == "xy"  # field without a result
    assert strip_fields("\x14\x15stray") == "stray"


# ---------------------------------------------------------------------------- PowerPoint

def prec(typ: int, payload: bytes, inst: int = 0, container: bool = False) -> bytes:
    return struct.pack("<HHI", (0xF if container else 0) | (inst << 4), typ, len(payload)) + payload


def text_block(kind: int, text: str, wide: bool = True) -> bytes:
    atom = prec(0x0FA0, text.encode("utf-16-le")) if wide else prec(0x0FA8, text.encode("latin-1"))
    return prec(0x0F9F, struct.pack("<I", kind)) + atom


def ppt_stream(encrypted: bool = False) -> bytes:
    persist = prec(0x03F3, b"\0" * 20)
    slwt = prec(0x0FF0, persist + text_block(0, "机密★2年") + text_block(1, "SECRET//NOFORN\rsecond line", wide=False)
                + persist + text_block(6, "第二张") + text_block(1, "正文一\r正文二"), container=True)
    notes_list = prec(0x0FF0, persist + text_block(2, "备注：秘密★"), inst=2, container=True)
    hf = prec(0x0FD9, prec(0x0FDA, b"\0" * 4) + prec(0x0FBA, "内部资料 注意保存".encode("utf-16-le"), inst=2), container=True)
    doc = prec(0x03E8, prec(0x03E9, b"\0" * 40) + slwt + notes_list + hf, container=True)
    textbox = prec(0xF00D, text_block(4, "文本框：绝密★长期"), container=True)
    drawing = prec(0x040C, prec(0xF002, prec(0xF003, prec(0xF004, textbox, container=True), container=True),
                                container=True), container=True)
    slide = prec(0x03EE, prec(0x03EF, b"\0" * 24) + drawing, container=True)
    crypt = prec(0x2F14, b"\0" * 16, container=True) if encrypted else b""
    return doc + slide + crypt


def test_powerpoint_slides_titles_notes_footers_textboxes() -> None:
    items = run(OleExtractor(), ole_file({"PowerPoint Document": ppt_stream(), "Current User": b"\0" * 20}))
    groups = by_member(items)
    assert [(s.role, s.text, s.index) for s in groups["slide 1"]][:3] == [
        ("title", "机密★2年", 0), ("body", "SECRET//NOFORN", 1), ("body", "second line", 2)]
    assert [(s.role, s.text) for s in groups["slide 2"]] == [("title", "第二张"), ("body", "正文一"), ("body", "正文二")]
    assert [(s.role, s.text) for s in groups["notes 1"]] == [("note", "备注：秘密★")]
    assert [(s.role, s.text) for s in groups["footer"]] == [("footer", "内部资料 注意保存")]
    # the text box of the first Slide container
    assert ("body", "文本框：绝密★长期") in [(s.role, s.text) for s in groups["slide 1"]]
    assert all(s.standalone for s in segments(items))


def test_powerpoint_encrypted() -> None:
    items = run(OleExtractor(), ole_file({"PowerPoint Document": ppt_stream(encrypted=True)}))
    assert errors(items)[-1].error is ErrorCode.ENCRYPTED


def test_powerpoint_truncated_records_do_not_crash() -> None:
    stream = ppt_stream()
    for cut in range(0, len(stream), 7):
        for item in run(OleExtractor(), ole_file({"PowerPoint Document": stream[:cut]})):
            assert isinstance(item, (Segment, ScanError))


# ---------------------------------------------------------------------------- Outlook .msg

def u16(s: str) -> bytes:
    return s.encode("utf-16-le")


def msg_file() -> bytes:
    inner = {"__substg1.0_0037001F": u16("秘密★5年 内部转发"), "__substg1.0_1000001F": u16("内层正文"),
             "__properties_version1.0": b"\0" * 24,
             "__attach_version1.0_#00000000": {"__substg1.0_3707001F": u16("内层附件.txt"),
                                               "__substg1.0_37010102": "机密★1年\n".encode()}}
    return ole_file({
        "__substg1.0_0037001F": u16("绝密★长期 关于工作的通知"),
        "__substg1.0_1000001F": u16("各单位：\r\n现将有关事项通知如下。"),
        "__substg1.0_007D001F": u16("Received: x\r\nX-Classification: =?utf-8?B?5py65a+G?=\r\nSubject: s\r\n"),
        "__properties_version1.0": b"\0" * 32,
        "__attach_version1.0_#00000000": {"__substg1.0_3707001F": u16("通知.docx"),
                                          "__substg1.0_37010102": b"PK\x03\x04docx-bytes"},
        "__attach_version1.0_#00000001": {"__substg1.0_3001001F": u16("转发"),
                                          "__substg1.0_3701000D": inner},
    })


def test_msg_subject_body_attachments_and_embedded_message() -> None:
    items = run(OleExtractor(), msg_file())
    groups = by_member(items)
    [subj] = groups["subject"]
    assert (subj.role, subj.text, subj.standalone) == ("subject", "绝密★长期 关于工作的通知", True)
    assert groups["body"][0].text.startswith("各单位") and not groups["body"][0].standalone
    assert [(s.key, s.text) for s in segments(items) if s.role == "property"] == [("X-Classification", "机密")]
    assert groups["转发.msg!subject"][0].text == "秘密★5年 内部转发"
    got = {m.name: m.data for m in members(items)}
    assert got["通知.docx"].startswith(b"PK\x03\x04docx-bytes")
    assert got["转发.msg!内层附件.txt"].startswith("机密★1年\n".encode())


def test_msg_rtf_body_when_no_plain_body() -> None:
    rtf = bytes.fromhex("2d0000002b0000004c5a4675f1c5c7a703000a007263706731323542320af32068656c09002062"
                        "7705b06c647d0a800fa0")
    data = ole_file({"__substg1.0_0037001F": u16("s"), "__properties_version1.0": b"\0" * 32,
                     "__substg1.0_10090102": rtf})
    [m] = members(run(OleExtractor(), data))
    assert m.name == "body.rtf" and m.data == b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n"


def test_decompress_rtf_uncompressed_form() -> None:
    body = b"{\\rtf1 plain}"
    assert decompress_rtf(struct.pack("<III", len(body) + 12, len(body), 0x414C454D) + b"\0" * 4 + body) == body


# ------------------------------------------------------------------------ other containers

def test_encrypted_ooxml_in_ole2() -> None:
    data = ole_file({"EncryptionInfo": b"\x04\x00\x04\x00" + b"\0" * 100, "EncryptedPackage": b"\0" * 500})
    assert [e.error for e in errors(run(OleExtractor(), data))] == [ErrorCode.ENCRYPTED]


def test_hostile_encrypted_docx() -> None:
    items = run(OleExtractor(), hostile_file("encrypted.docx"))
    assert [e.error for e in errors(items)] == [ErrorCode.ENCRYPTED]


def test_embedded_package_is_a_member() -> None:
    data = ole_file({**word_streams("正文\r"), "ObjectPool": {"_1234": {"Package": b"PK\x03\x04embedded"}}})
    [m] = members(run(OleExtractor(), data))
    assert m.name == "ObjectPool/_1234/package" and m.data.startswith(b"PK\x03\x04embedded")


def test_embedded_ole_documents_are_read_in_place() -> None:
    data = ole_file({**word_streams("正文\r"),
                     "ObjectPool": {"_1234": {**word_streams("机密★3年\r"), "\x01CompObj": b"\0" * 8}},
                     "MBD0001": {"Workbook": _workbook()}})
    groups = by_member(run(OleExtractor(), data))
    assert [s.text for s in groups[None]] == ["正文"]
    assert [s.text for s in groups["ObjectPool/_1234"]] == ["机密★3年"]
    assert groups["MBD0001!汇总!A1"][0].text == "秘密★"


def test_unknown_ole_type_yields_utf16_text() -> None:
    data = ole_file({"VisioDocument": b"\x01\x02" + u16("机密★3年 图纸说明") + b"\0\0\xff"})
    assert any("机密★3年" in s.text for s in segments(run(OleExtractor(), data)))


def test_sniff() -> None:
    data = ole_file({"x": b"1"})
    assert OleExtractor.sniff(data, "application/octet-stream")
    assert not OleExtractor.sniff(b"PK\x03\x04", "application/zip")


def test_damaged_ole_never_raises() -> None:
    rnd = random.Random(5)
    sources = [ole_file(word_streams(MAIN, HEADERS)), ole_file({"Workbook": _workbook(), **summary_streams()}),
               msg_file()]
    for src in sources:
        for _ in range(60):
            buf = bytearray(src[: rnd.randint(1, len(src))] if rnd.random() < 0.3 else src)
            for _ in range(rnd.randint(1, 20)):
                buf[rnd.randrange(len(buf))] = rnd.randrange(256)
            for item in run(OleExtractor(), bytes(buf)):
                assert isinstance(item, (Segment, Member, ScanError))


def test_not_ole_is_corrupt() -> None:
    [err] = errors(run(OleExtractor(), bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 100))
    assert err.error is ErrorCode.CORRUPT


# ---------------------------------------------------------------------------------- corpus

@pytest.mark.corpus
@pytest.mark.parametrize("rel,text,role", [
    ("P-legacy/p-legacy-0100.doc", "机密★长期", "body"), ("P-legacy/p-legacy-0101.xls", "秘密★", "cell"),
    ("P-legacy/p-legacy-0102.ppt", "机密★2年", "title"), ("P-legacy/p-legacy-0103.wps", "绝密★2046年7月3日", "body"),
    ("P-legacy/p-legacy-0104.et", "机密★7年", "cell"), ("P-legacy/p-legacy-0105.dps", "机密★8年", "title")])
def test_corpus_legacy(rel: str, text: str, role: str) -> None:
    items = run(OleExtractor(), corpus_file(rel))
    assert any(s.text == text and s.role == role and s.standalone for s in segments(items))
    assert not errors(items)


@pytest.mark.corpus
def test_corpus_doc_with_encrypted_flag_set(tmp_path: object) -> None:
    import olefile

    raw = corpus_file("P-legacy/p-legacy-0100.doc")
    ole = olefile.OleFileIO(io.BytesIO(raw), write_mode=True)
    wd = bytearray(ole.openstream("WordDocument").read())
    wd[0x0B] |= 0x01  # fEncrypted: bit 8 of the little-endian flags word at 0x0A
    ole.write_stream("WordDocument", bytes(wd))
    patched = ole.fp.getvalue()
    assert [e.error for e in errors(run(OleExtractor(), patched))] == [ErrorCode.ENCRYPTED]
