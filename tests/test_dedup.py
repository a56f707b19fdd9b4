"""A backup id seen more than once is kept once (SPEC §2, last paragraph)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.api import ingest
from engine.store.read import scan
from tests.records import backup, page

Write = Callable[[str, str | bytes], Path]


def kept(store: Path) -> dict[str, str]:
    frame = scan(store, "backups").collect()
    return dict(zip(frame["id"].to_list(), frame["name"].to_list(), strict=True))


def test_newest_updated_at_wins_whatever_the_file_order(write: Write, store: Path) -> None:
    newer = backup("a", name="newer", updated_at="2021-01-01T00:00:00+08:00")
    older = backup("a", name="older", updated_at="2020-12-31T15:00:00")
    summary = ingest([str(write("1.json", page(newer))), str(write("2.json", page(older)))], store)
    assert kept(store) == {"a": "newer"}
    assert (summary.backups_new, summary.backups_replaced, summary.backups_duplicate) == (1, 0, 1)


def test_a_tie_goes_to_the_file_ingested_later(write: Write, store: Path) -> None:
    one = backup("a", name="first", updated_at="2021-01-01T00:00:00Z")
    two = backup("a", name="second", updated_at="2021-01-01T08:00:00+08:00")
    ingest([str(write("2.json", page(two))), str(write("1.json", page(one)))], store)
    assert kept(store) == {"a": "first"}  # given order counts, not names


def test_a_later_ingest_replaces_and_counts(write: Write, store: Path) -> None:
    ingest([str(write("1.json", page(backup("a"), backup("b"))))], store)
    newer = backup("a", name="newer", updated_at="2030-01-01T00:00:00")
    stale = backup("b", name="stale", updated_at="2000-01-01T00:00:00")
    summary = ingest([str(write("2.json", page(newer, stale, backup("c"))))], store)
    assert kept(store) == {"a": "newer", "b": "autobk_b", "c": "autobk_c"}
    assert (summary.backups_new, summary.backups_replaced, summary.backups_duplicate) == (1, 1, 1)


def test_missing_updated_at_is_older_than_any(write: Write, store: Path) -> None:
    dated = backup("a", name="dated")
    undated = {k: v for k, v in backup("a", name="undated").items() if k != "updated_at"}
    ingest([str(write("1.json", page(dated))), str(write("2.json", page(undated)))], store)
    assert kept(store) == {"a": "dated"}


def test_table_is_sorted_by_created_at(write: Write, store: Path) -> None:
    records = [backup(f"x{i}", created_at=f"2020-01-0{9 - i}T00:00:00") for i in range(5)]
    ingest([str(write("1.json", page(*records)))], store)
    created = scan(store, "backups").collect()["created_at"]
    assert created.is_sorted()
