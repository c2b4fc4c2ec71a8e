"""Compile and cache YARA rules: the shipped level-word prefilter, site rules and keyword lists.

`rules/` is a leaf package: it imports nothing else of the project.

- Shipped rules (`rules/yara/*.yar`) are a fast prefilter on raw bytes: the level words in UTF-8,
  GB18030, Big5 and UTF-16 LE/BE byte forms (YARA's `wide` only interleaves NULs with ASCII, so CJK
  words are explicit hex strings; jumps tolerate spaces and zero-width characters inside a word).
  A file none of them matches is never decoded. The shapes are data (`prefilter_spec`); the same
  spec compiled for Hyperscan (`rules.shapes`) decides alike and much faster, and is used when
  the module is installed.
- `--rules DIR`: a site's own YARA files; their matches are findings of kind `rule`.
- `--keywords FILE`: one keyword a line (UTF-8), compiled to YARA strings in every encoding above;
  matches are findings of kind `keyword`.

Compiled rules are cached on disk keyed by the SHA-256 of every source, so a changed rule or
keyword list is recompiled and an unchanged one is loaded in milliseconds.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yara

from rules import vocabulary

SHIPPED_DIR = Path(__file__).parent / "yara"
#: Namespaces: what a match means.
NS_PREFILTER = "prefilter"
NS_RULE = "rule"
NS_KEYWORD = "keyword"
ENCODINGS = ("utf-8", "gb18030", "big5", "utf-16-le", "utf-16-be")


def _hex(b: bytes) -> str:
    return " ".join(f"{x:02X}" for x in b)


def word_hex_strings(word: str) -> list[tuple[str, str]]:
    """(encoding, YARA hex string body) for `word` in every encoding that can hold it."""
    out = []
    for enc in ENCODINGS:
        try:
            parts = [c.encode(enc) for c in word]
        except UnicodeEncodeError:
            continue
        out.append((enc, " ".join(_hex(p) for p in parts)))
    return out


def keyword_rule_source(keywords: list[str]) -> str:
    """YARA source matching each keyword in every encoding (ASCII keywords: nocase ascii wide)."""
    rules = []
    for i, kw in enumerate(keywords):
        strings = []
        if kw.isascii():
            esc = kw.replace("\\", "\\\\").replace('"', '\\"')
            strings.append(f'$k0 = "{esc}" ascii wide nocase')
        else:
            for j, (_enc, hx) in enumerate(word_hex_strings(kw)):
                strings.append(f"$k{j} = {{ {hx} }}")
        meta = kw.replace("\\", "\\\\").replace('"', '\\"')
        rules.append(f'rule kw_{i}\n{{\n  meta:\n    keyword = "{meta}"\n  strings:\n    '
                     + "\n    ".join(strings) + "\n  condition:\n    any of them\n}\n")
    return "\n".join(rules)


#: Encodings a site's keyword list is saved in, tried strictly in this order (a UTF-16 file says
#: so by its BOM; GB18030 decodes GBK and GB2312 files). Big5 is not guessed: nearly every Big5
#: byte pair is also valid GB18030, so a Big5 list must be saved as UTF-8.
_KEYWORD_ENCODINGS = ("utf-8-sig", "gb18030")


def _decode_keywords(data: bytes) -> str:
    # rules/ is a leaf package (it may not import the scanner's decoder); a keyword list is a short
    # file whose encoding is one of a handful, and a strict decode tells them apart.
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16")
    for enc in _KEYWORD_ENCODINGS:
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ValueError("keyword list is neither UTF-8, UTF-16 nor GB18030/GBK text")


def read_keywords(path: str | Path) -> list[str]:
    """One keyword a line (UTF-8, UTF-16 with a BOM, or GBK/GB18030); blank lines and `#` comments
    ignored."""
    words = []
    for line in _decode_keywords(Path(path).read_bytes()).splitlines():
        w = line.strip()
        if w and not w.startswith("#"):
            words.append(w)
    return words


@dataclass(frozen=True)
class RuleMatch:
    namespace: str
    rule: str
    #: keyword text for keyword rules; matched bytes (decoded, truncated) for site rules.
    text: str


class RuleSet:
    """Compiled YARA rules of one scan (prefilter + site rules + keywords), loaded once."""

    def __init__(self, rules_dir: str | Path | None = None, keywords_file: str | Path | None = None,
                 cache_dir: str | Path | None = None) -> None:
        sources: dict[str, str] = {}
        for p in sorted(SHIPPED_DIR.glob("*.yar")):
            sources[f"{NS_PREFILTER}:{p.name}"] = p.read_text(encoding="utf-8")
        if rules_dir:
            files = sorted(p for p in Path(rules_dir).rglob("*") if p.suffix in (".yar", ".yara") and p.is_file())
            if not files:
                raise ValueError(f"no .yar/.yara files in {rules_dir}")
            for p in files:
                sources[f"{NS_RULE}:{p}"] = p.read_text(encoding="utf-8")
        self.keywords: list[str] = read_keywords(keywords_file) if keywords_file else []
        if self.keywords:
            sources[f"{NS_KEYWORD}:list"] = keyword_rule_source(self.keywords)
        h = hashlib.sha256()
        for k in sorted(sources):
            h.update(k.encode() + b"\0" + sources[k].encode() + b"\0")
        self.digest = h.hexdigest()
        self._rules = _compile_cached(sources, self.digest, cache_dir)
        kw_only = {k: v for k, v in sources.items() if not k.startswith(NS_PREFILTER)}
        self._user = _compile_cached(kw_only, hashlib.sha256(self.digest.encode() + b"user").hexdigest(),
                                     cache_dir) if kw_only else None
        # The shipped shapes through Hyperscan when it is installed (same decisions as the YARA
        # rules, ~12x faster on secrecy prose: bench/prefilter_engines.py); else YARA alone.
        from rules import shapes  # a cycle at import time otherwise: shapes reads this module's spec

        self._shapes = shapes.load(cache_dir)

    @property
    def prefilter_engine(self) -> str:
        """Which engine decides the shipped shapes: `hyperscan` or `yara` (the fallback)."""
        return "yara" if self._shapes is None else "hyperscan"

    def prefilter(self, data: bytes) -> bool:
        """True when `data` may hold a marking (a marking-shaped hit) or a site rule/keyword matches."""
        if self._shapes is None:
            return bool(self._rules.match(data=data, fast=True, timeout=60))
        if self._shapes(data):
            return True
        return self._user is not None and bool(self._user.match(data=data, fast=True, timeout=60))

    def prefilter_offsets(self, data: bytes, limit: int = 4096) -> list[int]:
        """Offsets of the prefilter's marking-shaped hits in `data` (at most `limit`), sorted."""
        try:
            matches = self._rules.match(data=data, timeout=60)
        except yara.Error:  # too many matches for YARA: the first hit of each string still counts
            matches = self._rules.match(data=data, fast=True, timeout=60)
        out = sorted({inst.offset for m in matches for s in m.strings for inst in s.instances})
        return out[:limit]

    @property
    def has_user_rules(self) -> bool:
        """Site rules or keywords were given (`--rules`, `--keywords`)."""
        return self._user is not None

    def user_matches(self, data: bytes) -> list[RuleMatch]:
        """Site-rule and keyword matches in `data` (raw bytes or UTF-8 of extracted text)."""
        if self._user is None:
            return []
        out = []
        for m in self._user.match(data=data, timeout=60):
            ns = m.namespace.split(":", 1)[0]
            if ns == NS_KEYWORD:
                out.append(RuleMatch(NS_KEYWORD, m.rule, str(m.meta.get("keyword", m.rule))))
            else:
                text = ""
                for s in m.strings[:1]:
                    for inst in s.instances[:1]:
                        text = bytes(inst.matched_data[:64]).decode("utf-8", errors="replace")
                out.append(RuleMatch(NS_RULE, m.rule, text))
        return out


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "baomi" / "rules"


