"""SPEC §6's rule as one DuckDB query: a history store's backups as of an instant, without cbrq.

:func:`engine.store.history.as_of_rows` computes, in polars, which stored
rows answer at T; :func:`duckdb_history_sql` writes the same rule in SQL
over the same files (the backups' Parquet files, each ingest's sightings
file) and the manifest's ingest records (written into the query as a
``VALUES`` list), so that a user with only DuckDB gets the answers
``cbrq query --as-of T`` gives. ``cbrq info --sql`` prints it for a store
with snapshots. The steps, as in :mod:`engine.store.history`:

- ``made``: the ingests taken at or before T (no ``taken_at``: older than every instant);
- ``seen``: the rows each of them saw (its sightings file; an ingest older
  than history: the rows it wrote, its ``_seq`` span);
- ``versions``: per backup, the row with the newest ``updated_at`` (missing
  is oldest), then the later ingest that saw it, then the later row;
- ``heads``: P, the newest snapshot covering the backup (by its
  ``project_id``, or its ``vault_id`` for vault scope), judged on that version;
- ``present``: the backups P saw, or an ingest after P saw (with no P: any).

T is the literal given, else the DuckDB variable ``cbrq_as_of``
(``SET VARIABLE cbrq_as_of = '2026-11-02T00:00:00Z'``), else the latest.

Example::

    duckdb.sql("SET VARIABLE cbrq_as_of = '2026-11-02T00:00:00Z'")
    duckdb.sql(f"SELECT count(*) FROM ({duckdb_history_sql(root, read_manifest(root))})")
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Final

from engine.instants import format_instant
from engine.store.history import NO_PROJECT
from engine.store.layout import REF, ROW, SEQ
from engine.store.manifest import IngestRecord, Manifest
from engine.store.read import _sql_file, _sql_string, table_files

#: The DuckDB variable that sets the instant of the printed query.
AS_OF_VARIABLE: Final[str] = "cbrq_as_of"


def duckdb_history_sql(root: Path, manifest: Manifest, at: datetime | None = None) -> str:
    """A DuckDB query of the backups present at ``at``, each at its version then (SPEC §6).

    ``at`` ``None``: the instant is read from the variable :data:`AS_OF_VARIABLE`
    when set, else the latest. Columns: those of the store's files, as
    :func:`engine.store.read.duckdb_sql` gives them.

    Example: ``duckdb.sql(duckdb_history_sql(root, read_manifest(root), None)).fetchall()``.
    """
    files = table_files(root, manifest, "backups")
    if not files:
        return "SELECT NULL AS id WHERE false"
    listed = ", ".join(_sql_file(path) for path in files)
    hive = ", hive_partitioning = false" if "=" in listed else ""
    if at is None:
        instant = f"getvariable('{AS_OF_VARIABLE}')::TIMESTAMPTZ"
    else:
        instant = f"'{format_instant(at)}Z'::TIMESTAMPTZ"
    steps = [
        f"asked AS (SELECT COALESCE({instant}, 'infinity'::TIMESTAMPTZ) AS at)",
        f"ingests AS ({_ingests(manifest.ingests)})",
        "made AS (SELECT n, COALESCE(taken, '-infinity'::TIMESTAMPTZ) AS t, snapshot, scope,"
        " projects, vaults FROM ingests, asked WHERE taken IS NULL OR taken <= asked.at)",
        f"stored AS (SELECT *, {SEQ}::BIGINT * 4294967296 + {ROW}::BIGINT AS {REF}"
        f" FROM read_parquet([{listed}]{hive}))",
        f"sighted AS ({_sightings(root, manifest.ingests, hive)})",
        f"seen AS (SELECT s.n, m.t, r.{REF}, r.id,"
        f" COALESCE(r.project_id, {_sql_string(NO_PROJECT)}) AS _project, r.vault_id,"
        f" r.updated_at FROM sighted AS s JOIN made AS m USING (n) JOIN stored AS r USING ({REF}))",
        f"versions AS (SELECT {REF}, id, _project, vault_id FROM (SELECT {REF}, id, _project,"
        f" vault_id, updated_at, max(n) AS last FROM seen GROUP BY ALL) QUALIFY row_number()"
        f" OVER (PARTITION BY id ORDER BY updated_at DESC NULLS LAST, last DESC, {REF} DESC) = 1)",
        _newest("by_project", "projects", "project"),
        _newest("by_vault", "vaults", "vault"),
        "heads AS (SELECT v.id, CASE WHEN b.p_n IS NOT NULL AND (a.p_n IS NULL OR b.p_t > a.p_t"
        " OR (b.p_t = a.p_t AND b.p_n > a.p_n)) THEN b.p_t ELSE a.p_t END AS p_t,"
        " CASE WHEN b.p_n IS NOT NULL AND (a.p_n IS NULL OR b.p_t > a.p_t"
        " OR (b.p_t = a.p_t AND b.p_n > a.p_n)) THEN b.p_n ELSE a.p_n END AS p_n"
        " FROM versions AS v LEFT JOIN by_project AS a ON a.key = v._project"
        " LEFT JOIN by_vault AS b ON b.key = v.vault_id)",
        "present AS (SELECT DISTINCT s.id FROM seen AS s JOIN heads AS h USING (id)"
        " WHERE h.p_n IS NULL OR s.n = h.p_n OR s.t > h.p_t OR (s.t = h.p_t AND s.n > h.p_n))",
    ]
    return (
        f"/* cbrq: the backups present at the instant (SPEC §6); set it with SET VARIABLE"
        f" {AS_OF_VARIABLE} = '2026-11-02T00:00:00Z' (default: the latest) */\n"
        "WITH " + ",\n     ".join(steps) + f"\nSELECT r.* EXCLUDE ({REF}) FROM stored AS r"
        f" WHERE r.{REF} IN (SELECT {REF} FROM versions SEMI JOIN present USING (id))"
    )


def _ingests(records: Sequence[IngestRecord]) -> str:
    """The manifest's ingest records as a ``VALUES`` list (n, taken, snapshot, scope, ...)."""
    columns = "n, taken, snapshot, scope, projects, vaults"
    if not records:
        return (
            "SELECT NULL::BIGINT AS n, NULL::TIMESTAMPTZ AS taken, false AS snapshot,"
            " NULL AS scope, []::VARCHAR[] AS projects, []::VARCHAR[] AS vaults WHERE false"
        )
    rows = ", ".join(
        f"({r.n}, {_taken(r.taken_at)}, {str(r.snapshot).lower()},"
        f" {'NULL' if r.scope is None else _sql_string(r.scope)},"
        f" {_texts(r.projects if r.snapshot else ())}, {_texts(r.vaults if r.snapshot else ())})"
        for r in records
    )
    return f"SELECT * FROM (VALUES {rows}) AS i({columns})"


