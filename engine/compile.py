"""Phase: BackupQuery + inventory tables -> a lazy polars plan. Never collects.

The polars backend (:mod:`engine.backends`): one small handler per
filtering parameter of :data:`engine.params.PARAMS`, in :data:`RULES`; each
returns :class:`Rule` objects (an English sentence, a polars predicate and,
for rules that look at the vault or member tables, a lookup to join first),
so that ``cbrq explain`` and the plan can never disagree. The plan keeps only
the narrow columns that filtering and sorting need, plus ``_rid`` (the row of
the backup in the backups table, counted across its files), so that whole
records are fetched for the returned page only (:mod:`engine.execute`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import polars as pl

from engine.backends import ordered_rules, setting
from engine.query import BackupQuery, SortKey
from engine.spec import DEFAULT_SORT, TIE_BREAKER

RID: Final[str] = "_rid"


@dataclass(frozen=True)
class Tables:
    """The lazy inventory tables a plan is built from.

    ``backups`` must carry the row locator ``_rid``, numbering the rows in
    the store's physical order; ``ordered`` says that this order is
    ``created_at`` ascending with nulls last, then ``id`` (a store of one
    segment, :mod:`engine.manifest`), which lets the default sort run on
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


@dataclass(frozen=True)
class Lookup:
    """A small lazy frame of ``key`` values, joined to the backups as a flag column.

    After the join, ``flag`` is true where the backup's ``on`` column is among
    the keys, and null elsewhere.

    Example: ``Lookup("_full_vault", "vault_id", vaults.select(pl.col("id").alias("key")))``.
    """

    flag: str
    on: str
    keys: pl.LazyFrame


@dataclass(frozen=True)
class Rule:
    """One filter: what it means in words, the predicate, and the lookups it reads.

    Example: ``Rule("status is one of available, error", pl.col("status").is_in([...]))``.
    """

    text: str
    predicate: pl.Expr
    lookups: tuple[Lookup, ...] = ()


Handler = Callable[[BackupQuery, Tables], list[Rule]]


def _lookup(flag: str, on: str, keys: pl.LazyFrame) -> Lookup:
    frame = keys.select(pl.col("key")).unique().with_columns(pl.lit(True).alias(flag))
    return Lookup(flag, on, frame)


def _equals(name: str) -> Handler:
    def rule(q: BackupQuery, _t: Tables) -> list[Rule]:
        value = dict(q.equals).get(name)
        return [] if value is None else [Rule(f"{name} equals {value!r}", pl.col(name) == value)]

    return rule


def _contains(name: str) -> Handler:
    def rule(q: BackupQuery, _t: Tables) -> list[Rule]:
        value = dict(q.contains).get(name)
        if value is None:
            return []
        if q.semantics.name_match == "exact":
            return [Rule(f"{name} equals {value!r}", pl.col(name) == value)]
        text = f"{name} contains {value!r} (case-sensitive)"
        return [Rule(text, pl.col(name).str.contains(value, literal=True))]

    return rule


def _statuses(q: BackupQuery, _t: Tables) -> list[Rule]:
    if not q.statuses:
        return []
    text = f"status is one of {', '.join(q.statuses)}"
    return [Rule(text, pl.col("status").is_in(list(q.statuses)))]


def _start_time(q: BackupQuery, _t: Tables) -> list[Rule]:
    if q.start_time is None:
        return []
    field = q.semantics.time_field
    text = f"{field} at or after {q.start_time:%Y-%m-%dT%H:%M:%S.%f} UTC"
    return [Rule(text, pl.col(field) >= q.start_time)]


def _end_time(q: BackupQuery, _t: Tables) -> list[Rule]:
    if q.end_time is None:
        return []
    field = q.semantics.time_field
    text = f"{field} at or before {q.end_time:%Y-%m-%dT%H:%M:%S.%f} UTC"
    return [Rule(text, pl.col(field) <= q.end_time)]


def _used_percent(q: BackupQuery, t: Tables) -> list[Rule]:
    if q.used_percent is None:
        return []
    size = pl.col("billing").struct.field("size")
    used = pl.col("billing").struct.field("used")
    # used (MB) / (size (GB) * 1024) >= N %, compared without division or rounding.
    full = t.vaults.filter((size > 0) & (used * 100 >= q.used_percent * size * 1024))
    lookup = _lookup("_vault_full", "vault_id", full.select(pl.col("id").alias("key")))
    text = f"the backup's vault is at least {q.used_percent} % used (billing.used / billing.size)"
    return [Rule(text, pl.col("_vault_full").fill_null(False), (lookup,))]


def _eps(q: BackupQuery, _t: Tables) -> list[Rule]:
    value = q.enterprise_project_id
    if value is None:
        return []
    return [
        Rule(f"enterprise_project_id equals {value!r}", pl.col("enterprise_project_id") == value)
    ]


def _shared_lookup(q: BackupQuery, t: Tables) -> tuple[pl.Expr, tuple[Lookup, ...], str]:
    foreign = pl.col("project_id").is_null() | (pl.col("project_id") != q.project)
    if not t.has_members:
        return foreign, (), "owned by another project (no share-member data: every such backup)"
    mine = t.members.filter(pl.col("dest_project_id") == q.project)
    lookup = _lookup("_shared_to_me", "id", mine.select(pl.col("backup_id").alias("key")))
    text = f"owned by another project and shared to {q.project!r}"
    return foreign & pl.col("_shared_to_me").fill_null(False), (lookup,), text


