"""The benchmark's DuckDB SQL: the engine's DuckDB backend over the benchmark's relations.

It used to be a second compiler of its own, which drifted from the engine
(``own_type=shared`` without member data); now it is
:mod:`engine.backends.duckdb` with table names the harness chooses (cbrq's
Parquet views, or views over the raw JSON dumps).
"""

from __future__ import annotations

from engine.backends.duckdb import SqlTables, count_sql, page_sql
from engine.query import BackupQuery


def page(q: BackupQuery, backups: str, vaults: str, members: str, has_members: bool) -> str:
    """SQL giving the page's ids in order, each with the count of all matches (``_total``).

    ``has_members``: whether any share-member record exists (it changes
    ``own_type=shared``, SPEC §2), so it comes from the data, never a default.

    Example: ``con.execute(page(q, "b", "v", "m", has_members=True)).fetchall()``.
    """
    return page_sql(q, SqlTables(has_members, backups, vaults, members))


def count(q: BackupQuery, backups: str, vaults: str, members: str, has_members: bool) -> str:
    """SQL counting the matches before paging.

    Example: ``con.execute(count(q, "b", "v", "m", has_members=True)).fetchone()``.
    """
    return count_sql(q, SqlTables(has_members, backups, vaults, members))
