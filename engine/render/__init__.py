"""Phase: result -> bytes for people and programs, through one writer table.

Every output, a query's :class:`~engine.backends.base.Result` and an
analysis alike, is an :class:`Output` and is written by the writer of its
format in :data:`WRITERS` (:data:`FORMATS` is its keys, in order): ``json``
(the API response ``{"count","backups","offset","limit"}`` with records as
dumped; an analysis' ``{"at", "rows"}``), ``ndjson`` (one record, or one row
with ``at``, per line), ``csv`` and ``tsv`` (the typed columns, nested values
as JSON text and times in the API's form), ``parquet`` (the typed columns)
and ``table`` (readable, fitted to the terminal). A new format is one writer
here.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import IO, TYPE_CHECKING, ClassVar, Final, Protocol

import polars as pl

from engine.backends.base import Result, Streamed
from engine.instants import canonical_expr
from engine.render.fields import Fields
from engine.spec import ANALYSIS_AT_KEY, OUTPUT_FORMATS
from engine.store.layout import INTERNAL_COLUMNS, PAYLOAD

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

    from engine.analyses import Analysis

#: Table columns shown whole (ids), and the order columns go when the terminal is narrow.
WHOLE_COLUMNS: Final[tuple[str, ...]] = ("id", "vault_id", "resource_size", "created_at")
DROP_ORDER: Final[tuple[str, ...]] = (
    "resource_size",
    "resource_type",
    "vault_id",
    "created_at",
    "status",
    "name",
)
#: Rows of a table shown on a terminal (the rest are counted and named).
TERMINAL_ROWS: Final[int] = 50
#: Characters a table or the HTML report shows escaped, never raw (ranges of code points):
#: C0 controls, DEL and C1 controls (ESC and CSI start the sequences that clear a screen or
#: set a window title), and the bidirectional overrides and isolates (they reorder what a
#: terminal shows, so an id could pass for another).
CONTROL_RANGES: Final[tuple[tuple[int, int], ...]] = (
    (0x00, 0x1F),
    (0x7F, 0x9F),
    (0x202A, 0x202E),
    (0x2066, 0x2069),
)
#: The same characters as a regular expression (Python's and polars' syntax alike).
CONTROL_PATTERN: Final[str] = (
    "[" + "".join(f"\\u{low:04x}-\\u{high:04x}" for low, high in CONTROL_RANGES) + "]"
)
#: ``str.translate`` table of :func:`visible`: each character as the text of its escape.
_ESCAPES: Final[dict[int, str]] = {
    c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
    for low, high in CONTROL_RANGES
    for c in range(low, high + 1)
}
TABLE_COLUMNS: Final[tuple[str, ...]] = (
    "id",
    "name",
    "status",
    "resource_type",
    "resource_size",
    "created_at",
    "vault_id",
)


def visible(text: str) -> str:
    """``text`` with every control character (:data:`CONTROL_RANGES`) as visible escape text.

    What a table or a report shows of a string from a dump: an ESC cannot clear
    the reader's screen or retitle a window, a bidirectional override cannot
    reorder an id. Other characters (and backslashes) are kept as they are.

    Example: ``visible("a\\x1b[2Jb") == "a\\\\x1b[2Jb"``.
    """
    return text.translate(_ESCAPES)


def visible_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the control characters of its string columns escaped (:func:`visible`).

    Columnar: a column is rewritten only for the characters it holds (most hold none).

    Example: ``visible_columns(pl.DataFrame({"name": ["a\\x1b"]}))["name"][0] == "a\\\\x1b"``.
    """
    rewritten = []
    for name, dtype in frame.schema.items():
        if dtype != pl.String:
            continue
        found = frame[name].str.extract_all(CONTROL_PATTERN).explode().drop_nulls().unique()
        expr = pl.col(name)
        for character in sorted(found.to_list()):
            expr = expr.str.replace_all(character, _ESCAPES[ord(character)], literal=True)
        if found.len():
            rewritten.append(expr)
    return frame.with_columns(rewritten) if rewritten else frame


