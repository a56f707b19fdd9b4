"""The Spark backend: ListBackups on Apache Spark, over the same Parquet inventory.

For inventories past one machine (a year of daily exports in a data lake):
the store's files are plain Parquet, so Spark reads them where they lie and
answers with the semantics of SPEC §2, the same as the polars engine
(:mod:`engine.backends.polars`, :mod:`engine.backends.base`), which the test suite proves
on the golden table, the differential property test and the paging walk.

- :data:`TRANSLATE`: one rule per node type of :mod:`engine.plan` (checked
  complete at import, :class:`engine.backends.Translator`), each giving a
  pyspark Column predicate and the vault or member lookups it reads (joined
  as broadcast joins: those tables are small next to the backups); the
  nodes, and their words, are :func:`engine.params.filter_plan`'s.
- :func:`tables`: a store's live rows (its Parquet files less the
  ``(_seq, _row)`` pairs of its dead file, a left anti join: the rule of
  :func:`engine.store.manifest.duckdb_sql`), or an in-memory inventory's polars
  frames handed to Spark through Arrow.
- :func:`answer`: count, then the page in SPEC's total order (sort keys with
  nulls last in either direction, then ``id``; Spark compares strings by
  their UTF-8 bytes, which is code point order, and timestamps by instant),
  then ``marker`` (a comparison with the marker's keys, not a row
  number), ``offset``, ``limit``. Count and page are two Spark jobs run at
  once. A store's page is sorted on the narrow columns and its records read
  afterwards by id, from the row groups its ``created_at`` values select.

Example::

    from engine.backends import spark
    from engine.inventory import Inventory

    inv = Inventory.open("cbrq-store")
    result = spark.answer(inv.parse("status=error&limit=10"), inv)   # local[2]
    result.count, result.ids

    # On a cluster: the same call, with a session of your own.
    session = spark.session("spark://head:7077")
    spark.answer(inv.parse("used_percent=80"), inv, spark=session)
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import reduce
from pathlib import Path
from typing import IO, TYPE_CHECKING, ClassVar, Final

import polars as pl

from engine.backends import Translator
from engine.backends.base import Result, marker_error
from engine.backends.polars import sort_keys
from engine.errors import CbrqError, MissingExtra
from engine.params import filter_plan
from engine.payload import canonical_payloads
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
from engine.query import BackupQuery, SortKey
from engine.spec import RECORD_KINDS
from engine.store.layout import PAYLOAD, ROW, SEQ
from engine.store.read import dead_file, table_files

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from engine.backends.base import Source

#: The master of :func:`session` when none is given: two local cores.
DEFAULT_MASTER: Final[str] = "local[2]"

#: Settings of a session cbrq starts itself (an existing one is used as it is).
SESSION_CONF: Final[dict[str, str]] = {
    # Instants are UTC everywhere in cbrq; a session in another zone would
    # shift what Spark shows of them (never how it compares them).
    "spark.sql.session.timeZone": "UTC",
    # Inventory tables of one machine are small for Spark: few shuffle tasks.
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # Local mode needs no network; a cluster's master URL overrides nothing here.
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    # A page's records are found by the row groups' created_at statistics
    # (engine.backends.spark._records): an IN list of up to a page's values
    # must reach Parquet as values, not widened to one min-max range.
    "spark.sql.parquet.pushdown.inFilterThreshold": "1000",
}


def session(master: str = DEFAULT_MASTER, *, spark: SparkSession | None = None) -> SparkSession:
    """A SparkSession: ``spark`` if given, else the active one, else a new one on ``master``.

    A new session is local with two cores by default (any master URL works
    unchanged: ``spark://host:7077``, ``yarn``, ``k8s://...``), in UTC, with
    few shuffle partitions, no web UI and quiet logs: errors only, without
    Spark's startup banner or the JVM's incubator notice on stderr, unless
    ``CBRQ_SPARK_VERBOSE=1`` asks for Spark's own logging (:data:`VERBOSE_ENV`).

    Example: ``session().range(3).count() == 3``.
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if spark is not None:
        return spark
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if SparkContext._active_spark_context is not None:
        # Started in another thread (the active session is per thread): use it as it is.
        return SparkSession.builder.getOrCreate()
    builder = SparkSession.builder.master(master).appName("cbrq")
    for key, value in SESSION_CONF.items():
        builder = builder.config(key, value)
    if verbose():
        return builder.getOrCreate()
    for key, value in QUIET_CONF.items():
        builder = builder.config(key, value)
    if SparkContext._gateway is None:  # no driver JVM yet: start it with cbrq's logging
        _launch_quietly({**SESSION_CONF, **QUIET_CONF, "spark.master": master})
    started = builder.getOrCreate()
    started.sparkContext.setLogLevel("ERROR")
    return started


#: Set (to anything but ``0`` or nothing) to start Spark with its own logging: its
#: default log4j profile, the startup banner and WARN lines on stderr.
VERBOSE_ENV: Final[str] = "CBRQ_SPARK_VERBOSE"
#: The log4j2 configuration of a driver cbrq starts, shipped with the package.
LOG4J2_FILE: Final[Path] = Path(__file__).with_name("spark-log4j2.properties")
#: Settings of a quiet session: the driver JVM reads cbrq's log4j2 file from its start,
#: so Spark's "Using Spark's default log4j profile" and "Setting default log level"
#: notices are never printed (``setLogLevel`` alone only silences what comes later).
QUIET_CONF: Final[dict[str, str]] = {
    "spark.driver.extraJavaOptions": shlex.quote(f"-Dlog4j2.configurationFile={LOG4J2_FILE}"),
}
#: What the JVM itself writes to stderr on start, which no logging setting reaches:
#: Spark 4 adds ``--add-modules=jdk.incubator.vector`` and the JVM says so.
JVM_NOTICES: Final[tuple[bytes, ...]] = (b"WARNING: Using incubator modules:",)


def verbose() -> bool:
    """Whether :data:`VERBOSE_ENV` asks for Spark's own logging.

    Example: with ``CBRQ_SPARK_VERBOSE=1`` set, ``verbose()`` is true; unset or ``0``, false.
    """
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def _launch_quietly(conf: dict[str, str]) -> None:
    """Start the driver JVM with ``conf``, its stderr passed on less :data:`JVM_NOTICES`.

    pyspark's ``launch_gateway`` takes the Popen arguments of the JVM for this; the
    SparkContext made next finds the gateway running and uses it.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    launch = SparkConf(loadDefaults=False)
    for key, value in conf.items():
        launch.set(key, value)
    # pyspark leaves launch_gateway unannotated.
    gateway = launch_gateway(launch, popen_kwargs={"stderr": subprocess.PIPE})  # type: ignore[no-untyped-call]
    # Under spark-submit (PYSPARK_GATEWAY_PORT set) pyspark joins the running JVM: no process.
    stream = getattr(gateway.proc, "stderr", None)
    if stream is not None:
        forward = threading.Thread(target=pass_on, args=(stream,), name="cbrq-spark-stderr")
        forward.daemon = True
        forward.start()
    SparkContext._ensure_initialized(gateway=gateway)


def pass_on(stream: IO[bytes], notices: tuple[bytes, ...] = JVM_NOTICES, to: int = 2) -> None:
    """Copy ``stream`` to the file descriptor ``to`` line by line, less the lines of ``notices``.

    Runs until the stream ends (the JVM exits). A failed write drops that line and
    goes on reading, so the JVM never blocks on a full pipe.

    Example::

        read, write = os.pipe()
        os.write(write, b"WARNING: Using incubator modules: x\nERROR real\n"); os.close(write)
        pass_on(os.fdopen(read, "rb"))   # stderr shows "ERROR real" only
    """
    for line in stream:
        if line.startswith(notices):
            continue
        with contextlib.suppress(OSError):
            view = memoryview(line)
            while view:
                view = view[os.write(to, view) :]


class SessionError(CbrqError):
    """A master URL that cannot be honoured: another session runs in this process (exit 2).

    Example: ``raise SessionError("--spark-master local[1]: ...")``.
    """

    exit_status = 2


@dataclass(frozen=True)
class Started:
    """The session an inventory answers with when given a master URL (or nothing).

    ``own``: cbrq started it, so the inventory's ``close`` stops it; a
    session that was already running in this process is used and left running.

    Example: ``Started.on("local[2]").session.range(3).count()``.
    """

    session: SparkSession
    own: bool

    @classmethod
    def on(cls, master: str | None) -> Started:
        """The active session if there is one (it must be on ``master`` if given), else a new one.

        Example: ``Started.on(None)`` (the active session, or ``local[2]``).
        """
        from pyspark import SparkContext

        running = SparkContext._active_spark_context
        if running is not None and master is not None and running.master != master:
            raise SessionError(
                f"--spark-master {master}: this process already runs a Spark session on "
                f"{running.master}; pass that session (spark=session) or stop it first"
            )
        return cls(session(master or DEFAULT_MASTER), own=running is None)

    def close(self) -> None:
        """Stop the session if cbrq started it (the inventory's ``close`` calls this)."""
        if self.own:
            self.session.stop()


@dataclass(frozen=True)
class SparkTables:
    """The inventory's live tables as Spark DataFrames (every stored column).

    ``has_members`` tells whether any share-member record exists (SPEC §2,
    ``own_type=shared`` with no member data).

    Example: ``tables(inv, session()).backups.count()``.
    """

    backups: DataFrame
    vaults: DataFrame
    members: DataFrame
    has_members: bool


@dataclass(frozen=True)
class Lookup:
    """A small DataFrame of ``key`` values, broadcast-joined to the backups as a flag.

    After the join, ``flag`` is true where the backup's ``on`` column is
    among the keys, and null elsewhere.

    Example: ``Lookup("_vault_full", "vault_id", vaults.select(F.col("id").alias("key")))``.
    """

    flag: str
    on: str
    keys: DataFrame


@dataclass(frozen=True)
class Rule:
    """One plan node in Spark: the predicate, and the lookups it reads.

    Its words are the node's (:attr:`engine.plan.Equals.text` and the like).

    Example: ``Rule(F.col("status").isin(["error"]))``.
    """

    predicate: Column
    lookups: tuple[Lookup, ...] = ()


def _lookup(flag: str, on: str, keys: DataFrame) -> Lookup:
    from pyspark.sql import functions as F

    return Lookup(flag, on, keys.select("key").distinct().withColumn(flag, F.lit(True)))


def _equals(node: Equals, _t: SparkTables) -> Rule:
    from pyspark.sql import functions as F

    return Rule(F.col(node.field) == node.value)


def _contains(node: Contains, _t: SparkTables) -> Rule:
    from pyspark.sql import functions as F

    # Column.contains is a literal, case-sensitive substring test (no pattern).
    return Rule(F.col(node.field).contains(F.lit(node.value)))


def _one_of(node: OneOf, _t: SparkTables) -> Rule:
    from pyspark.sql import functions as F

    return Rule(F.col(node.field).isin(list(node.values)))


def _instant(moment: datetime) -> Column:
    """An instant as a Spark timestamp literal (Parquet row groups are skipped by it).

    An aware datetime reaches Spark as epoch microseconds, whatever the zone.
    """
    from pyspark.sql import functions as F

    return F.lit(moment.astimezone(UTC))


def _at_least(node: AtLeast, _t: SparkTables) -> Rule:
    from pyspark.sql import functions as F

    return Rule(F.col(node.field) >= _instant(node.instant))


def _at_most(node: AtMost, _t: SparkTables) -> Rule:
    from pyspark.sql import functions as F

    return Rule(F.col(node.field) <= _instant(node.instant))


def _vault_used(node: VaultUsedAtLeast, t: SparkTables) -> Rule:
    from pyspark.sql import functions as F

    size, used = F.col("billing.size"), F.col("billing.used")
    # used (MB) / (size (GB) * 1024) >= N %, compared without division or rounding.
    full = t.vaults.where((size > 0) & (used * 100 >= size * (node.percent * 1024)))
    lookup = _lookup("_vault_full", "vault_id", full.select(F.col("id").alias("key")))
    return Rule(F.coalesce(F.col("_vault_full"), F.lit(False)), (lookup,))


def _owned_by(node: OwnedBy, _t: SparkTables) -> Rule:
    from pyspark.sql import functions as F

    return Rule(F.col("project_id") == node.project)


def _owned_elsewhere(node: OwnedElsewhere, _t: SparkTables) -> Rule:
    from pyspark.sql import functions as F

    return Rule(F.col("project_id").isNull() | (F.col("project_id") != node.project))


def _shared_to(node: SharedTo, t: SparkTables) -> Rule:
    from pyspark.sql import functions as F

    foreign = _owned_elsewhere(OwnedElsewhere(node.project), t).predicate
    mine = t.members.where(F.col("dest_project_id") == node.project)
    lookup = _lookup("_shared_to_me", "id", mine.select(F.col("backup_id").alias("key")))
    return Rule(foreign & F.coalesce(F.col("_shared_to_me"), F.lit(False)), (lookup,))


def _member_status(node: MemberStatus, t: SparkTables) -> Rule:
    from pyspark.sql import functions as F

    named = t.members.where(
        (F.col("dest_project_id") == node.project) & (F.col("status") == node.status)
    )
    lookup = _lookup("_member_match", "id", named.select(F.col("backup_id").alias("key")))
    return Rule(F.coalesce(F.col("_member_match"), F.lit(False)), (lookup,))


def _incremental(node: IncrementalIs, _t: SparkTables) -> Rule:
    from pyspark.sql import functions as F

    value = F.coalesce(F.col("incremental"), F.col("extend_info.incremental"))
    return Rule(value == F.lit(node.value))


def _any_of(node: AnyOf, t: SparkTables) -> Rule:
    from pyspark.sql import functions as F

    parts = [TRANSLATE(part, t) for part in node.nodes]
    # A part may be null (a null project_id makes OwnedBy null): the parts so far
    # are made false before each OR, so a true part later decides it.
    either = reduce(
        lambda so_far, part: F.coalesce(so_far, F.lit(False)) | part,
        (part.predicate for part in parts),
    )
    return Rule(either, tuple(lookup for part in parts for lookup in part.lookups))


#: One rule per node type of :mod:`engine.plan` (checked at import).
TRANSLATE: Final[Translator[SparkTables, Rule]] = Translator(
    "spark",
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
_EPOCH: Final[datetime] = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final[timedelta] = timedelta(microseconds=1)
#: Columns of the marker's row in the marker join (``_m_`` + sort key).
_MARK: Final[str] = "_m_"


def rules(query: BackupQuery, spark_tables: SparkTables) -> list[Rule]:
    """Every filter of ``query`` as Spark predicates, in the order of its plan.

    The plan is :func:`engine.params.filter_plan`'s (its nodes hold the words).

    Example: ``[r.predicate for r in rules(inv.parse("status=error"), tables(inv))]``.
    """
    return [TRANSLATE(node, spark_tables) for node in filter_plan(query, spark_tables.has_members)]


# --- tables ---------------------------------------------------------------------------------

_TABLES: weakref.WeakKeyDictionary[Source, tuple[SparkSession, SparkTables]] = (
    weakref.WeakKeyDictionary()
)


def tables(inventory: Source, spark: SparkSession | None = None) -> SparkTables:
    """The live tables of ``inventory`` as Spark DataFrames (made once per inventory and session).

    A store's tables are read from its Parquet files, less the rows its dead
    file lists; an in-memory inventory's frames go to Spark through Arrow.

    Example: ``tables(Inventory.open("cbrq-store")).backups.where("status = 'error'").count()``.
    """
    spark = session(spark=spark)
    held = _TABLES.get(inventory)
    if held is not None and held[0] is spark:
        return held[1]
    frames = {kind: _table(inventory, kind, spark) for kind in RECORD_KINDS}
    made = SparkTables(
        backups=frames["backups"],
        vaults=frames["vaults"],
        members=frames["members"],
        has_members=inventory.manifest.counts.get("members", 0) > 0,
    )
    _TABLES[inventory] = (spark, made)
    return made


def _table(inventory: Source, kind: str, spark: SparkSession) -> DataFrame:
    if inventory._frames is not None:
        return _from_polars(inventory._frames[kind], spark)
    if inventory.history_view:
        # The records as of an instant (SPEC §6), computed by cbrq, handed over through Arrow.
        return _from_polars(inventory.raw(kind).collect(), spark)
    assert inventory.root is not None
    files = table_files(inventory.root, inventory.manifest, kind)
    if not files:
        from engine.store.schema import empty_frame

        return _from_polars(empty_frame(kind), spark)
    frame = spark.read.parquet(*[hadoop_path(path) for path in files])
    dead = dead_file(inventory.root, inventory.manifest, kind)
    if dead is None:
        return frame
    # The store's live-row rule: every stored row less the superseded (_seq, _row) pairs.
    superseded = spark.read.parquet(hadoop_path(dead)).select(SEQ, ROW)
    live = frame.join(superseded, [SEQ, ROW], "left_anti")
    return live.select(*frame.columns)  # the join put its keys first: the stored order again


#: What Hadoop's path globbing reads as pattern syntax (a backslash escapes each).
_HADOOP_PATTERN: Final = re.compile(r"([\\*?\[\]{}])")


def hadoop_path(path: Path) -> str:
    """``path`` as Spark must be given it to read that one file, not a pattern.

    Spark expands ``*``, ``?``, ``[...]`` and ``{a,b}`` in the paths it reads
    (Hadoop's globbing), so a store at ``x*`` would read the sibling store
    ``xy`` too; a backslash before each such character (and before a
    backslash) makes it stand for itself. The path is made absolute: the JVM
    resolves a relative one against its own working folder, fixed at its start.

    Example: ``hadoop_path(Path("/data/x*/g000001/backups-00000.parquet"))`` ->
    ``"/data/x\\*/g000001/backups-00000.parquet"``.
    """
    return _HADOOP_PATTERN.sub(r"\\\1", str(path.absolute()))


def _from_polars(frame: pl.DataFrame, spark: SparkSession) -> DataFrame:
    """A polars frame as a Spark DataFrame, through Arrow (nested structs and lists kept)."""
    # The oldest Arrow layout (large strings, no views): what Spark's Arrow reader takes.
    return spark.createDataFrame(frame.to_arrow(compat_level=pl.CompatLevel.oldest()))


# --- plan -----------------------------------------------------------------------------------


def matches(query: BackupQuery, spark_tables: SparkTables) -> DataFrame:
    """The backups matching every filter of ``query`` (unsorted, every column).

    Example: ``matches(inv.parse("status=error"), tables(inv)).count()``.
    """
    from pyspark.sql import functions as F

    found = rules(query, spark_tables)
    frame = spark_tables.backups
    for rule in found:
        for lookup in rule.lookups:
            keys = F.broadcast(lookup.keys.withColumnRenamed("key", lookup.on))
            frame = frame.join(keys, lookup.on, "left")
    if found:
        frame = frame.where(reduce(lambda a, b: a & b, (rule.predicate for rule in found)))
    return frame


def _ordering(keys: Sequence[SortKey]) -> list[Column]:
    from pyspark.sql import functions as F

    return [
        F.col(k.key).desc_nulls_last() if k.descending else F.col(k.key).asc_nulls_last()
        for k in keys
    ]


def _after(keys: Sequence[SortKey]) -> Column:
    """True where a row comes after the marker's row (its keys in ``_m_<key>`` columns).

    Lexicographic over the keys with nulls last in either direction; the
    final ``id`` key makes the order total, so equality never reaches the end.
    """
    from pyspark.sql import functions as F

    after = F.lit(False)
    for k in reversed(keys):
        mine, theirs = F.col(k.key), F.col(_MARK + k.key)
        beyond = mine < theirs if k.descending else mine > theirs
        # A null is after every value; nothing is after a null (nulls tie each other).
        strictly = theirs.isNotNull() & (mine.isNull() | beyond)
        after = strictly | (mine.eqNullSafe(theirs) & after)
    return after


def ordered_page(
    query: BackupQuery, spark_tables: SparkTables, columns: Sequence[str] = ("id",)
) -> tuple[DataFrame, DataFrame]:
    """Two plans, not yet run: the tally and the page.

    The tally is one row: ``count`` (the matches, before paging) and
    ``marker_hits`` (how many of them are the marker: 0 is an error). The
    page holds ``columns`` of the page's backups, in result order.

    Example: ``tally, page = ordered_page(inv.parse("limit=5"), tables(inv))``.
    """
    from pyspark.sql import functions as F

    keys = sort_keys(query)
    found = matches(query, spark_tables)
    is_marker = F.col("id") == query.marker if query.marker is not None else F.lit(False)
    tally = found.agg(
        F.count(F.lit(1)).alias("count"),
        F.sum(F.when(is_marker, 1).otherwise(0)).alias("marker_hits"),
    )
    carried = list(dict.fromkeys([*(k.key for k in keys), *columns]))
    frame = found.select(*carried)
    if query.marker is not None:
        mark = found.where(is_marker).select(*[F.col(k.key).alias(_MARK + k.key) for k in keys])
        frame = frame.crossJoin(F.broadcast(mark)).where(_after(keys)).select(*carried)
    frame = frame.orderBy(*_ordering(keys))
    if query.offset:
        frame = frame.offset(query.offset)
    if query.limit is not None:
        frame = frame.limit(query.limit)
    return tally, frame.select(*columns)


# --- answer ---------------------------------------------------------------------------------

#: Past this offset a page of an in-memory inventory is sorted on the narrow
#: columns too: a top-k of whole records that deep holds them all in memory
#: (offset + limit of them per task).
DEEP_OFFSET: Final[int] = 10_000


def answer(
    query: BackupQuery,
    inventory: Source,
    columns: Sequence[str] | None = None,
    *,
    spark: SparkSession | None = None,
) -> Result:
    """Answer a parsed ListBackups query on Spark: the same Result as the polars engine.

    ``columns`` chooses the columns of the page's records (default: every
    stored column, ``_payload`` included); ``spark`` an existing session
    (default: the active one, or a new local one, :func:`session`). Raises
    :class:`~engine.errors.QueryError` for a marker not among the matches.

    Example::

        inv = Inventory.open("cbrq-store")
        answer(inv.parse("status=error&sort=name:asc&limit=10"), inv).ids
    """
    spark_tables = tables(inventory, spark)
    wanted = list(columns) if columns is not None else list(spark_tables.backups.columns)
    # Sort on the narrow columns and read the page's records afterwards, by id:
    # from a store, only the row groups that hold them are read (Parquet
    # statistics), where carried through the sort every match would be decoded;
    # past a deep offset, a top-k of whole records would hold them all. With no
    # limit every match is returned anyway: then records go through the sort.
    by_id = inventory.root is not None or query.offset > DEEP_OFFSET
    narrow = query.limit is not None and by_id and wanted != ["id"]
    tally, page = ordered_page(query, spark_tables, ["id", "created_at"] if narrow else wanted)
    # The two jobs are independent: run them at once (a small query is mostly latency).
    with ThreadPoolExecutor(2) as pool:
        counted = pool.submit(tally.first)
        paged = pool.submit(_to_polars, page)
        row, rows = counted.result(), paged.result()
    assert row is not None
    if query.marker is not None and not row["marker_hits"]:
        raise marker_error(query.marker)
    if narrow:
        rows = _records(spark_tables.backups, rows, wanted)
    rows = _typed(rows)
    if PAYLOAD in rows.columns:
        rows = rows.with_columns(canonical_payloads(rows[PAYLOAD]))
    return Result(int(row["count"]), query.offset, query.limit, rows)


def count(query: BackupQuery, inventory: Source, *, spark: SparkSession | None = None) -> int:
    """The number of matches (before paging), without fetching any record.

    Example: ``count(inv.parse("status=error"), inv)``.
    """
    from pyspark.sql import functions as F

    row = matches(query, tables(inventory, spark)).agg(F.count(F.lit(1))).first()
    assert row is not None  # an aggregate without grouping has exactly one row
    return int(row[0])


def _records(backups: DataFrame, page: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """The records of the page's ids (``id``, ``created_at``), in that order, from Spark.

    Besides the ids, the page's ``created_at`` values are a filter Parquet
    can check against each row group's statistics: a store is sorted by
    ``created_at``, so only the row groups holding the page are read.
    """
    from pyspark.sql import functions as F

    from engine.store.schema import empty_frame

    if page.height == 0:
        return empty_frame("backups").select(columns)
    ids = page["id"].to_list()
    micros = page["created_at"].drop_nulls().unique().sort().dt.epoch("us").to_list()
    at_times = F.col("created_at").isin([_instant(_EPOCH + n * _MICROSECOND) for n in micros])
    if page["created_at"].null_count():
        at_times = at_times | F.col("created_at").isNull()
    chosen = backups.where(F.col("id").isin(ids) & at_times)
    fetched = _to_polars(chosen.select(*dict.fromkeys(["id", *columns])))
    at = {backup_id: n for n, backup_id in enumerate(fetched["id"].to_list())}
    return fetched[[at[backup_id] for backup_id in ids]].select(columns)


def _typed(rows: pl.DataFrame) -> pl.DataFrame:
    """Spark's Arrow types (plain strings, its own widths) as the store's polars types."""
    from engine.store.schema import empty_frame

    shape = empty_frame("backups").schema
    return rows.cast({c: shape[c] for c in rows.columns if c in shape})


def _to_polars(frame: DataFrame) -> pl.DataFrame:
    converted = pl.from_arrow(frame.toArrow())
    assert isinstance(converted, pl.DataFrame)
    return converted


def words(query: BackupQuery, inventory: Source, *, spark: SparkSession | None = None) -> list[str]:
    """What each of the query's Spark rules means, in plan order (for ``cbrq explain``).

    Example: ``words(inv.parse("status=error"), inv)`` -> ``["status is one of error"]``.
    """
    has_members = tables(inventory, spark).has_members
    return [node.text for node in filter_plan(query, has_members)]


def plan(query: BackupQuery, inventory: Source, *, spark: SparkSession | None = None) -> str:
    """Spark's physical plan of the query's matches (what ``cbrq explain --engine spark`` prints).

    Example: ``print(plan(inv.parse("status=error&used_percent=80"), inv))``.
    """
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # DataFrame.explain prints; it returns nothing
        matches(query, tables(inventory, spark)).explain()
    return printed.getvalue().rstrip()


def _java() -> str | None:
    """The Java runtime Spark would start (``$JAVA_HOME/bin/java`` or ``java`` on PATH)."""
    home = os.environ.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        return str(java) if java.is_file() else None
    return shutil.which("java")


class SparkBackend:
    """The Spark backend bound to one inventory and the session it answers with.

    The session is the inventory's ``spark`` (a ``SparkSession``), or one
    started once per inventory on its master URL (``None``: the active
    session or ``local[2]``, :class:`Started`), kept in its ``backend_state``
    until the inventory is closed.

    Example: ``SparkBackend(Inventory.open("inv").using("spark")).count(query)``.
    """

    name: ClassVar[str] = "spark"

    def __init__(self, source: Source) -> None:
        self.source = source
        spark = source.spark
        if spark is None or isinstance(spark, str):  # a master URL: its session, started once
            held = source.backend_state.get("spark")
            if held is None:
                held = source.backend_state["spark"] = Started.on(spark)
            spark = held.session
        self.session: SparkSession = spark

    @classmethod
    def check(cls, source: Source) -> None:
        """A session to be started needs a Java runtime (MissingExtra naming JAVA_HOME)."""
        if (source.spark is None or isinstance(source.spark, str)) and _java() is None:
            how = "install Java 17 or newer, or set JAVA_HOME to one"
            raise MissingExtra("--engine spark", "a Java runtime", "spark", how=how)

    def answer(self, query: BackupQuery, columns: Sequence[str] | None = None) -> Result:
        """:func:`answer` with this inventory's session."""
        return answer(query, self.source, columns, spark=self.session)

    def count(self, query: BackupQuery) -> int:
        """:func:`count` with this inventory's session."""
        return count(query, self.source, spark=self.session)

    def words(self, query: BackupQuery) -> list[str]:
        """:func:`words` with this inventory's session."""
        return words(query, self.source, spark=self.session)

    def plan(self, query: BackupQuery) -> str:
        """:func:`plan`: Spark's physical plan of the matches."""
        return plan(query, self.source, spark=self.session)
