"""The inventory as of an instant (SPEC §6): which stored backup rows answer at T.

A store that keeps history holds every version of a backup it has seen (a
superseded row is a version of the past, kept) and, per ingest, the rows it
saw (its sightings file: ``_seq`` and ``_row`` packed, :data:`~engine.store.layout.REF`).
Ingests older than history have no sightings file; the rows they wrote stand
for what they saw. From these and the manifest's ingest records,
:func:`as_of_rows` computes, columnar, the rows of the backups present at T,
each at its version at T:

- **time order** is ``(taken_at, ingest number)``; an ingest without a
  ``taken_at`` is older than every instant; only ingests taken at or before
  T count;
- **version at T**: among the rows seen by those ingests, the newest
  ``updated_at`` (missing is oldest), then the later ingest that saw it,
  then the later row;
- **presence at T**: P is the newest snapshot covering the backup (project
  scope: its ``project_id``; vault scope: its ``vault_id``; judged on its
  version at T). It is present when P saw it, or an ingest after P saw it;
  with no P, when any ingest saw it.

Nothing here collects: the frames are lazy, and the reader collects them
with its query.

Example::

    rows = as_of_rows(root, manifest, datetime(2026, 11, 2, tzinfo=UTC))
    scan_physical(root, "backups", manifest).with_row_index("_rid").join(rows, on="_rid")
"""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path
from typing import Final

import polars as pl

from engine.errors import NeverSeen, Problem
from engine.instants import MIN_INSTANT, parse_instant
from engine.spec import DEDUP_KEYS
from engine.store.layout import PAYLOAD, POS, REF, ROW, SEQ
from engine.store.manifest import IngestRecord, Manifest
from engine.store.read import dead_key, live, require_files, scan_physical

#: The column numbering the physical rows (the backends' ``_rid``).
POSITION: Final[str] = "_rid"
#: How a backup without ``project_id`` is named among a snapshot's projects (and in the
#: completeness check's problems, :mod:`engine.ingest.snapshot`).
NO_PROJECT: Final[str] = "(no project_id)"
#: Why an instant cannot be asked of a store without history (``--as-of``).
NO_HISTORY: Final = Problem(
    "as_of",
    None,
    "this inventory keeps no history: it was never fed a --snapshot ingest",
    "ingest full exports with `cbrq ingest --snapshot`; history begins with the first",
)
#: Older than every instant: where an ingest without ``taken_at`` sorts.
_EARLIEST: Final[datetime] = MIN_INSTANT
_TIME: Final = pl.Datetime("us", "UTC")


def ingests(manifest: Manifest, at: datetime | None = None) -> pl.DataFrame:
    """The ingests taken at or before ``at`` (all with ``None``): number, time, scope, coverage.

    Example: ``ingests(read_manifest(root))["taken"]`` -> each ingest's ``taken_at``.
    """
    records = manifest.ingests
    frame = pl.DataFrame(
        {
            "n": [r.n for r in records],
            "taken": [_instant(r.taken_at) for r in records],
            "snapshot": [r.snapshot for r in records],
            "scope": [r.scope for r in records],
            "projects": [list(r.projects) for r in records],
            "vaults": [list(r.vaults) for r in records],
        },
        schema={
            "n": pl.Int64,
            "taken": _TIME,
            "snapshot": pl.Boolean,
            "scope": pl.String,
            "projects": pl.List(pl.String),
            "vaults": pl.List(pl.String),
        },
    )
    if at is not None:
        frame = frame.filter(pl.col("taken").is_null() | (pl.col("taken") <= at))
    return frame.with_columns(pl.col("taken").fill_null(_EARLIEST).alias("order_time"))


def _instant(text: str) -> datetime | None:
    """A manifest ``taken_at`` as an instant (``""``: none), by the one timestamp grammar."""
    return parse_instant(text) if text else None