def columns_for(fmt: str, typed: Sequence[str], fields: Fields | None = None) -> list[str]:
    """The columns ``fmt`` renders from, given the inventory's ``typed`` columns.

    ``json`` and ``ndjson`` write the records as dumped, so a query for them
    reads only the payload of the page's rows; the other formats write the
    typed columns and never read the payload. With ``fields``, only the
    columns they name are read, whatever the format.

    Example: ``inv.query("limit=5", columns=columns_for("csv", inv.lazy().collect_schema()))``.
    """
    if fields is not None:
        return fields.top
    if fmt in ("json", "ndjson"):
        return ["id", PAYLOAD]
    return [c for c in typed if c not in INTERNAL_COLUMNS]


class Output(Protocol):
    """What every writer reads: the rows, and the texts only a kind of output knows.

    Example: ``write(QueryOutput(inv.query("limit=5")), "csv", sys.stdout.buffer)``.
    """

    @property
    def frame(self) -> pl.DataFrame:
        """The rows as typed columns (csv, tsv, parquet)."""
        ...

    def json_parts(self) -> Iterator[bytes]:
        """The whole output as one JSON document and a newline, in pieces."""
        ...

    def ndjson_parts(self) -> Iterator[bytes]:
        """One JSON line per record or row, each ending in a newline, some lines a piece."""
        ...

    def table_text(self, terminal: bool) -> str:
        """A readable table; ``terminal``: fitted to its width and capped in rows."""
        ...


@dataclass(frozen=True)
class QueryOutput:
    """A query's result as an :class:`Output`; ``columns``: the table's, if chosen.

    Example: ``b"".join(QueryOutput(inv.query("limit=5")).json_parts())``.
    """

    result: Result
    columns: tuple[str, ...] | None = None

    @property
    def frame(self) -> pl.DataFrame:
        """The page's typed columns."""
        return self.result.frame

    def json_parts(self) -> Iterator[bytes]:
        """The API response."""
        yield self.result.to_json().encode() + b"\n"

    def ndjson_parts(self) -> Iterator[bytes]:
        """One record per line, as dumped."""
        lines = pl.concat_str(pl.col(PAYLOAD), pl.lit("\n")).str.join()
        yield str(self.result.rows.select(lines).item()).encode()

    def table_text(self, terminal: bool) -> str:
        """The page's main (or chosen) columns and a count line."""
        width, rows = _terminal_size(terminal)
        return table(self.result, width=width, max_rows=rows, columns=self.columns)


@dataclass(frozen=True)
class AnalysisOutput:
    """An analysis (SPEC §5) as an :class:`Output`: its rows, and the ``at`` it used.

    Example: ``AnalysisOutput(inv.rpo()).ndjson_text()``.
    """

    #: Rows written as JSON text at a time: the text of one piece is what is held.
    PIECE_ROWS: ClassVar[int] = 50_000

    analysis: Analysis
    #: Where ``at`` came from, for the table's footer (``given``, ``default: ...``).
    at_origin: str = ""

    @property
    def frame(self) -> pl.DataFrame:
        """The analysis' rows."""
        return self.analysis.frame

    def json_parts(self) -> Iterator[bytes]:
        """``{"at", "rows"}`` as ``json.dumps(analysis.to_json())`` wrote it, written by columns."""
        yield f'{{"at": {self._at_json()}, "rows": ['.encode()
        for number, piece in enumerate(self._pieces(None, ", ")):
            yield (b", " if number else b"") + piece
        yield b"]}\n"

    def ndjson_parts(self) -> Iterator[bytes]:
        """A row per line, ``at`` first in each, written by columns (not row by row)."""
        frame = self.analysis.frame
        if frame.height == 0 or frame.width == 0:
            # No rows: one line holding only "at", so that every output states it (a
            # line without the row keys is no row; `jq 'select(.id)'` skips it).
            yield f'{{"{ANALYSIS_AT_KEY}": {self._at_json()}}}\n'.encode()
            return
        for piece in self._pieces((ANALYSIS_AT_KEY, self._at_json()), "\n"):
            yield piece + b"\n"

    def json_text(self) -> str:
        """:meth:`json_parts` as one text, without the final newline.

        Example: ``json.loads(AnalysisOutput(inv.rpo()).json_text())["rows"]``.
        """
        return b"".join(self.json_parts()).decode()[:-1]

    def ndjson_text(self) -> str:
        """:meth:`ndjson_parts` as one text.

        Example: ``AnalysisOutput(inv.rpo()).ndjson_text().splitlines()[0]``.
        """
        return b"".join(self.ndjson_parts()).decode()

    def _pieces(self, first: tuple[str, str] | None, separator: str) -> Iterator[bytes]:
        """The rows' JSON objects, :attr:`PIECE_ROWS` at a time, joined by ``separator``."""
        from engine.render.jsonrows import json_lines

        frame = self.analysis.frame
        for start in range(0, frame.height, self.PIECE_ROWS):
            lines = json_lines(frame.slice(start, self.PIECE_ROWS), first)
            yield str(lines.str.join(separator).item()).encode()

    def _at_json(self) -> str:
        return json.dumps(self.analysis.at_text(), ensure_ascii=False)

    def table_text(self, terminal: bool) -> str:
        """The rows fitted to the terminal, then a footer with the row count and ``at``."""
        return analysis_table(self.analysis, terminal=terminal, at_origin=self.at_origin)


