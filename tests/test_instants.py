"""The column parser (native, over Arrow) and the one-value parser of timestamps
agree, value for value."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from engine.instants import canonical, instant_array, parse_instant

DIGITS = st.text("0123456789", min_size=1, max_size=10)


@st.composite
def near_timestamps(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30)))
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if draw(st.booleans()):
        text += "." + draw(st.text("0123456789", min_size=0, max_size=10))
    zone = draw(st.sampled_from(["", "Z", "+08:00", "-01:30", "+23:59", "+0800", "z", "+08:60"]))
    text += zone
    if draw(st.integers(0, 9)) == 0:
        index = draw(st.integers(0, len(text) - 1))
        text = text[:index] + draw(st.sampled_from(["", "x", "9", " "])) + text[index + 1 :]
    return text


@given(
    st.lists(near_timestamps() | st.text(max_size=30) | st.none(), min_size=1, max_size=20),
    st.integers(0, 3),
)
@example(["2020-02-30T00:00:00", "0001-01-01T00:00:00+00:01", "2020-02-21T07:00:60"], 0)
@example(["9999-12-31T23:59:59.9999999-00:01", "2020-02-21T07:00:54.", None], 1)
@example(["\uff12\uff10\uff12\uff10-02-21T07:00:54", "2020-02-21T07:00:54.\u0660"], 0)
def test_native_column_parser_agrees_with_value_parser(texts: list[str | None], cut: int) -> None:
    """Sliced columns too: the native core reads Arrow's buffers at the column's offset."""
    column = pa.array(texts, pa.string()).slice(min(cut, len(texts) - 1))
    parsed = instant_array(column)
    assert parsed.type == pa.timestamp("us", tz="UTC")
    want = [None if t is None else parse_instant(t) for t in texts[min(cut, len(texts) - 1) :]]
    assert [None if v is None else v.astimezone(UTC) for v in parsed.to_pylist()] == want


@pytest.mark.parametrize(
    ("text", "canon"),
    [
        ("2020-02-21T07:00:54.065135", "2020-02-21T07:00:54.065135"),
        ("2020-02-21T07:00:54.065+00:00", "2020-02-21T07:00:54.065000"),
        ("2020-02-21T15:00:54.065+08:00", "2020-02-21T07:00:54.065000"),
        ("2020-02-21T07:00:54Z", "2020-02-21T07:00:54.000000"),
        ("2020-02-21T07:00:54.1234567891-00:00", None),
        ("2020-02-21T07:00:54.123456789-01:30", "2020-02-21T08:30:54.123456"),
        ("2020-02-21 07:00:54", None),
        ("2020-02-21", None),
    ],
)
def test_accepted_forms(text: str, canon: str | None) -> None:
    assert canonical(text) == canon


def test_parse_gives_aware_utc() -> None:
    assert parse_instant("2020-01-01T08:00:00+08:00") == datetime(2020, 1, 1, tzinfo=UTC)
