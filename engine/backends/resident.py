"""Phase: BackupQuery -> result, for an inventory held in memory by a long-running server.

The same filters as :mod:`engine.backends.polars` (its :func:`~engine.backends.polars.rules`,
each predicate evaluated exactly as written) and the same order
(:func:`~engine.backends.polars.sort_keys`, nulls last, strings by code point), but
with the work per request kept far below the table size:

- **Predicates run on distinct values.** A text or boolean column with few
  distinct values (status, vault, project, type, name...) is held as codes
  into its sorted distinct values. A predicate over such columns is
  evaluated once per combination of distinct values (a few hundred rows),
  and the answer is gathered by code: ``name contains 'x'`` on 1M backups
  reads 125k names once, not 1M. Other predicates (times, ids) run on the
  column itself.
- **Lookups are flags, not joins.** A rule's vault or member lookup (a small
  key set) marks rows by code (``vault_id``) or by a binary search of the
  sorted ids (``id``).
- **Orders are computed once.** Each sort's row order is an ``arg_sort`` of
  the keys' dense ranks packed into one 64-bit integer, kept in a small
  cache (the default order at start); a page is a walk along it that stops
  at ``offset + limit`` matches, and the count is the sum of the match mask.
- **Masks are kept.** One mask per rule (its serialized predicate and lookup
  plans are the key), so a filter that comes again costs an AND.

Everything here is immutable after :meth:`Resident.build` except the caches,
which only ever gain entries computed from immutable data, so requests may
run in parallel threads.

Example::

    resident = Resident.build(Inventory.open("cbrq-store"))
    resident.answer(resident.inventory.parse("status=error&limit=10")).ids
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.backends.base import RID, Result, Tables, marker_error
from engine.backends.polars import Lookup, Rule, rules, sort_keys
from engine.params import filter_plan
from engine.payload import canonical_payloads
from engine.query import BackupQuery
from engine.spec import SORT_KEYS
from engine.store.layout import INTERNAL_COLUMNS, PAYLOAD

if TYPE_CHECKING:
    from engine.backends.base import Source

Mask = npt.NDArray[np.bool_]
#: Row numbers of the live frame (an order, a page): int32, 4 bytes a row.
Rows = npt.NDArray[np.int32]

#: A column is held as codes when it has at most this share of distinct values.
DISTINCT_SHARE: Final[float] = 0.25
#: Most combinations of distinct values a predicate is evaluated on at once.
MAX_COMBINATIONS: Final[int] = 1 << 16
#: Row orders kept (each 4 bytes per backup); the default one is made at start.
ORDERS_KEPT: Final[int] = 8
#: Bytes of filter masks kept (one byte per backup each): a filter that comes
#: again (the same rule of engine.backends.polars) reuses its mask.
MASK_CACHE_BYTES: Final[int] = 32 << 20
#: Rows of an order looked at first when walking to a page (doubled until enough).
FIRST_STRIDE: Final[int] = 4096
#: Rows of an order walked before taking every match and placing it instead.
WALK_ROWS: Final[int] = 65_536
#: Columns held as codes from the start: every request filters on the project,
#: and these are the API's usual filters.
PREPARED: Final[tuple[str, ...]] = ("project_id", "status", "resource_type", "vault_id")
_FLAG_VALUES: Final = pl.Series([None, True], dtype=pl.Boolean)
_DENSE: Final = (pl.String, pl.Boolean, pl.Categorical, pl.Enum)


@dataclass(frozen=True)
class _Codes:
    """A column as codes (``UInt32``, 0 = null) into ``values`` (null first, then sorted)."""

    codes: npt.NDArray[np.uint32]
    values: pl.Series


class _Order:
    """The live rows in one sort order, and (made on first need) each row's place in it."""

    def __init__(self, rows: Rows) -> None:
        self.rows = rows
        self._places: Rows | None = None

    def places(self) -> Rows:
        """``places[row]`` is the position of ``row`` in the order."""
        if self._places is None:
            places = np.empty(self.rows.size, dtype=np.int32)
            places[self.rows] = np.arange(self.rows.size, dtype=np.int32)
            self._places = places
        return self._places