def _terminal_size(terminal: bool) -> tuple[int | None, int | None]:
    """Width and rows of a table: the terminal's, or unbounded off a terminal."""
    if not terminal:
        return None, None
    return shutil.get_terminal_size((120, 24)).columns, TERMINAL_ROWS


def _write_json(output: Output, out: IO[bytes], terminal: bool) -> None:
    for part in output.json_parts():
        out.write(part)


def _write_ndjson(output: Output, out: IO[bytes], terminal: bool) -> None:
    for part in output.ndjson_parts():
        out.write(part)


def _write_separated(separator: str) -> Writer:
    # TSV: tabs between fields; a value holding a tab, newline or quote is quoted as in CSV.
    def write_rows(output: Output, out: IO[bytes], terminal: bool) -> None:
        out.write(_csv_bytes(flat(output.frame), separator, header=True))

    return write_rows


def _csv_bytes(frame: pl.DataFrame, separator: str, *, header: bool) -> bytes:
    """``frame`` as CSV bytes, made by polars (no Python string of it).

    Written to a buffer, then to the output by Python, so that a reader closing
    the pipe (``| head -1``) is Python's ``BrokenPipeError``, not polars' error.
    """
    buffer = io.BytesIO()
    frame.write_csv(buffer, separator=separator, include_header=header)
    return buffer.getvalue()


def _write_parquet(output: Output, out: IO[bytes], terminal: bool) -> None:
    buffer = io.BytesIO()
    output.frame.write_parquet(buffer)
    out.write(buffer.getvalue())


def _write_table(output: Output, out: IO[bytes], terminal: bool) -> None:
    out.write(output.table_text(terminal).encode())


#: Writes one output to a binary stream; ``terminal``: the stream is a terminal.
Writer = Callable[[Output, IO[bytes], bool], None]
#: Every output format and its writer, in the order help texts list them.
WRITERS: Final[dict[str, Writer]] = {
    "table": _write_table,
    "json": _write_json,
    "ndjson": _write_ndjson,
    "csv": _write_separated(","),
    "tsv": _write_separated("\t"),
    "parquet": _write_parquet,
}
FORMATS: Final[tuple[str, ...]] = tuple(WRITERS)
if FORMATS != OUTPUT_FORMATS:  # a writer without its name in spec, or the reverse
    raise ImportError(f"render.WRITERS has {FORMATS}; spec.OUTPUT_FORMATS is {OUTPUT_FORMATS}")


def write(output: Output, fmt: str, out: IO[bytes], *, terminal: bool = False) -> None:
    """Write ``output`` to ``out`` in ``fmt`` (one of :data:`FORMATS`).

    Example: ``write(AnalysisOutput(inv.rpo()), "ndjson", sys.stdout.buffer)``.
    """
    writer = WRITERS.get(fmt)
    if writer is None:
        raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    writer(output, out, terminal)


