"""The report's data: its options, and every analysis gathered over one inventory.

:func:`gather` is the only code of the report that reads the inventory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypedDict

import numpy as np
import polars as pl

from engine.params import QueryParams
from engine.spec import (
    DEFAULT_MAX_AGE,
    DEFAULT_MIN_DAYS,
    DEFAULT_STUCK_HOURS,
    REPLICATED_STATUS,
)

#: The longest span of snapshots (days) drawn per day, then per week; longer spans per month.
TREND_DAYS_PER_DAY: Final[int] = 90
TREND_DAYS_PER_WEEK: Final[int] = 731

if TYPE_CHECKING:
    from engine.analyses import Analysis
    from engine.inventory import Inventory, QuerySource
    from engine.query import Semantics


@dataclass(frozen=True)
class ReportOptions:
    """What a report is about: the filter, the instant and each analysis' threshold.

    ``filter``, ``project`` and ``semantics`` mean what they mean to
    :meth:`~engine.inventory.Inventory.query`; ``at`` and the thresholds what
    they mean to the analyses (``at=None``: the inventory's default).

    Example: ``ReportOptions("vault_id=v1", at="now", max_age="7d")``.
    """

    filter: QuerySource = None
    at: str | datetime | None = None
    max_age: str | timedelta = DEFAULT_MAX_AGE
    min_days: int = DEFAULT_MIN_DAYS
    stuck_hours: float = DEFAULT_STUCK_HOURS
    project: str | None = None
    semantics: Semantics | None = None

    @property
    def filter_text(self) -> str:
        """The filter as a query string (empty when there is none).

        Example: ``ReportOptions({"status": ["error", "available"]}).filter_text``.
        """
        return "&".join(f"{k}={v}" for k, v in QueryParams.of(self.filter).pairs)

    @property
    def max_age_text(self) -> str:
        """``max_age`` as written: ``90m``, ``24h``, ``7d``.

        Example: ``ReportOptions(max_age=timedelta(hours=36)).max_age_text == "36h"``.
        """
        return self.max_age if isinstance(self.max_age, str) else duration_text(self.max_age)


def duration_text(value: timedelta) -> str:
    """A duration as people write it: whole days from 2 days on, else whole hours, else minutes.

    Example: ``duration_text(timedelta(hours=24)) == "24h"``; ``7d``, ``90m``.
    """
    minutes = int(value.total_seconds() // 60)
    if minutes >= 2 * 1440 and minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    return f"{minutes // 60}h" if minutes and minutes % 60 == 0 else f"{minutes}m"


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows, gathered from one inventory (small frames only).

    ``daily``: backups per (day, status); ``types``: stats by resource type;
    ``replication``: available backups, those with any replication record
    and those with a successful one per (week, vault_id); ``retention_days``: the kept
    period in days of each available backup with both times.

    Example: ``data = gather(inv, ReportOptions()); data.rpo.frame.height``.
    """

    label: str
    options: ReportOptions
    max_age_seconds: float
    status: Analysis
    daily: pl.DataFrame
    types: pl.DataFrame
    rpo: Analysis
    replication: pl.DataFrame
    retention: Analysis
    retention_days: np.ndarray[Any, np.dtype[np.float64]]
    capacity: Analysis
    hygiene: Analysis
    trends: Trends | None = None

    @property
    def at(self) -> datetime | None:
        """The instant every analysis measured against (``None``: no ``updated_at`` at all).

        Example: ``gather(inv, ReportOptions(at="now")).at``.
        """
        return self.status.at


@dataclass(frozen=True)
class Trends:
    """The trends section's data: the store's inventory over its snapshots (SPEC §6).

    ``every``: the period of ``rows`` (day, week or month, from the span of
    ``snapshots``: the ``taken_at`` of the snapshots up to the report's
    ``at``); ``rows``: ``Inventory.trend`` over the report's filter and
    ``max_age``; ``fill``: the vaults with a size, their ``used_percent`` and
    ``days_to_full`` (``capacity --forecast``), soonest full first, never
    rising last; ``sizeless``: vaults left out of ``fill`` for having no size.

    Example: ``gather(inv, ReportOptions()).trends.rows.frame["backups"]``.
    """

    every: str
    snapshots: tuple[datetime, ...]
    rows: Analysis
    fill: pl.DataFrame
    sizeless: int


def trend_period(span: timedelta) -> str:
    """The period a trend of snapshots spanning ``span`` is drawn per: day, week or month.

    Up to :data:`TREND_DAYS_PER_DAY` days per day (at most ~90 points), up to
    :data:`TREND_DAYS_PER_WEEK` per week (~104), beyond that per month.

    Example: ``trend_period(timedelta(days=120)) == "week"``.
    """
    if span <= timedelta(days=TREND_DAYS_PER_DAY):
        return "day"
    return "week" if span <= timedelta(days=TREND_DAYS_PER_WEEK) else "month"


# --- gather: the only code of the report that reads the inventory -----------


def gather(inv: Inventory, options: ReportOptions) -> ReportData:
    """Run every analysis and the chart aggregates for ``options``.

    Example: ``gather(Inventory.open("inv"), ReportOptions(at="now")).capacity.frame``.
    """
    from engine.analyses import parse_at, parse_duration, parse_filter
    from engine.backends.polars import compile_filter

    flt, project, semantics = options.filter, options.project, options.semantics
    max_age = parse_duration(options.max_age, "max_age")
    asked = None if options.at is None else parse_at(options.at, "at")
    until = asked if asked is not None else inv.instant  # a store read as of an instant
    snapshots = _snapshots(inv, until)
    store, inv = inv, inv.analysed(asked)  # SPEC §6: a report "at" a past instant shows that day
    status = inv.stats(flt, by=("status",), at=asked, project=project, semantics=semantics)
    at = status.at  # "now" read once: every part of the page measures to the same instant
    scope = _Scope(at=at, project=project, semantics=semantics)
    query = parse_filter(
        QueryParams.of(flt), lambda params: inv.parse(params, project=project, semantics=semantics)
    )
    backups = compile_filter(query, inv.tables)
    replication, kept = pl.collect_all([_replication_plan(backups), _retention_plan(backups)])
    capacity = inv.capacity(flt, forecast=len(snapshots) >= 2, **scope)
    return ReportData(
        label=inv.label,
        options=options,
        max_age_seconds=max_age.total_seconds(),
        status=status,
        daily=inv.stats(flt, by=("day", "status"), **scope).frame,
        types=inv.stats(flt, by=("resource_type",), **scope).frame,
        rpo=inv.rpo(flt, max_age=max_age, **scope),
        replication=replication,
        retention=inv.retention(flt, min_days=options.min_days, **scope),
        retention_days=kept["days"].to_numpy(),
        capacity=replace(capacity, frame=capacity.frame.drop("days_to_full", strict=False)),
        hygiene=inv.hygiene(flt, stuck_hours=options.stuck_hours, **scope),
        trends=_trends(store, options, snapshots, until, max_age, capacity),
    )


def _snapshots(inv: Inventory, until: datetime | None) -> tuple[datetime, ...]:
    """The ``taken_at`` of the store's snapshots up to ``until`` (all: ``None``), oldest first."""
    from engine.analyses import parse_at

    if inv.root is None:
        return ()
    records = inv.manifest.ingests
    taken = [parse_at(r.taken_at, "taken_at") for r in records if r.snapshot and r.taken_at]
    return tuple(sorted(t for t in taken if until is None or t <= until))


def _trends(
    inv: Inventory,
    options: ReportOptions,
    snapshots: tuple[datetime, ...],
    until: datetime | None,
    max_age: timedelta,
    capacity: Analysis,
) -> Trends | None:
    """The trends section's data, or ``None`` with fewer than two snapshots to draw.

    ``capacity`` was asked with ``forecast``; the trend runs from the first
    snapshot to ``until`` (the report's ``at`` when one was asked; ``None``: the last snapshot).
    """
    if len(snapshots) < 2:
        return None
    every = trend_period(snapshots[-1] - snapshots[0])
    rows = inv.trend(
        options.filter, every=every, until=until, max_age=max_age,
        project=options.project, semantics=options.semantics,
    )  # fmt: skip
    sized = capacity.frame.filter(pl.col("used_percent").is_not_null())
    fill = sized.select("id", "name", "used_percent", "threshold", "days_to_full").sort(
        "days_to_full", "used_percent", "id", descending=[False, True, False], nulls_last=True
    )
    return Trends(every, snapshots, rows, fill, capacity.frame.height - sized.height)


class _Scope(TypedDict):
    """The arguments every analysis of one report shares."""

    at: datetime | None
    project: str | None
    semantics: Semantics | None


def _replication_plan(backups: pl.LazyFrame) -> pl.LazyFrame:
    """Available backups, those with any replication record (``recorded``) and those with a
    ``success`` one (``replicated``), per week and vault."""
    records = pl.col("replication_records")
    success = pl.element().struct.field("status") == REPLICATED_STATUS
    replicated = records.list.eval(success).list.any().fill_null(False)
    recorded = records.list.len().fill_null(0) > 0
    return (
        backups.filter(pl.col("status") == "available")
        .group_by(pl.col("created_at").dt.truncate("1w").alias("week"), "vault_id")
        .agg(
            pl.len().alias("available"),
            recorded.sum().alias("recorded"),
            replicated.sum().alias("replicated"),
        )
        .sort("week", "vault_id", nulls_last=True)
    )


def _retention_plan(backups: pl.LazyFrame) -> pl.LazyFrame:
    """The kept period (days) of every available backup that has both times."""
    kept = (pl.col("expired_at") - pl.col("created_at")).dt.total_microseconds() / 86_400e6
    return backups.filter(pl.col("status") == "available").select(kept.alias("days")).drop_nulls()
