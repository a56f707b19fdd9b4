"""Phase: the report's data -> charts, drawn with matplotlib, as inline SVG or PNG.

Pure drawing: every chart reads the small frames of a
:class:`~engine.report.ReportData` (never the inventory) and draws aggregates
only (a step outline per status, histogram bins, a bar per vault), so a chart
costs the same at any inventory size. Figures are plain
:class:`matplotlib.figure.Figure` objects (no pyplot, no display, no global
figure state), drawn under one fixed set of rcParams (:data:`RC`).

Guarantees of :func:`svg`: no ``http://`` or ``https://`` in the text (the
doctype, XML namespaces and metadata matplotlib writes are removed), text as
SVG text in the reader's sans-serif font (no font file, no glyph paths), and
the same bytes for the same data (a fixed hash salt per chart, no date, every
id prefixed with the chart's name so that charts can share one page).

Needs the ``report`` extra (matplotlib): ``pip install 'cbrq[report]'``.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import matplotlib
import numpy as np
import polars as pl
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

from engine.render import visible

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.typing import RcKeyType

    from engine.report.data import ReportData

#: Vault bars drawn at most (the fullest first).
CHART_VAULTS: Final[int] = 30
#: Days drawn by the backups-per-day chart at most (up to the newest backup's day); the
#: axis spans the days of the data, and at least :data:`DAILY_MIN_DAYS`.
DAILY_DAYS: Final[int] = 180
DAILY_MIN_DAYS: Final[int] = 7
#: Labelled ticks of a date axis, at most: labels never touch at :data:`FIGURE_SIZE`.
DATE_TICKS: Final[int] = 8
#: Weeks drawn by the weekly charts (up to the newest backup's week).
WEEKLY_WEEKS: Final[int] = 104
#: Chart size in inches; PNGs are drawn at :data:`PNG_DPI` (900 px wide).
FIGURE_SIZE: Final[tuple[float, float]] = (9.0, 3.4)
PNG_DPI: Final[int] = 100
#: matplotlib settings for every chart: text as SVG text (no font file, no
#: glyph paths), no date in the file, a fixed look whatever the user's matplotlibrc.
RC: Final[dict[RcKeyType, Any]] = {
    # Text is drawn literally: a vault named "$$" or "$x^2$" is a name, not mathtext
    # (which fails to parse the first and typesets the second).
    "text.parse_math": False,
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.6,
    "axes.edgecolor": "#8a939c",
    "axes.titlesize": 10.0,
    "axes.titleweight": "bold",
    "legend.frameon": False,
    "legend.fontsize": 8.0,
}
#: One colour per backup status, the same in every chart.
STATUS_COLOURS: Final[dict[str, str]] = {
    "available": "#2e9d5b",
    "error": "#d64545",
    "protecting": "#3b7dd8",
    "restoring": "#8e5bd0",
    "deleting": "#e0892b",
    "waiting_protect": "#7fb2f0",
    "waiting_restore": "#c3a6ee",
    "waiting_delete": "#f2c28b",
}
OTHER_COLOUR: Final[str] = "#9aa3ab"
ACCENT: Final[str] = "#3b7dd8"
WARN: Final[str] = "#d64545"


@dataclass(frozen=True)
class Chart:
    """One chart: its file stem, title, a sentence on what it shows, the figure.

    A chart with nothing to draw has no figure (``figure=None``); its caption then
    says why (``no replication records ...``) and the page prints that sentence
    in the chart's place: no empty axes, no PNG.

    Example: ``Chart("capacity", "Vault fill", "Each bar ...", figure)``.
    """

    name: str
    title: str
    caption: str
    figure: Figure | None

    @property
    def drawn(self) -> bool:
        """Whether there was something to draw (a figure).

        Example: ``[c.name for c in draw(data) if c.drawn]``.
        """
        return self.figure is not None


def draw(data: ReportData) -> tuple[Chart, ...]:
    """Every chart of the report, in page order.

    Example: ``[chart.name for chart in draw(gather(inv, ReportOptions()))]``.
    """
    makers: tuple[Callable[[ReportData], Chart], ...] = (
        _daily_chart,
        _error_rate_chart,
        _types_chart,
        _rpo_chart,
        _replication_chart,
        _retention_chart,
        _capacity_chart,
        _hygiene_chart,
    )
    with matplotlib.rc_context(RC):
        return tuple(make(data) for make in makers)


def _figure(height: float = FIGURE_SIZE[1]) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(FIGURE_SIZE[0], height), layout="constrained")
    return figure, figure.subplots()


def _nothing(name: str, title: str, reason: str) -> Chart:
    """The chart ``name`` with nothing to draw: the page says ``reason`` instead."""
    return Chart(name, title, reason, None)


def _statuses(frame: pl.DataFrame) -> list[str]:
    """Statuses present, in the fixed order of :data:`STATUS_COLOURS`, unknown ones last."""
    present = set(frame["status"].drop_nulls().to_list()) if frame.height else set()
    known = [s for s in STATUS_COLOURS if s in present]
    return known + sorted(present - set(known))


def _colour(status: str) -> str:
    return STATUS_COLOURS.get(status, OTHER_COLOUR)


def _legend_above(ax: Axes) -> None:
    """The legend above the plot, where it hides nothing: one row, two beyond six entries."""
    entries = len(ax.get_legend_handles_labels()[1])
    columns = entries if entries <= 6 else (entries + 1) // 2
    ax.legend(ncols=max(columns, 1), loc="lower left", bbox_to_anchor=(0, 1.0), borderaxespad=0.3)


def _daily_chart(data: ReportData) -> Chart:
    daily = data.daily.filter(pl.col("day").is_not_null())
    name, title = "backups_per_day", "Backups per day by status"
    if daily.height == 0:
        return _nothing(name, title, "No backup with a created_at: no backups per day to draw.")
    first, newest = _daily_span(daily["day"])
    daily = daily.filter(pl.col("day") >= first)
    wide = daily.pivot(on="status", index="day", values="backups", aggregate_function="sum")
    days = pl.DataFrame({"day": pl.datetime_range(first, newest, "1d", eager=True)})
    wide = days.join(wide, on="day", how="left").fill_null(0)
    figure, ax = _figure()
    start = _day_number(first.replace(tzinfo=None))
    edges = start + np.arange(wide.height + 1, dtype=float)
    bottom = np.zeros(wide.height)
    # One filled step outline per status (not a bar per day): small and fast at any size.
    for status in _statuses(daily):
        top = bottom + wide[status].to_numpy()
        ax.stairs(
            top, edges, baseline=bottom, fill=True, color=_colour(status), label=_label(status)
        )
        bottom = top
    ax.set_xlim(edges[0], edges[-1])
    _date_axis(ax)
    ax.set_ylabel("backups")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _legend_above(ax)
    caption = (
        f"Backups created per day (UTC), {first:%Y-%m-%d} to {newest:%Y-%m-%d} "
        f"({wide.height} days: the days of the data, the last {DAILY_DAYS} at most), "
        "stacked by status: a gap is a day without backups, red a day of failures. "
        f"The weekly charts below cover the weeks of the data, the last {WEEKLY_WEEKS} at most."
    )
    return Chart(name, title, caption, figure)


def _daily_span(days: pl.Series) -> tuple[datetime, datetime]:
    """The first and last day the backups-per-day chart draws: the data's days, at most
    :data:`DAILY_DAYS` up to the newest, at least :data:`DAILY_MIN_DAYS` (one day alone
    would be one bar as wide as the page)."""
    newest, oldest = days.max(), days.min()
    assert isinstance(newest, datetime) and isinstance(oldest, datetime)
    first = max(oldest, _earlier(newest, timedelta(days=DAILY_DAYS - 1)))
    return min(first, _earlier(newest, timedelta(days=DAILY_MIN_DAYS - 1))), newest


def _date_axis(ax: Axes) -> None:
    """Dates on the x axis, fitted to what is drawn, at most :data:`DATE_TICKS` ticks with
    concise labels (``Mar``, ``2026``, ``12``; the year once, not on every tick): labels never
    touch, whatever the span."""
    _dates_in_range(ax)
    # matplotlib's stubs leave both constructors untyped.
    locator = AutoDateLocator(minticks=3, maxticks=DATE_TICKS)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


#: Characters of a name a chart shows (tick labels, legends); longer names end in an ellipsis.
LABEL_CHARACTERS: Final[int] = 40


def _label(text: str) -> str:
    """A name as a chart shows it: control characters escaped, cut to :data:`LABEL_CHARACTERS`.

    A 3,000-character vault name would squeeze the plot to nothing.
    """
    shown = visible(text)
    return shown if len(shown) <= LABEL_CHARACTERS else shown[: LABEL_CHARACTERS - 1] + "…"


def _earlier(when: datetime, span: timedelta) -> datetime:
    """``when - span``, or the earliest instant when that is before year 1 (a backup of 0001)."""
    try:
        return when - span
    except OverflowError:
        return datetime.min.replace(tzinfo=when.tzinfo)


def _dates_in_range(ax: Axes) -> None:
    """Keep a date axis' view within the years matplotlib can name (1 to 9999).

    A backup dated 9999-12-31 ends its day's step at 10000-01-01, and the margins
    around one week reach past either end: matplotlib then fails to draw the ticks.
    """
    low, high = ax.get_xlim()
    first = _day_number(datetime(1, 1, 1))
    last = _day_number(datetime(9999, 12, 31, 23, 59, 59))
    if low < first or high > last:
        ax.set_xlim(max(low, first), min(high, last))


def _day_number(day: datetime) -> float:
    """matplotlib's number for a date (its stubs leave ``date2num`` untyped)."""
    return float(date2num(day))  # type: ignore[no-untyped-call]


