"""Golden outputs of SPEC §6's commands over the bundled daily series (``sample_daily/``).

``tests/golden/daily/cases.tsv`` names one output file and one command line per case;
:func:`load_store` feeds the series day by day as snapshots through the CLI, and
:func:`output` runs a case's command through the CLI, as a user would.
"""

from __future__ import annotations

import atexit
import json
import math
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from engine.cli import main

HERE = Path(__file__).resolve().parent / "daily"
CASES_FILE = HERE / "cases.tsv"
SERIES = HERE.parent.parent.parent / "sample_daily"


@dataclass(frozen=True)
class DailyCase:
    """One line of cases.tsv: the golden file and the command's words (without ``--store``)."""

    line: int
    file: str
    args: tuple[str, ...]

    @property
    def path(self) -> Path:
        return HERE / self.file


def cases() -> list[DailyCase]:
    """Every case of daily/cases.tsv."""
    found = []
    for number, line in enumerate(CASES_FILE.read_text().splitlines(), start=1):
        if line.startswith("#") or not line.strip():
            continue
        file, args = line.split("\t")
        found.append(DailyCase(number, file, tuple(shlex.split(args))))
    return found


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


@cache
def load_store() -> Path:
    """sample_daily/ fed day by day with ``--snapshot`` into a temporary store (removed at exit)."""
    root = Path(tempfile.mkdtemp(prefix="cbrq-golden-daily-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    for day in sorted(p for p in SERIES.iterdir() if p.is_dir()):
        _cli("ingest", str(day), "--store", str(root / "store"), "--snapshot", "-q")
    return root / "store"


def output(case: DailyCase) -> str:
    """What ``cbrq ARGS --store S`` writes for ``case``."""
    return _cli(*case.args, "--store", str(load_store()))


def same(expected: str, got: str, file: str) -> bool:
    """Whether two outputs agree: JSON as JSON (floats to 1e-9 relative), other text exactly."""
    if not file.endswith(".json"):
        return expected == got
    return _close(json.loads(expected), json.loads(got))


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
        return numbers and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b
