"""`cbrq report`'s trends section: a store fed daily snapshots shows its inventory over time."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.inventory import Inventory
from engine.report import SECTIONS, TRENDS_SECTION, sections
from engine.report.data import trend_period
from engine.report.trends import period_labels

TREND_CHARTS = ("trend_backups_size", "trend_added_gone", "trend_errors_breaches")
WITH_TRENDS = [SECTIONS[0][0], TRENDS_SECTION[0], *(anchor for anchor, _ in SECTIONS[1:])]
WITHOUT = [anchor for anchor, _ in SECTIONS]


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output + result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four daily full exports (README "Keeping daily exports")."""
    out = tmp_path_factory.mktemp("series") / "series"
    cli("generate", str(out), "-n", "300", "--days", "4", "--seed", "7")
    return out


@pytest.fixture(scope="module")
def store(series: Path) -> Path:
    """The four exports ingested day by day, each a snapshot."""
    root = series.parent / "store"
    for day in sorted(series.iterdir()):
        cli("ingest", str(day), "--store", str(root), "--snapshot", "-q")
    return root


@pytest.fixture(scope="module")
def built(store: Path) -> Path:
    """The report of the snapshot store (default at), with its PNGs."""
    cli("report", "--store", str(store), "-o", str(store.parent / "r.html"),
        "--png", str(store.parent / "png"))  # fmt: skip
    return store.parent


def section(text: str, anchor: str) -> str:
    return text.split(f'<section id="{anchor}">', 1)[1].split("</section>", 1)[0]


def tables(part: str) -> list[str]:
    return re.findall(r"<table>.*?</table>", part, flags=re.S)


def row_html(row: dict[str, object]) -> str:
    """A trend row as the page writes it: instants to the second, numbers grouped."""
    cells = []
    for value in row.values():
        if isinstance(value, datetime):
            cells.append(f'<td class="when">{value:%Y-%m-%d %H:%M:%S}</td>')
        elif isinstance(value, float):
            cells.append(f'<td class="num">{value:,.1f}</td>')
        else:
            cells.append(f'<td class="num">{value:,}</td>')
    return "<tr>" + "".join(cells) + "</tr>"


def test_the_section_follows_the_summary_with_its_four_parts(built: Path) -> None:
    text = (built / "r.html").read_text(encoding="utf-8")
    assert list(sections(text)) == WITH_TRENDS
    assert '<nav><a href="#summary">Summary</a> <a href="#trends">' in text
    part = section(text, "trends")
    for name in TREND_CHARTS:
        figure = part.split(f'<figure id="chart-{name}">', 1)[1].split("</figure>", 1)[0]
        assert "<svg" in figure and "<figcaption>" in figure
    assert "per <b>day</b>" in part and "One point per day (UTC)" in part
    assert len(tables(part)) == 2  # the trend rows, and the vault fill with its forecast
    assert "Vault fill and forecast" in part
    written = sorted(p.stem for p in (built / "png").iterdir())
    # A PNG per chart drawn in the page (a chart with nothing to draw has neither).
    drawn = re.findall(r'<figure id="chart-(\w+)">', text)
    assert set(TREND_CHARTS) <= set(written) and written == sorted(drawn)
    assert len(drawn) + text.count('<p class="nochart"') == 8 + len(TREND_CHARTS)


def test_the_rows_shown_are_the_inventorys_trend(built: Path, store: Path) -> None:
    part = section((built / "r.html").read_text(encoding="utf-8"), "trends")
    with Inventory.open(store) as inv:
        frame = inv.trend(every="day", max_age="24h").frame
    assert frame.height == 4 and frame["backups"][-1] == 289  # README's series: 300 .. 289
    rows = re.findall(r"<tr>.*?</tr>", tables(part)[0])[1:]
    assert rows == [row_html(row) for row in reversed(frame.rows(named=True))]  # newest first
    churn = part.split('id="chart-trend_added_gone"', 1)[1].split("</figure>", 1)[0]
    assert f"its {frame['added'][0]:,} added" in churn  # the first day, left out of the bars


