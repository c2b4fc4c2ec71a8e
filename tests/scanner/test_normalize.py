"""`scanner.normalize.nfkc` is NFKC, computed another way (NFC of NFKD): equal on every code point,
on strings where composition matters (combining marks, Hangul jamo, fullwidth forms next to
them), and on the real prose the classifier reads."""
from __future__ import annotations

import random
import sys
import unicodedata
from pathlib import Path

from scanner.normalize import nfkc, normalize

SHARED = Path(__file__).resolve().parents[3] / "shared"


def _ref(s: str) -> str:
    return unicodedata.normalize("NFKC", s)


def test_every_code_point() -> None:
    bad = [cp for cp in range(sys.maxunicode + 1)
           if not 0xD800 <= cp <= 0xDFFF and nfkc(chr(cp)) != _ref(chr(cp))]
    assert bad == []


def test_runs_of_consecutive_code_points() -> None:
    # neighbours compose with each other (a base letter and the marks that follow it)
    bad = []
    for start in range(0, 0x30000, 5):
        s = "".join(chr(c) for c in range(start, start + 7) if not 0xD800 <= c <= 0xDFFF)
        if nfkc(s) != _ref(s):
            bad.append(start)
    assert bad == []


#: Characters where composition and reordering do something: combining marks of several classes,
#: Hangul jamo and syllables, precomposed Latin, fullwidth and compatibility forms, CJK
#: compatibility ideographs, Arabic presentation forms, ligatures, marks with singleton mappings.
_POOL = ("aeouAEOUnc\u00e9\u00c5\u1e9b\u212b\u2126\u0300\u0301\u0302\u0308\u0323\u0327\u0345\u05b0\u0591"
         "\u0f71\u0f72\u1100\u1161\u11a8\u1175\uac00\uac01\u3131\u314f\uff21\uff41\uff10\uff0c\uff08\uff09"
         "\u3000\u2460\u2474\u3220\u32c0\u33a1\ufb01\ufb50\ufe70\uf900\uf9dc\U0002FA1D\u00bd\u00b2\u2005"
         "\u0344\u0958\u09cb\u0b48\u1026\u1b06\u3099\u309a\u304b\u30ab\uff76\uff9e\u5bc6\u673a\u2605")


def test_random_strings() -> None:
    rng = random.Random(17)
    for _ in range(20000):
        s = "".join(rng.choice(_POOL) for _ in range(rng.randint(1, 12)))
        assert nfkc(s) == _ref(s), ascii(s)


def test_real_prose_and_normalize_unchanged() -> None:
    texts = [p.read_text("utf-8", errors="replace") for d in ("prose", "seeds") for p in sorted((SHARED / d).iterdir()) if p.suffix in (".md", ".txt")]
    assert texts, "../shared/prose and ../shared/seeds hold the real prose"
    for t in texts:
        assert nfkc(t) == _ref(t)
        for line in t.splitlines():
            assert normalize(line) == _old_normalize(line)


def _old_normalize(text: str) -> str:
    """`normalize` as it was written with `unicodedata.normalize("NFKC", ...)` itself."""
    from scanner import normalize as mod

    if not text:
        return text
    if not text.isascii():
        text = _ref(text)
        if mod._NEEDS_TABLE.search(text):
            text = text.translate(mod._TABLE)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    for sep in ("\u2028", "\u2029", "\x0b", "\x0c"):
        text = text.replace(sep, "\n")
    return text