def render(
    result: Result,
    fmt: str,
    out: IO[bytes],
    *,
    terminal: bool = False,
    fields: Fields | None = None,
) -> None:
    """Write ``result`` to ``out`` in ``fmt`` (one of :data:`FORMATS`).

    ``terminal``: ``out`` is a terminal, so a table is fitted to its width and
    capped at :data:`TERMINAL_ROWS` rows. ``fields``: only these fields,
    nested in JSON records, one column per path in the other formats.

    Example: ``render(inv.query("limit=5"), "ndjson", sys.stdout.buffer)``.
    """
    columns: tuple[str, ...] | None = None
    if fields is not None:
        if fmt in ("json", "ndjson"):
            result = _records_of(result, fields)
        else:
            # From the rows: a kept unknown key is read from the records' text.
            result = replace(result, rows=result.rows.select(fields.columns()))
            columns = tuple(result.rows.columns)
    write(QueryOutput(result, columns), fmt, out, terminal=terminal)


#: Rows a table written off a terminal holds at most: aligning columns needs every row
#: first, so a larger answer stops here with a notice (``-f tsv`` writes them all).
TABLE_CAP: Final[int] = 10_000


def render_stream(
    answer: Streamed, fmt: str, out: IO[bytes], *, fields: Fields | None = None
) -> None:
    """Write ``answer`` (not to a terminal) as its batches are read: memory of one batch.

    The bytes equal :func:`render`'s for json, ndjson, csv and tsv; parquet
    holds the same rows in row groups of a batch; a table stops at
    :data:`TABLE_CAP` rows with a notice.

    Example: ``render_stream(inv.stream(inv.parse("status=error")), "ndjson", sys.stdout.buffer)``.
    """
    if fmt not in WRITERS:
        raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if fmt == "table":
        _stream_table(answer, out, fields)
        return
    batches = (_cut(batch, fmt, fields) for batch in answer.batches)
    if fmt == "json":
        out.write(f'{{"count":{answer.count},"backups":['.encode())
        first = True
        for batch in batches:
            if batch.height:
                out.write(("" if first else ",").encode() + ",".join(batch[PAYLOAD]).encode())
                first = False
        limit = "null" if answer.limit is None else str(answer.limit)
        out.write(f'],"offset":{answer.offset},"limit":{limit}}}\n'.encode())
    elif fmt == "ndjson":
        for batch in batches:
            out.write("".join(text + "\n" for text in batch[PAYLOAD]).encode())
    elif fmt == "parquet":
        _stream_parquet(batches, out)
    else:
        separator = "," if fmt == "csv" else "\t"
        for number, batch in enumerate(batches):
            out.write(_csv_bytes(flat(batch), separator, header=number == 0))


def _cut(batch: pl.DataFrame, fmt: str, fields: Fields | None) -> pl.DataFrame:
    """A batch as :func:`render` shapes a page: records cut to ``fields``, or typed columns."""
    # With fields, from the whole batch: a kept unknown key is read from the records' text.
    if fmt in ("json", "ndjson"):
        if fields is None:
            return batch
        return pl.DataFrame({PAYLOAD: json_texts(batch.select(fields.records()))})
    return _typed(batch) if fields is None else batch.select(fields.columns())


def _typed(batch: pl.DataFrame) -> pl.DataFrame:
    return batch.drop([c for c in INTERNAL_COLUMNS if c in batch.columns])


def _stream_parquet(batches: Iterator[pl.DataFrame], out: IO[bytes]) -> None:
    import pyarrow.parquet as pq

    writer = None
    try:
        for batch in batches:
            table = batch.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def _stream_table(answer: Streamed, out: IO[bytes], fields: Fields | None) -> None:
    """The table of the first :data:`TABLE_CAP` rows, and a notice if there were more."""
    held: list[pl.DataFrame] = []
    rows = 0
    more = False
    for batch in answer.batches:
        if rows >= TABLE_CAP:
            more = more or batch.height > 0
            break
        held.append(batch.head(TABLE_CAP - rows))
        more = batch.height > TABLE_CAP - rows
        rows += held[-1].height
    page = Result(answer.count, answer.offset, answer.limit, pl.concat(held))
    render(page, "table", out, fields=fields)
    if more:
        out.write(
            f"stopped at {TABLE_CAP:,} rows: a table off a terminal aligns every row it "
            "holds; -f tsv (or csv, ndjson) writes them all as they are read\n".encode()
        )


