"""A kill (SIGKILL) at any moment of `cbrq ingest` leaves the store exactly before or after.

Each trial starts from the same store (a plain one, and one that keeps history
since a snapshot), kills an append (which supersedes stored rows and merges
segments) after a random delay, then checks what a
user sees: the export, a page, and DuckDB's view of the live rows, equal to
the store before the ingest or to the store after a complete one. The next
ingest then runs on top as usual. A few trials under the default profile,
more under ``ci`` and many under ``nightly``.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import settings

from engine.api import export_pages, ingest
from engine.inventory import Inventory
from engine.store.manifest import read_manifest
from engine.store.read import duckdb_sql
from tests.records import backup, page

TRIALS = max(3, settings.default.max_examples // 20)  # default 3, ci 5, nightly 100


def seen(root: Path) -> tuple[Any, ...]:
    inv = Inventory.open(root)
    live = duckdb.sql(
        f"SELECT id, _payload FROM ({duckdb_sql(root, read_manifest(root))}) ORDER BY 1"
    )
    return (
        list(export_pages(root)),
        inv.query("sort=name:asc&limit=7&offset=3").ids,
        live.fetchall(),
    )


@pytest.fixture(scope="module", params=["plain", "history"])
def states(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[str], Any, Any, float]:
    """A store, the files of an append, what the store shows before and after it, its time.

    ``history``: the store's first ingest is a snapshot, so the killed append is
    a history store's (versions kept, sightings written and moved, SPEC §6).
    """
    tmp = tmp_path_factory.mktemp("crash")
    inputs = tmp / "in"
    inputs.mkdir()
    first = [
        backup(f"b{i:04d}", created_at=f"2021-01-{1 + i % 28:02d}T00:00:00Z") for i in range(3000)
    ]
    (inputs / "0.json").write_text(page(*first))
    root = tmp / "before"
    ingest([str(inputs / "0.json")], root, snapshot=request.param == "history")
    ingest([str(_write(inputs, "1.json", range(3000, 3400)))], root)  # a second segment
    newer = [
        backup(f"b{i:04d}", name=f"new{i}", updated_at="2030-01-01T00:00:00Z")
        for i in range(0, 3400, 7)
    ]
    (inputs / "2.json").write_text(page(*newer))
    paths = [str(_write(inputs, "3.json", range(3400, 6000))), str(inputs / "2.json")]
    after = tmp / "after"
    shutil.copytree(root, after)
    started = time.perf_counter()
    _cbrq("ingest", "-q", *paths, "--store", str(after)).check_returncode()
    elapsed = time.perf_counter() - started
    return root, paths, seen(root), seen(after), elapsed


def _write(folder: Path, name: str, ids: range) -> Path:
    path = folder / name
    path.write_text(page(*(backup(f"b{i:04d}") for i in ids)))
    return path


def _cbrq(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_a_killed_ingest_leaves_the_store_before_or_after(
    trial: int, states: tuple[Path, list[str], Any, Any, float], tmp_path: Path
) -> None:
    source, paths, before, after, elapsed = states
    root = tmp_path / "store"
    shutil.copytree(source, root)
    delay = random.Random(trial).uniform(0.0, elapsed * 1.1)
    child = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "ingest", "-q", *paths, "--store", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    if child.poll() is None:
        os.kill(child.pid, signal.SIGKILL)
    child.wait()
    state = seen(root)
    assert state in (before, after), f"trial {trial}: killed after {delay:.2f} s"
    # The next writer finds a usable store, whatever was left behind, and finishes the job.
    _cbrq("ingest", "-q", *paths, "--store", str(root)).check_returncode()
    assert seen(root) == after