def own_cache_entry(path: Path) -> bool:
    """A compiled-rules cache entry is loaded only when this user wrote it."""
    return path.is_file() and path.stat().st_uid == os.getuid()


def save_cache_entry(path: Path, fill: Callable[[str], object]) -> None:
    """Write a cache entry atomically: `fill(tmp)` writes a private temp file beside `path`, which
    then replaces it. An unwritable cache only costs compile time; no temp file is left behind."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        fill(tmp)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _compile_cached(sources: dict[str, str], digest: str, cache_dir: str | Path | None) -> yara.Rules:
    cdir = Path(cache_dir) if cache_dir else default_cache_dir()
    path = cdir / f"{digest}.yarc"
    if own_cache_entry(path):
        try:
            return yara.load(str(path))
        except yara.Error:
            pass  # a corrupt cache entry is rebuilt
    rules = yara.compile(sources=sources)
    save_cache_entry(path, rules.save)
    return rules


_IDENT = re.compile(r"[^A-Za-z0-9_]")


def _encodable(c: str, enc: str) -> bool:
    try:
        c.encode(enc)
        return True
    except UnicodeEncodeError:
        return False


def _alts(items: list[str], enc: str) -> str:
    return "( " + " | ".join(dict.fromkeys(_hex(x.encode(enc)) for x in items if _encodable(x, enc))) + " )"


#: What can follow 密 in a marking: a star (one space may stand before it), a nonstandard
#: separator, the bracket of a parenthesised period with its first character, a line end.
#: Stars, separators and period openers come from rules.vocabulary (the grammar's own list).
_AFTER_MI = ([*vocabulary.STARS_RAW] + [" " + c for c in "★☆*"] + ["\u3000★", "  ★", "\t★", "\u00a0★"]
             + [*vocabulary.ALT_SEPS]
             + ["\n", "\r", " \n", "\u3000\n", "\u2028", "\x0c",
                # a table cell (`| 密级 | 机密 |`, tab-separated rows), a head/foot line that spaces
                # the mark away from 份号/特急/page numbers (`机密　　第 1 页`)
                " |", "|", "\t", "\u3000\u3000", "  "]
             + [b + d for b in vocabulary.OPEN_BRACKETS for d in vocabulary.PERIOD_OPENERS])
#: The closing bracket of a paragraph mark is common after 密 in prose too (（以下简称保密）), so it
#: counts only after a level character.
_CLOSERS = ["）", ")", "】", "]", "〕"]
_LEVEL_FIRST = vocabulary.LEVEL_FIRST
#: `内部` closing a line (also the first line of a file, with no newline before it) or a bracket.
#: (`注意保存` alone was measured: +7 % prefilter time on real prose; `内部资料 注意保存` is
#: caught by 内部资料, the rarer `内部文件 注意保存` in a plain-text file is not.)
_INTERNAL = ["内部资料", "內部資料", "内部★", "内部\n", "内部\r", "內部\n", "內部\r", "内部】"]
#: Tick-box fields (`□机密 ■秘密`, `☑内部 ☐公开`, `[√]机密`): a box right before or after a level
#: word or 内部; and 商密 marks (`核心商密`, `商密★` is caught by the star strings).
_TICK_FORMS = ([b + w for b in (*vocabulary.TICKED, *vocabulary.UNTICKED, "]", "］")
                for w in ("绝密", "机密", "秘密", "内部", "絕密", "機密")]
               + ["密" + sp + b for sp in ("", " ", "\u3000") for b in (*vocabulary.TICKED, *vocabulary.UNTICKED)]
               + ["商密"])
_LABELS = [w + c for w in ("密级", "密級") for c in ("：", ":", " ：")]


def _atom_friendly(b: bytes, enc: str) -> bytes:
    """Drop the lead byte of a UTF-8 string's first CJK character.

    YARA picks a string's atom near its start; for `密★` that was 密's own bytes, common in
    secrecy prose (保密), so every 密 was verified against every such string (measured: the
    string cost as much as searching for 密 alone). Without its lead byte the string begins with
    bytes that only occur together with the follower: per-file cost 70 µs → 31 µs (empty rule 24);
    `密\n` likewise (YARA shuns 0x0A in atoms, so it fell back to 密 alone).
    A superset for a prefilter: another character ending in the same two bytes also matches."""
    if enc == "utf-8" and len(b) >= 4 and 0xE0 <= b[0] <= 0xEF:
        return b[1:]
    return b


def _lead_word(c: str, enc: str) -> int:
    """The two bytes of `c`'s encoding that end right before 密, as a YARA uint16 reads them."""
    b = c.encode(enc)[-2:]
    return int.from_bytes(b, "little" if enc == "utf-16-le" else "big")


