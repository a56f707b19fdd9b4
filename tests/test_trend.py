"""``cbrq trend`` (SPEC §6): the store counted per period, held to the plain-Python model.

The model (:func:`engine.testing.reference.trend`) asks ``as_of`` at every
period end; the engine walks the sightings once (:mod:`engine.trend.walk`).
Both are driven by the same random histories of exports
(:func:`engine.testing.strategies.ingest_sequences`).
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from engine.analyses import json_rows
from engine.api import ingest
from engine.errors import IncompleteExport, QueryError
from engine.instants import parse_instant
from engine.inventory import Inventory
from engine.testing import reference
from engine.testing.strategies import Step, ingest_sequences
from engine.trend.series import ends
from tests.records import cbrq, write_page


def _backup(ident: str, day: int, status: str = "available", **more: Any) -> dict[str, Any]:
    when = f"2026-11-0{day}T0{day}:00:00Z"
    return {
        "id": ident,
        "status": status,
        "image_type": "backup",
        "project_id": "p1",
        "vault_id": "v1",
        "resource_id": f"r-{ident}",
        "resource_size": 10 * day,
        "created_at": when,
        "updated_at": when,
        **more,
    }


@pytest.fixture
def three_days(tmp_path: Path) -> Path:
    """b-1, b-2 on day 1; b-2 (now error), b-3 on day 2; b-3, b-4 on day 4 (nothing on day 3)."""
    store = tmp_path / "s"
    days = [
        [_backup("b-1", 1), _backup("b-2", 1)],
        [_backup("b-2", 2, "error"), _backup("b-3", 2)],
        [_backup("b-3", 2), _backup("b-4", 4)],
    ]
    for n, day in enumerate(days):
        ingest([write_page(tmp_path / f"{n}.json", *day)], store, snapshot=True)
    return store


def test_one_row_per_day_from_the_first_snapshot_to_the_last(three_days: Path) -> None:
    with Inventory.open(three_days) as inv:
        rows = json_rows(inv.trend().frame)
    assert [r["at"] for r in rows] == [
        "2026-11-01T23:59:59.999999",
        "2026-11-02T23:59:59.999999",
        "2026-11-03T23:59:59.999999",
        "2026-11-04T04:00:00.000000",  # the last row: at the last snapshot
    ]
    assert [(r["backups"], r["added"], r["gone"]) for r in rows] == [
        (2, 2, 0),
        (2, 1, 1),
        (2, 0, 0),
        (2, 1, 1),
    ]
    assert [(r["size_gb"], r["available"], r["error"]) for r in rows] == [
        (20, 2, 0),
        (40, 1, 1),
        (40, 1, 1),
        (60, 2, 0),
    ]
    # Each resource has one backup: on day 3 r-b-3's (created day 2, 02:00) is 46 h old.
    assert [r["breaches"] for r in rows] == [0, 1, 2, 1]


def test_a_filter_reads_each_version_at_each_period_end(three_days: Path) -> None:
    with Inventory.open(three_days) as inv:
        rows = inv.trend("status=error").frame
        weekly = inv.trend(every="week", max_age="7d").frame
    assert rows["backups"].to_list() == [0, 1, 1, 0]
    assert rows["added"].to_list() == [0, 1, 0, 0] and rows["gone"].to_list() == [0, 0, 0, 1]
    # 2026-11-01 is a Sunday: its ISO week ends that day, the next one holds the rest.
    assert weekly["backups"].to_list() == [2, 2] and weekly["breaches"].to_list() == [0, 0]


def test_since_and_until_narrow_the_rows(three_days: Path) -> None:
    with Inventory.open(three_days) as inv:
        since = inv.trend(since="2026-11-02T12:00:00Z", until="2026-11-03T06:00:00Z")
    assert json_rows(since.frame)[-1]["at"] == "2026-11-03T06:00:00.000000"
    assert since.frame["added"].to_list() == [1, 0]  # against the end of Nov 1st


def test_cli_formats_fields_and_errors(three_days: Path, tmp_path: Path) -> None:
    done = cbrq("trend", "--store", str(three_days), "-f", "json", "--fields", "at,gone")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["at"] == "2026-11-04T04:00:00.000000"
    assert [r["gone"] for r in answer["rows"]] == [0, 1, 0, 1] and list(answer["rows"][0]) == [
        "at",
        "gone",
    ]
    csv = cbrq("trend", "--store", str(three_days), "--every", "month", "-f", "csv")
    assert (
        csv.stdout.splitlines()[0]
        == "at,backups,size_gb,available,error,added,gone,breaches,used_mb"
    )
    bad = cbrq("trend", "--store", str(three_days), "--every", "year")
    assert bad.returncode == 2 and "--every" in bad.stderr and "day" in bad.stderr
    late = cbrq(
        "trend",
        "--store",
        str(three_days),
        "--since",
        "2026-11-03T00:00:00Z",
        "--until",
        "2026-11-02T00:00:00Z",
    )
    assert late.returncode == 2 and "since" in late.stderr, late.stderr
    paging = cbrq("trend", "limit=3", "--store", str(three_days))
    assert paging.returncode == 2 and "limit" in paging.stderr


def test_a_store_without_snapshots_has_no_trend(tmp_path: Path) -> None:
    store = tmp_path / "plain"
    ingest([write_page(tmp_path / "1.json", _backup("b-1", 1))], store)
    with Inventory.open(store) as inv, pytest.raises(QueryError, match="needs snapshots"):
        inv.trend()
    done = cbrq("trend", "--store", str(store))
    assert done.returncode == 2 and "needs snapshots" in done.stderr
    memory = cbrq("trend", "--from", str(tmp_path / "1.json"))
    assert memory.returncode == 2 and "--store" in memory.stderr


def test_used_mb_follows_the_vault_versions(tmp_path: Path) -> None:
    store = tmp_path / "v"
    for day, used in ((1, 100), (2, 250), (3, 175)):
        vault = {"id": "v1", "project_id": "p1", "billing": {"size": 10, "used": used}}
        backups = write_page(tmp_path / f"b{day}.json", _backup("b-1", 1))
        vaults = tmp_path / f"v{day}.json"
        vaults.write_text(json.dumps({"count": 1, "vaults": [vault]}))
        taken = datetime(2026, 11, day, 12, tzinfo=UTC)
        ingest([backups, str(vaults)], store, snapshot=True, taken_at=taken)
    with Inventory.open(store) as inv:
        assert inv.trend().frame["used_mb"].to_list() == [100.0, 250.0, 175.0]
        assert inv.trend("vault_id=v9").frame["used_mb"].to_list() == [None] * 3


def test_period_ends_are_the_last_microsecond_of_each_period() -> None:
    first = datetime(2026, 1, 30, 12, tzinfo=UTC)
    months = ends(first, datetime(2026, 3, 2, tzinfo=UTC), "month")
    assert months.before == datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert months.ats[:2] == (
        datetime(2026, 1, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=UTC),
    )
    weeks = ends(first, first + timedelta(days=5), "week")  # a Friday: weeks from Monday
    assert weeks.before == datetime(2026, 1, 25, 23, 59, 59, 999999, tzinfo=UTC)
    assert reference.trend_instants(first, first + timedelta(days=5), "week") == (
        weeks.before,
        list(weeks.ats),
    )


# --- against the model ---------------------------------------------------------------------

FILTERS = st.sampled_from(["", "status=available", "status=error", "vault_id=v1", "name=a"])


def _run(steps: list[Step], store: Path, folder: Path) -> list[reference.Ingest]:
    kept: list[reference.Ingest] = []
    for number, step in enumerate(steps):
        if not step.files:
            continue
        paths = step.write(folder / str(number))
        taken = None if step.taken_at is None else parse_instant(step.taken_at)
        options = {"snapshot": step.ingest.snapshot, "scope": step.ingest.scope, "taken_at": taken}
        try:
            ingest(paths, store, **options)
        except IncompleteExport:
            assert step.refused
            continue
        kept.append(step.ingest)
    return kept


@settings(max_examples=max(10, settings().max_examples // 2))
@given(ingest_sequences(), FILTERS, st.sampled_from(["day", "week", "month"]))
def test_the_trend_is_the_models(steps: list[Step], filter: str, every: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / "s"
        kept = _run(steps, store, Path(scratch))
        if not kept or not kept[0].snapshot:
            return  # history begins with a store's first snapshot (README)
        taken = reference.taken_at_of(kept)
        if all(t is None for k, t in zip(kept, taken, strict=True) if k.snapshot):
            return  # no snapshot has a taken_at: both refuse, "trend needs snapshots"
        with Inventory.open(store) as inv:
            got = json_rows(inv.trend(filter, every=every, max_age="2d").frame)
        want = reference.trend(kept, filter, every=every, max_age="2d")
        note(f"engine={got}\nmodel={want}")
        assert got == want
