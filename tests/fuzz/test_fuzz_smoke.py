"""CI smoke for the fuzz targets: every saved seed and every minimised crash input is replayed
through its target (a fixed crash that comes back fails the build), then each target is fuzzed
under atheris for a couple of seconds from that corpus. `make fuzz` is the long campaign."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.targets import targets

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
TARGETS = sorted(targets())


def _inputs(target: str) -> list[Path]:
    return sorted(p for d in ("corpus", "regressions") for p in (HERE / d / target).glob("*") if p.is_file())


def test_every_target_has_seeds() -> None:
    assert all(_inputs(t) for t in TARGETS), [t for t in TARGETS if not _inputs(t)]


@pytest.mark.parametrize("target", TARGETS)
def test_saved_inputs_replay_cleanly(target: str) -> None:
    run = targets()[target]
    for p in _inputs(target):
        run(p.read_bytes())  # raises (or kills the test process) on a regression


@pytest.mark.parametrize("target", TARGETS)
def test_short_atheris_run(target: str, tmp_path: Path) -> None:
    if not os.environ.get("BAOMI_FUZZ_SMOKE"):
        pytest.skip("atheris start-up costs ~10 s per target on 2 shared cores: set BAOMI_FUZZ_SMOKE=1 "
                    "(make fuzz-smoke); the replay test above guards fixed crashes on every run")
    pytest.importorskip("atheris", reason="atheris is not installed (pip install -e '.[dev]')")
    work = tmp_path / "work"
    work.mkdir()
    dirs = [str(HERE / d / target) for d in ("corpus", "regressions") if (HERE / d / target).is_dir()]
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.fuzz", target, "-max_total_time=2", "-timeout=20",
         "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/", str(work), *dirs],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
