"""Score `baomi scan` on the hand-labelled real-document set (issue 15).

Runs the CLI (`baomi scan --format jsonl --all`) over docs/, compares each file's level with
labels.jsonl and prints per-class recall/precision and every miss.

    .venv/bin/python tests/scanner/realset/score.py [--json]

Scoring rules (the same as tests/scanner/test_realset.py):
- a positive (expected level not null) is found only when the file's level equals the label;
  a wrong level counts as a miss (and, when the label is not null, not as a false positive);
- a false positive is any level on a null-labelled file;
- a file the scanner could not read completely (an error record) is a miss/FP as its level says,
  and its errors are shown.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOCS = HERE / "docs"
LABELS = HERE / "labels.jsonl"
LEVELS = ("top_secret", "secret", "confidential", "internal")


def baomi_bin() -> str:
    """The `baomi` console script next to the running interpreter (the project's .venv)."""
    cand = Path(sys.executable).parent / "baomi"
    if not cand.exists():
        raise SystemExit(f"no baomi next to {sys.executable}: run with the project's .venv/bin/python")
    return str(cand)


def load_labels(path: Path = LABELS) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = {"path", "expected", "class", "reason", "source"} - set(row)
        if missing:
            raise ValueError(f"{path}:{n}: missing {sorted(missing)}")
        if row["expected"] is not None and row["expected"] not in LEVELS:
            raise ValueError(f"{path}:{n}: bad expected {row['expected']!r}")
        rows.append(row)
    return rows


def run_scan(docs: Path = DOCS, timeout: float = 900) -> dict[str, dict[str, Any]]:
    """One `baomi scan` over the whole set; records keyed by path relative to docs/."""
    p = subprocess.run([baomi_bin(), "scan", "--format", "jsonl", "--all", "--no-cache", "--sort",
                        "--no-progress", str(docs)], capture_output=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if p.returncode not in (0, 1, 3) or b"Traceback" in p.stderr:
        raise RuntimeError(f"baomi scan failed (exit {p.returncode}): {p.stderr.decode('utf-8', 'replace')[-2000:]}")
    recs: dict[str, dict[str, Any]] = {}
    root = docs.resolve()
    for line in p.stdout.decode("utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            recs[Path(r["path"]).resolve().relative_to(root).as_posix()] = r
    return recs


@dataclass
class ClassScore:
    positives: int = 0
    found: int = 0
    negatives: int = 0
    false_pos: int = 0
    flagged: int = 0          # files given any level (for precision)
    flagged_right: int = 0    # ... whose level equals the label

    @property
    def recall(self) -> float | None:
        return self.found / self.positives if self.positives else None

    @property
    def precision(self) -> float | None:
        return self.flagged_right / self.flagged if self.flagged else None


@dataclass
class Result:
    per_class: dict[str, ClassScore] = field(default_factory=lambda: defaultdict(ClassScore))
    misses: list[dict[str, Any]] = field(default_factory=list)
    false_positives: list[dict[str, Any]] = field(default_factory=list)
    unscanned: list[str] = field(default_factory=list)

    @property
    def total(self) -> ClassScore:
        t = ClassScore()
        for c in self.per_class.values():
            for k in ("positives", "found", "negatives", "false_pos", "flagged", "flagged_right"):
                setattr(t, k, getattr(t, k) + getattr(c, k))
        return t


def _marking_texts(rec: dict[str, Any] | None) -> list[str]:
    if not rec:
        return []
    return [f"{f.get('level')}:{f.get('text')}" for f in rec.get("findings", []) if f.get("kind") == "marking"][:4]


def score(labels: list[dict[str, Any]], recs: dict[str, dict[str, Any]]) -> Result:
    res = Result()
    for lab in labels:
        rec = recs.get(lab["path"])
        if rec is None:
            res.unscanned.append(lab["path"])
        got = rec.get("level") if rec else None
        cs = res.per_class[lab["class"]]
        want = lab["expected"]
        if got is not None:
            cs.flagged += 1
            cs.flagged_right += got == want
        row = {"path": lab["path"], "class": lab["class"], "expected": want, "got": got,
               "markings": _marking_texts(rec), "errors": (rec or {}).get("errors", [])}
        if want is None:
            cs.negatives += 1
            if got is not None:
                cs.false_pos += 1
                res.false_positives.append(row)
        else:
            cs.positives += 1
            if got == want:
                cs.found += 1
            else:
                res.misses.append(row)
    return res


def _fmt(x: float | None) -> str:
    return "  -  " if x is None else f"{x:5.3f}"


def report(res: Result, out: Any = sys.stdout) -> None:
    print(f"{'class':<15}{'pos':>5}{'found':>7}{'recall':>8}{'neg':>6}{'FP':>5}{'precision':>11}", file=out)
    for name in sorted(res.per_class):
        c = res.per_class[name]
        print(f"{name:<15}{c.positives:>5}{c.found:>7}{_fmt(c.recall):>8}{c.negatives:>6}{c.false_pos:>5}"
              f"{_fmt(c.precision):>11}", file=out)
    t = res.total
    print(f"{'TOTAL':<15}{t.positives:>5}{t.found:>7}{_fmt(t.recall):>8}{t.negatives:>6}{t.false_pos:>5}"
          f"{_fmt(t.precision):>11}", file=out)
    if res.misses:
        print(f"\nmisses ({len(res.misses)}):", file=out)
        for m in res.misses:
            err = f" errors={[e.get('error') for e in m['errors']]}" if m["errors"] else ""
            print(f"  [{m['class']}] {m['path']}: expected {m['expected']}, got {m['got']} {m['markings']}{err}",
                  file=out)
    if res.false_positives:
        print(f"\nfalse positives ({len(res.false_positives)}):", file=out)
        for m in res.false_positives:
            print(f"  [{m['class']}] {m['path']}: got {m['got']} {m['markings']}", file=out)
    if res.unscanned:
        print(f"\nno record for ({len(res.unscanned)}): {res.unscanned}", file=out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = ap.parse_args(argv)
    labels = load_labels()
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*") if p.is_file()}
    unlabelled = sorted(on_disk - {lab["path"] for lab in labels})
    if unlabelled:
        print(f"unlabelled files: {unlabelled}", file=sys.stderr)
        return 2
    res = score(labels, run_scan())
    if args.json:
        print(json.dumps({"per_class": {k: vars(v) for k, v in res.per_class.items()},
                          "misses": res.misses, "false_positives": res.false_positives}, ensure_ascii=False))
    else:
        report(res)
    t = res.total
    return 0 if (t.recall or 0) >= 0.95 and t.false_pos == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
