"""The Hyperscan shape filter (rules.shapes) decides as the YARA prefilter does, and the fast
path loses no marking (issue 17, goal 1).

- engines: on every file of the public corpus, the hostile set, the real set, a generated prose
  tree of the bench's kind in five encodings, and on crafted and randomly assembled edge bytes,
  `ShapeFilter(data)` == the YARA rules' verdict;
- scans: Scanner with Hyperscan and Scanner with YARA (BAOMI_PREFILTER=yara, the fallback when
  the module is missing) report identical results — every finding, mentions included;
- fast vs full: a Scanner whose prefilter passes everything (every text decoded and classified)
  finds the same files, levels and markings as the fast one.
"""
from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import pytest

from rules import shapes
from rules.loader import ENCODINGS, RuleSet, prefilter_spec
from scanner.config import ScanConfig
from scanner.engine import Scanner
from scanner.model import Kind
from tests.conftest import ROOT, SHARED

pytestmark = pytest.mark.skipif(shapes._hs is None, reason="hyperscan is not installed (the YARA fallback is used)")

REALSET = ROOT / "tests" / "scanner" / "realset"


def _yara_rules(monkeypatch: pytest.MonkeyPatch) -> RuleSet:
    monkeypatch.setenv("BAOMI_PREFILTER", "yara")
    rs = RuleSet()
    monkeypatch.delenv("BAOMI_PREFILTER")
    assert rs.prefilter_engine == "yara"
    return rs


@pytest.fixture(scope="module")
def prose_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small tree of the prose bench's kind (bench/prose.py), a fifth of it in each encoding."""
    sys.path.insert(0, str(ROOT / "bench"))
    from prose import CLASSES, make_text, pools

    plain, worded = pools()
    rng = random.Random(17)
    tree = tmp_path_factory.mktemp("prose")
    for i in range(300):
        cls = CLASSES[i % 4] if i % 10 else "marked"
        text = make_text(rng, plain, worded, rng.randrange(1500, 12000), cls, copy=i)
        enc = ENCODINGS[i % len(ENCODINGS)]
        (tree / f"p{i:04d}.txt").write_bytes(text.encode(enc, errors="replace"))
    return tree


def _files(prose_tree: Path) -> list[Path]:
    dirs = [prose_tree, REALSET / "docs"] + [SHARED / d for d in ("corpus", "hostile") if (SHARED / d).exists()]
    return sorted(p for d in dirs for p in d.rglob("*") if p.is_file())


def _edge_cases() -> list[bytes]:
    """Bytes at the edges of the YARA conditions: the close rule's unchecked byte, offsets before
    the start of the data, a last 密, `.` and a newline, `^`/`$` of the regexes."""
    spec = prefilter_spec()
    out: list[bytes] = []
    for cr in spec.close:
        mi = "密".encode(cr.enc)
        for s in cr.strings:
            for lead in cr.lead_bytes():
                body = s.literal or b""
                out += [lead + mi[: cr.cut] + body, lead + b"\x00" * cr.cut + body, lead[1:] + mi[: cr.cut] + body,
                        mi[: cr.cut] + body, b"xx" + lead + mi[: cr.cut] + body + b"yy", b"\x00\x00" + mi + body]
    for mi in spec.ends:
        out += [mi, b"abc" + mi, mi + b"\n", mi[1:], b"abc" + mi[:-1]]
    out += [b"OFFICIAL-SENSITIVE", b"x\nOFFICIAL\nSENSITIVE", b"\nABC DEFGHI", b"\nABC DEFGHI\n", b"\nABC DEFGHIJ",
            b"SECRET", b" SECRET", b"x SECRET", b"x\n\t>SECRET", b"\xef\xbb\xbfCONFIDENTIAL", b"classification :secret",
            b"Classification: Secret", b"(S) x", b"(S)x", b"REPORT CLASS SECRET", b"\nS E C R E T", b"", b"\n"]
    # Random assemblies of shape fragments, level characters, gaps and line ends in every encoding.
    frags = [s.literal for s in (*spec.cn, *spec.english) if s.literal] + [b"\n", b"\r\n", b" ", b"\x00"]
    words = [w.encode(e, errors="ignore") for w in ("机密", "秘密", "绝密", "保密", "（", "）", "★", "SECRET")
             for e in ENCODINGS]
    rng = random.Random(5)
    for _ in range(3000):
        parts = [rng.choice(frags + words) for _ in range(rng.randrange(1, 6))]
        blob = b"".join(p[rng.randrange(len(p)):] if rng.random() < 0.3 else p for p in parts)
        out.append(blob)
    return out


def test_hyperscan_decides_as_yara(monkeypatch: pytest.MonkeyPatch, prose_tree: Path) -> None:
    fast = RuleSet()
    assert fast.prefilter_engine == "hyperscan"
    ref = _yara_rules(monkeypatch)
    datas = [p.read_bytes() for p in _files(prose_tree)] + _edge_cases()
    wrong = [d[:60] for d in datas if fast.prefilter(d) != ref.prefilter(d)]
    assert not wrong, wrong[:5]
    passed = sum(map(ref.prefilter, datas))
    assert 0 < passed < len(datas)  # both verdicts occur


