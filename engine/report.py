"""Phase: analyses -> one self-contained HTML page with a chart per question.

``cbrq report`` gathers every analysis of SPEC §5 over one inventory (and the
few aggregates they do not give directly, as lazy polars over the narrow
columns), draws each chart with matplotlib as inline SVG, and writes one HTML
file. Data flows one way: :func:`gather` (polars, the only place that reads
the inventory) -> :func:`draw` (matplotlib, pure drawing) -> :func:`page`
(HTML text).

Guarantees:

- *self-contained*: no scripts, no fonts, no images or style sheets from
  anywhere; the file names no ``http://`` or ``https://`` address at all
  (matplotlib's doctype, namespaces and metadata are removed, text is SVG
  text in the reader's own sans-serif font);
- *deterministic*: the same inventory and ``at`` give a byte-identical file
  (fixed SVG hash salt per chart, no date, ids prefixed per chart, no clock).

Needs the ``report`` extra (matplotlib): ``pip install 'cbrq[report]'``.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypedDict

import matplotlib
import numpy as np
import polars as pl
from matplotlib.dates import date2num
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

from engine.instants import format_instant
from engine.params import QueryParams
from engine.spec import (
    DEFAULT_MAX_AGE,
    DEFAULT_MIN_DAYS,
    DEFAULT_STUCK_HOURS,
    REPLICATED_STATUS,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.typing import RcKeyType

    from engine.analyses import Analysis
    from engine.inventory import Inventory, QuerySource
    from engine.query import Semantics

#: Rows of each analysis table shown in the page; the rest are counted.
TABLE_ROWS: Final[int] = 25
#: Vault bars drawn at most (the fullest first).
CHART_VAULTS: Final[int] = 30
#: Days drawn by the backups-per-day chart (up to the newest backup's day).
DAILY_DAYS: Final[int] = 180
#: Weeks drawn by the weekly charts (up to the newest backup's week).
WEEKLY_WEEKS: Final[int] = 104
#: Chart size in inches; PNGs are drawn at :data:`PNG_DPI` (900 px wide).
FIGURE_SIZE: Final[tuple[float, float]] = (9.0, 3.4)
PNG_DPI: Final[int] = 100
#: matplotlib settings for every chart: text as SVG text (no font file, no
#: glyph paths), no date in the file, a fixed look whatever the user's matplotlibrc.
RC: Final[dict[RcKeyType, Any]] = {
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
#: The sections of the page, in order: (anchor, heading).
SECTIONS: Final[tuple[tuple[str, str], ...]] = (
    ("summary", "Summary"),
    ("stats", "Backups over time (stats)"),
    ("rpo", "Recovery point age (rpo)"),
    ("replication", "Replication coverage"),
    ("retention", "Retention (retention)"),
    ("capacity", "Vault capacity (capacity)"),
    ("hygiene", "Hygiene (hygiene)"),
)


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
        """The filter as a query string (empty when there is none)."""
        return "&".join(f"{k}={v}" for k, v in QueryParams.of(self.filter).pairs)

    @property
    def max_age_text(self) -> str:
        """``max_age`` as written: ``90m``, ``24h``, ``7d``."""
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
    ``replication``: available backups and those with a successful
    replication record per (week, vault_id); ``retention_days``: the kept
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

    @property
    def at(self) -> datetime | None:
        """The instant every analysis measured against."""
        return self.status.at


@dataclass(frozen=True)
class Chart:
    """One drawn chart: its file stem, title, a sentence on what it shows, the figure.

    Example: ``Chart("capacity", "Vault fill", "Each bar ...", figure)``.
    """

    name: str
    title: str
    caption: str
    figure: Figure


@dataclass(frozen=True)
class Report:
    """The page and its charts (for ``--png``).

    Example: ``report = build(inv); Path("r.html").write_text(report.html)``.
    """

    html: str
    charts: tuple[Chart, ...]


# --- gather: the only phase that reads the inventory ---------------------------


def gather(inv: Inventory, options: ReportOptions) -> ReportData:
    """Run every analysis and the chart aggregates for ``options``.

    Example: ``gather(Inventory.open("inv"), ReportOptions(at="now")).capacity.frame``.
    """
    from engine.analyses import parse_duration, parse_filter
    from engine.compile import compile_filter

    flt, project, semantics = options.filter, options.project, options.semantics
    max_age = parse_duration(options.max_age, "max_age")
    status = inv.stats(flt, by=("status",), at=options.at, project=project, semantics=semantics)
    at = status.at  # "now" read once: every part of the page measures to the same instant
    scope = _Scope(at=at, project=project, semantics=semantics)
    query = parse_filter(
        QueryParams.of(flt), lambda params: inv.parse(params, project=project, semantics=semantics)
    )
    backups = compile_filter(query, inv.tables)
    replication, kept = pl.collect_all([_replication_plan(backups), _retention_plan(backups)])
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
        capacity=inv.capacity(flt, **scope),
        hygiene=inv.hygiene(flt, stuck_hours=options.stuck_hours, **scope),
    )


class _Scope(TypedDict):
    """The arguments every analysis of one report shares."""

    at: datetime | None
    project: str | None
    semantics: Semantics | None


def _replication_plan(backups: pl.LazyFrame) -> pl.LazyFrame:
    """Available backups, and those with a ``success`` replication record, per week and vault."""
    success = pl.element().struct.field("status") == REPLICATED_STATUS
    replicated = pl.col("replication_records").list.eval(success).list.any().fill_null(False)
    return (
        backups.filter(pl.col("status") == "available")
        .group_by(pl.col("created_at").dt.truncate("1w").alias("week"), "vault_id")
        .agg(pl.len().alias("available"), replicated.sum().alias("replicated"))
        .sort("week", "vault_id", nulls_last=True)
    )


def _retention_plan(backups: pl.LazyFrame) -> pl.LazyFrame:
    """The kept period (days) of every available backup that has both times."""
    kept = (pl.col("expired_at") - pl.col("created_at")).dt.total_microseconds() / 86_400e6
    return (
        backups.filter(pl.col("status") == "available")
        .select(kept.alias("days"))
        .drop_nulls()
        .sort("days")
    )


# --- draw: matplotlib, no inventory ------------------------------------------


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


def _empty(ax: Axes, text: str = "no data") -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", color=OTHER_COLOUR, fontsize=11)


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
    figure, ax = _figure()
    daily = data.daily.filter(pl.col("day").is_not_null())
    caption = (
        f"Backups created per day (UTC) over the last {DAILY_DAYS} days up to the newest "
        "backup, stacked by status: a gap is a day without backups, red a day of failures. "
        f"The weekly charts below cover the last {WEEKLY_WEEKS} weeks."
    )
    if daily.height == 0:
        _empty(ax)
        return Chart("backups_per_day", "Backups per day by status", caption, figure)
    newest = daily["day"].max()
    assert isinstance(newest, datetime)
    first = newest - timedelta(days=DAILY_DAYS - 1)
    daily = daily.filter(pl.col("day") >= first)
    wide = daily.pivot(on="status", index="day", values="backups", aggregate_function="sum")
    days = pl.DataFrame({"day": pl.datetime_range(first, newest, "1d", eager=True)})
    wide = days.join(wide, on="day", how="left").fill_null(0)
    start = _day_number(first.replace(tzinfo=None))
    edges = start + np.arange(wide.height + 1, dtype=float)
    bottom = np.zeros(wide.height)
    # One filled step outline per status (not a bar per day): small and fast at any size.
    for status in _statuses(daily):
        top = bottom + wide[status].to_numpy()
        ax.stairs(top, edges, baseline=bottom, fill=True, color=_colour(status), label=status)
        bottom = top
    ax.xaxis_date()
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylabel("backups")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _legend_above(ax)
    return Chart("backups_per_day", "Backups per day by status", caption, figure)


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
    oldest = max(oldest, newest - timedelta(weeks=WEEKLY_WEEKS - 1))
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
    figure, ax = _figure(3.0)
    weekly = _weekly(data.daily)
    caption = (
        "Share of the backups created each ISO week (Monday to Sunday, UTC) that are in "
        f"status error, over the last {WEEKLY_WEEKS} weeks up to the newest backup; the dashed "
        "line is the rate over those weeks."
    )
    if weekly.height == 0:
        _empty(ax)
        return Chart("error_rate_per_week", "Error rate per week", caption, figure)
    x = weekly["week"].dt.replace_time_zone(None).to_numpy()
    ax.plot(x, weekly["rate"].to_numpy(), color=WARN, lw=1.2, marker="o", ms=2.5)
    overall = float(weekly["errors"].sum()) / max(float(weekly["backups"].sum()), 1) * 100
    ax.axhline(overall, color=OTHER_COLOUR, ls="--", lw=1, label=f"overall {overall:.1f} %")
    ax.set_ylabel("error %")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    return Chart("error_rate_per_week", "Error rate per week", caption, figure)


def _types_chart(data: ReportData) -> Chart:
    types = data.types.sort("size_gb", "resource_type", descending=[True, False], nulls_last=True)
    figure, ax = _figure(max(1.6, 0.45 * types.height + 0.9))
    caption = (
        "Total resource_size (GB) of the backups of each resource type, with the number "
        "of backups at the end of each bar."
    )
    if types.height == 0:
        _empty(ax)
        return Chart("size_by_resource_type", "Size by resource type", caption, figure)
    names = [str(t) if t is not None else "(none)" for t in types["resource_type"].to_list()]
    bars = ax.barh(names[::-1], types["size_gb"].to_list()[::-1], color=ACCENT, height=0.6)
    ax.bar_label(bars, labels=[f"{n:,} backups" for n in types["backups"].to_list()[::-1]])
    ax.set_xlabel("GB")
    ax.grid(axis="y", visible=False)
    ax.margins(x=0.15)
    return Chart("size_by_resource_type", "Size by resource type", caption, figure)


def _rpo_chart(data: ReportData) -> Chart:
    figure, ax = _figure()
    frame = data.rpo.frame
    limit = data.max_age_seconds / 3600
    ages = frame["age_seconds"].drop_nulls().to_numpy() / 3600
    never = frame.filter(pl.col("verdict") == "never").height
    caption = (
        f"How old each resource's newest good backup (available, image_type backup) is at "
        f"'at', on a log scale; the red line is --max-age ({_duration(data)}). "
        f"{never:,} resource(s) have no good backup at all and are not drawn."
    )
    if ages.size == 0:
        _empty(ax, "no resource has a good backup")
        return Chart("rpo_age", "RPO: age of the last good backup", caption, figure)
    low = max(min(float(ages.min()), limit) / 2, 1 / 60)
    high = max(float(ages.max()), limit) * 2
    edges = np.geomspace(low, high, 40)
    counts, _ = np.histogram(np.clip(ages, low, high), bins=edges)
    colours = [WARN if left >= limit else "#2e9d5b" for left in edges[:-1]]
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=colours)
    _log_time_axis(ax, 1)
    ax.axvline(limit, color=WARN, lw=1.5, label=f"max age {_duration(data)}")
    ax.set_xlabel("time since the last good backup")
    ax.set_ylabel("resources")
    ax.legend(loc="upper right")
    return Chart("rpo_age", "RPO: age of the last good backup", caption, figure)


def _duration(data: ReportData) -> str:
    return data.options.max_age_text


def _replication_chart(data: ReportData) -> Chart:
    figure, ax = _figure(3.0)
    weekly = (
        data.replication.filter(pl.col("week").is_not_null())
        .group_by("week")
        .agg(pl.col("available").sum(), pl.col("replicated").sum())
        .with_columns((pl.col("replicated") / pl.col("available") * 100).alias("share"))
        .sort("week")
        .pipe(_every_week)
    )
    caption = (
        "Share of the available backups created each ISO week that have at least one "
        "replication record in status success (a copy in another region or vault), over "
        f"the last {WEEKLY_WEEKS} weeks up to the newest backup."
    )
    if weekly.height == 0:
        _empty(ax)
        return Chart("replication_coverage", "Replication coverage per week", caption, figure)
    x = weekly["week"].dt.replace_time_zone(None).to_numpy()
    ax.fill_between(x, 0, weekly["share"].to_numpy(), step="mid", color=ACCENT, alpha=0.35, lw=0)
    ax.step(x, weekly["share"].to_numpy(), where="mid", color=ACCENT, lw=1.2)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% replicated")
    return Chart("replication_coverage", "Replication coverage per week", caption, figure)


def _retention_chart(data: ReportData) -> Chart:
    figure, ax = _figure()
    days = data.retention_days
    minimum = data.options.min_days
    caption = (
        f"How long available backups are kept (expired_at - created_at, days, log scale); "
        f"bars left of the red line (--min-days {minimum}) are the 'short' findings. Backups "
        "without expired_at are kept forever and not drawn."
    )
    positive = days[days > 0]
    if positive.size == 0:
        _empty(ax, "no available backup has an expiry")
        return Chart("retention_days", "Retention period", caption, figure)
    low = min(float(positive.min()), float(minimum)) / 1.5
    high = max(float(positive.max()), float(minimum)) * 1.5
    edges = np.geomspace(low, high, 40)
    counts, _ = np.histogram(np.clip(positive, low, high), bins=edges)
    colours = [WARN if right <= minimum else "#2e9d5b" for right in edges[1:]]
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=colours)
    _log_time_axis(ax, 24)
    ax.axvline(minimum, color=WARN, lw=1.5, label=f"min days {minimum}")
    ax.set_xlabel("days kept")
    ax.set_ylabel("backups")
    ax.legend(loc="upper right")
    return Chart("retention_days", "Retention period", caption, figure)


def _capacity_chart(data: ReportData) -> Chart:
    frame = data.capacity.frame.filter(pl.col("used_percent").is_not_null()).head(CHART_VAULTS)
    figure, ax = _figure(max(1.6, 0.32 * frame.height + 1.0))
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
        _empty(ax, "no vault with a size")
        return Chart("vault_fill", "Vault fill", caption, figure)
    names = [
        str(n if n is not None else i) for n, i in zip(frame["name"], frame["id"], strict=True)
    ]
    y = np.arange(frame.height)[::-1]
    used = frame["used_percent"].to_numpy()
    colours = [WARN if full else ACCENT for full in frame["full"].to_list()]
    ax.barh(y, np.minimum(used, 100), color=colours, height=0.6)
    ax.scatter(frame["threshold"].to_numpy(), y, marker="|", s=260, color="black", zorder=3)
    for row, value in zip(y, used, strict=True):
        ax.text(min(value, 100) + 1, row, f"{_percent(value)} %", va="center", fontsize=8)
    ax.set_yticks(y, names)
    ax.set_xlim(0, 112)
    ax.set_xlabel("% used")
    ax.grid(axis="y", visible=False)
    return Chart("vault_fill", "Vault fill", caption, figure)


def _hygiene_chart(data: ReportData) -> Chart:
    frame = data.hygiene.frame
    counts = frame.group_by("finding", "status").len().sort("finding", "status")
    figure, ax = _figure(2.4)
    caption = (
        "Hygiene findings by kind, split by the backup's status: orphan (no vault lists its "
        f"resource), stuck (in a transitional status for over {data.options.stuck_hours:g} h), "
        "error."
    )
    if not (frame["finding"] == "orphan").any() and data.capacity.frame["resources"].sum() == 0:
        caption += " The vaults list no resources, so no backup is called an orphan."
    if counts.height == 0:
        _empty(ax, "no findings")
        return Chart("hygiene_findings", "Hygiene findings", caption, figure)
    findings = ["error", "orphan", "stuck"]
    findings += sorted(set(counts["finding"].to_list()) - set(findings))
    left = np.zeros(len(findings))
    for status in _statuses(counts):
        part = counts.filter(pl.col("status") == status)
        width = [float(part.filter(pl.col("finding") == f)["len"].sum()) for f in findings]
        ax.barh(findings, width, left=left, color=_colour(status), label=status, height=0.6)
        left = left + np.asarray(width)
    ax.invert_yaxis()
    ax.set_xlabel("backups")
    ax.grid(axis="y", visible=False)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _legend_above(ax)
    return Chart("hygiene_findings", "Hygiene findings", caption, figure)


# --- files: SVG text and PNG ----------------------------------------------------


def svg(chart: Chart) -> str:
    """The chart as inline SVG: no doctype, namespaces, metadata or address; ids prefixed.

    Example: ``"<svg" in svg(draw(data)[0])``.
    """
    buffer = io.StringIO()
    settings: dict[RcKeyType, Any] = {**RC, "svg.hashsalt": f"cbrq-{chart.name}"}
    with matplotlib.rc_context(settings):
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
    """Write each chart as ``folder/NAME.png`` (the folder is created); the paths written.

    Example: ``write_pngs(report.charts, Path("charts"))``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with matplotlib.rc_context(RC):
        for chart in charts:
            path = folder / f"{chart.name}.png"
            chart.figure.savefig(path, format="png", dpi=PNG_DPI, metadata={"Software": None})
            written.append(path)
    return written


