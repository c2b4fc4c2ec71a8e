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
    """Wherever the content test now says plain text of a head holding `<` or opening with a
    header-shaped line (before, every such text went to libmagic), the reader picked is the one
    libmagic's type picks (the text extractor), on every real file at hand."""
    from scanner.extractors.registry import pick
    from scanner.identify import _HEADER_NAME, HEAD, PLAIN_HEAD, _handle

    spared = 0
    for name, data in _real_texts():
        head = data[:2048].lstrip()
        if not (b"<" in head or _HEADER_NAME.match(head)) or not is_plain_text(data[:PLAIN_HEAD]):
            continue
        by_magic = str(_handle().from_buffer(data[:HEAD]))
        ex = pick(data, by_magic)
        assert ex is not None and ex.name == "text", (name, by_magic, ex and ex.name)
        assert pick(data, "text/plain") is ex
        spared += 1
    assert spared > 0  # texts with angle brackets were among them (the case this holds)


_HEADER_NAMES = ["From", "To", "Cc", "Subject", "Date", "Received", "MIME-Version", "Content-Type", "Message-ID",
                 "Return-Path", "Return-path", "delivered-to", "Reply-To", "Sender", "X-Mailer", "User-Agent",
                 "Path", "Xref", "Relay-Version", "Newsgroups", "Article", "Format", "Source", "Upstream-Name",
                 "Files", "Copyright", "License", "Comment", "Package", "Version", "Title", "Author", "Status",
                 "Host", "Content-Length", "Organization", "Summary", "Keywords", "Description", "Name",
                 "Followup-To", "Lines", "X-Foo", "Thread-Topic", "Importance", "A", "X_Custom"]


def _mailish_texts() -> list[bytes]:
    out = []
    for n in _HEADER_NAMES:
        for sep in (": ", ":", ":\t"):
            out.append(f"{n}{sep}value here\n\nSome body line.\n".encode())
            out.append(f"{n}{sep}value\nOther: x\n\nbody\n".encode())
            out.append(f"{n}{sep}value\nFrom: a@b.cn\nTo: c@d.cn\n\nbody\n".encode())
    for opening in ("From a@b Mon Jan  1 00:00:00 2024", "Forward to x", "Pipe to x", "#! rnews 12",
                    "Article 12 of comp.x"):
        out.append(f"{opening}\nSubject: y\n\nbody\n".encode())
    # a header block longer than 8 KiB (DKIM, Received chains) before the known headers end it
    received = "".join(f"Received: from relay{i}.example.cn by mx.example.cn; Mon, 1 Jan 2024\n" for i in range(160))
    out.append(("X-Trace: 1\n" + received + "From: a@b.cn\nTo: c@d.cn\n\nU0VDUkVU\n").encode())
    return out


def test_header_shaped_texts_typed_without_libmagic_are_not_mail() -> None:
    """A text opening with a header-shaped line is plain only when neither libmagic (a mail or
    news type, read by the mail reader) nor the mail reader's sniffer takes it for mail: then
    the text extractor reads it whatever libmagic says."""
    from scanner.extractors.registry import pick
    from scanner.identify import HEAD, PLAIN_HEAD, _handle

    plain = 0
    for data in _mailish_texts():
        if is_plain_text(data[:PLAIN_HEAD]):
            plain += 1
            by_magic = str(_handle().from_buffer(data[:HEAD]))
            want = pick(data, by_magic)
            assert identify(data) == "text/plain"
            assert want is not None and want.name == "text" and pick(data, "text/plain") is want, (data[:60], by_magic)
    assert plain > 50  # Format:, Title:, Version: … were spared libmagic
    long_block = _mailish_texts()[-1]
    assert len(long_block.split(b"\n\n")[0]) > 8192 and not is_plain_text(long_block[:PLAIN_HEAD])


def test_mail_with_a_long_header_block_is_read_as_mail_by_the_scanner() -> None:
    """The scanner's plain-text shortcut sees what the mail reader's sniffer sees: a message
    whose header block runs past 8 KiB, its body in base64, still has its marking found."""
    import base64

    from scanner.config import ScanConfig
    from scanner.engine import Scanner

    received = "".join(f"Received: from relay{i}.example.cn by mx.example.cn; Mon, 1 Jan 2024\n" for i in range(160))
    body = base64.encodebytes("机密★10年\n关于某项工作的通知\n".encode()).decode()
    mail = ("X-Trace: 1\n" + received + "From: a@b.cn\nTo: c@d.cn\nSubject: x\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n" + body).encode()
    findings, errors, mime = Scanner(ScanConfig(ocr_mode="off")).scan_bytes(mail)
    assert any(f.kind.value == "marking" and f.level is not None for f in findings), (findings, errors, mime)


def test_only_the_head_is_looked_at() -> None:
    """The whole item may be passed (no copy of its head): what lies past `PLAIN_HEAD` bytes,
    a NUL, a control byte, a tag, changes nothing."""
    from scanner.identify import PLAIN_HEAD

    prose = "保密工作条例 text\n".encode()
    heads = [prose * 20, b"From: a@b\nTo: c@d\nSubject: s\n\n" + prose * 20, b"<html>" + prose,
             prose * 200 + b"\x00", prose * 80 + b"\x01", b"Title: x\n" + prose, b"\xef\xbb\xbf" + prose * 30,
             b"\xef\xbb\xbf From: a\n\n", b"\n\nSubject: x\nFrom: y\n\n", b"x" * (PLAIN_HEAD - 1)]
    for head in heads:
        for tail in (b"", b"\x00" * 10, b"\x01<b>", prose * 1000):
            data = head + tail
            assert is_plain_text(data) is is_plain_text(data[:PLAIN_HEAD]), (head[:20], tail[:5])
            assert identify(data) == identify(data[:PLAIN_HEAD])


def test_control_bytes_are_found_by_strcspn_as_by_python(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The C library's strcspn (over the bytes' own buffer) and the Python fallback agree, and
    is_plain_text says the same with either."""
    import random

    from scanner import identify as ident

    rnd = random.Random(17)
    samples = [bytes([b]) * 3 for b in range(1, 256)] + [b"", "保密工作\n".encode() * 100, b"ab\x00c\x01", b"a\x00"]
    samples += [bytes(rnd.randrange(1, 256) for _ in range(rnd.randrange(1, 300))) for _ in range(300)]
    for s in samples:
        assert ident.strcspn(s, ident._NOT_TEXT) == ident._py_strcspn(s, ident._NOT_TEXT), s
    prose = "保密工作条例 text\n".encode() * 20
    heads = [prose + bytes([b]) + prose for b in range(1, 256)] + samples
    want = [is_plain_text(h) for h in heads]
    monkeypatch.setattr(ident, "strcspn", ident._py_strcspn)
    assert [is_plain_text(h) for h in heads] == want
