"""The marking grammar (markings.md §1, §3): recognise and parse 国家秘密标志 in normalised text.

Two entry points:
- `find_star_forms(line)` — every `密级★…` shaped candidate in a line, with its span, whatever the
  context (the classifier decides marking vs mention);
- `parse_line_form(line)` — whole-line forms: a bare level (`机密`, `秘 密`), a label
  (`密级：机密`), a paragraph mark (`（秘密）本段…`), an internal mark (`工作秘密`, `内部`),
  an English banner (`TOP SECRET//NOFORN`) or portion mark (`(S) …`).
Input must have gone through `scanner.normalize.normalize` (NFKC, traditional folded).

Forms and their parse:
    机密★10年          period {"years": 10}
    秘密★6个月          period {"months": 6}
    绝密★长期           period "long_term"
    机密★2030年12月31日  declassify_date "2030-12-31"
    秘密★项目验收后解密   declassify_condition "项目验收后解密"
    秘密★              no period (statutory maximum applies)
    机密·10年 / 机密(10年) / 绝密★(30年)   same, flagged nonstandard (标注不规范)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from rules import vocabulary
from scanner.banners import portion_mark
from scanner.model import Level, Marking

_S = r"[ \t]*"


def _spaced(word: str) -> str:
    return _S.join(re.escape(c) for c in word)


LEVEL_WORDS = {"绝密": Level.TOP_SECRET, "机密": Level.SECRET, "秘密": Level.CONFIDENTIAL}
_LEVEL = "(?P<lv>" + "|".join(_spaced(w) for w in LEVEL_WORDS) + ")"
#: Accepted for ★ (NFKC has already folded ＊ to *): one definition in rules.vocabulary.
STARS = vocabulary.STARS
_STAR = f"[{re.escape(STARS)}]"
_ALTSEP = f"[{re.escape(vocabulary.ALT_SEPS)}]"

# A number of 1-3 digits, spaces tolerated between them (`1 2 年`), or in Chinese numerals up to
# 九十九 (`十年`, `二十年`, `六个月`).
_D3 = rf"(?:\d(?:{_S}\d){{0,2}}|[{vocabulary.PERIOD_NUMERALS}]{{1,3}})"
_PERIOD = re.compile(rf"(?:(?P<years>{_D3}){_S}年(?:{_S}(?P<ymonths>{_D3}){_S}个{_S}月)?|(?P<months>{_D3}){_S}个{_S}月"
                     rf"|(?P<lt>长{_S}期))")
# Spaces between the digits are tolerated in the 年月日 form (`2 0 3 1 年1 2 月`: text drawn
# glyph by glyph in a PDF, or typed with spaced digits), not in the dotted one.
_D2 = rf"\d(?:{_S}\d)?"
_DATE = re.compile(rf"(?P<y>(?:1{_S}9|2{_S}0|2{_S}1){_S}\d{_S}\d){_S}(?:年{_S}(?P<m>{_D2}){_S}月(?:{_S}(?P<d>{_D2}){_S}日)?"
                   rf"|[.\-/](?P<m2>\d{{1,2}})[.\-/](?P<d2>\d{{1,2}}))(?:{_S}(?:解{_S}密|前))?")
# A declassify condition: free words after ★ up to the end of the token.
_COND = re.compile(r"[^\s★☆*，。；;,：:、!！?？“”\"'()\[\]【】<>《》]{2,40}")
_SP = re.compile(_S)
_CLOSE = re.compile(rf"{_S}\)")

_HEAD = re.compile(rf"(?<!工作)(?<!商业)(?<!技术){_LEVEL}{_S}(?:(?P<star>{_STAR})(?!{_STAR})|(?P<alt>{_ALTSEP})|(?P<paren>\())")

_DECOR = " \t\"'“”‘’「」『』《》<>[]【】〔〕〖〗()#*_~|>-=+.:：、，,。;；!！?？·•…"
_BARE = re.compile(rf"^(?:密{_S}级{_S}[:：]?{_S})?{_LEVEL}$")
#: A label naming the level field: 密级, 文件密级, the GB/T 9704 field name 密级和保密期限 (or
#: 密级（保密期限）), 保密等级; separated from its value by a colon, spaces or a table rule `|`.
_LABEL = re.compile(rf"^(?:(?:文{_S}件|文{_S}档|资{_S}料){_S})?(?:密{_S}级(?:{_S}(?:和|及|与|/){_S}保{_S}密{_S}期{_S}限"
                    rf"|{_S}\({_S}保{_S}密{_S}期{_S}限{_S}\))?|保{_S}密{_S}等{_S}级|classification)"
                    rf"{_S}[:：|]?{_S}(?P<rest>.+)$", re.I)
#: A level opening a label's value and followed by other fields of a form row (not by more words).
_LABEL_LEVEL = re.compile(rf"{_LEVEL}(?=[ \t]+\S|[ \t]*[;；,，|])")
_LABEL_PERIOD = re.compile(rf"保{_S}密{_S}期{_S}限{_S}[:：]?{_S}")
_PARA = re.compile(rf"^[(\[【〔〖]{_S}{_LEVEL}{_S}[)\]】〕〗]{_S}(?P<body>\S.*)?$")
#: The keeping instruction that may follow an internal mark: 注意保存 / 妥善保管 / 注意保密 ….
_KEEP = rf"(?:注{_S}意|妥{_S}善){_S}(?:保{_S}存|保{_S}管|保{_S}密)"
_INTERNAL = re.compile(rf"^(?:(?P<work>工{_S}作{_S}秘{_S}密)|内{_S}部(?:{_S}资{_S}料)?(?:{_S}[,，、]?{_S}{_KEEP})?"
                       rf"|内{_S}部{_S}(?:文{_S}件|材{_S}料|刊{_S}物){_S}[,，、]?{_S}{_KEEP}"
                       # 商业秘密 marks (国资委: 核心商密★10年, 普通商密★5年); 商业秘密 alone on a line
                       # is a heading of a law as often as a mark, so it counts only with a ★.
                       rf"|(?P<biz>(?:核{_S}心|普{_S}通)?{_S}商{_S}密(?:{_S}[一二三123]{_S}级)?"
                       rf"|(?:核{_S}心|普{_S}通)(?:{_S}商{_S}业{_S}秘{_S}密)|商{_S}业{_S}秘{_S}密(?={_S}{_STAR})))"
                       rf"(?:{_S}{_STAR}{_S}.{{0,20}})?$")
#: A classification field's value that is an organisation's own label, not a state-secret level:
#: 仅限XX内部使用, 内部公开, 限内部使用, 受控 (and 公开/非密: public, no mark at all).
_ORG_VALUE = re.compile(rf"^(?:仅{_S}限.{{0,20}}?使{_S}用|限.{{0,16}}?内{_S}部{_S}使{_S}用|内{_S}部{_S}(?:公{_S}开|使{_S}用)"
                        rf"|受{_S}控|内{_S}控)$")
_PUBLIC_VALUE = re.compile(rf"^(?:公{_S}开|非{_S}密|不{_S}涉{_S}密|非{_S}涉{_S}密|无|普{_S}通|unclassified|public|general)$", re.I)
_BANNER = re.compile(r"^(?P<en>TOP SECRET|SECRET|CONFIDENTIAL)(?P<cav>(?:\s*//\s*[A-Z0-9][A-Z0-9 ,\-/]*)?)$")
_EN_LEVEL = {"TOP SECRET": Level.TOP_SECRET, "SECRET": Level.SECRET, "CONFIDENTIAL": Level.CONFIDENTIAL,
             "TS": Level.TOP_SECRET, "S": Level.SECRET, "C": Level.CONFIDENTIAL}


@dataclass(frozen=True)
class Hit:
    start: int
    end: int
    marking: Marking


def _squash(s: str) -> str:
    return re.sub(r"[ \t]+", "", s)


_CN_DIGIT = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def _number(s: str) -> int | None:
    """A period's number: digits (spaces squashed) or Chinese numerals up to 九十九 (十, 十五,
    二十, 三十五); None for a malformed numeral (十十)."""
    s = _squash(s)
    if s.isdigit():
        return int(s)
    tens, _, ones = s.partition("十")
    if not _:
        return _CN_DIGIT.get(s) if len(s) == 1 else None
    t = 1 if not tens else _CN_DIGIT.get(tens) if len(tens) == 1 else None
    o = 0 if not ones else _CN_DIGIT.get(ones) if len(ones) == 1 else None
    return None if t is None or o is None else 10 * t + o


def _level(m: re.Match[str]) -> Level:
    return LEVEL_WORDS[_squash(m.group("lv"))]


def _period_or_date(line: str, pos: int) -> tuple[int, dict[str, object]] | None:
    pd = _period_or_date_core(line, pos)
    if pd is not None:
        t = _TAIL.match(line, pd[0])
        if t:  # 长期有效, 10年以内: a few more words of the same token belong to the period
            return t.end(), pd[1]
    return pd


#: Up to four CJK characters closing a period's token (then a space, punctuation or the line end).
_TAIL = re.compile(r"[\u4e00-\u9fff]{1,4}(?=$|[\s,，。;；:：)\]】|])")


def _period_or_date_core(line: str, pos: int) -> tuple[int, dict[str, object]] | None:
    m = _DATE.match(line, pos)
    if m:
        y = int(_squash(m.group("y")))
        mo, d = _squash(m.group("m") or m.group("m2") or ""), _squash(m.group("d") or m.group("d2") or "")
        if mo and 1 <= int(mo) <= 12 and (not d or 1 <= int(d) <= 31):
            iso = f"{y:04d}-{int(mo):02d}-{int(d):02d}" if d else f"{y:04d}-{int(mo):02d}"
            return m.end(), {"declassify_date": iso}
    m = _PERIOD.match(line, pos)
    if m:
        years, months = _number(m.group("years") or ""), _number(m.group("ymonths") or m.group("months") or "")
        if m.group("years") and years is not None:
            period = {"years": years}
            if m.group("ymonths") and months is not None:  # 1年6个月
                period["months"] = months
            return m.end(), {"period": period}
        if m.group("months") and months is not None:
            return m.end(), {"period": {"months": months}}
        if not m.group("lt"):
            return None
        return m.end(), {"period": "long_term"}
    return None


def find_star_forms(line: str) -> list[Hit]:
    """Every `level★…`-shaped candidate in one normalised line."""
    if "密" not in line:
        return []
    hits = []
    for m in _HEAD.finditer(line):
        pos = _SP.match(line, m.end()).end()  # type: ignore[union-attr]
        fields: dict[str, object] = {}
        end = m.end()
        nonstandard = False
        if m.group("star"):
            nonstandard = m.group("star") != "★"
            if line.startswith("(", pos):
                inner = _period_or_date(line, _SP.match(line, pos + 1).end())  # type: ignore[union-attr]
                close = _CLOSE.match(line, inner[0]) if inner else None
                if inner and close:
                    end, fields, nonstandard = close.end(), inner[1], True
            else:
                pd = _period_or_date(line, pos)
                if pd:
                    end, fields = pd
                else:
                    c = _COND.match(line, pos)
                    if c:
                        end, fields = c.end(), {"declassify_condition": c.group(0)}
        else:
            if m.group("paren") and line.startswith(tuple(STARS), pos):
                pos = _SP.match(line, pos + 1).end()  # type: ignore[union-attr]  # 机密（★10年）
            pd = _period_or_date(line, pos)
            if pd is None:
                continue
            end, fields = pd
            if m.group("paren"):
                close = _CLOSE.match(line, end)
                if not close:
                    continue
                end = close.end()
            nonstandard = True
        # `秘　密` (a space inside the level word) is the pre-2012 layout: still a marking.
        if " " in m.group("lv") or "\t" in m.group("lv"):
            nonstandard = True
        marking = Marking(level=_level(m), text=_squash(line[m.start():end]), form="star",
                          nonstandard=nonstandard, **fields)  # type: ignore[arg-type]
        hits.append(Hit(m.start(), end, marking))
    return hits


def strip_decor(s: str) -> str:
    return s.strip(_DECOR)


#: Punctuation that closes a clause, separates the items of an enumeration or opens a list.
_CLAUSE_END = ("。", "；", ";", "，", ",", "、", "．", "：", ":")


def parse_line_form(line: str) -> Marking | None:
    """A whole-line marking form (bare, label, paragraph, internal, banner, portion), else None."""
    s = line.strip()
    if not s:
        return None
    if "密" in s or "内" in s or s[:14].lower() == "classification":
        core = strip_decor(s)
        # `秘密。` / `绝密、`: a level word closing a clause or listed in an enumeration (a line
        # of hard-wrapped prose, a cell of a list) is a word of the text, not a mark on it.
        m = _BARE.match(core) if not s.endswith(_CLAUSE_END) else None
        if m:
            lv = m.group("lv")
            return Marking(level=_level(m), text=_squash(core), form="bare",
                           nonstandard=" " in lv or "\t" in lv)
        m = _PARA.match(s)
        if m:
            return Marking(level=_level(m), text=_squash(s[: m.start("body")] if m.group("body") else s),
                           form="paragraph")
        m = _LABEL.match(core)
        if m:
            rest = strip_decor(m.group("rest"))
            hits = find_star_forms(rest)
            if hits and hits[0].start == 0:
                return replace(hits[0].marking, form="label")
            b = _BARE.match(rest) or _LABEL_LEVEL.match(rest)
            if b:
                # 密级：秘密, or a form row 密级：秘密  保密期限：5年 / 份数：5 (the level opens the value)
                period = _LABEL_PERIOD.search(rest)
                pd = _period_or_date(rest, period.end()) if period else None
                return Marking(level=_level(b), text=_squash(core[: len(core) - len(rest)] + b.group(0)),
                               form="label", **(pd[1] if pd else {}))  # type: ignore[arg-type]
            im = _INTERNAL.match(rest)
            if im:
                return Marking(level=Level.INTERNAL, text=_squash(core), form="label", category=_category(im))
            if _ORG_VALUE.match(rest):
                return Marking(level=Level.INTERNAL, text=_squash(core), form="label", category="internal")
            e = _BANNER.match(rest) or (_BANNER.match(rest.upper()) if core[:14].lower() == "classification" else None)
            if e:  # Classification: SECRET//NOFORN (a form's field may write the value `Secret`)
                cav = tuple(c.strip() for c in e.group("cav").split("//") if c.strip())
                return Marking(level=_EN_LEVEL[e.group("en")], text=core, form="label", caveats=cav)
            return None
        im = _INTERNAL.match(core)
        if im:
            return Marking(level=Level.INTERNAL, text=_squash(core), form="internal", category=_category(im))
    if "SECRET" in s or "CONFIDENTIAL" in s or "(" in s[:8]:
        m = _BANNER.match(s)
        if m:
            cav = tuple(c.strip() for c in m.group("cav").split("//") if c.strip())
            return Marking(level=_EN_LEVEL[m.group("en")], text=s, form="banner", caveats=cav)
        pm = portion_mark(s)
        if pm is not None and pm[1] is not None:
            return pm[1]
    return None


def _category(m: re.Match[str]) -> str:
    return "commercial_secret" if m.group("biz") else "work_secret" if m.group("work") else "internal"


def is_public_value(value: str) -> bool:
    """A classification field's value saying the document is public (公开, 非密, Public)."""
    return bool(_PUBLIC_VALUE.match(strip_decor(value)))


