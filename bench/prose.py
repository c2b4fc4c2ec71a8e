"""Secrecy-office prose of the kind issue 17 measures: what a secrecy office's own share holds.

Paragraphs come from ../shared/prose (secrecy law, archives law…) and ../shared/seeds (office
prose), split into those without level words and those with them. A file is one of four classes,
drawn with the issue's proportions:
- `plain` (1/4): no level word;
- `words` (3/4 − 1/6 − 1 %): level words in prose (laws quoted, "涉密人员", "国家秘密");
- `shapes` (1/6): level words also in marking-like shapes — a quoted marking, a list of levels,
  a 密级 label, a ★ in a sentence — as a secrecy office's guidance and forms hold them;
- `marked` (1 %): a real 公文 head with a marking, as bench/gen_tree.py writes it.
"""
from __future__ import annotations

import random
import re
from pathlib import Path

from gen_tree import HEAD, MARKINGS, paragraphs

LEVEL_WORDS = re.compile("绝密|机密|秘密")
#: Marking-like shapes that are not markings of the file they stand in (markings.md: mentions).
SHAPES = ("对标注“机密★5年”的文件，不得在非涉密计算机上处理。", "国家秘密的密级分为绝密、机密、秘密三级。",
          "密级：______　保密期限：______", "文件密级（绝密/机密/秘密）应在首页左上角标注。",
          "例如“秘密★1年”表示秘密级、保密期限一年。", "标注为绝密★的文件由专人传递。",
          "表3 密级 份数 页数 承办人", "来文标注“机密”字样的，按机密件登记。")
CLASSES = ("plain", "words", "shapes", "marked")


def pools() -> tuple[list[str], list[str]]:
    """(paragraphs without level words, paragraphs with them)."""
    paras = paragraphs()
    return [p for p in paras if not LEVEL_WORDS.search(p)], [p for p in paras if LEVEL_WORDS.search(p)]


def choose_class(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.01:
        return "marked"
    if r < 0.01 + 1 / 6:
        return "shapes"
    if r < 0.75:
        return "words"
    return "plain"


def make_text(rng: random.Random, plain: list[str], worded: list[str], size: int, cls: str,
              copy: int = 0) -> str:
    """About `size` UTF-8 bytes of prose of class `cls` (one in twenty paragraphs with level words)."""
    out: list[str] = []
    n = 0
    if cls == "marked":
        head = HEAD.format(copy=copy, marking=rng.choice(MARKINGS), n=copy % 300)
        out.append(head.rstrip("\n"))
        n += len(head.encode())
    while n < size:
        if cls != "plain" and rng.random() < 0.05:
            p = rng.choice(SHAPES) if cls == "shapes" and rng.random() < 0.3 else rng.choice(worded)
        else:
            p = rng.choice(plain)
        out.append(p)
        n += len(p.encode()) + 1
    if cls != "plain" and not any(LEVEL_WORDS.search(p) for p in out):
        out.insert(len(out) // 2, rng.choice(worded))
    return "\n".join(out) + "\n"


def write_docx(path: Path, text: str) -> None:
    import docx

    d = docx.Document()
    for line in text.splitlines():
        d.add_paragraph(line)
    d.save(str(path))
