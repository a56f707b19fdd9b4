"""The report's page: gathered data and drawn charts -> one self-contained HTML text."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Final

import polars as pl

from engine.instants import format_instant
from engine.render import visible
from engine.report.charts import Chart, percent_text, svg

if TYPE_CHECKING:
    from engine.report.data import ReportData, Trends

#: Rows of each analysis table shown in the page; the rest are counted.
TABLE_ROWS: Final[int] = 25
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
#: The section a store with two or more snapshots adds after the summary: (anchor, heading).
TRENDS_SECTION: Final[tuple[str, str]] = ("trends", "Trends across snapshots (trend)")
#: A summary card's verdict -> the word on the card (its colour is the CSS class of the same
#: name): the word says it where colour is not seen (a black-and-white print, colour blindness).
VERDICTS: Final[dict[str, str]] = {"ok": "OK", "warn": "REVIEW", "bad": "ACTION"}
#: Characters from which a cell's text may break anywhere (a 3,000-character name would
#: widen its column past the page); shorter text breaks only where words do (ids at hyphens).
LONG_TEXT: Final[int] = 40
#: The RPO table's columns in the page: the verdict and age first, the long ids last.
RPO_COLUMNS: Final[tuple[str, ...]] = (
    "verdict",
    "age_seconds",
    "resource_name",
    "resource_type",
    "last_good",
    "backups",
    "vault_id",
    "resource_id",
)


def page(data: ReportData, charts: Sequence[Chart]) -> str:
    """The HTML page of ``data`` with ``charts`` (from :func:`draw`) in their sections.

    Example: ``page(data, draw(data)).startswith("<!DOCTYPE html>")``.
    """
    by_name = {chart.name: chart for chart in charts}
    trends = [] if data.trends is None else [_section("trends", _trends_body(data, by_name))]
    body = [
        _header(data),
        _section("summary", _summary(data)),
        *trends,
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
    """``value`` as HTML text: markup escaped, control characters as visible escapes.

    Control characters are invalid in HTML text (and C1 references are remapped by
    browsers), so they are shown as ``\\x1b`` the way a table shows them.
    """
    return html.escape(visible(str(value)), quote=True)


def _when(value: datetime | None) -> str:
    return "none" if value is None else format_instant(value).replace("T", " ")[:19]


def _page_sections(data: ReportData) -> tuple[tuple[str, str], ...]:
    """The sections of this page: :data:`SECTIONS`, with the trends after the summary if any."""
    if data.trends is None:
        return SECTIONS
    return (SECTIONS[0], TRENDS_SECTION, *SECTIONS[1:])


def _header(data: ReportData) -> str:
    nav = " ".join(f'<a href="#{anchor}">{_e(title)}</a>' for anchor, title in _page_sections(data))
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
    title = dict((*SECTIONS, TRENDS_SECTION))[anchor]
    return f'<section id="{anchor}">\n<h2>{_e(title)}</h2>\n{inner}\n</section>'


def _summary(data: ReportData) -> str:
    status = data.status.frame
    total = int(status["backups"].sum()) if status.height else 0
    errors = _count(status, "status", "error", "backups")
    vaults, full = data.capacity.frame.height, _full(data)
    retention, hygiene = data.retention.frame.height, data.hygiene.frame.height
    cards = [
        ("backups", total, "live top-level backups matching the filter", None),
        ("error backups", errors, "status error", card_verdict(errors, "bad")),
        ("resources", data.rpo.frame.height, "listed by a vault or named by a backup", None),
        _rpo_card(data),
        ("full vaults", full, f"of {vaults:,} vault(s), at or over their threshold",
         card_verdict(full, "warn")),
        ("retention findings", retention, "short or overdue", card_verdict(retention, "warn")),
        ("hygiene findings", hygiene, "orphan, stuck, error", card_verdict(hygiene, "warn")),
    ]  # fmt: skip
    first = status["first"].min() if status.height else None
    last = status["last"].max() if status.height else None
    facts = [
        ("oldest backup (created_at)", _when(_instant(first))),
        ("newest backup (created_at)", _when(_instant(last))),
        ("at (ages are measured to)", _when(data.at)),
        ("max age / min days / stuck hours", _thresholds(data)),
    ]
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    grid = "".join(_card(*card) for card in cards)
    return f'<div class="cards">{grid}</div>\n<table class="facts">{rows}</table>'


def card_verdict(count: int, above_zero: str) -> str:
    """A summary card's verdict: ``ok`` at 0, else ``above_zero`` (``warn`` or ``bad``).

    Example: ``card_verdict(0, "bad") == "ok"``; ``card_verdict(3, "bad") == "bad"``.
    """
    return above_zero if count else "ok"


def _card(label: str, value: int, note: str, verdict: str | None) -> str:
    """One summary card; a card with a verdict is coloured and says its verdict in a word."""
    kind = f"card {verdict}" if verdict else "card"
    word = f'<span class="verdict">{VERDICTS[verdict]}</span>' if verdict else ""
    return (
        f'<div class="{kind}"><div class="label">{_e(label)}{word}</div>'
        f'<div class="value">{value:,}</div><div class="note">{_e(note)}</div></div>'
    )


def _instant(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _count(frame: pl.DataFrame, key: str, value: str, column: str) -> int:
    return int(frame.filter(pl.col(key) == value)[column].sum()) if frame.height else 0


def _rpo_card(data: ReportData) -> tuple[str, int, str, str]:
    """Resources without a good backup within --max-age: the card's label, value, note, verdict."""
    verdicts = data.rpo.frame["verdict"]
    never, breach = int((verdicts == "never").sum()), int((verdicts == "breach").sum())
    note = f"{never:,} never backed up, {breach:,} older than {data.options.max_age_text}"
    return ("rpo breaches", never + breach, note, card_verdict(never + breach, "bad"))


