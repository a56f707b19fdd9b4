"""A report fit to forward (issue 23 item 2): charts fitted to the data, readable date labels,
no empty chart, summary cards that say their verdict, ages and percentages as people write them.

The printed page (every RPO column on the A4 page) is checked in Chromium by
``tests/test_report.py``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from engine.inventory import Inventory
from engine.report import ReportOptions, build
from engine.report.charts import DAILY_DAYS, DAILY_MIN_DAYS, Chart, write_pngs
from engine.report.page import age_text, card_verdict
from tests.records import backup, write_page

pytest.importorskip("matplotlib")

DAY = datetime(2026, 3, 10, 9, 0)


def when(day: datetime) -> str:
    return day.strftime("%Y-%m-%dT%H:%M:%SZ")


def daily(days: int, every: int = 1, prefix: str = "b", **fields: Any) -> list[dict[str, Any]]:
    """A backup of a resource of its own every ``every`` days, ``days`` days up to :data:`DAY`."""
    return [
        backup(
            f"{prefix}{n}", resource_id=f"r{prefix}{n}", created_at=when(DAY - timedelta(days=n)),
            updated_at=when(DAY - timedelta(days=n)), expired_at=when(DAY + timedelta(days=60)),
            **fields,
        )
        for n in range(0, days, every)
    ]  # fmt: skip


def report(
    tmp_path: Path, records: list[dict[str, Any]], **options: Any
) -> tuple[str, dict[str, Chart]]:
    """The page of ``records`` (read with ``--from``) and its charts by name."""
    dump = write_page(tmp_path / "b.json", *records)
    with Inventory.from_dumps([dump]) as inv:
        built = build(inv, ReportOptions(at=when(DAY + timedelta(hours=6)), **options))
    return built.html, {chart.name: chart for chart in built.charts}


def section(text: str, anchor: str) -> str:
    return text.split(f'<section id="{anchor}">', 1)[1].split("</section>", 1)[0]


def x_days(chart: Chart) -> float:
    """The span of a chart's x axis, in days (matplotlib's date unit)."""
    assert chart.figure is not None
    low, high = chart.figure.axes[0].get_xlim()
    return float(high - low)


@pytest.mark.parametrize(
    ("days", "shown"),
    [(1, DAILY_MIN_DAYS), (10, 10), (60, 60), (400, DAILY_DAYS)],
    ids=["one day", "ten days", "sixty days", "over a year"],
)
def test_backups_per_day_spans_the_days_of_the_data(tmp_path: Path, days: int, shown: int) -> None:
    """Ten days of data fill the chart (it once spanned 180 days whatever the data)."""
    _, charts = report(tmp_path, daily(days))
    assert x_days(charts["backups_per_day"]) == shown


@pytest.mark.parametrize("weeks", [1, 3, 20, 150])
def test_weekly_charts_span_the_weeks_of_the_data(tmp_path: Path, weeks: int) -> None:
    records = daily(weeks * 7, every=7, replication_records=[{"status": "success"}])
    _, charts = report(tmp_path, records)
    for name in ("error_rate_per_week", "replication_coverage"):
        # The weeks drawn (104 at most) and half a week either side.
        assert x_days(charts[name]) == pytest.approx(7 * (min(weeks, 104) - 1) + 7), name


def _label_boxes(chart: Chart) -> list[Any]:
    figure = chart.figure
    assert figure is not None
    figure.draw_without_rendering()  # lays out the ticks and their labels
    labels = [t for t in figure.axes[0].get_xticklabels() if t.get_text() and t.get_visible()]
    return [label.get_window_extent() for label in labels]


@pytest.mark.parametrize("days", [2, 10, 45, 180])
def test_date_labels_never_overlap(tmp_path: Path, days: int) -> None:
    _, charts = report(tmp_path, daily(days) + daily(days * 5, every=5, prefix="c"))
    for name in ("backups_per_day", "error_rate_per_week"):
        boxes = _label_boxes(charts[name])
        assert 2 <= len(boxes) <= 9, name
        for one, other in combinations(boxes, 2):
            assert not one.overlaps(other), (name, one, other)


def test_no_replication_records_is_said_not_drawn(tmp_path: Path) -> None:
    text, charts = report(tmp_path, daily(10))
    assert not charts["replication_coverage"].drawn
    part = section(text, "replication")
    assert "<svg" not in part and "<table>" not in part
    assert "No replication records: none of the 10 available backup(s)" in part
    written = write_pngs(list(charts.values()), tmp_path / "png")
    assert "replication_coverage.png" not in {path.name for path in written} and written


def test_replication_without_a_success_is_said_and_tabled(tmp_path: Path) -> None:
    text, charts = report(tmp_path, daily(10, replication_records=[{"status": "failed"}]))
    assert not charts["replication_coverage"].drawn
    part = section(text, "replication")
    assert "No successful replication: 10 of the 10 available backup(s)" in part
    assert "<table>" in part and "<svg" not in part


def test_every_chart_with_nothing_to_draw_says_why(tmp_path: Path) -> None:
    """No vault, no expiry, no finding: the page says so, and draws no empty axes."""
    records = [dict(r, expired_at=None) for r in daily(3)]
    text, charts = report(tmp_path, records, max_age="30d")
    said = {name for name, chart in charts.items() if not chart.drawn}
    assert said == {"replication_coverage", "retention_days", "vault_fill", "hygiene_findings"}
    for name in said:
        place = rf'<p class="nochart" id="chart-{name}"><b>[^<]+:</b> ([^<]+)</p>'
        sentence = re.search(place, text)
        assert sentence and sentence.group(1).startswith("No "), name
    assert text.count("<svg") == len(charts) - len(said)


def _cards(text: str) -> dict[str, tuple[str, str, str]]:
    """Each summary card: label -> (its classes, its verdict word, its value)."""
    found = re.findall(
        r'<div class="(card[^"]*)"><div class="label">([^<]+)(?:<span class="verdict">([^<]+)'
        r'</span>)?</div><div class="value">([^<]+)</div>',
        section(text, "summary"),
    )
    return {label: (kind, word, value) for kind, label, word, value in found}


def test_cards_say_their_verdict_in_colour_and_in_a_word(tmp_path: Path) -> None:
    failed = backup("e1", status="error", resource_id="rb0", created_at=when(DAY))
    records = [*daily(5, resource_size=10), failed]
    cards = _cards(report(tmp_path, records, max_age="30d")[0])
    assert cards["error backups"] == ("card bad", "ACTION", "1")
    assert cards["hygiene findings"] == ("card warn", "REVIEW", "1")
    assert cards["rpo breaches"] == ("card ok", "OK", "0")
    assert cards["full vaults"] == ("card ok", "OK", "0")
    assert cards["backups"] == ("card", "", "6")  # a count, not a verdict
    breached = _cards(report(tmp_path, daily(5), max_age="1d")[0])
    assert breached["rpo breaches"] == ("card bad", "ACTION", "4")
    assert breached["error backups"] == ("card ok", "OK", "0")


def test_card_verdict() -> None:
    assert [card_verdict(n, "bad") for n in (0, 1, 10)] == ["ok", "bad", "bad"]
    assert card_verdict(2, "warn") == "warn"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"), (59, "59 s"), (60, "1 m"), (2_400, "40 m"), (3_600, "1 h 0 m"),
        (18_720, "5 h 12 m"), (86_400, "1 d 0 h"), (183_600, "2 d 3 h"),
        (211_770_000.5, "2,451 d 1 h"),
    ],
)  # fmt: skip
def test_ages_read_as_people_write_them(seconds: float, text: str) -> None:
    assert age_text(seconds) == text


def test_the_rpo_table_shows_ages_not_seconds(tmp_path: Path) -> None:
    text, _ = report(tmp_path, daily(3))
    table = section(text, "rpo").split("<table>", 1)[1]
    assert re.findall(r"<th>([^<]+)</th>", table)[:2] == ["verdict", "age"]
    # The newest backup is 6 h old at 'at', the next 1 d 6 h, then 2 d 6 h.
    assert re.findall(r'<td class="num">(\d[^<]* [dhm][^<]*)</td>', table) == [
        "2 d 6 h", "1 d 6 h", "6 h 0 m",
    ]  # fmt: skip


def test_no_number_in_the_page_has_more_than_two_decimals(tmp_path: Path) -> None:
    records = daily(7, replication_records=[{"status": "success"}]) + daily(3, prefix="c")
    text, _ = report(tmp_path, records)
    words = re.sub(r"<svg.*?</svg>", "", text, flags=re.S)  # chart geometry is not text
    words = re.sub(r"<style>.*?</style>", "", words, flags=re.S)
    assert not re.findall(r"\d\.\d{3,}", words)
