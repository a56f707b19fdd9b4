"""``capacity --forecast`` (SPEC §6): the least-squares line of a vault's use, worked by hand."""

from __future__ import annotations

import json
import math
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import event, given, note, settings

from engine.api import ingest
from engine.errors import IncompleteExport
from engine.instants import parse_instant
from engine.inventory import Inventory
from engine.spec import FORECAST_POINTS
from engine.testing import reference
from engine.testing.strategies import Step, ingest_sequences
from engine.trend.forecast import fit, forecast
from tests.golden import daily

AT = datetime(2026, 11, 30, tzinfo=UTC)


def test_the_line_is_least_squares() -> None:
    # x = 0, 1, 2, 3; y = 1, 2, 2, 5: x_mean 1.5, y_mean 2.5, sxy = 6, sxx = 5 -> slope 1.2
    points = pl.LazyFrame({"id": ["v"] * 4, "x": [0.0, 1, 2, 3], "y": [1.0, 2, 2, 5]})
    line = fit(points).collect().row(0, named=True)
    assert (line["points"], line["x_mean"], line["y_mean"]) == (4, 1.5, 2.5)
    assert line["slope"] == pytest.approx(1.2, abs=1e-12)
    same_day = fit(pl.LazyFrame({"id": ["v"] * 3, "x": [1.0, 1, 1], "y": [1.0, 2, 3]}))
    assert same_day.collect()["slope"].to_list() == [None]


def _versions(rows: list[tuple[str, int, int, float | None]]) -> pl.LazyFrame:
    """(vault, ingest n, days before AT, used MB) as vault_versions gives them."""
    return pl.LazyFrame(
        {
            "id": [r[0] for r in rows],
            "n": [r[1] for r in rows],
            "taken": [AT - timedelta(days=r[2]) for r in rows],
            "billing": [{"size": 10, "used": r[3]} for r in rows],
        },
        schema_overrides={"taken": pl.Datetime("us", "UTC")},
    )


def _capacity(*ids: tuple[str, bool]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [i for i, _ in ids],
            "size_gb": [10.0] * len(ids),
            "threshold": [80] * len(ids),
            "full": [f for _, f in ids],
        }
    )


def test_days_to_full_solves_the_line_for_the_threshold() -> None:
    versions = _versions(
        [
            # rising 100 MB a day, 4,192 MB now: 8,192 MB (80 % of 10 GB) in 40 days
            *[("up", n, 3 - n, 4192.0 - 100 * (3 - n)) for n in range(4)],
            ("flat", 1, 2, 500.0),
            ("flat", 2, 1, 500.0),
            ("flat", 3, 0, 500.0),
            ("down", 1, 2, 900.0),
            ("down", 2, 1, 800.0),
            ("down", 3, 0, 700.0),
            ("few", 1, 1, 100.0),
            ("few", 2, 0, 200.0),
            ("old", 1, 40, 100.0),
            ("old", 2, 35, 200.0),
            ("old", 3, 0, 300.0),
            # two ingests at one instant: the later one's version is the point
            ("tie", 1, 2, 100.0),
            ("tie", 2, 1, 5000.0),
            ("tie", 3, 1, 200.0),
            ("tie", 4, 0, 300.0),
        ]
    )
    capacity = _capacity(*[(v, False) for v in ("up", "flat", "down", "few", "old", "tie")])
    capacity = pl.concat([capacity, _capacity(("full", True))])
    days = dict(forecast(capacity, versions, AT).select("id", "days_to_full").iter_rows())
    assert days["up"] == pytest.approx(40.0, abs=1e-9)
    assert days["tie"] == pytest.approx((8192 - 300) / 100, abs=1e-9)
    assert (days["flat"], days["down"], days["few"], days["old"]) == (None, None, None, None)
    assert days["full"] == 0.0


def test_a_full_vault_is_0_days_from_full_even_without_an_at() -> None:
    # an inventory with no updated_at has no at, so no line; "0 when already full" holds still
    versions = _versions([("up", n, 3 - n, 4192.0 + 100 * n) for n in range(4)])
    capacity = _capacity(("full", True), ("up", False))
    days = dict(forecast(capacity, versions, None).select("id", "days_to_full").iter_rows())
    assert days == {"full": 0.0, "up": None}