def _full(data: ReportData) -> int:
    return data.capacity.frame.filter(pl.col("full")).height


def _thresholds(data: ReportData) -> str:
    options = data.options
    return f"{data.options.max_age_text} / {options.min_days} d / {options.stuck_hours:g} h"


def _figure_html(chart: Chart) -> str:
    """The chart as a figure, or, with nothing to draw, the sentence that says why."""
    if not chart.drawn:
        return (
            f'<p class="nochart" id="chart-{chart.name}"><b>{_e(chart.title)}:</b> '
            f"{_e(chart.caption)}</p>"
        )
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
    limit = _e(data.options.max_age_text)
    intro = (
        f"<p>Every resource with the age of its newest good backup at 'at'; verdict "
        f"<b>never</b> (no good backup), <b>breach</b> (older than {limit}) or ok. "
        "Worst first.</p>"
    )
    command = f"cbrq rpo --max-age {data.options.max_age_text}"
    table = _table(data.rpo.frame.select(RPO_COLUMNS), command)
    return "\n".join([intro, _figure_html(charts["rpo_age"]), table])


def _replication_body(data: ReportData, charts: dict[str, Chart]) -> str:
    if int(data.replication["recorded"].sum()) == 0:
        # The chart's place says "No replication records"; a table of zeros would add nothing.
        return _figure_html(charts["replication_coverage"])
    names = data.capacity.frame.select(pl.col("id").alias("vault_id"), "name")
    per_vault = (
        data.replication.group_by("vault_id")
        .agg(pl.col("available").sum(), pl.col("recorded").sum(), pl.col("replicated").sum())
        .with_columns((pl.col("replicated") / pl.col("available") * 100).alias("share_percent"))
        .join(names, on="vault_id", how="left")
        .select("vault_id", "name", "available", "recorded", "replicated", "share_percent")
        .sort("share_percent", "vault_id", nulls_last=True)
    )
    words = (
        "<p>Per vault: its available backups, those with any replication record "
        "(<b>recorded</b>) and those with one in status success (<b>replicated</b>); "
        "least replicated first.</p>"
    )
    chart = _figure_html(charts["replication_coverage"])
    return "\n".join([chart, "<h3>By vault</h3>", words, _table(per_vault, "")])


def _retention_body(data: ReportData, charts: dict[str, Chart]) -> str:
    command = f"cbrq retention --min-days {data.options.min_days}"
    return "\n".join(
        [_figure_html(charts["retention_days"]), _table(data.retention.frame, command)]
    )


def _trends_body(data: ReportData, charts: dict[str, Chart]) -> str:
    trends = data.trends
    assert trends is not None  # the page adds this section only with trends
    first, last = trends.snapshots[0], trends.snapshots[-1]
    intro = (
        f"<p>How the inventory changed over the store's {len(trends.snapshots):,} snapshots "
        f"({_e(_when(first))} to {_e(_when(last))} UTC), per <b>{_e(trends.every)}</b>, "
        "with this report's filter and max age. Each row counts the backups present at the "
        "end of its period; added and gone are the changes during it.</p>"
    )
    command = f"cbrq trend --every {trends.every} --max-age {data.options.max_age_text}"
    return "\n".join(
        [
            intro,
            _figure_html(charts["trend_backups_size"]),
            _figure_html(charts["trend_added_gone"]),
            _figure_html(charts["trend_errors_breaches"]),
            f"<h3>Per {_e(trends.every)}, newest first</h3>",
            _table(trends.rows.frame.reverse(), command),
            '<h3 id="trends-fill">Vault fill and forecast</h3>',
            _fill_intro(trends),
            _table(trends.fill, "cbrq capacity --forecast"),
        ]
    )