@dataclass(frozen=True)
class Shape:
    """One string of the shipped prefilter: literal bytes, or a regex over bytes (the syntax
    YARA and Hyperscan both read: `\\xHH`, classes, alternations, `^` = start of the data)."""

    name: str  # the YARA string's identifier, without `$`
    literal: bytes | None = None
    regex: str | None = None
    comment: str = ""
    #: Written as a YARA text string ("(S) ") rather than a hex string.
    text: bool = False


@dataclass(frozen=True)
class CloseRule:
    """密 + a closing bracket in one encoding, counted only after a level character: a hit of a
    string at offset @ counts when the two bytes at @ - 2 - `cut` are one of `leads` (the two
    bytes a level character ends in, read as `reader` reads them)."""

    enc: str
    strings: tuple[Shape, ...]
    cut: int
    leads: tuple[int, ...]
    reader: str  # "uint16" (little-endian) or "uint16be"

    def lead_bytes(self) -> list[bytes]:
        if self.reader == "uint16":
            return [w.to_bytes(2, "little") for w in self.leads]
        return [w.to_bytes(2, "big") for w in self.leads]


@dataclass(frozen=True)
class PrefilterSpec:
    """Every marking shape of the prefilter, as data: rules/yara/levels.yar is rendered from it
    (`prefilter_source`), and so is the Hyperscan database of `rules.shapes`, so the two engines
    decide alike by construction."""

    #: Rule shape_cn: any of these strings …
    cn: tuple[Shape, ...]
    #: … or the data ending in 密 (a bare level on the last line), in any of these byte forms.
    ends: tuple[bytes, ...]
    #: Rules shape_close_*: 密 + closing bracket after a level character.
    close: tuple[CloseRule, ...]
    #: Rule shape_english: banners, portion marks, fullwidth banner words.
    english: tuple[Shape, ...]


