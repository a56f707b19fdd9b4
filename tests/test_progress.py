"""The ingest progress: phases in order, records up to the total, a clock that keeps running."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.api import Tick, ingest
from engine.cli import _Bar
from tests.conftest import SAMPLE, on_terminal
from tests.records import backup, page


def test_ticks_name_every_phase_and_reach_the_record_total(tmp_path: Path) -> None:
    ticks: list[Tick] = []
    summary = ingest([str(SAMPLE)], tmp_path / "store", progress=ticks.append)
    phases = list(dict.fromkeys(t.phase for t in ticks))
    assert phases == [
        "reading",
        "typing records",
        "writing backups",
        "writing vaults",
        "writing members",
        "committing",
    ]
    read = sum(summary.records.values())
    assert ticks[-1].records == read and ticks[-1].files_done == ticks[-1].files_total
    assert max(t.records for t in ticks if t.phase == "reading") <= read
    assert ticks[-1].bytes_done == ticks[-1].bytes_total


def test_an_append_names_only_the_tables_it_writes(tmp_path: Path) -> None:
    ingest([str(SAMPLE)], tmp_path / "store")
    dump = tmp_path / "more.json"
    dump.write_text(page(backup("new-one")))
    ticks: list[Tick] = []
    ingest([str(dump)], tmp_path / "store", progress=ticks.append)
    assert list(dict.fromkeys(t.phase for t in ticks)) == [
        "reading",
        "typing records",
        "writing backups",
        "committing",
    ]


def test_the_bar_never_finishes_so_its_clock_runs_after_reading() -> None:
    bar = _Bar()
    update = bar.__enter__()
    try:
        update(Tick(3, 3, 900, 900, 40))  # every byte read
        update(Tick(3, 3, 900, 900, 52, "writing backups"))
        task = bar.progress.tasks[0]
        assert not task.finished and task.fields["phase"] == "writing backups"
        assert task.fields["records"] == 52
    finally:
        bar.__exit__(None, None, None)


def test_the_bar_shows_on_a_terminal(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "engine.cli", "ingest", str(SAMPLE), "--store",
               str(tmp_path / "store")]  # fmt: skip
    status, shown, _ = on_terminal(command, "stderr")
    assert status == 0
    assert "ingest: reading" in shown and "files: " in shown  # the bar, then the summary