def _every_week(frame: pl.DataFrame) -> pl.DataFrame:
    """The last :data:`WEEKLY_WEEKS` weeks of ``frame`` (a row per ``week``), a null row for
    each week without backups (a gap in the line)."""
    if frame.height == 0:
        return frame
    newest, oldest = frame["week"].max(), frame["week"].min()
    assert isinstance(newest, datetime) and isinstance(oldest, datetime)
    oldest = max(oldest, _earlier(newest, timedelta(weeks=WEEKLY_WEEKS - 1)))
    weeks = pl.datetime_range(oldest, newest, "1w", eager=True)
    return pl.DataFrame({"week": weeks}).join(frame, on="week", how="left")


#: Tick marks of the log-scale time axes (in hours): readable steps from minutes to years.
TIME_TICKS_HOURS: Final[tuple[float, ...]] = (
    0.25,
    1,
    6,
    24,
    72,
    168,
    720,
    2160,
    8760,
    26280,
    87600,
)


def _time_label(hours: float, _position: object = None) -> str:
    """A tick label for a number of hours: ``15m``, ``6h``, ``3d``, ``1y``."""
    if hours < 1:
        return f"{hours * 60:.0f}m"
    if hours < 24:
        return f"{hours:.0f}h"
    return f"{hours / 8760:.0f}y" if hours >= 8760 else f"{hours / 24:.0f}d"


