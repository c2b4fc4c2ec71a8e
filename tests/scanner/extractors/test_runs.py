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


def test_control_bytes_anywhere_with_strcspn_or_python(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """strcspn stops at a NUL (the end of a C string) as at the other control bytes: a NUL after
    text, before or after another control byte, counts like any of them, with the C library's
    function as with the Python fallback."""
    import random

    from scanner import identify
    from scanner.extractors import runs

    controls = {*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F}
    prose = "保密工作 text\n".encode() * 50
    rnd = random.Random(3)
    datas = [prose[:k] + bytes([b]) + prose[k:] for b in range(256) for k in (0, 7, len(prose))]
    datas += [b"", prose, b"\x00", b"a\x00b\x01", b"\x1b[0m" + prose]
    datas += [bytes(rnd.randrange(0, 256) for _ in range(rnd.randrange(1, 64))) for _ in range(500)]
    want = [any(c in controls for c in d) for d in datas]
    assert [has_control_bytes(d) for d in datas] == want
    monkeypatch.setattr(runs, "strcspn", identify._py_strcspn)
    assert [runs.has_control_bytes(d) for d in datas] == want
