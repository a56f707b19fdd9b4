"""Phase: the report's trends data -> its charts (the inventory over the store's snapshots).

Drawn like :mod:`engine.report.charts` (its rcParams, colours and
:class:`~engine.report.charts.Chart`), from :attr:`ReportData.trends` only,
never the inventory: ``cbrq trend``'s rows (SPEC §6), one per day, week or
month. Each period is one slot on the x axis, from the first period to the
last (the axis spans exactly the periods drawn), ticked at most
:data:`TREND_TICKS` times at round steps (a week, a fortnight, a quarter ...)
with the period's first day as its label and the year under the first tick
of each year, so labels never overlap.

:func:`draw_trends` gives no chart at all when the report has no trends
section (a store with fewer than two snapshots, dumps read with ``--from``).

Needs the ``report`` extra (matplotlib): ``pip install 'cbrq[report]'``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import matplotlib
import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from engine.report.charts import ACCENT, FIGURE_SIZE, RC, STATUS_COLOURS, WARN, Chart

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from engine.report.data import ReportData, Trends

#: Tick labels on a trend's period axis, at most.
TREND_TICKS: Final[int] = 10
#: Periods beyond which values are no longer written on the bars (they would touch).
LABELLED_BARS: Final[int] = 16
#: The round steps (in periods) between ticks, smallest first.
TICK_STEPS: Final[dict[str, tuple[int, ...]]] = {
    "day": (1, 2, 7, 14, 28, 56),
    "week": (1, 2, 4, 13, 26, 52),
    "month": (1, 2, 3, 6, 12, 24, 60, 120),
}
#: How a caption names each period.
PERIOD_WORDS: Final[dict[str, str]] = {
    "day": "day (UTC)",
    "week": "ISO week (Monday to Sunday, UTC; labelled by its Monday)",
    "month": "month (UTC)",
}
ADDED_COLOUR: Final[str] = STATUS_COLOURS["available"]
BREACH_COLOUR: Final[str] = STATUS_COLOURS["deleting"]


def draw_trends(data: ReportData) -> tuple[Chart, ...]:
    """The trends section's charts, in page order; none without a trends section.

    Example: ``[c.name for c in draw_trends(gather(inv, ReportOptions()))]``.
    """
    if data.trends is None:
        return ()
    trends = data.trends
    with matplotlib.rc_context(RC):
        return (
            _levels_chart(trends),
            _churn_chart(trends),
            _problems_chart(trends, data.options.max_age_text),
        )


def period_starts(trends: Trends) -> list[datetime]:
    """The first instant of each row's period (UTC), in row order.

    Example: ``period_starts(data.trends)[0]`` -> the first snapshot's day at 00:00.
    """
    interval = {"day": "1d", "week": "1w", "month": "1mo"}[trends.every]
    starts = trends.rows.frame["at"].dt.truncate(interval).dt.replace_time_zone(None)
    return list(starts.to_list())


def period_labels(starts: Sequence[datetime], every: str) -> list[str]:
    """A tick label per period start: ``3 Jan`` (``Jan`` by month), the year under each new one.

    Example: ``period_labels([datetime(2026, 1, 3)], "day") == ["3 Jan\\n2026"]``.
    """
    labels, year = [], None
    for start in starts:  # one per tick, at most TREND_TICKS
        text = f"{start:%b}" if every == "month" else f"{start.day} {start:%b}"
        labels.append(text if start.year == year else f"{text}\n{start.year}")
        year = start.year
    return labels


def _period_axis(ax: Axes, starts: Sequence[datetime], every: str, first: int = 0) -> None:
    """Periods ``first`` onwards on the x axis (one slot each), ticked at a round step."""
    shown = len(starts) - first
    fitting = [step for step in TICK_STEPS[every] if shown / step <= TREND_TICKS]
    step = fitting[0] if fitting else math.ceil(shown / TREND_TICKS)
    positions = list(range(first, len(starts), step))
    ax.set_xticks(positions, period_labels([starts[i] for i in positions], every))
    ax.set_xlim(first - 0.5, len(starts) - 0.5)
    ax.grid(axis="x", visible=False)


def _span_words(trends: Trends) -> str:
    first, last = trends.snapshots[0], trends.snapshots[-1]
    days = (last - first).total_seconds() / 86_400
    return (
        f"One point per {PERIOD_WORDS[trends.every]}: the {len(trends.snapshots)} snapshots "
        f"span {days:.1f} days ({first:%Y-%m-%d} to {last:%Y-%m-%d}), drawn per day up to "
        "90 days, per week up to two years, per month beyond; the last period is measured "
        "at the last snapshot (or the report's at)."
    )


def _levels_chart(trends: Trends) -> Chart:
    """Backups present and their size at each period's end, in two panels."""
    frame, starts = trends.rows.frame, period_starts(trends)
    figure = Figure(figsize=(FIGURE_SIZE[0], 4.6), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    x = np.arange(frame.height)
    marker = "o" if frame.height <= 60 else ""
    top.plot(x, frame["backups"].to_numpy(), color=ACCENT, lw=1.5, marker=marker, ms=3)
    top.set_title("backups present", loc="left")
    # As floats: a size past 64 bits is too long for matplotlib's integers.
    sizes = frame["size_gb"].cast(pl.Float64).to_numpy()
    bottom.plot(x, sizes, color=ADDED_COLOUR, lw=1.5, marker=marker, ms=3)
    bottom.set_title("size (sum of resource_size, GB)", loc="left")
    bottom.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    _fit_levels(top, frame["backups"].cast(pl.Float64).to_numpy())
    _fit_levels(bottom, sizes)
    _period_axis(bottom, starts, trends.every)
    caption = (
        "Backups matching the filter present at the end of each period, and the sum of "
        f"their resource_size; the y axes fit the values, not zero. {_span_words(trends)}"
    )
    return Chart("trend_backups_size", "Backups and size over time", caption, figure)


def _fit_levels(ax: Axes, values: np.ndarray[Any, np.dtype[np.float64]]) -> None:
    """y limits fitted to ``values`` with room around them, never below zero, whole ticks.

    A series that never changes gets a band around its value: matplotlib's own
    would tick 0.015 backups, or go below zero.
    """
    low, high = float(values.min()), float(values.max())
    pad = (high - low) * 0.2 or max(1.0, abs(high) * 0.05)
    ax.set_ylim(max(0.0, low - pad), high + pad)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _churn_chart(trends: Trends) -> Chart:
    """Backups added and gone during each period, side by side; the first period left out."""
    frame, starts = trends.rows.frame, period_starts(trends)
    figure = Figure(figsize=(FIGURE_SIZE[0], 3.0), layout="constrained")
    ax = figure.subplots()
    # The first period "adds" the whole inventory the trend starts from: drawn, it would
    # flatten every other bar to nothing. Its numbers are in the table below.
    first = 1 if frame.height > 1 else 0
    x = np.arange(first, frame.height)
    shown = frame.slice(first)
    for offset, column, colour in ((-0.2, "added", ADDED_COLOUR), (0.2, "gone", WARN)):
        values = shown[column].to_numpy()
        bars = ax.bar(x + offset, values, width=0.4, color=colour, label=column)
        if shown.height <= LABELLED_BARS:
            ax.bar_label(bars, labels=[f"{v:,}" if v else "" for v in values], fontsize=7)
    ax.margins(y=0.15)  # before the limit is fixed: room above the highest value and label
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("backups")
    ax.legend(ncols=2, loc="lower left", bbox_to_anchor=(0, 1.0), borderaxespad=0.3)
    _period_axis(ax, starts, trends.every, first)
    caption = (
        "Backups that appeared (added) and disappeared (gone: expired, deleted or no longer "
        "matching the filter) during each period."
    )
    if first:
        row = frame.row(0, named=True)
        caption += (
            f" The first period ({starts[0]:%Y-%m-%d}) is left out: its {row['added']:,} "
            f"added ({row['gone']:,} gone) are the inventory the trend starts from."
        )
    return Chart("trend_added_gone", "Added and gone per period", caption, figure)


def _problems_chart(trends: Trends, max_age: str) -> Chart:
    """Error backups and rpo breaches at each period's end, as lines from zero."""
    frame, starts = trends.rows.frame, period_starts(trends)
    figure = Figure(figsize=(FIGURE_SIZE[0], 3.0), layout="constrained")
    ax = figure.subplots()
    x = np.arange(frame.height)
    marker = "o" if frame.height <= 60 else ""
    lines = (("error", "error backups", WARN), ("breaches", "rpo breaches", BREACH_COLOUR))
    for column, label, colour in lines:
        ax.plot(x, frame[column].to_numpy(), color=colour, lw=1.5, marker=marker, ms=3, label=label)
    ax.margins(y=0.15)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("count")
    ax.legend(ncols=2, loc="lower left", bbox_to_anchor=(0, 1.0), borderaxespad=0.3)
    _period_axis(ax, starts, trends.every)
    caption = (
        "At the end of each period: backups present in status error, and rpo breaches "
        f"(resources whose newest good backup is older than {max_age}, or that have none)."
    )
    return Chart("trend_errors_breaches", "Errors and rpo breaches per period", caption, figure)