# --- page: HTML text --------------------------------------------------------------


def build(inv: Inventory, options: ReportOptions | None = None) -> Report:
    """Gather, draw and write the whole report of ``inv``.

    Example: ``Path("report.html").write_text(build(inv, ReportOptions(at="now")).html)``.
    """
    data = gather(inv, options or ReportOptions())
    charts = draw(data)
    return Report(page(data, charts), charts)


def page(data: ReportData, charts: Sequence[Chart]) -> str:
    """The HTML page of ``data`` with ``charts`` (from :func:`draw`) in their sections.

    Example: ``page(data, draw(data)).startswith("<!DOCTYPE html>")``.
    """
    by_name = {chart.name: chart for chart in charts}
    body = [
        _header(data),
        _section("summary", _summary(data)),
        _section("stats", _stats_body(data, by_name)),
        _section("rpo", _rpo_body(data, by_name)),
        _section("replication", _replication_body(data, by_name)),
        _section("retention", _retention_body(data, by_name)),
        _section("capacity", _capacity_body(data, by_name)),
        _section("hygiene", _hygiene_body(data, by_name)),
    ]
    title = f"cbrq report: {data.label}"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _when(value: datetime | None) -> str:
    return "none" if value is None else format_instant(value).replace("T", " ")[:19]


