"""Phase: a store's history -> the inventory over time (SPEC §6 ``trend``, ``capacity --forecast``).

:func:`trend` walks the store's ingests once (:mod:`engine.trend.walk`) and
counts the backups present at every period end (:mod:`engine.trend.series`);
:mod:`engine.trend.forecast` fits each vault's use over time. Nothing here
knows the :class:`~engine.inventory.Inventory`: it passes the store, the
filter's verdict per stored row, and the vaults at an instant.

Example::

    result = trend(root, manifest, TrendAsk.parse("week"), match, vaults_at)
    result.frame.select("at", "backups", "gone")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from engine.analyses import Analysis, parse_at, parse_duration
from engine.backends.base import RID, Tables
from engine.backends.polars import compile_filter
from engine.errors import Problem, QueryError
from engine.query import BackupQuery
from engine.spec import DEFAULT_MAX_AGE, DEFAULT_TREND_EVERY
from engine.store.manifest import Manifest
from engine.trend.series import TREND_SCHEMA, VaultsAt, ends, parse_every, trend_frame
from engine.trend.walk import Flags, Walk

__all__ = ["NO_SNAPSHOT", "TREND_SCHEMA", "TrendAsk", "matching", "trend"]

#: Why a store without a snapshot has no trend.
NO_SNAPSHOT = Problem(
    "trend",
    None,
    "needs snapshots: this inventory was never fed a --snapshot ingest",
    "ingest full exports with `cbrq ingest --snapshot`, one a day; the trend starts at the first",
)


@dataclass(frozen=True)
class TrendAsk:
    """What a trend is asked: the period, the range and rpo's ``max_age``.

    Example: ``TrendAsk.parse("week", since="2026-01-01T00:00:00Z")``.
    """

    every: str = DEFAULT_TREND_EVERY
    since: datetime | None = None
    until: datetime | None = None
    max_age: timedelta = timedelta(hours=24)

    @classmethod
    def parse(
        cls,
        every: str = DEFAULT_TREND_EVERY,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        max_age: str | timedelta = DEFAULT_MAX_AGE,
    ) -> TrendAsk:
        """Each option checked; every bad one named in one :class:`QueryError`.

        Example: ``TrendAsk.parse("month", max_age="7d").max_age.days == 7``.
        """
        problems: list[Problem] = []
        parsed: dict[str, object] = {}
        checks: dict[str, Callable[[], object]] = {
            "every": lambda: parse_every(every),
            "since": lambda: None if since is None else parse_at(since, "since"),
            "until": lambda: None if until is None else parse_at(until, "until"),
            "max_age": lambda: parse_duration(max_age, "max_age"),
        }
        for name, check in checks.items():
            try:
                parsed[name] = check()
            except QueryError as err:
                problems += err.problems
        ask = cls(**parsed) if not problems else cls()  # type: ignore[arg-type]
        if not problems and ask.since and ask.until and ask.since > ask.until:
            problems.append(Problem("since", str(since), "is after --until", f"at most {until}"))
        if problems:
            raise QueryError(problems)
        return ask


def trend(
    root: Path, manifest: Manifest, ask: TrendAsk, match: Flags | None, vaults_at: VaultsAt
) -> Analysis:
    """The rows of ``cbrq trend`` (SPEC §6); ``at`` is the last row's.

    ``match``: per stored backup row (``_rid``), whether that version matches
    the filter (``None``: no filter); ``vaults_at``: the vaults present at an
    instant and the resources they list. Raises :class:`QueryError` naming
    ``trend`` for a store without a snapshot.

    Example: ``trend(root, manifest, TrendAsk(), None, vaults_at).frame["backups"]``.
    """
    taken = [parse_at(r.taken_at) for r in manifest.ingests if r.snapshot and r.taken_at]
    if not taken:
        raise QueryError([NO_SNAPSHOT])
    first = max(min(taken), ask.since) if ask.since else min(taken)
    last = min(max(taken), ask.until) if ask.until else max(taken)
    if first > last:
        return Analysis("trend", last, pl.DataFrame(schema=TREND_SCHEMA))
    periods = ends(first, last, ask.every)
    frame = trend_frame(Walk.read(root, manifest), match, periods, vaults_at, ask.max_age)
    return Analysis("trend", last, frame)


def matching(query: BackupQuery, physical: pl.LazyFrame, tables: Tables) -> Flags | None:
    """Per stored backup row of ``physical`` (every version): whether it matches ``query``.

    ``None`` when the query filters nothing. ``tables``: the inventory's (its
    vaults and members answer ``used_percent`` and ownership).

    Example: ``matching(inv.parse("status=error"), inv.physical(), inv.tables)``.
    """
    if query == BackupQuery(project=query.project, semantics=query.semantics):
        return None
    numbered = physical.with_row_index(RID)
    every = Tables(numbered, tables.vaults, tables.members, tables.has_members, ordered=False)
    rows = compile_filter(query, every).select(RID).collect()[RID].to_numpy()
    match = np.zeros(int(physical.select(pl.len()).collect().item()), dtype=np.bool_)
    match[rows] = True
    return match
