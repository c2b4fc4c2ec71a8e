"""Archive extractor: zip, tar(+gz/bz2/xz), single compressed files, 7z, and hostile input."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import random
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest
from _bin_fixtures import corpus_file, ctx, errors, hostile_file, members, run, walk

from scanner.extractors.archive import (
    CompressedExtractor,
    SevenZipExtractor,
    TarExtractor,
    UnreadableArchiveExtractor,
    ZipExtractor,
)
from scanner.extractors.base import Budget, Limits
from scanner.model import ErrorCode, Member, ScanError

MARKED = "000001\n机密★10年\n特急\n关于开展专项工作的通知\n".encode()
SMALL = Limits(max_member_size=8 << 20, max_total_size=16 << 20, max_ratio=50.0, max_members=100)


def make_zip(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def gbk_name_zip(name: str, data: bytes) -> bytes:
    """A zip whose member name is GBK bytes without the UTF-8 flag (as Windows zip tools write)."""
    placeholder = "X" * len(name.encode("gbk"))
    raw = make_zip({placeholder: data})
    assert raw.count(placeholder.encode()) == 2  # local header + central directory
    return raw.replace(placeholder.encode(), name.encode("gbk"))


# --------------------------------------------------------------------------------- zip basics

def test_zip_members_in_order_with_paths() -> None:
    data = make_zip({"a/通知.txt": MARKED, "b/c.bin": b"\0\1\2", "empty.txt": b""})
    items = run(ZipExtractor(), data)
    assert [(m.name, m.data) for m in members(items)] == [
        ("a/通知.txt", MARKED), ("b/c.bin", b"\0\1\2"), ("empty.txt", b"")]
    assert not errors(items)


def test_zip_directories_are_not_members() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("dir/", b"")
        z.writestr("dir/x.txt", b"x")
    assert [m.name for m in members(run(ZipExtractor(), buf.getvalue()))] == ["dir/x.txt"]


def test_zip_member_with_an_empty_name_is_no_exception() -> None:
    # ZipInfo.is_dir() indexes the name's last character: IndexError on an empty name (a fuzz
    # corpus input), which made the whole archive an error record, none of its members read.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo(""), b"abc")
        z.writestr("b.txt", MARKED)
    assert [(m.name, m.data) for m in members(run(ZipExtractor(), buf.getvalue()))] == [("", b"abc"), ("b.txt", MARKED)]


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                    zipfile.ZIP_LZMA])
def test_zip_compression_methods(method: int) -> None:
    payload = MARKED * 50
    items = run(ZipExtractor(), make_zip({"x.txt": payload}, method))
    assert members(items) == [Member("x.txt", payload)]
    assert not errors(items)


def test_zip_gbk_member_name_without_utf8_flag() -> None:
    data = gbk_name_zip("机密文件/关于工作的通知.txt", MARKED)
    assert zipfile.ZipFile(io.BytesIO(data)).namelist()[0] != "机密文件/关于工作的通知.txt"  # cp437 mojibake
    assert [m.name for m in members(run(ZipExtractor(), data))] == ["机密文件/关于工作的通知.txt"]


def test_zip_unicode_path_extra_field_wins() -> None:
    real = "絕密資料/報告.txt"  # Big5-only characters: the GBK-ish raw name cannot hold them
    raw_name = "????/??.txt".encode("ascii")
    uni = struct.pack("<BI", 1, zlib.crc32(raw_name)) + real.encode("utf-8")
    info = zipfile.ZipInfo(raw_name.decode("ascii"))
    info.extra = struct.pack("<HH", 0x7075, len(uni)) + uni
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(info, MARKED)
    assert [m.name for m in members(run(ZipExtractor(), buf.getvalue()))] == [real]


def test_zip_utf8_name_without_flag() -> None:
    name = "材料/说明.txt"
    placeholder = "Y" * len(name.encode("utf-8"))
    data = make_zip({placeholder: b"x"}).replace(placeholder.encode(), name.encode("utf-8"))
    assert [m.name for m in members(run(ZipExtractor(), data))] == [name]


def test_self_extracting_zip_after_an_exe_stub() -> None:
    # A self-extracting archive: a PE stub with the zip appended (offsets relative to the zip).
    sfx = b"MZ\x90\x00" + os.urandom(5000) + make_zip({"通知.txt": MARKED})
    assert ZipExtractor.sniff(sfx, "application/x-dosexec")
    assert members(run(ZipExtractor(), sfx)) == [Member("通知.txt", MARKED)]
    # An executable whose tail merely contains the end-of-directory signature is not a zip.
    fake = b"MZ\x90\x00" + os.urandom(5000) + b"PK\x05\x06" + bytes(18)
    assert not ZipExtractor.sniff(fake, "application/x-dosexec")
    assert not ZipExtractor.sniff(b"MZ" + bytes(100), "application/x-dosexec")


def test_zip_sniffed_without_libmagic_type() -> None:
    data = make_zip({"a.txt": b"a"})
    assert ZipExtractor.sniff(data, "application/octet-stream")
    assert not ZipExtractor.sniff(b"hello", "text/plain")


def test_zip_priority_below_document_formats() -> None:
    assert ZipExtractor.priority < 0


# ---------------------------------------------------------------------------- zip: hostile

def test_traversal_names_are_only_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    evil = "../../tmp/baomi-evil-test-archive.txt"
    target = Path("/tmp/baomi-evil-test-archive.txt")
    if target.exists():
        target.unlink()
    data = make_zip({evil: MARKED, "/etc/baomi-abs.txt": MARKED})
    items = run(ZipExtractor(), data)
    assert [m.name for m in members(items)] == [evil, "/etc/baomi-abs.txt"]
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_hostile_traversal_zip_yields_marked_content() -> None:
    items = run(ZipExtractor(), hostile_file("traversal.zip"))
    assert all("机密★10年".encode() in m.data for m in members(items))
    assert len(members(items)) == 2


def test_bomb_by_declared_ratio_is_rejected_before_inflating() -> None:
    data = make_zip({"zeros.bin": b"\0" * (4 << 20)})
    items = run(ZipExtractor(), data, ctx(SMALL))
    [err] = errors(items)
    assert err.error is ErrorCode.BOMB and err.member == "zeros.bin"
    assert "declared" in err.detail
    assert not members(items)


def _patch_sizes(data: bytes, declared: int) -> bytes:
    """Make every size field of a one-member zip claim `declared` uncompressed bytes."""
    buf = bytearray(data)
    # local header: uncompressed size at offset 22
    struct.pack_into("<L", buf, 22, declared)
    cd = data.rfind(b"PK\x01\x02")
    struct.pack_into("<L", buf, cd + 24, declared)
    return bytes(buf)


def test_lying_central_directory_cannot_bypass_ratio() -> None:
    liar = _patch_sizes(make_zip({"zeros.bin": b"\0" * (6 << 20)}), 100)
    assert zipfile.ZipFile(io.BytesIO(liar)).infolist()[0].file_size == 100
    items = run(ZipExtractor(), liar, ctx(SMALL))
    [err] = errors(items)
    assert err.error is ErrorCode.BOMB and "expands more than" in err.detail
    assert not members(items)


def test_lying_central_directory_cannot_bypass_member_size() -> None:
    lim = Limits(max_member_size=1 << 20, max_ratio=1e9)
    liar = _patch_sizes(make_zip({"big.bin": os.urandom(1 << 16) * 40}), 10)
    [err] = errors(run(ZipExtractor(), liar, ctx(lim)))
    assert err.error is ErrorCode.TOO_LARGE


def test_lying_size_does_not_hide_content() -> None:
    """zipfile would cut the member at its declared size; we read the real stream."""
    hidden = b"x" * 10 + "\n机密★5年\n".encode()
    liar = _patch_sizes(make_zip({"a.txt": hidden}), 10)
    items = run(ZipExtractor(), liar)
    assert members(items) == [Member("a.txt", hidden)]
    [err] = errors(items)
    assert err.error is ErrorCode.CORRUPT and "declared size 10" in err.detail


def test_hostile_liar_zip() -> None:
    items = run(ZipExtractor(), hostile_file("liar.zip"))
    assert "机密★10年".encode() in members(items)[0].data


def test_nested_bomb_shares_the_budget_across_levels() -> None:
    lim = Limits(max_total_size=3 << 20, max_ratio=1e9, max_member_size=64 << 20)
    inner = make_zip({f"r{i}.bin": os.urandom(1 << 20) for i in range(2)})
    outer = make_zip({f"in{i}.zip": inner for i in range(4)}, zipfile.ZIP_STORED)
    found = [i for _, i in walk(outer, "outer.zip", lim) if isinstance(i, ScanError)]
    assert any(e.error is ErrorCode.BOMB and "in total" in e.detail for e in found)


def test_hostile_bomb_zip_reports_bomb_quickly() -> None:
    import time

    t = time.monotonic()
    found = [i for _, i in walk(hostile_file("bomb.zip"), "bomb.zip")]
    assert found and all(isinstance(e, ScanError) and e.error is ErrorCode.BOMB for e in found)
    assert time.monotonic() - t < 10


def test_too_many_members() -> None:
    data = make_zip({f"f{i}.txt": b"x" for i in range(20)})
    items = run(ZipExtractor(), data, ctx(Limits(max_members=5)))
    assert len(members(items)) == 5
    assert errors(items)[-1].error is ErrorCode.BOMB


def test_member_count_is_shared_budget() -> None:
    budget = Budget(Limits(max_members=3))
    c = ctx(Limits(max_members=3), budget=budget)
    run(ZipExtractor(), make_zip({"a": b"", "b": b""}), c)
    items = run(ZipExtractor(), make_zip({"c": b"", "d": b""}), c)
    assert len(members(items)) == 1 and errors(items)[0].error is ErrorCode.BOMB


def test_zipcrypto_member_is_encrypted() -> None:
    data = bytearray(make_zip({"a.txt": MARKED}))
    struct.pack_into("<H", data, 6, 1)  # local header flags
    cd = data.rfind(b"PK\x01\x02")
    struct.pack_into("<H", data, cd + 8, 1)
    [err] = errors(run(ZipExtractor(), bytes(data)))
    assert err.error is ErrorCode.ENCRYPTED and err.member == "a.txt"


def test_hostile_aes_zip_is_encrypted() -> None:
    items = run(ZipExtractor(), hostile_file("encrypted.zip"))
    assert [e.error for e in errors(items)] == [ErrorCode.ENCRYPTED]
    assert "AES" in errors(items)[0].detail


def test_truncated_zip_salvages_members_from_local_headers() -> None:
    data = make_zip({"first.txt": MARKED, "second.txt": MARKED * 3})
    cut = data[: data.find(b"PK\x01\x02")]  # central directory gone
    items = run(ZipExtractor(), cut)
    assert [m.name for m in members(items)] == ["first.txt", "second.txt"]
    assert members(items)[0].data == MARKED
    assert errors(items)[-1].error is ErrorCode.CORRUPT
    assert "central directory" in errors(items)[-1].detail


def test_truncated_in_the_middle_of_a_member() -> None:
    data = make_zip({"first.txt": MARKED, "second.txt": os.urandom(5000)})
    cut = data[: data.find(b"second.txt") + 200]
    items = run(ZipExtractor(), cut)
    assert members(items)[0] == Member("first.txt", MARKED)
    assert any(e.error is ErrorCode.CORRUPT for e in errors(items))


def test_garbage_is_corrupt() -> None:
    items = run(ZipExtractor(), b"PK\x05\x06" + b"\xff" * 50)
    assert all(e.error is ErrorCode.CORRUPT for e in errors(items))


def test_random_damage_never_raises() -> None:
    rnd = random.Random(7)
    sources = [make_zip({"a.txt": MARKED * 20, "b/c.txt": os.urandom(300)}),
               make_zip({"z.txt": MARKED * 40}, zipfile.ZIP_BZIP2)]
    for src in sources:
        for _ in range(300):
            buf = bytearray(src)
            for _ in range(rnd.randint(1, 8)):
                buf[rnd.randrange(len(buf))] = rnd.randrange(256)
            cut = bytes(buf[: rnd.randint(1, len(buf))]) if rnd.random() < 0.3 else bytes(buf)
            for item in run(ZipExtractor(), cut):  # must not raise
                assert isinstance(item, (Member, ScanError))


# ------------------------------------------------------------------------------------- tar

def make_tar(entries: dict[str, bytes], mode: str = "w", encoding: str = "utf-8") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, encoding=encoding) as t:  # type: ignore[call-overload]
        for name, data in entries.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        d = tarfile.TarInfo("somedir")
        d.type = tarfile.DIRTYPE
        t.addfile(d)
        ln = tarfile.TarInfo("link")
        ln.type = tarfile.SYMTYPE
        ln.linkname = "/etc/passwd"
        t.addfile(ln)
    return buf.getvalue()


def test_plain_tar() -> None:
    data = make_tar({"docs/通知.txt": MARKED, "b.bin": b"\1\2"})
    assert TarExtractor.sniff(data, "application/x-tar")
    items = run(TarExtractor(), data)
    assert members(items) == [Member("docs/通知.txt", MARKED), Member("b.bin", b"\1\2")]
    assert not errors(items)


def test_tar_gbk_names() -> None:
    data = make_tar({"通知.txt": MARKED}, mode="w", encoding="gbk")
    assert [m.name for m in members(run(TarExtractor(), data))] == ["通知.txt"]


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz"])
def test_compressed_tar_is_streamed_as_tar(mode: str) -> None:
    data = make_tar({"docs/通知.txt": MARKED, "x/y.txt": b"y" * 3000}, mode=mode)
    assert CompressedExtractor.sniff(data, "application/octet-stream")
    items = run(CompressedExtractor(), data, ctx(name="a.tar.gz"))
    assert members(items) == [Member("docs/通知.txt", MARKED), Member("x/y.txt", b"y" * 3000)]
    assert not errors(items)


def test_tar_gz_bomb_by_stream_ratio() -> None:
    data = make_tar({"zeros.bin": b"\0" * (6 << 20), "after.txt": MARKED}, mode="w:gz")
    items = run(CompressedExtractor(), data, ctx(SMALL))
    assert [e.error for e in errors(items)] == [ErrorCode.BOMB]


def test_tar_member_larger_than_limit_is_skipped() -> None:
    lim = Limits(max_member_size=1 << 20)
    data = make_tar({"big.bin": os.urandom(2 << 20), "small.txt": MARKED})
    items = run(TarExtractor(), data, ctx(lim))
    assert [m.name for m in members(items)] == ["small.txt"]
    assert errors(items)[0].error is ErrorCode.TOO_LARGE and errors(items)[0].member == "big.bin"


def test_truncated_tar_gz_is_corrupt_after_salvage() -> None:
    data = make_tar({"a.txt": MARKED, "b.bin": os.urandom(20000)}, mode="w:gz")
    items = run(CompressedExtractor(), data[: len(data) * 2 // 3])
    assert members(items)[0] == Member("a.txt", MARKED)
    assert errors(items) and errors(items)[-1].error is ErrorCode.CORRUPT


@pytest.mark.parametrize("compress,name", [(gzip.compress, "report.txt.gz"), (bz2.compress, "report.txt.bz2"),
                                           (lzma.compress, "report.txt.xz")])
def test_single_compressed_file(compress: object, name: str) -> None:
    data = compress(MARKED)  # type: ignore[operator]
    items = run(CompressedExtractor(), data, ctx(name=name))
    assert members(items) == [Member("report.txt", MARKED)]


def test_gzip_member_named_from_header() -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="原文.txt".encode("gbk").decode("latin-1"), mode="wb", fileobj=buf) as g:
        g.write(MARKED)
    items = run(CompressedExtractor(), buf.getvalue(), ctx(name="x.gz"))
    assert members(items) == [Member("原文.txt", MARKED)]


def test_concatenated_gzip() -> None:
    data = gzip.compress(b"part one\n") + gzip.compress(MARKED)
    assert members(run(CompressedExtractor(), data, ctx(name="a.gz")))[0].data == b"part one\n" + MARKED


def test_gzip_bomb() -> None:
    data = gzip.compress(b"\0" * (8 << 20))
    items = run(CompressedExtractor(), data, ctx(SMALL, name="z.gz"))
    assert [e.error for e in errors(items)] == [ErrorCode.BOMB] and not members(items)


def test_truncated_gzip_is_corrupt_with_partial_member() -> None:
    data = gzip.compress(MARKED + os.urandom(5000))
    items = run(CompressedExtractor(), data[:-300], ctx(name="a.txt.gz"))
    assert members(items)[0].data.startswith(MARKED)
    assert errors(items)[0].error is ErrorCode.CORRUPT


# -------------------------------------------------------------------------------------- 7z

def make_7z(entries: dict[str, bytes], **kw: object) -> bytes:
    import py7zr

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", **kw) as z:  # type: ignore[arg-type]
        for name, data in entries.items():
            z.writestr(data, name)
    return buf.getvalue()


def test_7z_members() -> None:
    data = make_7z({"通知.docx": b"PK fake", "说明/a.txt": MARKED})
    items = run(SevenZipExtractor(), data)
    assert {m.name: m.data for m in members(items)} == {"通知.docx": b"PK fake", "说明/a.txt": MARKED}
    assert not errors(items)


def test_7z_traversal_names_are_only_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import py7zr

    monkeypatch.chdir(tmp_path)
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as z:
        z.set_encoded_header_mode(False)
        z.writestr(MARKED, "okokokok.txt")
    plain = buf.getvalue()
    evil = "../../tmp/xt".encode("utf-16-le")
    assert plain.count("okokokok.txt".encode("utf-16-le")) == 1
    data = bytearray(plain.replace("okokokok.txt".encode("utf-16-le"), evil))
    # fix the header CRC in the start header (offset 12..20: next header offset/size, 28: crc)
    off, size = struct.unpack_from("<QQ", data, 12)
    struct.pack_into("<L", data, 28, zlib.crc32(data[32 + off:32 + off + size]))
    struct.pack_into("<L", data, 8, zlib.crc32(data[12:32]))
    items = run(SevenZipExtractor(), bytes(data))
    assert members(items) == [Member("../../tmp/xt", MARKED)]
    assert not list(tmp_path.iterdir()) and not Path("/tmp/xt").exists()


def test_7z_encrypted_content() -> None:
    data = make_7z({"a.txt": MARKED}, password="secret")
    [err] = errors(run(SevenZipExtractor(), data))
    assert err.error is ErrorCode.ENCRYPTED


def test_7z_encrypted_headers() -> None:
    data = make_7z({"a.txt": MARKED}, password="secret", header_encryption=True)
    [err] = errors(run(SevenZipExtractor(), data))
    assert err.error is ErrorCode.ENCRYPTED


def test_7z_bomb() -> None:
    data = make_7z({"zeros.bin": b"\0" * (8 << 20)})
    items = run(SevenZipExtractor(), data, ctx(SMALL))
    assert [e.error for e in errors(items)] == [ErrorCode.BOMB] and not members(items)


def test_7z_corrupt_and_truncated() -> None:
    data = make_7z({"a.txt": MARKED * 100})
    for bad in (data[:40], data[: len(data) // 2], data[:32] + b"\xff" * 100):
        items = run(SevenZipExtractor(), bad)
        assert errors(items) and all(e.error is ErrorCode.CORRUPT for e in errors(items))


# ---------------------------------------------------------------------------------- corpus

@pytest.mark.corpus
@pytest.mark.parametrize("rel,ex", [
    ("P-archive/p-archive-0076.zip", ZipExtractor), ("P-archive/p-archive-0078.tar.gz", CompressedExtractor),
    ("P-archive/p-archive-0080.7z", SevenZipExtractor), ("P-archive/p-archive-0082.zip", ZipExtractor),
    ("P-disguise/p-disguise-0090", ZipExtractor)])
def test_corpus_archives(rel: str, ex: type) -> None:
    items = run(ex(), corpus_file(rel))
    assert members(items) and not errors(items)


@pytest.mark.corpus
def test_corpus_nested_zip_reaches_the_bottom() -> None:
    paths = set()
    for path, _item in walk(corpus_file("P-archive/p-archive-0082.zip"), "x.zip"):
        paths.add(path)
    # walk() drops leaves without an extractor; reaching l3 proves three levels are opened
    leaves = [m for m in members(run(ZipExtractor(), corpus_file("P-archive/p-archive-0082.zip")))]
    inner = members(run(ZipExtractor(), leaves[0].data))
    assert inner[0].name == "l3.zip"


def test_hostile_deep_zip_stops_at_max_depth() -> None:
    found = [i for _, i in walk(hostile_file("deep.zip"), "deep.zip", Limits(max_depth=8))]
    assert [e.error for e in found if isinstance(e, ScanError)] == [ErrorCode.TOO_DEEP]


def test_rar_is_reported_unsupported_not_clean() -> None:
    data = b"Rar!\x1a\x07\x01\x00" + b"\0" * 40
    assert UnreadableArchiveExtractor.sniff(data, "application/x-rar")
    [err] = errors(run(UnreadableArchiveExtractor(), data, ctx(mime="application/x-rar")))
    assert err.error is ErrorCode.UNSUPPORTED and "x-rar" in err.detail


def test_exe_ending_in_a_lying_end_of_central_directory_is_corrupt_not_clean() -> None:
    # A self-extractor whose end record (ending the file exactly) claims 65535 members and a
    # central directory beyond the file: claimed as a zip and reported, never passed as clean.
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 65535, 65535, 0xFFFFFFF0, 0xFFFFFFF0, 0)
    lying = b"MZ\x90\x00" + bytes(1000) + b"PK\x01\x02" + bytes(42) + eocd
    assert ZipExtractor.sniff(lying, "application/x-dosexec")
    assert [e.error for e in errors(run(ZipExtractor(), lying))] == [ErrorCode.CORRUPT]


def test_lzma_stream_ending_where_it_began_is_not_restarted_forever() -> None:
    """Found by fuzzing (tests/fuzz/regressions/compressed/lzma-restart-loop): two .lzma headers
    whose second stream ends without consuming input were restarted at the same offset 23,000
    times, until the bomb meter called 88 bytes a decompression bomb."""
    from scanner.engine import Scanner

    data = (Path(__file__).parents[2] / "fuzz" / "regressions" / "compressed" / "lzma-restart-loop").read_bytes()
    findings, errs, _mime = Scanner().scan_bytes(data, "x.lzma")
    assert not errs and not findings
    marked = lzma.compress("机密★10年\n".encode(), format=lzma.FORMAT_ALONE)
    findings, errs, _mime = Scanner().scan_bytes(marked + marked, "x.lzma")  # real concatenation still read
    assert not errs and findings and findings[0].level.value == "secret"
