"""Shared helpers for the binary-format extractor tests: contexts, a tiny recursive driver
standing in for the engine, and paths to the shared corpus."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.extractors.base import Budget, Context, Extractor, Limits
from scanner.model import ExtractItem, Member, ScanError, Segment

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
HOSTILE = SHARED / "hostile"


def ctx(limits: Limits | None = None, *, name: str = "", mime: str = "", member: str | None = None,
        budget: Budget | None = None, depth: int = 0) -> Context:
    lim = limits or Limits()
    return Context(member=member, depth=depth, mime=mime, limits=lim,
                   budget=budget or Budget(lim), name=name)


def run(ex: Extractor, data: bytes, c: Context | None = None) -> list[ExtractItem]:
    return list(ex.extract(data, c or ctx()))


def segments(items: list[ExtractItem]) -> list[Segment]:
    return [i for i in items if isinstance(i, Segment)]


def members(items: list[ExtractItem]) -> list[Member]:
    return [i for i in items if isinstance(i, Member)]


def errors(items: list[ExtractItem]) -> list[ScanError]:
    return [i for i in items if isinstance(i, ScanError)]


def walk(data: bytes, name: str = "", limits: Limits | None = None) -> Iterator[tuple[str | None, ExtractItem]]:
    """Recurse like the engine (content typing by libmagic, shared budget, depth limit), yielding
    (container path, item) for every segment and error; leaves with no extractor are dropped."""
    import magic

    lim = limits or Limits()
    budget = Budget(lim)
    from scanner.extractors.registry import pick

    def rec(blob: bytes, path: str | None, depth: int, fname: str) -> Iterator[tuple[str | None, ExtractItem]]:
        if depth > lim.max_depth:
            from scanner.model import ErrorCode
            yield path, ScanError(ErrorCode.TOO_DEEP, "nesting", path)
            return
        mime = magic.from_buffer(blob[:65536], mime=True)
        ex = pick(blob, mime)
        if ex is None:
            return
        c = Context(member=path, depth=depth, mime=mime, limits=lim, budget=budget, name=fname)
        for item in ex.extract(blob, c):
            if isinstance(item, Member):
                sub = c.sub(item.name)
                yield from rec(item.data, sub, depth + 1, item.name.rsplit("/", 1)[-1])
            else:
                yield path, item

    yield from rec(data, None, 0, name)


def corpus_file(rel: str) -> bytes:
    p = CORPUS / rel
    if not p.exists():
        pytest.skip(f"corpus file {rel} not present (../shared/corpus)")
    return p.read_bytes()


def hostile_file(rel: str) -> bytes:
    p = HOSTILE / rel
    if not p.exists():
        pytest.skip(f"hostile file {rel} not present (../shared/hostile)")
    return p.read_bytes()


# ------------------------------------------------------------------------------ PDF builder

def _pdf_text_string(s: str) -> str:
    return "<FEFF" + s.encode("utf-16-be").hex().upper() + ">"


def _pdf_name(s: str) -> str:
    return "/" + "".join(c if c.isascii() and c.isalnum() else "".join(f"#{b:02X}" for b in c.encode())
                         for c in s)


def minimal_pdf(pages: list[list[tuple[float, float, str]]], *, size: tuple[float, float] = (595.0, 842.0),
                rotate: int = 0, info: dict[str, str] | None = None, font_size: float = 12.0) -> bytes:
    """A PDF whose text uses an embedded Identity-H CID font whose glyph ids have nothing to do
    with the characters, so the text can only be recovered through the ToUnicode CMap (as with
    the subset-embedded CJK fonts that office suites write). A Latin system font stands in for
    the subset: its glyph shapes are irrelevant, their boxes are real. `pages` holds (x, y, text)
    lines in PDF space; `rotate` also turns the text so that it reads upright when displayed."""
    chars = sorted({c for page in pages for _, _, t in page for c in t})
    font_file = _embeddable_font()
    cid = {c: 36 + i for i, c in enumerate(chars)}  # glyph ids with outlines, not Unicode values
    objs: list[bytes] = []

    def add(body: bytes) -> int:
        objs.append(body)
        return len(objs)

    def stream(body: bytes, extra: str = "") -> bytes:
        return f"<< /Length {len(body)} {extra}>>\nstream\n".encode() + body + b"\nendstream"

    bf = []
    items = sorted(cid.items(), key=lambda kv: kv[1])
    for i in range(0, len(items), 100):
        block = items[i:i + 100]
        bf.append(f"{len(block)} beginbfchar\n" + "\n".join(
            f"<{v:04X}> <{ord(c):04X}>" if ord(c) < 0x10000 else
            f"<{v:04X}> <{c.encode('utf-16-be').hex().upper()}>" for c, v in block) + "\nendbfchar")
    cmap = ("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
            "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
            "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n" + "\n".join(bf) +
            "\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n").encode()
    catalog = add(b"")  # 1, filled in below
    pages_id = add(b"")  # 2
    tounicode = add(stream(cmap))
    ff = add(stream(font_file, f"/Length1 {len(font_file)} ")) if font_file else None
    desc = add(b"<< /Type /FontDescriptor /FontName /SimSun /Flags 6 /FontBBox [0 -141 1000 859] "
               b"/ItalicAngle 0 /Ascent 859 /Descent -141 /CapHeight 700 /StemV 80"
               + (f" /FontFile2 {ff} 0 R".encode() if ff else b"") + b" >>")
    cidfont = add(f"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /SimSun /CIDSystemInfo << /Registry "
                  f"(Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor {desc} 0 R /DW 1000 "
                  f"/CIDToGIDMap /Identity >>".encode())
    font = add(f"<< /Type /Font /Subtype /Type0 /BaseFont /SimSun /Encoding /Identity-H /DescendantFonts "
               f"[{cidfont} 0 R] /ToUnicode {tounicode} 0 R >>".encode())
    kids = []
    for lines in pages:
        ops = []
        for x, y, text in lines:
            hexs = "".join(f"{cid[c]:04X}" for c in text)
            matrix = {90: "0 1 -1 0", 180: "-1 0 0 -1", 270: "0 -1 1 0"}.get(rotate, "1 0 0 1")
            ops.append(f"BT /F1 {font_size:g} Tf {matrix} {x:g} {y:g} Tm <{hexs}> Tj ET")
        content = add(stream("\n".join(ops).encode()))
        rot = f" /Rotate {rotate}" if rotate else ""
        kids.append(add(f"<< /Type /Page /Parent {pages_id} 0 R /MediaBox [0 0 {size[0]:g} {size[1]:g}]{rot} "
                        f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {content} 0 R >>".encode()))
    objs[pages_id - 1] = (f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] "
                          f"/Count {len(kids)} >>").encode()
    objs[catalog - 1] = f"<< /Type /Catalog /Pages {pages_id} 0 R >>".encode()
    info_id = None
    if info:
        info_id = add(("<< " + " ".join(f"{_pdf_name(k)} {_pdf_text_string(v)}" for k, v in info.items())
                       + " >>").encode())
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    trailer = f"<< /Size {len(objs) + 1} /Root {catalog} 0 R" + (f" /Info {info_id} 0 R" if info_id else "") + " >>"
    out += f"trailer\n{trailer}\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


_FONT_CANDIDATES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
                    "/usr/share/fonts/TTF/DejaVuSans.ttf", "C:/Windows/Fonts/arial.ttf")


def _embeddable_font() -> bytes | None:
    """A TrueType font to embed (None: the font is left unembedded; PDFium then drops glyphs
    it cannot map, so tests that need embedding skip)."""
    for cand in _FONT_CANDIDATES:
        p = Path(cand)
        if p.exists():
            return p.read_bytes()
    return None


# ------------------------------------------------------------------------------ OLE2 builder

def ole_file(tree: dict[str, object]) -> bytes:
    """A compound file (v3, 512-byte sectors) holding `tree`: name → bytes (a stream) or dict
    (a storage). Streams shorter than 4096 bytes are padded with NULs so that no mini stream is
    needed; the readers under test stop at their own structure's end."""
    import struct as st

    end, free, fatsect = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD
    entries: list[dict[str, object]] = [{"name": "Root Entry", "type": 5, "children": [], "data": b""}]

    def add(parent: int, items: dict[str, object]) -> None:
        for name, value in items.items():
            idx = len(entries)
            if isinstance(value, dict):
                entries.append({"name": name, "type": 1, "children": [], "data": b""})
                add(idx, value)
            else:
                data = bytes(value)  # type: ignore[call-overload]
                if len(data) < 4096:
                    data = data.ljust(4096, b"\0")
                entries.append({"name": name, "type": 2, "children": [], "data": data})
            entries[parent]["children"].append(idx)  # type: ignore[union-attr]

    add(0, tree)
    sectors: list[bytes] = []
    starts: dict[int, int] = {}
    chains: list[tuple[int, int]] = []  # (first sector, count)
    for i, e in enumerate(entries):
        data = e["data"]
        assert isinstance(data, bytes)
        if e["type"] == 2:
            n = (len(data) + 511) // 512
            starts[i] = len(sectors)
            chains.append((len(sectors), n))
            for k in range(n):
                sectors.append(data[512 * k:512 * (k + 1)].ljust(512, b"\0"))
    dir_bytes = bytearray()
    for i, e in enumerate(entries):
        name = str(e["name"]).encode("utf-16-le") + b"\0\0"
        kids = e["children"]
        assert isinstance(kids, list)
        # children: a chain through right-sibling pointers (a valid, if unbalanced, tree)
        child = kids[0] if kids else free
        right = free
        for parent in entries:
            pk = parent["children"]
            assert isinstance(pk, list)
            if i in pk:
                j = pk.index(i)
                right = pk[j + 1] if j + 1 < len(pk) else free
        start = starts.get(i, end)
        size = len(e["data"]) if e["type"] == 2 else 0  # type: ignore[arg-type]
        dir_bytes += (name.ljust(64, b"\0") + st.pack("<HBB", len(name), int(e["type"]), 1)  # type: ignore[call-overload]
                      + st.pack("<III", free, right, child) + b"\0" * 16 + st.pack("<I", 0) + b"\0" * 16
                      + st.pack("<IQ", start, size))
    dir_bytes += b"\0" * ((-len(dir_bytes)) % 512)
    dir_start = len(sectors)
    n_dir = len(dir_bytes) // 512
    for k in range(n_dir):
        sectors.append(bytes(dir_bytes[512 * k:512 * (k + 1)]))
    chains.append((dir_start, n_dir))
    n_data = len(sectors)
    n_fat = 1
    while (n_data + n_fat) > n_fat * 128:
        n_fat += 1
    assert n_fat <= 109
    fat = [free] * (n_fat * 128)
    for first, count in chains:
        for k in range(count):
            fat[first + k] = first + k + 1 if k + 1 < count else end
    for k in range(n_fat):
        fat[n_data + k] = fatsect
    fat_bytes = st.pack(f"<{len(fat)}I", *fat)
    difat = [n_data + k for k in range(n_fat)] + [free] * (109 - n_fat)
    header = (bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 16 + st.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
              + b"\0" * 6 + st.pack("<IIIIIIIII", 0, n_fat, dir_start, 0, 4096, end, 0, end, 0)
              + st.pack("<109I", *difat))
    assert len(header) == 512
    return header + b"".join(sectors) + fat_bytes
