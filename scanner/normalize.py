"""The one text normaliser: what every extractor's text goes through before matching.

NFKC folds full-width digits, letters, brackets and the ideographic space; zero-width and
soft-hyphen characters are removed; the traditional characters that can appear in a marking
(機密, 絕密, 祕密, 長期, 個月, 後 …) are folded to their simplified forms so one grammar serves
both. Only the marking alphabet is folded: the rest of the text is left as written.
"""
from __future__ import annotations

import re
import unicodedata

from rules.vocabulary import ZERO_WIDTH as _ZERO_WIDTH

# Traditional → simplified for the characters the marking grammar reads.
_TRAD = {
    "機": "机", "絕": "绝", "絶": "绝", "祕": "秘", "級": "级", "長": "长", "個": "个",
    "後": "后", "時": "时", "間": "间", "條": "条", "內": "内", "資": "资", "紧": "紧",
    "緊": "紧", "急": "急", "標": "标", "誌": "志", "號": "号", "份": "份", "項": "项",
    "驗": "验", "收": "收", "會": "会", "議": "议", "開": "开", "發": "发", "佈": "布",
    "効": "效", "權": "权", "據": "据", "屆": "届", "滿": "满",
}

_TABLE: dict[int, str | None] = {ord(c): None for c in _ZERO_WIDTH}
_TABLE.update({ord(k): v for k, v in _TRAD.items() if k != v})
# str.translate costs ~50 ns a character; a regex scan for the few characters it changes is cheaper.
_NEEDS_TABLE = re.compile("[" + re.escape("".join(chr(c) for c in _TABLE)) + "]")


def nfkc(text: str) -> str:
    """`unicodedata.normalize("NFKC", text)`, computed as NFC of the NFKD form.

    The two are equal by the standard's definition (NFKC is the canonical composition of the
    compatibility decomposition; NFKD output is already canonically decomposed and ordered), and
    CPython's NFC takes its quick-check path on a decomposition that needs no composing, the
    usual case for CJK prose, whose fullwidth punctuation makes NFKC itself compose every
    character: 9.4 µs → 1.1 µs for a 42-character line of secrecy prose (issue 17).
    tests/scanner/test_normalize.py holds the two equal on every code point."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFKD", text))


def normalize(text: str) -> str:
    """NFKC, zero-width characters removed, traditional marking characters folded.

    Line structure is kept (the classifier reasons per line); `\\r\\n` and lone `\\r`
    become `\\n`, and the Unicode line/paragraph separators too.
    """
    if not text:
        return text
    if not text.isascii():
        text = nfkc(text)
        if _NEEDS_TABLE.search(text):
            text = text.translate(_TABLE)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\u2028" in text or "\u2029" in text or "\x0b" in text or "\x0c" in text:
        text = text.replace("\u2028", "\n").replace("\u2029", "\n").replace("\x0b", "\n").replace("\x0c", "\n")
    return text