def test_capacity_forecast_reads_the_stores_vault_versions(tmp_path: Path) -> None:
    store = tmp_path / "s"
    for day, used in ((1, 1000), (2, 2000), (3, 3000)):
        backup = {
            "id": "b-1",
            "project_id": "p1",
            "vault_id": "v1",
            "updated_at": f"2026-11-0{day}T12:00:00Z",
        }
        vault = {"id": "v1", "project_id": "p1", "billing": {"size": 10, "used": used}}
        page = tmp_path / f"{day}.json"
        page.write_text(
            json.dumps([{"count": 1, "backups": [backup]}, {"count": 1, "vaults": [vault]}])
        )
        ingest([str(page)], store, snapshot=True)
    with Inventory.open(store) as inv:
        plain = inv.capacity().frame
        rows = inv.capacity(forecast=True).frame
    assert "days_to_full" not in plain.columns
    assert rows.columns[-1] == "days_to_full"
    assert rows["days_to_full"].to_list() == [pytest.approx((8192 - 3000) / 1000)]


# --- against the model ---------------------------------------------------------------------


def _run(steps: list[Step], store: Path, folder: Path) -> list[reference.Ingest]:
    """Ingest ``steps`` in turn (as tests/test_history.py does); the calls the store kept."""
    kept: list[reference.Ingest] = []
    for number, step in enumerate(steps):
        if not step.files:
            continue  # `cbrq ingest` takes at least one path
        taken = None if step.taken_at is None else parse_instant(step.taken_at)
        options = {"snapshot": step.ingest.snapshot, "scope": step.ingest.scope, "taken_at": taken}
        try:
            ingest(step.write(folder / str(number)), store, **options)
        except IncompleteExport:
            assert step.refused
            continue
        assert not step.refused
        kept.append(step.ingest)
    return kept


def _same(got: float | None, want: float | None) -> bool:
    """Both null, or days equal to 1e-6 (relative) or 1e-6 days."""
    if got is None or want is None:
        return got is want
    return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-6)


def _instants(kept: list[reference.Ingest]) -> list[datetime | None]:
    """The default ``at``, each taken_at and an hour before, and the 30-day window's edges."""
    times = sorted({t for t in reference.taken_at_of(kept) if t is not None})
    if not times:
        return [None]
    window = timedelta(days=30)
    edges = {times[-1] + window, times[0] + window, times[0] + window + timedelta(microseconds=1)}
    probes = {t + delta for t in times for delta in (timedelta(0), timedelta(hours=-1))}
    return [None, *sorted(probes | edges)]


@settings(max_examples=max(10, settings().max_examples // 2))
@given(ingest_sequences(min_ingests=FORECAST_POINTS, listed=True))
def test_days_to_full_is_the_models(steps: list[Step]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / "s"
        kept = _run(steps, store, Path(scratch))
        if not kept or not kept[0].snapshot:
            return  # history begins with a store's first snapshot (README)
        with Inventory.open(store) as inv:
            for at in _instants(kept):
                frame = inv.capacity(at=at, forecast=True).frame
                got = dict(frame.select("id", "days_to_full").iter_rows())
                want = {r["id"]: r["days_to_full"] for r in reference.forecast(kept, at)["rows"]}
                note(f"at {at}: engine {got}, model {want}")
                assert got.keys() == want.keys()
                assert all(_same(got[k], want[k]) for k in got)
                event("a line rising to the threshold" if any(want.values()) else "no line")


def test_the_model_gives_the_golden_forecast_of_the_bundled_series() -> None:
    calls = []
    for day in sorted(p for p in daily.SERIES.iterdir() if p.is_dir()):
        dumps = [json.loads(f.read_text()) for f in sorted(day.rglob("*.json"))]
        calls.append(reference.Ingest.from_dumps(dumps, snapshot=True))
    want = json.loads((daily.HERE / "capacity-forecast.json").read_text())
    model = reference.forecast(calls)
    assert model["at"] == want["at"]
    assert [r["id"] for r in model["rows"]] == [r["id"] for r in want["rows"]]
    assert sum(r["days_to_full"] is not None for r in want["rows"]) == 4  # 3 full, 1 filling
    for row, golden in zip(model["rows"], want["rows"], strict=True):
        assert _same(row.pop("days_to_full"), golden.pop("days_to_full")), row["name"]
        assert row == golden