def _own_type(q: BackupQuery, t: Tables) -> list[Rule]:
    if q.own_type is None or q.project is None:
        return []
    private = pl.col("project_id") == q.project
    if q.own_type == "private":
        return [Rule(f"owned by project {q.project!r}", private)]
    shared, lookups, text = _shared_lookup(q, t)
    if q.own_type == "shared":
        return [Rule(text, shared, lookups)]
    return [Rule(f"owned by project {q.project!r}, or {text}", private | shared, lookups)]


def _member_status(q: BackupQuery, t: Tables) -> list[Rule]:
    if q.member_status is None or q.project is None:
        return []
    named = t.members.filter(
        (pl.col("dest_project_id") == q.project) & (pl.col("status") == q.member_status)
    )
    lookup = _lookup("_member_match", "id", named.select(pl.col("backup_id").alias("key")))
    text = f"shared to {q.project!r} with member status {q.member_status!r}"
    return [Rule(text, pl.col("_member_match").fill_null(False), (lookup,))]


def _incremental(q: BackupQuery, _t: Tables) -> list[Rule]:
    if q.incremental is None:
        return []
    value = pl.coalesce(pl.col("incremental"), pl.col("extend_info").struct.field("incremental"))
    text = f"incremental is {str(q.incremental).lower()} (or extend_info.incremental)"
    return [Rule(text, value == q.incremental)]


#: One rule per filtering parameter of :data:`engine.params.PARAMS`
#: (checked at import); rules apply, and are explained, in that table's order.
RULES: Final[dict[str, Handler]] = {
    **{name: _equals(name) for name in setting("equals")},
    **{name: _contains(name) for name in setting("contains")},
    "status": _statuses,
    "start_time": _start_time,
    "end_time": _end_time,
    "used_percent": _used_percent,
    "enterprise_project_id": _eps,
    "own_type": _own_type,
    "member_status": _member_status,
    "incremental": _incremental,
}
_ORDER: Final[tuple[Handler, ...]] = ordered_rules("polars", RULES)


def rules(query: BackupQuery, tables: Tables) -> list[Rule]:
    """Every filter of ``query``, in words and as predicates.

    Example: ``[r.text for r in rules(parse_query("status=error"), tables)]``.
    """
    return [rule for handler in _ORDER for rule in handler(query, tables)]


def sort_keys(query: BackupQuery) -> list[SortKey]:
    """The effective sort: the query's (or the default), then ``id`` ascending.

    Example: ``[str(k) for k in sort_keys(BackupQuery())]`` ->
    ``["created_at:desc", "id:asc"]``.
    """
    keys = list(query.sort) or [SortKey(k, d == "desc") for k, d in DEFAULT_SORT]
    if all(k.key != TIE_BREAKER[0] for k in keys):
        keys.append(SortKey(TIE_BREAKER[0], TIE_BREAKER[1] == "desc"))
    return keys


def physical_keys(keys: list[SortKey]) -> list[SortKey]:
    """Sort keys giving the same order as ``keys`` but cheaper to sort on.

    Rows are numbered by ``_rid`` in store order (created_at ascending, nulls
    last, then id), so ties of ``created_at`` are already in id order: the
    default sort (and ``created_at:asc``) needs no string comparison, and an
    ascending one needs none at all.

    Example: ``physical_keys([SortKey("created_at", False), SortKey("id", False)])``
    -> ``[SortKey("_rid", False)]``.
    """
    if len(keys) != 2 or keys[0].key != "created_at" or keys[1] != SortKey("id", False):
        return keys
    if keys[0].descending:
        return [keys[0], SortKey(RID, False)]
    return [SortKey(RID, False)]


def compile_filter(query: BackupQuery, tables: Tables) -> pl.LazyFrame:
    """The lazy plan of the matching backups, unsorted (for counting). Never collects.

    Example: ``compile_filter(parse_query("status=error"), tables).select(pl.len())``.
    """
    found = rules(query, tables)
    frame = tables.backups
    for rule in found:
        for lookup in rule.lookups:
            frame = frame.join(lookup.keys, left_on=lookup.on, right_on="key", how="left")
    if found:
        frame = frame.filter(pl.all_horizontal([rule.predicate for rule in found]))
    return frame


def compile_query(query: BackupQuery, tables: Tables) -> pl.LazyFrame:
    """The lazy plan: matching backups' ``_rid`` and ``id``, in result order.

    Filters, then sorts (nulls last in either direction, strings by code
    point, times by instant). Marker, offset and limit are applied by
    :mod:`engine.execute` (a slice of this plan becomes a top-k). Nothing is
    collected here.

    Example::

        plan = compile_query(parse_query("status=error&sort=name:asc"), tables)
        print(plan.explain())
    """
    keys = sort_keys(query)
    if tables.ordered:
        keys = physical_keys(keys)
    frame = compile_filter(query, tables).sort(
        [k.key for k in keys], descending=[k.descending for k in keys], nulls_last=True
    )
    return frame.select(RID, "id")
