"""Compile and cache YARA rules: the shipped level-word prefilter, site rules and keyword lists.

`rules/` is a leaf package: it imports nothing else of the project.

- Shipped rules (`rules/yara/*.yar`) are a fast prefilter on raw bytes: the level words in UTF-8,
  GB18030, Big5 and UTF-16 LE/BE byte forms (YARA's `wide` only interleaves NULs with ASCII, so CJK
  words are explicit hex strings; jumps tolerate spaces and zero-width characters inside a word).
  A file none of them matches is never decoded.
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
from dataclasses import dataclass
from pathlib import Path

import yara

SHIPPED_DIR = Path(__file__).parent / "yara"
#: Namespaces: what a match means.
NS_PREFILTER = "prefilter"
NS_RULE = "rule"
NS_KEYWORD = "keyword"
ENCODINGS = ("utf-8", "gb18030", "big5", "utf-16-le", "utf-16-be")


def _hex(b: bytes) -> str:
    return " ".join(f"{x:02X}" for x in b)


def word_hex_strings(word: str, *, gap: bool = False) -> list[tuple[str, str]]:
    """(encoding, YARA hex string body) for `word` in every encoding that can hold it.

    With `gap`, a bounded jump is allowed between characters (spaces, ideographic spaces and
    zero-width characters inside a marking)."""
    out = []
    for enc in ENCODINGS:
        try:
            parts = [c.encode(enc) for c in word]
        except UnicodeEncodeError:
            continue
        jump = " [0-8] " if gap else " "
        out.append((enc, jump.join(_hex(p) for p in parts)))
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


def read_keywords(path: str | Path) -> list[str]:
    """One keyword a line, UTF-8; blank lines and `#` comments ignored."""
    words = []
    for line in Path(path).read_text(encoding="utf-8-sig").splitlines():
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
        self.has_site_rules = False
        if rules_dir:
            files = sorted(p for p in Path(rules_dir).rglob("*") if p.suffix in (".yar", ".yara") and p.is_file())
            if not files:
                raise ValueError(f"no .yar/.yara files in {rules_dir}")
            for p in files:
                sources[f"{NS_RULE}:{p}"] = p.read_text(encoding="utf-8")
            self.has_site_rules = True
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

    def prefilter(self, data: bytes) -> bool:
        """True when `data` may hold a level word (or a site rule/keyword matches)."""
        return bool(self._rules.match(data=data, fast=True, timeout=60))

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


def _compile_cached(sources: dict[str, str], digest: str, cache_dir: str | Path | None) -> yara.Rules:
    cdir = Path(cache_dir) if cache_dir else default_cache_dir()
    path = cdir / f"{digest}.yarc"
    if path.is_file() and path.stat().st_uid == os.getuid():
        try:
            return yara.load(str(path))
        except yara.Error:
            pass  # a corrupt cache entry is rebuilt
    rules = yara.compile(sources=sources)
    try:
        cdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=cdir, suffix=".tmp")
        os.close(fd)
        rules.save(tmp)
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs compile time
    return rules


_IDENT = re.compile(r"[^A-Za-z0-9_]")


def prefilter_source() -> str:
    """The shipped prefilter rules, generated from the level words (see rules/yara/levels.yar)."""
    lines = ["// Generated by rules.loader.prefilter_source(); tests check the shipped file matches.",
             "// Level words of 国家秘密标志 in UTF-8, GB18030, Big5 and UTF-16 LE/BE byte forms.", ""]
    words = {"top_secret": ["绝密", "絕密"], "secret": ["机密", "機密"], "confidential": ["秘密", "祕密"]}
    for name, ws in words.items():
        lines.append(f"rule level_{name}\n{{\n  strings:")
        n = 0
        for w in ws:
            for enc, hx in word_hex_strings(w, gap=True):
                lines.append(f"    $w{n} = {{ {hx} }}  // {w} {enc}")
                n += 1
        lines.append("  condition:\n    any of them\n}\n")
    lines.append("rule level_internal\n{\n  strings:")
    n = 0
    for w in ("内部资料", "内部★", "工作秘密"):
        for enc, hx in word_hex_strings(w, gap=True):
            lines.append(f"    $w{n} = {{ {hx} }}  // {w} {enc}")
            n += 1
    for enc, hx in word_hex_strings("内部"):
        nl = "0A" if enc in ("utf-8", "gb18030", "big5") else ("0A 00" if enc == "utf-16-le" else "00 0A")
        cr = "0D" if enc in ("utf-8", "gb18030", "big5") else ("0D 00" if enc == "utf-16-le" else "00 0D")
        lines.append(f"    $w{n} = {{ {nl} {hx} ( {nl} | {cr} ) }}  // 内部 standalone {enc}")
        n += 1
    lines.append("  condition:\n    any of them\n}\n")
    lines.append('rule level_english\n{\n  strings:\n    $e0 = "SECRET" ascii wide\n'
                 '    $e1 = "CONFIDENTIAL" ascii wide\n  condition:\n    any of them\n}\n')
    return "\n".join(lines)
