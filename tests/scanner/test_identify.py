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