def paragraph_mark(head: str) -> Marking | None:
    """A paragraph mark (`（秘密）`, `【机密】`) opening `head` (normalised), followed by text."""
    m = _PARA.match(head)
    if m and m.group("body"):
        return Marking(level=_level(m), text=_squash(head[: m.start("body")]), form="paragraph")
    return None


def parse_marking(text: str) -> Marking | None:
    """Parse a string that is meant to be exactly one marking (a property value, a cell)."""
    from scanner.normalize import normalize

    s = normalize(text).strip()
    hits = find_star_forms(s)
    if hits and not strip_decor(s[: hits[0].start]) and not strip_decor(s[hits[0].end:]):
        return hits[0].marking
    return parse_line_form(s)


# -- tick-box fields -------------------------------------------------------------------------
# A form or template carries the level as a ticked choice: `密级：□绝密 □机密 ■秘密`,
# `☑内部 ☐公开`, `[√]机密`, `√秘密`. The ticked option is the document's level; a row with no
# tick is a blank form (no marking, and not a list of mentions either); a tick on 公开 is public.

#: Option words of a classification choice, longest first: (level or None for public, category).
_OPTION_WORDS: dict[str, tuple[Level | None, str | None]] = {
    "核心商密": (Level.INTERNAL, "commercial_secret"), "普通商密": (Level.INTERNAL, "commercial_secret"),
    "商业秘密": (Level.INTERNAL, "commercial_secret"), "工作秘密": (Level.INTERNAL, "work_secret"),
    "内部资料": (Level.INTERNAL, "internal"), "内部公开": (Level.INTERNAL, "internal"),
    "内部使用": (Level.INTERNAL, "internal"), "不涉密": (None, "public"), "非涉密": (None, "public"),
    "绝密": (Level.TOP_SECRET, None), "机密": (Level.SECRET, None), "秘密": (Level.CONFIDENTIAL, None),
    "商密": (Level.INTERNAL, "commercial_secret"), "内部": (Level.INTERNAL, "internal"),
    "受控": (Level.INTERNAL, "internal"), "公开": (None, "public"), "非密": (None, "public"),
}
_OPTION = "(?:" + "|".join(_spaced(w) for w in _OPTION_WORDS) + ")"
_BOX_CHARS = vocabulary.TICKED + vocabulary.UNTICKED
#: A box or an opening bracket somewhere in a line: the precondition of a tick-box field (one C
#: scan; a generator over the line's characters was a tenth of a 1 MB prose text's verdict).
_BOX_OR_OPEN = re.compile(rf"[{re.escape(_BOX_CHARS)}\[(]")
_BOX = (rf"(?:[{re.escape(_BOX_CHARS)}]|[\[(]{_S}[{re.escape(vocabulary.BRACKET_TICKS)}]?{_S}[\])])")
_PRE_OPT = re.compile(rf"(?P<box>{_BOX}){_S}(?P<w>{_OPTION})")
_POST_OPT = re.compile(rf"(?P<w>{_OPTION}){_S}(?P<box>{_BOX})")
_BOX_RE = re.compile(_BOX)
#: The field name before the choices (密级：, 文件密级, 密级和保密期限, 保密等级, 文件类别).
_CHOICE_LABEL = re.compile(rf"^(?:(?:文{_S}件|文{_S}档|资{_S}料){_S})?(?:密{_S}级(?:{_S}(?:和|及|与|/){_S}保{_S}密{_S}期{_S}限)?"
                           rf"|保{_S}密{_S}等{_S}级|安{_S}全{_S}级{_S}别|文{_S}件{_S}类{_S}别|秘{_S}密{_S}等{_S}级){_S}[:：|]?{_S}")
