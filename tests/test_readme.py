"""Every command the README shows is run, in order, as a user would type it.

Shell blocks (```sh) are run and must succeed; in plain blocks a line
``$ command`` is run with its output on a terminal (a pty) and what follows
it, up to the next ``$`` line, is what it must print (stdout, then stderr; a line ``...`` ends the
comparison, and instants and the temporary folder are masked). Python
blocks are run too. The few examples that need what a test machine lacks
(a million generated backups, a running endpoint, the duckdb program) are
listed in :data:`NOT_RUN` with the reason and the test that covers them.
"""

from __future__ import annotations

import gzip
import itertools
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLE, on_terminal

README = REPO / "README.md"

#: Examples not run here, by how they start: why, and what covers them instead.
NOT_RUN = {
    "python -m pytest": "the suite itself",
    "cbrq generate scratch/big -n 1000000": "a million backups, minutes: tests/test_generate.py",
    "cbrq conformance --endpoint": "needs a running endpoint: tests/test_conformance.py",
    "duckdb -c": "the duckdb program is not a dependency: tests/test_append.py runs the SQL",
    "from huaweicloudsdkcbr": "needs a running server: tests/test_server_sdk.py",
    "import json, pathlib, tempfile": "tests/test_docs.py runs the conformance recipe",
    # Each starts a JVM (10-30 s on two cores); tests/test_spark.py runs a query on
    # the command line with --engine spark and Inventory.open(engine="spark", spark=session).
    "cbrq query 'status=error&sort=created_at:desc&limit=5' --store scratch/cbrq-store --engine": (
        "Spark: tests/test_spark.py"
    ),
    "cbrq explain 'used_percent=80' --store scratch/cbrq-store --engine": (
        "Spark: tests/test_spark.py"
    ),
    "from pyspark.sql import SparkSession": "Spark: tests/test_spark.py",
}
INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\+00:00|Z)")


@dataclass(frozen=True)
class Example:
    """One command (or Python block) of the README and the output it shows, if any."""

    line: int
    kind: str  # "sh", "$" or "python"
    text: str
    shown: str | None = None


def examples() -> list[Example]:
    """The README's examples in order."""
    found: list[Example] = []
    lines = README.read_text().splitlines()
    at = 0
    while at < len(lines):
        fence = lines[at]
        if not fence.startswith("```"):
            at += 1
            continue
        lang = fence[3:].strip()
        end = next(i for i in range(at + 1, len(lines)) if lines[i].startswith("```"))
        body = lines[at + 1 : end]
        if lang == "sh":
            found += [Example(at + 2 + i, "sh", b) for i, b in enumerate(body) if b.strip()]
        elif lang == "python":
            found.append(Example(at + 2, "python", "\n".join(body)))
        elif lang == "" and body and body[0].startswith("$ "):
            starts = [i for i, b in enumerate(body) if b.startswith("$ ")] + [len(body)]
            for i, j in itertools.pairwise(starts):
                shown = "\n".join(body[i + 1 : j])
                found.append(Example(at + 2 + i, "$", body[i][2:], shown))
        at = end + 1
    return found


#: Steps of the quick start that set up a machine: the test's interpreter has cbrq already.
SETUP = ("python3 -m venv ", ". .venv/bin/activate", "python -m pip install")


def without_install(text: str) -> str:
    """A command line less its setup steps (the quick start's venv and ``pip install``)."""
    return " && ".join(c for c in text.split(" && ") if not c.startswith(SETUP))


def skipped(example: Example) -> str | None:
    text = without_install(example.text)
    return next((why for start, why in NOT_RUN.items() if text.startswith(start)), None)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's folder: the sample data, and the inputs the examples name."""
    here = tmp_path_factory.mktemp("user")
    shutil.copytree(SAMPLE, here / "sample_data")
    shutil.copytree(SAMPLE.parent / "sample_daily", here / "sample_daily")
    first = sorted((SAMPLE / "dumps").rglob("*.json"))[0].read_bytes()
    (here / "dump.json.gz").write_bytes(gzip.compress(first))
    (here / "exports" / "2026-01" / "a").mkdir(parents=True)
    page = b'{"count": 1, "backups": [{"id": "exported-1", "status": "available"}]}'
    (here / "exports" / "2026-01" / "a" / "p1.json.gz").write_bytes(gzip.compress(page))
    (here / "in").mkdir()
    (here / "in" / "bad.json").write_text(
        '{"count": 2, "backups": [{"id": "ok-1"}, {"id": "bad-2", "resource_size": "40GB"}]}'
    )
    return here


def shell_env() -> dict[str, str]:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("CBRQ_STORE", None)
    env["COLUMNS"] = "200"  # a terminal wide enough for the tables shown
    return env


def run_shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=cwd, env=shell_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def run_on_terminal(command: str, cwd: Path) -> tuple[int, str]:
    """Exit status, and stdout as a terminal shows it followed by stderr, of ``command``.

    Standard error is a pipe, so no progress bar is drawn into what is compared.
    """
    status, shown, errors = on_terminal(
        ["bash", "-o", "pipefail", "-c", command], "stdout", cwd=cwd, env=shell_env()
    )
    return status, shown + errors


def masked(text: str, folder: Path) -> str:
    return INSTANT.sub("<instant>", text.replace(str(folder) + "/", "")).rstrip("\n")


def test_the_readme_has_examples_of_every_kind() -> None:
    kinds = {e.kind for e in examples()}
    assert kinds == {"sh", "$", "python"}
    assert sum(e.shown is not None and e.shown != "" for e in examples()) >= 8


def test_every_example_runs_as_shown(folder: Path) -> None:
    """The quick start first (it makes scratch/cbrq-store), then every example in README order."""
    ran = 0
    for example in examples():
        why = skipped(example)
        where = f"README.md line {example.line}: {example.text.splitlines()[0]}"
        if why is not None:
            continue
        if example.kind == "python":
            done = subprocess.run(
                [sys.executable, "-c", example.text],
                cwd=folder, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert done.returncode == 0, f"{where}\n{done.stderr}"
            ran += 1
            continue
        ran += 1
        if example.shown is None:
            done = run_shell(without_install(example.text), folder)
            assert done.returncode == 0, f"{where}\n{done.stderr}"
            continue
        status, printed = run_on_terminal(example.text, folder)
        printed = masked(printed, folder)
        shown = masked(example.shown, folder)
        if "\n..." in "\n" + shown:
            head = shown.split("\n...", 1)[0] if not shown.startswith("...") else ""
            assert printed.startswith(head), f"{where}\nprinted:\n{printed}"
        else:
            assert printed == shown, f"{where}\nprinted:\n{printed}\nshown:\n{shown}"
        failed = "cbrq: error" in shown
        assert (status in (1, 2)) if failed else status == 0, f"{where}: exit status {status}"
    assert ran >= 15