def _taken(text: str) -> str:
    return "NULL::TIMESTAMPTZ" if not text else f"{_sql_string(text)}::TIMESTAMPTZ"


def _texts(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(_sql_string(v) for v in values) + "]::VARCHAR[]"


def _sightings(root: Path, records: Sequence[IngestRecord], hive: str) -> str:
    """``(_ref, n)``: the rows each ingest saw (its file; else the rows it wrote)."""
    parts = [
        f"SELECT {REF}, {r.n}::BIGINT AS n FROM read_parquet({_sql_file(root / r.sightings)}{hive})"
        for r in records
        if r.sightings
    ]
    spans = [(r.n, *r.seqs) for r in records if not r.sightings and r.seqs[1] >= r.seqs[0]]
    if spans:
        values = ", ".join(f"({n}, {lo}, {hi})" for n, lo, hi in spans)
        parts.append(
            f"SELECT r.{REF}, w.n FROM stored AS r JOIN (VALUES {values}) AS w(n, lo, hi)"
            f" ON r.{SEQ} BETWEEN w.lo AND w.hi"
        )
    if not parts:
        return f"SELECT NULL::BIGINT AS {REF}, NULL::BIGINT AS n WHERE false"
    return " UNION ALL ".join(parts)


def _newest(name: str, column: str, scope: str) -> str:
    """Per project (or vault): its newest snapshot taken at or before the instant."""
    return (
        f"{name} AS (SELECT key, t AS p_t, n AS p_n FROM (SELECT unnest({column}) AS key, t, n"
        f" FROM made WHERE snapshot AND scope = '{scope}') QUALIFY row_number()"
        " OVER (PARTITION BY key ORDER BY t DESC, n DESC) = 1)"
    )