def ends() -> tuple[bytes, ...]:
    """密 in every encoding: data ending in one passes the prefilter (a bare level on the last line)."""
    return tuple("密".encode(enc) for enc in ENCODINGS)


def prefilter_spec() -> PrefilterSpec:
    """The shipped prefilter's shapes (see `prefilter_source` for what they key on)."""
    cn: list[Shape] = []
    for enc in ENCODINGS:
        # One string per byte form (no alternations): each gets a selective atom of its own.
        forms = ["密" + f for f in _AFTER_MI] + _LABELS + _INTERNAL + _TICK_FORMS
        if enc == "utf-8":
            # In UTF-8 a star itself is the cheapest selective atom and is rare in prose: one
            # string per star covers every gap before it (spaces, tabs, NBSP, ideographic space).
            forms = [f for f in forms if "★" not in f and "☆" not in f] + ["★", "☆"]
        elif enc.startswith("utf-16"):
            # Likewise in UTF-16: ★ (U+2605) and ☆ read across two characters would need a
            # U+05xx/U+06xx neighbour (Hebrew, Arabic), so the star alone stays selective and
            # covers a zero-width character between 密 and the star.
            forms = forms + ["★", "☆"]
        elif enc == "gb18030":
            # GB18030 encodes zero-width characters (4 bytes); ★ alone is two bytes that
            # misaligned CJK text forms often, so the invisible character is spelled out.
            forms = forms + ["密" + z + s for z in vocabulary.ZERO_WIDTH for s in "★☆"]
        for f in forms:
            if _encodable(f, enc):
                cn.append(Shape(f"s{len(cn)}", literal=_atom_friendly(f.encode(enc), enc), comment=f"{f!r} {enc}"))
    # 密 + a closing bracket (paragraph mark `（秘密）`) is common in prose (（以下简称保密）): the
    # string is only 密+bracket (a selective atom) and the condition checks the level character
    # before it, two bytes at a time, at each hit.
    close: list[CloseRule] = []
    for enc in ENCODINGS:
        strings = []
        cut = 0
        for k, c in enumerate(c for c in _CLOSERS if _encodable("密" + c, enc)):
            full = ("密" + c).encode(enc)
            body = _atom_friendly(full, enc)
            cut = len(full) - len(body)
            strings.append(Shape(f"c{k}", literal=body, comment=f"密{c} {enc}"))
        leads = tuple(sorted({_lead_word(c, enc) for c in _LEVEL_FIRST if _encodable(c, enc)}))
        close.append(CloseRule(enc, tuple(strings), cut, leads, "uint16" if enc == "utf-16-le" else "uint16be"))
    english = [
        Shape("b0", regex="(^|\\n|\\xEF\\xBB\\xBF)[ \\t#>*|(,]*(\\xE2\\x80\\x9C|UK |US |USA |NATO )?(TOP SECRET|SECRET|CONFIDENTIAL)",
              comment="banners at a line start"),
        Shape("b_label", regex="(Classification|CLASSIFICATION|classification)[ \\t]*:[ \\t]*(TOP SECRET|SECRET|CONFIDENTIAL|Top Secret|Secret|Confidential)",
              comment="Classification: SECRET"),
        # letter-spaced and OCR-damaged banners, UNCLAS/LOU cables, portion marks (issue 15)
        Shape("b_class", regex="REPORT CLASS (TOP SECRET|SECRET|CONFIDENTIAL)"),
        Shape("b_spaced", regex="(^|\\n)([ \\t#>*|(,'\"]|\\xE2\\x80[\\x98\\x9C])*(S ?E ?C ?R ?E ?T|s ECRE|s E C R|C ?O ?N ?F ?I ?D|c ONFI|c O N F|[A-Z0-9]{3}-?SECRET|C O N F I D|T O P  ?S|UNCLAS|LIMITED OFFICIAL USE|FOR OFFICIAL USE|SENSITIVE BUT|OFFICIAL.SENSITIVE|CONTROLLED UNCLASSIFIED|"
              "[A-Z0-9]{3} [A-Z0-9]{6}([ \\t\\r\\n\\/]|$)|[A-Z0-9]ECRET|S[A-Z0-9]CRET|SE[A-Z0-9]RET|SEC[A-Z0-9]ET|"
              "SECR[A-Z0-9]T|SECRE[A-Z0-9]|C[O0]NF)"),
    ]
    english += [Shape(f"p{i}", literal=p.encode(), text=True) for i, p in enumerate(
        ("(S) ", "(C) ", "(TS) ", "(U) ", "(S//", "(TS//", "(C//", "(SBU) ", "(U//"), start=1)]
    n = 1
    # Fullwidth banners (typed with a Chinese input method): rare in any prose, so the word itself.
    for enc in ENCODINGS:
        for w in vocabulary.BANNER_WORDS_FULLWIDTH:
            if _encodable(w, enc):
                english.append(Shape(f"w{n}", literal=w.encode(enc), comment=f"{w!r} {enc}"))
                n += 1
    for enc in ("utf-16-le", "utf-16-be"):
        for w in ("SECRET", "CONFIDENTIAL"):
            # the word itself (upper case): a banner anywhere on its line, behind spaces, a BOM
            # or `Classification:` — upper-case SECRET is rare in UTF-16 text that is not one
            english.append(Shape(f"b{n}", literal=w.encode(enc), comment=f"{w!r} {enc}"))
            n += 1
    return PrefilterSpec(tuple(cn), ends(), tuple(close), tuple(english))


