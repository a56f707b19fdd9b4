"""Phase: result -> bytes for people and programs.

``json`` is the API response ``{"count","backups","offset","limit"}`` with
records as dumped; ``ndjson`` one record per line; ``csv`` the typed columns,
nested values as JSON text and times in the API's form; ``parquet`` the typed
columns; ``table`` a readable table fitted to the terminal.
"""

from __future__ import annotations

import io
import json
import shutil
from datetime import datetime
from typing import IO, Final

import polars as pl

from engine.execute import Result
from engine.instants import canonical_expr, format_instant
from engine.manifest import PAYLOAD

FORMATS: Final[tuple[str, ...]] = ("table", "json", "ndjson", "csv", "parquet")
TABLE_COLUMNS: Final[tuple[str, ...]] = (
    "id",
    "name",
    "status",
    "resource_type",
    "resource_size",
    "created_at",
    "vault_id",
)


def columns_for(fmt: str) -> list[str] | None:
    """The columns ``fmt`` renders from (``None``: every column).

    ``json`` and ``ndjson`` write the records as dumped, so a query for them
    reads only the payload of the page's rows.

    Example: ``inv.query("limit=5", columns=columns_for("json"))``.
    """
    return ["id", PAYLOAD] if fmt in ("json", "ndjson") else None


def render(result: Result, fmt: str, out: IO[bytes]) -> None:
    """Write ``result`` to ``out`` in ``fmt`` (one of :data:`FORMATS`).

    Example: ``render(inv.query("limit=5"), "ndjson", sys.stdout.buffer)``.
    """
    if fmt == "json":
        out.write(result.to_json().encode() + b"\n")
    elif fmt == "ndjson":
        out.write("".join(p + "\n" for p in result.payloads).encode())
    elif fmt == "csv":
        out.write(flat(result.frame).write_csv().encode())
    elif fmt == "parquet":
        buffer = io.BytesIO()
        result.frame.write_parquet(buffer)
        out.write(buffer.getvalue())
    elif fmt == "table":
        out.write(table(result).encode())
    else:
        raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return format_instant(value)
    raise TypeError(type(value).__name__)


def flat(frame: pl.DataFrame) -> pl.DataFrame:
    """Typed columns made flat: instants in the API's form, nested values as JSON text.

    Example: ``flat(result.frame).write_csv("page.csv")``.
    """
    columns: list[pl.Series | pl.Expr] = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            columns.append(canonical_expr(pl.col(name)).alias(name))
        elif isinstance(dtype, pl.Struct | pl.List):
            values = [
                None if v is None else json.dumps(v, default=_json_default, ensure_ascii=False)
                for v in frame[name].to_list()
            ]
            columns.append(pl.Series(name, values, pl.String))
        else:
            columns.append(pl.col(name))
    return frame.select(columns)


def table(result: Result, width: int | None = None) -> str:
    """A readable table of the page's main columns and a count line, fitted to the terminal.

    Example: ``print(table(inv.query("limit=10")))``.
    """
    from rich.console import Console
    from rich.table import Table

    view = flat(result.frame.select([c for c in TABLE_COLUMNS if c in result.frame.columns]))
    grid = Table(show_lines=False, header_style="bold")
    for column in view.columns:
        # ids and times are what people copy: never fold them; shorten vault ids first.
        if column == "vault_id":
            grid.add_column(column, no_wrap=True, overflow="ellipsis", max_width=13)
        else:
            grid.add_column(column, no_wrap=column in ("id", "created_at"), overflow="fold")
    for row in view.iter_rows():
        grid.add_row(*("" if v is None else str(v) for v in row))
    width = width or shutil.get_terminal_size((120, 24)).columns
    console = Console(file=io.StringIO(), width=width, force_terminal=False)
    console.print(grid)
    shown = result.rows.height
    console.print(f"count {result.count}; showing {shown} from offset {result.offset}")
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()
