"""Marking versus mention (markings.md §4): weigh where a candidate stands.

A marking is a standalone element — its own line, paragraph, cell, header, property or subject
prefix — typically with ★ and a period, typically at the top or bottom of a page. A candidate
quoted inside a running sentence is a mention; mentions never set a file's level.

`classify(segments)` turns the located text of one item into findings. Each candidate is judged
from: what remains on its line besides it (nothing, header tokens such as 份号/紧急程度, a
`密级：` label, or a sentence), quotation marks around it, the element's role (header, footer,
cell, property, subject…), its position from the top of the page/part, and its neighbours.
"""
from __future__ import annotations

import bisect
import datetime
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from rules import vocabulary
from scanner.banners import COPYRIGHT_NOTICE, LETTERED_ITEM, parse_english_line, portion_mark
from scanner.grammar import (  # the private names: what `_quiet` must cover
    _ALTSEP,
    _BOX_RE,
    _DECOR,
    _LEVEL,
    _PARA,
    _STAR,
    BULLET_TICKS,
    LEVEL_WORDS,
    STARS,
    ChoiceField,
    Hit,
    find_star_forms,
    is_public_value,
    paragraph_mark,
    parse_choice_field,
    parse_line_form,
    parse_marking,
    strip_decor,
)
from scanner.model import Finding, Kind, Level, Marking, Segment
from scanner.normalize import normalize

#: Rule ids printed in every finding (explained in the report appendix).
RULE_STAR = "cn.marking"  # BM-M001: 密级★期限/时间/条件
RULE_BARE = "cn.marking.bare"  # BM-M002: a level standing alone (statutory maximum applies)
RULE_LABEL = "cn.marking.label"  # BM-M003: 密级：机密
RULE_PARA = "cn.marking.paragraph"  # BM-M004: （秘密）opening a paragraph
RULE_PROP = "cn.marking.property"  # BM-M005: document property 密级 = 机密
RULE_INTERNAL = "cn.internal"  # BM-M006: 工作秘密 / 内部
RULE_BANNER = "en.banner"  # BM-M007: TOP SECRET//NOFORN
RULE_PORTION = "en.portion"  # BM-M008: (S) portion mark
RULE_MENTION = "cn.mention"
RULE_CHECKBOX = "cn.marking.checkbox"  # BM-M009: 密级：□绝密 □机密 ■秘密
RULE_LABEL_MS = "label.msip"  # a Microsoft sensitivity label (MSIP_Label_*_Name)
RULE_LABEL_PUBLIC = "label.public"  # a classification property saying 公开 / Public
RULE_MISMATCH = "cn.label_mismatch"
RULE_Q_EXPIRED = "cn.quality.expired"  # 解密时间 passed: declassify or extend
RULE_Q_NO_PERIOD = "cn.quality.no_period"  # 密级★ with nothing after the star
RULE_Q_PARA_ABOVE = "cn.quality.paragraph_above"  # a paragraph mark above the document's level
#: A `(U)` portion mark: evidence that a text is portion-marked, removed from the output.
_RULE_PORTION_U = "en.portion.u"

_FORM_RULE = {"star": RULE_STAR, "bare": RULE_BARE, "label": RULE_LABEL, "paragraph": RULE_PARA,
              "internal": RULE_INTERNAL, "banner": RULE_BANNER, "portion": RULE_PORTION,
              "property": RULE_PROP, "checkbox": RULE_CHECKBOX}

#: Roles where a short element is, by its place, a marking candidate.
STANDALONE_ROLES = {"header", "footer", "cell", "property", "title", "subject", "textbox", "cover"}
#: How many non-empty lines from the top of a page/part count as "the top".
TOP_LINES = 8

_OPEN_Q = "“\"‘'「『《<"
_CLOSE_Q = "”\"’'」』》>"
#: One head/foot token; a line of them is `_header_tokens`.
_HEADER_TOKEN_SRC = (
    r"\s|[|/,，、;；]|份号[:：]?(?:\s*\d{1,8})?|第?\s*\d{1,8}\s*份|共\s*\d+\s*份|\d{6}|"
    r"特\s*急|加\s*急|特\s*提|平\s*急|急\s*件|紧急程度[:：]?|"
    r"(?:文件)?密级(?:\s*(?:和|及|与|/)?\s*[(（]?\s*保密期限\s*[)）]?)?\s*[:：]?|保密期限[:：]?|"
    r"保密期限[\s|:：]*(?:\d{1,3}\s*(?:年|个月)|长期)|"  # a 保密期限 field with its value
    r"第\s*\d{1,4}\s*页|共\s*\d{1,4}\s*页|[-—–]\s*\d{1,4}\s*[-—–]|"  # page numbers of a header/footer line
    r"(?:已|予以)?解\s*密|作\s*废|★")
_HEADER_TOKEN = re.compile(f"(?:{_HEADER_TOKEN_SRC})")
#: Longest head/foot token looked for (tokens are a few characters; `\s*` inside one is a gap).
_MAX_HEADER_TOKEN = 32


def _chars(chars: str) -> str:
    """`chars` as the inside of a character class (each once, escaped)."""
    return "".join(sorted({re.escape(c) for c in chars}))


#: What a head/foot token may hold: the characters its pattern names, blanks and digits.
_TOKEN_CHARS = re.compile(rf"[{_chars(_HEADER_TOKEN_SRC)}\s\d]*")


#: Up to this length `_header_tokens` uses the one regex: at most a few hundred ways to try, and
#: it is several times faster than the position marking on the short strings it mostly meets.
_SHORT_HEADER = 20
_HEADER_LINE = re.compile(f"(?:{_HEADER_TOKEN_SRC})*")


def _header_tokens(s: str) -> bool:
    """Is `s` nothing but head/foot tokens (份号, 紧急程度, page numbers, 密级 labels, blanks)?"""
    if len(s) <= _SHORT_HEADER:
        return _HEADER_LINE.fullmatch(s) is not None
    return _header_tokens_marked(s)


def _header_tokens_marked(s: str) -> bool:
    """`_header_tokens` for any length: positions reachable by whole tokens are marked left to
    right (each position once). As one regex, `^(?:token)*$`, this was exponential: a blank may
    end a token (`密级 `) or be one, so a line of 22 `密级 ` then `x` was tried 2**22 ways (a
    170-byte text took 37 s)."""
    if _TOKEN_CHARS.fullmatch(s) is None:
        return False  # a character no token can hold (most long lines are sentences)
    n = len(s)
    reach = bytearray(n + 1)
    reach[0] = 1
    last = 0  # the furthest position reached: past it nothing is (a sentence ends at once)
    one, full = _HEADER_TOKEN.match, _HEADER_TOKEN.fullmatch
    for p in range(n):
        if p > last:
            return False
        if not reach[p]:
            continue
        if s[p].isspace():
            # A blank is a token, and a token starting with blanks (`\s*12份`) is blanks then a
            # token: marked from the position after them.
            reach[p + 1] = 1
            last = max(last, p + 1)
            continue
        if one(s, p) is None:
            continue
        for q in range(p + 1, min(n, p + _MAX_HEADER_TOKEN) + 1):
            if not reach[q] and full(s, p, q):
                reach[q] = 1
                last = max(last, q)
    return bool(reach[n])