def _yara_string(s: Shape) -> str:
    if s.regex is not None:
        body = f"/{s.regex}/"
    elif s.text:
        body = '"' + (s.literal or b"").decode("ascii") + '"'
    else:
        body = "{ " + _hex(s.literal or b"") + " }"
    return f"    ${s.name} = {body}" + (f"  // {s.comment}" if s.comment else "")


def prefilter_source() -> str:
    """The shipped prefilter (rules/yara/levels.yar): marking-shaped bytes in every encoding.

    A marking puts a level word before ★/☆/*, a separator or bracketed period, a paragraph
    mark's closing bracket or a line end; or it is a 密级： label, an English banner at a line
    start, an internal mark. The rules key on 密 plus what follows it (plus the level character
    before it where the follower is common in prose), so they stay selective in secrecy prose,
    where level words as such are everywhere; bytes without any hit are never decoded.
    A handful of strings per encoding keeps the pass close to a plain level-word `yara -r`.
    """
    spec = prefilter_spec()
    lines = ["// Generated by rules.loader.prefilter_source(); tests check the shipped file matches.",
             "// Marking-shaped level words of 国家秘密标志 in UTF-8, GB18030, Big5 and UTF-16 LE/BE.", "",
             "rule shape_cn\n{\n  strings:"]
    lines += [_yara_string(s) for s in spec.cn]
    ends = [" and ".join(f"uint8(filesize - {len(mi) - i}) == 0x{b:02X}" for i, b in enumerate(mi)) for mi in spec.ends]
    lines.append("  condition:\n    any of them or\n    " + " or\n    ".join(f"({e})" for e in ends) + "\n}\n")
    for cr in spec.close:
        lines.append(f"rule shape_close_{cr.enc.replace('-', '')}\n{{\n  strings:")
        lines += [_yara_string(s) for s in cr.strings]
        test = " or ".join(f"{cr.reader}(@[i] - {2 + cr.cut}) == 0x{w:04X}" for w in cr.leads)
        lines.append(f"  condition:\n    for any of ($c*) : ( for any i in (1..#) : ( {test} ) )\n}}\n")
    lines.append("rule shape_english\n{\n  strings:\n" + "\n".join(_yara_string(s) for s in spec.english))
    lines.append("  condition:\n    any of them\n}\n")
    return "\n".join(lines)
