"""Bandit-style functional test: the labelled public corpus, file by file (skips without ../shared)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import need_shared

BAOMI = str(Path(sys.executable).parent / "baomi")
#: Every family of the public corpus (P-image through OCR).
FAMILIES = {"P-plain", "P-enc", "P-typo", "P-docx", "P-xlsx", "P-pptx", "P-legacy", "P-pdf", "P-ofd", "P-markup",
            "P-mail", "P-archive", "P-disguise", "P-english", "P-multi", "P-image",
            "N-prose", "N-quoted", "N-english", "N-binary"}


@pytest.fixture(scope="module")
def corpus_run() -> tuple[dict[str, dict], list[dict], Path]:
    corpus = need_shared("corpus")
    p = subprocess.run([BAOMI, "scan", "--format", "jsonl", str(corpus)], capture_output=True, timeout=600,
                       stdin=subprocess.DEVNULL)
    assert p.returncode in (0, 1, 3), p.stderr.decode()[-2000:]
    assert b"Traceback" not in p.stderr
    recs = {}
    for line in p.stdout.decode().splitlines():
        r = json.loads(line)
        recs[str(Path(r["path"]).resolve())] = r
    labels = [json.loads(x) for x in (corpus / "labels.jsonl").read_text(encoding="utf-8").splitlines()]
    return recs, labels, corpus


def test_corpus_levels(corpus_run: tuple[dict[str, dict], list[dict], Path]) -> None:
    recs, labels, corpus = corpus_run
    wrong = []
    for lab in labels:
        if lab["family"] not in FAMILIES:
            continue
        rec = recs.get(str((corpus / lab["path"]).resolve()))
        got = rec["level"] if rec else None
        if got != lab["expected"]:
            wrong.append((lab["path"], lab["expected"], got, lab.get("note")))
    assert not wrong, wrong


def test_negatives_have_no_marking_finding(corpus_run: tuple[dict[str, dict], list[dict], Path]) -> None:
    recs, labels, corpus = corpus_run
    for lab in labels:
        if not lab["family"].startswith("N-"):
            continue
        rec = recs.get(str((corpus / lab["path"]).resolve()))
        if rec:
            assert not [f for f in rec["findings"] if f["kind"] == "marking"], lab["path"]
