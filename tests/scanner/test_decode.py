"""Decoding text the way real files hold it."""
from __future__ import annotations

import codecs

import pytest

from scanner.decode import decode
from scanner.normalize import normalize

TEXT = "000012\n机密★10年\n特急\n关于加强办公室工作的通知\n各单位：现将有关事项通知如下。\n"
TRAD = "000012\n機密★10年\n特急\n關於加強辦公室工作的通知\n各單位：現將有關事項通知如下。\n"


@pytest.mark.parametrize("enc,bom", [
    ("utf-8", b""), ("utf-8", codecs.BOM_UTF8), ("gb18030", b""), ("gbk", b""), ("gb2312", b""),
    ("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE),
    ("utf-16-le", b""), ("utf-16-be", b""),
])
def test_simplified_encodings(enc: str, bom: bytes) -> None:
    text, _ = decode(bom + TEXT.encode(enc))
    assert text == TEXT


def test_big5_traditional() -> None:
    text, enc = decode(TRAD.encode("big5"))
    assert enc == "big5"
    assert text == TRAD
    assert "机密★10年" in normalize(text)


def test_mixed_stretch_does_not_hide_the_rest() -> None:
    data = "第一行正常\n".encode() + "机密★5年\n".encode("gbk") + "最后一行\n".encode() + b"\xff\xfe\xfd\n"
    text, _ = decode(data)
    assert "机密★5年" in text and "第一行正常" in text and "最后一行" in text


def test_garbage_never_raises() -> None:
    import os
    for _ in range(20):
        decode(os.urandom(1000))


def test_normalize_typography() -> None:
    assert normalize("秘　密★１０年") == "秘 密★10年"
    assert normalize("机\u200b密\ufeff★5年") == "机密★5年"
    assert normalize("絕密★長期") == "绝密★长期"
    assert normalize("a\r\nb\rc") == "a\nb\nc"


def _decode_ref(data: bytes) -> tuple[str, str]:
    """`decode` before valid UTF-8 was decoded whole at once: detect on a sample, decode, repair."""
    from scanner import decode as mod

    enc, skip = mod.detect(data)
    body = data[skip:] if skip else data
    text = body.decode(enc, errors="replace")
    if "\ufffd" in text and enc in mod._REPAIR:
        text = mod._repair_lines(body, enc)
    return text, enc


def _decode_cases() -> list[bytes]:
    import random

    from tests.conftest import SHARED

    rng = random.Random(11)
    long = (TEXT * 3000)  # beyond the 64 KB sample
    cases = [b"", b"\n", TEXT.encode(), long.encode(), TEXT.encode("gb18030"), long.encode("gb18030"),
             TRAD.encode("big5"), codecs.BOM_UTF8 + TEXT.encode(), TEXT.encode("utf-16-le"),
             ("\ufffd" + TEXT).encode(), long.encode()[:-1],  # a character cut at the end
             long.encode()[: 64 * 1024 - 1] + long.encode()[64 * 1024:],  # one cut inside, past the sample
             long.encode() + TEXT.encode("gb18030"), TEXT.encode("gb18030") + long.encode(),
             long.encode()[:70000] + b"\x00" + long.encode()[70000:80000]]
    pool = [TEXT.encode(), TEXT.encode("gb18030"), TRAD.encode("big5"), b"\xff", b"\xe6\x9c", b"\x00", b"abc\n",
            "\ufffd".encode(), codecs.BOM_UTF8, codecs.BOM_UTF16_LE]
    for _ in range(2000):
        cases.append(b"".join(rng.choice(pool) for _ in range(rng.randrange(1, 12))))
    for d in ("prose", "seeds"):
        base = SHARED / d
        if base.is_dir():
            cases += [p.read_bytes() for p in sorted(base.iterdir()) if p.is_file()]
    corpus = SHARED / "corpus"
    if corpus.is_dir():
        cases += [p.read_bytes() for p in sorted(corpus.rglob("*")) if p.is_file() and p.stat().st_size < 4 << 20]
    return cases


def test_whole_utf8_decode_gives_what_detect_and_repair_gave() -> None:
    for data in _decode_cases():
        assert decode(data) == _decode_ref(data), data[:80]
