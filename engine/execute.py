"""Phase: lazy plan -> result. The only module that collects a query.

Runs the plan of :mod:`engine.compile` over the narrow columns, counts the
matches, applies ``marker`` then ``offset`` then ``limit`` (SPEC §2), and
only then reads whole records -- typed columns and ``_payload`` -- for the
rows of the page, from the Parquet row groups that hold them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from engine.compile import RID, Tables, compile_filter, compile_query
from engine.errors import Problem, QueryError
from engine.query import BackupQuery
from engine.schema import INTERNAL_COLUMNS, PAYLOAD, empty_frame

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


@dataclass(frozen=True)
class Result:
    """One ListBackups answer: the count before paging, and the page.

    ``rows`` holds the page's backups with every typed column and
    ``_payload`` (the record as dumped), in result order.

    Example::

        result = inventory.query("status=error&limit=10")
        result.count, result.to_dict()["backups"][0]["id"], result.frame.height
    """

    count: int
    offset: int
    limit: int | None
    rows: pl.DataFrame

    @property
    def payloads(self) -> list[str]:
        """The page's records as JSON text, exactly as ingested."""
        return self.rows[PAYLOAD].to_list()

    @property
    def ids(self) -> list[str]:
        """The page's backup ids, in order."""
        return self.rows["id"].to_list()

    @property
    def frame(self) -> pl.DataFrame:
        """The page as a polars DataFrame of typed columns."""
        return self.rows.drop([c for c in INTERNAL_COLUMNS if c in self.rows.columns])

    @property
    def arrow(self) -> pa.Table:
        """The page as an Arrow table of typed columns."""
        return self.frame.to_arrow()

    def to_json(self) -> str:
        """The API response ``{"count","backups","offset","limit"}`` as JSON text."""
        limit = "null" if self.limit is None else str(self.limit)
        body = ",".join(self.payloads)
        return f'{{"count":{self.count},"backups":[{body}],"offset":{self.offset},"limit":{limit}}}'

    def to_dict(self) -> dict[str, Any]:
        """The API response as a Python dict."""
        import json

        return dict(json.loads(self.to_json()))


def count(query: BackupQuery, tables: Tables) -> int:
    """The number of matches before paging, without reading any record.

    Example: ``count(parse_query("status=error"), tables)``.
    """
    return int(compile_filter(query, tables).select(pl.len()).collect().item())


def execute(
    query: BackupQuery,
    tables: Tables,
    backups_files: Sequence[Path],
    columns: Sequence[str] | None = None,
) -> Result:
    """Run ``query``: count, page by marker/offset/limit, fetch the page's records.

    ``columns`` limits what is read for the page (``None``: every column;
    ``["id", "_payload"]`` is all an API response needs). Raises
    :class:`QueryError` for a marker that is not among the matches.

    Example: ``execute(parse_query("limit=5"), tables, [store / "g000001/backups-00000.parquet"])``.
    """
    plan = compile_query(query, tables)
    if query.marker is None:
        # Count and page in one pass; the page's slice turns the sort into a top-k.
        counted, page = pl.collect_all(
            [compile_filter(query, tables).select(pl.len()), plan.slice(query.offset, query.limit)]
        )
        total = int(counted.item())
    else:
        order = plan.collect()
        hit = order["id"].index_of(query.marker)
        if hit is None:
            raise QueryError([Problem("marker", query.marker, "no such backup among the matches")])
        total = order.height
        page = order.slice(int(hit) + 1 + query.offset, query.limit)
    if tables.records is not None:
        held = tables.records if columns is None else tables.records.select(columns)
        rows = held[page[RID].to_numpy()]
    else:
        rows = fetch(backups_files, page[RID].to_numpy(), columns)
    return Result(total, query.offset, query.limit, rows)


@dataclass(frozen=True)
class _Layout:
    """The footers of a table's Parquet files, and where each row group starts, read once.

    Row groups are numbered across the files in order; ``starts[g]`` is the
    first row of group ``g`` (and ``starts[-1]`` the row count), ``file[g]``
    its file and ``local[g]`` its number in that file.
    """

    metadata: list[Any]
    starts: Any
    file: Any
    local: Any


_LAYOUTS: dict[tuple[tuple[Path, float], ...], _Layout] = {}


def _layout(paths: Sequence[Path]) -> _Layout:
    import numpy as np
    import pyarrow.parquet as pq

    key = tuple((path, path.stat().st_mtime) for path in paths)
    if key not in _LAYOUTS:
        metadata = [pq.read_metadata(path) for path in paths]
        sizes = [m.row_group(i).num_rows for m in metadata for i in range(m.num_row_groups)]
        _LAYOUTS[key] = _Layout(
            metadata,
            np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]),
            np.repeat(np.arange(len(paths)), [m.num_row_groups for m in metadata]),
            np.concatenate([np.arange(m.num_row_groups) for m in metadata]),
        )
    return _LAYOUTS[key]


def fetch(
    paths: Sequence[Path], rids: np.ndarray[Any, Any], columns: Sequence[str] | None = None
) -> pl.DataFrame:
    """Records (all columns, or ``columns``) of rows ``rids`` of a table, in that order.

    ``paths`` are the table's Parquet files in order, and ``rids`` number
    its rows across them. Reads only the row groups that hold the rows.

    Example: ``fetch([path], np.array([5, 2]))["id"]``.
    """
    if not paths or len(rids) == 0:
        empty = empty_frame("backups")
        return empty if columns is None else empty.select(columns)
    # Imported here: a count or an error never pays for them.
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    layout = _layout(paths)
    groups = np.searchsorted(layout.starts, rids, side="right") - 1
    wanted = np.unique(groups)
    wanted_files = layout.file[wanted]
    pieces = []
    for number in np.unique(wanted_files):
        parquet = pq.ParquetFile(paths[number], metadata=layout.metadata[number])
        local = layout.local[wanted[wanted_files == number]]
        pieces.append(
            parquet.read_row_groups(
                local.tolist(), columns=None if columns is None else list(columns)
            )
        )
    table = pa.concat_tables(pieces)
    sizes = np.diff(layout.starts)[wanted]
    base = np.concatenate([[0], np.cumsum(sizes)])
    local_rows = base[np.searchsorted(wanted, groups)] + (rids - layout.starts[groups])
    frame = pl.from_arrow(table.take(pa.array(local_rows)))
    assert isinstance(frame, pl.DataFrame)
    return frame
