"""Plain text is told from binary by a content test (scanner.identify.is_plain_text)."""
from __future__ import annotations

from scanner.identify import identify, is_plain_text

#: C0 controls that never occur in plain text; \t \n \v \f \r and ESC (ANSI colour) do.
BINARY = {*range(0x00, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F}


def test_each_byte_value_in_the_first_2_kib() -> None:
    prose = "保密工作条例 text\n".encode() * 20
    for b in range(256):
        if b == ord("<"):
            continue  # markup: below
        head = prose + bytes([b]) + prose
        assert is_plain_text(head) is (b not in BINARY), hex(b)
        if b not in BINARY:
            assert identify(head) == "text/plain", hex(b)


def test_controls_past_2_kib_pass_but_nul_anywhere_in_8_kib_does_not() -> None:
    prose = "机密文件登记表\n".encode() * 200  # ~4.4 KB
    assert len(prose) > 2048
    assert is_plain_text(prose + b"\x01" + prose)  # a stray control byte deep in a text
    assert not is_plain_text(prose + b"\x00" + prose)
    assert not is_plain_text(b"\x01" + prose)
    assert is_plain_text((prose * 2)[:8192] + b"\x00")  # beyond the 8 KiB head: not looked at


def test_markup_and_headers_are_not_plain() -> None:
    assert not is_plain_text(b"")
    assert not is_plain_text(b"  <html><body>x</body></html>")
    assert not is_plain_text(b"\xef\xbb\xbf {\\rtf1 x}")
    assert not is_plain_text(b"From: officer@example.org\nSubject: x\n\nbody")
    assert is_plain_text("秘密★1年\n正文".encode())


def test_angle_brackets_that_are_not_markup_leave_a_text_plain(monkeypatch) -> None:
    """Mail addresses and links in angle brackets (changelogs, copyright files, quoted mail)
    are plain text, typed without libmagic; a tag, comment, doctype or PI anywhere in the
    first 2 KiB is markup and goes to libmagic."""
    import scanner.identify as ident

    plain = [
        b"pkg (1.2-3) unstable; urgency=medium\n\n  * Fix.\n\n -- Jane Doe <jane@example.org>  Mon, 1 Jan 2024\n",
        b"Copyright 2024 Li Lei <lilei@example.cn>\nSource: <https://example.org/src>\n",
        "\u5173\u4e8e\u4fdd\u5bc6\u5de5\u4f5c <URL:http://example.cn/a> \u7684\u8bf4\u660e\nx < y and a <= b\n".encode(),
        b"x <- y\nvector< int >\n<< EOF\n<-- arrow\n<3 <= >=\n",
    ]
    markup = [
        b"# Title\n\nSome text\n<div align=\"center\">x</div>\n",
        b"Intro line\n<!DOCTYPE html>\n<html><body>x</body></html>\n",
        b"Text first\n<?xml version=\"1.0\"?>\n<r/>\n",
        b"notes\n<!-- a comment -->\n",
        b"line\n<br/>\n",
        b"line <b>bold</b>\n",
        b"data\n<w:t>x</w:t>\n",
    ]

    def no_libmagic() -> None:
        raise AssertionError("libmagic was asked")

    for head in plain:
        assert is_plain_text(head), head
        with monkeypatch.context() as m:
            m.setattr(ident, "_handle", no_libmagic)
            assert identify(head) == "text/plain"
    for head in markup:
        assert not is_plain_text(head), head
    # beyond the first 2 KiB a tag is not looked for (as before: the head decides)
    assert is_plain_text(b"x" * 2100 + b"<div>")


def _real_texts() -> list[tuple[str, bytes]]:
    """Every file of the corpus, the hostile and real sets, and this machine's package
    documentation (copyright files and decompressed changelogs: real texts full of addresses)."""
    import gzip
    from pathlib import Path

    from tests.conftest import ROOT, SHARED

    out = []
    for d in (SHARED / "corpus", SHARED / "hostile", ROOT / "tests" / "scanner" / "realset"):
        out += [(str(p), p.read_bytes()) for p in sorted(d.rglob("*")) if p.is_file() and not p.is_symlink()]
    doc = Path("/usr/share/doc")
    for p in sorted(doc.glob("*/copyright"))[:400] if doc.is_dir() else []:
        out.append((str(p), p.read_bytes()))
    for p in sorted(doc.glob("*/changelog*.gz"))[:300] if doc.is_dir() else []:
        try:
            out.append((str(p), gzip.decompress(p.read_bytes())[:65536]))
        except (OSError, EOFError):
            continue
    return out


def test_texts_typed_without_libmagic_get_the_extractor_libmagic_would_give() -> None:
    """Wherever the content test now says plain text of a head holding `<` (before, every such
    text went to libmagic), the reader picked is the one libmagic's type picks (the text
    extractor), on every real file at hand."""
    from scanner.extractors.registry import pick
    from scanner.identify import HEAD, _handle

    spared = 0
    for name, data in _real_texts():
        if b"<" not in data[:2048] or not is_plain_text(data[:8192]):
            continue
        by_magic = str(_handle().from_buffer(data[:HEAD]))
        ex = pick(data, by_magic)
        assert ex is not None and ex.name == "text", (name, by_magic, ex and ex.name)
        assert pick(data, "text/plain") is ex
        spared += 1
    assert spared > 0  # texts with angle brackets were among them (the case this holds)
