"""The timestamp grammar of CBR dumps, in one place.

Dumps mix ``2020-02-21T07:00:54.065135`` (no zone, microseconds) with
``2020-02-21T07:00:54.065+00:00`` (milliseconds, offset) for the same kind of
field. SPEC §1 accepts a zone-less form (meaning UTC), ``Z`` or any
``±HH:MM`` offset, with 0 to 9 fraction digits, and stores UTC instants at
microsecond precision. Decisions: digits past the sixth are truncated, not
rounded (the API never sends them; truncation never moves an instant across
a second); leap seconds (``:60``) are invalid; instants outside years
1..9999 after applying the offset are invalid.

This module gives the grammar for the two sizes of work, with the same
answers: :func:`parse_instant` for one value (query parameters, error
reports) and :func:`instant_array` for a whole Arrow column (ingest; the
native core, ``native/src/instants.rs``, parses it with the GIL released).

cbrq's own options (``--at``, ``--as-of``, ``--to``, ``--taken-at``,
``--since``, ``--until``) take more, as people write time: :func:`parse_moment`
adds ``now``, ``today``, ``yesterday``, a date (midnight UTC) and relative
forms (``-7d``, ``now-24h``, ``today-1w``) to every form above, and
:func:`parse_span` reads durations (``90m``, ``24h``, ``7d``, ``2w``). Query
parameters (``start_time``, ``end_time``) keep the API's grammar: they call
:func:`parse_instant` only.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, cast

from engine.spec import CANONICAL_TIMESTAMP_FORMAT, DURATION_UNITS

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa
    from typing_extensions import Buffer

PATTERN: Final[str] = (
    r"^(?P<base>[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9])"
    r"(?:\.(?P<frac>[0-9]{1,9}))?"
    r"(?P<zone>Z|[+-][0-9]{2}:[0-5][0-9])?$"
)
_RE: Final = re.compile(PATTERN)
MIN_INSTANT: Final[datetime] = datetime(1, 1, 1, tzinfo=UTC)
MAX_INSTANT: Final[datetime] = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
ALLOWED: Final[str] = (
    "YYYY-MM-DDTHH:MM:SS with an optional .fraction (1-9 digits) and an "
    "optional zone (Z or ±HH:MM; none means UTC)"
)


def parse_instant(text: str) -> datetime | None:
    """Parse one timestamp into an aware UTC datetime, or ``None`` if invalid.

    Example::

        >>> parse_instant("2020-02-21T15:00:54.065+08:00")
        datetime.datetime(2020, 2, 21, 7, 0, 54, 65000, tzinfo=datetime.timezone.utc)
    """
    # fullmatch: Python's ``$`` also matches before a final newline, Rust's
    # (polars) does not; requiring the whole string makes both read one grammar.
    match = _RE.fullmatch(text)
    if match is None:
        return None
    b = match["base"]
    try:  # the fields by position (the regex fixed them): a fifth of strptime's cost
        base = datetime(
            int(b[0:4]), int(b[5:7]), int(b[8:10]), int(b[11:13]), int(b[14:16]), int(b[17:19])
        )
    except ValueError:  # no such day (02-30), or year 0
        return None
    micros = int((match["frac"] or "").ljust(9, "0")[:6])
    offset = _offset_minutes(match["zone"])
    try:
        instant = base.replace(tzinfo=UTC) + timedelta(microseconds=micros, minutes=-offset)
    except OverflowError:
        return None
    return instant


def _offset_minutes(zone: str | None) -> int:
    if zone is None or zone == "Z":
        return 0
    sign = -1 if zone[0] == "-" else 1
    return sign * (int(zone[1:3]) * 60 + int(zone[4:6]))


def format_instant(instant: datetime) -> str:
    """Render an instant in the API's form ``YYYY-MM-DDTHH:MM:SS.ffffff`` (UTC, no zone).

    Example::

        >>> format_instant(parse_instant("2020-02-21T07:00:54Z"))
        '2020-02-21T07:00:54.000000'
    """
    t = instant.astimezone(UTC)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T"
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}"
    )


def canonical(text: str) -> str | None:
    """The canonical form of a timestamp string, or ``None`` if it does not parse.

    Example::

        >>> canonical("2020-02-21T07:00:54.065+00:00")
        '2020-02-21T07:00:54.065000'
    """
    instant = parse_instant(text)
    return None if instant is None else format_instant(instant)


def instant_array(array: pa.Array[Any]) -> pa.Array[Any]:
    """An Arrow string column parsed into ``timestamp('us', 'UTC')`` by the native core.

    Invalid strings become null (callers compare null counts to find them).
    Same answers as :func:`parse_instant`, value for value.

    Example::

        >>> import pyarrow as pa
        >>> parsed = instant_array(pa.array(["2020-02-21T15:00:54.065+08:00", "no", None]))
        >>> parsed.type, parsed.cast(pa.int64()).to_pylist()
        (TimestampType(timestamp[us, tz=UTC]), [1582268454065000, None, None])
    """
    import pyarrow as pa

    from engine import _native

    kind = pa.timestamp("us", tz="UTC")
    if len(array) == 0:
        return pa.array([], type=kind)
    large = array.cast(pa.large_string())
    validity, offsets, data = large.buffers()
    assert offsets is not None  # a non-empty string column has offsets

    def view(buffer: pa.Buffer | None) -> memoryview | None:
        # pyarrow exports its buffers as signed bytes ("b"); the core reads unsigned ones.
        return None if buffer is None else memoryview(cast("Buffer", buffer)).cast("B")

    values, bitmap, nulls = _native.instants(
        view(data) or memoryview(b""), view(offsets) or memoryview(b""), view(validity),
        large.offset, len(large),
    )  # fmt: skip
    buffers: list[pa.Buffer | None] = [pa.py_buffer(bitmap), pa.py_buffer(values)]
    return pa.Array.from_buffers(kind, len(large), buffers, null_count=nulls)


def canonical_expr(instant: pl.Expr) -> pl.Expr:
    """A polars expression rendering a UTC instant column in the API's form.

    Example: ``df.select(canonical_expr(pl.col("created_at")))``.
    """
    return instant.dt.convert_time_zone("UTC").dt.strftime(CANONICAL_TIMESTAMP_FORMAT)


# --- cbrq's own options: time as people write it ---------------------------------

_SPAN: Final = re.compile(r"([0-9]{1,9})([" + "".join(DURATION_UNITS) + "])")
#: What :func:`parse_span` accepts, in words (error messages and help).
SPAN_ALLOWED: Final[str] = (
    "a whole number and a unit: m (minutes), h (hours), d (days), w (weeks), e.g. 90m, 24h, 7d, 2w"
)
_DATE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_RELATIVE: Final = re.compile(
    r"(?P<anchor>now|today|yesterday)?(?:(?P<sign>[+-])(?P<span>[0-9]{1,9}[a-z]))?"
)
#: What :func:`parse_moment` accepts, in words (error messages and help).
MOMENT_ALLOWED: Final[str] = (
    "now, today or yesterday (midnight UTC), a date YYYY-MM-DD (midnight UTC), "
    "a time relative to now such as -7d, now-24h or today-1w (units m, h, d, w), "
    f"or a timestamp: {ALLOWED}"
)


def parse_span(text: str) -> timedelta | None:
    """A duration written ``90m``, ``24h``, ``7d`` or ``2w``, or ``None`` if it is not one.

    One past :class:`~datetime.timedelta`'s range (``999999999w``) is
    ``timedelta.max``: too long for any use, and callers say so.

    Example::

        >>> parse_span("2w")
        datetime.timedelta(days=14)
    """
    match = _SPAN.fullmatch(text.strip())
    if match is None:
        return None
    try:
        return timedelta(**{DURATION_UNITS[match[2]]: int(match[1])})  # at most 9 digits
    except OverflowError:
        return timedelta.max


def parse_moment(text: str, now: datetime | None = None) -> datetime | None:
    """An instant as cbrq's own options take it, aware UTC, or ``None`` if invalid.

    Every :func:`parse_instant` form, and ``now``, ``today`` (midnight UTC),
    ``yesterday``, a date ``YYYY-MM-DD`` (midnight UTC), and those words with
    a span added or taken away (``now-24h``, ``today-1w``; ``-7d`` alone
    counts from now). Words are read in any case. ``now``: the clock's
    instant, by default ``datetime.now(UTC)``.

    Example::

        >>> parse_moment("2026-11-01")
        datetime.datetime(2026, 11, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    stripped = text.strip()
    exact = parse_instant(stripped)
    if exact is not None:
        return exact
    date = _DATE.fullmatch(stripped)
    if date is not None:
        return _midnight(int(date[1]), int(date[2]), int(date[3]))
    return _relative(stripped.lower(), now or datetime.now(UTC))


def _midnight(year: int, month: int, day: int) -> datetime | None:
    """Midnight UTC of a calendar day, or ``None`` for no such day (02-30, year 0)."""
    try:
        return datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None


def _relative(text: str, now: datetime) -> datetime | None:
    """``now``/``today``/``yesterday``, with an optional ``±span``: ``None`` if not that form."""
    match = _RELATIVE.fullmatch(text)
    if match is None or not (match["anchor"] or match["span"]):
        return None
    now = now.astimezone(UTC)
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    base = {"today": today, "yesterday": today - timedelta(days=1)}.get(match["anchor"], now)
    if match["span"] is None:
        return base
    span = parse_span(match["span"])
    if span is None:
        return None
    try:
        moved = base + span if match["sign"] == "+" else base - span
    except OverflowError:  # past year 1 or 9999
        return None
    return moved if MIN_INSTANT <= moved <= MAX_INSTANT else None