def _log_time_axis(ax: Axes, scale: float) -> None:
    """A log x axis in units of ``scale`` hours, ticked at :data:`TIME_TICKS_HOURS`.

    Plain labels: matplotlib's ``10^n`` needs its mathtext parser (slow) and reads worse.
    """
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    ticks = [t / scale for t in TIME_TICKS_HOURS if low <= t / scale <= high]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, p: _time_label(v * scale, p)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _weekly(daily: pl.DataFrame) -> pl.DataFrame:
    """Backups and errors per ISO week (Monday) from the per-day counts."""
    return (
        daily.filter(pl.col("day").is_not_null())
        .group_by(pl.col("day").dt.truncate("1w").alias("week"))
        .agg(
            pl.col("backups").sum().alias("backups"),
            pl.col("backups").filter(pl.col("status") == "error").sum().alias("errors"),
        )
        .with_columns((pl.col("errors") / pl.col("backups") * 100).alias("rate"))
        .sort("week")
        .pipe(_every_week)
    )


def _error_rate_chart(data: ReportData) -> Chart:
    weekly = _weekly(data.daily)
    name, title = "error_rate_per_week", "Error rate per week"
    if weekly.height == 0:
        return _nothing(name, title, "No backup with a created_at: no error rate to draw.")
    figure, ax = _figure(3.0)
    x = weekly["week"].dt.replace_time_zone(None).to_numpy()
    ax.plot(x, weekly["rate"].to_numpy(), color=WARN, lw=1.2, marker="o", ms=2.5)
    overall = float(weekly["errors"].sum()) / max(float(weekly["backups"].sum()), 1) * 100
    ax.axhline(overall, color=OTHER_COLOUR, ls="--", lw=1, label=f"overall {overall:.1f} %")
    ax.set_ylabel("error %")
    # Room above the highest week, not always up to 100 %: a low rate stays readable.
    top = float(np.nanmax(weekly["rate"].to_numpy())) if weekly["rate"].is_not_null().any() else 0
    ax.set_ylim(0, min(105.0, max(5.0, top * 1.2)))
    _percent_axis(ax)
    _week_margins(ax, weekly)
    _date_axis(ax)
    _legend_above(ax)
    caption = (
        "Share of the backups created each ISO week (Monday to Sunday, UTC) that are in "
        f"status error, {_weeks_words(weekly)}; the dashed line is the rate over those weeks."
    )
    return Chart(name, title, caption, figure)


