"""The plain-Python peer of the benchmark harness: the json module, a dict and loops.

What someone without a query engine would write: parse every page with
``json.loads``, keep the newest copy of each backup (by ``updated_at``, later
files winning ties) with the few fields the queries read, then answer each
query with a list comprehension and ``sorted``. Timestamps are read with
``datetime.fromisoformat``. Written independently of :mod:`engine.backends.polars`
(like :mod:`benchmarks.sql`); only the effective sort keys are shared.

Memory grows with the number of backups (one tuple per backup), which is
what this approach costs; the harness measures it at 10M too.

Example::

    rows = load(Path("dumps"), fields_for(queries))
    count, ids = answer(rows, query, vaults, members)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.backends.polars import sort_keys
from engine.query import BackupQuery

Row = tuple[Any, ...]

#: Fields with few distinct values, kept as one shared object each.
REPEATED = frozenset(
    {
        "status",
        "resource_type",
        "vault_id",
        "project_id",
        "enterprise_project_id",
        "resource_az",
        "image_type",
        "incremental",
    }
)


@dataclass(frozen=True)
class Rows:
    """The deduplicated backups: one tuple per backup, ``at`` maps field names to positions."""

    at: dict[str, int]
    rows: list[Row]


def _instant(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def fields_for(queries: Iterable[BackupQuery]) -> list[str]:
    """The backup fields these queries read (filters and sort keys), id and updated_at first.

    Example: ``fields_for([BackupQuery(statuses=("error",))])`` ->
    ``["id", "updated_at", "created_at", "status"]``.
    """
    names = ["id", "updated_at", "created_at"]
    for q in queries:
        names += [n for n, _ in q.equals] + [n for n, _ in q.contains]
        names += ["status"] if q.statuses else []
        names += [q.semantics.time_field] if q.start_time or q.end_time else []
        names += ["vault_id"] if q.used_percent is not None else []
        names += ["enterprise_project_id"] if q.enterprise_project_id is not None else []
        names += ["incremental"] if q.incremental is not None else []
        names += ["project_id"] if q.project is not None else []
        names += [k.key for k in sort_keys(q)]
    return list(dict.fromkeys(names))


def _value(record: dict[str, Any], name: str) -> Any:
    if name == "incremental" and record.get("incremental") is None:
        return (record.get("extend_info") or {}).get("incremental")
    value = record.get(name)
    return _instant(value) if name.endswith("_at") else value


def load(data: Path, fields: list[str]) -> Rows:
    """Parse every page under ``data/backups`` and keep the newest copy of each backup.

    Example: ``load(Path("dumps"), ["id", "updated_at", "status"])``.
    """
    at = {name: i for i, name in enumerate(fields)}
    first = datetime.min.replace(tzinfo=UTC)
    best: dict[str, Row] = {}
    common: dict[Any, Any] = {}  # one object per repeated value (statuses, types, vault ids)
    shared = [name in REPEATED for name in fields]
    for page in sorted((data / "backups").iterdir()):
        for record in json.loads(page.read_bytes())["backups"]:
            values = [_value(record, name) for name in fields]
            row = tuple(
                common.setdefault(v, v) if rep else v for v, rep in zip(values, shared, strict=True)
            )
            held = best.get(row[0])
            if held is None or (row[1] or first) >= (held[1] or first):
                best[row[0]] = row
    return Rows(at, list(best.values()))


def _test(
    q: BackupQuery, at: dict[str, int], vaults: list[Any], members: list[Any]
) -> Callable[[Row], bool]:
    checks: list[Callable[[Row], bool]] = []
    for name, value in q.equals:
        checks.append(lambda r, i=at[name], v=value: r[i] == v)
    for name, value in q.contains:
        if q.semantics.name_match == "exact":
            checks.append(lambda r, i=at[name], v=value: r[i] == v)
        else:
            checks.append(lambda r, i=at[name], v=value: isinstance(r[i], str) and v in r[i])
    if q.statuses:
        checks.append(lambda r, i=at["status"], s=frozenset(q.statuses): r[i] in s)
    when = at.get(q.semantics.time_field, 0)
    if q.start_time is not None:
        checks.append(lambda r, t=q.start_time: r[when] is not None and r[when] >= t)
    if q.end_time is not None:
        checks.append(lambda r, t=q.end_time: r[when] is not None and r[when] <= t)
    if q.enterprise_project_id is not None:
        checks.append(lambda r, i=at["enterprise_project_id"], v=q.enterprise_project_id: r[i] == v)
    if q.incremental is not None:
        checks.append(
            lambda r, i=at["incremental"], v=q.incremental: r[i] is not None and r[i] == v
        )
    if q.used_percent is not None:
        full = set()
        for vault in vaults:
            billing = vault.get("billing") or {}
            size, used = billing.get("size"), billing.get("used")
            if (
                size
                and size > 0
                and used is not None
                and used * 100 >= q.used_percent * size * 1024
            ):
                full.add(vault["id"])
        checks.append(lambda r, i=at["vault_id"]: r[i] in full)
    if q.project is not None and q.own_type is not None:
        mine = q.project
        shared = {m["backup_id"] for m in members if m.get("dest_project_id") == mine}
        p = at["project_id"]

        def own(r: Row, kind: str = q.own_type) -> bool:
            private = r[p] == mine
            to_me = not private and (r[0] in shared or not members)
            return {"private": private, "shared": to_me, "all_granted": private or to_me}[kind]

        checks.append(own)
    if q.member_status is not None and q.project is not None:
        named = {
            m["backup_id"]
            for m in members
            if m.get("dest_project_id") == q.project and m.get("status") == q.member_status
        }
        checks.append(lambda r: r[0] in named)
    return lambda r: all(check(r) for check in checks)


def answer(
    rows: Rows, q: BackupQuery, vaults: list[Any], members: list[Any]
) -> tuple[int, list[str]]:
    """The count of matches and the page's ids, in order (marker, offset, limit applied).

    Example: ``answer(rows, BackupQuery(limit=10), vaults, members)``.
    """
    test = _test(q, rows.at, vaults, members)
    found = [r for r in rows.rows if test(r)]
    for key in reversed(sort_keys(q)):  # stable sorts, last key first; nulls last either way
        i = rows.at[key.key]
        present = [r for r in found if r[i] is not None]
        present.sort(key=lambda r: r[i], reverse=key.descending)
        found = present + [r for r in found if r[i] is None]
    start = 0
    if q.marker is not None:
        start = next(n for n, r in enumerate(found) if r[0] == q.marker) + 1
    page = found[start + q.offset :]
    if q.limit is not None:
        page = page[: q.limit]
    return len(found), [r[0] for r in page]