def json_response(result: Result, fields: Fields | None = None) -> str:
    """The API response of ``result`` as JSON text, its records cut to ``fields`` if given.

    Example: ``json_response(inv.query("limit=2"), Fields.parse("id", schema))``.
    """
    return (result if fields is None else _records_of(result, fields)).to_json()


def _records_of(result: Result, fields: Fields) -> Result:
    """``result`` with each record replaced by the JSON of its chosen fields."""
    texts = json_texts(result.rows.select(fields.records()))
    return replace(result, rows=pl.DataFrame({PAYLOAD: texts}))


def json_texts(frame: pl.DataFrame) -> pl.Series:
    """Each row of ``frame`` as a JSON object (instants in the API's form, at any depth).

    Example: ``json_texts(page.select("id", "status"))[0]`` -> ``'{"id":"b1","status":"error"}'``.
    """
    row = pl.struct(
        [_instants_as_text(pl.col(c), dtype).alias(c) for c, dtype in frame.schema.items()]
    )
    return frame.select(row.struct.json_encode().alias(PAYLOAD)).to_series()


def flat(frame: pl.DataFrame) -> pl.DataFrame:
    """Typed columns made flat: instants in the API's form, nested values as JSON text.

    Nested values are written by polars (compact JSON, keys in schema order),
    with the instants inside them put in the API's form first: no value goes
    through Python.

    Example: ``flat(result.frame).write_csv("page.csv")``.
    """
    columns: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            columns.append(canonical_expr(pl.col(name)).alias(name))
        elif isinstance(dtype, pl.Struct | pl.List):
            # json_encode takes a struct: wrap the value as {"v": ...} and unwrap the text.
            wrapped = pl.struct(_instants_as_text(pl.col(name), dtype).alias("v"))
            text = wrapped.struct.json_encode().str.slice(len('{"v":')).str.strip_suffix("}")
            columns.append(pl.when(pl.col(name).is_not_null()).then(text).alias(name))
        else:
            columns.append(pl.col(name))
    return frame.select(columns)


def _instants_as_text(expr: pl.Expr, dtype: PolarsDataType) -> pl.Expr:
    """``expr`` with every instant inside it (at any depth) as text in the API's form."""
    if not _holds_instants(dtype):
        return expr
    if isinstance(dtype, pl.Datetime):
        return canonical_expr(expr)
    if isinstance(dtype, pl.List):
        return expr.list.eval(_instants_as_text(pl.element(), dtype.inner))
    assert isinstance(dtype, pl.Struct)
    # Only the fields holding instants are rewritten (a null struct stays null): a third of
    # the time of rebuilding every field, for the children of 80k backups (2026-12-07).
    return expr.struct.with_fields(
        _instants_as_text(pl.field(f.name), f.dtype).alias(f.name)
        for f in dtype.fields
        if _holds_instants(f.dtype)
    )


def _holds_instants(dtype: PolarsDataType) -> bool:
    if isinstance(dtype, pl.Datetime):
        return True
    if isinstance(dtype, pl.Struct):
        return any(_holds_instants(f.dtype) for f in dtype.fields)
    if isinstance(dtype, pl.List):
        return _holds_instants(dtype.inner)
    return False


def table(
    result: Result,
    width: int | None = None,
    max_rows: int | None = None,
    columns: Sequence[str] | None = None,
) -> str:
    """A readable table of the page's main columns and a count line.

    ``width``: the terminal's columns; ``None`` (not a terminal) makes the
    table as wide as its contents, so nothing is folded. Ids are never cut;
    when the width is short, other cells end in an ellipsis instead of being
    split across lines. ``max_rows`` shows at most that many rows and says
    how many were left out and how to see them. ``columns``: these columns
    (default: the main ones of :data:`TABLE_COLUMNS`).

    Example: ``print(table(inv.query("limit=10"), width=120, max_rows=50))``.
    """
    chosen = columns or [c for c in TABLE_COLUMNS if c in result.frame.columns]
    view = result.frame.select(chosen)
    footer = f"count {result.count}; showing {result.rows.height} from offset {result.offset}"
    return frame_table(view, footer, width=width, max_rows=max_rows)