_ANNOTATION = re.compile(r"(?:已|予以)?解\s*密")
_SENTENCE = re.compile(r"[，。；！？,;!?]")
#: A marking on a text's first line may be followed by a title of at most this many characters.
_TITLE_CHARS = 40
#: Words that continue a sentence about the mark (`机密★10年 的文件…`), never open a title.
_GRAMMAR_WORDS = frozenset("的之是等和或及与为在了、")
_SUBJECT_PREFIX = re.compile(r"^(?:(?:re|fw|fwd|回复|答复|转发)\s*[:：]\s*)+", re.I)
#: A bare level opening a subject, set apart from the title by a space or a colon.
_SUBJECT_LEVEL = re.compile(r"^(?P<lv>[绝机秘]\s*密)(?:\s+|\s*[:：]\s*)(?=\S)")
_PROPERTY_KEYS = re.compile(r"^(?:密\s*级|保密等级|保密级别|密级标志|classification|security[ _-]?level|"
                            r"security[ _-]?classification|sensitivity)$", re.I)
_LEVEL_WORD = re.compile(r"绝密|机密|秘密")
#: Mentions of bare level words are counted; only this many are listed per item.
MAX_WORD_MENTIONS = 3


@dataclass
class _Line:
    text: str  # normalised, stripped
    seg: Segment
    pos: int  # position from the top of its page/part (non-empty lines); TOP_LINES+ = "not at the top"
    no: int  # 1-based line number within the segment
    last: bool  # among the last lines of its part
    si: int = 0  # index of the segment in the item
    start: int = 0  # offsets of the raw line in the segment's text
    end: int = 0


# Level characters (simplified and traditional) that can precede 密 in a marking.
_LEVEL_CHARS = frozenset(vocabulary.LEVEL_FIRST)
_GAP_CHARS = frozenset(" \t\u3000\u00a0\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad")
_LEVEL_MI = re.compile(f"[{re.escape(''.join(sorted(_LEVEL_CHARS)))}][{re.escape(''.join(sorted(_GAP_CHARS)))}]{{0,4}}密")
#: The 密 of each `_LEVEL_MI` match, the same set: a lookbehind per gap length (fixed width each),
#: after the literal 密 that lets re skip between candidates (3x faster on secrecy prose; gap and
#: level characters are disjoint, so exactly one level character can stand before a given 密).
_MI_AFTER_LEVEL = re.compile("密(?:" + "|".join(
    f"(?<=[{re.escape(''.join(sorted(_LEVEL_CHARS)))}][{re.escape(''.join(sorted(_GAP_CHARS)))}]{{{k}}}密)"
    for k in range(5)) + ")")
_BANNER_WORDS = vocabulary.BANNER_WORDS + vocabulary.BANNER_WORDS_FULLWIDTH
_EN_LINE = re.compile(r"^[ \t]*(?:[(（](?:TS|S|C)[)）/]|.*(?:" + "|".join(_BANNER_WORDS) + "))", re.M)
#: How far into a segment positions are counted exactly (beyond: "not at the top").
_HEAD_CHARS = 4000


def _candidate_starts(text: str) -> list[int]:
    """Offsets of every place in raw (un-normalised) text where a marking could stand.

    Whole-text normalisation is the slow part of a scan, so only lines holding a level word
    (with spaces or zero-width characters tolerated inside it), an internal mark or an English
    banner are normalised and judged; `str.find` keeps the sweep at memory speed."""
    # A level character, up to four gap characters, 密: found by re's scan in C, not by a Python
    # step at each of the thousands of 密 (保密, 密码) a MB of office prose holds. The scan looks
    # for 密 (a literal: re jumps between them) and checks what stands before it; only at a hit
    # does Python step back over the gap to the level character (where `_LEVEL_MI` starts).
    out = []
    if "密" in text:
        out = [m.start() - 1 for m in _MI_AFTER_LEVEL.finditer(text)]
        for j, i in enumerate(out):
            if text[i] not in _LEVEL_CHARS:  # a gap between the level character and 密
                while text[i] not in _LEVEL_CHARS:
                    i -= 1
                out[j] = i
    for anchor, follow, words in _MARK_WORDS:
        out.extend(_find_words(text, anchor, follow, words))
    # Every English pattern below needs a Latin letter, a digit or a fullwidth capital: a docx
    # paragraph of Chinese prose (hundreds a document) skips them all (issue 17: they were
    # two thirds of a 100 KB .docx verdict's classification).
    if _LATIN.search(text) is None:
        return out
    banners = [p for anchor, follow, words in _BANNER_ANCHORS for p in _find_words(text, anchor, follow, words)]
    if banners:
        # `_EN_LINE`'s matches: the start of each line holding a banner word, and lines opening
        # with a portion mark (looked for only in a text holding a banner word, as before)
        out.extend(_line_starts(text, banners))
        if _EN_PAREN.match(text):
            out.append(0)
        out.extend(m.start() + 1 for m in _EN_PAREN_NL.finditer(text))
    if _EN_OTHER.match(text):  # the first line; the others follow a newline
        out.append(0)
    out.extend(m.start() + 1 for m in _EN_OTHER_NL.finditer(text))
    if "lassification" in text or "LASSIFICATION" in text:
        out.extend(_class_fields(text))
    return out


def _line_starts(text: str, offsets: list[int]) -> list[int]:
    """The start of the line (after the last newline) holding each of `offsets`, in one pass:
    `rfind` from each offset back to its line start read a long line once per offset (a 7 MB
    JSON file on one line, with a thousand capitalised words: seconds)."""
    out = []
    start = prev = 0
    for p in sorted(offsets):
        k = text.rfind("\n", prev, p)
        if k != -1:
            start = k + 1
        out.append(start)
        prev = p
    return out


def _anchored(anchor: str, words: tuple[str, ...]) -> tuple[str, frozenset[str], tuple[tuple[str, int], ...]]:
    """(anchor, the characters that follow it in the words, (word, index of the anchor) each)."""
    assert all(w.count(anchor) == 1 and not w.endswith(anchor) for w in words), (anchor, words)
    return anchor, frozenset(w[w.index(anchor) + 1] for w in words), tuple((w, w.index(anchor)) for w in words)


#: Internal and commercial marks, each found from a character it holds once (see `_find_words`).
_MARK_WORDS = (_anchored("内", ("内部", "内 部", "内\u3000部")), _anchored("內", ("內部",)),
               _anchored("商", ("商密",)))
#: Banner words, each found from its C (every one holds exactly one, ASCII or fullwidth).
_BANNER_ANCHORS = (_anchored("C", tuple(w for w in _BANNER_WORDS if "C" in w)),
                   _anchored("Ｃ", tuple(w for w in _BANNER_WORDS if "Ｃ" in w)))
