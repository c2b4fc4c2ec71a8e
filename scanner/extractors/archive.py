"""Archives: zip, tar (+gz/bz2/xz), single-file gzip/bz2/xz/lzma and 7z, read in memory.

Every regular member is yielded as a `Member` for the engine to identify and scan recursively;
nothing is ever written to disk, so a member name such as `../../tmp/x` is only a name.

Hostile input is expected. Declared sizes are checked first (cheap), then every member is
decompressed in bounded chunks while the *real* output is metered against the per-member size,
the compression ratio and the budget shared by all nesting levels of the top-level file: a
central directory that lies about sizes cannot bypass the limits, and zip members are inflated
from the raw compressed bytes rather than trusting the declared size (zipfile would silently cut
the data at the declared size, hiding what follows).

Dependency: `py7zr` (LGPL-2.1+, pure Python with small C helpers) for 7z; it can extract into
memory through a writer factory, which lets us meter the output. Deflate64 zip members use
`inflate64`, which py7zr already depends on.
"""
from __future__ import annotations

import bz2
import io
import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator

from scanner.extractors.base import Context, Extractor
from scanner.model import ErrorCode, ExtractItem, Member, ScanError

#: Compressed input fed to a decompressor per call, and the output cap per call.
_IN_CHUNK = 64 * 1024
_OUT_CHUNK = 1024 * 1024
#: The ratio limit only applies once a member is larger than this (small files compress well).
_RATIO_FLOOR = 1024 * 1024
_TAR_BLOCK = 512

_ZIP_LOCAL = b"PK\x03\x04"
_ZIP_EMPTY = b"PK\x05\x06"
_ZIP_SPANNED = b"PK\x07\x08"
_LOCAL_HDR = struct.Struct("<4sHHHHHLLLHH")


class LimitHit(Exception):
    """A limit was hit: carries the error to report."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class Meter:
    """Counts the real decompressed output of one member (or one compressed stream)."""

    def __init__(self, ctx: Context, compressed: int, what: str, *, charge: bool = True,
                 max_size: int | None = None, oversize: ErrorCode = ErrorCode.TOO_LARGE) -> None:
        self.limits = ctx.limits
        self.budget = ctx.budget
        self.compressed = max(compressed, 1)
        self.what = what
        #: Charge the output to the shared budget (not for a tar stream: its members are).
        self.charge = charge
        self.max_size = ctx.limits.max_member_size if max_size is None else max_size
        self.out = 0
        #: What exceeding `max_size` is called (an archive member: too_large).
        self.oversize = oversize

    def add(self, n: int) -> None:
        self.out += n
        lim = self.limits
        ratio = self.out / self.compressed
        if self.out > _RATIO_FLOOR and ratio > lim.max_ratio:
            raise LimitHit(ErrorCode.BOMB, f"{self.what}: expands more than {lim.max_ratio:g}:1 "
                        f"({self.compressed} compressed bytes gave over {self.out})")
        if self.out > self.max_size:
            raise LimitHit(self.oversize, f"{self.what}: larger than {self.max_size} bytes "
                        "decompressed")
        if self.charge and not self.budget.take(n):
            raise LimitHit(ErrorCode.BOMB, f"{self.what}: decompressed data of the file exceeds "
                        f"{lim.max_total_size} bytes in total")

    def check_declared(self, size: int) -> None:
        """Reject on the declared size before spending any time on it."""
        lim = self.limits
        if size > _RATIO_FLOOR and size / self.compressed > lim.max_ratio:
            raise LimitHit(ErrorCode.BOMB, f"{self.what}: declared {size} bytes from "
                        f"{self.compressed} compressed (ratio over {lim.max_ratio:g})")
        if size > self.max_size:
            raise LimitHit(self.oversize, f"{self.what}: declared {size} bytes, limit "
                        f"{self.max_size}")


def inflate_raw(raw: bytes | memoryview, method: int, meter: Meter) -> tuple[bytes, bool]:
    """Decompress one zip member's raw bytes; returns (data, reached the end of the stream)."""
    out: list[bytes] = []
    if method == zipfile.ZIP_STORED:
        meter.add(len(raw))
        return bytes(raw), True
    if method == zipfile.ZIP_DEFLATED:
        d = zlib.decompressobj(-15)
        for pos in range(0, len(raw), _IN_CHUNK):
            buf = raw[pos:pos + _IN_CHUNK]
            while buf:
                piece = d.decompress(buf, _OUT_CHUNK)
                meter.add(len(piece))
                out.append(piece)
                buf = d.unconsumed_tail
                if d.eof:
                    break
            if d.eof:
                break
        if not d.eof:
            tail = d.flush()
            meter.add(len(tail))
            out.append(tail)
        return b"".join(out), d.eof
    if method == zipfile.ZIP_BZIP2:
        return _inflate_bounded(bz2.BZ2Decompressor(), raw, meter)
    if method == zipfile.ZIP_LZMA:
        # zip's LZMA: 2 bytes version, 2 bytes properties size, properties, then raw LZMA1.
        if len(raw) < 4:
            raise LimitHit(ErrorCode.CORRUPT, f"{meter.what}: truncated LZMA header")
        (psize,) = struct.unpack("<H", raw[2:4])
        try:
            filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, bytes(raw[4:4 + psize]))  # type: ignore[attr-defined]
            dec = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])
        except (lzma.LZMAError, ValueError) as exc:
            raise LimitHit(ErrorCode.CORRUPT, f"{meter.what}: bad LZMA properties ({exc})") from None
        data, _ = _inflate_bounded(dec, raw[4 + psize:], meter)
        return data, True  # raw LZMA1 in zip often has no end marker
    if method == 9:  # Deflate64
        try:
            import inflate64
        except ImportError:
            raise LimitHit(ErrorCode.UNSUPPORTED, f"{meter.what}: Deflate64 without inflate64") from None
        inf = inflate64.Inflater()
        for pos in range(0, len(raw), 4096):  # no output cap per call: keep input small
            piece = inf.inflate(raw[pos:pos + 4096])
            meter.add(len(piece))
            out.append(piece)
            if inf.eof:
                break
        return b"".join(out), bool(inf.eof)
    raise LimitHit(ErrorCode.UNSUPPORTED, f"{meter.what}: zip compression method {method}")