def frame_table(
    frame: pl.DataFrame,
    footer: str = "",
    *,
    width: int | None = None,
    max_rows: int | None = None,
    whole: tuple[str, ...] = WHOLE_COLUMNS,
    drop_order: tuple[str, ...] = DROP_ORDER,
) -> str:
    """Any frame as a readable table, then ``footer``: what :func:`table` draws a page with.

    Columns named in ``whole`` are never cut; when ``width`` is short the
    columns of ``drop_order`` go first, then the others from the right.

    Example: ``print(frame_table(inv.lazy().head(5).collect(), "5 backups", width=100))``.
    """
    # Strings from a dump are shown, never obeyed: control characters escaped, and every
    # cell a rich Text (a name like "[/]" or ":smile:" is not markup or an emoji code).
    view = visible_columns(flat(_zoned(frame)))
    hidden = 0
    if max_rows is not None and view.height > max_rows:
        hidden = view.height - max_rows
        view = view.head(max_rows)
    least = {c: _least_width(c, view[c], whole=c in whole) for c in view.columns}
    dropped = _drop_to_fit(view, least, width, drop_order)
    view = view.select(list(least))
    most = _share_spare(view, least, width)
    return _draw(view, least, most, whole, width, _notes(footer, dropped, hidden))


def _zoned(frame: pl.DataFrame) -> pl.DataFrame:
    """Instant columns as text in the API's form with their zone: a table is read by people.

    Example: ``_zoned(frame)["created_at"][0]`` -> ``"2026-11-01T06:00:00.000000Z"``.
    """
    instants = [n for n, t in frame.schema.items() if isinstance(t, pl.Datetime)]
    return frame.with_columns(canonical_expr(pl.col(n)) + "Z" for n in instants)


def _drop_to_fit(
    view: pl.DataFrame, least: dict[str, int], width: int | None, drop_order: tuple[str, ...]
) -> list[str]:
    """Delete columns from ``least`` until the table fits ``width``; return those deleted.

    A narrow terminal loses whole columns, least useful first, rather than
    squeezing them to nothing; ids are shown whole or not at all. One column always stays.
    Example: ``_drop_to_fit(view, {"id": 36, "name": 10}, 40, ("name",))`` -> ``["name"]``.
    """
    dropped = []
    order = [c for c in drop_order if c in least]
    order += [c for c in reversed(view.columns) if c not in order][:-1]
    for column in order:
        if width is None or sum(w + 3 for w in least.values()) + 1 <= width:
            break
        if len(least) > 1:
            del least[column]
            dropped.append(column)
    return dropped


def _share_spare(view: pl.DataFrame, least: dict[str, int], width: int | None) -> dict[str, int]:
    """Each column's widest: its least, plus what ``width`` leaves over, shared from the left.

    Example: ``_share_spare(view, {"name": 4}, 20)`` -> ``{"name": 12}`` for 12-wide names.
    """
    most = dict(least)
    if width is not None:  # share what is left over among the columns that can shorten
        spare = width - (sum(w + 3 for w in least.values()) + 1)
        for column in view.columns:
            longest = _least_width(column, view[column], whole=True)
            extra = max(0, min(longest - least[column], spare))
            most[column] += extra
            spare -= extra
    return most


def _notes(footer: str, dropped: list[str], hidden: int) -> list[str]:
    """The lines under a table: ``footer``, then what was left out and where to see it.

    Example: ``_notes("5 backups", [], 0)`` -> ``["5 backups"]``.
    """
    lines = [footer] if footer else []
    if dropped:
        lines.append(f"(too narrow for {', '.join(dropped)}: see them with -f json or -f csv)")
    if hidden:
        lines.append(
            f"{hidden} more rows not shown here; see them all with -f json, -f csv or -o FILE"
        )
    return lines


