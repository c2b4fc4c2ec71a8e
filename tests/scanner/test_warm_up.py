"""Scanner.warm_up: what the agent's long-lived scanner does before its first verdict (issue 17,
goal 3). Run in a fresh interpreter: freezing the collector's generations is process-wide."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

_SCRIPT = r"""
import gc, json, sys
from scanner.config import ScanConfig
from scanner.engine import Scanner
s = Scanner(ScanConfig(ocr_mode="off"))
loaded_before = sorted(m for m in sys.modules if m.startswith("scanner.extractors."))
s.warm_up()
print(json.dumps({
    "frozen": gc.get_freeze_count(),
    "tracked": [len(gc.get_objects(g)) for g in range(3)],
    "loaded_before": loaded_before,
    "loaded": sorted(m for m in sys.modules if m.startswith("scanner.extractors.")),
    "lxml": "lxml.etree" in sys.modules,
}))
"""


def test_warm_up_loads_every_reader_and_freezes_what_the_process_keeps() -> None:
    out = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, check=True, capture_output=True, text=True,
                         timeout=300)
    r = json.loads(out.stdout)
    for name in ("ooxml", "mail", "archive", "markup", "text"):
        assert f"scanner.extractors.{name}" in r["loaded"], name
    assert "scanner.extractors.ooxml" not in r["loaded_before"]  # loaded by the warm-up, not before
    assert r["lxml"]
    # The modules, rules and patterns are frozen; what the collector still tracks is what the
    # sample scans left behind, a small fraction.
    assert r["frozen"] > 20_000, r
    assert sum(r["tracked"]) < r["frozen"] // 10, r