def _inflate_bounded(dec: bz2.BZ2Decompressor | lzma.LZMADecompressor, raw: bytes | memoryview,
                     meter: Meter) -> tuple[bytes, bool]:
    """Drive a bz2/lzma decompressor with an output cap per call."""
    out: list[bytes] = []
    pos = 0
    while not dec.eof:
        if dec.needs_input:
            if pos >= len(raw):
                break
            buf = raw[pos:pos + _IN_CHUNK]
            pos += len(buf)
        else:
            buf = b""
        piece = dec.decompress(buf, _OUT_CHUNK)
        meter.add(len(piece))
        out.append(piece)
    return b"".join(out), dec.eof


def _fix_name(name: str, raw: bytes | None = None) -> str:
    """Recover member names stored in GBK/GB18030 (or UTF-8) without the UTF-8 flag."""
    if raw is None:
        try:
            raw = name.encode("cp437")
        except UnicodeEncodeError:
            return name
    if raw.isascii():
        return raw.decode("ascii")
    for enc in ("utf-8", "gb18030", "big5"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return name


def _zip_name(info: zipfile.ZipInfo) -> str:
    """A member's name: UTF-8 when flagged, else the Info-ZIP Unicode Path extra field (0x7075,
    written by 7-Zip and WinRAR beside a GBK name), else the raw bytes decoded by `_fix_name`."""
    if info.flag_bits & 0x800:
        return info.filename
    extra = info.extra
    pos = 0
    while pos + 4 <= len(extra):
        hid, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4:pos + 4 + size]
        if hid == 0x7075 and len(body) > 5 and body[0] == 1:
            try:
                raw = info.filename.encode("cp437")
            except UnicodeEncodeError:
                raw = b""
            if not raw or struct.unpack_from("<I", body, 1)[0] == zlib.crc32(raw):
                try:
                    return body[5:].decode("utf-8")
                except UnicodeDecodeError:
                    pass
        pos += 4 + size
    return _fix_name(info.filename)