def _fill_intro(trends: Trends) -> str:
    sizeless = (
        f" {trends.sizeless:,} vault(s) without a size are left out." if trends.sizeless else ""
    )
    return (
        "<p>Each vault's used share at 'at' and the days until it reaches its threshold, "
        "from the least-squares line of its billing.used over the last 30 days (at least "
        "3 versions); soonest first. <b>0</b>: already full; <b>not rising</b>: the line "
        f"does not rise, or the vault has too few versions to draw one.{sizeless}</p>"
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
    """A table cell: numbers (and ages) right-aligned, instants unbroken, text wrapping (long
    text anywhere)."""
    if isinstance(value, datetime):
        kind = "when"
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        kind = "num"
    else:
        kind = "text"
    shown = _shown(column, value)
    if len(shown) > LONG_TEXT:
        kind += " long"
    if column == "verdict" and isinstance(value, str):  # coloured, as the word says
        kind += f" verdict-{re.sub(r'[^a-z]', '', value)}"
    return f'<td class="{kind}">{_e(shown)}</td>'


def _shown(column: str, value: object) -> str:
    if value is None and column != "days_to_full":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return _when(value)
    if column == "age_seconds" and isinstance(value, (int, float)):
        return age_text(value)
    if column == "days_to_full":
        return "not rising" if value is None else f"{value:,.1f}" if value else "0 (full)"
    if column == "used_percent" and isinstance(value, float):
        return percent_text(value)
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def age_text(seconds: float) -> str:
    """An age as people write it, in its two largest units: ``2 d 3 h``, ``5 h 12 m``, ``40 m``.

    Under a minute reads in seconds (``45 s``); days are not folded into years, so ages
    compare at a glance down a column.

    Example: ``age_text(183_600) == "2 d 3 h"``; ``age_text(2_400) == "40 m"``.
    """
    if seconds < 60:
        return f"{max(seconds, 0):.0f} s"
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days:,} d {hours} h"
    return f"{hours} h {mins} m" if hours else f"{mins} m"


def sections(text: str) -> Iterator[str]:
    """The section anchors of a report page, in order (for tests and tools).

    Example: ``list(sections(report.html))[:2] == ["summary", "stats"]``.
    """
    yield from re.findall(r'<section id="([^"]+)">', text)


#: The page's style: on screen a centred column of cards; printed (``@media print``) an A4
#: page per section whose tables fit the page width (smaller type, long ids and names
#: wrapping), charts and cards never split across pages, and the verdict colours kept.
CSS: Final[str] = """
:root{--ink:#1f2933;--muted:#5f6b76;--line:#e3e6ea;--bg:#f6f7f9;--accent:#3b7dd8;--warn:#d64545;
--ok:#2e9d5b;--amber:#e0892b}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}
main{max-width:1100px;margin:0 auto;padding:24px 28px 48px}
header{border-bottom:3px solid var(--accent);margin-bottom:20px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:19px;margin:0 0 12px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:18px 0 6px}
.meta{color:var(--muted);margin:0 0 8px}
nav{display:flex;flex-wrap:wrap;gap:4px 14px;padding:0 0 10px}
nav a{color:var(--accent);text-decoration:none;font-weight:600}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:18px 22px;
margin:0 0 22px;box-shadow:0 1px 2px rgba(0,0,0,.04)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:12px;
margin-bottom:14px}
.card{border:1px solid var(--line);border-left:5px solid var(--accent);border-radius:6px;
padding:10px 12px;background:#fbfcfd}
.card .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:24px;font-weight:700}
.card .note{color:var(--muted);font-size:12px}
.card .verdict{float:right;font-size:11px;font-weight:700;letter-spacing:.05em;color:#fff;
padding:0 6px;border-radius:3px;margin-left:6px}
.card.ok{border-left-color:var(--ok);background:#f1f9f4}
.card.ok .verdict{background:var(--ok)}
.card.warn{border-left-color:var(--amber);background:#fdf5ec}
.card.warn .value{color:#a85a0c}
.card.warn .verdict{background:#b8650f}
.card.bad{border-left-color:var(--warn);background:#fcf0f0}
.card.bad .value{color:#b52f2f}
.card.bad .verdict{background:var(--warn)}
figure{margin:10px 0 16px}
figure svg{display:block;width:100%;height:auto}
figcaption{color:var(--muted);font-size:13px;margin-top:4px}
.nochart{color:var(--muted);background:var(--bg);border:1px dashed var(--line);border-radius:6px;
padding:10px 14px;margin:10px 0 16px}
.table{overflow-x:auto}
table{border-collapse:collapse;font-size:12.5px;width:100%}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th,td.num,td.when{white-space:nowrap}
td.long{overflow-wrap:anywhere}
thead th{background:#f0f2f5;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.verdict-never,td.verdict-breach{color:#b52f2f;font-weight:700}
td.verdict-ok{color:#23784a}
table.facts{width:auto}
table.facts th{color:var(--muted);font-weight:500}
.more,.empty{color:var(--muted);font-style:italic}
code{background:#f0f2f5;padding:1px 4px;border-radius:3px;font-size:12.5px}
@page{size:A4;margin:12mm 10mm}
@media print{
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{background:#fff;font-size:11px}
main{max-width:none;padding:0}
nav{display:none}
header{margin-bottom:10px}
section{border:0;border-radius:0;box-shadow:none;padding:0;margin:0;break-before:page}
header+section{break-before:auto}
h2,h3{break-after:avoid}
.cards{grid-template-columns:repeat(4,1fr);gap:8px}
.card,figure,.nochart,table.facts,tr{break-inside:avoid}
figcaption{font-size:10px}
.table{overflow:visible}
table{font-size:9px;table-layout:auto}
table.facts{font-size:11px}
th,td{padding:2px 4px}
thead{display:table-header-group}
thead th{position:static}
code{font-size:9px}
}
"""