def _percent_axis(ax: Axes) -> None:
    """A y axis of percentages ticked at round whole steps (1, 2, 5, 10, ...) and read ``40 %``."""
    ax.yaxis.set_major_locator(MaxNLocator(steps=[1, 2, 5, 10], integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g} %"))


def _weeks_words(weekly: pl.DataFrame) -> str:
    """The weeks a weekly chart draws, in words: ``the 12 weeks from 2026-01-05 to ...``."""
    first, last = weekly["week"].min(), weekly["week"].max()
    assert isinstance(first, datetime) and isinstance(last, datetime)
    return (
        f"the {weekly.height} week(s) from {first:%Y-%m-%d} to {last:%Y-%m-%d} (the weeks of "
        f"the data, the last {WEEKLY_WEEKS} at most)"
    )


def _week_margins(ax: Axes, weekly: pl.DataFrame) -> None:
    """The x axis from half a week before the first week to half a week after the last:
    fitted to the data, and a single week is not a point on an axis of a few minutes."""
    first, last = weekly["week"].min(), weekly["week"].max()
    assert isinstance(first, datetime) and isinstance(last, datetime)
    half = 3.5
    low, high = (_day_number(week.replace(tzinfo=None)) for week in (first, last))
    ax.set_xlim(low - half, high + half)


def _types_chart(data: ReportData) -> Chart:
    types = data.types.sort("size_gb", "resource_type", descending=[True, False], nulls_last=True)
    caption = (
        "Total resource_size (GB) of the backups of each resource type, with the number "
        "of backups at the end of each bar."
    )
    if types.height == 0:
        reason = "No backups: no size by resource type to draw."
        return _nothing("size_by_resource_type", "Size by resource type", reason)
    figure, ax = _figure(max(1.6, 0.45 * types.height + 0.9))
    names = [_label(t) if t is not None else "(none)" for t in types["resource_type"].to_list()]
    # As floats: a size past 64 bits (Int128) is too long for matplotlib's integers.
    sizes = types["size_gb"].cast(pl.Float64).to_list()
    bars = ax.barh(names[::-1], sizes[::-1], color=ACCENT, height=0.6)
    ax.bar_label(bars, labels=[f"{n:,} backups" for n in types["backups"].to_list()[::-1]])
    ax.set_xlabel("GB")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.grid(axis="y", visible=False)
    ax.margins(x=0.15)
    return Chart("size_by_resource_type", "Size by resource type", caption, figure)


def _rpo_chart(data: ReportData) -> Chart:
    frame = data.rpo.frame
    limit = data.max_age_seconds / 3600
    ages = frame["age_seconds"].drop_nulls().to_numpy() / 3600
    never = frame.filter(pl.col("verdict") == "never").height
    caption = (
        f"How old each resource's newest good backup (available, image_type backup) is at "
        f"'at', on a log scale; the red line is --max-age ({data.options.max_age_text}). "
        f"{never:,} resource(s) have no good backup at all and are not drawn."
    )
    if ages.size == 0:
        reason = (
            f"No resource has a good backup (available, image_type backup): no age to draw; "
            f"the {never:,} resource(s) are all 'never' in the table below."
        )
        return _nothing("rpo_age", "RPO: age of the last good backup", reason)
    figure, ax = _figure()
    # A log axis needs low > 0 and high > low: ages and --max-age may be 0.
    low = max(min(float(ages.min()), limit) / 2, 1 / 60)
    high = max(float(ages.max()), limit, low) * 2
    edges = np.geomspace(low, high, 40)
    counts, _ = np.histogram(np.clip(ages, low, high), bins=edges)
    colours = [WARN if left >= limit else "#2e9d5b" for left in edges[:-1]]
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=colours)
    _log_time_axis(ax, 1)
    ax.axvline(limit, color=WARN, lw=1.5, label=f"max age {data.options.max_age_text}")
    ax.set_xlabel("time since the last good backup")
    ax.set_ylabel("resources")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _legend_above(ax)
    return Chart("rpo_age", "RPO: age of the last good backup", caption, figure)