def _err(ctx: Context, code: ErrorCode, detail: str, name: str | None = None) -> ScanError:
    return ScanError(code, detail, ctx.sub(name))


# --------------------------------------------------------------------------------------- zip

class ZipExtractor(Extractor):
    """Zip archives (and zips no other extractor claims: a broken docx is read as a zip)."""

    name = "zip"
    mimetypes = ("application/zip", "application/x-zip-compressed", "application/java-archive")
    priority = -10

    @classmethod
    def sniff(cls, data: bytes, mime: str) -> bool:
        return super().sniff(data, mime) or data[:4] in (_ZIP_LOCAL, _ZIP_EMPTY, _ZIP_SPANNED) \
            or (data[:2] == b"MZ" and appended_zip(data))

    def extract(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
            infos = zf.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError,
                struct.error, IndexError, NotImplementedError) as exc:
            if data.startswith(_ZIP_LOCAL):
                yield from _salvage_zip(data, ctx, str(exc))
            else:
                yield _err(ctx, ErrorCode.CORRUPT, f"unreadable zip: {exc}")
            return
        if not infos and not data.startswith(_ZIP_EMPTY) and _ZIP_LOCAL in data[:4096]:
            yield from _salvage_zip(data, ctx, "empty central directory")
            return
        for info in infos:
            if info.filename.endswith("/"):  # `is_dir()` indexes the name: IndexError when empty
                continue
            name = _zip_name(info)
            if not ctx.budget.take_member():
                yield _err(ctx, ErrorCode.BOMB, f"more than {ctx.limits.max_members} members")
                return
            try:
                yield from _zip_member(data, info, name, ctx)
            except LimitHit as stop:
                yield _err(ctx, stop.code, stop.detail, name)
                if ctx.budget.spent:
                    return


_EOCD = struct.Struct("<4s4H2LH")


def appended_zip(data: bytes) -> bool:
    """Is there a whole zip at the end of `data` (a self-extracting archive: an .exe stub with the
    zip after it)? True when the end-of-central-directory record at the tail is preceded by the
    central directory it describes. Bounded: looks at the last 64 KiB only."""
    tail_start = max(0, len(data) - (_EOCD.size + 0xFFFF))
    at = data.rfind(_ZIP_EMPTY, tail_start)
    if at < 0 or at + _EOCD.size > len(data):
        return False
    _sig, _disk, _cd_disk, _n_here, n_total, cd_size, _cd_off, clen = _EOCD.unpack_from(data, at)
    if at + _EOCD.size + clen == len(data) and n_total > 0:
        # A record that ends the file exactly is structural, not a chance byte pattern: the file
        # is claimed even when the record lies (central directory beyond the file, absurd member
        # count), so that it is reported `corrupt` rather than passed as a clean executable.
        return True
    cd_start = at - cd_size
    return n_total > 0 and cd_start > 0 and data[cd_start:cd_start + 4] == b"PK\x01\x02"


def _zip_member(data: bytes, info: zipfile.ZipInfo, name: str, ctx: Context) -> Iterator[ExtractItem]:
    if info.flag_bits & 0x1 or info.compress_type == 99:
        kind = "AES" if info.compress_type == 99 else "ZipCrypto"
        yield _err(ctx, ErrorCode.ENCRYPTED, f"{kind}-encrypted zip member", name)
        return
    start = local_data_start(data, info.header_offset)
    if start is None:
        yield _err(ctx, ErrorCode.CORRUPT, "zip member: local header missing (truncated?)", name)
        return
    raw = data[start:start + info.compress_size]
    meter = Meter(ctx, len(raw), f"zip member {name}")
    meter.check_declared(info.file_size)
    try:
        content, complete = inflate_raw(raw, info.compress_type, meter)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        yield _err(ctx, ErrorCode.CORRUPT, f"zip member: bad compressed data ({exc})", name)
        return
    problems = []
    if len(raw) < info.compress_size:
        problems.append(f"truncated: {len(raw)} of {info.compress_size} compressed bytes")
    elif not complete:
        problems.append("compressed stream ends early")
    if len(content) != info.file_size:
        problems.append(f"declared size {info.file_size}, real {len(content)}")
    elif zlib.crc32(content) != info.CRC:
        problems.append("CRC mismatch")
    yield Member(name, content)
    if problems:
        yield _err(ctx, ErrorCode.CORRUPT, "zip member: " + "; ".join(problems), name)


