"""The marking vocabulary: one definition that the grammar, the prefilter, the engine and the
classifier all derive from (they had drifted apart: a star the grammar accepted was missing from
the prefilter, so a file whose only marking used it came back with no finding at all).

A leaf module of the leaf package `rules/`: plain data, no imports of the project.
"""
from __future__ import annotations

#: Stars accepted between a level and its period, as they stand after NFKC normalisation.
STARS = "★☆*✱✲✳✶✷✸⭐✦✧"
#: Raw characters that normalise to one of `STARS` (the prefilter reads raw bytes).
STARS_RAW = STARS + "＊"
#: Nonstandard separators used where the star should stand (`机密·10年`).
ALT_SEPS = "·•・∙"
#: The first character of each level word (simplified and traditional forms).
LEVEL_FIRST = "绝絕絶机機秘祕"
#: What can open a bracketed period (`机密（10年）`, `机密（长期）`, `绝密（六个月）`).
PERIOD_DIGITS = "123456789"
PERIOD_DIGITS_FULLWIDTH = "１２３４５６７８９"
PERIOD_NUMERALS = "一二两三四五六七八九十"
PERIOD_OPENERS = PERIOD_DIGITS + "长" + PERIOD_DIGITS_FULLWIDTH + PERIOD_NUMERALS
OPEN_BRACKETS = "（("
#: English banner words, ASCII and fullwidth (a banner typed in a Chinese input method).
BANNER_WORDS = ("SECRET", "CONFIDENTIAL")
BANNER_WORDS_FULLWIDTH = ("ＳＥＣＲＥＴ", "ＣＯＮＦＩＤＥＮＴＩＡＬ")
#: Substrings of raw text at or near which any marking form stands: the engine's and the
#: classifier's cheap candidate search.
CANDIDATE_WORDS = ("密", "内", "內", *BANNER_WORDS, *BANNER_WORDS_FULLWIDTH)