def _replication_chart(data: ReportData) -> Chart:
    name, title = "replication_coverage", "Replication coverage per week"
    available = int(data.replication["available"].sum())
    recorded = int(data.replication["recorded"].sum())
    if recorded == 0:
        return _nothing(name, title, no_replication(available))
    if int(data.replication["replicated"].sum()) == 0:  # a chart at 0 % every week
        reason = (
            f"No successful replication: {recorded:,} of the {available:,} available "
            "backup(s) have replication records, none in status success (the table below "
            "gives them per vault)."
        )
        return _nothing(name, title, reason)
    weekly = (
        data.replication.filter(pl.col("week").is_not_null())
        .group_by("week")
        .agg(pl.col("available").sum(), pl.col("replicated").sum())
        .with_columns((pl.col("replicated") / pl.col("available") * 100).alias("share"))
        .sort("week")
        .pipe(_every_week)
    )
    if weekly.height == 0:
        return _nothing(name, title, "No available backup with a created_at: no week to draw.")
    figure, ax = _figure(3.0)
    x = weekly["week"].dt.replace_time_zone(None).to_numpy()
    share = weekly["share"].to_numpy()
    # A bar per week (not a line): one week alone is still drawn, a week without backups a gap.
    ax.bar(x, np.nan_to_num(share), width=np.timedelta64(6, "D"), color=ACCENT)
    # Room above the highest week, not always up to 100 %: a low coverage stays readable.
    top = float(np.nanmax(share)) if np.isfinite(share).any() else 0.0
    ax.set_ylim(0, min(100.0, max(5.0, top * 1.15)))
    ax.set_ylabel("replicated")
    _percent_axis(ax)
    _week_margins(ax, weekly)
    _date_axis(ax)
    caption = (
        "Share of the available backups created each ISO week that have at least one "
        "replication record in status success (a copy in another region or vault), "
        f"{_weeks_words(weekly)}."
    )
    return Chart(name, title, caption, figure)


def no_replication(available: int) -> str:
    """What the page says instead of a replication chart when no backup has a replication record.

    Example: ``no_replication(3).startswith("No replication records")``.
    """
    return (
        f"No replication records: none of the {available:,} available backup(s) has a "
        "replication record (no copy in another region or vault was made or recorded)."
    )


def _retention_chart(data: ReportData) -> Chart:
    days = data.retention_days
    minimum = data.options.min_days
    caption = (
        f"How long available backups are kept (expired_at - created_at, days, log scale); "
        f"bars left of the red line (--min-days {minimum}) are the 'short' findings. Backups "
        "without expired_at are kept forever and not drawn."
    )
    positive = days[days > 0]
    if positive.size == 0:
        reason = (
            "No available backup has an expiry (expired_at): all are kept forever, no "
            "retention period to draw."
        )
        return _nothing("retention_days", "Retention period", reason)
    figure, ax = _figure()
    # A log axis needs low > 0 (--min-days may be 0) and high > low.
    low = min(float(positive.min()), float(minimum or positive.min())) / 1.5
    high = max(float(positive.max()), float(minimum), low) * 1.5
    edges = np.geomspace(low, high, 40)
    counts, _ = np.histogram(np.clip(positive, low, high), bins=edges)
    colours = [WARN if right <= minimum else "#2e9d5b" for right in edges[1:]]
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=colours)
    _log_time_axis(ax, 24)
    ax.axvline(minimum, color=WARN, lw=1.5, label=f"min days {minimum}")
    ax.set_xlabel("days kept")
    ax.set_ylabel("backups")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _legend_above(ax)
    return Chart("retention_days", "Retention period", caption, figure)


def _capacity_chart(data: ReportData) -> Chart:
    frame = data.capacity.frame.filter(pl.col("used_percent").is_not_null()).head(CHART_VAULTS)
    caption = (
        "Used share of each vault (billing.used / billing.size), fullest first; the black "
        "tick on each bar is that vault's threshold (80 % unless the vault sets one), and a "
        "red bar is a full vault."
    )
    hidden = data.capacity.frame.height - frame.height
    if hidden:
        caption += (
            f" {hidden} vault(s) without a size or beyond the first {CHART_VAULTS} not drawn."
        )
    if frame.height == 0:
        vaults = data.capacity.frame.height
        reason = (
            f"No vault with a size (billing.size): no fill to draw ({vaults:,} vault(s) "
            "in the inventory)."
        )
        return _nothing("vault_fill", "Vault fill", reason)
    figure, ax = _figure(max(1.6, 0.32 * frame.height + 1.0))
    names = [
        _label(str(n if n is not None else i))
        for n, i in zip(frame["name"], frame["id"], strict=True)
    ]
    y = np.arange(frame.height)[::-1]
    used = frame["used_percent"].to_numpy()
    colours = [WARN if full else ACCENT for full in frame["full"].to_list()]
    ax.barh(y, np.minimum(used, 100), color=colours, height=0.6)
    ax.scatter(frame["threshold"].to_numpy(), y, marker="|", s=260, color="black", zorder=3)
    for row, value in zip(y, used, strict=True):
        ax.text(min(value, 100) + 1, row, f"{percent_text(value)} %", va="center", fontsize=8)
    ax.set_yticks(y, names)
    ax.set_xlim(0, 112)
    ax.set_xlabel("% used")
    ax.grid(axis="y", visible=False)
    return Chart("vault_fill", "Vault fill", caption, figure)


