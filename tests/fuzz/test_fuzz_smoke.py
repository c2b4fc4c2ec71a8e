"""CI smoke for the fuzz targets: every saved seed and every minimised crash input is replayed
through its target (a fixed crash that comes back fails the build), then each target is fuzzed
under atheris for a couple of seconds from that corpus. `make fuzz` is the long campaign.

The smoke runs from a fixed seed per target, so the inputs it tries come in the same order on
every run: a failure follows a code change and reproduces with the command in its message. When
it fails, the crashing input itself is in the message (base64), because CI's temporary
directory does not outlive the run (the OOM CI hit on 2026-12-06 had to be rebuilt from the
code). Discovery with fresh seeds is `make fuzz`'s job."""
from __future__ import annotations

import base64
import os
import subprocess
import sys
import zlib
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
    cmd = [sys.executable, "-m", "tests.fuzz.fuzz", target, "-max_total_time=2", "-timeout=20",
           "-rss_limit_mb=2048", f"-seed={smoke_seed(target)}", f"-artifact_prefix={tmp_path}/",
           str(work), *dirs]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, failure_report(proc.stderr, tmp_path, cmd)


def smoke_seed(target: str) -> int:
    """libFuzzer's seed for `target`: fixed, and different per target."""
    return zlib.crc32(target.encode()) % 2**31 + 1


def failure_report(stderr: str, arts: Path, cmd: list[str]) -> str:
    """libFuzzer's last lines, the command, and every artifact (crash/oom/timeout input) as base64."""
    out = [stderr[-2000:], "command: " + " ".join(cmd)]
    for p in sorted(arts.iterdir()):
        if p.is_file() and p.name.split("-")[0] in ("crash", "oom", "timeout", "leak", "slow"):
            out.append(f"artifact {p.name} ({p.stat().st_size} bytes), base64:\n"
                       + base64.b64encode(p.read_bytes()[:262_144]).decode())
    return "\n".join(out)


def test_failure_report_carries_the_input(tmp_path: Path) -> None:
    data = bytes(range(256)) * 3
    (tmp_path / "oom-c4f83eef").write_bytes(data)
    (tmp_path / "work").mkdir()  # libFuzzer's corpus directory is not an artifact
    report = failure_report("SUMMARY: libFuzzer: out-of-memory", tmp_path, ["python", "-m", "x"])
    encoded = report.split("base64:\n", 1)[1].split("\n", 1)[0]
    assert base64.b64decode(encoded) == data
    assert "command: python -m x" in report and report.count("artifact ") == 1
    assert len({smoke_seed(t) for t in TARGETS}) == len(TARGETS) and all(smoke_seed(t) > 0 for t in TARGETS)
