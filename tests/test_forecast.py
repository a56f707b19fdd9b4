"""``capacity --forecast`` (SPEC §6): the least-squares line of a vault's use, worked by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from engine.api import ingest
from engine.inventory import Inventory
from engine.trend.forecast import fit, forecast

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
