"""``cbrq trend`` (SPEC §6): the inventory counted at the end of every day, week or month.

One row per period end E from the period of the first snapshot to that of
the last: the backups present at E (each at its version at E) that match the
filter, counted and summed; those added and gone since the previous period's
end; the rpo breaches at E; the use of the vaults present at E. The walk
through time is :class:`~engine.trend.walk.Walk` (one pass over the
sightings); each period is then a handful of array operations over the
backups, never a pass over the sightings.

Decisions SPEC §6 leaves open are written in :mod:`engine.spec` (section
"trend").

Example::

    frame = trend_frame(walk, None, ends(first, last, "day"), vaults_at, timedelta(hours=24))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import numpy as np
import polars as pl

from engine.errors import Problem, QueryError
from engine.spec import STATS_PERIODS, TREND_COLUMNS
from engine.trend.walk import Flags, Ints, Walk

_TIME: Final = pl.Datetime("us", "UTC")
_ONE: Final = timedelta(microseconds=1)
#: The columns of a trend row and their types (SPEC §6 order).
TREND_SCHEMA: Final = pl.Schema(
    {
        "at": _TIME,
        **{name: pl.Int64() for name in TREND_COLUMNS[1:-1]},
        "used_mb": pl.Float64(),
    }
)


def parse_every(value: str, name: str = "every") -> str:
    """The period of a trend: ``day``, ``week`` (ISO, from Monday) or ``month`` (UTC).

    Raises :class:`QueryError` naming ``name``.

    Example: ``parse_every("week") == "week"``.
    """
    if value not in STATS_PERIODS:
        raise QueryError([Problem(name, value, "not a period", ", ".join(STATS_PERIODS))])
    return value


@dataclass(frozen=True)
class Periods:
    """The instants a trend is measured at: ``ats`` (one per row), after ``before``.

    ``before`` is the end of the period before the first row (what the first
    row's ``added`` and ``gone`` compare with).

    Example: ``ends(first, last, "day").ats[-1] == last``.
    """

    before: datetime
    ats: tuple[datetime, ...]


def ends(first: datetime, last: datetime, every: str) -> Periods:
    """The period ends from ``first``'s period to ``last``'s; the last row is at ``last``.

    A period ends at its last microsecond (a day at 23:59:59.999999 UTC), so that
    an export taken at midnight counts for the day it starts.

    Example: ``ends(datetime(2026, 1, 1, 12, tzinfo=UTC), ..., "day").ats[0]`` -> 23:59:59.999999.
    """
    interval = STATS_PERIODS[every]
    bounds = pl.Series([first, last], dtype=_TIME).dt.truncate(interval)
    starts = pl.datetime_range(bounds[0], bounds[1], interval, eager=True, time_zone="UTC")
    stops = starts.dt.offset_by(interval).to_list()
    ats = tuple(min(stop - _ONE, last) for stop in stops)
    return Periods(before=starts[0] - _ONE, ats=ats)


@dataclass(frozen=True)
class _Rows:
    """The per-row arrays one period's counts read (every stored version)."""

    size: Ints
    available: Flags
    error: Flags
    good: Flags
    created: Ints
    resource: Ints
    resources: pl.DataFrame

    @classmethod
    def of(cls, rows: pl.DataFrame) -> _Rows:
        status = rows["status"]
        available = (status == "available").fill_null(False)
        good = available & (rows["image_type"] == "backup").fill_null(False)
        coded = rows.select(
            (pl.col("resource_id").rank("dense").cast(pl.Int64) - 1).fill_null(-1).alias("code"),
            pl.col("resource_id"),
        )
        return cls(
            size=rows["resource_size"].fill_null(0).cast(pl.Int64).to_numpy(),
            available=available.to_numpy(),
            error=(status == "error").fill_null(False).to_numpy(),
            good=(good & rows["created_at"].is_not_null()).to_numpy(),
            created=rows["created_at"].dt.epoch("us").fill_null(0).to_numpy().astype(np.int64),
            resource=coded["code"].to_numpy().astype(np.int64),
            resources=coded.drop_nulls().unique(),
        )


#: The vaults present at an instant (``vault_table`` columns), and the resources
#: they list that rpo counts (``engine.analyses.listed_resources``).
VaultsAt = Callable[[datetime], tuple[pl.DataFrame, pl.Series]]


def trend_frame(
    walk: Walk,
    match: Flags | None,
    periods: Periods,
    vaults_at: VaultsAt,
    max_age: timedelta,
) -> pl.DataFrame:
    """The trend rows: per instant of ``periods``, the counts of the matching backups present.

    ``match``: per stored row, whether the version matches the filter (``None``: all).

    Example: ``trend_frame(walk, None, ends(a, b, "week"), vaults_at, timedelta(days=1))``.
    """
    rows = _Rows.of(walk.rows)
    states = walk.states([periods.before, *periods.ats])
    previous = _kept(next(states), match)
    out: list[dict[str, object]] = []
    for at, shown in zip(periods.ats, states, strict=True):
        kept = _kept(shown, match)
        vaults, listed = vaults_at(at)
        present = shown[kept]
        out.append(
            {
                "at": at,
                "backups": int(kept.sum()),
                "size_gb": int(rows.size[present].sum()),
                "available": int(rows.available[present].sum()),
                "error": int(rows.error[present].sum()),
                "added": int((kept & ~previous).sum()),
                "gone": int((previous & ~kept).sum()),
                "breaches": _breaches(rows, present, listed, at, max_age),
                "used_mb": _used(vaults),
            }
        )
        previous = kept
    return pl.DataFrame(out, schema=TREND_SCHEMA)


def _kept(shown: Ints, match: Flags | None) -> Flags:
    """Per backup: present, and its version matches the filter."""
    kept: Flags = shown >= 0
    if match is not None:
        kept[kept] = match[shown[kept]]
    return kept


def _breaches(
    rows: _Rows, present: Ints, listed: pl.Series, at: datetime, max_age: timedelta
) -> int:
    """rpo's ``never`` and ``breach`` rows at ``at`` over the ``present`` rows (SPEC §5).

    A resource (listed by a vault, or named by a present backup) is ok when a
    good backup of it was created in ``[at - max_age, at]``.
    """
    codes = rows.resource[present]
    named = np.zeros(rows.resources.height, dtype=np.bool_)
    named[codes[codes >= 0]] = True
    known = rows.resources.join(
        pl.DataFrame({"resource_id": listed.unique()}, schema={"resource_id": pl.String}),
        on="resource_id",
        how="semi",
    )
    named[known["code"].to_numpy()] = True
    unlisted = listed.drop_nulls().n_unique() - known.height  # listed, never backed up
    stamp = _micros(at)
    window = _micros(at - max_age) if at - max_age > datetime.min.replace(tzinfo=at.tzinfo) else 0
    created = rows.created[present]
    good = rows.good[present] & (created <= stamp) & (created >= window) & (codes >= 0)
    ok = np.zeros(rows.resources.height, dtype=np.bool_)
    ok[codes[good]] = True
    return int(named.sum()) + unlisted - int(ok.sum())


def _micros(at: datetime) -> int:
    return int(pl.Series([at], dtype=_TIME).dt.epoch("us")[0])


def _used(vaults: pl.DataFrame) -> float | None:
    """The sum of ``billing.used`` (MB) of ``vaults``; ``None`` without a vault."""
    if vaults.height == 0:
        return None
    used = vaults.select(pl.col("billing").struct.field("used").cast(pl.Float64).sum())
    return float(used.item())


def first_and_last(taken: Sequence[datetime]) -> tuple[datetime, datetime] | None:
    """The first and last of the snapshots' ``taken_at`` (``None``: no snapshot).

    Example: ``first_and_last([t2, t1]) == (t1, t2)``.
    """
    return (min(taken), max(taken)) if taken else None
