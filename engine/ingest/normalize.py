"""Phase 2: raw pages -> typed columns.

Takes the :class:`~engine.ingest.forms.Chunk` objects of one record kind and turns
them, column-wise, into one polars DataFrame in the stored schema of
:mod:`engine.store.schema`: the JSON text of all records is handed to Arrow's
multi-threaded JSON reader in one buffer, timestamps at any depth are parsed
as whole Arrow columns by the native core (:func:`engine.instants.instant_array`),
unknown keys are found by the native core's walk over the records, and the
record text itself is kept as ``_payload`` as dumped (compact), over the
buffer the native reader made; :mod:`engine.payload` puts its timestamps into
the API's form when records are output.

No Python code runs per record on the way. Only when the fast path finds a
problem does :func:`check_record` look at records one by one, to name the
record, field and value in the message (or, with ``lenient``, to set the bad
ones aside while the good ones go on).
"""

from __future__ import annotations

import io
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from engine import _native
from engine.errors import InputError, Location, RecordError
from engine.ingest.forms import Chunk, Records
from engine.instants import ALLOWED, instant_array, parse_instant
from engine.store.schema import (
    FIELDS,
    INSTANT,
    PAYLOAD,
    REQUIRED,
    ROW,
    SEQ,
    known_keys,
    read_schema,
)

BLOCK_SIZE: Final[int] = 4 << 20
_LARGEST_FLOAT: Final[float] = sys.float_info.max
KNOWN_KEYS: Final[frozenset[str]] = known_keys()
_KNOWN_LIST: Final[list[str]] = sorted(KNOWN_KEYS)


@dataclass(frozen=True)
class Rejected:
    """A record (or a whole response) set aside by ``--lenient``, with its reason.

    Example: ``Rejected(Location("a.json", "record 3"), "field 'id' ...", b'{...}')``.
    """

    location: Location
    reason: str
    record: bytes | None = None
    #: The error a strict ingest raises for it.
    error: InputError | None = None


@dataclass
class Normalized:
    """The typed frame of one record kind, plus what was set aside or noticed.

    Example: ``normalize("backups", pairs).frame.height``.
    """

    frame: pl.DataFrame
    rejected: list[Rejected] = field(default_factory=list)
    unknown_keys: set[str] = field(default_factory=set)
    #: Where the unknown keys sit: each one's path of keys from the record, and the
    #: paths of the keys under it (``("fail_code",)``, ``("fail_code", "Code")``).
    unknown_paths: set[tuple[str, ...]] = field(default_factory=set)


def empty_frame(kind: str) -> pl.DataFrame:
    """An empty frame in the stored schema of ``kind``.

    Example: ``empty_frame("vaults").columns[-3:] == ["_payload", "_seq", "_row"]``.
    """
    frame = pl.from_arrow(FIELDS[kind].empty_table())
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(
        pl.lit(None, pl.String).alias(PAYLOAD),
        pl.lit(None, pl.Int64).alias(SEQ),
        pl.lit(None, pl.Int64).alias(ROW),
    ).clear()


def normalize(
    kind: str,
    chunks: Sequence[tuple[int, Chunk]],
    *,
    lenient: bool = False,
    each_file: bool = False,
) -> Normalized:
    """Type the records of ``chunks`` (pairs of file ordinal and chunk) column-wise.

    Strict mode raises :class:`~engine.errors.RecordError` (or ``InputError``)
    for the first bad record in input order; lenient mode returns the bad
    ones in ``rejected`` and types the rest. ``each_file`` (strict, going on to
    name every bad file): the first bad record of each file is returned in
    ``rejected`` instead of raised, the rest of that file is not looked at.

    Example::

        pairs = [(0, chunk) for chunk in split_source(read_source(ref))]
        frame = normalize("backups", pairs).frame
    """
    chunks = [(seq, c) for seq, c in chunks if c.records]
    if not chunks:
        return Normalized(empty_frame(kind))
    records = Records.concat([c.records for _, c in chunks])
    try:
        frame = _fast(kind, chunks, records)
    except pa.ArrowInvalid as err:
        return _slow(kind, chunks, _Aside(lenient, each_file), str(err))
    except _Unparsed:
        return _slow(kind, chunks, _Aside(lenient, each_file), "a field failed to parse")
    names, paths = _native.unknown_keys(records.text, _KNOWN_LIST)
    return Normalized(frame, unknown_keys=set(names), unknown_paths={tuple(p) for p in paths})


