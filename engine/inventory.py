"""The Python API for queries: open an inventory, ask it what you would ask the API.

Example::

    from engine.inventory import Inventory

    inv = Inventory.open("cbrq-store")
    result = inv.query("status=available&status=error&sort=created_at:asc&limit=100",
                       project="0605767b5780d5762fc5c0118072a564")
    print(result.count, result.ids[:3])
    result.frame      # polars DataFrame of the page
    inv.lazy()        # a LazyFrame of every backup, for raw polars
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cached_property, wraps
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import polars as pl

from engine import analyses
from engine.analyses import Analysis
from engine.backends import Backend, backend_class
from engine.backends.base import RID, Result, Streamed, Tables
from engine.backends.polars import compile_filter, sort_keys
from engine.errors import Problem, QueryError
from engine.params import QueryContext, QueryParams, parse_query
from engine.payload import canonical_payloads
from engine.query import BackupQuery, Semantics
from engine.spec import (
    DEFAULT_MAX_AGE,
    DEFAULT_MIN_DAYS,
    DEFAULT_STATS_BY,
    DEFAULT_STUCK_HOURS,
    LONGEST_SPAN_DAYS,
    RECORD_KINDS,
)
from engine.store.history import (
    NO_HISTORY,
    as_of_rows,
    history_rows,
    listed_at,
    snapshot_rows,
)
from engine.store.layout import INTERNAL_COLUMNS, PAYLOAD
from engine.store.manifest import Lease, Manifest, resolve_store
from engine.store.read import decoding, fetch, live, scan, scan_physical, table_files

QuerySource = str | Mapping[str, Any] | QueryParams | None

#: What an inventory holds for one instant: dropped by :meth:`Inventory.as_of`.
_PER_INSTANT: Final[frozenset[str]] = frozenset(
    {"tables", "context", "_vaults", "_present", "instant", "everything", "_analysed"}
)

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _reads(method: _Method) -> _Method:
    """A method that reads the store: a file that does not decode is named (a StoreError).

    The decoders' own errors (polars, pyarrow, DuckDB, Spark) and the
    filesystem's become ``FILE: damaged (...); run cbrq check``.
    """

    @wraps(method)
    def reading(self: Inventory, *args: Any, **kwargs: Any) -> Any:
        with decoding(self.root, self.manifest):
            return method(self, *args, **kwargs)

    return cast(_Method, reading)


def _as_of_at(method: _Method) -> _Method:
    """An analysis that reads the inventory as of its ``at`` (SPEC §6 "Reading").

    An ``at`` given (a timestamp or ``now``, parsed once here) on a store
    with snapshots read at its latest runs the analysis on the inventory as
    of ``at`` (:meth:`Inventory.analysed`); ``at`` left out reads the latest
    view, as every store without snapshots always does.
    """

    @wraps(method)
    def analysing(self: Inventory, *args: Any, at: str | datetime | None = None, **kw: Any) -> Any:
        instant = None if at is None else analyses.parse_at(at, "at")
        return method(self.analysed(instant), *args, at=instant, **kw)

    return cast(_Method, analysing)


#: Memory the typed tables of :meth:`Inventory.from_dumps` take per byte of
#: dump file (pretty-printed JSON: peak RSS 4,759 MB for 1,880 MB at 1M backups,
#: 2026-12-01; gzip is counted by its uncompressed size).
MEMORY_PER_BYTE: Final[float] = 2.6


def _physical_memory() -> int:
    """Bytes of memory of this machine."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