def local_data_start(data: bytes, header_offset: int) -> int | None:
    """Where a zip member's compressed bytes begin, from its local header (None: no header)."""
    hdr = data[header_offset:header_offset + _LOCAL_HDR.size]
    if len(hdr) < _LOCAL_HDR.size or hdr[:4] != _ZIP_LOCAL:
        return None
    fields = _LOCAL_HDR.unpack(hdr)
    return int(header_offset + _LOCAL_HDR.size + fields[9] + fields[10])


def _salvage_zip(data: bytes, ctx: Context, why: str) -> Iterator[ExtractItem]:
    """No usable central directory (truncated download): walk the local headers instead."""
    pos, found = 0, 0
    view = memoryview(data)  # slices without copying the rest of the file for every member
    while True:
        pos = data.find(_ZIP_LOCAL, pos)
        if pos < 0 or pos + _LOCAL_HDR.size > len(data):
            break
        _, _, flags, method, _, _, _crc, csize, usize, nlen, xlen = _LOCAL_HDR.unpack(
            data[pos:pos + _LOCAL_HDR.size])
        raw_name = data[pos + _LOCAL_HDR.size:pos + _LOCAL_HDR.size + nlen]
        name = raw_name.decode("utf-8", "replace") if flags & 0x800 else _fix_name("", raw_name)
        start = pos + _LOCAL_HDR.size + nlen + xlen
        if start > len(data):
            break
        if name.endswith("/"):
            pos = start
            continue
        found += 1
        if not ctx.budget.take_member():
            yield _err(ctx, ErrorCode.BOMB, f"more than {ctx.limits.max_members} members")
            return
        if flags & 0x1 or method == 99:
            yield _err(ctx, ErrorCode.ENCRYPTED, "encrypted zip member", name)
            pos = start + (0 if flags & 0x8 else csize)
            pos = max(pos, start)
            continue
        if flags & 0x8 and method == zipfile.ZIP_STORED:
            nxt = data.find(_ZIP_LOCAL, start)
            raw = view[start:nxt if nxt >= 0 else len(data)]
        elif flags & 0x8:  # size unknown: inflate until the stream ends
            raw = view[start:]
        else:
            raw = view[start:start + csize]
        meter = Meter(ctx, len(raw), f"zip member {name}")
        try:
            content, complete = inflate_raw(raw, method, meter)
        except LimitHit as stop:
            yield _err(ctx, stop.code, stop.detail, name)
            pos = start + 1
            continue
        except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
            yield _err(ctx, ErrorCode.CORRUPT, f"zip member: bad compressed data ({exc})", name)
            pos = start + 1
            continue
        if content:
            yield Member(name, content)
        if not complete or (not flags & 0x8 and len(content) != usize):
            yield _err(ctx, ErrorCode.CORRUPT, "zip member truncated", name)
        pos = start + (len(raw) if not flags & 0x8 or method == zipfile.ZIP_STORED else 1)
    yield _err(ctx, ErrorCode.CORRUPT,
               f"zip without a usable central directory ({why}); {found} member(s) read from local headers")


# ---------------------------------------------------------------------- tar, gzip, bz2, xz

def _gzip_name(data: bytes) -> str | None:
    """FNAME from a gzip header, if any."""
    if len(data) < 10 or data[:2] != b"\x1f\x8b":
        return None
    flags = data[3]
    if not flags & 0x08:
        return None
    pos = 10
    if flags & 0x04:
        if len(data) < 12:
            return None
        pos += 2 + struct.unpack("<H", data[10:12])[0]
    end = data.find(b"\0", pos, pos + 1024)
    if end < 0:
        return None
    return _fix_name("", data[pos:end]).rsplit("/", 1)[-1] or None


def _new_decompressor(kind: str) -> Callable[[], object]:
    if kind == "gz":
        return lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "bz2":
        return bz2.BZ2Decompressor
    if kind == "xz":
        return lzma.LZMADecompressor  # auto-detects .xz and .lzma
    raise ValueError(kind)