def _header(data: ReportData) -> str:
    nav = " ".join(f'<a href="#{anchor}">{_e(title)}</a>' for anchor, title in SECTIONS)
    options = data.options
    words = [
        f"inventory <code>{_e(data.label)}</code>",
        f"filter <code>{_e(options.filter_text or '(none)')}</code>",
        f"at <code>{_e(_when(data.at))}{' UTC' if data.at else ''}</code>",
    ]
    return (
        "<header>\n<h1>CBR backup report</h1>\n"
        f'<p class="meta">{" · ".join(words)}</p>\n<nav>{nav}</nav>\n</header>'
    )


def _section(anchor: str, inner: str) -> str:
    title = dict(SECTIONS)[anchor]
    return f'<section id="{anchor}">\n<h2>{_e(title)}</h2>\n{inner}\n</section>'


def _summary(data: ReportData) -> str:
    status = data.status.frame
    total = int(status["backups"].sum()) if status.height else 0
    errors = _count(status, "status", "error", "backups")
    cards = [
        ("backups", f"{total:,}", "live top-level backups matching the filter"),
        ("error backups", f"{errors:,}", "status error"),
        ("resources", f"{data.rpo.frame.height:,}", "listed by a vault or named by a backup"),
        _rpo_card(data),
        ("vaults", f"{data.capacity.frame.height:,}", f"{_full(data):,} full"),
        ("retention findings", f"{data.retention.frame.height:,}", "short or overdue"),
        ("hygiene findings", f"{data.hygiene.frame.height:,}", "orphan, stuck, error"),
    ]
    first = status["first"].min() if status.height else None
    last = status["last"].max() if status.height else None
    grid = "".join(
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div><div class="note">{_e(note)}</div></div>'
        for label, value, note in cards
    )
    facts = [
        ("oldest backup (created_at)", _when(_instant(first))),
        ("newest backup (created_at)", _when(_instant(last))),
        ("at (ages are measured to)", _when(data.at)),
        ("max age / min days / stuck hours", _thresholds(data)),
    ]
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    return f'<div class="cards">{grid}</div>\n<table class="facts">{rows}</table>'