assert sum(len(ws) for _, _, ws in _BANNER_ANCHORS) == len(_BANNER_WORDS)
#: A line opening with a portion mark (`_EN_LINE`'s first alternative), at the start of the text
#: and after a newline (a literal first character lets `re` jump from line to line).
_EN_PAREN_SRC = r"[ \t]*[(（](?:TS|S|C)[)）/]"
_EN_PAREN = re.compile(_EN_PAREN_SRC)
_EN_PAREN_NL = re.compile(r"\n" + _EN_PAREN_SRC)
#: What one Python step from an anchor to the next costs, in characters a substring pass reads
#: in the same time (~0.4 µs against ~1 ns a character of CJK text).
_STEP_CHARS = 400


def _find_words(text: str, anchor: str, follow: frozenset[str], words: tuple[tuple[str, int], ...],
                limit: int | None = None) -> list[int]:
    """Start offsets of every occurrence of `words` in `text`; each word holds `anchor` once, at
    the index given with it, followed by one of `follow`.

    Found by stepping from one `anchor` to the next: a one-character `find` runs at memchr
    speed, where a pass per word costs ~0.3 ms a MB of CJK text, and a MB of secrecy prose took
    nine such passes (issue 17). Past `limit` steps (by default, where the steps would cost more
    than the passes) the text finishes with one pass per word."""
    if limit is None:
        limit = max(16, len(words) * len(text) // _STEP_CHARS)
    out: list[int] = []
    pos = text.find(anchor)
    steps = 0
    while pos != -1:
        steps += 1
        if steps > limit:
            # Words found so far start before `pos - k`; the passes find the rest, once each.
            for w, k in words:
                p = text.find(w, max(pos - k, 0))
                while p != -1:
                    out.append(p)
                    p = text.find(w, p + 1)
            return out
        if text[pos + 1: pos + 2] in follow:
            for w, k in words:
                if pos >= k and text.startswith(w, pos - k):
                    out.append(pos - k)
        pos = text.find(anchor, pos + 1)
    return out


#: Items with at least this many segments are screened as one text (`_screen`).
_SCREEN_MIN_SEGMENTS = 4


def _screen(segs: list[Segment]) -> set[int]:
    """Indices of the segments in which `_candidate_starts` may find something: a superset,
    found by running it once over the segments' texts joined by newlines.

    A document's paragraphs are hundreds of short segments, most holding 密 (保密) or a digit
    but no candidate (9 in 10 of a 100 KB .docx's paragraphs); one search of the joined text
    replaces hundreds of per-paragraph calls (issue 17). Why the joined search misses nothing:
    no pattern the candidates come from matches a newline except where it stands for a line
    start (`_EN_OTHER_NL`, `_CLASS_FIELD_NL`), and a segment's start in the joined text follows
    a newline, as a line start does; look-arounds and words never cross one, and every offset
    it gives (a word, a level character, a line start) lies in the segment of its hit.
    tests/scanner/test_classify_quiet.py holds this to `_candidate_starts` segment by segment."""
    texts = [seg.text for seg in segs]
    bounds = list(itertools.accumulate((len(t) + 1 for t in texts[:-1]), initial=0))
    return {bisect.bisect_right(bounds, h) - 1 for h in _candidate_starts("\n".join(texts))}


#: What `_EN_LINE`, `_EN_OTHER` and `_CLASS_FIELD` cannot match without (a test holds this).
_LATIN = re.compile(r"[A-Za-z0-9\uff21-\uff3a]")


#: A form's classification field whose value is written in title case (`CLASSIFICATION: Secret`).
_CLASS_FIELD = re.compile(r"^[ \t]*classification[ \t]*:", re.M | re.I)
#: The same after a newline: a literal first character lets `re` jump from line to line, where
#: `^` in MULTILINE mode is tried at every character (6.7 MB changelog: 75 -> 22 ms).
_CLASS_FIELD_NL = re.compile(r"\n[ \t]*classification[ \t]*:", re.I)


def _class_fields(text: str) -> list[int]:
    """Line starts of `_CLASS_FIELD`'s matches."""
    out = [0] if _CLASS_FIELD.match(text) else []
    out.extend(m.start() + 1 for m in _CLASS_FIELD_NL.finditer(text))
    return out


#: Lines where an English classification line without an intact banner word can stand: a portion
#: mark (numbered or not), letter-spaced capitals, a damaged banner word, UNCLAS / LIMITED OFFICIAL USE.
#: The indentation and quote marks before it are taken atomically (`(?>…)`): no alternative begins
#: with a space, tab or quote mark, so giving some back can never make a match; `re` tried every
#: alternative again for each shorter indentation (7 MB of indented JSON: 0.6 s, now 65 ms).
#: A lookahead then names what an alternative can begin with (a capital, a digit, ¶, `(`, a
#: lower-case item letter before `.`/`)`, `s `/`c `): an ordinary line of English leaves after
#: one test (a 6.7 MB changelog: 90 -> 73 ms; that JSON: 64 -> 38 ms).
_EN_OTHER_PREFIX = r"[ \t]*(?:[>|*“\"'‘][ \t]*){0,3}"
_EN_OTHER_FIRST = r"(?=[A-Z¶(]|\d|[a-z][.)]|[sc] )"
_EN_OTHER_ALTS = (r"(?:(?:(?:\d{1,3}|[A-Za-z])[.)][ \t]*|¶[ \t]*\d{0,3}\.?[ \t]*)?\((?:TS|S|C|U|SBU|FOUO|CUI|LOU)[)/]"
                 r"|[A-Z](?: {1,2}[A-Z]){3}|S ?E ?C ?R ?E ?T|C ?O ?N ?F ?I ?D|s ECRE|s E C R|c ONFI|c O N F|UNCLAS|LIMITED OFFICIAL|FOR OFFICIAL USE|SENSITIVE BUT"
                 r"|OFFICIAL.SENSITIVE|CONTROLLED UNCLASSIFIED"
                 r"|[A-Z0-9]{3} [A-Z0-9]{6}(?![A-Za-z0-9])|S[A-Z0-9]{5}(?![A-Za-z0-9])|[A-Z0-9]ECRET|C[A-Z0-9]NF)")
_EN_OTHER_SRC = "(?>" + _EN_OTHER_PREFIX + ")" + _EN_OTHER_FIRST + _EN_OTHER_ALTS
_EN_OTHER = re.compile("^" + _EN_OTHER_SRC, re.M)
#: The same, after a newline: a literal first character lets `re` jump from line to line, where
#: `^` in MULTILINE mode is tried at every character (7 ms a MB of Chinese prose, issue 17).
#: The lookahead names every character `_EN_OTHER_SRC` can begin with, so a line of Chinese prose
#: is passed over without trying each alternative (3x faster; the matches are the same).
_EN_OTHER_NL = re.compile(r"\n(?=[ \t>|*“\"'‘\dA-Za-z¶(])" + _EN_OTHER_SRC)


def _line_at(text: str, offset: int) -> tuple[int, int]:
    """(start, end) of the line holding `offset`; `\r` is looked for only inside that line."""
    start = text.rfind("\n", 0, offset) + 1
    cr = text.rfind("\r", start, offset)
    if cr != -1:
        start = cr + 1
    end = text.find("\n", offset)
    if end == -1:
        end = len(text)
    cr = text.find("\r", offset, end)
    if cr != -1:
        end = cr
    if end - start > LONG_LINE:
        # Other line terminators (U+2028/U+2029 from Word exports, VT, FF page breaks of
        # pdftotext) are looked for only in a long line, so short lines cost nothing more.
        for sep in _OTHER_EOL:
            k = text.rfind(sep, start, offset)
            if k != -1:
                start = k + 1
            k = text.find(sep, offset, end)
            if k != -1:
                end = k
    return start, end


_OTHER_EOL = ("\u2028", "\u2029", "\x0b", "\x0c", "\x85")


def _nonempty_before(text: str, start: int) -> int:
    return sum(1 for ln in text[:start].splitlines() if ln.strip())


def _is_last(text: str, end: int) -> bool:
    if len(text) - end >= 2000:
        return False
    return sum(1 for ln in text[end:].splitlines() if ln.strip()) <= 1


class _LineCounter:
    """Line numbers for increasing offsets in one text, counted incrementally (no quadratic rescans)."""

    def __init__(self, text: str, first: int = 1) -> None:
        self.text, self.off, self.n, self.first = text, 0, first, first

    def at(self, offset: int) -> int:
        if offset < self.off:
            self.off, self.n = 0, self.first
        self.n += self.text.count("\n", self.off, offset)
        self.off = offset
        return self.n


def _make_line(seg: Segment, si: int, start: int, end: int, counter: _LineCounter | None = None,
               no: int | None = None) -> _Line:
    text = seg.text
    raw = text[start:end]
    pos = seg.index + (_nonempty_before(text, start) if start < _HEAD_CHARS else TOP_LINES)
    if no is None:
        no = counter.at(start) if counter is not None else text.count("\n", 0, start) + 1
    big = len(text) > _HEAD_CHARS or max(text.count("\n", 0, _HEAD_CHARS), text.count("\r", 0, _HEAD_CHARS)) > TOP_LINES
    return _Line(normalize(raw).strip(), seg, pos, no, big and _is_last(text, end), si, start, end)


def _neighbour(segs: list[Segment], ln: _Line, step: int) -> _Line | None:
    """The previous (step=-1) or next (step=1) non-empty line, across segments of the same part."""
    si, text = ln.si, ln.seg.text
    # The neighbour's line number is counted from this line's (not from the segment's start:
    # a text of many candidate lines would be rescanned once per candidate).
    if step < 0:
        pos = ln.start - 1
        while pos > 0:
            s, e = _line_at(text, pos - 1)
            if text[s:e].strip():
                return _make_line(ln.seg, si, s, e, no=ln.no - text.count("\n", s, ln.start))
            pos = s - 1
    else:
        pos = ln.end + 1
        while pos < len(text):
            s, e = _line_at(text, pos)
            if text[s:e].strip():
                return _make_line(ln.seg, si, s, e, no=ln.no + text.count("\n", ln.start, s))
            pos = e + 1
    j = si + step
    if 0 <= j < len(segs) and segs[j].member == ln.seg.member and segs[j].text.strip():
        t = segs[j].text.rstrip() if step < 0 else segs[j].text.lstrip()
        off = len(t) - 1 if step < 0 else len(segs[j].text) - len(t)
        s, e = _line_at(segs[j].text, max(off, 0))
        return _make_line(segs[j], j, s, e)
    return None


def _is_header_context(line: _Line | None) -> bool:
    """份号 or 紧急程度 lines that stand around a marking in a 公文 head."""
    if line is None:
        return False
    s = line.text.replace(" ", "")
    return bool(re.fullmatch(r"(?:份号[:：]?)?\d{6}|特急|加急|特提|平急|急件|(?:紧急程度[:：]?)(?:特急|加急|平急|特提)", s))


_BULLET = re.compile(r"^(?:[-+•·▪●○◆■□]|\*\s|\d{1,3}[.、)]|[(（]?[一二三四五六七八九十]{1,3}[)）、.])")


def _is_bare(line: _Line | None) -> bool:
    if line is None:
        return False
    m = parse_line_form(line.text)
    return m is not None and m.form in ("bare", "internal")


def _quoted(before: str, after: str) -> bool:
    b, a = before.rstrip(), after.lstrip()
    return bool(b) and bool(a) and b[-1] in _OPEN_Q and a[0] in _CLOSE_Q


def _real_quotes(before: str, after: str) -> bool:
    """Quotation marks proper (not angle brackets) right around a candidate."""
    b, a = before.rstrip(), after.lstrip()
    return bool(b) and bool(a) and b[-1] in _QUOTE_MARKS and a[0] in _QUOTE_MARKS


_QUOTE_MARKS = "“”\"‘’'「」『』"


def _struck(before: str, after: str) -> bool:
    return before.rstrip().endswith("~~") and after.lstrip().startswith("~~")


def _finding(m: Marking, ln: _Line, kind: Kind, conf: float, *, declassified: bool = False,
             superseded: bool = False, rule: str | None = None) -> Finding:
    return Finding(
        level=m.level, kind=kind, text=m.text, member=ln.seg.member,
        rule=rule or (_FORM_RULE.get(m.form, RULE_STAR) if kind is Kind.MARKING else RULE_MENTION),
        confidence=conf, period=m.period, declassify_date=m.declassify_date,
        declassify_condition=m.declassify_condition, nonstandard=m.nonstandard,
        declassified=declassified or m.declassified, superseded=superseded, caveats=m.caveats,
        line=ln.no if not ln.seg.standalone else None, category=m.category, read_as=m.read_as,
    )


#: Typst/LaTeX commands wrapping a mark that stands alone on its line in the source.
_WRAP_BEFORE = re.compile(r'^\s*(?:[#\\][A-Za-z]+(?:\((?:[^()"]|"[^"]*")*\))?\s*[\[{]\s*)+$')
_WRAP_AFTER = re.compile(r"^[\]}\s]+$")


def _judge_star(hit: Hit, ln: _Line, others: list[Hit]) -> tuple[Kind, float, bool, bool]:
    """(kind, confidence, declassified, superseded) for a ★-form candidate.

    Other candidates on the same line (an old mark struck out beside its replacement) are not
    counted as running text around this one."""
    text = ln.text
    for o in sorted(others, key=lambda h: -h.start):
        if o is not hit:
            text = text[: o.start] + " " * (o.end - o.start) + text[o.end:]
    before, after = text[: hit.start], text[hit.end:]
    if _WRAP_BEFORE.match(before) and _WRAP_AFTER.match(after):
        before, after = "", ""  # `#text(font: "Heiti SC")[绝密★启用前]`, `\textbf{机密★5年}`: markup around the mark
    b, a = strip_decor(before), strip_decor(after)
    role = ln.seg.role
    struck = _struck(before, after)
    if _quoted(before, after) and (b or a or _real_quotes(before, after)):
        return Kind.MENTION, 0.9, False, False  # quoted: an example of a mark, not a mark
    if (b or a) and _header_tokens(f"{before} {after}"):
        # head/foot tokens as written (`- 2 -` page numbers would lose their dashes to strip_decor)
        return Kind.MARKING, 0.95, bool(_ANNOTATION.search(f"{before} {after}")), struck
    if not a and _BULLET.match(before.strip()):
        return Kind.MENTION, 0.7, False, False  # an item of a list of examples, not a mark on the page
    if not b and not a:
        return Kind.MARKING, 0.98, False, struck
    rest = f"{b} {a}"
    if _header_tokens(rest):
        return Kind.MARKING, 0.95, bool(_ANNOTATION.search(rest)), struck
    if role == "subject" and not _SUBJECT_PREFIX.sub("", b):
        return Kind.MARKING, 0.9, False, False
    if not b and ln.pos == 0 and after[:1].isspace() and len(a) <= _TITLE_CHARS and not _SENTENCE.search(a) \
            and a[:1] not in _GRAMMAR_WORDS:
        # The first line of a text opens with the mark and goes on, set apart by a space, with a
        # title (`机密★10年 关于某事的通知`): text exports of documents join the head lines so.
        return Kind.MARKING, 0.9, False, struck
    if role in STANDALONE_ROLES and len(rest) <= 24 and not _SENTENCE.search(rest):
        return Kind.MARKING, 0.85, bool(_ANNOTATION.search(rest)), struck
    return Kind.MENTION, 0.85, False, False


def _near_top(ln: _Line) -> bool:
    return ln.pos < TOP_LINES or ln.last


def _judge_line_form(m: Marking, ln: _Line, prev_f: Callable[[], _Line | None],
                     next_f: Callable[[], _Line | None]) -> tuple[Kind, float]:
    role = ln.seg.role
    if m.form in ("label", "banner"):
        return Kind.MARKING, 0.92
    if m.form == "paragraph":
        return Kind.MARKING, 0.85
    if m.form == "portion":
        return Kind.MARKING, 0.6  # kept only when the item also carries a banner (see classify)
    # bare level / internal mark: its place decides
    if _BULLET.match(ln.text):
        return Kind.MENTION, 0.7
    prev, nxt = prev_f(), next_f()
    if _is_bare(prev) or _is_bare(nxt):
        return Kind.MENTION, 0.7  # an item of a list of levels, not a mark on the page
    if role in STANDALONE_ROLES - {"cell"}:
        return Kind.MARKING, 0.9
    if _is_header_context(prev) or _is_header_context(nxt):
        return Kind.MARKING, 0.95
    if role == "cell":
        return Kind.MARKING, 0.75  # demoted when the item holds a column of levels (see classify)
    if _near_top(ln):
        return Kind.MARKING, 0.8
    return Kind.MENTION, 0.6


def _property(seg: Segment) -> Marking | None:
    if seg.key is None or not _PROPERTY_KEYS.match(seg.key.strip()):
        return None
    m = parse_marking(seg.text)
    if m is None:
        v = strip_decor(normalize(seg.text))
        for word, lv in (("绝密", Level.TOP_SECRET), ("机密", Level.SECRET), ("秘密", Level.CONFIDENTIAL)):
            if v.startswith(word) and len(v) <= 12:
                m = Marking(level=lv, text=v, form="property")
                break
        else:
            return None
    return replace(m, form="property")


_MSIP_NAME = re.compile(r"^MSIP_Label_[0-9a-fA-F\-]{8,}_Name$")
_MSIP_LEVEL = {"public": None, "general": None, "公开": None, "非密": None, "personal": None,
               "internal": Level.INTERNAL, "内部": Level.INTERNAL, "confidential": Level.INTERNAL,
               "highly confidential": Level.INTERNAL, "restricted": Level.INTERNAL}


def _label(seg: Segment) -> Finding | None:
    """A machine-readable label that is not a state-secret marking: a Microsoft sensitivity
    label, or a classification property saying 公开 / Public. Reported, never sets the level."""
    key = (seg.key or "").strip()
    value = strip_decor(normalize(seg.text))
    if _MSIP_NAME.match(key):
        m = parse_marking(value)
        lv = m.level if m is not None else _MSIP_LEVEL.get(value.lower().split("\\")[0].strip(), Level.INTERNAL)
        # A sensitivity label is the document's own (organisation) classification: it sets the
        # level like any marking (internal unless it names a state-secret level); public ones are
        # reported as labels.
        return Finding(level=lv, kind=Kind.MARKING if lv is not None else Kind.LABEL, text=value[:60],
                       member=seg.member, rule=RULE_LABEL_MS, confidence=0.95, detail=f"sensitivity label {key}",
                       category="sensitivity_label" if lv is Level.INTERNAL else None)
    if _PROPERTY_KEYS.match(key) and is_public_value(value):
        return Finding(level=None, kind=Kind.LABEL, text=value[:60], member=seg.member, rule=RULE_LABEL_PUBLIC,
                       confidence=0.95, detail=f"property {key}")
    return None


def classify(segments: Iterable[Segment], lines_before: int = 0) -> list[Finding]:
    """Findings (markings and mentions) in the located text of one item.

    `lines_before`: the one segment is a piece of a longer text with that many lines before it;
    line numbers are counted from the start of the text (cheaper than copying each finding
    with its line shifted afterwards, ~20 µs a finding)."""
    segs = list(segments)
    if lines_before and len(segs) != 1:
        raise ValueError("lines_before is for one piece of a text")
    findings: list[Finding] = []
    word_mentions = 0
    screened = _screen(segs) if len(segs) >= _SCREEN_MIN_SEGMENTS else None
    for si, seg in enumerate(segs):
        if screened is not None and si not in screened and seg.role != "property":
            continue  # `_candidate_starts` would find nothing in it (see `_screen`)
        if seg.role == "property" and seg.key is not None:
            pm = _property(seg)
            if pm is not None:
                ln = _Line(normalize(seg.text).strip(), seg, 0, 1 + lines_before, False, si)
                findings.append(_finding(pm, ln, Kind.MARKING, 0.95, rule=RULE_PROP))
                continue
            lab = _label(seg)
            if lab is not None:
                findings.append(lab)
                continue
        text = seg.text
        if "密" not in text and "部" not in text and _LATIN.search(text) is None:
            continue  # what `_candidate_starts` needs, tested inline: most paragraphs of a document
        done: set[int] = set()
        counter = _LineCounter(text, 1 + lines_before)
        start = end = -1
        for off in sorted(_candidate_starts(text)):
            if not start <= off < end:
                # (Another candidate on the line of the last one has that line: a line holds no
                # terminator `_line_at` cuts at, so any offset in it gives the same bounds.)
                start, end = _line_at(text, off)
            if start in done:
                continue
            if end - start > LONG_LINE:
                # A long line is running text: a marking can only open it as a paragraph mark
                # (`（秘密）本段…`); anything else in it is at most a mention.
                if off - start <= _LINE_HEAD and start not in done:
                    done.add(start)
                    head = normalize(text[start: start + _LINE_HEAD + 8]).strip()
                    pm = paragraph_mark(head)
                    if pm is None and head[:1].isascii():
                        po = portion_mark(head)
                        if po is not None:
                            ln = _Line(head, seg, TOP_LINES, counter.at(start), False, si, start, end)
                            _add_portion(po, ln, findings)
                            continue
                    if pm is not None:
                        ln = _Line(head, seg, TOP_LINES, counter.at(start), False, si, start, end)
                        findings.append(_finding(pm, ln, Kind.MARKING, 0.85))
                        continue
                word_mentions = _judge_in_prose(seg, off, counter.at(start), findings, word_mentions)
                continue
            done.add(start)
            if seg.role != "subject":
                s = normalize(text[start:end]).strip()
                if _quiet(s):
                    # Level words in prose and nothing else: what `_judge_line` would conclude,
                    # without its parsers (see `_quiet`).
                    if word_mentions < MAX_WORD_MENTIONS:
                        ln = _Line(s, seg, TOP_LINES, counter.at(start), False, si, start, end)
                        word_mentions = _word_mentions(ln, findings, word_mentions)
                    continue
            ln = _make_line(seg, si, start, end, counter)
            word_mentions = _judge_line(ln, segs, findings, word_mentions)
    return _post(findings, segs)


#: A line longer than this is running text: a marking can only open it (paragraph mark).
LONG_LINE = 80


def _unnamed(pattern: str) -> str:
    return re.sub(r"\(\?P<\w+>", "(?:", pattern)


# -- quiet lines (issue 17) ---------------------------------------------------------------------
# Most candidate lines of secrecy prose are sentences that hold a level word and nothing else
# a marking needs; `_judge_line` ends on them in `_word_mentions` after half a dozen parsers.
# `_quiet(s)` recognises such a line with two regex calls, from what each branch of
# `_judge_line` needs to find anything (a line it passes yields exactly `_word_mentions`):
# - English (`portion_mark`, `parse_english_line`, `_BANNER`, a `classification` label): a Latin
#   letter, and a first character that is ASCII, `“`, `‘`, `¶` or a digit (banner words and
#   portion codes are ASCII capitals; NFKC has folded the fullwidth ones);
# - a tick-box field (`parse_choice_field`): a box (`_BOX_RE`; `&nbsp;` is read as a space);
# - a ★ form (`find_star_forms`): a match of `_HEAD` (taken without its look-arounds);
# - a paragraph mark: `_PARA` itself;
# - a label or an internal/commercial mark (`_LABEL`, `_INTERNAL` on the line stripped of
#   decoration): the first word of one of them after decoration;
# - a bare level (`_BARE` on the stripped line): nothing but decoration, 密级 and level characters;
# - a bare level among head tokens (`_bare_among_header_tokens`): nothing but characters of
#   `_HEADER_TOKEN` (every character of its source: a superset) and the level word;
# - a 解密 annotation: the line is parsed again without it, so that line is tested too.
# The subject role (its own prefix rules) is always judged in full. tests/scanner/
# test_classify_quiet.py holds `_quiet` lines to `_judge_line` on crafted lines, the corpus and
# generated prose, and these alternatives to the patterns they stand for.
_LOUD_ANYWHERE = re.compile("|".join((
    "&nbsp;",
    _BOX_RE.pattern,
    rf"(?:{_unnamed(_LEVEL)})[ \t]*(?:{_STAR}|{_ALTSEP}|\()",
)))
#: At the start of the line (`re.match`).
_LOUD_HEAD = re.compile("|".join((
    r"(?=[\x00-\x7f“‘¶]|\d)(?s:.*)[A-Za-z]",
    _unnamed(_PARA.pattern),
    rf"[{_chars(_DECOR)}\s]*(?:文[ \t]*[件档]|资[ \t]*料|密[ \t]*级|保[ \t]*密[ \t]*等|[cC]|工[ \t]*作|内[ \t]*部"
    r"|核[ \t]*心|普[ \t]*通|商)",
    rf"[{_chars(_DECOR + '密级:：绝机秘')}\s]*$",
    rf"[{_chars(_HEADER_TOKEN_SRC + '绝机秘密')}\s\d]*$",
)))


def _quiet(s: str) -> bool:
    """True when `_judge_line` can find nothing but level words in prose on the line `s`
    (normalised, stripped; not a subject): see the comment above."""
    if _LOUD_HEAD.match(s) is not None or _LOUD_ANYWHERE.search(s) is not None:
        return False
    if "解" in s and _ANNOTATION.search(s):
        # `_judge_line` parses the line again with its 解密 annotations blanked out.
        x = _ANNOTATION.sub(" ", s).strip()
        return _LOUD_HEAD.match(x) is None and _LOUD_ANYWHERE.search(x) is None
    return True


_LINE_HEAD = 24
_STAR_OR_SEP = frozenset(STARS + vocabulary.ALT_SEPS + vocabulary.OPEN_BRACKETS)


def _judge_in_prose(seg: Segment, off: int, line_no: int, findings: list[Finding], word_mentions: int) -> int:
    """A candidate far into a long line is a mention; only a small window around it is normalised."""
    raw = seg.text[off: off + 24]
    if "SECRET" in raw[:12] or "CONFIDENTIAL" in raw[:12] or raw[:1] in ("内", "內"):
        return word_mentions  # English words and 内部 in prose are not worth a finding
    starred = not _STAR_OR_SEP.isdisjoint(raw[:12])
    if not starred and word_mentions >= MAX_WORD_MENTIONS:
        return word_mentions  # nothing below can add a finding: the window is not normalised
    window = normalize(raw)
    ln = _Line(window, seg, TOP_LINES, line_no, False)
    if starred:
        hits = find_star_forms(window)
        if hits and hits[0].start == 0:
            findings.append(_finding(hits[0].marking, ln, Kind.MENTION, 0.85))
            return word_mentions
    if word_mentions < MAX_WORD_MENTIONS:
        wm = _LEVEL_WORD.match(window)
        if wm:
            lv = LEVEL_WORDS[wm.group(0)]
            findings.append(_finding(Marking(level=lv, text=wm.group(0), form="word"), ln, Kind.MENTION, 0.95))
            word_mentions += 1
    return word_mentions


def _add_portion(po: tuple[str, Marking | None], ln: _Line, findings: list[Finding]) -> None:
    code, m = po
    if m is None:  # (U): not a finding of its own, but evidence that the text is portion-marked
        findings.append(Finding(level=None, kind=Kind.MENTION, text=f"({code})", member=ln.seg.member,
                                rule=_RULE_PORTION_U, confidence=0.6))
    else:
        findings.append(_finding(m, ln, Kind.MARKING, 0.6))


def _choice_group(ln: _Line, segs: list[Segment], cf: ChoiceField) -> list[ChoiceField]:
    """The tick-box field of a line together with the one-option fields on the lines around it
    (a form that puts each choice on its own line or cell)."""
    group = [cf]
    for step in (-1, 1):
        cur: _Line | None = ln
        for _ in range(5):
            cur = _neighbour(segs, cur, step) if cur is not None else None
            other = parse_choice_field(cur.text) if cur is not None else None
            if other is None or len(other.choices) != 1 or other.labelled:
                break
            group.append(other)
    return group


def _judge_choice(ln: _Line, segs: list[Segment], cf: ChoiceField, findings: list[Finding]) -> None:
    """A tick-box field: the ticked option is the level; a blank form or a tick on 公开 yields
    nothing (not even mentions); a column of options all "ticked" with a bullet is a list."""
    if len(cf.choices) == 1 and not cf.labelled:
        group = _choice_group(ln, segs, cf)
        if len(group) > 1:
            ticked = [g for g in group if g.ticked]
            if not ticked:
                return  # a blank form
            if len(ticked) == len(group):
                if all(g.choices[0].box in BULLET_TICKS for g in group):
                    m = cf.marking()  # a bulleted list of levels: each line at most a mention
                    if m is not None:
                        findings.append(_finding(m, ln, Kind.MENTION, 0.7))
                    return
            if not cf.ticked:
                return
    m = cf.marking()
    if m is not None:
        findings.append(_finding(m, ln, Kind.MARKING, 0.9 if cf.labelled else 0.85))


_EN_QUOTES = "“‘"


def _judge_english(ln: _Line, segs: list[Segment], findings: list[Finding]) -> bool:
    s = ln.text
    en = parse_english_line(s)
    if en is None and s.startswith("UNCLAS") and len(s) <= 80:
        nxt: _Line | None = ln
        for _ in range(3):  # `SENSITIVE` on its own line, maybe after SIPDIS / NOFORN routing lines
            nxt = _neighbour(segs, nxt, 1) if nxt is not None else None
            if nxt is None or not nxt.text.isupper():
                break
            if nxt.text.strip() in ("SENSITIVE", "SBU", "SENSITIVE BUT UNCLASSIFIED"):
                en = parse_english_line(f"{s} SENSITIVE")
                break
    if en is None:
        return False
    findings.append(_finding(en.marking, ln, Kind.MARKING, en.confidence))
    return True


def _judge_line(ln: _Line, segs: list[Segment], findings: list[Finding], word_mentions: int) -> int:
    s = ln.text
    if s[:1].isascii() or s[:1] in _EN_QUOTES:  # `“SECRET RYBAT`: OCR kept a quote before the banner
        po = portion_mark(s) if "(" in s[:10] else None
        if po is not None:
            _add_portion(po, ln, findings)
            return word_mentions
        if _judge_english(ln, segs, findings):
            return word_mentions
    cf = parse_choice_field(s)
    if cf is not None:
        _judge_choice(ln, segs, cf, findings)
        return word_mentions
    hits = find_star_forms(s)
    if hits:
        for h in hits:
            kind, conf, declassified, superseded = _judge_star(h, ln, hits)
            if kind is Kind.MARKING and not superseded and _in_level_list(h, ln, segs):
                kind, conf = Kind.MENTION, 0.7
            findings.append(_finding(h.marking, ln, kind, conf, declassified=declassified, superseded=superseded))
        return word_mentions
    if ln.seg.role == "subject":
        s = _SUBJECT_PREFIX.sub("", s)  # `Re: [机密] …`: the mark is the subject's prefix
        sm = _SUBJECT_LEVEL.match(s)
        pm = parse_line_form(sm.group("lv")) if sm else None
        if pm is not None:  # `绝密 关于……的通知`: a level set apart at the head of a subject
            findings.append(_finding(pm, ln, Kind.MARKING, 0.9))
            return word_mentions
    m = parse_line_form(s)
    declassified = False
    if m is None and "解" in s:
        m = parse_line_form(_ANNOTATION.sub(" ", s))
        declassified = m is not None
    if m is not None:
        kind, conf = _judge_line_form(m, ln, lambda: _neighbour(segs, ln, -1), lambda: _neighbour(segs, ln, 1))
        findings.append(_finding(m, ln, kind, conf, declassified=declassified))
        return word_mentions
    hm = _bare_among_header_tokens(s)
    if hm is not None:
        m, declassified = hm
        findings.append(_finding(m, ln, Kind.MARKING, 0.9, declassified=declassified))
        return word_mentions
    return _word_mentions(ln, findings, word_mentions)


def _word_mentions(ln: _Line, findings: list[Finding], word_mentions: int) -> int:
    """The level words of a line that is nothing else: mentions, up to `MAX_WORD_MENTIONS` an item."""
    if word_mentions < MAX_WORD_MENTIONS:
        s = ln.text
        for wm in _LEVEL_WORD.finditer(s):
            if s[max(0, wm.start() - 2): wm.start()] in ("工作", "商业", "技术"):
                continue
            lv = LEVEL_WORDS[wm.group(0)]
            findings.append(_finding(Marking(level=lv, text=wm.group(0), form="word"), ln, Kind.MENTION, 0.95))
            word_mentions += 1
            if word_mentions >= MAX_WORD_MENTIONS:
                break
    return word_mentions


_SPACED_LEVEL = re.compile(r"(?:绝|机|秘)[ \t]*密")


def _bare_among_header_tokens(s: str) -> tuple[Marking, bool] | None:
    """A bare level sharing its line only with head/foot tokens (份号, 紧急程度, page numbers):
    `000012　机密　特急`, `机密　　第 1 页 共 3 页`. Returns (marking, declassified)."""
    for wm in _SPACED_LEVEL.finditer(s):
        rest = f"{s[: wm.start()]} {s[wm.end():]}"
        if not strip_decor(rest) or not _header_tokens(rest):
            continue
        m = parse_line_form(wm.group(0))
        if m is not None and m.form == "bare":
            return m, bool(_ANNOTATION.search(rest))
    return None


def _standalone_level(ln: _Line | None) -> Level | None:
    """The level of a line that is nothing but a marking-shaped element (★ form or bare level)."""
    if ln is None:
        return None
    hits = find_star_forms(ln.text)
    if len(hits) == 1:
        h = hits[0]
        if strip_decor(ln.text[: h.start]) or strip_decor(ln.text[h.end:]):
            return None
        return h.marking.level
    m = parse_line_form(ln.text) if not hits else None
    return m.level if m is not None and m.form == "bare" else None


def _in_level_list(hit: Hit, ln: _Line, segs: list[Segment]) -> bool:
    """A whole-line ★ form in a list of example marks of several levels (a handout's 标志示例):
    three or more such lines in a row, or two under an intro line ending in a colon, with at
    least two different levels. A document carries one mark (a changed level stands on the
    same line as the struck old one), so such a run describes markings, it does not mark."""
    if strip_decor(ln.text[: hit.start]) or strip_decor(ln.text[hit.end:]):
        return False
    run = [hit.marking.level]
    intro = _neighbour(segs, ln, -1)
    for _ in range(2):
        lv = _standalone_level(intro)
        if lv is None or intro is None:
            break
        run.append(lv)
        intro = _neighbour(segs, intro, -1)
    nxt = _neighbour(segs, ln, 1)
    for _ in range(2):
        lv = _standalone_level(nxt)
        if lv is None or nxt is None:
            break
        run.append(lv)
        nxt = _neighbour(segs, nxt, 1)
    if len(run) < 2 or len(set(run)) < 2:
        return False
    return len(run) >= 3 or (intro is not None and intro.text.endswith((":", "：")))


_CELL_REF = re.compile(r"!\$?([A-Z]{1,3})\$?(\d{1,7})$")
#: Rows at the top of a sheet where a sheet's own marking stands.
_SHEET_HEAD_ROWS = 3


def _portions_valid(findings: list[Finding], segs: list[Segment]) -> bool:
    """Portion marks classify when the item carries a banner, or two or more of them (counting
    `(U)`) open its paragraphs and no lettered list (`(A)`, `(B)`, `(D)` …) makes `(C)`/`(S)`
    read as list items."""
    if any(f.kind is Kind.MARKING and f.rule == RULE_BANNER for f in findings):
        return True
    portions = [f for f in findings if f.rule in (RULE_PORTION, _RULE_PORTION_U)]
    if any("//" in f.text or f.text.endswith(("(TS)", "(SBU)", "(FOUO)")) for f in portions):
        return True  # `(TS//SI//NF)`, `(S//REL)`: no list item is written so
    if len(portions) < 2:
        return False
    codes = {f.text.strip("().0123456789¶ \t") for f in portions}
    if codes <= {"C", "S"} and any(LETTERED_ITEM.search(seg.text) for seg in segs):
        return False
    if codes == {"C"} and any(COPYRIGHT_NOTICE.search(seg.text) for seg in segs):
        return False  # copyright signs: `(C) 2015 Oracle`, `(C) Markus Kuhn, 1995`
    return True


def _post(findings: list[Finding], segs: list[Segment] | None = None) -> list[Finding]:
    """Item-level context: portion marks need a banner; a column of levels is a register.

    A register of classified documents (涉密文件登记表) lists the level of each document in a
    column: three or more marking-shaped cells of one sheet below its head rows describe other
    documents, not this one; they are kept as mentions. A marking in the head rows still counts."""
    portions_ok = any(f.rule in (RULE_PORTION, _RULE_PORTION_U) for f in findings) and \
        _portions_valid(findings, segs or [])
    bare_cells = [f for f in findings if f.kind is Kind.MARKING and f.rule == RULE_BARE and f.confidence == 0.75]
    sheet_cells: dict[str, list[Finding]] = {}
    for f in findings:
        m = _CELL_REF.search(f.member or "") if f.kind is Kind.MARKING else None
        if m and int(m.group(2)) > _SHEET_HEAD_ROWS:
            sheet_cells.setdefault((f.member or "")[: m.start()], []).append(f)
    register = {id(f) for cells in sheet_cells.values() if len(cells) >= 3 for f in cells}
    out = []
    for f in findings:
        if f.rule == _RULE_PORTION_U:
            continue
        if f.kind is Kind.MARKING and f.rule == RULE_PORTION and not portions_ok:
            f = replace(f, kind=Kind.MENTION, rule=RULE_MENTION)
        elif (len(bare_cells) >= 3 and f in bare_cells) or id(f) in register:
            f = replace(f, kind=Kind.MENTION, rule=RULE_MENTION, confidence=0.6)
        out.append(f)
    return _portion_note(out) + _labels_and_quality(out)


def _counts(f: Finding) -> bool:
    return f.kind is Kind.MARKING and not f.declassified and not f.superseded and f.level is not None


def _portion_note(findings: list[Finding]) -> list[Finding]:
    """When portion marks set the item's level (nothing else marks it as high), the highest one
    says so: `level of the highest of N portion marks`."""
    portions = [f for f in findings if _counts(f) and f.rule == RULE_PORTION]
    if not portions:
        return findings
    top = max(f.level.rank for f in portions if f.level is not None)
    if any(_counts(f) and f.rule != RULE_PORTION and f.level is not None and f.level.rank >= top for f in findings):
        return findings
    out, done = [], False
    for f in findings:
        if not done and f in portions and f.level is not None and f.level.rank == top:
            f = replace(f, detail=f"level of the highest of {len(portions)} portion marks")
            done = True
        out.append(f)
    return out


def _today() -> str:
    return datetime.date.today().isoformat()


def _labels_and_quality(findings: list[Finding]) -> list[Finding]:
    """Findings about the markings themselves: a label that disagrees with the visible marking,
    a declassification date already past, a paragraph above the document's level, a ★ with no
    period."""
    extra: list[Finding] = []
    labels = [f for f in findings if (f.kind is Kind.MARKING and f.rule in (RULE_PROP, RULE_LABEL_MS))
              or f.kind is Kind.LABEL]
    visible = [f for f in findings if _counts(f) and f.rule not in (RULE_PROP, RULE_LABEL_MS)]
    if labels and visible:
        top = max(visible, key=lambda f: f.level.rank if f.level else 0)
        vis_rank = top.level.rank if top.level else 0
        for lab in labels:
            lab_rank = lab.level.rank if lab.level else 0
            if lab_rank != vis_rank:
                high = lab if lab_rank > vis_rank else top
                extra.append(Finding(
                    level=high.level, kind=Kind.LABEL_MISMATCH, text=f"{lab.text} ≠ {top.text}"[:120],
                    member=lab.member, rule=RULE_MISMATCH, confidence=0.9,
                    detail=f"label {lab.text!r} ({lab.level.value if lab.level else 'public'}) disagrees with the "
                           f"visible marking {top.text!r} ({top.level.value if top.level else 'public'})"))
    today = None
    for f in findings:
        if not _counts(f):
            continue
        if f.declassify_date:
            today = today or _today()
            if f.declassify_date < today[: len(f.declassify_date)]:
                extra.append(replace(f, kind=Kind.QUALITY, rule=RULE_Q_EXPIRED, confidence=0.9,
                                     detail=f"declassification date {f.declassify_date} has passed: "
                                            "declassify the document or extend its period"))
        if f.rule == RULE_STAR and f.text.rstrip()[-1:] in STARS and not f.period and not f.declassify_condition:
            extra.append(replace(f, kind=Kind.QUALITY, rule=RULE_Q_NO_PERIOD, confidence=0.8,
                                 detail="a star with no period, date or condition: the statutory maximum applies"))
    heads = [f for f in visible if f.rule not in (RULE_PARA, RULE_PORTION) and f.level is not None]
    if heads:
        own = max(f.level.rank for f in heads if f.level is not None)
        for f in visible:
            if f.rule in (RULE_PARA, RULE_PORTION) and f.level is not None and f.level.rank > own:
                extra.append(replace(f, kind=Kind.QUALITY, rule=RULE_Q_PARA_ABOVE, confidence=0.85,
                                     detail="a paragraph marked above the document's own level"))
    return extra