class _StreamReader(io.RawIOBase):
    """A read-only stream of decompressed bytes with the output metered.

    Handles concatenated gzip/bz2/xz streams (multi-member files), as gzip(1) does."""

    def __init__(self, raw: bytes, kind: str, meter: Meter) -> None:
        self._raw = raw
        self._pos = 0
        self._start = 0  # where the current stream began
        self._make = _new_decompressor(kind)
        self._dec: object = self._make()
        self._kind = kind
        self._meter = meter
        self._buf = b""
        self.complete = False

    def readable(self) -> bool:
        return True

    def _more(self) -> bytes:
        dec = self._dec
        while True:
            if self._kind == "gz":
                assert isinstance(dec, type(zlib.decompressobj()))
                tail = dec.unconsumed_tail
                if tail:
                    piece = dec.decompress(tail, _OUT_CHUNK)
                elif dec.eof:
                    if not self._next_stream(dec.unused_data):
                        return b""
                    dec = self._dec
                    continue
                elif self._pos >= len(self._raw):
                    return b""
                else:
                    buf = self._raw[self._pos:self._pos + _IN_CHUNK]
                    self._pos += len(buf)
                    piece = dec.decompress(buf, _OUT_CHUNK)
            else:
                assert isinstance(dec, (bz2.BZ2Decompressor, lzma.LZMADecompressor))
                if dec.eof:
                    if not self._next_stream(dec.unused_data):
                        return b""
                    dec = self._dec
                    continue
                if dec.needs_input:
                    if self._pos >= len(self._raw):
                        return b""
                    buf = self._raw[self._pos:self._pos + _IN_CHUNK]
                    self._pos += len(buf)
                else:
                    buf = b""
                piece = dec.decompress(buf, _OUT_CHUNK)
            if piece:
                self._meter.add(len(piece))
                return piece

    def _next_stream(self, unused: bytes) -> bool:
        """After the end of one stream: start the next concatenated one, if any (trailing
        zeros or garbage end the file, as with gzip(1))."""
        self.complete = True
        self._pos -= len(unused)
        if self._pos <= self._start:
            # A stream that ended without consuming input (an .lzma header with a tiny declared
            # size and no data): restarting there would decode the same bytes forever (fuzzing
            # found 88 bytes looping 23,000 times until the bomb meter stopped it).
            return False
        if _compressed_kind(self._raw[self._pos:self._pos + 6]) != self._kind:
            return False
        self._start = self._pos
        self.complete = False
        self._dec = self._make()
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        want = len(b)
        while len(self._buf) < want:
            piece = self._more()
            if not piece:
                break
            self._buf += piece
        n = min(want, len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _peek(raw: bytes, kind: str, n: int) -> bytes:
    """The first `n` decompressed bytes (or fewer), without metering: bounded by `n`."""
    try:
        dec = _new_decompressor(kind)()
        out = b""
        pos = 0
        while len(out) < n and pos < len(raw):
            chunk = raw[pos:pos + 4096]
            pos += len(chunk)
            out += dec.decompress(chunk, n - len(out))  # type: ignore[attr-defined]
        return out
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        return b""


def _is_tar_header(block: bytes) -> bool:
    if len(block) < _TAR_BLOCK:
        return False
    if block[257:262] == b"ustar":
        return True
    try:  # v7 tar: no magic, check the header checksum
        stored = int(block[148:156].replace(b"\0", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    calc = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    return stored == calc and block[0] != 0


def _tar_members(stream: io.BufferedReader | io.BytesIO, ctx: Context) -> Iterator[ExtractItem]:
    with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape") as tf:
        for ti in tf:
            if not ti.isreg():
                continue
            name = _fix_name("", ti.name.encode("utf-8", "surrogateescape"))
            if not ctx.budget.take_member():
                yield _err(ctx, ErrorCode.BOMB, f"more than {ctx.limits.max_members} members")
                return
            if ti.size > ctx.limits.max_member_size:
                yield _err(ctx, ErrorCode.TOO_LARGE,
                           f"tar member: {ti.size} bytes, limit {ctx.limits.max_member_size}", name)
                continue
            if not ctx.budget.take(ti.size):
                raise LimitHit(ErrorCode.BOMB, f"decompressed data of the file exceeds "
                            f"{ctx.limits.max_total_size} bytes in total")
            f = tf.extractfile(ti)
            if f is None:
                continue
            content = f.read()
            yield Member(name, content)
            if len(content) < ti.size:
                yield _err(ctx, ErrorCode.CORRUPT, "tar member truncated", name)


class TarExtractor(Extractor):
    """Uncompressed tar."""

    name = "tar"
    mimetypes = ("application/x-tar", "application/x-gtar", "application/x-ustar")
    priority = -10

    @classmethod
    def sniff(cls, data: bytes, mime: str) -> bool:
        return super().sniff(data, mime) or data[257:262] == b"ustar"

    def extract(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        try:
            yield from _tar_members(io.BytesIO(data), ctx)
        except LimitHit as stop:
            yield _err(ctx, stop.code, stop.detail)
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            yield _err(ctx, ErrorCode.CORRUPT, f"bad tar: {exc}")


_MAGIC_KIND = {b"\x1f\x8b": "gz", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz"}


def _compressed_kind(data: bytes) -> str | None:
    for magic, kind in _MAGIC_KIND.items():
        if data.startswith(magic):
            return kind
    if data[:1] == b"\x5d" and data[1:5] in (b"\x00\x00\x80\x00", b"\x00\x00\x00\x01",
                                            b"\x00\x00\x00\x02", b"\x00\x00\x00\x04",
                                            b"\x00\x00\x00\x08", b"\x00\x00\x10\x00"):
        return "xz"  # legacy .lzma (LZMA_Alone); LZMADecompressor auto-detects it
    return None


class CompressedExtractor(Extractor):
    """gzip, bzip2, xz and lzma streams: a compressed tar is read as a tar, streaming; any
    other content is yielded as one member (named from the gzip header or the outer name)."""

    name = "compressed"
    mimetypes = ("application/gzip", "application/x-gzip", "application/x-bzip2",
                 "application/x-xz", "application/x-lzma")
    priority = -10

    @classmethod
    def sniff(cls, data: bytes, mime: str) -> bool:
        return _compressed_kind(data) is not None and (
            super().sniff(data, mime) or not data.startswith(b"\x5d"))

    def extract(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        kind = _compressed_kind(data)
        if kind is None:
            yield _err(ctx, ErrorCode.CORRUPT, "not a gzip/bzip2/xz stream")
            return
        head = _peek(data, kind, _TAR_BLOCK)
        is_tar = _is_tar_header(head)
        # A tar's members are charged to the budget and size-checked one by one as they are
        # read; the stream itself is metered for its ratio (skipped data is decompressed too).
        meter = Meter(ctx, len(data), f"{kind} stream", charge=not is_tar,
                       max_size=ctx.limits.max_total_size if is_tar else None)
        reader = _StreamReader(data, kind, meter)
        try:
            if is_tar:
                yield from _tar_members(io.BufferedReader(reader, _OUT_CHUNK), ctx)
            else:
                content = reader.read()
                if not reader.complete:
                    yield _err(ctx, ErrorCode.CORRUPT, f"{kind} stream truncated")
                yield Member(self._inner_name(data, kind, ctx), content)
        except LimitHit as stop:
            yield _err(ctx, stop.code, stop.detail)
        except (tarfile.TarError, zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as exc:
            yield _err(ctx, ErrorCode.CORRUPT, f"bad {kind} data: {exc}")

    @staticmethod
    def _inner_name(data: bytes, kind: str, ctx: Context) -> str:
        if kind == "gz":
            name = _gzip_name(data)
            if name:
                return name
        outer = ctx.name or ""
        for suffix in (".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz", ".lzma", ".z"):
            if outer.lower().endswith(suffix) and len(outer) > len(suffix):
                inner = outer[: -len(suffix)]
                return inner + ".tar" if suffix.startswith(".t") else inner
        return outer + ".out" if outer else "content"


# ---------------------------------------------------------------------------------------- 7z

class SevenZipExtractor(Extractor):
    """7z archives, extracted into memory through a metered writer factory."""

    name = "7z"
    mimetypes = ("application/x-7z-compressed",)
    priority = -10

    @classmethod
    def sniff(cls, data: bytes, mime: str) -> bool:
        return super().sniff(data, mime) or data.startswith(b"7z\xbc\xaf\x27\x1c")

    def extract(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        try:
            import py7zr
            from py7zr.exceptions import ArchiveError, PasswordRequired
        except ImportError:  # pragma: no cover - declared dependency
            yield _err(ctx, ErrorCode.UNSUPPORTED, "7z: py7zr is not installed")
            return
        try:
            with py7zr.SevenZipFile(io.BytesIO(data), mode="r") as sz:
                if "7zAES" in sz._get_method_names():
                    yield _err(ctx, ErrorCode.ENCRYPTED, "AES-encrypted 7z")
                    return
                yield from _sevenzip_members(sz, data, ctx)
        except PasswordRequired:
            yield _err(ctx, ErrorCode.ENCRYPTED, "7z with encrypted headers")
        except LimitHit as stop:
            yield _err(ctx, stop.code, stop.detail)
        except (ArchiveError, lzma.LZMAError, zlib.error, OSError, EOFError, ValueError,
                KeyError, IndexError, TypeError, AttributeError, struct.error) as exc:
            text = str(exc) or type(exc).__name__
            if "password" in text.lower():
                yield _err(ctx, ErrorCode.ENCRYPTED, f"encrypted 7z ({text})")
            else:
                yield _err(ctx, ErrorCode.CORRUPT, f"bad 7z: {text}")


def _sevenzip_members(sz: object, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
    import py7zr
    from py7zr.io import Py7zIO, WriterFactory

    assert isinstance(sz, py7zr.SevenZipFile)
    files = [f for f in sz.files if f.is_file and not f.is_directory]
    # Names become opaque keys so that py7zr's path sanitising (which rejects `../x`) never
    # sees them; the real names are kept for the members we yield.
    names: dict[str, str] = {}
    declared = 0
    for i, f in enumerate(sz.files):
        key = f"m{i}"
        names[key] = f.filename or key
        f._file_info["filename"] = key
    for f in files:
        size = f.uncompressed or 0
        declared += size
        if size > ctx.limits.max_member_size:
            raise LimitHit(ErrorCode.TOO_LARGE, f"7z member declared {size} bytes")
    stream = Meter(ctx, len(data), "7z archive", charge=False, max_size=ctx.limits.max_total_size)
    stream.check_declared(declared)
    for _ in files:
        if not ctx.budget.take_member():
            raise LimitHit(ErrorCode.BOMB, f"more than {ctx.limits.max_members} members")

    class _Writer(Py7zIO):
        def __init__(self, key: str) -> None:
            self.key = key
            self.buf = io.BytesIO()
            self.meter = Meter(ctx, len(data), f"7z member {names.get(key, key)}")

        def write(self, s: bytes | bytearray) -> int:
            stream.add(len(s))
            self.meter.add(len(s))
            return self.buf.write(s)

        def read(self, size: int | None = None) -> bytes:
            return self.buf.read(size)

        def seek(self, offset: int, whence: int = 0) -> int:
            return self.buf.seek(offset, whence)

        def flush(self) -> None:
            pass

        def size(self) -> int:
            return self.buf.getbuffer().nbytes

    writers: dict[str, _Writer] = {}

    class _Factory(WriterFactory):
        def create(self, filename: str) -> Py7zIO:
            w = _Writer(filename)
            writers[filename] = w
            return w

    sz.extractall(factory=_Factory())
    for key, w in writers.items():
        yield Member(names.get(key, key), w.buf.getvalue())


# ------------------------------------------------------------------------------ unsupported

class UnreadableArchiveExtractor(Extractor):
    """Archive formats with no reader here: reported, never silently clean."""

    name = "archive-unsupported"
    mimetypes = ("application/x-rar", "application/vnd.rar", "application/x-rar-compressed",
                 "application/vnd.ms-cab-compressed", "application/x-arj", "application/x-lzh-compressed",
                 "application/x-ace-compressed", "application/x-compress")
    priority = -20

    def extract(self, data: bytes, ctx: Context) -> Iterator[ExtractItem]:
        yield _err(ctx, ErrorCode.UNSUPPORTED, f"archive type {ctx.mime} is not read")