class Inventory:
    """A read-only view of a stored inventory, or of dump files parsed into memory.

    ``engine`` names the backend that answers queries (:mod:`engine.backends`:
    ``polars``, the default, ``duckdb`` or ``spark``); see :meth:`using`.

    Example: ``Inventory.open().count("status=error")``.
    """

    engine: str = "polars"
    #: The SparkSession (or master URL) the ``spark`` backend uses; ``None``: its default.
    spark: Any = None

    def __init__(self, root: Path) -> None:
        self.root: Path | None = root
        self.label = str(root)
        # The commit read here stays readable until close(), whatever is ingested meanwhile.
        self._lease: Lease | None = Lease.take(root)
        self.manifest = self._lease.manifest
        self._frames: dict[str, pl.DataFrame] | None = None
        self._temporary: Path | None = None  # a store of from_dumps, removed by close()
        # What a backend keeps between queries (a DuckDB database with its views),
        # shared by the copies using() and in_memory() make: they read the same commit.
        self.backend_state: dict[str, Any] = {}
        #: SPEC §6: the instant answers are as of (``None``: the latest), and whether
        #: every backup ever seen is read instead (``--ever``).
        self.instant: datetime | None = None
        self.everything = False

    @classmethod
    def open(
        cls,
        store: str | os.PathLike[str] | None = None,
        *,
        engine: str = "polars",
        spark: Any = None,
        as_of: str | datetime | None = None,
        ever: bool = False,
    ) -> Inventory:
        """Open the inventory at ``store`` (default ``$CBRQ_STORE`` or ``./cbrq-store``).

        ``engine`` and ``spark``: see :meth:`using`; ``as_of`` and ``ever``: see :meth:`as_of`.

        Example: ``Inventory.open("cbrq-store")``, ``Inventory.open("inv", engine="duckdb")``.
        """
        opened = cls(resolve_store(store)).using(engine, spark=spark)
        return opened.as_of(as_of, ever=ever) if as_of is not None or ever else opened

    def as_of(self, at: str | datetime | None, *, ever: bool = False) -> Inventory:
        """This inventory (same commit) answering as of ``at`` (SPEC §6), or as ever seen.

        ``at``: ``now``, a timestamp or a datetime; ``None``: the latest. A
        store fed snapshots answers with the backups present at ``at``, each
        at its version at ``at``; ``ever`` reads every backup ever seen at
        its newest version (what a store without snapshots answers).

        Example: ``Inventory.open("inv").as_of("2026-11-02T00:00:00Z").count()``.
        """
        if ever and at is not None:
            raise ValueError("as of an instant, or every backup ever seen: not both")
        copy = Inventory.__new__(Inventory)
        copy.__dict__.update({k: v for k, v in self.__dict__.items() if k not in _PER_INSTANT})
        copy.instant = None if at is None else analyses.parse_at(at, "as_of")
        if copy.instant is not None and (self.root is None or not self.manifest.keeps_history):
            raise QueryError([NO_HISTORY])
        copy.everything = ever
        copy.backend_state = {}  # a DuckDB database's views belong to one instant
        return copy

    @property
    def history_view(self) -> bool:
        """Whether answers follow SPEC §6's rule (a store with snapshots, or an instant asked).

        Example: ``Inventory.open("inv").history_view`` -> ``True`` once fed ``--snapshot``.
        """
        if self.root is None or self.everything:
            return False
        return self.manifest.keeps_history

    @cached_property
    def _present(self) -> pl.Series:
        """The physical rows (``_rid``) of the backups present at :attr:`instant`."""
        with decoding(self.root, self.manifest):
            rows = as_of_rows(self._root, self.manifest, self.instant).collect()
        return rows[RID]

    def using(self, engine: str, *, spark: Any = None) -> Inventory:
        """This inventory (the same commit and lease) answering with another backend.

        ``engine``: ``polars``, ``duckdb`` or ``spark``; ``spark``: an existing
        ``SparkSession`` or a master URL such as ``local[2]`` or
        ``spark://host:7077`` (default: local mode). Answers are the same
        whatever the engine.

        Example: ``Inventory.open("inv").using("spark", spark="local[2]").count("status=error")``.
        """
        backend = backend_class(engine)
        if engine == self.engine and spark is None:
            return self
        copy = Inventory.__new__(Inventory)
        copy.__dict__.update(self.__dict__)
        copy.engine, copy.spark = engine, spark
        backend.check(copy)
        return copy

    @classmethod
    def from_dumps(
        cls,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        lenient: bool = False,
    ) -> Inventory:
        """Parse dump files straight into memory and query them; nothing is written to disk.

        The same checks, dedup rule and answers as an ingest into a store
        (:func:`engine.api.load_dumps`). Dumps too big to hold in memory
        (typed tables take about :data:`MEMORY_PER_BYTE` bytes per byte of
        JSON, and at most a third of this machine's memory is used) are
        ingested into a temporary store instead, removed by :meth:`close`.

        Example: ``Inventory.from_dumps("sample_data").count()`` (one path or a list).
        """
        from engine.api import ingest, load_dumps
        from engine.ingest.sources import expand_paths, source_size

        if isinstance(paths, (str, os.PathLike)):
            names = [os.fspath(paths)]  # one path, not a sequence of letters
        else:
            names = [os.fspath(path) for path in paths]
        label = " ".join(names)
        needed = MEMORY_PER_BYTE * sum(source_size(ref) for ref in expand_paths(names))
        if needed <= _physical_memory() // 3:
            return cls.from_frames(load_dumps(names, lenient=lenient).frames, label=label)
        folder = Path(tempfile.mkdtemp(prefix="cbrq-from-"))
        try:
            ingest(names, folder, lenient=lenient)
            inventory = cls(folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        inventory.label, inventory._temporary = label, folder
        return inventory

    @classmethod
    def from_frames(cls, frames: Mapping[str, pl.DataFrame], *, label: str = "memory") -> Inventory:
        """An inventory over tables already in memory, in the store's schema.

        ``frames`` maps each record kind to its table as :func:`engine.api.load_dumps`
        makes it (one row per key, backups sorted by ``created_at`` then ``id``).

        Example: ``Inventory.from_frames(load_dumps(["sample_data"]).frames)``.
        """
        inventory = cls.__new__(cls)
        inventory.root = None
        inventory._lease = None
        inventory._temporary = None
        inventory.backend_state = {}
        inventory.instant, inventory.everything = None, False
        inventory.label = label
        inventory._frames = {kind: frames[kind] for kind in RECORD_KINDS}
        counts = {kind: frame.height for kind, frame in inventory._frames.items()}
        inventory.manifest = Manifest(counts=counts)
        return inventory

    def close(self) -> None:
        """Let writers remove the files of the commit this inventory read (once no one reads it).

        Queries after ``close`` may fail if an ingest merged those files away.

        Example: ``with Inventory.open() as inv: ...``.
        """
        for state in self.backend_state.values():
            if hasattr(state, "close"):
                state.close()
        self.backend_state.clear()
        if self._lease is not None:
            self._lease.release()
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

    def __repr__(self) -> str:
        where = repr(str(self.root)) if self.root is not None else f"in memory: {self.label}"
        counts = ", ".join(f"{self.manifest.counts.get(k, 0):,} {k}" for k in RECORD_KINDS)
        generation = f", generation {self.manifest.generation}" if self.root is not None else ""
        return f"Inventory({where}{generation}; {counts})"

    def __enter__(self) -> Inventory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lazy(self, kind: str = "backups") -> pl.LazyFrame:
        """A LazyFrame of every record of ``kind`` with typed columns.

        Example: ``inv.lazy().group_by("status").len().collect()``.
        """
        return self.raw(kind).drop(list(INTERNAL_COLUMNS))

    def raw(self, kind: str = "backups") -> pl.LazyFrame:
        """A LazyFrame of ``kind`` with the internal columns (``_payload``, ``_seq``, ``_row``).

        Example: ``inv.raw("vaults").select("id", "_payload").collect()``.
        """
        if kind not in RECORD_KINDS:
            near = difflib.get_close_matches(kind, RECORD_KINDS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(
                f"unknown record kind {kind!r} (allowed: {', '.join(RECORD_KINDS)}){hint}"
            )
        if self._frames is not None:
            return self._frames[kind].lazy()
        if kind == "backups" and self.history_view:
            numbered = self.physical().with_row_index(RID)
            return self.live(numbered).drop(RID)
        frame = self._small(kind)
        with decoding(self.root, self.manifest):
            # A footer that does not decode is named here, not at a caller's collect;
            # polars keeps the resolved scan, so a later collect reads no footer again.
            frame.collect_schema()
        return frame

    def _small(self, kind: str) -> pl.LazyFrame:
        """The vaults or members this inventory answers with: as of :attr:`instant` (SPEC §6).

        Example: ``inv.as_of("2026-11-02T00:00:00Z")._small("vaults")``.
        """
        if self.history_view:
            with decoding(self.root, self.manifest):
                return listed_at(self._root, self.manifest, kind, self.instant).collect().lazy()
        return scan(self._root, kind, self.manifest)

    @property
    def _root(self) -> Path:
        assert self.root is not None, "a store-backed inventory"
        return self.root

    @_reads
    def in_memory(self, records: bool = False) -> Inventory:
        """This inventory with the columns queries filter and sort on held in memory.

        With ``records``, whole records (every column and ``_payload``) are
        held too, and pages are gathered from memory instead of Parquet row
        groups: for servers (about 1.3 GB per million backups).

        Example: ``fast = Inventory.open().in_memory()``.
        """
        if self._frames is not None:
            return self  # everything is in memory already
        heavy = {*INTERNAL_COLUMNS, "children", "replication_records"}
        backups = self.tables.backups
        narrow = backups.select([c for c in backups.collect_schema().names() if c not in heavy])
        copy = Inventory.__new__(Inventory)
        copy.__dict__.update(self.__dict__)  # the same commit, lease and label
        copy.__dict__["tables"] = Tables(
            backups=narrow.collect().lazy(),
            vaults=self.tables.vaults.collect().lazy(),
            members=self.tables.members.collect().lazy(),
            has_members=self.tables.has_members,
            records=self.physical().collect() if records else None,
            ordered=self.tables.ordered,
        )
        return copy

    @_reads
    def record(self, backup_id: str) -> str | None:
        """One backup as dumped (JSON text), or ``None`` if the inventory has no such id.

        Example: ``inv.record("b1c4afd9-e7a6-4888-9010-c2bac3aa7910")``.
        """
        rids = self.tables.backups.filter(pl.col("id") == backup_id).select(RID).collect()
        if rids.height == 0:
            return None
        if self.tables.records is not None:
            payload = self.tables.records[PAYLOAD].gather(rids[RID])
        else:
            payload = fetch(table_files(self._root, self.manifest, "backups"), rids[RID])[PAYLOAD]
        return str(canonical_payloads(payload)[0])

    @cached_property
    def tables(self) -> Tables:
        """The lazy tables queries run on."""
        if self._frames is not None:
            return Tables(
                backups=self._frames["backups"].lazy().with_row_index(RID),
                vaults=self._frames["vaults"].lazy(),
                members=self._frames["members"].lazy(),
                has_members=self._frames["members"].height > 0,
                records=self._frames["backups"],
            )
        backups = self.physical().with_row_index(RID)
        return Tables(
            backups=self.live(backups),
            vaults=self._small("vaults"),
            members=self._small("members"),
            has_members=self.manifest.counts.get("members", 0) > 0,
            ordered=self.manifest.ordered("backups"),
        )

    def physical(self) -> pl.LazyFrame:
        """Every stored backup row, superseded ones too, in store order (``_rid`` numbers these).

        Example: ``inv.physical().select(pl.len()).collect()``.
        """
        if self._frames is not None:
            return self._frames["backups"].lazy()
        return scan_physical(self._root, "backups", self.manifest)

    @_reads
    def load_physical(self) -> pl.DataFrame:
        """:meth:`physical` read into memory; a file that does not decode is named.

        Example: ``inv.load_physical().height`` -> stored rows, superseded ones too.
        """
        return self.physical().collect()

    def live(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """``frame`` (rows of :meth:`physical`, numbered by ``_rid``) less the superseded rows.

        Example: ``inv.live(inv.physical().with_row_index("_rid"))``.
        """
        if self._frames is not None:
            return frame
        if self.history_view and self.instant is None and "backups" in self.manifest.away:
            return live(frame, self._root, self.manifest, "backups", RID, latest=True)
        if self.history_view:
            return frame.filter(pl.col(RID).is_in(self._present.implode()))
        return live(frame, self._root, self.manifest, "backups", RID)

    @cached_property
    def context(self) -> QueryContext:
        """What validation needs to know of the data (resource types, vaults, members)."""
        # A closure over the table, not a bound method: no reference cycle keeps a
        # dropped inventory (and the lease on its files) alive until the next GC.
        backups = self.tables.backups

        def resource_types() -> frozenset[str]:
            types = backups.select(pl.col("resource_type").drop_nulls().unique())
            return frozenset(types.collect()["resource_type"].to_list())

        return QueryContext(
            resource_types=resource_types,
            has_vaults=self.manifest.counts.get("vaults", 0) > 0,
            has_members=self.manifest.counts.get("members", 0) > 0,
        )

    @_reads
    def parse(
        self,
        query: QuerySource = None,
        *,
        project: str | None = None,
        semantics: Semantics | None = None,
        **params: Any,
    ) -> BackupQuery:
        """Parse a query (string, mapping or keyword arguments) against this inventory.

        Example: ``inv.parse(status=["available", "error"], limit=10)``.
        """
        merged = QueryParams.of(query).merged(QueryParams.from_mapping(params))
        return parse_query(merged, project=project, semantics=semantics, context=self.context)

    @_reads
    def query(
        self,
        query: QuerySource = None,
        *,
        project: str | None = None,
        semantics: Semantics | None = None,
        columns: Sequence[str] | None = None,
        **params: Any,
    ) -> Result:
        """Answer a ListBackups query exactly as the API would, from this inventory.

        Without ``limit`` every match is returned (the API's default of 1000
        applies only to ``cbrq serve``). ``columns`` limits what is read of
        the page's records (``["id", "_payload"]`` suffices for the API
        response); by default every typed column and the payload.

        Example::

            inv.query("status=error&sort=name:asc", limit=10).ids
        """
        parsed = self.parse(query, project=project, semantics=semantics, **params)
        return self.run(parsed, columns)

    @property
    def backend(self) -> Backend:
        """The backend of :attr:`engine`, bound to this inventory (:mod:`engine.backends`).

        Example: ``print(Inventory.open("inv", engine="duckdb").backend.plan(query))``.
        """
        return backend_class(self.engine)(self)

    def files(self, kind: str) -> list[Path]:
        """The store's Parquet files of ``kind``, in order (none for an inventory in memory).

        Example: ``Inventory.open("cbrq-store").files("backups")[0].name``.
        """
        return [] if self.root is None else table_files(self.root, self.manifest, kind)

    @_reads
    def run(self, query: BackupQuery, columns: Sequence[str] | None = None) -> Result:
        """Execute an already parsed query (with this inventory's :attr:`engine`).

        Example: ``inv.run(inv.parse("limit=1"))``.
        """
        return self.backend.answer(query, columns)

    def stream(self, query: BackupQuery, columns: Sequence[str] | None = None) -> Streamed:
        """:meth:`run`, the page's records read a batch at a time (for writing as they come).

        Backends that cannot stream give their whole answer as one batch. A
        file that does not decode while the batches are read is named.

        Example: ``inv.stream(inv.parse("status=error")).count``.
        """
        with decoding(self.root, self.manifest):
            backend = self.backend
            stream = getattr(backend, "stream", None)
            if stream is None:
                return Streamed.of(backend.answer(query, columns))
            answer: Streamed = stream(query, columns)
        return dataclasses.replace(answer, batches=self._decoded(answer.batches))

    def _decoded(self, batches: Iterator[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        with decoding(self.root, self.manifest):
            yield from batches

    @_reads
    def count(
        self,
        query: QuerySource = None,
        *,
        project: str | None = None,
        semantics: Semantics | None = None,
        **params: Any,
    ) -> int:
        """The number of matches (before paging), without reading records.

        Example: ``inv.count("status=error")``.
        """
        parsed = self.parse(query, project=project, semantics=semantics, **params)
        return self.backend.count(parsed)

    @_reads
    def explain(
        self,
        query: QuerySource = None,
        *,
        project: str | None = None,
        semantics: Semantics | None = None,
        **params: Any,
    ) -> str:
        """Each filter in words, the sort and paging, then the plan of :attr:`engine`.

        The DuckDB plan is one SQL statement to paste into DuckDB.

        Example: ``print(inv.explain("status=error&used_percent=80"))``.
        """
        parsed = self.parse(query, project=project, semantics=semantics, **params)
        backend = self.backend
        words = backend.words(parsed)  # the plan the engine itself applies
        lines = ["filters:"]
        lines += [f"  - {text}" for text in words] or ["  (none)"]
        lines.append("sort: " + ", ".join(str(k) for k in sort_keys(parsed)) + " (nulls last)")
        paging = f"marker={parsed.marker!r}, offset={parsed.offset}, limit={parsed.limit}"
        lines.append(f"paging: count all matches, then {paging}")
        lines += [f"{self.engine} plan:", backend.plan(parsed)]
        return "\n".join(lines)

    # --- analyses (SPEC §5) ---------------------------------------------------

    def analysed(self, at: str | datetime | None) -> Inventory:
        """The inventory an analysis measuring against ``at`` reads (SPEC §6 "Reading").

        On a store with snapshots read at its latest, an ``at`` given means
        the inventory as of ``at`` (a report "at" a past instant shows that
        day); ``None`` (the analyses' default ``at``), a store without
        snapshots, dumps in memory, or an inventory already pinned by
        :meth:`as_of` (or ``ever``) give this inventory. The last view made
        is kept, so the analyses of one report share it.

        Example: ``Inventory.open("inv").analysed("2026-11-01T12:00:00Z").count()``.
        """
        if at is None or self.instant is not None or not self.history_view:
            return self
        instant = analyses.parse_at(at, "at")
        kept = self.__dict__.get("_analysed")
        if kept is None or kept[0] != instant:
            kept = self.__dict__["_analysed"] = (instant, self.as_of(instant))
        view: Inventory = kept[1]
        return view

    def _scope(
        self, query: QuerySource, project: str | None, semantics: Semantics | None
    ) -> tuple[BackupQuery, pl.LazyFrame]:
        """A filter of an analysis parsed (paging refused) and the live backups it keeps."""
        parsed = analyses.parse_filter(
            QueryParams.of(query),
            lambda params: self.parse(params, project=project, semantics=semantics),
        )
        return parsed, compile_filter(parsed, self.tables)

    def _at(self, at: str | datetime | None) -> datetime | None:
        return analyses.resolve_at(at, lambda: analyses.default_at(self.tables.backups))

    @cached_property
    def _vaults(self) -> pl.DataFrame:
        return analyses.vault_table(self.raw("vaults"))

    @_reads
    @_as_of_at
    def stats(
        self,
        filter: QuerySource = None,
        *,
        by: str | Sequence[str] = DEFAULT_STATS_BY,
        at: str | datetime | None = None,
        project: str | None = None,
        semantics: Semantics | None = None,
    ) -> Analysis:
        """Backups, size and first/last ``created_at`` per group (SPEC §5 stats).

        ``by``: keys among status, resource_type, image_type, vault_id,
        project_id, enterprise_project_id, resource_az, day, week, month.

        Example: ``inv.stats("status=error", by="resource_type,week").frame``.
        """
        keys = analyses.parse_by(by)
        _, backups = self._scope(filter, project, semantics)
        return analyses.stats(backups, keys, self._at(at))

    @_reads
    @_as_of_at
    def rpo(
        self,
        filter: QuerySource = None,
        *,
        max_age: str | timedelta = DEFAULT_MAX_AGE,
        at: str | datetime | None = None,
        project: str | None = None,
        semantics: Semantics | None = None,
    ) -> Analysis:
        """Every resource's newest good backup, its age and verdict never/breach/ok (SPEC §5 rpo).

        Example: ``inv.rpo(max_age="24h", at="now").frame.filter(pl.col("verdict") != "ok")``.
        """
        limit = analyses.parse_duration(max_age, "max_age")
        query, backups = self._scope(filter, project, semantics)
        vaults = analyses.narrow_vaults(self._vaults, query)
        at_ = self._at(at)
        return analyses.rpo(backups, vaults, query, at_, limit, ordered=self.tables.ordered)

    @_reads
    @_as_of_at
    def retention(
        self,
        filter: QuerySource = None,
        *,
        min_days: int = DEFAULT_MIN_DAYS,
        at: str | datetime | None = None,
        project: str | None = None,
        semantics: Semantics | None = None,
    ) -> Analysis:
        """Available backups kept fewer than ``min_days`` days (short) or past expiry (overdue).

        Example: ``inv.retention(min_days=35).frame``.
        """
        days = analyses.parse_count(min_days, "min_days", LONGEST_SPAN_DAYS)
        _, backups = self._scope(filter, project, semantics)
        return analyses.retention(backups, self._at(at), days)

    @_reads
    @_as_of_at
    def capacity(
        self,
        filter: QuerySource = None,
        *,
        at: str | datetime | None = None,
        project: str | None = None,
        semantics: Semantics | None = None,
        forecast: bool = False,
    ) -> Analysis:
        """Per vault: size, use, fill against its threshold, backups, resources (SPEC §5).

        ``forecast`` adds ``days_to_full`` (SPEC §6, needs a store's vault history).

        Example: ``inv.capacity().frame.filter("full")``.
        """
        query, backups = self._scope(filter, project, semantics)
        vaults = analyses.narrow_vaults(self._vaults, query)
        result = analyses.capacity(backups, vaults, self._at(at))
        return self._forecast(result) if forecast else result

    @_reads
    @_as_of_at
    def hygiene(
        self,
        filter: QuerySource = None,
        *,
        stuck_hours: float = DEFAULT_STUCK_HOURS,
        at: str | datetime | None = None,
        project: str | None = None,
        semantics: Semantics | None = None,
    ) -> Analysis:
        """Backups that are orphaned, stuck in a passing status, or in error (SPEC §5 hygiene).

        Example: ``inv.hygiene(stuck_hours=12).frame``.
        """
        hours = analyses.parse_count(stuck_hours, "stuck_hours", LONGEST_SPAN_DAYS * 24)
        _, backups = self._scope(filter, project, semantics)
        return analyses.hygiene(backups, self._vaults, self._at(at), hours)

    @_reads
    def diff(self, other: Inventory, *, at: str | datetime | None = None) -> Analysis:
        """Backups and vaults added, removed or changed from this inventory (A) to ``other`` (B).

        ``at`` defaults to B's default (its newest ``updated_at``).

        Example: ``Inventory.open("last-week").diff(Inventory.open("today")).frame``.
        """
        return analyses.diff(
            self.raw("backups"),
            other.raw("backups"),
            self._vaults,
            other._vaults,
            other._at(at),
        )

    # --- history (SPEC §6) ------------------------------------------------------

    def _history_store(self, what: str) -> Path:
        """The store's root, for a command that reads its history."""
        if self.root is None:
            raise QueryError(
                [Problem(what, None, "reads a store's history", "--store, not --from")]
            )
        return self.root

    def _newest_taken(self) -> datetime | None:
        taken = [r.taken_at for r in self.manifest.ingests if r.taken_at]
        return analyses.parse_at(max(taken), "taken_at") if taken else None

    @_reads
    def snapshots(self) -> Analysis:
        """One row per snapshot: seq, taken_at, scope, projects, backups, added, gone, changed.

        Example: ``Inventory.open("inv").snapshots().frame``.
        """
        root = self._history_store("snapshots")
        frame = snapshot_rows(root, self.manifest)
        return Analysis("snapshots", self._newest_taken(), frame)

    @_reads
    def history(self, ids: Sequence[str]) -> Analysis:
        """Per backup, one row per version and change of presence: id, taken_at, event, ...

        ``event`` is ``seen``, ``changed``, ``gone`` or ``back``. Raises
        :class:`~engine.errors.NeverSeen` naming ids no ingest held.

        Example: ``Inventory.open("inv").history(["b-1"]).frame``.
        """
        root = self._history_store("history")
        return Analysis(
            "history", self._newest_taken(), history_rows(root, self.manifest, list(ids))
        )

    # --- the inventory over time (SPEC §6 trend) ---------------------------------

    @_reads
    def trend(
        self,
        filter: QuerySource = None,
        *,
        every: str = "day",
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        max_age: str | timedelta = DEFAULT_MAX_AGE,
        project: str | None = None,
        semantics: Semantics | None = None,
    ) -> Analysis:
        """Per day, week or month: backups, size, statuses, added, gone, breaches, vault use.

        One row per period end from the first snapshot to the last (SPEC §6);
        needs a store fed ``--snapshot`` ingests.

        Example: ``Inventory.open("inv").trend("status=error", every="week").frame``.
        """
        from engine.trend import TrendAsk, matching, trend

        ask = TrendAsk.parse(every, since, until, max_age)
        root = self._history_store("trend")
        query = analyses.parse_filter(
            QueryParams.of(filter),
            lambda params: self.parse(params, project=project, semantics=semantics),
        )
        match = matching(query, self.physical(), self.tables)
        return trend(root, self.manifest, ask, match, self._vaults_at(query))

    def _vaults_at(self, query: BackupQuery) -> Callable[[datetime], Any]:
        """The vaults present at an instant (narrowed by ``query``) and the resources rpo takes."""

        def at(instant: datetime) -> tuple[pl.DataFrame, pl.Series]:
            vaults = analyses.vault_table(self.as_of(instant).raw("vaults"))
            listed = analyses.listed_resources(vaults, query)
            return analyses.narrow_vaults(vaults, query), listed

        return at

    def _forecast(self, capacity: Analysis) -> Analysis:
        """``capacity`` with ``days_to_full`` from the store's vault versions (SPEC §6)."""
        from dataclasses import replace

        from engine.store.history import vault_versions
        from engine.trend.forecast import forecast

        versions = vault_versions(self._history_store("forecast"), self.manifest)
        return replace(capacity, frame=forecast(capacity.frame, versions, capacity.at))