def _draw(
    view: pl.DataFrame,
    least: dict[str, int],
    most: dict[str, int],
    whole: tuple[str, ...],
    width: int | None,
    lines: list[str],
) -> str:
    """``view`` drawn by rich with the column widths given, then ``lines`` below it.

    Example: ``_draw(view, least, least, ("id",), None, ["5 backups"])``.
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    grid = Table(show_lines=False, header_style="bold")
    for column in view.columns:
        header = Text(visible(column))
        if column in whole:  # what people copy: never cut, never folded
            grid.add_column(header, no_wrap=True, min_width=least[column])
        else:
            grid.add_column(
                header,
                no_wrap=True,
                overflow="ellipsis",
                min_width=least[column],
                max_width=most[column] if width is not None else None,
            )
    for row in view.iter_rows():
        grid.add_row(*(Text("" if v is None else str(v)) for v in row))
    console = Console(file=io.StringIO(), width=width or 100_000, force_terminal=False)
    console.print(grid)
    for line in lines:
        console.print(Text(visible(line)))
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def _least_width(column: str, values: pl.Series, whole: bool = False) -> int:
    """The narrowest a table column may be: whole for ids and times, a readable start else.

    ``whole``: the width of its longest value instead.
    """
    longest = max([len(column), *(len(str(v)) for v in values.drop_nulls())])
    if whole:
        return longest
    return min(longest, max(len(column), 9))


#: Columns of each analysis' table that are never cut (ids people copy).
ANALYSIS_WHOLE: Final[dict[str, tuple[str, ...]]] = {
    "stats": ("vault_id", "project_id", "first", "last"),
    "rpo": ("resource_id", "vault_id", "last_good"),
    "retention": ("id", "created_at", "expired_at"),
    "capacity": ("id",),
    "hygiene": ("id", "updated_at"),
    "diff": ("id",),
}
#: Columns of each analysis' table that go first when a terminal is too narrow.
ANALYSIS_DROP_ORDER: Final[dict[str, tuple[str, ...]]] = {
    "rpo": ("resource_type", "vault_id", "last_good", "resource_name"),
    "retention": ("updated_at", "resource_id", "status", "name"),
    "hygiene": ("expired_at", "resource_id", "created_at", "name"),
    "capacity": ("resources", "size_gb", "used_mb"),
}


def readable_changes(text: str) -> str:
    """A diff row's ``changes`` (JSON text) as a person reads it: ``field: old → new``.

    Example: ``readable_changes('{"status": ["protecting", "error"]}')`` ->
    ``'status: protecting → error'``.
    """

    def shown(value: object) -> str:
        if isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    pairs = json.loads(text).items()
    return "; ".join(f"{field}: {shown(old)} → {shown(new)}" for field, (old, new) in pairs)


def analysis_table(analysis: Analysis, *, terminal: bool = False, at_origin: str = "") -> str:
    """The rows as a table fitted to the terminal, then a footer stating the row count and ``at``.

    ``at`` carries its zone (``Z``) and, after it, ``at_origin`` in brackets
    (where it came from). ``diff`` shows its counts per kind and change first.

    Example: ``print(analysis_table(inv.capacity(), at_origin="given"))``.
    """
    width, rows = _terminal_size(terminal)
    at_text = analysis.at_text()
    at = "none (the inventory has no updated_at)" if at_text is None else f"{at_text}Z"
    if at_text is not None and at_origin:
        at += f" ({at_origin})"
    footer = f"{analysis.frame.height} rows; at {at}"
    text = ""
    if analysis.name == "diff" and {"kind", "change"} <= set(analysis.frame.columns):
        counts = analysis.frame.group_by("kind", "change", maintain_order=True).agg(
            pl.len().alias("count")
        )
        text = frame_table(counts, width=width, whole=("kind", "change")) + "\n"
    frame = analysis.frame
    if analysis.name == "diff" and frame.schema.get("changes") == pl.String:
        shown = [None if t is None else readable_changes(t) for t in frame["changes"].to_list()]
        frame = frame.with_columns(pl.Series("changes", shown, pl.String))
    return text + frame_table(
        frame,
        footer,
        width=width,
        max_rows=rows,
        whole=ANALYSIS_WHOLE.get(analysis.name, ()),
        drop_order=ANALYSIS_DROP_ORDER.get(analysis.name, ()),
    )
