"""``cbrq capacity --forecast`` (SPEC §6): days until each vault reaches its threshold.

Per vault, the points are its versions taken in the last
:data:`~engine.spec.FORECAST_DAYS` days up to ``at`` (one per distinct
``taken_at``: the later ingest's); the ordinary least-squares line of
``billing.used`` (MB) over time (days) is solved for ``threshold`` % of
``billing.size`` (GB x 1024). Every step is one grouped polars expression.
The decisions SPEC leaves open are written in :mod:`engine.spec`.

Example::

    capacity = forecast(capacity_frame, vault_versions(root, manifest), at)
    capacity.select("id", "days_to_full")
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import polars as pl

from engine.spec import FORECAST_DAYS, FORECAST_POINTS

_DAY_MICROS: Final[float] = 86_400e6


def fit(points: pl.LazyFrame) -> pl.LazyFrame:
    """Per ``id``: ``points`` (count), ``x_mean``, ``y_mean`` and ``slope`` of ``y`` over ``x``.

    ``slope`` is the least-squares one, null when every ``x`` is equal.

    Example: ``fit(pl.LazyFrame({"id": ["v"] * 3, "x": [0.0, 1, 2], "y": [1.0, 3, 5]}))``
    -> slope 2.0.
    """
    dx = pl.col("x") - pl.col("x").mean()
    dy = pl.col("y") - pl.col("y").mean()
    spread = (dx * dx).sum()
    return points.group_by("id").agg(
        pl.len().alias("points"),
        pl.col("x").mean().alias("x_mean"),
        pl.col("y").mean().alias("y_mean"),
        pl.when(spread > 0).then((dx * dy).sum() / spread).alias("slope"),
    )


def forecast(capacity: pl.DataFrame, versions: pl.LazyFrame, at: datetime | None) -> pl.DataFrame:
    """``capacity``'s rows (SPEC §5 columns) with ``days_to_full`` from the vault ``versions``.

    ``versions``: :func:`engine.store.history.vault_versions` (``id``, ``n``,
    ``taken``, ``billing``). Without ``at`` there is no line: a full vault is 0
    days from full all the same, every other vault has no forecast.

    Example: ``forecast(inv.capacity().frame, vault_versions(root, manifest), at)``.
    """
    if at is None:
        full = pl.when(pl.col("full")).then(pl.lit(0.0)).otherwise(pl.lit(None, pl.Float64))
        return capacity.with_columns(full.alias("days_to_full"))
    used = pl.col("billing").struct.field("used").cast(pl.Float64)
    points = (
        versions.filter(pl.col("taken").is_between(at - timedelta(days=FORECAST_DAYS), at))
        .filter(used.is_not_null())
        .sort("n")
        .group_by("id", "taken")
        .agg(used.last().alias("y"))
        .select(
            "id", ((pl.col("taken") - at).dt.total_microseconds() / _DAY_MICROS).alias("x"), "y"
        )
    )
    lines = fit(points).collect()
    target = pl.col("threshold").cast(pl.Float64) / 100 * pl.col("size_gb") * 1024
    crossing = pl.col("x_mean") + (target - pl.col("y_mean")) / pl.col("slope")
    rising = (pl.col("points") >= FORECAST_POINTS) & (pl.col("slope") > 0) & (pl.col("size_gb") > 0)
    days = (
        pl.when(pl.col("full"))
        .then(pl.lit(0.0))
        .when(rising.fill_null(False))
        .then(pl.max_horizontal(crossing, pl.lit(0.0)))
        .otherwise(pl.lit(None, pl.Float64))
    )
    return (
        capacity.join(lines, on="id", how="left", maintain_order="left")
        .with_columns(days.alias("days_to_full"))
        .select(*capacity.columns, "days_to_full")
    )