def test_site_rules_still_pass_the_prefilter(tmp_path: Path) -> None:
    kw = tmp_path / "kw.txt"
    kw.write_text("项目代号\n", encoding="utf-8")
    rs = RuleSet(keywords_file=kw)
    assert rs.prefilter_engine == "hyperscan"
    assert rs.prefilter("本文涉及项目代号。".encode())
    assert not rs.prefilter("本文无关。".encode())


def test_without_hyperscan_the_yara_rules_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shapes, "_hs", None)  # as if the module were not installed
    rs = RuleSet()
    assert rs.prefilter_engine == "yara"
    assert rs.prefilter("机密★10年".encode("gb18030")) and not rs.prefilter("国家秘密的密级".encode())


def test_the_cached_database_decides_as_a_fresh_one_and_a_corrupt_one_is_rebuilt(tmp_path: Path) -> None:
    # UTF-16 ★ is one of the short literals kept beside the database (tested with memchr first)
    samples = ["机密★10年".encode(), "★".encode("utf-16-le"), "☆".encode("utf-16-be"), b"x\x05y&", b"plain"]
    want = [True, True, True, False, False]
    fresh = shapes.load(tmp_path)
    (db,) = tmp_path.glob("*.hsdb")
    cached = shapes.load(tmp_path)
    assert fresh is not None and cached is not None
    assert [fresh(d) for d in samples] == [cached(d) for d in samples] == want
    for bad in (b"garbage", b"0526\n" + b"\x00" * 64, db.read_bytes()[:200]):
        db.write_bytes(bad)
        flt = shapes.load(tmp_path)
        assert flt is not None and [flt(d) for d in samples] == want


def _record(r: Any) -> tuple:
    return (r.level, r.findings, r.errors, r.sha256)


def _markings(r: Any) -> tuple:
    ms = sorted((f.level.value if f.level else "", f.text, f.member or "", f.rule, f.line or 0)
                for f in r.findings if f.kind is Kind.MARKING)
    return (r.level, ms)


def test_fast_and_full_paths_find_the_same_markings(monkeypatch: pytest.MonkeyPatch, prose_tree: Path) -> None:
    files = _files(prose_tree)
    # OCR reads images, never the prefilter: off, so three scans of the corpus stay quick.
    cfg = ScanConfig(ocr_mode="off")
    hs = Scanner(cfg)
    assert hs.rules.prefilter_engine == "hyperscan"
    monkeypatch.setenv("BAOMI_PREFILTER", "yara")
    yara = Scanner(cfg)
    full = Scanner(cfg)
    monkeypatch.delenv("BAOMI_PREFILTER")
    full.rules.prefilter = lambda data: True  # type: ignore[method-assign]  # decode and classify everything
    differ, lost = [], []
    flagged = 0
    for p in files:
        a, b, c = hs.scan_path(str(p)), yara.scan_path(str(p)), full.scan_path(str(p))
        if _record(a) != _record(b):
            differ.append(str(p))
        if _markings(a) != _markings(c):
            lost.append((str(p), _markings(a), _markings(c)))
        flagged += a.level is not None
    assert not differ, differ[:5]
    assert not lost, lost[:3]
    assert flagged >= 30  # the marked prose files and the corpus' positives were scanned


def test_a_block_beyond_hyperscans_length_field_is_passed_on_not_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    flt = shapes.load()
    assert flt is not None and not flt(b"plain text " * 4)
    monkeypatch.setattr(shapes, "_MAX_BLOCK", 16)  # stands for 2 GiB: the real size needs that much memory
    assert flt(b"plain text " * 4)


def test_the_byte_all_short_literals_hold_gates_them_as_they_were() -> None:
    """`&` (in UTF-16 ★ and ☆) is looked for before the short literals' own gates: the same
    verdicts as the gates alone, on texts with and without it and with the literals anywhere."""
    flt = RuleSet()._shapes
    assert flt is not None and flt._common == b"&"
    alone = shapes.ShapeFilter(flt._db, flt._ends)
    alone._short, alone._common = flt._short, b""
    prose = "会议纪要：本周工作安排如下。\n".encode()
    bits = [b"\x05&", b"&\x05", b"\x06&", b"&\x06", b"\x05", b"\x06", b"&", b"& \x05", b"\x05 &", b""]
    datas = [prose * 3 + a + prose + b for a in bits for b in bits] + [a + prose for a in bits] + bits
    for star in ("★", "☆"):
        datas += [star.encode(enc) for enc in ("utf-16-le", "utf-16-be")]
    assert [flt(d) for d in datas] == [alone(d) for d in datas]
    assert flt(prose * 3 + b"\x05&") and not flt(prose * 3 + b"\x05 &")
