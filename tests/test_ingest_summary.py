"""Issue 23 item 5: an ingest's summary says what happened, honestly.

New, changed, unchanged (same id, same text) and duplicate records are counted
apart and add up to the backups read; nested unknown keys are shown under their
parent; counts carry thousands separators on a terminal only; a strict ingest of
several bad files names every one of them at once, the store unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.api import ingest
from engine.cli import main
from engine.errors import RecordError
from engine.ingest.pipeline import IngestSummary
from tests.conftest import snapshot
from tests.records import backup, page

Write = Callable[[str, str | bytes], Path]


def day(n: int, changed: set[int] = frozenset(), fresh: int = 0) -> str:  # type: ignore[assignment]
    """A day's export of ``n`` backups; those in ``changed`` have moved on, ``fresh`` are new."""
    records = [
        backup(f"b{i}", status="error", updated_at="2020-02-22T00:00:00Z")
        if i in changed
        else backup(f"b{i}")
        for i in range(n)
    ]
    return page(*records, *(backup(f"new{i}") for i in range(fresh)))


def counts(summary: IngestSummary) -> tuple[int, int, int, int]:
    return (
        summary.backups_new,
        summary.backups_changed,
        summary.backups_unchanged,
        summary.backups_duplicate,
    )


def test_reingesting_a_day_with_three_changes_says_three_changed(write: Write, store: Path) -> None:
    ingest([str(write("day1.json", day(20)))], store)
    summary = ingest([str(write("day2.json", day(20, {3, 5, 8}, fresh=2)))], store)
    assert counts(summary) == (2, 3, 17, 0)
    assert sum(counts(summary)) == summary.records["backups"] == 22
    # Backward compatible: what the store superseded is still reported as before.
    assert summary.backups_replaced == 20


def test_the_cli_says_changed_and_unchanged(write: Write, store: Path) -> None:
    ingest([str(write("day1.json", day(20)))], store)
    path = write("day2.json", day(20, {3, 5, 8}))
    result = CliRunner().invoke(main, ["ingest", str(path), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "backups: 0 new, 3 changed, 17 unchanged, 0 duplicate (20 read)" in result.stderr


def test_same_text_is_unchanged_a_different_text_at_the_same_time_changed(
    write: Write, store: Path
) -> None:
    ingest([str(write("1.json", page(backup("a"), backup("b"))))], store)
    # Same updated_at, other content: the later copy wins, and it is a change.
    again = page(backup("a"), backup("b"), backup("b", name="renamed"), backup("c"))
    summary = ingest([str(write("2.json", again))], store)
    assert counts(summary) == (1, 1, 1, 1)


def test_an_older_copy_is_a_duplicate_not_a_change(write: Write, store: Path) -> None:
    ingest([str(write("1.json", page(backup("a", updated_at="2030-01-01T00:00:00Z"))))], store)
    summary = ingest([str(write("2.json", page(backup("a", status="error"))))], store)
    assert counts(summary) == (0, 0, 0, 1)


def test_history_stores_count_the_same_way(write: Write, store: Path) -> None:
    ingest([str(write("day1.json", day(10)))], store, snapshot=True)
    summary = ingest([str(write("day2.json", day(10, {1, 2})))], store, snapshot=True)
    assert counts(summary) == (0, 2, 8, 0)


def test_nested_unknown_keys_are_shown_under_their_parent(write: Write, store: Path) -> None:
    failed = backup("a", fail_code={"Code": "BackupService.6100", "Description": "disk full"})
    result = CliRunner().invoke(
        main, ["ingest", str(write("p.json", page(failed, backup("b")))), "--store", str(store)]
    )
    assert result.exit_code == 0
    assert "unknown keys kept: fail_code (Code, Description)\n" in result.stderr


def test_deeper_nesting_and_many_keys() -> None:
    from engine.render.summary import unknown_keys_text

    paths = {("x",), ("x", "a"), ("x", "a", "b"), ("x", "c"), ("extend_info", "y")}
    assert unknown_keys_text(paths) == "extend_info.y, x (a (b), c)"
    many = {(f"k{i:02d}",) for i in range(12)}
    assert unknown_keys_text(many).endswith("k09, ... (12 in all)")


def summary_text(summary: IngestSummary, terminal: bool) -> str:
    from engine.render.summary import ingest_lines

    return "\n".join(ingest_lines(summary, terminal))


def test_thousands_separators_on_a_terminal_only() -> None:
    summary = IngestSummary(files=1, backups_new=1_234_567, totals={"backups": 2_000_000})
    summary.records["backups"] = 1_234_567
    on_terminal, piped = summary_text(summary, True), summary_text(summary, False)
    assert "backups: 1,234,567 new" in on_terminal and "inventory: 2,000,000 backups" in on_terminal
    assert "backups: 1234567 new" in piped and "," not in piped.split("\n")[1].split("(")[1]


def test_quiet_ingest_prints_no_summary(write: Write, store: Path) -> None:
    path = write("p.json", page(backup("a")))
    result = CliRunner().invoke(main, ["ingest", str(path), "--store", str(store), "-q"])
    assert result.exit_code == 0 and result.stderr == ""


def test_strict_ingest_of_a_folder_names_every_bad_file(write: Write, store: Path) -> None:
    ingest([str(write("good.json", page(backup("a"))))], store)
    before = snapshot(store)
    write("b-bad.json", page(backup("b", resource_size="40GB")))
    write("c-good.json", page(backup("c")))
    write("d-broken.json", '{"count": 1, "backups": [')
    write("e-bad.ndjson", json.dumps(backup("e")) + "\n" + json.dumps(backup("", name="x")) + "\n")
    result = CliRunner().invoke(main, ["ingest", str(store.parent / "in"), "--store", str(store)])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("cbrq: error: 3 files cannot be ingested")
    assert [line.split(":")[0].strip().rsplit("/", 1)[-1] for line in lines[1:]] == [
        "b-bad.json",
        "d-broken.json",
        "e-bad.ndjson",
    ]
    assert "'resource_size'" in lines[1] and "line 2" in lines[3]
    assert snapshot(store) == before


def test_one_bad_file_keeps_its_own_error(write: Write, store: Path) -> None:
    ingest([str(write("0.json", page(backup("z"))))], store)
    before = snapshot(store)
    write("a.json", page(backup("a")))
    write("b.json", page(backup("b"), backup("b2", resource_size="40GB")))
    with pytest.raises(RecordError) as caught:
        ingest([str(store.parent / "in")], store)
    assert str(caught.value).endswith("""field 'resource_size' = "40GB": expected an integer""")
    assert "b.json" in str(caught.value) and "files cannot be ingested" not in str(caught.value)
    assert snapshot(store) == before


def test_lenient_ingest_still_lands_the_good_files(write: Write, store: Path) -> None:
    write("a.json", page(backup("a")))
    write("b.json", page(backup("b", resource_size="40GB")))
    write("c.json", "not json")
    summary = ingest([str(store.parent / "in")], store, lenient=True)
    assert summary.totals["backups"] == 1 and summary.quarantined == 2