class Resident:
    """An inventory held in memory, with what answers a query in milliseconds.

    Build it once per inventory commit (about 1 s per million backups past
    loading the records); then :meth:`run` and :meth:`record` are safe to
    call from many threads.

    Example::

        resident = Resident.build(inventory)
        page = resident.answer(inventory.parse("sort=name:asc&limit=100"), ["id", "_payload"])
    """

    #: Its name among the backends (it is the server's, not an ``--engine`` choice).
    name: ClassVar[str] = "resident"

    def __init__(self, inventory: Source, frame: pl.DataFrame, records: pl.DataFrame) -> None:
        self.inventory = inventory
        #: The live backups' narrow columns, plus ``_rid`` (their row in ``records``).
        self.frame = frame
        self.records = records
        self.tables = Tables(
            backups=frame.lazy(),
            vaults=inventory.tables.vaults.collect().lazy(),
            members=inventory.tables.members.collect().lazy(),
            has_members=inventory.tables.has_members,
            records=records,
        )
        self._rids = frame[RID].cast(pl.Int64).to_numpy()
        self._codes: dict[str, _Codes | None] = {}
        self._orders: OrderedDict[tuple[tuple[str, bool], ...], _Order] = OrderedDict()
        self._lock = threading.Lock()
        self._ranks: dict[str, tuple[npt.NDArray[np.uint32], int]] = {}
        self._making: dict[tuple[tuple[str, bool], ...], threading.Lock] = {}
        self._masks: OrderedDict[tuple[bytes, tuple[str, ...]], Mask] = OrderedDict()
        # Ids are unique, so their order needs no rank: sort the text once.
        self._by_id: Rows = _rows(frame["id"].arg_sort())
        self._orders[(("id", False),)] = _Order(self._by_id)
        self._sorted_ids = frame["id"][pl.Series(self._by_id)]

    @classmethod
    def build(cls, inventory: Source, live: pl.DataFrame | None = None) -> Resident:
        """Load ``inventory``'s records and narrow columns and prepare the default order.

        ``live``: the inventory's live backup rows, already in memory (for
        example mapped from a file that several server processes share).

        Example: ``Resident.build(Inventory.open("cbrq-store"))``.
        """
        records = inventory.tables.records if live is None else live
        if records is None:
            records = inventory.load_physical()  # a damaged file is named, not a traceback
        heavy = {*INTERNAL_COLUMNS, "children", "replication_records"}
        narrow = [RID, *(c for c in records.columns if c not in heavy)]
        # Selecting columns shares the records' buffers; only superseded rows cost a copy.
        numbered = records.lazy().with_row_index(RID)
        frame = (
            (numbered if live is not None else inventory.live(numbered)).select(narrow).collect()
        )
        resident = cls(inventory, frame, records)
        for name in PREPARED:
            resident._coded(name)
        for key in SORT_KEYS:  # a new sort then costs one integer sort, not a text sort
            if key in frame.columns:
                resident._rank(key)
        resident._order(tuple((k.key, k.descending) for k in sort_keys(BackupQuery())))
        return resident

    # --- answering --------------------------------------------------------------

    @classmethod
    def check(cls, source: Source) -> None:
        """Nothing to check: it runs on polars and numpy, cbrq's own dependencies."""

    def answer(self, query: BackupQuery, columns: Sequence[str] | None = None) -> Result:
        """The count and the page of ``query``, as :func:`~engine.backends.polars.execute` does.

        Raises :class:`QueryError` for a marker that is not among the matches.

        Example: ``resident.answer(inventory.parse("status=error&limit=5")).count``.
        """
        mask = self.mask(query)
        total = int(np.count_nonzero(mask))
        order = self._order(tuple((k.key, k.descending) for k in sort_keys(query)))
        start = 0
        if query.marker is not None:
            row = self._row_of(query.marker)
            if row is None or not mask[row]:
                raise marker_error(query.marker)
            start = int(order.places()[row]) + 1
        rows = pl.Series(RID, self._rids[_walk(order, mask, start, query.offset, query.limit)])
        # Indexing a Series is a direct gather; Series.gather and with_columns go
        # through the query engine, whose thread pool every request shares.
        picked = [self.records.get_column(name)[rows] for name in (columns or self.records.columns)]
        page = pl.DataFrame(
            [canonical_payloads(column) if column.name == PAYLOAD else column for column in picked]
        )
        return Result(total, query.offset, query.limit, page)

    def count(self, query: BackupQuery) -> int:
        """The number of matches: the count of the query's mask.

        Example: ``resident.count(inventory.parse("status=error"))``.
        """
        return int(np.count_nonzero(self.mask(query)))

    def words(self, query: BackupQuery) -> list[str]:
        """The words of the plan nodes whose polars rules the masks evaluate.

        Example: ``resident.words(inventory.parse("status=error"))``
        -> ``["status is one of error"]``.
        """
        return [node.text for node in filter_plan(query, self.tables.has_members)]

    def plan(self, query: BackupQuery) -> str:
        """Each rule's predicate (evaluated on distinct values where it can) and the order walked.

        Example: ``print(resident.plan(inventory.parse("status=error&sort=name:asc")))``.
        """
        lines = [f"mask: {rule.predicate}" for rule in rules(query, self.tables)]
        lines.append("walk the order of " + ", ".join(str(k) for k in sort_keys(query)))
        return "\n".join(lines or ["mask: every row"])

    def record(self, backup_id: str) -> str | None:
        """One backup as dumped (JSON text, timestamps in the API's form), or ``None``.

        Example: ``resident.record("b1c4afd9-e7a6-4888-9010-c2bac3aa7910")``.
        """
        row = self._row_of(backup_id)
        if row is None:
            return None
        payload = self.records.get_column(PAYLOAD)[[int(self._rids[row])]]
        return str(canonical_payloads(payload)[0])

    def mask(self, query: BackupQuery) -> Mask:
        """Per live backup: does it match every filter of ``query``?

        Example: ``int(resident.mask(inventory.parse("status=error")).sum())``.
        """
        masks = [self._rule_mask(rule) for rule in rules(query, self.tables)]
        if not masks:
            return np.ones(self.frame.height, dtype=np.bool_)
        if len(masks) == 1:
            return masks[0]  # read-only: kept for the next request
        mask = np.logical_and(masks[0], masks[1])
        for more in masks[2:]:
            mask &= more
        return mask

    def _rule_mask(self, rule: Rule) -> Mask:
        """One rule's mask, kept while it is among the recently used ones.

        The key is the rule itself (its serialized predicate and the plans of
        its lookups, on tables fixed for this snapshot), so a kept mask is
        exactly what evaluating the rule again would give.
        """
        plans = tuple(
            f"{lookup.flag}:{lookup.on}:{lookup.keys.explain()}" for lookup in rule.lookups
        )
        key = (rule.predicate.meta.serialize(format="binary"), plans)
        with self._lock:
            kept = self._masks.get(key)
            if kept is not None:
                self._masks.move_to_end(key)
                return kept
        flags = {lookup.flag: self._flag(lookup) for lookup in rule.lookups}
        made = self._on_values(rule.predicate, flags)
        if made is None:
            made = self._direct(rule.predicate.fill_null(False), flags)
        made.flags.writeable = False
        with self._lock:
            self._masks[key] = made
            while len(self._masks) * max(made.size, 1) > MASK_CACHE_BYTES:
                self._masks.popitem(last=False)
        return made

    # --- filters ----------------------------------------------------------------

    def _on_values(self, predicate: pl.Expr, flags: dict[str, _Codes]) -> Mask | None:
        """``predicate`` evaluated once per combination of distinct values of its columns.

        ``None`` when a column has too many distinct values for that.
        """
        names = list(dict.fromkeys(predicate.meta.root_names()))
        coded: list[_Codes] = []
        for name in names:
            found = flags.get(name) or self._coded(name)
            if found is None:
                return None
            coded.append(found)
        sizes = [c.values.len() for c in coded]
        if len(coded) > 1 and int(np.prod(sizes, dtype=np.float64)) > MAX_COMBINATIONS:
            return None
        if not coded:
            verdict = pl.select(predicate.fill_null(False)).to_series().to_numpy()
            return np.full(self.frame.height, bool(verdict[0]), dtype=np.bool_)
        if len(coded) == 1:
            table = pl.DataFrame([coded[0].values.alias(names[0])])
            at = coded[0].codes
        else:
            # Every combination of distinct values, numbered in mixed radix as the rows are.
            strides = np.cumprod([1, *sizes[:-1]], dtype=np.int64)
            every = np.arange(int(np.prod(sizes, dtype=np.int64)), dtype=np.int64)
            table = pl.DataFrame(
                [c.values.gather((every // stride) % size).alias(name)
                 for name, c, stride, size in zip(names, coded, strides, sizes, strict=True)]
            )  # fmt: skip
            at = coded[0].codes.copy()
            for c, stride in zip(coded[1:], strides[1:], strict=True):
                at += c.codes * np.uint32(stride)
        verdict = table.select(predicate.fill_null(False)).to_series().to_numpy()
        return _by_code(np.asarray(verdict, dtype=np.bool_), at)

    def _direct(self, predicate: pl.Expr, flags: dict[str, _Codes]) -> Mask:
        """``predicate`` evaluated on every row (its columns have many distinct values)."""
        names = dict.fromkeys(predicate.meta.root_names())
        columns = [
            flags[n].values.gather(flags[n].codes).alias(n) if n in flags else self.frame[n]
            for n in names
        ]
        frame = pl.DataFrame(columns, height=self.frame.height)
        verdict = frame.select(predicate).to_series().to_numpy()
        return np.asarray(verdict, dtype=np.bool_)

    def _flag(self, lookup: Lookup) -> _Codes:
        """The lookup as a column that is true where a key matches, null elsewhere (a left join).

        On a column held as codes, the flag shares its codes: only its
        distinct values get a verdict.
        """
        keys = lookup.keys.select("key").collect().to_series().drop_nulls()
        coded = self._coded(lookup.on)
        if coded is not None:
            hit = coded.values.is_in(keys.implode()).fill_null(False)
            return _Codes(coded.codes, pl.select(pl.when(hit).then(True)).to_series())
        flag = np.zeros(self.frame.height, dtype=np.uint32)
        if lookup.on == "id":
            flag[self._rows_of(keys)] = 1
        else:
            flag[self.frame[lookup.on].is_in(keys.implode()).fill_null(False).to_numpy()] = 1
        return _Codes(flag, _FLAG_VALUES)

    def _coded(self, name: str) -> _Codes | None:
        """``name`` as codes, if it has few distinct values (made on first use, then kept)."""
        if name in self._codes:
            return self._codes[name]
        column = self.frame.get_column(name) if name in self.frame.columns else None
        found: _Codes | None = None
        if column is not None and isinstance(column.dtype, _DENSE):
            values = column.drop_nulls().unique().sort()
            if values.len() <= DISTINCT_SHARE * max(self.frame.height, 1):
                # Codes by hashing into the sorted values (a quarter of a rank's cost).
                numbers = pl.int_range(1, values.len() + 1, dtype=pl.UInt32, eager=True)
                codes = column.replace_strict(values, numbers, default=0, return_dtype=pl.UInt32)
                nulls = pl.Series([None], dtype=values.dtype)
                found = _Codes(codes.to_numpy(), nulls.append(values))
        with self._lock:
            self._codes[name] = found
        return found

    # --- orders and ids ---------------------------------------------------------

    def _order(self, keys: tuple[tuple[str, bool], ...]) -> _Order:
        """The live rows in the order of ``keys`` (nulls last), computed once and kept.

        Requests that need an order being computed wait for it rather than
        compute it again.
        """
        with self._lock:
            found = self._orders.get(keys)
            if found is not None:
                self._orders.move_to_end(keys)
                return found
            making = self._making.setdefault(keys, threading.Lock())
        with making:
            with self._lock:
                found = self._orders.get(keys)
            if found is not None:
                return found
            order = _Order(self._sorted(keys))
            with self._lock:
                self._orders[keys] = order
                self._making.pop(keys, None)
                while len(self._orders) > ORDERS_KEPT:
                    self._orders.popitem(last=False)
        return order

    def _sorted(self, keys: tuple[tuple[str, bool], ...]) -> Rows:
        """The rows sorted by ``keys`` (nulls last in either direction), through ranks.

        Each key becomes its dense rank (made once per column: codes, the id
        order, or a rank), flipped for a descending key, nulls past every
        value; when the ranks fit in 64 bits together, one integer per row
        is sorted, else the rank columns are.
        """
        parts: list[tuple[npt.NDArray[np.uint64], int]] = []
        for name, down in keys:
            ranks, top = self._rank(name)
            wide = ranks.astype(np.uint64)
            last = np.uint64(top + 1)
            value = np.where(ranks == 0, last, (last - wide) if down else wide)
            parts.append((value, (top + 1).bit_length()))
        if sum(bits for _, bits in parts) <= 64:
            key = np.zeros(self.frame.height, dtype=np.uint64)
            for value, bits in parts:
                key = (key << np.uint64(bits)) | value
            return _rows(pl.Series(key).arg_sort())
        frame = pl.DataFrame([pl.Series(f"k{i}", value) for i, (value, _) in enumerate(parts)])
        return _rows(frame.select(pl.arg_sort_by(frame.columns)).to_series())

    def _rank(self, name: str) -> tuple[npt.NDArray[np.uint32], int]:
        """``name`` as dense ranks (0 = null, then 1.. in value order) and the largest rank.

        Ranks keep order, ties and nulls, so sorting them is sorting the values
        (text by code point, times by instant) at the cost of integers.
        """
        with self._lock:
            found = self._ranks.get(name)
        if found is not None:
            return found
        coded = self._coded(name)
        if coded is not None:
            found = (coded.codes, coded.values.len() - 1)
        elif name == "id":
            # Ids are unique and never null: a rank is where the id order puts them.
            ranks = np.empty(self._by_id.size, dtype=np.uint32)
            ranks[self._by_id] = np.arange(1, self._by_id.size + 1, dtype=np.uint32)
            found = (ranks, int(self._by_id.size))
        else:
            dense = self.frame.get_column(name).rank("dense")
            top = dense.max()
            found = (dense.fill_null(0).cast(pl.UInt32).to_numpy(), int(top or 0))  # type: ignore[arg-type]
        with self._lock:
            self._ranks[name] = found
        return found

    def _row_of(self, backup_id: str) -> int | None:
        rows = self._rows_of(pl.Series([backup_id], dtype=pl.String))
        return int(rows[0]) if rows.size else None

    def _rows_of(self, ids: pl.Series) -> Rows:
        """The live rows holding ``ids`` (those that exist), by binary search."""
        ids = ids.cast(pl.String)
        at = self._sorted_ids.search_sorted(ids, side="left").cast(pl.Int64).to_numpy()
        inside = at < self._sorted_ids.len()
        found = np.zeros(at.shape, dtype=np.bool_)
        found[inside] = (
            self._sorted_ids[pl.Series(at[inside])].to_numpy()
            == ids.filter(pl.Series(inside)).to_numpy()
        )
        rows: Rows = self._by_id[at[found]]
        return rows


def _rows(numbers: pl.Series) -> Rows:
    """Row numbers (``arg_sort``'s ``UInt32``) as the int32 array orders are kept in."""
    rows: Rows = numbers.cast(pl.Int32).to_numpy()
    return rows


def _by_code(verdict: npt.NDArray[np.bool_], codes: npt.NDArray[np.integer]) -> Mask:
    """Per row, the verdict of its code (a comparison when one or two codes match)."""
    hits = np.flatnonzero(verdict)
    if hits.size == 0:
        return np.zeros(codes.size, dtype=np.bool_)
    if hits.size == verdict.size:
        return np.ones(codes.size, dtype=np.bool_)
    if hits.size <= 2:
        mask: Mask = codes == hits[0]
        for code in hits[1:]:
            mask |= codes == code
        return mask
    gathered: Mask = verdict.astype(np.bool_)[codes]
    return gathered


def _walk(order: _Order, mask: Mask, start: int, offset: int, limit: int | None) -> Rows:
    """The rows of ``order`` from ``start`` that match, skipping ``offset``, at most ``limit``.

    Looks at a stretch of the order at a time, doubling it, and stops once
    ``offset + limit`` matches are found: a page of a broad filter reads a
    few thousand rows of the order. Past :data:`WALK_ROWS` rows (matches
    that are few, or far down the order) it takes every match instead and
    picks the first ones by their places in the order.
    """
    need = None if limit is None else offset + limit
    rows = order.rows
    found: list[Rows] = []
    have = 0
    stride = FIRST_STRIDE
    at = start
    while at < rows.size and (need is None or have < need) and at - start < WALK_ROWS:
        piece = rows[at : at + stride]
        hits = piece[mask[piece]]
        found.append(hits)
        have += hits.size
        at += piece.size
        stride *= 2
    if at < rows.size and (need is None or have < need):
        places = order.places()[np.flatnonzero(mask)]
        places = places[places >= at]
        if need is not None and places.size > need - have:
            places = np.partition(places, need - have - 1)[: need - have]
        places.sort()
        found.append(rows[places])
    picked = np.concatenate(found) if found else np.empty(0, dtype=np.int32)
    end = None if limit is None else offset + limit
    return picked[offset:end]