def _hygiene_chart(data: ReportData) -> Chart:
    frame = data.hygiene.frame
    counts = frame.group_by("finding", "status").len().sort("finding", "status")
    caption = (
        "Hygiene findings by kind, split by the backup's status: orphan (no vault lists its "
        f"resource), stuck (in a transitional status for over {data.options.stuck_hours:g} h), "
        "error."
    )
    if not (frame["finding"] == "orphan").any() and data.capacity.frame["resources"].sum() == 0:
        caption += " The vaults list no resources, so no backup is called an orphan."
    if counts.height == 0:
        reason = (
            "No hygiene findings: no orphan, no backup stuck in a transitional status for over "
            f"{data.options.stuck_hours:g} h, no backup in status error."
        )
        return _nothing("hygiene_findings", "Hygiene findings", reason)
    figure, ax = _figure(2.4)
    findings = ["error", "orphan", "stuck"]
    findings += sorted(set(counts["finding"].to_list()) - set(findings))
    left = np.zeros(len(findings))
    for status in _statuses(counts):
        part = counts.filter(pl.col("status") == status)
        width = [float(part.filter(pl.col("finding") == f)["len"].sum()) for f in findings]
        ax.barh(findings, width, left=left, color=_colour(status), label=_label(status), height=0.6)
        left = left + np.asarray(width)
    ax.invert_yaxis()
    ax.set_xlabel("backups")
    ax.grid(axis="y", visible=False)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _legend_above(ax)
    return Chart("hygiene_findings", "Hygiene findings", caption, figure)


# --- files: SVG text and PNG ------------------------------------------------


def svg(chart: Chart) -> str:
    """The chart as inline SVG: no doctype, namespaces, metadata or address; ids prefixed.

    Example: ``"<svg" in svg(draw(data)[0])``.
    """
    if chart.figure is None:
        raise ValueError(f"chart {chart.name} has nothing drawn: {chart.caption}")
    buffer = io.StringIO()
    settings: dict[RcKeyType, Any] = {**RC, "svg.hashsalt": f"cbrq-{chart.name}"}
    with matplotlib.rc_context(settings), warnings.catch_warnings():
        # SVG text is drawn by the reader's fonts: a glyph DejaVu Sans lacks (CJK) is no fault.
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        chart.figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)
    text = text.replace("xlink:href=", "href=")
    prefix = chart.name.replace("_", "-")
    text = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', text)
    text = re.sub(r'(href="#|url\(#)', rf"\1{prefix}-", text)
    return re.sub(r'<svg width="[^"]*" height="[^"]*"', '<svg role="img"', text, count=1)


def write_pngs(charts: Sequence[Chart], folder: Path) -> list[Path]:
    """Write each drawn chart as ``folder/NAME.png`` (the folder is created); the paths written.

    A chart with nothing to draw (no figure) writes no file.

    Example: ``write_pngs(report.charts, Path("charts"))``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with matplotlib.rc_context(RC):
        for chart in charts:
            if chart.figure is None:
                continue
            path = folder / f"{chart.name}.png"
            chart.figure.savefig(path, format="png", dpi=PNG_DPI, metadata={"Software": None})
            written.append(path)
    return written


def percent_text(value: float) -> str:
    """A fill percentage to 0.1, rounded down: 79.99993 reads 79.9, never the 80.0 of full.

    A percentage past the float range reads ``inf``.

    Example: ``percent_text(79.99993) == "79.9"``.
    """
    if not math.isfinite(value):
        return str(value)
    return f"{math.floor(value * 10) / 10:.1f}"
