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
#: Invisible characters the normaliser removes; a marking may carry them anywhere (an evasion
#: or a copy-paste artefact), so the prefilter allows them between 密 and a star too.
ZERO_WIDTH = "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e\u034f"
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

# -- tick-box fields (`密级：□绝密 □机密 ■秘密`, `☑内部 ☐公开`, `[√]机密`) --------------------------
#: A box or mark that says "this option is chosen" (after NFKC: fullwidth brackets are ASCII).
TICKED = "☑☒■▣●◉√✓✔✅⊠⬛◼✗✘"
#: An empty box: the option is offered, not chosen.
UNTICKED = "□☐○◯◻▢❑❏〇"
#: Bracketed stand-ins: `[√]`, `(x)`, `[ ]` (the mark inside decides).
BRACKET_TICKS = "√✓✔xX*■●×"

# -- English banners, telegram lines, codewords --------------------------------------------------
#: Control markings and codewords that may follow a banner's level word with or without `//`
#: (`TOP SECRET UMBRA`, `SECRET NOFORN`, `SECRET/NOFORN`): a line of the level word and nothing
#: but these is a banner, not an English sentence.
CONTROL_WORDS = (
    "NOFORN", "NF", "NOCONTRACT", "ORCON", "PROPIN", "WNINTEL", "REL TO", "RELIDO", "FVEY", "EYES ONLY",
    "EXDIS", "NODIS", "LIMDIS", "STADIS", "ROGER", "CHEROKEE", "SPECAT", "SIOP", "SIOP-ESI", "ESI",
    "UMBRA", "GAMMA", "RUFF", "ZARF", "TALENT KEYHOLE", "KEYHOLE", "TK", "SI", "HCS", "COMINT", "SIGINT",
    "CRYPTO", "RESTRICTED DATA", "FORMERLY RESTRICTED DATA", "RD", "FRD", "CNWDI", "SAR", "SCI",
    "BYEMAN", "DINAR", "TRINE", "MORAY", "SPOKE", "VRK", "HVSACO", "SENSITIVE", "ALTERNATE",
    "CODEWORD", "CODE WORD", "FOR OFFICIAL USE ONLY", "FOUO", "LIMITED OFFICIAL USE", "LES", "SBU", "CUI", "NATO", "COSMIC", "ATOMAL", "US ONLY", "USA ONLY", "FGI", "IMCON",
    "NO FOREIGN DISSEM", "NO FOREIGN DISSEMINATION", "NO FOREIGN", "NO DISSEM ABROAD", "BACKGROUND USE ONLY",
    "CONTINUED CONTROL", "WARNING NOTICE", "DISSEM", "LIMITED DISTRIBUTION", "STRAP1", "STRAP2", "STRAP3", "STRAP", "RYBAT", "KAPOK", "WNINTEL", "CONTROLLED", "HANDLE VIA", "COMINT CHANNELS", "CHANNELS ONLY",
)
#: Words of routing a telegram's classification line may carry besides post and serial number.
ROUTING_WORDS = ("SECTION", "OF", "PAGE", "STATE", "PRIORITY", "CITE", "DIRECTOR", "IN", "TO", "FROM", "IMMEDIATE", "ROUTINE", "FLASH",
                 "NIACT", "USMISSION", "USUN", "USNATO", "USEC", "USOSCE")
#: English words for "not a state secret, yet not public": the own classification of a cable or
#: a memo (`UNCLAS … SENSITIVE`, `LIMITED OFFICIAL USE`, `FOR OFFICIAL USE ONLY`).
EN_INTERNAL = ("LIMITED OFFICIAL USE", "FOR OFFICIAL USE ONLY", "SENSITIVE BUT UNCLASSIFIED",
               "CONTROLLED UNCLASSIFIED INFORMATION", "OFFICIAL-SENSITIVE", "OFFICIAL SENSITIVE")