def test_the_fill_table_is_the_forecast_soonest_first(built: Path, store: Path) -> None:
    part = section((built / "r.html").read_text(encoding="utf-8"), "trends")
    with Inventory.open(store) as inv:
        forecast = inv.capacity(forecast=True).frame.filter(pl.col("used_percent").is_not_null())
    rows = re.findall(r"<tr>(.*?)</tr>", tables(part)[1])[1:]
    names = [re.findall(r"<td[^>]*>(.*?)</td>", row)[1] for row in rows]
    soonest = forecast.sort("days_to_full", "used_percent", "id",
                            descending=[False, True, False], nulls_last=True)  # fmt: skip
    assert names == soonest["name"].to_list()
    assert sum("not rising" in row for row in rows) == forecast["days_to_full"].null_count() > 0
    assert sum("0 (full)" in row for row in rows) == forecast.filter(pl.col("full")).height > 0
    rising = soonest.filter(pl.col("days_to_full") > 0).row(0, named=True)
    shown = rows[names.index(rising["name"])]
    assert shown.endswith(f'<td class="num">{rising["days_to_full"]:,.1f}</td>')


def test_a_report_at_a_past_instant_runs_the_trend_up_to_it(store: Path, tmp_path: Path) -> None:
    at = "2026-01-03T12:00:00Z"
    cli("report", "--store", str(store), "--at", at, "-o", str(tmp_path / "at.html"))
    part = section((tmp_path / "at.html").read_text(encoding="utf-8"), "trends")
    with Inventory.open(store) as inv:
        frame = inv.trend(every="day", until=at).frame
    rows = re.findall(r"<tr>.*?</tr>", tables(part)[0])[1:]
    assert rows == [row_html(row) for row in reversed(frame.rows(named=True))]
    assert rows[0].startswith('<tr><td class="when">2026-01-03 12:00:00</td>')
    # Before the second snapshot the store held one: no trends section.
    cli("report", "--store", str(store), "--at", "2026-01-02T00:00:00Z",
        "-o", str(tmp_path / "early.html"))  # fmt: skip
    assert list(sections((tmp_path / "early.html").read_text(encoding="utf-8"))) == WITHOUT


def test_the_filter_and_max_age_narrow_the_trend(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "errors.html"
    cli("report", "status=error", "--store", str(store), "--max-age", "7d", "-o", str(out))
    part = section(out.read_text(encoding="utf-8"), "trends")
    with Inventory.open(store) as inv:
        frame = inv.trend("status=error", every="day", max_age="7d").frame
        everything = inv.trend(every="day", max_age="24h").frame
    assert frame["backups"].to_list() != everything["backups"].to_list()
    rows = re.findall(r"<tr>.*?</tr>", tables(part)[0])[1:]
    assert rows == [row_html(row) for row in reversed(frame.rows(named=True))]


def test_fewer_than_two_snapshots_or_dumps_give_no_trends_section(
    series: Path, tmp_path: Path
) -> None:
    days = sorted(series.iterdir())
    cli("ingest", str(days[0]), "--store", str(tmp_path / "one"), "--snapshot", "-q")
    cli("ingest", *map(str, days), "--store", str(tmp_path / "plain"), "-q")
    sources = {
        "one": ["--store", str(tmp_path / "one")],
        "plain": ["--store", str(tmp_path / "plain")],
        "from": ["--from", str(series)],
    }
    for name, source in sources.items():
        cli("report", *source, "-o", str(tmp_path / f"{name}.html"), "--png", str(tmp_path / name))
        text = (tmp_path / f"{name}.html").read_text(encoding="utf-8")
        assert list(sections(text)) == WITHOUT, name
        assert 'href="#trends"' not in text and "chart-trend_" not in text, name
        assert not list((tmp_path / name).glob("trend_*.png")), name


def test_the_same_store_gives_the_same_bytes(built: Path, store: Path, tmp_path: Path) -> None:
    cli("report", "--store", str(store), "-o", str(tmp_path / "again.html"))
    assert (tmp_path / "again.html").read_bytes() == (built / "r.html").read_bytes()


@pytest.mark.parametrize(
    ("days", "every"), [(0.01, "day"), (90, "day"), (90.01, "week"), (731, "week"), (732, "month")]
)
def test_the_period_follows_the_span_of_the_snapshots(days: float, every: str) -> None:
    assert trend_period(timedelta(days=days)) == every


def test_period_labels_name_the_year_once() -> None:
    starts = [datetime(2025, 12, 29), datetime(2026, 1, 5), datetime(2026, 1, 12)]
    assert period_labels(starts, "week") == ["29 Dec\n2025", "5 Jan\n2026", "12 Jan"]
    months = [datetime(2025, 11, 1), datetime(2025, 12, 1), datetime(2026, 1, 1)]
    assert period_labels(months, "month") == ["Nov\n2025", "Dec", "Jan\n2026"]
