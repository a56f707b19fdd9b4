"""What every backend shares: the tables it reads, the Result it gives, the page's records.

- :class:`Source`: what a backend reads of an inventory (the façade
  :class:`engine.inventory.Inventory` is one; backends never import it);
- :class:`Tables`: an inventory's lazy polars tables, rows numbered by
  ``_rid`` (:data:`RID`);
- :class:`Result`: count and page, the same from every backend;
- :func:`records` / :func:`stream_records`: a page's whole records (typed
  columns and ``_payload``, in API form), read by row from the Parquet row
  groups that hold them (:func:`engine.store.read.fetch`), once a backend has
  chosen the page's rows.

Example::

    result = Inventory.open("cbrq-store").query("status=error&limit=10")
    result.count, result.ids
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import polars as pl

from engine.errors import Problem, QueryError
from engine.payload import canonical_payloads
from engine.query import BackupQuery, Semantics
from engine.store.layout import INTERNAL_COLUMNS, PAYLOAD
from engine.store.manifest import Manifest
from engine.store.read import fetch, fetch_batches

if TYPE_CHECKING:
    import pyarrow as pa

RID: Final[str] = "_rid"


@dataclass(frozen=True)
class Tables:
    """The lazy inventory tables a plan is built from.

    ``backups`` must carry the row locator ``_rid``, numbering the rows in
    the store's physical order; ``ordered`` says that this order is
    ``created_at`` ascending with nulls last, then ``id`` (a store of one
    segment, :mod:`engine.store.manifest`), which lets the default sort run on
    ``_rid`` (:func:`physical_keys`); ``has_members`` tells
    whether any share-member record exists (SPEC §2, own_type=shared);
    ``records``, when given, holds whole records in memory by ``_rid`` order
    (servers), so that pages are gathered instead of read from disk.

    Example: ``Tables(backups_lf, vaults_lf, members_lf, has_members=True)``.
    """

    backups: pl.LazyFrame
    vaults: pl.LazyFrame
    members: pl.LazyFrame
    has_members: bool
    records: pl.DataFrame | None = None
    ordered: bool = True


class Source(Protocol):
    """What a backend reads of an inventory; :class:`engine.inventory.Inventory` is one.

    Backends are written against this, not against the façade that uses them,
    so the backends part imports nothing of ``engine.inventory`` (no cycle).

    Example: ``duckdb.answer(query, source)`` with ``source = Inventory.open("inv")``.
    """

    root: Path | None
    manifest: Manifest
    #: What a backend keeps between queries of one commit (a DuckDB database, ...).
    backend_state: dict[str, Any]
    #: The tables of an in-memory inventory (``None`` for a store).
    _frames: dict[str, pl.DataFrame] | None
    #: The SparkSession (or master URL, or ``None``) the Spark backend answers with.
    spark: Any

    @property
    def history_view(self) -> bool:
        """Whether the backups are read as of an instant (SPEC §6), not from the live rows."""
        ...

    def files(self, kind: str) -> list[Path]:
        """The store's Parquet files of ``kind`` in order (none for an inventory in memory)."""
        ...

    @property
    def tables(self) -> Tables:
        """The lazy tables queries run on."""
        ...

    def raw(self, kind: str = "backups") -> pl.LazyFrame:
        """Every live record of ``kind`` with its ``_payload``."""
        ...

    def live(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """``frame`` (physical backups rows) less the superseded ones."""
        ...

    def load_physical(self) -> pl.DataFrame:
        """Every stored backups row, superseded ones included, in memory."""
        ...

    def parse(
        self,
        query: Any = None,
        *,
        project: str | None = None,
        semantics: Semantics | None = None,
        **params: Any,
    ) -> BackupQuery:
        """A query parsed against this inventory (its resource types, its tables)."""
        ...

    def close(self) -> None:
        """Let go of the commit this inventory reads."""
        ...


@dataclass(frozen=True)
class Result:
    """One ListBackups answer: the count before paging, and the page.

    ``rows`` holds the page's backups with every typed column and
    ``_payload`` (the record as dumped, timestamps in the API's form), in
    result order.

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

    def __len__(self) -> int:
        """The number of backups on the page (``count`` is the number of matches)."""
        return self.rows.height

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The page's backups as dicts, as the API returns them.

        Example: ``[b["id"] for b in inventory.query("limit=3")]``.
        """
        import json

        return (json.loads(text) for text in self.payloads)

    def __repr__(self) -> str:
        limit = "none" if self.limit is None else self.limit
        head = f"Result(count={self.count:,}, offset={self.offset}, limit={limit}"
        return f"{head}, page of {len(self)})\n{self.frame!r}"

    def to_json(self) -> str:
        """The API response ``{"count","backups","offset","limit"}`` as JSON text."""
        limit = "null" if self.limit is None else str(self.limit)
        body = ",".join(self.payloads)
        return f'{{"count":{self.count},"backups":[{body}],"offset":{self.offset},"limit":{limit}}}'

    def to_dict(self) -> dict[str, Any]:
        """The API response as a Python dict."""
        import json

        return dict(json.loads(self.to_json()))


#: Records gathered at a time when an answer is written as it is read (:class:`Streamed`).
STREAM_ROWS: Final[int] = 8_192


@dataclass(frozen=True)
class Streamed:
    """A ListBackups answer whose records are read a batch at a time, in result order.

    ``count``, ``offset`` and ``limit`` as in :class:`Result`; ``batches``
    yields the page's rows (the columns asked, ``_payload`` in API form), at
    least one frame, possibly empty. Read it once.

    Example: ``sum(b.height for b in inv.stream(inv.parse("status=error")).batches)``.
    """

    count: int
    offset: int
    limit: int | None
    batches: Iterator[pl.DataFrame]

    @classmethod
    def of(cls, result: Result) -> Streamed:
        """A whole :class:`Result` as one batch.

        Example: ``Streamed.of(inv.query("limit=5"))``.
        """
        return cls(result.count, result.offset, result.limit, iter([result.rows]))


def stream_records(
    tables: Tables,
    backups_files: Sequence[Path],
    rids: pl.Series,
    columns: Sequence[str] | None = None,
) -> Iterator[pl.DataFrame]:
    """:func:`records` of ``rids``, about :data:`STREAM_ROWS` at a time (one empty frame for none).

    From a store, batches end where the answer leaves a row group and the
    first is the answer's first run in one row group
    (:func:`engine.store.read.fetch_batches`): each group is read once, and
    writing starts after the first.

    Example: ``next(stream_records(tables, files, pl.Series([3, 1])))``.
    """
    if tables.records is not None:
        for start in range(0, max(rids.len(), 1), STREAM_ROWS):
            yield records(tables, backups_files, rids.slice(start, STREAM_ROWS), columns)
        return
    for rows in fetch_batches(backups_files, rids, columns, rows=STREAM_ROWS):
        yield _in_api_form(rows)


def records(
    tables: Tables,
    backups_files: Sequence[Path],
    rids: pl.Series,
    columns: Sequence[str] | None = None,
) -> pl.DataFrame:
    """The records of rows ``rids`` (``_rid`` numbers), in that order, payloads in API form.

    From memory when ``tables`` holds the records, else from the row groups
    of the store's files that hold them (:func:`fetch`). Every backend reads
    its page's records this way.

    Example: ``records(tables, files, pl.Series([3, 1]), ["id", "_payload"])``.
    """
    if tables.records is not None:
        held = tables.records if columns is None else tables.records.select(columns)
        rows = held[rids]
    else:
        rows = fetch(backups_files, rids, columns)
    return _in_api_form(rows)


def _in_api_form(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with their payloads' timestamps in the API's form (SPEC §1)."""
    if PAYLOAD in rows.columns:
        rows = rows.with_columns(canonical_payloads(rows[PAYLOAD]))
    return rows


def marker_error(marker: str) -> QueryError:
    """The error for a marker that is not among a query's matches (SPEC §2).

    Example: ``raise marker_error("b9")``.
    """
    return QueryError([Problem("marker", marker, "no such backup among the matches")])
