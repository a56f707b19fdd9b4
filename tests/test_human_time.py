"""Time as people write it in cbrq's own options; the API's grammar kept for query parameters.

:func:`engine.instants.parse_moment` is the one grammar of ``--at``, ``--as-of``,
``--to``, ``--taken-at``, ``--since`` and ``--until``: every SPEC timestamp
form, and ``now``, ``today``, ``yesterday``, a date (midnight UTC) and
relative forms. ``start_time``/``end_time`` stay SPEC §2's (no bare date).
Through click's CliRunner: exit status first, then the output.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.analyses import parse_at, parse_duration
from engine.errors import QueryError
from engine.instants import format_instant, parse_instant, parse_moment, parse_span
from tests.conftest import SAMPLE
from tests.golden.cases import load_store
from tests.test_analyses_cli import run


@pytest.fixture(scope="module")
def store() -> str:
    return str(load_store())


NOW = datetime(2026, 11, 5, 13, 30, 15, 250000, tzinfo=UTC)
MIDNIGHT = datetime(2026, 11, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("now", NOW),
        ("NOW", NOW),
        ("today", MIDNIGHT),
        ("yesterday", MIDNIGHT - timedelta(days=1)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("-7d", NOW - timedelta(days=7)),
        ("now-24h", NOW - timedelta(hours=24)),
        ("now-1w", NOW - timedelta(weeks=1)),
        ("now+90m", NOW + timedelta(minutes=90)),
        ("today-1w", MIDNIGHT - timedelta(weeks=1)),
        ("yesterday+12h", MIDNIGHT - timedelta(hours=12)),
        (" 2026-11-01 ", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T08:00:00+08:00", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T00:00:00.5", datetime(2026, 11, 1, 0, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_every_form_names_its_instant(text: str, instant: datetime) -> None:
    assert parse_moment(text, NOW) == instant


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-",
        "7d",
        "now-",
        "now-7",
        "now-7y",
        "now -7d",
        "tomorrow",
        "2026-02-30",
        "0000-01-01",
        "2026-1-1",
        "2026-11-01T25:00:00",
        "-999999999w",
        "now+9999999d",
    ],
)
def test_what_is_no_time_is_refused(text: str) -> None:
    assert parse_moment(text, NOW) is None


@given(st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.just(UTC)))
def test_every_spec_timestamp_means_what_the_api_grammar_says(moment: datetime) -> None:
    text = format_instant(moment) + "Z"
    assert parse_moment(text, NOW) == parse_instant(text) == moment


@given(st.integers(0, 5000), st.sampled_from(["m", "h", "d", "w"]))
def test_relative_times_are_now_less_the_span(count: int, unit: str) -> None:
    span = parse_span(f"{count}{unit}")
    assert span is not None
    assert parse_moment(f"-{count}{unit}", NOW) == parse_moment(f"now-{count}{unit}", NOW)
    assert parse_moment(f"now-{count}{unit}", NOW) == NOW - span


def test_weeks_are_seven_days_in_durations() -> None:
    assert parse_duration("2w") == timedelta(days=14)
    assert parse_span("1w") == parse_span("7d")


def test_a_bad_time_lists_every_accepted_form() -> None:
    with pytest.raises(QueryError) as caught:
        parse_at("last tuesday", "--since")
    message = str(caught.value)
    assert "--since='last tuesday'" in message
    for form in ("now", "today", "yesterday", "YYYY-MM-DD", "-7d", "now-24h", "±HH:MM"):
        assert form in message


def test_now_is_the_clock_when_none_is_given() -> None:
    before = datetime.now(UTC)
    moment = parse_moment("now")
    assert moment is not None and before <= moment <= datetime.now(UTC)


# --- through the command line -------------------------------------------------


def test_a_date_is_a_start_time_error_but_an_at(store: str) -> None:
    code, out, err = run("query", "--store", store, "-p", "start_time=2026-11-01", "-f", "json")
    assert code == 2
    assert json.loads(out)["error_code"] == "BackupService.9900"
    assert "start_time='2026-11-01': not a timestamp" in err and "2026-11-01T00:00:00Z" in err
    code, out, _ = run("rpo", "--store", store, "--at", "2026-11-01", "-f", "json")
    assert code == 0
    assert json.loads(out)["at"] == "2026-11-01T00:00:00.000000"


def test_the_full_form_is_still_a_start_time(store: str) -> None:
    code, out, _ = run("count", "--store", store, "-p", "start_time=2026-06-01T00:00:00Z")
    _, everything, _ = run("count", "--store", store)
    assert code == 0 and 0 < int(out) < int(everything)


@pytest.mark.parametrize("text", ["yesterday", "today", "-7d", "now-24h", "now-1w"])
def test_at_takes_words_and_relative_times(store: str, text: str) -> None:
    before = parse_moment(text)
    code, out, _ = run("hygiene", "--store", store, "--at", text, "-f", "json")
    after = parse_moment(text)
    assert code == 0
    at = parse_instant(json.loads(out)["at"])
    assert before is not None and after is not None and at is not None
    assert before <= at <= after


@pytest.mark.parametrize("option", ["--at", "--max-age"])
def test_bad_values_name_the_option(store: str, option: str) -> None:
    code, out, err = run("rpo", "--store", store, option, "fortnight")
    assert (code, out) == (2, "")
    assert f"{option}='fortnight'" in err
    assert ("yesterday" if option == "--at" else "2w") in err


def test_diff_takes_dates_for_its_instants(tmp_path: Path) -> None:
    from engine.api import ingest

    store = tmp_path / "store"
    ingest([str(SAMPLE)], store, snapshot=True, taken_at=datetime(2026, 11, 7, 8, 33, tzinfo=UTC))
    code, out, err = run("diff", "--store", str(store), "--as-of", "2026-11-07", "--to", "today")
    assert code == 0, err
    rows = json.loads(out)["rows"]  # before the one snapshot: nothing; now: every backup added
    assert rows and {r["change"] for r in rows} == {"added"}


def test_taken_at_takes_a_date(tmp_path: Path) -> None:
    store = tmp_path / "store"
    code, _, err = run(
        "ingest", str(SAMPLE), "--store", str(store), "--snapshot", "--taken-at", "2026-11-08", "-q"
    )
    assert code == 0, err
    code, out, _ = run("snapshots", "--store", str(store), "-f", "json")
    assert json.loads(out)["rows"][0]["taken_at"] == "2026-11-08T00:00:00.000000"


def test_trend_since_takes_a_date_and_until_a_relative_time(tmp_path: Path) -> None:
    store = tmp_path / "store"
    run("ingest", str(SAMPLE), "--store", str(store), "--snapshot", "-q")
    code, out, err = run(
        "trend", "--store", str(store), "--since", "2026-11-01", "--until", "now", "-f", "json"
    )
    assert code == 0, err
    assert json.loads(out)["rows"]
    code, _, err = run("trend", "--store", str(store), "--since", "soon")
    assert code == 2 and "--since='soon'" in err


def test_the_footer_says_where_at_came_from(store: str) -> None:
    code, out, _ = run("capacity", "--store", store, "-f", "table")
    assert code == 0
    assert "; at 2026-11-07T08:33:40.775000Z (default: the newest updated_at)" in out
    code, out, _ = run("capacity", "--store", store, "-f", "table", "--at", "2026-11-01")
    assert "; at 2026-11-01T00:00:00.000000Z (given)" in out
    code, out, _ = run("capacity", "--store", store, "-f", "json", "--at", "2026-11-01")
    assert list(json.loads(out)) == ["at", "rows"]
    assert json.loads(out)["at"] == "2026-11-01T00:00:00.000000"


def test_times_in_tables_carry_their_zone(store: str) -> None:
    code, out, _ = run(
        "query", "--store", store, "limit=3", "-f", "table", "--fields", "id,created_at"
    )
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(rows) == 3 and all(line.rstrip(" │").endswith("Z") for line in rows)
    _, csv, _ = run("query", "--store", store, "limit=3", "-f", "csv", "--fields", "created_at")
    assert not any(line.endswith("Z") for line in csv.splitlines())
