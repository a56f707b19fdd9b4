"""A tiny run of the benchmark harness: every engine must give the same answers.

Timings are printed by the harness but never asserted here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_harness_smoke_run_agrees(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run.py"),
            "--smoke",
            "--n",
            "1500",
            "--data",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "FAIL" not in result.stdout
    assert "| representative |" in result.stdout and "| marker page |" in result.stdout
    assert "| cbrq --from |" in result.stdout and "Append of 1,000 backups" in result.stdout
    assert "| fragmented | compacted |" in result.stdout