def sightings(
    root: Path, manifest: Manifest, numbers: list[int], refs: pl.Series | None = None
) -> pl.LazyFrame:
    """``(_ref, n)``: the rows each of the ingests ``numbers`` saw (``refs``: only these rows).

    An ingest with a sightings file is read from it (sorted by ``_ref``: a
    filter on a few refs skips most of it); an older one is taken to have
    seen the rows it wrote (its files' ``_seq``).

    Example: ``sightings(root, manifest, [1, 2]).collect()``.
    """
    wanted = set(numbers)
    pieces: list[pl.LazyFrame] = []
    derived: list[tuple[int, int, int]] = []
    for record in manifest.ingests:
        if record.n not in wanted:
            continue
        if record.sightings:
            require_files(root, manifest, [record.sightings])
            path = root / record.sightings
            piece = pl.scan_parquet(path, glob=False)
            if refs is not None:
                piece = piece.filter(pl.col(REF).is_in(refs.implode()))
            pieces.append(piece.select(REF, pl.lit(record.n, pl.Int64).alias("n")))
        elif record.seqs[1] >= record.seqs[0]:
            derived.append((record.n, *record.seqs))
    if derived:
        spans = pl.LazyFrame(
            {
                "n": [d[0] for d in derived],
                "lo": [d[1] for d in derived],
                "hi": [d[2] for d in derived],
            },
            schema={"n": pl.Int64, "lo": pl.Int64, "hi": pl.Int64},
        )
        rows = scan_physical(root, "backups", manifest).select(
            pl.col(SEQ).cast(pl.Int64), dead_key().alias(REF)
        )
        pieces.append(
            rows.join_where(spans, pl.col(SEQ) >= pl.col("lo"), pl.col(SEQ) <= pl.col("hi")).select(
                REF, "n"
            )
        )
    if not pieces:
        return pl.LazyFrame(schema={REF: pl.Int64, "n": pl.Int64})
    return pl.concat(pieces)


def as_of_rows(root: Path, manifest: Manifest, at: datetime | None) -> pl.LazyFrame:
    """The physical rows (:data:`POSITION`) of the backups present at ``at``, at their version.

    ``at`` ``None``: the latest (every ingest counts).

    Example: ``as_of_rows(root, manifest, None).collect().height`` -> backups present now.
    """
    return present(root, manifest, at).select(POSITION)


def present(
    root: Path, manifest: Manifest, at: datetime | None, only: list[str] | None = None
) -> pl.LazyFrame:
    """The backups present at ``at``: ``_rid``, ``id``, ``_project``, ``vault_id`` of each version.

    ``only``: just these backup ids (cheaper, for ``cbrq history``).

    Example: ``present(root, manifest, None, ["b-1"]).collect()``.
    """
    physical = _versions_table(root, manifest, only)
    made = ingests(manifest, at)
    if in_time_order(manifest):
        return _present_in_order(root, manifest, made, physical)
    seen = sightings(root, manifest, made["n"].to_list()).join(physical, on=REF)
    return _present_among(made, seen)


def in_time_order(manifest: Manifest) -> bool:
    """Whether the ingests were made in time order (each ``taken_at`` at or after the last).

    Then an ingest saw only rows written by itself or earlier ingests, so the
    versions at T are the rows the ingests taken by T wrote: no sightings needed.

    Example: ``in_time_order(read_manifest(root))`` -> ``True`` for a daily series.
    """
    times = [_instant(r.taken_at) or _EARLIEST for r in manifest.ingests]
    return all(a <= b for a, b in itertools.pairwise(times))


