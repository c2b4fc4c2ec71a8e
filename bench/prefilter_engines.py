"""Which engine runs the marking-shape prefilter fastest? (issue 17, goal 1: choose by measurement)

    .venv/bin/python bench/prefilter_engines.py [--tree bench/out/prose-tree] [--files 3000]

Reads a sample of the prose tree (bench/prose_bench.py writes it) into memory and runs each
candidate over every file, on one core (process CPU clock): the decision "does this file hold a
marking shape" for the shapes of rules.loader.prefilter_spec — the same ~1,550 byte strings and
regexes in every encoding. Prints MB/s per core and how many files each candidate decides
differently from the YARA rules (the reference): a candidate that misses a file YARA passes
loses recall and is out.

Candidates:
- yara: the shipped rules (rules/yara/levels.yar), `match(fast=True)` — today's engine;
- hyperscan: rules.shapes (one Hyperscan database of the same strings, first hit stops);
- pyahocorasick / ahocorasick-rs: every literal string in one Aho-Corasick automaton, the
  English regexes with Python's `re`, the close-bracket rule's wildcard byte spelt out;
- bytes.find: the rare anchors one at a time (密 in each encoding, then a look at the bytes
  after and before it; ★/☆; the English regexes with `re`).
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rules.loader import PrefilterSpec, RuleSet, prefilter_spec  # noqa: E402


def _literals(spec: PrefilterSpec) -> list[bytes]:
    """Every literal of the spec; the close rules' `lead + any cut bytes + string` spelt out
    with 密's own lead byte (the one byte YARA does not check)."""
    out = [s.literal for s in (*spec.cn, *spec.english) if s.literal is not None]
    for cr in spec.close:
        mi = "密".encode(cr.enc)
        for s in cr.strings:
            out += [lead + mi[: cr.cut] + (s.literal or b"") for lead in cr.lead_bytes()]
    return out


def _regexes(spec: PrefilterSpec) -> re.Pattern[bytes]:
    return re.compile("|".join(f"(?:{s.regex})" for s in spec.english if s.regex is not None).encode())


def yara_engine() -> Callable[[bytes], bool]:
    import os
    os.environ["BAOMI_PREFILTER"] = "yara"
    rs = RuleSet()
    del os.environ["BAOMI_PREFILTER"]
    return lambda d: bool(rs._rules.match(data=d, fast=True, timeout=60))


def hyperscan_engine() -> Callable[[bytes], bool]:
    from rules import shapes
    flt = shapes.load()
    if flt is None:
        raise RuntimeError("hyperscan not importable")
    return flt


def pyahocorasick_engine() -> Callable[[bytes], bool]:
    import ahocorasick  # pyahocorasick: str keys; bytes are mapped 1:1 to latin-1 characters

    spec = prefilter_spec()
    a = ahocorasick.Automaton()
    for lit in _literals(spec):
        a.add_word(lit.decode("latin-1"), 1)
    a.make_automaton()
    rx, ends = _regexes(spec), spec.ends

    def run(d: bytes) -> bool:
        if d.endswith(ends):
            return True
        for _ in a.iter(d.decode("latin-1")):
            return True
        return rx.search(d) is not None
    return run


def ahocorasick_rs_engine() -> Callable[[bytes], bool]:
    import ahocorasick_rs

    spec = prefilter_spec()
    a = ahocorasick_rs.BytesAhoCorasick(_literals(spec))
    rx, ends = _regexes(spec), spec.ends

    def run(d: bytes) -> bool:
        if d.endswith(ends):
            return True
        if a.find_matches_as_indexes(d, overlapping=False):
            return True
        return rx.search(d) is not None
    return run


def find_engine() -> Callable[[bytes], bool]:
    """Anchor on 密 (and ★/☆, the English regexes): each 密 hit looks at its followers."""
    spec = prefilter_spec()
    rx, ends = _regexes(spec), spec.ends
    lits = _literals(spec)
    anchors: dict[bytes, list[bytes]] = {}
    for enc in ("utf-8", "gb18030", "big5", "utf-16-le", "utf-16-be"):
        mi = "密".encode(enc)
        anchors[mi[1:] if enc == "utf-8" else mi] = []
    rest: list[bytes] = []
    for lit in lits:
        for a in anchors:
            k = lit.find(a)
            if k != -1:
                anchors[a].append(lit)
                break
        else:
            rest.append(lit)
    groups = [(a, tuple(v)) for a, v in anchors.items()]

    def run(d: bytes) -> bool:
        if d.endswith(ends):
            return True
        if any(r in d for r in rest):
            return True
        for a, full in groups:
            pos = d.find(a)
            while pos != -1:
                win = d[max(0, pos - 4): pos + 24]
                if any(f in win for f in full):
                    return True
                pos = d.find(a, pos + 1)
        return rx.search(d) is not None
    return run


ENGINES = {"yara": yara_engine, "hyperscan": hyperscan_engine, "pyahocorasick": pyahocorasick_engine,
           "ahocorasick-rs": ahocorasick_rs_engine, "bytes.find": find_engine}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", default=str(ROOT / "bench" / "out" / "prose-tree"))
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--json", default=str(ROOT / "bench" / "out" / "prefilter_engines.json"))
    a = ap.parse_args()
    files = sorted(Path(a.tree).rglob("*.txt"))
    if not files:
        print(f"no .txt files under {a.tree} (run bench/prose_bench.py first)", file=sys.stderr)
        return 2
    random.Random(1).shuffle(files)
    datas = [f.read_bytes() for f in files[: a.files]]
    mb = sum(map(len, datas)) / 1e6
    print(f"{len(datas)} files, {mb:.1f} MB")
    ref: list[bool] | None = None
    res = {}
    for name, make in ENGINES.items():
        try:
            fn = make()
        except Exception as exc:  # noqa: BLE001 - a candidate that cannot run is reported, not fatal
            print(f"{name:15s} unavailable: {exc}")
            continue
        fn(datas[0])
        best = float("inf")
        for _ in range(3):
            t = time.process_time()
            out = [fn(d) for d in datas]
            best = min(best, time.process_time() - t)
        if ref is None:
            ref = out
        missed = sum(1 for r, o in zip(ref, out, strict=True) if r and not o)
        extra = sum(1 for r, o in zip(ref, out, strict=True) if o and not r)
        res[name] = {"MBps_per_core": round(mb / best), "ms_per_MB": round(best / mb * 1000, 2),
                     "passed": sum(out), "missed_vs_yara": missed, "extra_vs_yara": extra}
        print(f"{name:15s} {mb / best:8.0f} MB/s per core  {best / mb * 1000:6.2f} ms/MB  passes {sum(out)}"
              f"  missed {missed}  extra {extra}")
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps({"files": len(datas), "mb": round(mb, 1), "engines": res}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
