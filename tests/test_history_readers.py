"""Every reader of a store with snapshots answers as of its instant (SPEC §6 "Reading").

The analyses and ``report`` read the inventory as of an ``--at`` given;
``cbrq serve --as-of``; ``cbrq diff --store S --as-of T1 --to T2``; the SQL
``cbrq info --sql`` prints; and the DuckDB and Spark backends, held to
:mod:`engine.testing.reference`'s model like polars in ``tests/test_history.py``.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from engine.api import ingest
from engine.inventory import Inventory
from engine.testing import reference
from engine.testing.strategies import Step, ingest_sequences
from tests.records import cbrq, write_page
from tests.test_history import _backup, _engine_state, _instants, _key, _run

DAY1 = "2026-11-01T12:00:00Z"


#: b-1 is overdue (expired before day 1's noon), b-4 in error; both are deleted on day 2.
_DOOMED = (_backup("b-1", 1, expired_at="2026-11-01T06:00:00Z"), _backup("b-4", 1, "error"))


def _days(folder: Path) -> list[str]:
    day1 = write_page(folder / "day1.json", *_DOOMED, _backup("b-2", 1))
    day2 = write_page(folder / "day2.json", _backup("b-2", 1), _backup("b-3", 2))
    return [day1, day2]


@pytest.fixture
def two_days(tmp_path: Path) -> Path:
    """Day 1: b-1 (overdue), b-4 (error) and b-2; day 2: b-2 and b-3 (b-1, b-4 deleted)."""
    store = tmp_path / "s"
    for day in _days(tmp_path):
        ingest([day], store, snapshot=True)
    return store


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    """The same two pages ingested without --snapshot: b-1 is never gone."""
    store = tmp_path / "plain"
    for day in _days(tmp_path):
        ingest([day], store)
    return store


def _ids(analysis: Any) -> list[str]:
    return sorted(set(analysis.frame["id"].to_list()))


def test_an_analysis_at_a_past_instant_reads_that_day(two_days: Path) -> None:
    with Inventory.open(two_days) as inv:
        assert _ids(inv.retention(at=DAY1)) == ["b-1"]
        assert _ids(inv.hygiene(at=DAY1)) == ["b-4"]
        assert inv.stats(at=DAY1).frame["backups"].sum() == 3
        # The default at (the newest updated_at) reads the latest: b-1 is gone.
        assert _ids(inv.retention()) == [] and _ids(inv.hygiene()) == []
        assert inv.stats().frame["backups"].sum() == 2
        assert inv.retention().at is not None and inv.retention().at.day == 2
        # 'now' is an explicit at: the latest export, ages measured to now.
        assert _ids(inv.hygiene(at="now")) == []
    done = cbrq("retention", "--store", str(two_days), "--at", DAY1, "-f", "json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["at"].startswith("2026-11-01T12:00:00")
    assert {(r["id"], r["finding"]) for r in body["rows"]} == {("b-1", "short"), ("b-1", "overdue")}
    latest = json.loads(cbrq("hygiene", "--store", str(two_days), "-f", "json").stdout)
    assert latest["rows"] == []


def test_an_inventory_pinned_by_as_of_keeps_its_instant(two_days: Path) -> None:
    with Inventory.open(two_days, as_of=DAY1) as inv:
        assert _ids(inv.hygiene()) == ["b-4"]
        assert _ids(inv.hygiene(at="2026-11-03T00:00:00Z")) == ["b-4"]
    with Inventory.open(two_days, ever=True) as inv:
        assert _ids(inv.hygiene(at="2026-11-03T00:00:00Z")) == ["b-4"]


def test_a_store_without_snapshots_analyses_as_before(plain: Path) -> None:
    with Inventory.open(plain) as inv:
        assert not inv.history_view and inv.analysed(DAY1) is inv
        assert _ids(inv.retention(at=DAY1)) == ["b-1"]
        assert _ids(inv.hygiene(at=DAY1)) == _ids(inv.hygiene()) == ["b-4"]
    done = cbrq("hygiene", "--store", str(plain), "--at", DAY1, "-f", "json")
    assert done.returncode == 0 and [r["id"] for r in json.loads(done.stdout)["rows"]] == ["b-4"]


def test_a_report_at_a_past_instant_shows_that_day(two_days: Path) -> None:
    pytest.importorskip("matplotlib")
    from engine.report import ReportOptions
    from engine.report.data import gather

    with Inventory.open(two_days) as inv:
        then = gather(inv, ReportOptions(at=DAY1))
        now = gather(inv, ReportOptions())
    assert _ids(then.hygiene) == ["b-4"] and _ids(then.retention) == ["b-1"]
    assert then.daily["backups"].sum() == 3 and set(then.daily["status"]) == {"available", "error"}
    assert _ids(now.hygiene) == [] and set(now.daily["status"]) == {"available"}


# --- cbrq serve --as-of ----------------------------------------------------------------------


def _served(url: str) -> list[str]:
    from tests.server_fixture import get

    status, _, body = get(f"{url}/v3/p1/backups")
    assert status == 200, body
    return sorted(b["id"] for b in body["backups"])


def test_the_server_answers_as_of_its_instant(two_days: Path, tmp_path: Path) -> None:
    from tests.server_fixture import get, running

    with Inventory.open(two_days, as_of=DAY1) as inv, running(inv) as url:
        assert _served(url) == ["b-1", "b-2", "b-4"]
        assert get(f"{url}/v3/p1/backups/b-1")[0] == 200
        assert get(f"{url}/v3/p1/backups/b-3")[0] == 404
    with Inventory.open(two_days, ever=True) as inv, running(inv) as url:
        assert _served(url) == ["b-1", "b-2", "b-3", "b-4"]
    with Inventory.open(two_days) as inv, running(inv) as url:
        assert _served(url) == ["b-2", "b-3"]
        assert get(f"{url}/v3/p1/backups/b-1")[0] == 404


def test_a_new_commit_is_served_as_of_the_same_instant(two_days: Path, tmp_path: Path) -> None:
    from engine.server.app import Backend

    def ids(backend: Backend) -> list[str]:
        return sorted(b["id"] for b in json.loads(backend.list_backups("p1", []))["backups"])

    with Inventory.open(two_days, as_of=DAY1) as pinned, Inventory.open(two_days) as latest:
        then, now = Backend(pinned, log=lambda _: None), Backend(latest, log=lambda _: None)
        day3 = write_page(tmp_path / "day3.json", _backup("b-5", 3))
        ingest([day3], two_days, snapshot=True)
        assert then.refresh() and now.refresh()
        assert ids(then) == ["b-1", "b-2", "b-4"] and ids(now) == ["b-5"]
        then.close()
        now.close()


def test_serve_refuses_an_instant_it_cannot_answer(two_days: Path, plain: Path) -> None:
    refused = cbrq("serve", "--store", str(plain), "--as-of", DAY1, "--port", "0")
    assert refused.returncode == 2 and "keeps no history" in refused.stderr
    both = cbrq("serve", "--store", str(two_days), "--as-of", DAY1, "--ever", "--port", "0")
    assert both.returncode == 2 and "--as-of or --ever, not both" in both.stderr
    workers = cbrq("serve", "--store", str(plain), "--as-of", DAY1, "--workers", "2")
    assert workers.returncode == 2 and "keeps no history" in workers.stderr


# --- cbrq diff --store S --as-of T1 --to T2 --------------------------------------------------


def _diff_rows(inv_a: Inventory, inv_b: Inventory, kind: str) -> tuple[Any, list[Any]]:
    result = inv_a.diff(inv_b)
    rows = result.frame.filter(pl.col("kind") == kind).to_dicts()
    return result.at, rows


@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_diff_of_two_instants_is_the_diff_of_the_two_exports(seed: int) -> None:
    from engine.generate import write_series
    from engine.store.manifest import read_manifest

    with tempfile.TemporaryDirectory() as scratch:
        folder, store = Path(scratch), Path(scratch) / "s"
        days = write_series(folder / "daily", 200, days=3, seed=seed).days
        for day in days:
            ingest([str(day.folder)], store, snapshot=True)
        taken = [r.taken_at for r in read_manifest(store).ingests]
        with Inventory.open(store) as inv:
            for (i, a), (j, b) in itertools.product(enumerate(days), repeat=2):
                with Inventory.from_dumps(a.folder) as da, Inventory.from_dumps(b.folder) as db:
                    expected = _diff_rows(da, db, "backup")
                    got = _diff_rows(inv.as_of(taken[i]), inv.as_of(taken[j]), "backup")
                note(f"day {i} -> day {j}")
                assert got == expected
                assert i == j or expected[1]  # the days differ: the property is not vacuous


def test_diff_of_two_instants_on_the_command_line(two_days: Path) -> None:
    done = cbrq("diff", "--store", str(two_days), "--as-of", DAY1, "-f", "json")
    assert done.returncode == 0, done.stderr
    rows = [(r["change"], r["id"]) for r in json.loads(done.stdout)["rows"]]
    assert rows == [("added", "b-3"), ("removed", "b-1"), ("removed", "b-4")]
    back = cbrq("diff", "--store", str(two_days), "--as-of", "now", "--to", DAY1, "-f", "json")
    rows = [(r["change"], r["id"]) for r in json.loads(back.stdout)["rows"]]
    assert rows == [("added", "b-1"), ("added", "b-4"), ("removed", "b-3")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", DAY1], "--to needs --as-of"),
        ([], "give A and B"),
        (["A"], "give both A and B"),
        (["A", "B", "--as-of", DAY1], "not both"),
        (["A", "B", "--store", "S"], "not both"),
        (["--as-of", "the day before"], "--as-of='the day before': not a time"),
    ],
)
def test_diff_says_how_to_ask_for_two_instants(args: list[str], message: str) -> None:
    done = cbrq("diff", *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_diff_of_two_instants_needs_a_store_with_snapshots(plain: Path) -> None:
    done = cbrq("diff", "--store", str(plain), "--as-of", DAY1)
    assert done.returncode == 2 and "keeps no history" in done.stderr


def test_diff_of_two_instants_gives_the_vaults_of_the_two_exports(tmp_path: Path) -> None:
    from engine.generate import write_series
    from engine.store.manifest import read_manifest

    days = write_series(tmp_path / "daily", 200, days=3, seed=1).days
    for day in days:
        ingest([str(day.folder)], tmp_path / "s", snapshot=True)
    taken = [r.taken_at for r in read_manifest(tmp_path / "s").ingests]
    with Inventory.open(tmp_path / "s") as inv:
        got = _diff_rows(inv.as_of(taken[0]), inv.as_of(taken[2]), "vault")
    with Inventory.from_dumps(days[0].folder) as a, Inventory.from_dumps(days[2].folder) as b:
        expected = _diff_rows(a, b, "vault")
    assert expected[1] and got == expected


# --- cbrq info --sql: the rule of SPEC §6 in DuckDB SQL ---------------------------------------


def _sql_ids(sql: str, variable: str | None = None) -> list[str]:
    import duckdb

    with duckdb.connect() as con:
        if variable is not None:
            con.execute(f"SET VARIABLE cbrq_as_of = '{variable}'")
        return sorted(str(row[0]) for row in con.sql(f"SELECT id FROM ({sql})").fetchall())


def test_the_printed_sql_answers_as_cbrq_at_each_snapshot(tmp_path: Path) -> None:
    from engine.generate import write_series
    from engine.store.manifest import read_manifest

    store = tmp_path / "s"
    days = write_series(tmp_path / "daily", 200, days=3, seed=3).days
    ingest([str(days[0].folder)], store)  # before history: the rows it wrote stand for it
    for day in days[1:]:
        ingest([str(day.folder)], store, snapshot=True)
    latest = cbrq("info", "--store", str(store), "--sql")
    assert latest.returncode == 0, latest.stderr
    for taken in [r.taken_at for r in read_manifest(store).ingests] + ["now"]:
        asked = cbrq("query", "--store", str(store), "--as-of", taken, "-f", "ndjson")
        expected = sorted(json.loads(line)["id"] for line in asked.stdout.splitlines())
        printed = cbrq("info", "--store", str(store), "--sql", "--as-of", taken).stdout
        assert _sql_ids(printed) == expected
        if taken != "now":
            assert _sql_ids(latest.stdout, variable=taken) == expected
    with Inventory.open(store) as inv:
        assert _sql_ids(latest.stdout) == sorted(inv.query(columns=["id"]).ids)
    duck = f"SELECT status, count(*) FROM ({latest.stdout}) GROUP BY 1"
    assert cbrq("info", "--store", str(store), "--sql", "--kind", "vaults").returncode == 0
    import duckdb

    assert sum(n for _, n in duckdb.sql(duck).fetchall()) == len(_sql_ids(latest.stdout))


def test_info_as_of_needs_sql_and_a_history(two_days: Path, plain: Path) -> None:
    alone = cbrq("info", "--store", str(two_days), "--as-of", DAY1)
    assert alone.returncode == 2 and "--as-of needs --sql" in alone.stderr
    refused = cbrq("info", "--store", str(plain), "--sql", "--as-of", DAY1)
    assert refused.returncode == 2 and "keeps no history" in refused.stderr
    vaults = cbrq("info", "--store", str(two_days), "--sql", "--as-of", DAY1, "--kind", "vaults")
    assert vaults.returncode == 2 and "--kind backups" in vaults.stderr
    plain_sql = cbrq("info", "--store", str(plain), "--sql").stdout
    assert _sql_ids(plain_sql) == ["b-1", "b-2", "b-3", "b-4"]  # a plain store: as before


# --- against the model, on every reader ------------------------------------------------------


def _model_runs(steps: list[Step], check: Callable[[Path, list[reference.Ingest]], None]) -> None:
    """Ingest ``steps`` into a fresh store, then ``check`` it (history begins with a snapshot)."""
    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / "s"
        kept = _run(steps, store, Path(scratch))
        if kept and kept[0].snapshot:
            check(store, kept)


def _expected(kept: list[reference.Ingest], at: datetime | None) -> dict[str, tuple[Any, ...]]:
    return {i: _key(r) for i, r in reference.as_of(kept, at).items()}


@settings(max_examples=max(5, settings().max_examples // 4))
@given(ingest_sequences())
def test_the_printed_sql_answers_as_the_model(steps: list[Step]) -> None:
    from engine.store.history_sql import duckdb_history_sql
    from engine.store.manifest import read_manifest

    def check(store: Path, kept: list[reference.Ingest]) -> None:
        manifest = read_manifest(store)
        for at in _instants(kept):
            note(f"at {at}")
            assert _sql_ids(duckdb_history_sql(store, manifest, at)) == sorted(_expected(kept, at))

    _model_runs(steps, check)


@settings(max_examples=max(5, settings().max_examples // 4))
@given(ingest_sequences())
def test_duckdb_answers_as_the_model_at_every_instant(steps: list[Step]) -> None:
    def check(store: Path, kept: list[reference.Ingest]) -> None:
        with Inventory.open(store, engine="duckdb") as inv:
            for at in _instants(kept):
                note(f"at {at}")
                assert _engine_state(inv.as_of(at)) == _expected(kept, at)
                assert inv.as_of(at).count() == len(_expected(kept, at))

    _model_runs(steps, check)
