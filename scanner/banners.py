"""English classification lines as real documents carry them (markings.md §1, issue 15).

Beyond the plain banner (`TOP SECRET//NOFORN`, handled by `scanner.grammar`):
- telegram and message classification lines, where the level word leads a line whose rest is
  routing: `CONFIDENTIAL CAIRO 001234`, `SECRET SECTION 02 OF 05 LIMA 000417`, letter-spaced
  `S E C R E T` / `C O N F I D E N T I A L`, `UNCLAS … SENSITIVE`;
- codewords and control markings after the level word with no `//` (`TOP SECRET UMBRA`,
  `SECRET NOFORN`, pre-CAPCO `SECRET/NOFORN`);
- banners damaged by OCR (`T0P SECRET`, `TOR SECRET`, `SECRFT`): reported with a lower
  confidence and the form they were read as;
- portion marks opening a paragraph, numbered or not: `(S)`, `1. (C)`, `(S//NF)`, `(U)`, `(SBU)`.

Input is one normalised line (NFKC: fullwidth letters are ASCII already). Pure functions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from rules import vocabulary
from scanner.model import Level, Marking

_EN_LEVEL = {"TOP SECRET": Level.TOP_SECRET, "SECRET": Level.SECRET, "CONFIDENTIAL": Level.CONFIDENTIAL}
#: Letters spaced one by one (`S E C R E T`): three or more single capitals in a row.
_SPACED = re.compile(r"(?<![A-Za-z0-9])[A-Z](?: [A-Z]){2,}(?![A-Za-z0-9])")
_CONTROL = sorted(vocabulary.CONTROL_WORDS, key=len, reverse=True)
_CONTROL_RE = re.compile(r"(?:" + "|".join(re.escape(w) for w in _CONTROL) + r")(?![A-Z0-9])")
_ROUTING = frozenset(vocabulary.ROUTING_WORDS)
#: The head of a classification line: the level word(s), then what follows.
_HEAD = re.compile(r"^(?P<lv>TOP SECRET|SECRET|CONFIDENTIAL)(?![A-Za-z])(?P<rest>.*)$")
_INTERNAL_HEAD = re.compile(r"^(?P<lv>UNCLAS(?:SIFIED)?|" + "|".join(re.escape(w) for w in vocabulary.EN_INTERNAL)
                            + r")(?![A-Za-z])(?P<rest>.*)$")
#: A cable's serial number (`001234`, `STATE 123456`), a date-time group (`121530Z`).
_SERIAL = re.compile(r"^(?:0\d{3,5}|\d{5,6}|\d{6}Z|\d{1,2}\d{4}Z)$")
_YEAR = re.compile(r"^(?:19|20)\d\d$")
_POST = re.compile(r"^[A-Z][A-Z'.\-]{1,19}$")
_TOKEN = re.compile(r"[^\s/,]+")
#: A capital OCR read as lower case and tore from its word: `s ECRET`, `s E C R E T`.
_TORN_HEAD = re.compile(r"^[a-z] [A-Z]")
_QUOTED_HEAD = re.compile(r"^(?:TOP SECRET|SECRET|CONFIDENTIAL)['\"’”]", re.I)
_QUOTES = re.compile("[\"'‘’“”]")
_SEPS = re.compile(r"\s*(?://|/|,|\.|[-–—](?=\s)|\s)\s*")


@dataclass(frozen=True)
class EnglishLine:
    marking: Marking
    confidence: float


def collapse_spaced(line: str) -> str:
    """`S E C R E T` → `SECRET`, `T O P S E C R E T` → `TOP SECRET` (a cable's letter-spaced level)."""
    if " " not in line:
        return line
    out = _SPACED.sub(lambda m: m.group(0).replace(" ", ""), line)
    return re.sub(r"^TOPSECRET(?![A-Z])", "TOP SECRET", out)


def _rest_is_routing(rest: str) -> tuple[bool, tuple[str, ...], bool]:
    """(all of `rest` is caveats/codewords/routing, the caveats found, a serial number was seen)."""
    caveats: list[str] = []
    serial = False
    unknown = 0
    # OCR leaves quotes around and inside caveats (`SECRE T "NO FOREIGN DISSEM`, `NO ‘FOREIGN`)
    text = _QUOTES.sub("", rest).strip(" \t-–—:;")
    pos = 0
    first = _CONTROL_RE.match(text)
    if first and first.group(0) != "SENSITIVE" or re.search(r"\bCITE\b", text):
        # `SECRET NOFORN …`, `SECRET 252254 APR 69 CITE …`: a control word right after the level
        # word, or a cable's CITE, make the line a banner whatever OCR left after it.
        found = tuple(m.group(0) for m in _CONTROL_RE.finditer(text))
        return True, found, True
    while pos < len(text):
        sep = _SEPS.match(text, pos)
        if sep and sep.end() > pos:
            pos = sep.end()
            continue
        m = _CONTROL_RE.match(text, pos)
        if m:
            caveats.append(m.group(0))
            pos = m.end()
            continue
        tok_m = _TOKEN.match(text, pos)
        if tok_m is None:
            return False, (), False
        tok = tok_m.group(0)
        pos = tok_m.end()
        if tok in _ROUTING or re.fullmatch(r"\d{1,2}", tok):
            continue
        if _SERIAL.match(tok) and not _YEAR.match(tok):
            serial = True
            continue
        if tok.isdigit() and len(tok) <= 7 or re.fullmatch(r"[\d%°)\].,;:'\"|]+", tok):
            continue  # a cable's own number, a date's day or year (`252254 APR 69 CITE … 2835`)
        if _POST.match(tok):
            unknown += 1  # a post's name (CAIRO, THE HAGUE): only with a serial number
            if unknown > 3:
                return False, (), False
            continue
        return False, (), False
    if unknown and not serial:
        return False, (), False
    return True, tuple(caveats), serial


def _exact(line: str) -> EnglishLine | None:
    m = _HEAD.match(line)
    if m:
        rest = m.group("rest")
        if not rest.strip():
            return None  # a plain banner: scanner.grammar's
        ok, caveats, serial = _rest_is_routing(rest)
        if not ok or not (caveats or serial or re.search(r"\bSECTION\s+\d", rest)):
            return None
        return EnglishLine(Marking(level=_EN_LEVEL[m.group("lv")], text=line, form="banner", caveats=caveats), 0.9)
    m = _INTERNAL_HEAD.match(line)
    if m:
        lv, rest = m.group("lv"), m.group("rest")
        ok, caveats, serial = _rest_is_routing(rest) if rest.strip() else (True, (), False)
        if not ok:
            return None
        if lv.startswith("UNCLAS"):
            # UNCLAS alone is public; with SENSITIVE / SBU / FOUO it is the cable's own label.
            if not set(caveats) & _SENSITIVE and "SENSITIVE" not in rest:
                return None
        elif rest.strip() and not (caveats or serial):
            return None
        return EnglishLine(Marking(level=Level.INTERNAL, text=line, form="banner", caveats=caveats,
                                   category="sensitive"), 0.85)
    return None


_SENSITIVE = {"SENSITIVE", "SBU", "FOUO", "FOR OFFICIAL USE ONLY", "LIMITED OFFICIAL USE", "LES", "CUI"}


def _near(word: str, target: str, max_subs: int) -> bool:
    """Every character a capital or digit, and: the same length with at most `max_subs` characters
    substituted; or, for a long word (CONFIDENTIAL), one character lost or gained by OCR as well
    (`CONFLDENTAL`) within `max_subs` edits. Short words (TOP, SECRET) must keep their length:
    SECRETS, SECRETARY and SECURE are words of their own."""
    if not all(c.isupper() or c.isdigit() for c in word):
        return False
    if len(word) == len(target):
        return sum(a != b for a, b in zip(word, target, strict=True)) <= max_subs
    if len(target) < 10 or abs(len(word) - len(target)) > 1 or word.startswith(target):
        return False  # CONFIDENTIALS: the word and more is another word, not damage
    return _edits(word, target) <= max_subs


def _edits(a: str, b: str) -> int:
    """Levenshtein distance of two short words."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _repair(line: str) -> str | None:
    """An OCR-damaged banner's first words, put right (`T0P SECRFT` → `TOP SECRET`); None when
    nothing was damaged or the words are not near enough to a banner."""
    orig = line
    glued = re.match(r"^([A-Z0-9]{3})[-.]?(S[A-Z0-9]{5})(?![A-Za-z0-9])(.*)$", line)  # TORSECRET, EOP-SECRET
    if glued and _near(glued.group(1), "TOP", 1) and _near(glued.group(2), "SECRET", 1):
        line = f"{glued.group(1)} {glued.group(2)}{glued.group(3)}"
    # A word torn by OCR into pieces: `SECRE T`, `s ECRET`, `SEC RE T`, `SE CRE T`, `CONF L DENTAL`.
    pieces = line.split(" ")
    for k in range(4, 1, -1):
        if len(pieces) < k or not all(p.isalnum() and len(p) <= 6 for p in pieces[:k]):
            continue
        joined = "".join(pieces[:k])
        if sum(c.islower() for c in joined) <= 1 and (_near(joined.upper(), "SECRET", 1)
                                                       or _near(joined.upper(), "CONFIDENTIAL", 2)):
            line = " ".join([joined.upper(), *pieces[k:]])
            break
    m = re.match(r"^([A-Z0-9]+)(?: ([A-Z0-9]+))?(.*)$", line)
    if m is None:
        return None
    first, second, rest = m.group(1), m.group(2) or "", m.group(3)
    if second and _near(first, "TOP", 1) and _near(second, "SECRET", 1):
        fixed, tail = ["TOP", "SECRET"], rest
    elif _near(first, "SECRET", 1):
        fixed, tail = ["SECRET"], (" " + second if second else "") + rest
    elif _near(first, "CONFIDENTIAL", 2):
        fixed, tail = ["CONFIDENTIAL"], (" " + second if second else "") + rest
    else:
        return None
    tail = tail.strip()
    if tail and not tail.startswith("//"):
        tail = " " + tail
    out = " ".join(fixed) + tail
    return None if out == orig else out


_PLAIN = re.compile(r"^(?:TOP SECRET|SECRET|CONFIDENTIAL)(?:\s*//\s*[A-Z0-9][A-Z0-9 ,\-/]*)?$")


#: A classification field inside a line of a report form: `REPORT CLASS SECRET NOFORN`.
_FIELD = re.compile(r"\bREPORT CLASS[ \t]*:?[ \t]*(?=(?:TOP SECRET|SECRET|CONFIDENTIAL)(?![A-Za-z]))")


#: A country or alliance prefix of a banner (`UK TOP SECRET STRAP1`, `NATO SECRET`).
_COUNTRY = re.compile(r"^(?:UK|US|USA|NATO|AUS|CAN|NZ|FVEY)[ \t]+(?=(?:TOP SECRET|SECRET|CONFIDENTIAL)(?![A-Za-z]))")


def parse_english_line(line: str) -> EnglishLine | None:
    """A telegram line, a codeword banner, a letter-spaced or OCR-damaged banner, else None.

    A plain banner (`SECRET`, `TOP SECRET//NOFORN`) is left to `scanner.grammar.parse_line_form`
    unless it was letter-spaced or damaged (then it is returned here, with what it was read as)."""
    s = _clean(line)
    if not s or not s[0].isalnum() or not s[:1].isupper() and not s[:1].isdigit() and not _TORN_HEAD.match(s):
        return None
    if _QUOTED_HEAD.match(s):
        return None  # `'SECRET' "NO FOREIGN" …`: the word quoted in prose, not a banner
    f = _FIELD.search(s) or _COUNTRY.match(s)
    if f:
        s = s[f.end():]
    c = re.sub(r"[ \t]{2,}", " ", collapse_spaced(s))
    page = _PAGE_NO.match(c)
    if page:  # `4 TOP SECRET`: a page number OCR'd onto the banner's line
        c = c[page.end():]
    hit = _exact(c)
    if hit is not None:
        return hit if c == s else EnglishLine(_with_text(hit.marking, s, c), hit.confidence)
    if c != s and _PLAIN.match(c):
        return EnglishLine(_plain(c, s), 0.9)
    fixed = _repair(c)
    if fixed is None:
        return None
    hit = _exact(fixed)
    if hit is not None:
        return EnglishLine(_with_text(hit.marking, s, fixed, damaged=True), 0.6)
    if _PLAIN.match(fixed):
        m = _plain(fixed, s)
        return EnglishLine(_with_text(m, s, fixed, damaged=True), 0.6)
    return None


#: Markdown heading/quote/table marks and OCR specks before a line's first word.
_LEAD = re.compile(r"^(?:#{1,6}[ \t]+|[>*|][ \t]*|[(“\"'‘,.;:_~—\-][ \t]*)+")
_PAGE_NO = re.compile(r"^\d{1,3} (?=(?:TOP SECRET|SECRET|CONFIDENTIAL)(?://|$))")


def _clean(line: str) -> str:
    s = line.strip()
    k = s.find("<br")
    if k > 0:
        s = s[:k]
    s = _LEAD.sub("", s)
    return s.rstrip(" \t|#")


def _plain(read: str, shown: str) -> Marking:
    lv, _, cav = read.partition("//")
    caveats = tuple(x.strip() for x in cav.split("//") if x.strip())
    return Marking(level=_EN_LEVEL[lv.strip()], text=shown, form="banner", caveats=caveats)


def _with_text(m: Marking, shown: str, read: str, damaged: bool = False) -> Marking:
    level_words = "TOP SECRET" if m.level is Level.TOP_SECRET else read.split(" ", 1)[0].split("/", 1)[0]
    return replace(m, text=shown, read_as=level_words if damaged else None)


# -- portion marks -------------------------------------------------------------------------------

#: A paragraph's portion mark, after an optional paragraph number (`1.`, `a.`, `¶3`).
PORTION = re.compile(r"^(?:(?:\d{1,3}|[A-Za-z])[.)][ \t]*|¶[ \t]*\d{0,3}\.?[ \t]*)?"
                     r"\((?P<pm>TS|S|C|U|SBU|FOUO|CUI|LOU)(?P<cav>(?:[ \t]*//?[ \t]*[A-Z0-9][A-Z0-9 ,\-]*)*)\)"
                     r"(?:[ \t]+|$)(?!Copyright\b)(?=$|[A-Z\"“'‘(]|(?<=[A-Z]{2}\)[ \t])|(?<=/[A-Z]\)[ \t]))")
_PORTION_LEVEL = {"TS": Level.TOP_SECRET, "S": Level.SECRET, "C": Level.CONFIDENTIAL,
                  "SBU": Level.INTERNAL, "FOUO": Level.INTERNAL, "CUI": Level.INTERNAL, "LOU": Level.INTERNAL}
#: Paragraph letters of a lettered list, `(A)`, `(B)`, `(D)` …: where a text has them, `(C)` and
#: `(S)` are items of the list, not portion marks.
#: Blanks are any but line breaks: HTML and office text set `(A)\u00a0How…` with no-break spaces.
LETTERED_ITEM = re.compile(r"^[^\S\r\n]*\((?![CSU]\))[A-Z]\)[^\S\r\n]", re.M)
#: A copyright notice: where a text has one, `(C)` opening its lines is the copyright sign
#: (`(C) Markus Kuhn, 1995` in a Debian copyright file), not a CONFIDENTIAL portion mark.
COPYRIGHT_NOTICE = re.compile(r"\bcopyright\b|©|\(c\)[^\S\r\n]*(?:19|20)\d\d\b", re.I)


def portion_mark(line: str) -> tuple[str, Marking | None] | None:
    """(code, marking) of a portion mark opening `line`; the marking is None for `(U)`."""
    line = re.sub(r"^#{1,6}[ \t]+", "", line.strip())
    m = PORTION.match(line)
    if not m:
        return None
    code = m.group("pm")
    lv = _PORTION_LEVEL.get(code)
    text = line.strip()[: m.end()].strip()
    caveats = tuple(c.strip() for c in re.split(r"/+", m.group("cav")) if c.strip())
    if lv is None and any(c in ("FOUO", "SBU", "LOU", "CUI") for c in caveats):
        lv = Level.INTERNAL
    if lv is None:
        return code, None
    return code, Marking(level=lv, text=text, form="portion", caveats=caveats,
                         category="sensitive" if lv is Level.INTERNAL else None)
