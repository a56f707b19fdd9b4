"""A parsed ListBackups query as DuckDB SQL, written independently of engine.compile.

Used by the benchmark harness to run the same query on DuckDB (over cbrq's
Parquet files, or over the raw JSON dumps) and check every engine returns the
same ids in the same order.
"""

from __future__ import annotations

from engine.compile import sort_keys
from engine.query import BackupQuery


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _instant(value: object) -> str:
    return f"TIMESTAMPTZ '{value:%Y-%m-%d %H:%M:%S.%f}+00'"


def where(q: BackupQuery, vaults: str, members: str) -> list[str]:
    """SQL conditions of every filter of ``q`` (tables named by ``vaults``/``members``)."""
    out = [f"{name} = {_text(value)}" for name, value in q.equals]
    for name, value in q.contains:
        if q.semantics.name_match == "exact":
            out.append(f"{name} = {_text(value)}")
        else:
            out.append(f"strpos({name}, {_text(value)}) > 0")
    if q.statuses:
        out.append("status IN (" + ", ".join(_text(s) for s in q.statuses) + ")")
    field = q.semantics.time_field
    if q.start_time is not None:
        out.append(f"{field} >= {_instant(q.start_time)}")
    if q.end_time is not None:
        out.append(f"{field} <= {_instant(q.end_time)}")
    if q.enterprise_project_id is not None:
        out.append(f"enterprise_project_id = {_text(q.enterprise_project_id)}")
    if q.incremental is not None:
        out.append(f"coalesce(incremental, extend_info.incremental) = {str(q.incremental).lower()}")
    if q.used_percent is not None:
        out.append(
            f"vault_id IN (SELECT id FROM {vaults} WHERE billing.size > 0 AND "
            f"billing.used * 100 >= {q.used_percent} * billing.size * 1024)"
        )
    if q.project is not None and q.own_type is not None:
        mine = f"project_id = {_text(q.project)}"
        shared = (
            f"(project_id IS NULL OR project_id <> {_text(q.project)}) AND id IN "
            f"(SELECT backup_id FROM {members} WHERE dest_project_id = {_text(q.project)})"
        )
        out.append(
            {"private": mine, "shared": shared, "all_granted": f"({mine}) OR ({shared})"}[
                q.own_type
            ]
        )
    if q.member_status is not None and q.project is not None:
        out.append(
            f"id IN (SELECT backup_id FROM {members} WHERE dest_project_id = "
            f"{_text(q.project)} AND status = {_text(q.member_status)})"
        )
    return out


def page(q: BackupQuery, backups: str, vaults: str, members: str) -> str:
    """SQL giving the page's ids in order, each with the count of all matches, in one scan.

    A page that comes out empty says nothing of the count: ask :func:`count` then.
    Without a marker the page is an ORDER BY ... LIMIT (DuckDB's top-N); with
    one, matches are numbered once and the marker's number is looked up.
    """
    conditions = " AND ".join(f"({c})" for c in where(q, vaults, members)) or "true"
    order = ", ".join(
        f"{k.key} {'DESC' if k.descending else 'ASC'} NULLS LAST" for k in sort_keys(q)
    )
    limit = f" LIMIT {q.limit}" if q.limit is not None else ""
    if q.marker is None:
        return (
            f"SELECT id, count(*) OVER () AS total FROM {backups} WHERE {conditions} "
            f"ORDER BY {order}{limit} OFFSET {q.offset}"
        )
    ranked = (
        f"SELECT id, row_number() OVER (ORDER BY {order}) AS pos, count(*) OVER () AS total "
        f"FROM {backups} WHERE {conditions}"
    )
    start = f"(SELECT pos FROM ranked WHERE id = {_text(q.marker)})"
    return (
        f"WITH ranked AS MATERIALIZED ({ranked}) SELECT id, total FROM ranked "
        f"WHERE pos > {start} + {q.offset} ORDER BY pos{limit}"
    )


def count(q: BackupQuery, backups: str, vaults: str, members: str) -> str:
    """SQL counting the matches before paging."""
    conditions = " AND ".join(f"({c})" for c in where(q, vaults, members)) or "true"
    return f"SELECT count(*) FROM {backups} WHERE {conditions}"
