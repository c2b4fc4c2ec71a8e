"""Control-byte detection that decides whether a text file is read whole or as runs."""
from __future__ import annotations

from scanner.extractors.runs import has_control_bytes


def test_every_control_byte_and_only_those_make_bytes_binary() -> None:
    control = set(range(0x00, 0x09)) | set(range(0x0E, 0x20)) | {0x7F}
    for b in range(256):
        data = "机密★10年\n正文".encode() + bytes([b]) + "。".encode()
        assert has_control_bytes(data) == (b in control), hex(b)


def test_terminal_escape_sequence_and_text_whitespace() -> None:
    assert has_control_bytes(b"\x1b[1;31m\xe6\x9c\xba\xe5\xaf\x86")
    assert not has_control_bytes("秘密★1年\r\n\t正文\x0b\x0c。".encode())
    assert not has_control_bytes(b"")
    assert has_control_bytes("机密\x00".encode("utf-16-le").decode("utf-16-le"))
    assert not has_control_bytes("机密\n")