def _present_in_order(
    root: Path, manifest: Manifest, made: pl.DataFrame, physical: pl.LazyFrame
) -> pl.LazyFrame:
    """:func:`present` for a store of ingests in time order, reading few sightings.

    Versions: the rows with ``_seq`` up to the last file of the ingests in
    ``made``, the newest ``updated_at`` of each id winning; ids whose newest
    copies tie are settled by the sightings of just those rows (the later
    ingest that saw one, then the later row). Presence: the sightings of the
    ingests from the oldest P on (usually one snapshot's).
    """
    numbers = set(made["n"].to_list())
    last = max((r.seqs[1] for r in manifest.ingests if r.n in numbers), default=-1)
    candidates = physical.filter((pl.col(REF) // (1 << 32)) <= last)
    top = pl.col("updated_at").max().over("id")
    newest = (
        candidates.filter(pl.col("updated_at").eq_missing(top))
        .with_columns((pl.len().over("id") > 1).alias("_tied"))
        .collect()
    )
    tied = newest.filter("_tied")
    seen = sightings(root, manifest, sorted(numbers), tied[REF]).join(tied.lazy(), on=REF)
    settled = _present_among(made, seen, presence=False)
    versions = pl.concat(
        [
            newest.lazy().filter(~pl.col("_tied")).select(POSITION, "id", "_project", "vault_id"),
            settled,
        ]
    )
    return _kept(made, versions, _window(made), root, manifest, physical)


def _window(made: pl.DataFrame) -> pl.DataFrame:
    """The ingests of ``made`` from the oldest P of any project or vault on (all with no P)."""
    snaps = made.filter("snapshot")
    if snaps.height == 0:
        return made
    firsts = pl.concat(
        [
            _newest(snaps.lazy().filter(pl.col("scope") == s).explode(c), c, "key")
            for s, c in (("project", "projects"), ("vault", "vaults"))
        ]
    ).collect()
    if firsts.height == 0:
        return made
    oldest = firsts.sort("p_time", "p_n").row(0, named=True)
    later = (pl.col("order_time") > oldest["p_time"]) | (
        (pl.col("order_time") == oldest["p_time"]) & (pl.col("n") >= oldest["p_n"])
    )
    return made.filter(later)


def _kept(
    made: pl.DataFrame,
    versions: pl.LazyFrame,
    window: pl.DataFrame,
    root: Path,
    manifest: Manifest,
    physical: pl.LazyFrame,
) -> pl.LazyFrame:
    """``versions`` (one row per id) of the backups present: no P, or seen from their P on."""
    headed = _heads(made, versions).collect()
    covered = headed.filter(pl.col("p_n").is_not_null()).select("id", "p_time", "p_n")
    ids = physical.select(REF, "id")
    seen = (
        sightings(root, manifest, window["n"].to_list())
        .join(ids, on=REF)
        .join(window.lazy().select("n", "order_time"), on="n")
    )
    kept = seen.join(covered.lazy(), on="id").filter(_present()).select("id").unique().collect()
    present_now = pl.col("p_n").is_null() | pl.col("id").is_in(kept["id"].implode())
    return headed.lazy().filter(present_now).select(POSITION, "id", "_project", "vault_id")


def _versions_table(root: Path, manifest: Manifest, only: list[str] | None) -> pl.LazyFrame:
    """Every stored backup row (``only`` these ids) with what presence needs of it."""
    physical = (
        scan_physical(root, "backups", manifest)
        .with_row_index(POSITION)
        .select(
            POSITION,
            "id",
            pl.col("project_id").fill_null(NO_PROJECT).alias("_project"),
            "vault_id",
            "updated_at",
            dead_key().alias(REF),
        )
    )
    return physical if only is None else physical.filter(pl.col("id").is_in(only))


def _present_among(
    made: pl.DataFrame, seen: pl.LazyFrame, *, presence: bool = True
) -> pl.LazyFrame:
    """:func:`present` given the ingests ``made`` (taken at or before T) and what they saw.

    ``seen``: the rows of :func:`_versions_table` with the ``n`` of each ingest that saw them.
    ``presence=False``: the version of every id seen, present or not.
    """
    seen = seen.join(made.lazy().select("n", "order_time"), on="n")
    versions = (
        seen.group_by(POSITION, "id", "_project", "vault_id", "updated_at")
        .agg(pl.col("n").max().alias("last"))
        .sort(["updated_at", "last", POSITION], nulls_last=False)
        .unique(subset="id", keep="last")
    )
    if not presence:
        return versions.select(POSITION, "id", "_project", "vault_id")
    heads = _heads(made, versions).select("id", "p_time", "p_n")
    kept = (
        seen.select("id", "n", "order_time")
        .join(heads, on="id")
        .group_by("id")
        .agg(_present().any().alias("present"))
        .filter("present")
        .select("id")
    )
    return versions.join(kept, on="id", how="semi").select(POSITION, "id", "_project", "vault_id")


#: What a snapshot's listing of a small table speaks for (SPEC §6, "vaults and members
#: follow the same rules with their own snapshots"): project scope, the projects of its
#: vaults; vault scope, the vaults it lists; members, the backups it lists members of.
_COVER: Final[dict[tuple[str, str], str]] = {
    ("vaults", "project"): "_project",
    ("vaults", "vault"): "id",
    ("members", "project"): "backup_id",
    ("members", "vault"): "backup_id",
}


def listing_versions(root: Path, manifest: Manifest, kind: str) -> pl.LazyFrame:
    """Every copy of ``kind`` (vaults, members) each ingest held, with its ingest ``n``.

    An ingest that kept no listing (made before its store kept history) is
    stood for by the table's rows it wrote (their ``_seq`` in its files):
    the newest copy of each key, as the table keeps it, when that ingest's.

    Example: ``listing_versions(root, manifest, "vaults").select("id", "n").collect()``.
    """
    pieces: list[pl.LazyFrame] = []
    names = [(r.n, r.listings[kind]) for r in manifest.ingests if r.listings and kind in r.listings]
    require_files(root, manifest, [name for _, name in names])
    for number, name in names:
        pieces.append(
            pl.scan_parquet(root / name, glob=False).with_columns(
                pl.lit(number, pl.Int64).alias("n")
            )
        )
    spans = [(r.n, *r.seqs) for r in manifest.ingests if r.listings is None]
    if manifest.tables.get(kind) and spans:
        ranges = pl.LazyFrame(
            {"n": [s[0] for s in spans], "lo": [s[1] for s in spans], "hi": [s[2] for s in spans]},
            schema={"n": pl.Int64, "lo": pl.Int64, "hi": pl.Int64},
        )
        table = scan_physical(root, kind, manifest).with_columns(pl.col(SEQ).cast(pl.Int64))
        pieces.insert(
            0,
            table.join_where(ranges, pl.col(SEQ) >= pl.col("lo"), pl.col(SEQ) <= pl.col("hi")).drop(
                "lo", "hi"
            ),
        )
    if not pieces:
        return (
            scan_physical(root, kind, manifest).head(0).with_columns(pl.lit(0, pl.Int64).alias("n"))
        )
    return pl.concat(pieces, how="diagonal_relaxed")


def vault_versions(root: Path, manifest: Manifest) -> pl.LazyFrame:
    """Each vault copy an ingest held, with the ingest's ``n`` and ``taken`` (its ``taken_at``).

    The vault table's columns plus ``n`` and ``taken``; copies older than the
    store's listings (``n = 0``) have no ``taken``. For series over time such
    as ``capacity --forecast``.

    Example: ``vault_versions(root, manifest).select("id", "taken", "billing").collect()``.
    """
    made = ingests(manifest).lazy().select("n", "taken")
    return listing_versions(root, manifest, "vaults").join(made, on="n", how="left")


def listed_at(root: Path, manifest: Manifest, kind: str, at: datetime | None) -> pl.LazyFrame:
    """The ``kind`` records (vaults, members) present at ``at``, each at its version then.

    Versions are ordered by the ingest's ``taken_at``, then ingest order, then
    the record's place (SPEC §6: vault records carry no ``updated_at``);
    presence as for backups, against the snapshots that held ``kind`` records.
    The columns are the table's.

    Example: ``listed_at(root, manifest, "vaults", None).select("id").collect()``.
    """
    columns = scan_physical(root, kind, manifest).collect_schema().names()
    keys = list(DEDUP_KEYS[kind])
    made = ingests(manifest, at)
    times = pl.concat(
        [
            made.lazy().select("n", "order_time", "snapshot", "scope"),
            pl.LazyFrame(
                {"n": [0], "order_time": [_EARLIEST], "snapshot": [False], "scope": [None]},
                schema={
                    "n": pl.Int64,
                    "order_time": _TIME,
                    "snapshot": pl.Boolean,
                    "scope": pl.String,
                },
            ),
        ]
    )
    held = (
        listing_versions(root, manifest, kind)
        .join(times, on="n")
        .with_columns(
            pl.col("project_id").fill_null(NO_PROJECT).alias("_project")
            if kind == "vaults"
            else pl.lit(None, pl.String).alias("_project")
        )
    )
    versions = held.sort("order_time", "n", SEQ, "_row").unique(subset=keys, keep="last")
    newest = _listing_heads(held, versions, kind)
    kept = (
        held.select(*keys, "n", "order_time")
        .join(versions.select(keys).join(newest, on=keys, how="left"), on=keys)
        .group_by(keys)
        .agg(_present().any().alias("present"))
        .filter("present")
        .select(keys)
    )
    return versions.join(kept, on=keys, how="semi", nulls_equal=True).select(columns)


def _listing_heads(held: pl.LazyFrame, versions: pl.LazyFrame, kind: str) -> pl.LazyFrame:
    """Per key of ``kind``: P, the newest snapshot covering its version (``p_time``, ``p_n``).

    A snapshot's listing covers what :data:`_COVER` says; a key no snapshot
    covers is missing from the result.
    """
    keys = list(DEDUP_KEYS[kind])
    covers = [(scope, cover) for (table, scope), cover in _COVER.items() if table == kind]
    heads = pl.concat(
        [
            held.filter("snapshot", pl.col("scope") == scope)
            .select(pl.col(cover).cast(pl.String).alias("_cover"), "order_time", "n")
            .unique()
            .sort("order_time", "n")
            .group_by("_cover")
            .agg(pl.col("order_time").last().alias("p_time"), pl.col("n").last().alias("p_n"))
            .with_columns(pl.lit(cover).alias("_by"))
            for scope, cover in covers
        ]
    )
    covered = pl.concat(
        [
            versions.select(
                *keys, pl.col(c).cast(pl.String).alias("_cover"), pl.lit(c).alias("_by")
            )
            for c in dict.fromkeys(cover for _, cover in covers)
        ]
    )
    return (
        covered.join(heads, on=["_by", "_cover"])
        .sort("p_time", "p_n")
        .unique(subset=keys, keep="last")
        .select(*keys, "p_time", "p_n")
    )


def latest_rows(root: Path, manifest: Manifest) -> pl.LazyFrame:
    """:func:`as_of_rows` at the latest, reading only the sightings that can still matter.

    At the latest, a backup's version is its newest (the dead file's live
    row) and its presence depends only on the ingests from its P on: the
    sightings read are those of the ingests from the oldest P of any project
    or vault on (usually the newest snapshot's alone).

    Example: ``latest_rows(root, manifest).collect().height`` -> backups present now.
    """
    made = ingests(manifest)
    numbered = scan_physical(root, "backups", manifest).with_row_index(POSITION)
    current = live(numbered, root, manifest, "backups", POSITION).select(
        POSITION, "id", pl.col("project_id").fill_null(NO_PROJECT).alias("_project"), "vault_id"
    )
    ids = numbered.select(dead_key().alias(REF), "id")
    return _kept(made, current, _window(made), root, manifest, ids).select(POSITION)


def latest_away(root: Path, manifest: Manifest) -> pl.DataFrame:
    """The stored backup rows not in the latest view: ``_seq``, ``_row``, ``_pos`` (a dead file).

    Example: ``latest_away(root, manifest).height`` -> versions kept plus backups gone.
    """
    present_now = latest_rows(root, manifest).collect()[POSITION].cast(pl.Int64)
    rows = scan_physical(root, "backups", manifest).select(SEQ, ROW).with_row_index(POSITION)
    return (
        rows.filter(~pl.col(POSITION).cast(pl.Int64).is_in(present_now.implode()))
        .select(
            pl.col(SEQ).cast(pl.Int64),
            pl.col(ROW).cast(pl.Int64),
            pl.col(POSITION).cast(pl.Int64).alias(POS),
        )
        .collect()
    )


def _heads(made: pl.DataFrame, versions: pl.LazyFrame) -> pl.LazyFrame:
    """``versions`` with P, the newest snapshot covering each (``p_time``, ``p_n``; null: none)."""
    snaps = made.filter("snapshot").lazy()
    by_project = _newest(
        snaps.filter(pl.col("scope") == "project").explode("projects"), "projects", "_project"
    )
    by_vault = _newest(
        snaps.filter(pl.col("scope") == "vault").explode("vaults"), "vaults", "vault_id"
    )
    both = versions.join(by_project, on="_project", how="left").join(
        by_vault, on="vault_id", how="left", suffix="_v"
    )
    vault_newer = pl.col("p_n_v").is_not_null() & (
        pl.col("p_n").is_null()
        | (pl.col("p_time_v") > pl.col("p_time"))
        | ((pl.col("p_time_v") == pl.col("p_time")) & (pl.col("p_n_v") > pl.col("p_n")))
    )
    return both.with_columns(
        pl.when(vault_newer).then(pl.col("p_time_v")).otherwise(pl.col("p_time")).alias("p_time"),
        pl.when(vault_newer).then(pl.col("p_n_v")).otherwise(pl.col("p_n")).alias("p_n"),
    ).drop("p_time_v", "p_n_v")


def _newest(snaps: pl.LazyFrame, column: str, key: str) -> pl.LazyFrame:
    """Per value of ``column`` (a project or a vault): its newest snapshot by time order."""
    return (
        snaps.sort("order_time", "n")
        .group_by(column)
        .agg(pl.col("order_time").last().alias("p_time"), pl.col("n").last().alias("p_n"))
        .rename({column: key})
    )


def _present() -> pl.Expr:
    """Per sighting of a backup: does it make the backup present (P saw it, or came after P)."""
    after = (pl.col("order_time") > pl.col("p_time")) | (
        (pl.col("order_time") == pl.col("p_time")) & (pl.col("n") > pl.col("p_n"))
    )
    return pl.col("p_n").is_null() | (pl.col("n") == pl.col("p_n")) | after


def _covered(frame: pl.LazyFrame, record: IngestRecord) -> pl.LazyFrame:
    """The rows of ``frame`` (present backups) that snapshot ``record`` speaks for."""
    if record.scope == "vault":
        return frame.filter(pl.col("vault_id").is_in(list(record.vaults)))
    return frame.filter(pl.col("_project").is_in(list(record.projects)))


def _speaks_for(record: IngestRecord) -> tuple[str | None, tuple[str, ...]]:
    return record.scope, record.vaults if record.scope == "vault" else record.projects


def snapshot_rows(root: Path, manifest: Manifest) -> pl.DataFrame:
    """The rows of ``cbrq snapshots`` (SPEC §6), one per snapshot, in ingest order.

    ``backups``: those it covers present at its ``taken_at``; ``added``,
    ``gone``, ``changed``: against the newest earlier snapshot (time order)
    speaking for the same scope and projects (or vaults); with none, every
    backup counts as added. ``changed`` compares the two versions' records.

    Example: ``snapshot_rows(root, read_manifest(root))["gone"].to_list()``.
    """
    payloads = (
        scan_physical(root, "backups", manifest)
        .with_row_index(POSITION)
        .select(POSITION, pl.col(PAYLOAD))
    )
    order = {r.n: (_instant(r.taken_at) or _EARLIEST, r.n) for r in manifest.ingests}
    rows: list[dict[str, object]] = []
    for number, record in enumerate(manifest.ingests, start=1):
        if not record.snapshot:
            continue
        at = order[record.n][0]
        now = _covered(present(root, manifest, at), record).select(POSITION, "id")
        earlier = [
            r
            for r in manifest.ingests
            if r.snapshot and _speaks_for(r) == _speaks_for(record) and order[r.n] < order[record.n]
        ]
        if earlier:
            previous = max(earlier, key=lambda r: order[r.n])
            then = present(root, manifest, order[previous.n][0])
            before = _covered(then, record).select(POSITION, "id")
        else:
            before = pl.LazyFrame(schema={POSITION: pl.UInt32, "id": pl.String})
        counted = _compare(now, before, payloads).collect()
        rows.append(
            {
                "seq": number,
                "taken_at": None if at == _EARLIEST else at,
                "scope": record.scope,
                "projects": sorted(
                    {p for p in (*record.projects, *record.vault_projects) if p != NO_PROJECT}
                ),
                **counted.row(0, named=True),
            }
        )
    return pl.DataFrame(rows, schema=SNAPSHOT_SCHEMA)


#: The columns of :func:`snapshot_rows`.
SNAPSHOT_SCHEMA: Final = pl.Schema(
    {
        "seq": pl.Int64(),
        "taken_at": pl.Datetime("us", "UTC"),
        "scope": pl.String(),
        "projects": pl.List(pl.String()),
        "backups": pl.Int64(),
        "added": pl.Int64(),
        "gone": pl.Int64(),
        "changed": pl.Int64(),
    }
)


def _compare(now: pl.LazyFrame, before: pl.LazyFrame, payloads: pl.LazyFrame) -> pl.LazyFrame:
    """Counts of ``now``, and of what was added, gone and changed since ``before``."""
    both = now.join(before, on="id", how="inner", suffix="_before")
    differs = (
        both.filter(pl.col(POSITION) != pl.col(f"{POSITION}_before"))
        .join(payloads, on=POSITION)
        .join(payloads, left_on=f"{POSITION}_before", right_on=POSITION, suffix="_before")
        .filter(pl.col(PAYLOAD) != pl.col(f"{PAYLOAD}_before"))
    )
    return pl.concat(
        [
            now.select(pl.len().cast(pl.Int64).alias("backups")),
            now.join(before, on="id", how="anti").select(pl.len().cast(pl.Int64).alias("added")),
            before.join(now, on="id", how="anti").select(pl.len().cast(pl.Int64).alias("gone")),
            differs.select(pl.len().cast(pl.Int64).alias("changed")),
        ],
        how="horizontal",
    )


#: The columns of :func:`history_rows`.
HISTORY_SCHEMA: Final = pl.Schema(
    {
        "id": pl.String(),
        "taken_at": pl.Datetime("us", "UTC"),
        "event": pl.String(),
        "status": pl.String(),
        "updated_at": pl.Datetime("us", "UTC"),
    }
)


def history_rows(root: Path, manifest: Manifest, ids: list[str]) -> pl.DataFrame:
    """The rows of ``cbrq history ID...`` (SPEC §6): per backup, each change in time order.

    Walks the store's distinct ``taken_at`` instants: ``seen`` (first
    present), ``changed`` (another version, its record differs), ``gone``
    (shows the version that went), ``back`` (present again). Backups in the
    order asked. Raises :class:`~engine.errors.NeverSeen` naming every id no
    ingest holds.

    Example: ``history_rows(root, manifest, ["b-1"])["event"].to_list()`` -> ``["seen", "gone"]``.
    """
    asked = list(dict.fromkeys(ids))
    stored = (
        scan_physical(root, "backups", manifest)
        .with_row_index(POSITION)
        .filter(pl.col("id").is_in(asked))
        .select(POSITION, "id", "status", "updated_at", PAYLOAD)
        .collect()
    )
    missing = [i for i in asked if i not in set(stored["id"].to_list())]
    if missing:
        raise NeverSeen(missing)
    instants = sorted({_instant(r.taken_at) or _EARLIEST for r in manifest.ingests})
    versions = _versions_table(root, manifest, asked).collect()
    numbers = [r.n for r in manifest.ingests]
    seen = sightings(root, manifest, numbers, versions[REF]).join(versions.lazy(), on=REF).collect()
    states = [
        _present_among(ingests(manifest, at), seen.lazy())
        .select(POSITION, "id")
        .collect()
        .with_columns(pl.lit(at, _TIME).alias("taken_at"))
        for at in instants
    ]
    timeline = pl.concat(states) if states else pl.DataFrame(schema={POSITION: pl.UInt32})
    rows: list[dict[str, object]] = []
    for ident in asked:
        rows += _story(ident, instants, timeline, stored)
    return pl.DataFrame(rows, schema=HISTORY_SCHEMA)


def _story(
    ident: str, instants: list[datetime], timeline: pl.DataFrame, stored: pl.DataFrame
) -> list[dict[str, object]]:
    """``ident``'s rows: one per instant at which its presence or version changed."""
    at_rows = dict(timeline.filter(pl.col("id") == ident).select("taken_at", POSITION).iter_rows())
    records = {row[POSITION]: row for row in stored.iter_rows(named=True)}
    out: list[dict[str, object]] = []
    last: int | None = None
    present_before = shown = False
    for at in instants:
        now = at_rows.get(at)
        event = None
        if now is None:
            event = "gone" if present_before else None
        elif not shown:
            event = "seen"
        elif not present_before:
            event = "back"
        elif last is not None and records[now][PAYLOAD] != records[last][PAYLOAD]:
            event = "changed"
        if event is not None:
            version = records[now if now is not None else last]
            out.append(
                {
                    "id": ident,
                    "taken_at": None if at == _EARLIEST else at,
                    "event": event,
                    "status": version["status"],
                    "updated_at": version["updated_at"],
                }
            )
        present_before, shown = now is not None, shown or now is not None
        last = now if now is not None else last
    return out