def _instant(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _count(frame: pl.DataFrame, key: str, value: str, column: str) -> int:
    return int(frame.filter(pl.col(key) == value)[column].sum()) if frame.height else 0


def _rpo_card(data: ReportData) -> tuple[str, str, str]:
    """Resources without a good backup within --max-age: the card's label, value and note."""
    verdicts = data.rpo.frame["verdict"]
    never, breach = int((verdicts == "never").sum()), int((verdicts == "breach").sum())
    note = f"{never:,} never backed up, {breach:,} older than {_duration(data)}"
    return ("rpo breaches", f"{never + breach:,}", note)


def _full(data: ReportData) -> int:
    return data.capacity.frame.filter(pl.col("full")).height


def _thresholds(data: ReportData) -> str:
    options = data.options
    return f"{_duration(data)} / {options.min_days} d / {options.stuck_hours:g} h"


def _figure_html(chart: Chart) -> str:
    return (
        f'<figure id="chart-{chart.name}">\n{svg(chart)}\n'
        f"<figcaption><b>{_e(chart.title)}.</b> {_e(chart.caption)}</figcaption>\n</figure>"
    )


def _stats_body(data: ReportData, charts: dict[str, Chart]) -> str:
    return "\n".join(
        [
            _figure_html(charts["backups_per_day"]),
            _figure_html(charts["error_rate_per_week"]),
            "<h3>By status</h3>",
            _table(data.status.frame, "cbrq stats --by status"),
            _figure_html(charts["size_by_resource_type"]),
            "<h3>By resource type</h3>",
            _table(data.types, "cbrq stats --by resource_type"),
        ]
    )


def _rpo_body(data: ReportData, charts: dict[str, Chart]) -> str:
    intro = (
        f"<p>Every resource with the age of its newest good backup at 'at'; verdict "
        f"<b>never</b> (no good backup), <b>breach</b> (older than {_e(_duration(data))}) "
        f"or ok. Worst first.</p>"
    )
    command = f"cbrq rpo --max-age {_duration(data)}"
    return "\n".join([intro, _figure_html(charts["rpo_age"]), _table(data.rpo.frame, command)])


def _replication_body(data: ReportData, charts: dict[str, Chart]) -> str:
    names = data.capacity.frame.select(pl.col("id").alias("vault_id"), "name")
    per_vault = (
        data.replication.group_by("vault_id")
        .agg(pl.col("available").sum(), pl.col("replicated").sum())
        .with_columns((pl.col("replicated") / pl.col("available") * 100).alias("share_percent"))
        .join(names, on="vault_id", how="left")
        .select("vault_id", "name", "available", "replicated", "share_percent")
        .sort("share_percent", "vault_id", nulls_last=True)
    )
    return "\n".join(
        [_figure_html(charts["replication_coverage"]), "<h3>By vault</h3>", _table(per_vault, "")]
    )


def _retention_body(data: ReportData, charts: dict[str, Chart]) -> str:
    command = f"cbrq retention --min-days {data.options.min_days}"
    return "\n".join(
        [_figure_html(charts["retention_days"]), _table(data.retention.frame, command)]
    )


def _capacity_body(data: ReportData, charts: dict[str, Chart]) -> str:
    return "\n".join(
        [_figure_html(charts["vault_fill"]), _table(data.capacity.frame, "cbrq capacity")]
    )


def _hygiene_body(data: ReportData, charts: dict[str, Chart]) -> str:
    command = f"cbrq hygiene --stuck-hours {data.options.stuck_hours:g}"
    return "\n".join(
        [_figure_html(charts["hygiene_findings"]), _table(data.hygiene.frame, command)]
    )


def _table(frame: pl.DataFrame, command: str) -> str:
    """The first :data:`TABLE_ROWS` rows of ``frame`` as an HTML table, the rest counted."""
    if frame.height == 0:
        return '<p class="empty">No rows.</p>'
    shown = frame.head(TABLE_ROWS)
    head = "".join(f"<th>{_e(_header_name(c))}</th>" for c in shown.columns)
    body = "\n".join(
        "<tr>" + "".join(_cell(c, v) for c, v in zip(shown.columns, row, strict=True)) + "</tr>"
        for row in shown.iter_rows()
    )
    note = ""
    if frame.height > shown.height:
        hidden = frame.height - shown.height
        see = f" (all of them: <code>{_e(command)} -f csv</code>)" if command else ""
        note = f'<p class="more">{hidden:,} more rows not shown{see}.</p>'
    return (
        f'<div class="table"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n'
        f"</tbody></table></div>{note}"
    )


def _header_name(column: str) -> str:
    return "age" if column == "age_seconds" else column


def _cell(column: str, value: object) -> str:
    kind = "num" if isinstance(value, (int, float)) and not isinstance(value, bool) else "text"
    return f'<td class="{kind}">{_e(_shown(column, value))}</td>'


def _shown(column: str, value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return _when(value)
    if column == "age_seconds" and isinstance(value, float):
        return _age(value)
    if column == "used_percent" and isinstance(value, float):
        return _percent(value)
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _percent(value: float) -> str:
    """A fill percentage to 0.1, rounded down: 79.99993 reads 79.9, never the 80.0 of full."""
    return f"{math.floor(value * 10) / 10:.1f}"


def _age(seconds: float) -> str:
    """A duration in the largest two units: ``3d 4h``, ``5h 12m``, ``40m``."""
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins}m" if hours else f"{mins}m"


def sections(text: str) -> Iterator[str]:
    """The section anchors of a report page, in order (for tests and tools).

    Example: ``list(sections(report.html))[:2] == ["summary", "stats"]``.
    """
    yield from re.findall(r'<section id="([^"]+)">', text)


CSS: Final[str] = """
:root{--ink:#1f2933;--muted:#5f6b76;--line:#e3e6ea;--bg:#f6f7f9;--accent:#3b7dd8;--warn:#d64545}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}
main{max-width:1100px;margin:0 auto;padding:24px 28px 48px}
header{border-bottom:3px solid var(--accent);margin-bottom:20px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:19px;margin:0 0 12px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:18px 0 6px}
.meta{color:var(--muted);margin:0 0 8px}
nav{display:flex;flex-wrap:wrap;gap:14px;padding:0 0 10px}
nav a{color:var(--accent);text-decoration:none;font-weight:600}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:18px 22px;
margin:0 0 22px;box-shadow:0 1px 2px rgba(0,0,0,.04)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:12px;
margin-bottom:14px}
.card{border:1px solid var(--line);border-left:4px solid var(--accent);border-radius:6px;
padding:10px 12px;background:#fbfcfd}
.card .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:24px;font-weight:700}
.card .note{color:var(--muted);font-size:12px}
figure{margin:10px 0 16px}
figure svg{display:block;width:100%;height:auto}
figcaption{color:var(--muted);font-size:13px;margin-top:4px}
.table{overflow-x:auto}
table{border-collapse:collapse;font-size:12.5px;width:100%}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
thead th{background:#f0f2f5;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
table.facts{width:auto}
table.facts th{color:var(--muted);font-weight:500}
.more,.empty{color:var(--muted);font-style:italic}
code{background:#f0f2f5;padding:1px 4px;border-radius:3px;font-size:12.5px}
"""
