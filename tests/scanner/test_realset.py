"""Issue 15: the scanner on a hand-labelled set of real documents (tests/scanner/realset).

Bars (from the issue): recall >= 0.95 over the marked documents, where a wrong level is a miss, and
no false positive (no level at all on a document labelled null). The per-class figures are printed
(`pytest -s` or the failure message shows them); `tests/scanner/realset/score.py` prints the same
table with every miss on its own.
"""
from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REALSET = Path(__file__).resolve().parent / "realset"


def _score_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("realset_score", REALSET / "score.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve their module by name
    spec.loader.exec_module(mod)
    return mod


score = _score_module()


@pytest.fixture(scope="module")
def realset_result() -> tuple[Any, str]:
    labels = score.load_labels()
    res = score.score(labels, score.run_scan())
    buf = io.StringIO()
    score.report(res, out=buf)
    print("\n" + buf.getvalue())
    return res, buf.getvalue()


def test_labels_cover_every_file_and_nothing_else() -> None:
    """The set is only as good as its labels: every file labelled once, every label a file, a reason each."""
    labels = score.load_labels()
    paths = [lab["path"] for lab in labels]
    assert len(paths) == len(set(paths)), "a file labelled twice"
    on_disk = {p.relative_to(score.DOCS).as_posix() for p in score.DOCS.rglob("*") if p.is_file()}
    assert on_disk == set(paths)
    for lab in labels:
        assert lab["reason"].strip() and lab["source"].strip(), lab["path"]
        assert lab["path"].split("/", 1)[0] == lab["class"], f"{lab['path']} filed outside its class directory"
    negatives = sum(lab["expected"] is None for lab in labels)
    assert negatives >= len(labels) - negatives, "the set must hold at least as many negatives as positives"


# The bar is recall >= 0.95 (enforced). Measured: 0.959 (118 of 123); the 5 misses are
# banners OCR tore beyond a safe reading (`C-O-N-P-1-D-EN-T-T-AL`, `SECRET oR DSSHan osc`, a
# `Top Secret` value torn from its field, `For The President Only - Top Secret`).


def test_realset_no_false_positive(realset_result: tuple[Any, str]) -> None:
    res, table = realset_result
    assert not res.false_positives, f"false positives on real documents:\n{table}"


def test_realset_recall(realset_result: tuple[Any, str]) -> None:
    res, table = realset_result
    total = res.total
    assert total.positives and (total.recall or 0.0) >= 0.95, f"recall {total.recall:.3f} < 0.95:\n{table}"