#: Other fields of the same form row, after the choices (保密期限：5年, 份数：3).
_NEXT_FIELD = re.compile(rf"{_S}(?:保{_S}密{_S}期{_S}限|期{_S}限|份{_S}数|份{_S}号|编{_S}号|页{_S}数|印{_S}数|紧{_S}急{_S}程{_S}度)")
#: Characters that may separate choices.
_CHOICE_SEP = " \t,，、;；/|"
#: Tick characters that also serve as list bullets: a column of lines all "ticked" with one of
#: them is a bulleted list of levels, not a form.
BULLET_TICKS = frozenset("●■◉⬛◼")


@dataclass(frozen=True)
class Choice:
    """One option of a tick-box field."""

    word: str
    ticked: bool
    box: str  # the box or mark as written


@dataclass(frozen=True)
class ChoiceField:
    """A tick-box classification field: its options and whether it had a field name."""

    choices: tuple[Choice, ...]
    labelled: bool
    text: str  # the field as found, spaces squashed
    #: A period or date from the row's 保密期限 field (`{"period": {"years": 10}}`), if any.
    fields: tuple[tuple[str, object], ...] = ()
    #: A ticked box before a whole ★ form (`☑秘密★5年`, `■秘密（5年）`): that marking.
    star: Marking | None = None

    @property
    def ticked(self) -> tuple[Choice, ...]:
        return tuple(c for c in self.choices if c.ticked)

    def marking(self) -> Marking | None:
        """The chosen level; None for a blank form, a tick on 公开, or all options ticked (a
        bulleted list)."""
        if self.star is not None:
            return replace(self.star, form="checkbox", text=self.text)
        ticked = self.ticked
        if not ticked or (len(self.choices) > 1 and len(ticked) == len(self.choices)):
            return None
        level, category = max((_OPTION_WORDS[c.word] for c in ticked), key=lambda o: o[0].rank if o[0] else 0)
        if level is None:
            return None
        return Marking(level=level, text=self.text, form="checkbox", category=category,
                       **dict(self.fields))  # type: ignore[arg-type]