class _Unparsed(Exception):
    """A timestamp failed to parse or a required field is missing: find which, slowly."""


def _fast(kind: str, chunks: Sequence[tuple[int, Chunk]], records: Records) -> pl.DataFrame:
    payload = _texts(records)
    if not _all_objects(payload):
        # Arrow's JSON reader must only ever see objects: a line `null` crashes
        # pyarrow 26 (SIGSEGV) and `{..}\nnull` reads as an extra empty row.
        raise pa.ArrowInvalid("a record is not a JSON object")
    table = _read_json(records.lines(), kind)
    if table.num_rows != len(records):
        raise pa.ArrowInvalid(f"{table.num_rows} rows read from {len(records)} records")
    frame = pl.from_arrow(_typed(table, kind))
    assert isinstance(frame, pl.DataFrame)
    lengths = np.array([len(c.records) for _, c in chunks], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    firsts = np.array([c.first_row for _, c in chunks], dtype=np.int64)
    rows = np.arange(len(records), dtype=np.int64) - np.repeat(starts - firsts, lengths)
    seqs = np.repeat(np.array([seq for seq, _ in chunks], dtype=np.int64), lengths)
    return frame.with_columns(
        pl.Series(PAYLOAD, payload, pl.String),
        pl.Series(SEQ, seqs),
        pl.Series(ROW, rows),
    )


def _read_json(text: bytes, kind: str) -> pa.Table:
    parse = pj.ParseOptions(explicit_schema=read_schema(kind), unexpected_field_behavior="ignore")
    # Several blocks per batch, so that every core has one to parse.
    block = min(BLOCK_SIZE, max(1 << 20, len(text) // 8))
    while True:
        try:
            return pj.read_json(
                io.BytesIO(text),
                read_options=pj.ReadOptions(block_size=block),
                parse_options=parse,
            )
        except pa.ArrowInvalid as err:
            # A record longer than a block cannot be split; read in one block.
            if "straddl" not in str(err) or block > len(text):
                raise
            block = len(text) + 1


def _texts(records: Records) -> pa.Array[Any]:
    """The records' JSON text as one string column, over their buffer (no copy)."""
    offsets = records.offsets - records.offsets[0]
    return pa.LargeStringArray.from_buffers(
        len(records), pa.py_buffer(offsets.astype("<i8").tobytes()), pa.py_buffer(records.text)
    )


def _all_objects(payload: pa.Array[Any]) -> bool:
    """Whether every record's text starts with ``{`` (records carry no leading blanks)."""
    return bool(pc.all(pc.starts_with(payload, "{")).as_py())


# --- typing columns -----------------------------------------------------------


def _typed(table: pa.Table, kind: str) -> pa.Table:
    """Parse every timestamp, at any depth, into an instant (natively, column by column).

    Raises :class:`_Unparsed` where a timestamp did not parse (the parsed
    column has more nulls than the text it came from) or a required field is
    null or empty.
    """
    columns: list[pa.ChunkedArray[Any]] = []
    for f in FIELDS[kind]:
        column = table.column(f.name)
        if _has_instant(f.type):
            parts = [_parsed(chunk, f.type) for chunk in column.chunks]
            if any(bad for _, bad in parts):
                raise _Unparsed(f.name)
            column = pa.chunked_array([part for part, _ in parts], type=f.type)
        columns.append(column)
    for name in REQUIRED[kind]:
        column = table.column(name)
        if column.null_count or pc.any(pc.equal(column, pa.scalar(""))).as_py():
            raise _Unparsed(name)
    return pa.Table.from_arrays(columns, schema=FIELDS[kind])


def _has_instant(dtype: pa.DataType) -> bool:
    if dtype == INSTANT:
        return True
    if isinstance(dtype, pa.StructType):
        return any(_has_instant(f.type) for f in dtype.fields)
    if isinstance(dtype, pa.ListType):
        return _has_instant(dtype.value_type)
    return False


def _parsed(array: pa.Array[Any], dtype: pa.DataType) -> tuple[pa.Array[Any], bool]:
    """``array`` (as the JSON reader typed it) in ``dtype``, every timestamp inside
    parsed; and whether any failed to parse."""
    if not _has_instant(dtype):
        return array, False
    if dtype == INSTANT:
        parsed = instant_array(array)
        return parsed, parsed.null_count != array.null_count
    mask = array.is_null() if array.null_count else None
    if isinstance(dtype, pa.StructType):
        assert isinstance(array, pa.StructArray)
        parts = [_parsed(array.field(i), f.type) for i, f in enumerate(dtype.fields)]
        children = [part for part, _ in parts]
        rebuilt = pa.StructArray.from_arrays(children, fields=list(dtype.fields), mask=mask)
        return rebuilt, any(bad for _, bad in parts)
    assert isinstance(dtype, pa.ListType) and isinstance(array, pa.ListArray)
    offsets = array.offsets
    start, stop = offsets[0].as_py(), offsets[-1].as_py()
    values, bad = _parsed(array.values.slice(start, stop - start), dtype.value_type)
    rebased = pc.subtract(offsets, pa.scalar(start, offsets.type))
    return pa.ListArray.from_arrays(rebased, values, type=dtype, mask=mask), bad


# --- the slow path: one record at a time, only when something is wrong -------


class _Aside:
    """What the slow path does with a bad record: raise it, or keep it (each, or a file's first)."""

    def __init__(self, lenient: bool, each_file: bool) -> None:
        self.lenient, self.each_file = lenient, each_file
        self.rejected: list[Rejected] = []
        self.files: set[str] = set()  # each_file: the files whose first problem is found

    def skips(self, chunk: Chunk) -> bool:
        """Whether ``chunk``'s file needs no more looking at."""
        return chunk.source in self.files

    def take(self, problem: RecordError, raw: bytes, chunk: Chunk) -> None:
        """Raise ``problem`` (strict), or keep it."""
        if not self.lenient and not self.each_file:
            raise problem
        self.rejected.append(Rejected(problem.location, problem.reason, raw, problem))
        if self.each_file:
            self.files.add(chunk.source)


def _slow(
    kind: str, chunks: Sequence[tuple[int, Chunk]], aside: _Aside, fast_error: str
) -> Normalized:
    kept: list[tuple[int, Chunk]] = []
    for seq, chunk in chunks:
        good: list[int] = []
        for index, raw in enumerate(chunk.records):
            if aside.skips(chunk):
                break
            problem = check_record(kind, bytes(raw), chunk.locate(index))
            if problem is None:
                good.append(index)
            else:
                aside.take(problem, bytes(raw), chunk)
        if not aside.skips(chunk):
            kept.extend((seq, part) for part in _runs(chunk, good))
    if not aside.rejected:
        # The record checker found nothing: ask Arrow's reader record by record.
        kept = []
        for seq, chunk in chunks:
            refused = _refused(kind, chunk.records, 0, len(chunk.records))
            for index, reason in refused:
                if aside.skips(chunk):
                    break
                problem = RecordError(
                    chunk.locate(index),
                    "(record)",
                    bytes(chunk.records[index])[:60].decode(errors="replace"),
                    f"the JSON reader refuses it: {reason}",
                )
                aside.take(problem, bytes(chunk.records[index]), chunk)
            bad = {index for index, _ in refused}
            good = [i for i in range(len(chunk.records)) if i not in bad]
            kept.extend((seq, part) for part in _runs(chunk, good))
        if not aside.rejected:
            first = Location(chunks[0][1].source)
            raise InputError(first, f"records do not match the schema: {fast_error}")
    result = normalize(kind, kept, lenient=False) if kept else Normalized(empty_frame(kind))
    result.rejected = aside.rejected
    return result


def _refused(kind: str, records: Records, low: int, high: int) -> list[tuple[int, str]]:
    """The records in ``records[low:high]`` Arrow's reader refuses, with its reasons (halving)."""
    try:
        _read_json(records[low:high].lines(), kind)
    except pa.ArrowInvalid as err:
        if high - low == 1:
            return [(low, str(err).removeprefix("JSON parse error: "))]
        middle = (low + high) // 2
        return _refused(kind, records, low, middle) + _refused(kind, records, middle, high)
    return []


def _runs(chunk: Chunk, good: list[int]) -> list[Chunk]:
    """Cut the good records into runs of neighbours, so each keeps its row index."""
    runs: list[Chunk] = []
    start = 0
    for i in range(1, len(good) + 1):
        if i == len(good) or good[i] != good[i - 1] + 1:
            first = good[start]
            records = chunk.records[first : good[i - 1] + 1]
            runs.append(_sub(chunk, first, records))
            start = i
    return runs


def _sub(chunk: Chunk, start: int, records: Records) -> Chunk:
    return Chunk(chunk.kind, chunk.source, chunk.where, chunk.first_row + start, records)


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen[key] = value
    return seen


class _Duplicate(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _TooBig(ValueError):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _finite(text: str) -> float:
    """A JSON number with a fraction or exponent, refused past the range of a double."""
    value = float(text)
    if math.isinf(value):
        raise _TooBig(text)
    return value


def check_record(kind: str, raw: bytes, location: Location) -> RecordError | None:
    """Check one record against the typed schema; the problem, or ``None``.

    Example::

        check_record("backups", b'{"id": "a", "resource_size": "40GB"}', Location("f"))
        # -> RecordError: f: field 'resource_size' = "40GB": expected an integer
    """
    try:
        record = json.loads(raw, object_pairs_hook=_no_duplicates, parse_float=_finite)
    except _Duplicate as dup:
        return RecordError(location, dup.key, None, "the key appears twice in one object")
    except _TooBig as big:
        reason = "a number too large for a 64-bit float (the JSON reader refuses it)"
        return RecordError(location, "(record)", big.text, reason)
    except ValueError as err:
        return RecordError(
            location, "(record)", raw[:60].decode(errors="replace"), f"not valid JSON: {err}"
        )
    if not isinstance(record, dict):
        return RecordError(location, "(record)", record, "expected a JSON object")
    for name in REQUIRED[kind]:
        value = record.get(name)
        if not isinstance(value, str) or not value:
            return RecordError(location, name, value, "required, a non-empty string")
    return _check_struct(location, "", record, FIELDS[kind])


def _check_struct(
    location: Location, prefix: str, record: dict[str, object], fields: pa.Schema | pa.StructType
) -> RecordError | None:
    for f in fields:
        if f.name in record and record[f.name] is not None:
            problem = _check_value(location, prefix + f.name, record[f.name], f.type)
            if problem is not None:
                return problem
    return None


_SCALARS: Final[dict[pa.DataType, tuple[tuple[type, ...], str]]] = {
    pa.string(): ((str,), "expected a string"),
    pa.bool_(): ((bool,), "expected true or false"),
    pa.int64(): ((int,), "expected an integer"),
    pa.float64(): ((int, float), "expected a number"),
}


def _check_value(
    location: Location, path: str, value: object, dtype: pa.DataType
) -> RecordError | None:
    if dtype == INSTANT:
        if not isinstance(value, str) or parse_instant(value) is None:
            return RecordError(location, path, value, f"expected a timestamp, {ALLOWED}")
        return None
    if isinstance(dtype, pa.StructType):
        if not isinstance(value, dict):
            return RecordError(location, path, value, "expected an object")
        return _check_struct(location, path + ".", value, dtype)
    if isinstance(dtype, pa.ListType):
        if not isinstance(value, list):
            return RecordError(location, path, value, "expected a list")
        for i, item in enumerate(value):
            if item is not None:
                problem = _check_value(location, f"{path}[{i}]", item, dtype.value_type)
                if problem is not None:
                    return problem
        return None
    allowed, reason = _SCALARS[dtype]
    if isinstance(value, bool) and bool not in allowed:
        return RecordError(location, path, value, reason)
    if not isinstance(value, allowed):
        return RecordError(location, path, value, reason)
    if isinstance(value, int) and not isinstance(value, bool):
        if dtype == pa.int64() and abs(value) >= 2**63:
            return RecordError(location, path, value, "integer out of the 64-bit range")
        if dtype == pa.float64() and abs(value) > _LARGEST_FLOAT:
            return RecordError(location, path, value, "a number too large for a 64-bit float")
    return None
