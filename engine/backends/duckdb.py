"""The DuckDB backend: a ListBackups query as SQL over the store's Parquet files.

One rule per node type of :mod:`engine.plan` (:data:`TRANSLATE`, checked
complete at import), each giving a SQL condition; the nodes, and their
words, are :func:`engine.params.filter_plan`'s. The backups, vaults and
members are DuckDB views of the store's live rows (the query
``cbrq info --sql`` prints), or of an in-memory inventory's tables.
:func:`plan` is the whole query as one SQL text a user can paste
into their own DuckDB (``cbrq explain --engine duckdb``); :func:`answer` runs
it and returns the same :class:`~engine.backends.base.Result` as the polars backend.

Example::

    from engine.backends import duckdb as backend
    result = backend.answer(parse_query("status=error&limit=5"), Inventory.open("inv"))
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Final

import polars as pl

from engine.backends import Translator
from engine.backends.base import RID, Result, marker_error, records
from engine.backends.polars import sort_keys
from engine.params import filter_plan
from engine.plan import (
    AnyOf,
    AtLeast,
    AtMost,
    Contains,
    Equals,
    IncrementalIs,
    MemberStatus,
    OneOf,
    OwnedBy,
    OwnedElsewhere,
    SharedTo,
    VaultUsedAtLeast,
)
from engine.query import BackupQuery
from engine.spec import RECORD_KINDS
from engine.store.read import dead_file, duckdb_file, duckdb_sql, table_files

if TYPE_CHECKING:
    from pathlib import Path

    import duckdb

    from engine.backends.base import Source
    from engine.store.manifest import Manifest


@dataclass(frozen=True)
class SqlTables:
    """The relations a query reads (view names), and whether share-member data exists.

    ``has_members`` has no default: with no share-member data ``own_type=shared``
    means every backup of another project (SPEC §2), so it must come from the data.

    Example: ``SqlTables(has_members=False)``.
    """

    has_members: bool
    backups: str = "backups"
    vaults: str = "vaults"
    members: str = "members"


def text(value: str) -> str:
    """A SQL string literal.

    Example: ``text("it's")`` -> ``"'it''s'"``.
    """
    return "'" + value.replace("'", "''") + "'"


def instant(value: datetime) -> str:
    """A SQL instant literal (UTC, microseconds).

    Example: ``instant(datetime(2026, 1, 1, tzinfo=UTC))`` -> ``"TIMESTAMPTZ '2026-01-01 ...'"``.
    """
    return f"TIMESTAMPTZ '{value:%Y-%m-%d %H:%M:%S.%f}+00'"


def _equals(node: Equals, _t: SqlTables) -> str:
    return f"{node.field} = {text(node.value)}"


def _contains(node: Contains, _t: SqlTables) -> str:
    return f"strpos({node.field}, {text(node.value)}) > 0"


def _one_of(node: OneOf, _t: SqlTables) -> str:
    return f"{node.field} IN ({', '.join(text(v) for v in node.values)})"


def _at_least(node: AtLeast, _t: SqlTables) -> str:
    return f"{node.field} >= {instant(node.instant)}"


def _at_most(node: AtMost, _t: SqlTables) -> str:
    return f"{node.field} <= {instant(node.instant)}"


def _vault_used(node: VaultUsedAtLeast, t: SqlTables) -> str:
    # used (MB) / (size (GB) * 1024) >= N %, compared without division or rounding.
    full = (
        f"SELECT id FROM {t.vaults} WHERE billing.size > 0 "
        f"AND billing.used * 100 >= {node.percent} * billing.size * 1024"
    )
    return f"vault_id IN ({full})"


def _owned_by(node: OwnedBy, _t: SqlTables) -> str:
    return f"project_id = {text(node.project)}"


def _owned_elsewhere(node: OwnedElsewhere, _t: SqlTables) -> str:
    return f"(project_id IS NULL OR project_id <> {text(node.project)})"


def _shared_to(node: SharedTo, t: SqlTables) -> str:
    foreign = _owned_elsewhere(OwnedElsewhere(node.project), t)
    mine = f"SELECT backup_id FROM {t.members} WHERE dest_project_id = {text(node.project)}"
    return f"{foreign} AND id IN ({mine})"


def _member_status(node: MemberStatus, t: SqlTables) -> str:
    named = (
        f"SELECT backup_id FROM {t.members} WHERE dest_project_id = {text(node.project)} "
        f"AND status = {text(node.status)}"
    )
    return f"id IN ({named})"


def _incremental(node: IncrementalIs, _t: SqlTables) -> str:
    return f"coalesce(incremental, extend_info.incremental) = {str(node.value).lower()}"


def _any_of(node: AnyOf, t: SqlTables) -> str:
    return " OR ".join(f"({TRANSLATE(part, t)})" for part in node.nodes)


#: One SQL condition per node type of :mod:`engine.plan` (checked at import).
TRANSLATE: Final[Translator[SqlTables, str]] = Translator(
    "duckdb",
    {
        Equals: _equals,
        Contains: _contains,
        OneOf: _one_of,
        AtLeast: _at_least,
        AtMost: _at_most,
        VaultUsedAtLeast: _vault_used,
        OwnedBy: _owned_by,
        OwnedElsewhere: _owned_elsewhere,
        SharedTo: _shared_to,
        MemberStatus: _member_status,
        IncrementalIs: _incremental,
        AnyOf: _any_of,
    },
)


def conditions(query: BackupQuery, tables: SqlTables) -> list[str]:
    """Every filter of ``query`` as a SQL condition, in the order of its plan.

    Example: ``conditions(parse_query("status=error"), SqlTables(True))`` ->
    ``["status IN ('error')"]``.
    """
    return [TRANSLATE(node, tables) for node in filter_plan(query, tables.has_members)]


def words(query: BackupQuery, inventory: Source) -> list[str]:
    """What each of the query's SQL conditions means, in plan order (for ``cbrq explain``).

    Example: ``words(parse_query("status=error"), inv)`` -> ``["status is one of error"]``.
    """
    tables = SqlTables(has_members=inventory.manifest.counts.get("members", 0) > 0)
    return [node.text for node in filter_plan(query, tables.has_members)]


def _where(query: BackupQuery, tables: SqlTables) -> str:
    return " AND ".join(f"({c})" for c in conditions(query, tables)) or "true"


def _order(query: BackupQuery) -> str:
    # Strings compare by code point (DuckDB's binary collation of UTF-8), nulls last.
    return ", ".join(
        f"{k.key} {'DESC' if k.descending else 'ASC'} NULLS LAST" for k in sort_keys(query)
    )


def page_sql(query: BackupQuery, tables: SqlTables, select: str = "id") -> str:
    """SQL of the page (``select`` columns) with ``_total``, the count of all matches.

    Without a marker: ORDER BY ... LIMIT/OFFSET (a top-N); with one, the
    matches are numbered once and the page starts after the marker's number
    (``_start`` is null when the marker is not among the matches). An empty
    page says nothing of the count: use :func:`count_sql` then.

    Example: ``con.execute(page_sql(parse_query("limit=5"), SqlTables(True))).fetchall()``.
    """
    where, order = _where(query, tables), _order(query)
    limit = f" LIMIT {query.limit}" if query.limit is not None else ""
    if query.marker is None:
        return (
            f"SELECT {select}, count(*) OVER () AS _total FROM {tables.backups} "
            f"WHERE {where} ORDER BY {order}{limit} OFFSET {query.offset}"
        )
    ranked = (
        f"SELECT *, row_number() OVER (ORDER BY {order}) AS _pos, count(*) OVER () AS _total "
        f"FROM {tables.backups} WHERE {where}"
    )
    start = f"(SELECT _pos FROM ranked WHERE id = {text(query.marker)})"
    return (
        f"WITH ranked AS MATERIALIZED ({ranked}) SELECT {select}, _total FROM ranked "
        f"WHERE _pos > {start} + {query.offset} ORDER BY _pos{limit}"
    )


def count_sql(query: BackupQuery, tables: SqlTables) -> str:
    """SQL counting the matches before paging.

    Example: ``con.sql(count_sql(parse_query("status=error"), SqlTables(True))).fetchall()``.
    """
    return f"SELECT count(*) FROM {tables.backups} WHERE {_where(query, tables)}"


def _marker_sql(query: BackupQuery, tables: SqlTables) -> str:
    assert query.marker is not None
    return (
        f"SELECT count(*) FROM {tables.backups} WHERE ({_where(query, tables)}) "
        f"AND id = {text(query.marker)}"
    )


@dataclass
class Connection:
    """One inventory's DuckDB connection and the lock that serializes its use.

    A DuckDB connection takes one call at a time, and registered tables
    belong to it (a cursor would not see them), so threads sharing an
    inventory take turns.

    Example: ``with connect(inv) as (con, tables): con.sql(count_sql(q, tables))``.
    """

    con: duckdb.DuckDBPyConnection
    lock: threading.Lock

    def close(self) -> None:
        """Close the connection (the inventory's ``close`` calls this)."""
        with self.lock:
            self.con.close()


_MAKING: Final = threading.Lock()


@contextlib.contextmanager
def connect(inventory: Source) -> Iterator[tuple[duckdb.DuckDBPyConnection, SqlTables]]:
    """The DuckDB connection with views ``backups``, ``vaults``, ``members`` of ``inventory``.

    A store's views read its Parquet files less the superseded rows (the
    query of ``cbrq info --sql``); an in-memory inventory's tables are
    registered as they are. The connection is made once per inventory and
    kept in its ``backend_state`` until the inventory is closed; it is held
    for the duration of the ``with`` block.

    Example: ``with connect(Inventory.open("inv")) as (con, tables): ...``.
    """
    tables = SqlTables(has_members=inventory.manifest.counts.get("members", 0) > 0)
    with _MAKING:
        held = inventory.backend_state.get("duckdb")
        if held is None:
            held = inventory.backend_state["duckdb"] = Connection(
                _database(inventory), threading.Lock()
            )
    with held.lock:
        yield held.con, tables


def _database(inventory: Source) -> duckdb.DuckDBPyConnection:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for kind in ("backups", "vaults", "members"):
        as_of = inventory.history_view
        if inventory.root is None or inventory.manifest.counts.get(kind, 0) == 0 or as_of:
            # In memory, no files of this kind, or the records as of an instant (SPEC §6,
            # computed by cbrq): the table as it is, columns and all.
            con.register(f"_{kind}", inventory.raw(kind).collect().to_arrow())
            con.execute(f"CREATE VIEW {kind} AS SELECT * FROM _{kind}")
        elif _nameable(inventory.root, inventory.manifest, kind):
            live = duckdb_sql(inventory.root, inventory.manifest, kind)
            con.execute(f"CREATE VIEW {kind} AS {live}")
        else:
            live = _arrow_view(con, inventory.root, inventory.manifest, kind)
            con.execute(f"CREATE VIEW {kind} AS {live}")
    return con


def _files(root: Path, manifest: Manifest, kind: str) -> list[Path]:
    """The store's files of ``kind``: its segments, then its dead file if it has one."""
    dead = dead_file(root, manifest, kind)
    return [*table_files(root, manifest, kind), *([] if dead is None else [dead])]


def _nameable(root: Path, manifest: Manifest, kind: str) -> bool:
    """Whether DuckDB can be given every file of ``kind`` by name (see ``duckdb_file``)."""
    return all(duckdb_file(path) is not None for path in _files(root, manifest, kind))


def _arrow_view(con: duckdb.DuckDBPyConnection, root: Path, manifest: Manifest, kind: str) -> str:
    """The live rows of ``kind`` over Arrow datasets of its files (registered on ``con``).

    For a store path DuckDB cannot name (a glob character and a backslash):
    Arrow opens files by their exact names, and DuckDB scans the datasets
    with its projections and filters pushed down.
    """
    import pyarrow.dataset as ds
    from pyarrow.fs import LocalFileSystem

    # An explicit file system: the names are never read as URIs or patterns.
    local = LocalFileSystem()
    files = [str(path.absolute()) for path in table_files(root, manifest, kind)]
    con.register(f"_{kind}_files", ds.dataset(files, format="parquet", filesystem=local))
    dead = dead_file(root, manifest, kind)
    if dead is None:
        return f"SELECT * FROM _{kind}_files"
    con.register(
        f"_{kind}_dead", ds.dataset([str(dead.absolute())], format="parquet", filesystem=local)
    )
    return f"SELECT t.* FROM _{kind}_files AS t ANTI JOIN _{kind}_dead AS dead USING (_seq, _row)"


def plan(query: BackupQuery, inventory: Source) -> str:
    """The page's ids as one SQL text with the store's live rows as CTEs, to paste into DuckDB.

    Example: ``print(plan(parse_query("status=error&limit=5"), Inventory.open("inv")))``.
    """
    tables = SqlTables(has_members=inventory.manifest.counts.get("members", 0) > 0)
    body = page_sql(query, tables, "id")
    if inventory.root is None:
        return f"-- backups, vaults, members: the inventory's tables in memory\n{body}"
    root = inventory.root
    if inventory.history_view:
        return (
            "-- backups: the backups present at the instant asked, each at its version then\n"
            "-- (SPEC §6, computed by cbrq); vaults, members: the inventory's tables\n" + body
        )
    if not all(_nameable(root, inventory.manifest, kind) for kind in RECORD_KINDS):
        return (
            "-- backups, vaults, members: Arrow datasets of the store's files (DuckDB cannot\n"
            "-- name them: the store's path holds a glob character and a backslash)\n" + body
        )
    views = []
    for kind in ("backups", "vaults", "members"):
        views.append(f"{kind} AS ({duckdb_sql(inventory.root, inventory.manifest, kind)})")
    if body.startswith("WITH "):
        return "WITH " + ",\n     ".join(views) + ",\n" + body[len("WITH ") :]
    return "WITH " + ",\n     ".join(views) + "\n" + body


def count(query: BackupQuery, inventory: Source) -> int:
    """The number of matches before paging, without reading any record.

    Example: ``count(parse_query("status=error"), Inventory.open("inv"))``.
    """
    with connect(inventory) as (con, tables):
        return _scalar(con, count_sql(query, tables))


def answer(query: BackupQuery, inventory: Source, columns: Sequence[str] | None = None) -> Result:
    """Count and page ``query`` on DuckDB; the same :class:`Result` as the polars backend.

    ``columns``: what to read of the page's records (default: every typed
    column and ``_payload``). Raises :class:`~engine.errors.QueryError` for a
    marker that is not among the matches.

    Example: ``answer(parse_query("status=error&limit=5"), Inventory.open("inv")).ids``.
    """
    with connect(inventory) as (con, tables):
        if query.marker is not None and not _scalar(con, _marker_sql(query, tables)):
            raise marker_error(query.marker)
        # DuckDB orders and counts over the narrow columns; the page's records are
        # then read by row, as every backend does (engine.backends.base.records): carrying
        # the records through DuckDB's sort, or looking them up by id, cost 2-4 s at 1M.
        ids = pl.from_arrow(con.sql(page_sql(query, tables, "id")).to_arrow_table())
        assert isinstance(ids, pl.DataFrame)
        # An empty page says nothing of the count.
        total = int(ids["_total"][0]) if ids.height else _scalar(con, count_sql(query, tables))
    return Result(total, query.offset, query.limit, _records(inventory, ids["id"], columns))


def _records(inventory: Source, ids: pl.Series, columns: Sequence[str] | None) -> pl.DataFrame:
    """The records of ``ids`` in that order: their rows found by id, then read by row."""
    wanted = pl.DataFrame({"id": ids, "_at": pl.int_range(ids.len(), eager=True)})
    tables = inventory.tables
    found = tables.backups.select(RID, "id").join(wanted.lazy(), on="id").sort("_at").collect()
    return records(tables, inventory.files("backups"), found[RID], columns)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """The one number a query gives (fetched whole, so the connection is free after)."""
    return int(con.sql(sql).fetchall()[0][0])


class DuckDBBackend:
    """The DuckDB backend bound to one inventory (its connection is the inventory's).

    Example: ``DuckDBBackend(Inventory.open("inv")).count(query)``.
    """

    name: ClassVar[str] = "duckdb"

    def __init__(self, source: Source) -> None:
        self.source = source

    @classmethod
    def check(cls, source: Source) -> None:
        """Nothing past the duckdb package (the registry checks that it is installed)."""

    def answer(self, query: BackupQuery, columns: Sequence[str] | None = None) -> Result:
        """:func:`answer` on this inventory."""
        return answer(query, self.source, columns)

    def count(self, query: BackupQuery) -> int:
        """:func:`count` on this inventory."""
        return count(query, self.source)

    def words(self, query: BackupQuery) -> list[str]:
        """:func:`words` on this inventory."""
        return words(query, self.source)

    def plan(self, query: BackupQuery) -> str:
        """:func:`plan`: one SQL text to paste into DuckDB."""
        return plan(query, self.source)