def _is_ticked(box: str) -> bool:
    b = box.strip()
    if len(b) == 1:
        return b in vocabulary.TICKED
    inner = b[1:-1].strip()
    return bool(inner) and inner in vocabulary.BRACKET_TICKS


def parse_choice_field(line: str) -> ChoiceField | None:
    """A tick-box classification field in one normalised line, else None.

    The whole line must be the field: an optional field name, then options each with a box
    before (`□机密`) or after (`机密□`) it, separated by spaces or punctuation, optionally
    followed by the next field of the form row (保密期限…)."""
    s = line.replace("&nbsp;", " ").strip(" \t|")
    if not s or _BOX_OR_OPEN.search(s) is None:
        return None
    lab = _CHOICE_LABEL.match(s)
    rest = s[lab.end():] if lab else s
    nf = _NEXT_FIELD.search(rest)
    fields: tuple[tuple[str, object], ...] = ()
    if nf:
        period = _LABEL_PERIOD.search(rest, nf.start())
        pd = _period_or_date(rest, period.end()) if period else None
        fields = tuple(pd[1].items()) if pd else ()
        rest = rest[: nf.start()]
    rest = rest.strip(_CHOICE_SEP)
    if not rest:
        return None
    first_box = _BOX_RE.search(rest)
    if first_box is None:
        return None
    if first_box.start() == 0 and _is_ticked(first_box.group(0)):
        tail = rest[first_box.end():].lstrip(" \t")
        hits = find_star_forms(tail)
        if hits and hits[0].start == 0 and not strip_decor(tail[hits[0].end:]):
            word = _squash(tail[: hits[0].end])
            choice = Choice(hits[0].marking.text[:2], True, _squash(first_box.group(0)))
            shown = _squash(s[: lab.end()]) if lab else ""
            return ChoiceField((choice,), lab is not None, shown + choice.box + word, (), hits[0].marking)
    pat = _PRE_OPT if first_box.start() == 0 else _POST_OPT
    choices: list[Choice] = []
    pos = 0
    for m in pat.finditer(rest):
        if rest[pos: m.start()].strip(_CHOICE_SEP):
            return None  # words between the options: a sentence about them, not a field
        w = _squash(m.group("w"))
        choices.append(Choice(w, _is_ticked(m.group("box")), _squash(m.group("box"))))
        pos = m.end()
    if not choices or rest[pos:].strip(_CHOICE_SEP):
        return None
    shown = _squash(s[: lab.end()]) if lab else ""
    ticked = [c for c in choices if c.ticked]
    text = shown + " ".join(f"{c.box}{c.word}" if pat is _PRE_OPT else f"{c.word}{c.box}"
                            for c in (ticked or choices))
    return ChoiceField(tuple(choices), lab is not None, text, fields)
