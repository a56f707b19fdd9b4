"""Phase 3: typed frames -> the Parquet inventory on disk.

The layout, and reading it, is :mod:`engine.store.manifest`. A change writes what
it adds into a new generation directory, then replaces ``manifest.json`` in
one rename, then removes the generation directories no commit refers to any
more: an error or a kill at any moment leaves the previous inventory as it
was. One writer at a time (an advisory lock). A writer first sorts the
generation directories against the manifest (:func:`engine.store.integrity.survey`):
committed generations the manifest does not know (a lost or older
``manifest.json``) make it refuse before writing; only directories cbrq wrote
and no commit uses are ever removed. Each commit records every file's size
and SHA-256 and leaves a copy of its manifest in its own directory.

Backups are kept as segments (:meth:`Generation.append`): an ingest reads
only the narrow key columns of the stored rows whose id it brings again and
lists the stored rows its records supersede in the table's dead file. An
ingest writes each batch once, as a sorted Parquet run, and keeps the runs
as its segment, listing the copies it read twice as dead too, when they are
one sorted run together (their key ranges do not overlap: an export paged
newest first) or at most :data:`MAX_RUNS` runs (``runs`` in the manifest).
Otherwise it stages its later batches and merges all of them into one sorted
run, so that a page of answers reads one row group where it would read one
per run. Segments are merged automatically by a size-tiered rule
(:func:`merge_count`), so a table has at most :data:`MAX_SEGMENTS` of them and
at most :data:`MAX_DEAD_SHARE` of its rows superseded;
:meth:`Generation.compact` merges everything into one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import itertools
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from engine import interrupts
from engine.errors import StoreError
from engine.spec import DEDUP_KEYS, RECORD_KINDS
from engine.store.history import latest_away
from engine.store.integrity import COPY, WRITING, Survey, record, refusal, survey, verify
from engine.store.layout import (
    DEDUP_ORDER,
    FILE_ROWS,
    LOCK,
    MANIFEST,
    PAYLOAD,
    POS,
    REF,
    ROW,
    ROW_GROUP_ROWS,
    SEQ,
    SIGHTINGS,
    STORE_ORDER,
)
from engine.store.manifest import (
    READERS,
    IngestRecord,
    Manifest,
    damaged,
    read_manifest,
    require_manifest,
)
from engine.store.read import dead_file, dead_key, decoding, scan_physical, table_files
from engine.store.schema import empty_frame

#: Rows per record batch of an intermediate run (:meth:`Generation._fan_in`):
#: the final merge reads them a batch at a time.
PART_ROWS: Final[int] = 512
#: Intermediate runs, merged from more sources than :data:`FAN_IN`, are Arrow
#: IPC files (lz4): about half the CPU of lz4 Parquet to write and read back,
#: and a footer of a few bytes per batch. (As Parquet, a run of 1M rows has
#: 2,000 row groups of 107 leaf columns, and polars held ~100 MB of footer per
#: run it read: 1 GB of the 10M ingest's peak, measured 2026-11-27.) A batch's
#: own run is Parquet, in the store's final form: usually it is kept as it is.
STAGED: Final[str] = ".arrow"
#: Most sorted runs an ingest keeps as its segment; with more, they are merged
#: into one. A page of answers in created_at order reads about one row group
#: per run: at 1M backups, 28 runs made such pages 2-4x slower in process
#: than one sorted run, 6 runs at 200k 1.7-2.4x (benchmarks/README.md).
MAX_RUNS: Final[int] = 2
#: Records gathered into memory at once while the final table is written.
MERGE_ROWS: Final[int] = 8_192
#: Sort keys read from one source at a time while the output order is merged.
KEY_ROWS: Final[int] = 16_384
#: Sources merged at once; with more, they are first merged in groups into
#: bigger sorted runs (each source holds a slice of whole records in memory).
FAN_IN: Final[int] = 32
#: Rows whose dedup keys are ranked in memory at once; more are split into
#: that many hash partitions of the keys, ranked one after the other (at 3M
#: rows, two passes of 1.5M raised the peak by ~500 MB over the merge's).
DEDUP_ROWS: Final[int] = 1_000_000

#: Most segments a table keeps: past that the newest are merged, whatever their size.
MAX_SEGMENTS: Final[int] = 8
#: A segment is merged into the newer rows written with it while it holds no
#: more rows than they do (a binary counter: each row is rewritten about
#: log2(table / append) times over its life, and the segment count stays logarithmic).
MERGE_RATIO: Final[int] = 1
#: Past this share of superseded rows in a table, the whole table is merged
#: (superseded rows cost every query a filter and the disk their bytes).
MAX_DEAD_SHARE: Final[float] = 0.25

#: A dead file: each superseded row by ``(_seq, _row)`` (for readers without
#: cbrq) and by its position among the table's stored rows (for cbrq's filter).
DEAD_SCHEMA: Final = pl.Schema({SEQ: pl.Int64(), ROW: pl.Int64(), POS: pl.Int64()})
_SRC: Final[str] = "_cbrq_source"
#: A record's fingerprint while a history store compares versions: a hash of its
#: text, computed in this process for both sides (never stored).
FP: Final[str] = "_cbrq_fingerprint"
_IDX: Final[str] = "_cbrq_index"
_BUCKET: Final[str] = "_cbrq_bucket"

Mask = npt.NDArray[np.bool_]


@contextlib.contextmanager
def locked(root: Path, *, create: bool = True) -> Iterator[None]:
    """Hold the store's writer lock (another ``cbrq ingest`` waits for it).

    ``create=False`` (compact, repair): a directory that holds no inventory
    is an error, and nothing (not even the lock file) is made there.

    Example: ``with locked(root): ...``.
    """
    if not create:
        require_manifest(root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def writer_lock(root: Path, *, create: bool = True) -> Iterator[None]:
    """The store's writer lock; SIGINT or SIGTERM ends the wait for it at once.

    ``create=False``: as :func:`locked` takes it (no inventory, no lock file).

    Example: ``with writer_lock(root): ...`` (ingest, compact).
    """
    with contextlib.ExitStack() as stack:
        with interrupts.raising():
            stack.enter_context(locked(root, create=create))
        yield


def abandon(generation: Generation) -> None:
    """Remove an unfinished generation, unless the commit already made it current.

    A failure after the manifest's rename (cleaning up older generations,
    a signal) must not delete the inventory's current files.

    Example: ``except BaseException: abandon(generation); raise``.
    """
    try:
        current = read_manifest(generation.root).generation
    except Exception:  # a damaged manifest is not this generation's
        current = None
    if current != generation.number:
        generation.abandon()


@dataclass(frozen=True)
class Appended:
    """What :meth:`Generation.append` did to a table.

    ``added`` new rows were written (records that won their key);
    ``displaced`` stored rows they superseded; ``merged`` older segments
    were rewritten together with them; ``live`` rows the table now has.

    Example: ``gen.append("backups", sort, order).added``.
    """

    added: int
    displaced: int
    merged: int
    live: int
    #: History stores: the stored rows (packed ``_seq``/``_row``) this ingest saw.
    seen: pl.Series | None = None
    #: History stores: records found unchanged (a stored version, not written again).
    unchanged: int = 0


def newest(frame: pl.DataFrame, keys: list[str], order: list[str]) -> pl.DataFrame:
    """One row per ``keys``: the last by ``order`` (nulls first), SPEC §2's dedup rule.

    ``order`` is ``updated_at, _seq, _row`` for backups: the newest
    ``updated_at`` wins, a tie goes to the file ingested later. The one place
    the rule is written; ingest, appends and in-memory dumps all call it.

    Example: ``newest(frame, ["id"], ["updated_at", "_seq", "_row"])``.
    """
    return frame.sort(order, nulls_last=False).unique(subset=keys, keep="last")


def ordering(kind: str) -> tuple[list[str], list[str]]:
    """The sort and the dedup order of a table of ``kind``, as its writers pass them.

    Example: ``ordering("backups")`` -> ``(["created_at", "id"], ["updated_at", "_seq", "_row"])``.
    """
    if kind == "backups":
        # Newest updated_at wins; a tie goes to the later file, then record.
        return list(STORE_ORDER), list(DEDUP_ORDER)
    return [*DEDUP_KEYS[kind]], [SEQ, ROW]


def fragmented(manifest: Manifest) -> list[str]:
    """The tables of ``manifest`` that ``compact`` would rewrite (several segments, dead rows).

    Example: ``fragmented(read_manifest(root))`` -> ``["backups"]``; ``[]``: nothing to compact.
    """
    return [kind for kind in RECORD_KINDS if not manifest.ordered(kind) or kind in manifest.dead]


def merge_count(sizes: list[int], added: int, dead_share: float) -> int:
    """How many of the newest segments (of ``sizes`` rows, oldest first) to merge.

    The new rows (``added``) absorb the segment before them while it holds
    no more than :data:`MERGE_RATIO` times what they hold so far, or while
    the table would have more than :data:`MAX_SEGMENTS` segments; past
    :data:`MAX_DEAD_SHARE` superseded rows (``dead_share``, as the store
    stands before this ingest), everything is merged.

    Example: ``merge_count([1000, 10, 5], 5, 0.0)`` -> ``2`` (5+5, then 10).
    """
    if dead_share > MAX_DEAD_SHARE:
        return len(sizes)
    held, count = added, 0
    while count < len(sizes):
        remaining = len(sizes) - count + (1 if held else 0)
        if sizes[-1 - count] > MERGE_RATIO * held and remaining <= MAX_SEGMENTS:
            break
        held += sizes[-1 - count]
        count += 1
    return count


class Generation:
    """A new generation being written; nothing is visible until :meth:`commit`.

    Example::

        with locked(root):
            gen = Generation(root, read_manifest(root))
            gen.write_part("backups", frame, ["created_at", "id"])
            ...
            gen.append("backups", ["created_at", "id"], ["updated_at", "_seq", "_row"])
            gen.commit(gen.manifest(counts, files, quarantine))
    """

    def __init__(self, root: Path, previous: Manifest) -> None:
        self.root = root
        self.previous = previous
        # Before anything is written or removed: a store with committed generations
        # its manifest does not know (a lost or older manifest.json) is refused.
        found = survey(root, previous)
        refused = refusal(root, previous, found)
        if refused is not None:
            raise refused
        _remove_stale(root, keep=previous, found=found)
        number = previous.generation + 1
        while (root / f"g{number:06d}").exists():
            number += 1  # a directory cbrq did not make (a user's file in it) is left alone
        self.number = number
        self.name = f"g{self.number:06d}"
        self.path = root / self.name
        self.path.mkdir(parents=True)
        (self.path / WRITING).touch()  # until the commit is done: a crash leaves a leftover
        self._parts: dict[str, list[Path]] = {kind: [] for kind in RECORD_KINDS}
        #: The first and last sort key of each part, in the order of ``_parts``.
        self._bounds: dict[str, list[Bounds]] = {kind: [] for kind in RECORD_KINDS}
        self._naming = threading.Lock()
        self._tables: dict[str, list[str]] = dict(previous.tables)
        self._segments: dict[str, list[int]] = {
            kind: [len(files) for files in previous.segment_files(kind)] for kind in previous.tables
        }
        self._rows: dict[str, list[int]] = {
            kind: self._stored_rows(kind) for kind in previous.tables
        }
        self._runs: dict[str, list[int]] = {
            kind: previous.segment_runs(kind) for kind in previous.tables
        }
        self._dead: dict[str, str] = dict(previous.dead)
        self._superseded: dict[str, int] = dict(previous.superseded)
        #: Whether this store keeps history (SPEC §6): set by the ingest that writes it.
        self.history = previous.keeps_history

    def _stored_rows(self, kind: str) -> list[int]:
        """Rows of each previous segment: from the manifest, or (older stores) the footers."""
        counted = self.previous.segment_rows(kind)
        if counted is not None:
            return counted
        segments = self.previous.segment_files(kind)
        return [_rows([self.root / name for name in files]) for files in segments]

    def has_parts(self, kind: str) -> bool:
        """Whether records of ``kind`` were staged in this generation."""
        return bool(self._parts[kind])

    def write_part(self, kind: str, frame: pl.DataFrame, sort: list[str]) -> None:
        """Write a batch of freshly typed records of ``kind`` as a run sorted by ``sort``.

        A run is a Parquet file in the store's final form (row groups,
        compression, statistics, page checksums) while :meth:`append` may
        keep it as it is: among the first :data:`MAX_RUNS` runs of a kind, or
        while the runs so far follow one another in sort order without
        overlapping (an export paged newest first is read that way). Each
        record is then written once. Runs that will be merged are staged as
        Arrow IPC (lz4), cheaper to write and read back.
        """
        if frame.height == 0:
            return
        frame = frame.sort(sort, nulls_last=True)
        bounds = run_bounds(frame, sort)
        with self._naming:  # parts may be staged from several threads
            number = len(self._parts[kind])
            self._bounds[kind].append(bounds)
            final = number < MAX_RUNS or chain(self._bounds[kind]) is not None
            part = self.path / "parts" / f"{kind}-{number:05d}{'.parquet' if final else STAGED}"
            self._parts[kind].append(part)
        part.parent.mkdir(exist_ok=True)
        table = frame.to_arrow()
        if not final:
            options = ipc.IpcWriteOptions(compression="lz4")
            with ipc.new_file(str(part), table.schema, options=options) as writer:
                writer.write_table(table, max_chunksize=PART_ROWS)
            return
        pq.write_table(
            table,
            part,
            row_group_size=ROW_GROUP_ROWS,
            compression="zstd",
            write_statistics=True,
            write_page_checksum=True,
        )

    def _staged(self, kind: str) -> list[tuple[Path, int]]:
        """The runs of ``kind`` this ingest wrote, each with the rows it reads at a time."""
        return [(p, PART_ROWS if p.suffix == STAGED else ROW_GROUP_ROWS) for p in self._parts[kind]]

    def _keepable(self, kind: str, parts: list[tuple[Path, int]]) -> list[int] | None:
        """The order in which ``parts`` of ``kind`` may be kept as a segment, or ``None``.

        They must all be in the store's final form, and either follow one
        another in sort order (one sorted run, whatever their number) or be
        at most :data:`MAX_RUNS` runs.
        """
        if not parts or any(path.suffix == STAGED for path, _ in parts):
            return None
        order = chain(self._bounds[kind])
        if order is not None:
            return order
        return list(range(len(parts))) if len(parts) <= MAX_RUNS else None

    def _runs_of(self, kind: str, count: int) -> int:
        """The ``runs`` of a segment of ``count`` kept parts of ``kind``: 1 if one chain."""
        return 1 if chain(self._bounds[kind]) is not None else count

    def write_table(self, kind: str, sort: list[str], order: list[str]) -> int:
        """Rewrite the table of ``kind`` as one segment: stored rows plus staged parts.

        For the small tables (vaults, members). One row per dedup key,
        sorted by ``sort``; ``order`` ranks copies of one key (the last
        after sorting by it wins). Returns the row count.
        """
        sources = [(path, ROW_GROUP_ROWS) for path in table_files(self.root, self.previous, kind)]
        sources += self._staged(kind)
        if not sources:
            self._set_table(kind, 0, [], 0, 0)
            return 0
        keys = list(DEDUP_KEYS[kind])
        with decoding(self.root, self.previous, filesystem=False):
            masks, kept = _winners(sources, keys, order, self.path / "parts")
            files = self._sink_table(kind, sources, masks, sort)
        self._set_table(kind, 0, files, kept, 0)
        return kept

    def append(self, kind: str, sort: list[str], order: list[str]) -> Appended:
        """Add the staged parts of ``kind`` as a new segment; stored rows are not rewritten.

        1. The staged records are deduplicated among themselves (narrow key
           columns only, :func:`_winners`), and each winner is compared with
           the stored row of its key, read from the stored key columns of
           just those keys: the newer (by ``order``; a tie goes to the
           staged one) wins, and a stored row that loses is superseded.
        2. :func:`merge_count` picks the newest segments to merge with the
           staged rows; their live rows and the winners are merged by
           ``sort`` into one new segment (usually just the winners).
        3. The dead file lists the superseded rows not merged away.
        """
        with decoding(self.root, self.previous, filesystem=False):
            if self.history:
                return self._append_history(kind, sort, order)
            return self._append(kind, sort, order)

    def _append_history(self, kind: str, sort: list[str], order: list[str]) -> Appended:
        """:meth:`append` for a store that keeps history (SPEC §6).

        A record identical to a stored version of its key (same ``updated_at``,
        same text) is not written again: the ingest saw that stored row. Every
        other record is written, even one older than the stored live row (a
        version of the past, superseded at once). Superseded rows are versions,
        kept by merges; the dead file lists them for the newest-version view.
        """
        keys = list(DEDUP_KEYS[kind])
        prior = self.previous.segment_files(kind)
        parts = self._staged(kind)
        staged = sum(_rows([path]) for path, _ in parts)
        merged = merge_count(self._rows.get(kind, []), staged, 0.0)
        kept = len(prior) - merged
        rewrite_names = [name for files in prior[kept:] for name in files]
        if rewrite_names:
            self._require_intact(kind, rewrite_names, "not merged")
        rewrite = [self.root / name for name in rewrite_names]
        stored = (
            scan_physical(self.root, kind, self.previous)
            .with_row_index(POS)
            .select(*keys, *order, pl.col(POS).cast(pl.Int64), pl.col(PAYLOAD).hash().alias(FP))
        )
        previous_dead = _dead_rows(self.root, self.previous, kind, pl.DataFrame())
        rival = _Versions(stored if prior else None, keys, order, previous_dead[POS])
        masks, added = _winners(parts, keys, order, self.path / "parts", rival, fingerprint=True)
        keep = self._keepable(kind, parts)
        if not merged and added and added == staged and keep is not None:
            # Every record read is written and nothing is merged: the runs are the segment.
            runs = self._adopt(kind, [parts[i] for i in keep])
            self._set_table(kind, kept, runs, staged, 0, runs=self._runs_of(kind, len(runs)))
        else:
            every = [*[np.ones(_rows([path]), dtype=np.bool_) for path in rewrite], *masks]
            files: list[Path] = []
            if added or merged:
                sources = [(path, ROW_GROUP_ROWS) for path in rewrite] + parts
                files = self._sink_table(kind, sources, every, sort)
            self._set_table(kind, kept, files, sum(int(m.sum()) for m in every), 0)
        dead = (
            pl.concat([previous_dead.select(SEQ, ROW), rival.displaced(), rival.born_dead()])
            .unique()
            .join(rival.revived(), on=[SEQ, ROW], how="anti")
        )
        positioned = self._positions(kind, dead)
        self._write_dead(kind, positioned)
        self._superseded[kind] = positioned.height
        displaced = rival.displaced().height
        born_dead, revived = rival.born_dead().height, rival.revived().height
        live = self.previous.counts.get(kind, 0) + added - displaced - born_dead + revived
        return Appended(
            added, displaced, merged, live, seen=rival.seen(), unchanged=rival.unchanged
        )

    def _positions(self, kind: str, dead: pl.DataFrame) -> pl.DataFrame:
        """``dead`` (``_seq``, ``_row``) with each row's position in the table as it now stands."""
        if dead.height == 0:
            return pl.DataFrame(schema=DEAD_SCHEMA)
        files = [self.root / name for name in self._tables[kind]]
        wanted = dead.select(dead_key()).to_series().implode()
        found = (
            pl.scan_parquet(files, glob=False)
            .select(SEQ, ROW)
            .with_row_index(POS)
            .filter(dead_key().is_in(wanted))
            .select(
                pl.col(SEQ).cast(pl.Int64), pl.col(ROW).cast(pl.Int64), pl.col(POS).cast(pl.Int64)
            )
            .collect()
        )
        return found.cast(DEAD_SCHEMA)

    def fold_sightings(
        self, records: tuple[IngestRecord, ...], quarantine: str | None
    ) -> tuple[IngestRecord, ...]:
        """``records`` with the history files of otherwise unused generations copied here.

        A generation whose tables were all merged away would stay on disk for
        its ingest's sightings and listings files alone (with the segments it
        no longer serves): the small files move into this generation instead,
        and the old directory is removed like any other unreferenced one.

        Example: ``gen.fold_sightings(previous.ingests, quarantine)``.
        """
        names = [n for files in self._tables.values() for n in files]
        names += [*self._dead.values(), *([quarantine] if quarantine else [])]
        used = {name.split("/", 1)[0] for name in names} | {self.name}
        out = []
        for entry in records:
            if all(name.split("/", 1)[0] in used for name in entry.files()):
                out.append(entry)
                continue
            sightings = entry.sightings and self._fold(entry.sightings, f"sightings-{entry.n:06d}")
            listings = entry.listings and {
                kind: self._fold(name, f"{kind}-held-{entry.n:06d}")
                for kind, name in entry.listings.items()
            }
            out.append(dataclasses.replace(entry, sightings=sightings, listings=listings))
        return tuple(out)

    def _fold(self, name: str, stem: str) -> str:
        """The store file ``name`` copied into this generation as ``stem``.parquet; its new name."""
        shutil.copyfile(self.root / name, self.path / f"{stem}.parquet")
        return f"{self.name}/{stem}.parquet"

    def write_listing(self, kind: str, frames: list[pl.DataFrame]) -> str:
        """Write the ``kind`` records (vaults, members) an ingest held; its store name.

        One row per key (the copy read last wins, as in the table), in the
        table's schema: a history store's versions of the small tables.

        Example: ``gen.write_listing("vaults", frames)`` -> ``"g000003/vaults-held.parquet"``.
        """
        sort, order = ordering(kind)
        frame = (
            pl.concat(frames, how="vertical_relaxed")
            .sort(order)
            .unique(subset=list(DEDUP_KEYS[kind]), keep="last", maintain_order=True)
            .sort(sort, nulls_last=True)
        )
        name = f"{kind}-held.parquet"
        pq.write_table(
            frame.to_arrow(), self.path / name, compression="zstd", write_page_checksum=True
        )
        return f"{self.name}/{name}"

    def write_sightings(self, refs: pl.Series) -> str:
        """Write the rows an ingest saw (packed ``_seq``/``_row``, sorted); its store name."""
        path = self.path / SIGHTINGS
        frame = pl.DataFrame({REF: refs.cast(pl.Int64)}).unique().sort(REF)
        pq.write_table(frame.to_arrow(), path, compression="zstd", write_page_checksum=True)
        return f"{self.name}/{SIGHTINGS}"

    def _append(self, kind: str, sort: list[str], order: list[str]) -> Appended:
        keys = list(DEDUP_KEYS[kind])
        prior = self.previous.segment_files(kind)
        parts = self._staged(kind)
        staged = sum(_rows([path]) for path, _ in parts)
        sizes = self._rows.get(kind, [])
        share = self.previous.superseded.get(kind, 0) / max(1, sum(sizes))
        merged = merge_count(sizes, staged, share)
        kept = len(prior) - merged
        rewrite = [self.root / name for files in prior[kept:] for name in files]
        if rewrite:  # merged segments are rewritten: damage must not be copied into them
            self._require_intact(
                kind, [name for files in prior[kept:] for name in files], "not merged"
            )
        stored = (
            scan_physical(self.root, kind, self.previous)
            .with_row_index(POS)
            .select(*keys, *order, pl.col(POS).cast(pl.Int64))
        )
        rival = None if not prior else _Rival(stored, keys, order)
        masks, added = _winners(parts, keys, order, self.path / "parts", rival)
        displaced = pl.DataFrame() if rival is None else rival.displaced()
        dead = _dead_rows(self.root, self.previous, kind, displaced)
        live = self.previous.counts.get(kind, 0) + added - displaced.height
        # Nothing merged and few copies lost: the runs are the new segment as written,
        # and the copies that lost are listed dead like superseded stored rows.
        lost = dead.height + staged - added
        keep = self._keepable(kind, parts)
        few = keep is not None and lost <= MAX_DEAD_SHARE * (sum(sizes) + staged)
        if not merged and added and few and keep is not None:
            runs = self._adopt(kind, [parts[i] for i in keep])
            dead = pl.concat([dead, self._losers(kind, runs, [masks[i] for i in keep])])
            self._write_dead(kind, dead)
            count = self._runs_of(kind, len(runs))
            self._set_table(kind, kept, runs, staged, dead.height, runs=count)
            return Appended(added, displaced.height, 0, live)
        old_masks, dropped = _live_masks(rewrite, dead.select(dead_key()).to_series())
        sources = [(path, ROW_GROUP_ROWS) for path in rewrite] + parts
        files: list[Path] = []
        every = [*old_masks, *masks]
        if added or merged:
            files = self._sink_table(kind, sources, every, sort)
        # Rows of the kept segments keep their positions: the merged ones come after them.
        remaining = dead.filter(~dead_key().is_in(dropped.implode()))
        self._write_dead(kind, remaining)
        self._set_table(kind, kept, files, sum(int(m.sum()) for m in every), remaining.height)
        return Appended(added, displaced.height, merged, live)

    def _adopt(self, kind: str, parts: list[tuple[Path, int]]) -> list[Path]:
        """The runs ``parts`` moved, as they are, into this generation as the table's new files."""
        files = [self.path / f"{kind}-{number:05d}.parquet" for number in range(len(parts))]
        for (part, _), file in zip(parts, files, strict=True):
            os.replace(part, file)
        return files

    def _losers(self, kind: str, files: list[Path], masks: list[Mask]) -> pl.DataFrame:
        """Rows of the adopted ``files`` that ``masks`` do not keep, as dead rows.

        Their positions follow every stored row of the kept segments.
        """
        start = sum(self._rows.get(kind, []))
        pieces: list[pl.DataFrame] = []
        for file, mask in zip(files, masks, strict=True):
            lost = np.flatnonzero(~mask)
            if lost.size:
                keys = pl.read_parquet(file, columns=[SEQ, ROW], glob=False)[lost]
                pieces.append(keys.with_columns(pl.Series(POS, start + lost)))
            start += mask.size
        if not pieces:
            return pl.DataFrame(schema=DEAD_SCHEMA)
        return pl.concat([piece.cast(DEAD_SCHEMA) for piece in pieces])

    def compact(self, kind: str, sort: list[str]) -> int:
        """Merge every segment of ``kind`` into one, without superseded rows; its rows.

        The files rewritten are verified first (sizes, checksums, footers, row
        counts): a damaged store is refused, not rewritten.
        """
        self._require_intact(kind, list(self.previous.tables.get(kind, [])), "not compacted")
        with decoding(self.root, self.previous, filesystem=False):
            return self._compact(kind, sort)

    def _require_intact(self, kind: str, names: list[str], outcome: str) -> None:
        """Refuse to rewrite ``names`` (and the dead file of ``kind``) unless they verify."""
        if kind in self.previous.dead:
            names = [*names, self.previous.dead[kind]]
        findings = verify(self.root, self.previous, only=names)
        if findings:
            first = findings[0]
            more = f" (and {len(findings) - 1} more problem(s))" if len(findings) > 1 else ""
            raise damaged(self.root, first.name, f"{first.problem}{more}; {outcome}")

    def _compact(self, kind: str, sort: list[str]) -> int:
        files = table_files(self.root, self.previous, kind)
        dead = _dead_rows(self.root, self.previous, kind, pl.DataFrame())
        if self.history and kind == "backups":
            # Superseded rows are versions of the past: one segment, every version kept.
            masks = [np.ones(_rows([path]), dtype=np.bool_) for path in files]
            written = self._sink_table(kind, [(p, ROW_GROUP_ROWS) for p in files], masks, sort)
            rows = sum(int(mask.sum()) for mask in masks)
            self._set_table(kind, 0, written, rows, 0)
            positioned = self._positions(kind, dead.select(SEQ, ROW))
            self._write_dead(kind, positioned)
            self._superseded[kind] = positioned.height
            return rows - positioned.height
        masks, _ = _live_masks(files, dead.select(dead_key()).to_series())
        written = self._sink_table(kind, [(p, ROW_GROUP_ROWS) for p in files], masks, sort)
        self._write_dead(kind, pl.DataFrame(schema=DEAD_SCHEMA))
        rows = sum(int(mask.sum()) for mask in masks)
        self._set_table(kind, 0, written, rows, 0)
        return rows

    def _sink_table(
        self,
        kind: str,
        sources: list[tuple[Path, int]],
        masks: Sequence[Mask | None] | None,
        sort: list[str],
    ) -> list[Path]:
        if len(sources) > FAN_IN:
            # Every source holds a slice of whole records while the table is written.
            sources, masks = self._fan_in(kind, sources, masks, sort)

        def name(number: int) -> Path:
            return self.path / f"{kind}-{number:05d}.parquet"

        if not sources:
            pq.write_table(
                empty_frame(kind).to_arrow(),
                name(0),
                row_group_size=ROW_GROUP_ROWS,
                compression="zstd",
                write_page_checksum=True,
            )
            return [name(0)]
        return _sink(
            sources,
            masks,
            sort,
            name,
            compression="zstd",
            statistics=True,
            rows=ROW_GROUP_ROWS,
            file_rows=FILE_ROWS,
        )

    def _set_table(
        self, kind: str, kept: int, files: list[Path], rows: int, dead: int, *, runs: int = 1
    ) -> None:
        """The table of ``kind``: its first ``kept`` segments, then ``files`` (``rows`` rows).

        ``runs``: 1 if ``files`` follow one another in sort order, or their
        number if each is sorted on its own.
        """
        segments = self.previous.segment_files(kind)[:kept] if kind in self.previous.tables else []
        counts = self._rows.get(kind, [])[:kept]
        runs_of = self._runs.get(kind, [])[:kept]
        if files:
            segments.append([f"{self.name}/{path.name}" for path in files])
            counts.append(rows)
            runs_of.append(runs)
        if not segments:  # an empty table is one empty file, so readers see its columns
            empty = self._sink_table(kind, [], None, [])
            segments, counts = [[f"{self.name}/{path.name}" for path in empty]], [0]
            runs_of = [1]
        self._tables[kind] = [name for names in segments for name in names]
        self._segments[kind] = [len(names) for names in segments]
        self._rows[kind] = counts
        self._runs[kind] = runs_of
        self._superseded[kind] = dead
        if not dead:
            self._dead.pop(kind, None)

    def _write_dead(self, kind: str, dead: pl.DataFrame) -> None:
        if dead.height == 0:
            self._dead.pop(kind, None)
            return
        path = self.path / f"{kind}-dead.parquet"
        pq.write_table(
            dead.sort(POS).to_arrow(), path, compression="zstd", write_page_checksum=True
        )
        self._dead[kind] = f"{self.name}/{path.name}"

    def _fan_in(
        self,
        kind: str,
        sources: list[tuple[Path, int]],
        masks: Sequence[Mask | None] | None,
        sort: list[str],
    ) -> tuple[list[tuple[Path, int]], list[Mask | None]]:
        """Merge ``sources`` in groups (their kept rows) until at most :data:`FAN_IN` remain.

        The groups become intermediate sorted runs (Arrow IPC) under ``parts``;
        a batch's own run merged into one is removed, a stored file is not.
        """
        kept: list[Mask | None] = list(masks) if masks is not None else [None] * len(sources)
        parts = self.path / "parts"
        parts.mkdir(exist_ok=True)
        level = 0
        while len(sources) > FAN_IN:
            level += 1
            merged: list[tuple[Path, int]] = []
            merged_masks: list[Mask | None] = []
            for start in range(0, len(sources), FAN_IN):
                group, group_masks = sources[start : start + FAN_IN], kept[start : start + FAN_IN]
                if len(group) == 1:
                    merged.extend(group)
                    merged_masks.extend(group_masks)
                    continue
                run = parts / f"{kind}-run{level}-{len(merged):05d}{STAGED}"
                _sink(
                    group,
                    group_masks,
                    sort,
                    _one(run),
                    compression="lz4",
                    statistics=False,
                    rows=PART_ROWS,
                    file_rows=None,
                )
                for path, _ in group:
                    if path.parent == parts:
                        path.unlink()
                merged.append((run, PART_ROWS))
                merged_masks.append(None)
            sources, kept = merged, merged_masks
        return sources, kept

    def write_text(self, name: str, text: str) -> str:
        """Write a small file into the generation; its store-relative name."""
        (self.path / name).write_text(text, "utf-8")
        return f"{self.name}/{name}"

    def manifest(
        self,
        counts: dict[str, int],
        files: list[dict[str, Any]],
        quarantine: str | None,
        ingests: tuple[IngestRecord, ...] | None = None,
    ) -> Manifest:
        """The manifest of this generation's tables, with the given counts and file list.

        ``ingests``: every ingest record (default: the previous commit's).
        """
        return Manifest(
            ingests=self.previous.ingests if ingests is None else ingests,
            generation=self.number,
            tables=dict(self._tables),
            counts=counts,
            files=files,
            quarantine=quarantine,
            segments=dict(self._segments),
            runs=dict(self._runs),
            rows=dict(self._rows),
            dead=dict(self._dead),
            superseded={k: v for k, v in self._superseded.items() if v},
        )

    def _settle_history(self, manifest: Manifest) -> Manifest:
        """``manifest`` with its away file (:func:`~engine.store.history.latest_away`) up to date.

        Recomputed when the backups or the ingests changed (a snapshot that
        rewrote nothing still makes backups gone); otherwise carried over.
        """
        if not manifest.keeps_history:
            return dataclasses.replace(manifest, away={})
        previous = self.previous
        if (
            previous.away
            and manifest.ingests == previous.ingests
            and manifest.tables.get("backups") == previous.tables.get("backups")
        ):
            return dataclasses.replace(manifest, away=dict(previous.away))
        with decoding(self.root, manifest, filesystem=False):
            away = latest_away(self.root, manifest)
        path = self.path / "backups-away.parquet"
        table = away.sort(POS).to_arrow()
        pq.write_table(table, path, compression="zstd", write_page_checksum=True)
        return dataclasses.replace(manifest, away={"backups": f"{self.name}/{path.name}"})

    def commit(self, manifest: Manifest) -> None:
        """Make this generation current in one rename, then drop unreferenced ones.

        Every file the commit wrote gets its size and SHA-256 in the manifest
        (files of earlier commits keep theirs). After the rename a copy of
        the manifest goes into the generation's own directory: what
        ``cbrq check --repair`` restores if ``manifest.json`` is lost.
        """
        shutil.rmtree(self.path / "parts", ignore_errors=True)
        manifest = self._settle_history(manifest)
        (self.path / READERS).touch()
        mine = f"{self.name}/"
        sums = {
            name: None if name.startswith(mine) else self.previous.checksums.get(name)
            for name in manifest.listed()
        }
        checksums = {
            name: recorded if recorded is not None else record(self.root / name)
            for name, recorded in sums.items()
            if recorded is not None or name.startswith(mine)
        }
        _fsync_tree(self.path)
        stamped = dataclasses.replace(
            manifest,
            generation=self.number,
            updated_at=datetime.now(UTC).isoformat(timespec="seconds"),
            checksums=checksums,
        )
        # msgspec's encoder: json.dump with an indent is pure Python (0.6 s for 10,000 files).
        text = msgspec.json.format(msgspec.json.encode(stamped.to_json()), indent=2) + b"\n"
        tmp = self.root / f"{MANIFEST}.tmp"
        _write_durably(tmp, text)
        first = not (self.root / MANIFEST).exists()
        os.replace(tmp, self.root / MANIFEST)
        _fsync_dir(self.root)
        if first:
            _fsync_dir(self.root.parent)  # the new store's own directory entry
        # The copy marks the generation committed; a crash before it leaves WRITING,
        # and the directory is still the one manifest.json uses.
        _write_durably(self.path / f"{COPY}.tmp", text)
        os.replace(self.path / f"{COPY}.tmp", self.path / COPY)
        (self.path / WRITING).unlink(missing_ok=True)
        _fsync_dir(self.path)
        _remove_stale(self.root, keep=stamped)

    def abandon(self) -> None:
        """Remove this generation's files (the previous inventory stays current)."""
        shutil.rmtree(self.path, ignore_errors=True)
        (self.root / f"{MANIFEST}.tmp").unlink(missing_ok=True)

    def table_names(self, kind: str) -> list[str]:
        """Store-relative paths of every file of the table of ``kind``, in order."""
        return list(self._tables.get(kind, []))


class _Rival:
    """The stored rows that staged winners compete with, read for just their keys.

    Called once per dedup partition with that partition's winners; keeps
    the winners newer than (or tied with) the stored row of their key and
    remembers the stored rows they supersede.
    """

    def __init__(self, stored: pl.LazyFrame, keys: list[str], order: list[str]) -> None:
        self._stored = stored
        self._keys = keys
        self._order = order
        self._displaced: list[pl.DataFrame] = []

    def __call__(self, winners: pl.DataFrame) -> pl.DataFrame:
        found = self._stored.filter(_among(winners, self._keys)).collect(engine="streaming")
        stored = newest(found, self._keys, self._order)  # the live copy of each key
        if stored.height == 0:
            return winners
        old = {name: f"{name}_stored" for name in [*self._order, POS]}
        both = winners.join(stored.rename(old), on=self._keys, how="left")
        present = pl.col(f"{SEQ}_stored").is_not_null()
        loses = present & _after([pl.col(old[n]) for n in self._order], self._order)
        self._displaced.append(
            both.filter(present & ~loses).select(
                pl.col(old[SEQ]).alias(SEQ), pl.col(old[ROW]).alias(ROW), pl.col(old[POS])
            )
        )
        return both.filter(~loses).select(winners.columns)

    def displaced(self) -> pl.DataFrame:
        """``_seq``, ``_row`` and position (``_pos``) of every stored row a winner superseded."""
        if not self._displaced:
            return pl.DataFrame(schema=DEAD_SCHEMA)
        return pl.concat(self._displaced).rename({f"{POS}_stored": POS})


class _Versions:
    """The stored versions that staged winners meet in a store that keeps history.

    Per dedup partition: a winner identical to a stored version of its key
    (same ``updated_at``, same fingerprint) is not written, and the ingest saw
    that stored row; if that version is superseded but at least as new as the
    live one (``updated_at``), it is live again, this ingest being the later
    one. Any other winner is written: newer than (or as new as) the live row,
    it supersedes it; older, it is a version of the past, superseded at once.
    The live row of a key is its stored row not in the dead file (``dead``:
    their positions).
    """

    def __init__(
        self, stored: pl.LazyFrame | None, keys: list[str], order: list[str], dead: pl.Series
    ) -> None:
        self._stored = stored
        self._keys = keys
        self._order = order
        self._dead = dead.implode()
        self._displaced: list[pl.DataFrame] = []
        self._born_dead: list[pl.DataFrame] = []
        self._revived: list[pl.DataFrame] = []
        self._seen: list[pl.Series] = []
        self.unchanged = 0

    def __call__(self, winners: pl.DataFrame) -> pl.DataFrame:
        if self._stored is None:
            self._seen.append(winners.select(dead_key()).to_series())
            return winners
        found = self._stored.filter(_among(winners, self._keys)).collect(engine="streaming")
        live = found.filter(~pl.col(POS).is_in(self._dead))
        same_on = [*self._keys, self._order[0], FP]
        identical = (
            found.join(winners.select(same_on), on=same_on, how="semi", nulls_equal=True)
            .with_columns(pl.col(POS).is_in(live[POS].implode()).alias("_live"))
            .sort("_live", SEQ, ROW)
            .unique(subset=self._keys, keep="last")  # the live copy if it is one of them
        )
        self._seen.append(identical.select(dead_key()).to_series())
        self._revive(identical.filter(~pl.col("_live")), live)
        fresh = winners.join(identical.select(same_on), on=same_on, how="anti", nulls_equal=True)
        self.unchanged += winners.height - fresh.height
        self._seen.append(fresh.select(dead_key()).to_series())
        old = {name: f"{name}_stored" for name in self._order}
        both = fresh.join(
            live.select(*self._keys, *self._order).rename(old), on=self._keys, how="left"
        )
        present = pl.col(f"{SEQ}_stored").is_not_null()
        older = present & _after([pl.col(old[n]) for n in self._order], self._order)
        self._displaced.append(
            both.filter(present & ~older).select(
                pl.col(old[SEQ]).alias(SEQ), pl.col(old[ROW]).alias(ROW)
            )
        )
        self._born_dead.append(both.filter(older).select(SEQ, ROW))
        return fresh

    def _revive(self, superseded: pl.DataFrame, live: pl.DataFrame) -> None:
        """Superseded versions seen again that are at least as new as the live row: live again."""
        when = self._order[0]
        both = superseded.join(
            live.select(*self._keys, pl.col(when).alias("_live_at"), SEQ, ROW),
            on=self._keys,
            how="left",
            suffix="_live",
        )
        mine, theirs = pl.col(when), pl.col("_live_at")
        not_older = theirs.is_null() | (mine >= theirs).fill_null(False)
        back = both.filter(not_older)
        self._revived.append(back.select(SEQ, ROW))
        self._displaced.append(
            back.filter(pl.col(f"{SEQ}_live").is_not_null()).select(
                pl.col(f"{SEQ}_live").alias(SEQ), pl.col(f"{ROW}_live").alias(ROW)
            )
        )

    def _frame(self, pieces: list[pl.DataFrame]) -> pl.DataFrame:
        schema = pl.Schema({SEQ: pl.Int64(), ROW: pl.Int64()})
        if not pieces:
            return pl.DataFrame(schema=schema)
        return pl.concat([piece.cast(schema) for piece in pieces])

    def displaced(self) -> pl.DataFrame:
        """``_seq`` and ``_row`` of every live row superseded (by a winner or a revived version)."""
        return self._frame(self._displaced)

    def born_dead(self) -> pl.DataFrame:
        """``_seq`` and ``_row`` of every written winner older than the stored live row."""
        return self._frame(self._born_dead)

    def revived(self) -> pl.DataFrame:
        """``_seq`` and ``_row`` of every superseded version that is live again."""
        return self._frame(self._revived)

    def seen(self) -> pl.Series:
        """Every row this ingest saw, packed (written winners and unchanged stored versions)."""
        if not self._seen:
            return pl.Series(REF, [], pl.Int64)
        return pl.concat(self._seen).alias(REF)


def _among(frame: pl.DataFrame, keys: list[str]) -> pl.Expr:
    """True where a row's ``keys`` are among those of ``frame``.

    One key is an ``is_in`` (streamed over the stored key column faster than
    a semi join: 1.3 s against 1.5-3 s for 1,000 ids among 10M); several
    keys are compared as one struct.
    """
    if len(keys) == 1:
        return pl.col(keys[0]).is_in(frame[keys[0]].implode())
    return pl.struct(keys).is_in(frame.select(pl.struct(keys)).to_series().implode())


def _after(left: list[pl.Expr], right: list[str]) -> pl.Expr:
    """True where ``left`` sorts after the columns ``right`` (lexicographic, nulls first)."""
    result: pl.Expr = pl.lit(False)
    for a, name in reversed(list(zip(left, right, strict=True))):
        b = pl.col(name)
        greater = (a.is_not_null() & b.is_null()) | (a > b).fill_null(False)
        equal = (a.is_null() & b.is_null()) | (a == b).fill_null(False)
        result = greater | (equal & result)
    return result


def _dead_rows(root: Path, previous: Manifest, kind: str, displaced: pl.DataFrame) -> pl.DataFrame:
    """The stored dead rows of ``kind`` (``_seq``, ``_row``, ``_pos``) and ``displaced``."""
    pieces = [displaced] if displaced.height else []
    path = dead_file(root, previous, kind)
    if path is not None:
        pieces.append(pl.read_parquet(path, columns=list(DEAD_SCHEMA), glob=False))
    if not pieces:
        return pl.DataFrame(schema=DEAD_SCHEMA)
    return pl.concat([piece.cast(DEAD_SCHEMA) for piece in pieces])


def _live_masks(files: list[Path], dead: pl.Series) -> tuple[list[Mask], pl.Series]:
    """Per stored file, which rows are live; and the dead keys found in these files."""
    masks: list[Mask] = []
    found: list[pl.Series] = []
    wanted = dead.implode()
    for path in files:
        keys = pl.scan_parquet(path, glob=False).select(dead_key()).collect().to_series()
        hit = keys.is_in(wanted)
        masks.append((~hit).to_numpy())
        found.append(keys.filter(hit))
    return masks, (pl.concat(found) if found else pl.Series("_key", [], pl.Int64))


def _rows(files: list[Path]) -> int:
    """Rows stored in ``files``, Parquet or staged (from their footers)."""
    return sum(int(_scan(path).select(pl.len()).collect().item()) for path in files)


def _sink(
    sources: list[tuple[Path, int]],
    masks: Sequence[Mask | None] | None,
    sort: list[str],
    name: Callable[[int], Path],
    *,
    compression: Literal["lz4", "zstd"],
    statistics: bool,
    rows: int,
    file_rows: int | None,
) -> list[Path]:
    """Stream the rows of ``sources`` kept by ``masks`` (all if None), by ``sort``; the files.

    The files are ``name(0)``, ``name(1)``, ... of ``file_rows`` rows each
    (one file if ``None``): Parquet in row groups of ``rows``, or Arrow IPC
    in record batches of ``rows`` if the name ends in :data:`STAGED`.
    Written chunk by chunk with pyarrow, at most one chunk ahead: polars'
    sink pulled chunks faster than it wrote them, so its memory grew with
    the table.
    """
    writer: _Writer | None = None
    try:
        # One chunk is written (pyarrow, GIL released) while the next is gathered.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cbrq-write") as pool:
            pending: Future[None] | None = None
            for frame in _gather(sources, _order(sources, masks, sort), None, None, None, None):
                table = frame.to_arrow()
                if writer is None:
                    writer = _Writer(name, table.schema, compression, statistics, rows, file_rows)
                if pending is not None:
                    pending.result()
                pending = pool.submit(writer.write, table)
            if pending is not None:
                pending.result()
            if writer is None:  # no row at all
                empty = _scan(sources[0][0]).head(0).collect().to_arrow()
                writer = _Writer(name, empty.schema, compression, statistics, rows, file_rows)
                writer.write(empty)
    finally:
        if writer is not None:
            writer.close()
    return writer.files


def _one(path: Path) -> Callable[[int], Path]:
    """File names for a :class:`_Writer` that writes one file, ``path``."""
    return lambda _: path


class _Writer:
    """Appends Arrow tables to files of at most ``file_rows`` rows each (one file if ``None``).

    Parquet, or Arrow IPC for names ending in :data:`STAGED`.
    """

    def __init__(
        self,
        name: Callable[[int], Path],
        schema: pa.Schema,
        compression: Literal["lz4", "zstd"],
        statistics: bool,
        rows: int,
        file_rows: int | None,
    ) -> None:
        self.files: list[Path] = []
        self._name = name
        self._schema = schema
        self._compression = compression
        self._statistics = statistics
        self._rows = rows
        self._file_rows = file_rows
        self._held = 0  # rows in the open file
        self._ipc: ipc.RecordBatchFileWriter | None = None
        self._parquet: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        """Append ``table``, cut into row groups (record batches) of at most ``rows``."""
        while True:
            if self._ipc is None and self._parquet is None:
                self._open()
            room = table.num_rows if self._file_rows is None else self._file_rows - self._held
            piece, table = table.slice(0, room), table.slice(room)
            if self._ipc is not None:
                self._ipc.write_table(piece, max_chunksize=self._rows)
            elif self._parquet is not None:
                self._parquet.write_table(piece, row_group_size=self._rows)
            self._held += piece.num_rows
            if self._file_rows is not None and self._held >= self._file_rows:
                self.close()
            if table.num_rows == 0:
                return

    def close(self) -> None:
        """Finish the open file (its footer), if any."""
        if self._ipc is not None:
            self._ipc.close()
        elif self._parquet is not None:
            self._parquet.close()
        self._ipc = self._parquet = None

    def _open(self) -> None:
        path = self._name(len(self.files))
        if path.suffix == STAGED:
            options = ipc.IpcWriteOptions(compression=self._compression)
            self._ipc = ipc.new_file(str(path), self._schema, options=options)
        else:
            self._parquet = pq.ParquetWriter(
                str(path),
                self._schema,
                compression=self._compression,
                write_statistics=self._statistics,
                # Readers that verify them (pyarrow, cbrq check) catch a flipped bit.
                write_page_checksum=True,
            )
        self.files.append(path)
        self._held = 0


def _winners(
    sources: list[tuple[Path, int]],
    keys: list[str],
    order: list[str],
    spill: Path,
    rival: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
    fingerprint: bool = False,
) -> tuple[list[Mask], int]:
    """Which rows of each source win their dedup key; and how many rows win.

    Only narrow columns are read, a block at a time. Beyond
    :data:`DEDUP_ROWS` rows they are first split by a hash of the keys into
    partition files under ``spill`` (every copy of a key lands in the same
    one), and each partition is deduplicated on its own, one after the other.
    ``rival``, if given, takes each partition's winners (keys, ``order``
    and their place) and returns those that also beat the stored rows.
    ``fingerprint``: each row also carries :data:`FP`, a hash of its record
    text (history stores compare it with the stored versions').
    """
    heights = [_scan(path).select(pl.len()).collect().item() for path, _ in sources]
    passes = max(1, -(-sum(heights) // DEDUP_ROWS))
    narrow = list(dict.fromkeys([*keys, *order]))
    numbered = (
        block.with_columns(
            pl.int_range(start, start + block.height, dtype=pl.Int64).alias(_IDX),
            pl.lit(i, pl.Int32).alias(_SRC),
        )
        for i, (path, _) in enumerate(sources)
        for start, block in _numbered_blocks(path, narrow, fingerprint)
    )
    if passes == 1:
        blocks = list(numbered)
        partitions: Iterator[pl.DataFrame] = iter([pl.concat(blocks)] if blocks else [])
    else:
        partitions = _partitions(numbered, keys, passes, spill)
    masks = [np.zeros(height, dtype=np.bool_) for height in heights]
    kept = 0
    for every in partitions:
        interrupts.check()  # SIGINT/SIGTERM stop between partitions (engine.interrupts)
        winners = newest(every, keys, order)
        if rival is not None:
            winners = rival(winners)
        winners = winners.select(_SRC, _IDX)
        kept += winners.height
        for (src,), frame in winners.partition_by(_SRC, as_dict=True).items():
            masks[int(src)][frame[_IDX].to_numpy()] = True
    return masks, kept


def _numbered_blocks(
    path: Path, columns: list[str], fingerprint: bool = False
) -> Iterator[tuple[int, pl.DataFrame]]:
    """:func:`_blocks` of ``path`` with the index of each block's first row.

    ``fingerprint``: with :data:`FP` (a hash of ``_payload``) in place of the payload.
    """
    start = 0
    wanted = [*columns, PAYLOAD] if fingerprint else columns
    for block in _blocks(path, wanted, KEY_ROWS * 4):
        if fingerprint:
            block = block.with_columns(pl.col(PAYLOAD).hash().alias(FP)).drop(PAYLOAD)
        yield start, block
        start += block.height


def _partitions(
    blocks: Iterator[pl.DataFrame], keys: list[str], passes: int, spill: Path
) -> Iterator[pl.DataFrame]:
    """``blocks`` split by a hash of ``keys`` into ``passes`` frames, one at a time."""
    spill.mkdir(parents=True, exist_ok=True)
    files = [spill / f"dedup-{bucket:04d}{STAGED}" for bucket in range(passes)]
    writers: dict[int, _Writer] = {}
    try:
        for block in blocks:
            split = block.with_columns((pl.struct(keys).hash() % passes).alias(_BUCKET))
            for (bucket,), part in split.partition_by(
                _BUCKET, as_dict=True, include_key=False
            ).items():
                table = part.to_arrow()
                if bucket not in writers:
                    writers[bucket] = _Writer(
                        _one(files[bucket]), table.schema, "lz4", False, KEY_ROWS, None
                    )
                writers[bucket].write(table)
    finally:
        for writer in writers.values():
            writer.close()
    for bucket, file in enumerate(files):
        if bucket in writers:
            with pa.OSFile(str(file), "r") as handle:
                frame = pl.from_arrow(ipc.open_file(handle).read_all())
            assert isinstance(frame, pl.DataFrame)
            file.unlink()
            yield frame


def _order(
    sources: list[tuple[Path, int]], masks: Sequence[Mask | None] | None, sort: list[str]
) -> Iterator[pl.DataFrame]:
    """(source, index) pairs of the kept rows, in output order, a block at a time.

    A k-way merge over narrow key blocks: each round takes, from every
    source, the rows up to the smallest last key any source holds, so at
    least one block is used up per round and every row taken is final.
    """
    cursors = [
        _KeyCursor(path, i, None if masks is None else masks[i], sort)
        for i, (path, _) in enumerate(sources)
    ]
    active = [cursor for cursor in cursors if cursor.fill()]
    while active:
        bound = min(cursor.last for cursor in active)
        pieces = [cursor.pop_through(bound) for cursor in active]
        active = [cursor for cursor in active if cursor.fill()]
        block = pl.concat([piece for piece in pieces if piece.height])
        yield block.sort(sort, nulls_last=True, maintain_order=True).select(_SRC, _IDX)


def _chunks(order: Iterator[pl.DataFrame], n_rows: int | None) -> Iterator[pl.DataFrame]:
    """``order`` cut into chunks of :data:`MERGE_ROWS` rows (the last may be shorter)."""
    held: list[pl.DataFrame] = []
    count = 0
    left = n_rows
    for block in order:
        if left is not None:
            block = block.head(left)
            left -= block.height
        held.append(block)
        count += block.height
        while count >= MERGE_ROWS:
            joined = pl.concat(held)
            yield joined.head(MERGE_ROWS)
            held = [joined.slice(MERGE_ROWS)]
            count -= MERGE_ROWS
        if left == 0:
            break
    if count:
        yield pl.concat(held)


def _gather(
    sources: list[tuple[Path, int]],
    order: Iterator[pl.DataFrame],
    with_columns: list[str] | None,
    predicate: pl.Expr | None,
    n_rows: int | None,
    batch_size: int | None,
) -> Iterator[pl.DataFrame]:
    """Whole records at the (source, index) pairs of ``order``, in that order, a chunk at a time.

    ``sources`` are files sorted like the output, each with the rows it
    reads at a time (its row group size), so each is read front to back, once.
    """
    cursors = [_Cursor(path, rows) for path, rows in sources]
    for chunk in _chunks(order, n_rows):
        interrupts.check()  # SIGINT/SIGTERM stop between chunks (engine.interrupts)
        source = chunk[_SRC].to_numpy()
        index = chunk[_IDX].to_numpy()
        take = np.empty(chunk.height, dtype=np.int64)
        pieces: list[pl.DataFrame] = []
        held = 0
        for src in np.unique(source):
            mine = source == src
            wanted = np.unique(index[mine])
            # Only the kept rows are held: a sparse mask (a snapshot keeping 1 % of what
            # it staged) reads its sources through, one block at a time.
            pieces.append(cursors[int(src)].take(wanted))
            take[mine] = held + np.searchsorted(wanted, index[mine])
            held += pieces[-1].height
        # One chunk first: gathering list columns across chunks is slow.
        frame = pl.concat(pieces).rechunk()[take]
        if predicate is not None:
            frame = frame.filter(predicate)
        yield frame if with_columns is None else frame.select(with_columns)
    for cursor in cursors:
        cursor.finish()


_Key = tuple[tuple[Any, ...], ...]


def _key(row: tuple[Any, ...]) -> _Key:
    """A sort key Python compares like the files are sorted (nulls last)."""
    return tuple((1,) if value is None else (0, value) for value in row)


#: The first and the last sort key of a sorted run.
Bounds = tuple[_Key, _Key]


def run_bounds(frame: pl.DataFrame, sort: list[str]) -> Bounds:
    """The first and last key of ``frame``, sorted by ``sort`` (nulls last), for :func:`chain`.

    Example: ``run_bounds(frame.sort(["created_at", "id"]), ["created_at", "id"])``.
    """
    keys = frame.select(pl.col(name).to_physical() for name in sort)
    return _key(keys.row(0)), _key(keys.row(-1))


def chain(bounds: Sequence[Bounds]) -> list[int] | None:
    """The order in which runs of these (first, last) keys make one sorted run, or ``None``.

    They do when, ordered by first key, each run's last key is below the next
    one's first: their key ranges do not overlap (nor touch, so that no key
    has copies in two runs).

    Example: ``chain([(_key((5,)), _key((9,))), (_key((1,)), _key((4,)))])`` -> ``[1, 0]``.
    """
    order = sorted(range(len(bounds)), key=lambda i: bounds[i][0])
    for before, after in itertools.pairwise(order):
        if not bounds[before][1] < bounds[after][0]:
            return None
    return order


def _at_most(sort: list[str], bound: _Key) -> pl.Expr:
    """True where a row's key (``sort`` columns, nulls last) is at most ``bound``."""
    expr: pl.Expr | None = None
    for name, part in reversed(list(zip(sort, bound, strict=True))):
        column = pl.col(name).to_physical()
        if part[0]:
            below, equal = column.is_not_null(), column.is_null()
        else:
            below = (column < part[1]).fill_null(False)
            equal = (column == part[1]).fill_null(False)
        expr = below | equal if expr is None else below | (equal & expr)
    assert expr is not None
    return expr


class _KeyCursor:
    """Reads the sort keys of one sorted source, :data:`KEY_ROWS` at a time, kept rows only."""

    def __init__(self, path: Path, src: int, mask: Mask | None, sort: list[str]) -> None:
        self._blocks = _blocks(path, sort, KEY_ROWS)
        self._src = src
        self._mask = mask
        self._sort = sort
        self._read = 0
        self._buffer = pl.DataFrame()
        self.last: _Key = ()

    def fill(self) -> bool:
        """Make sure some rows are held; ``False`` once the source is used up."""
        while self._buffer.height == 0:
            block = next(self._blocks, None)
            if block is None:
                return False
            start, self._read = self._read, self._read + block.height
            block = block.with_columns(
                pl.int_range(start, self._read, dtype=pl.Int64).alias(_IDX),
                pl.lit(self._src, pl.Int32).alias(_SRC),
            )
            if self._mask is not None:
                block = block.filter(pl.Series(self._mask[start : self._read]))
            self._buffer = block
        last = self._buffer.select(pl.col(name).to_physical() for name in self._sort).row(-1)
        self.last = _key(last)
        return True

    def pop_through(self, bound: _Key) -> pl.DataFrame:
        """The held rows whose key is at most ``bound`` (a prefix: the source is sorted)."""
        if self.last <= bound:
            count = self._buffer.height
        else:
            count = self._buffer.select(_at_most(self._sort, bound).sum()).item()
        piece = self._buffer.head(count)
        self._buffer = self._buffer.slice(count)
        return piece


def _scan(path: Path) -> pl.LazyFrame:
    """A lazy frame of a source: a staged Arrow IPC part or run, or a Parquet file."""
    if path.suffix == STAGED:
        return pl.scan_ipc(path, glob=False)  # a name, not a pattern (a store may be 'x*')
    return pl.scan_parquet(path, glob=False)


def _blocks(path: Path, columns: list[str] | None, rows: int) -> Iterator[pl.DataFrame]:
    """A source front to back (only ``columns`` if given), about ``rows`` rows at a time."""
    if path.suffix != STAGED:
        source = _scan(path)
        if columns is not None:
            source = source.select(columns)
        read = 0
        while (block := source.slice(read, rows).collect()).height:
            read += block.height
            yield block
        return
    with pa.OSFile(str(path), "r") as handle:
        reader = ipc.open_file(handle)
        if columns is not None:
            fields = [reader.schema.get_field_index(name) for name in columns]
            options = ipc.IpcReadOptions(included_fields=fields)
            reader = ipc.open_file(handle, options=options)
        batches: list[pa.RecordBatch] = []
        held = 0
        for i in range(reader.num_record_batches):
            batch = reader.get_batch(i)
            batches.append(batch)
            held += batch.num_rows
            if held >= rows or i == reader.num_record_batches - 1:
                frame = pl.from_arrow(pa.Table.from_batches(batches, reader.schema))
                assert isinstance(frame, pl.DataFrame)
                yield frame if columns is None else frame.select(columns)
                batches, held = [], 0


class _Cursor:
    """Reads one sorted source front to back, ``rows`` at a time, holding only what is ahead."""

    def __init__(self, path: Path, rows: int) -> None:
        self._path = path
        self._blocks = _blocks(path, None, rows)
        self._rows = rows
        self._buffer: pl.DataFrame | None = None  # the block read last
        self._start = 0  # index in the source of the buffer's first row

    def take(self, wanted: npt.NDArray[np.int64]) -> pl.DataFrame:
        """The rows at ``wanted`` (sorted, unique); later calls never ask for earlier rows.

        Holds one block of the source besides the rows taken.
        """
        high = int(wanted[-1])
        out: list[pl.DataFrame] = []
        while True:
            if self._buffer is not None:
                end = self._start + self._buffer.height
                inside = wanted[(wanted >= self._start) & (wanted < end)]
                if inside.size:
                    out.append(self._buffer[inside - self._start])
                if high < end:
                    break
                self._start, self._buffer = end, None
            piece = next(self._blocks, None)
            if piece is None:
                raise StoreError(f"{self._path}: ends at row {self._start}, before row {high}")
            self._buffer = piece
        return pl.concat(out)

    def finish(self) -> None:
        """Drop what is held."""
        self._buffer = None


def _remove_stale(root: Path, keep: Manifest, found: Survey | None = None) -> None:
    """Remove the generation directories cbrq wrote that ``keep`` accounts for and does not use.

    That is: superseded generations, and leftovers of writes that never
    committed (:func:`engine.store.integrity.survey`). A directory holding a file
    cbrq does not write, or a committed generation newer than ``keep``, is
    never removed. A directory a reader still holds
    (:class:`~engine.store.manifest.Lease`) stays until a later commit finds it free.
    """
    found = found if found is not None else survey(root, keep)
    for name in found.removable:
        _remove_unread(root / name)
    (root / f"{MANIFEST}.tmp").unlink(missing_ok=True)


def _remove_unread(directory: Path) -> None:
    """Remove ``directory`` unless a reader holds its lease file."""
    try:
        fd = os.open(directory / READERS, os.O_RDONLY)
    except FileNotFoundError:
        shutil.rmtree(directory, ignore_errors=True)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # in use: a later commit removes it
    else:
        shutil.rmtree(directory, ignore_errors=True)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to the disk."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_tree(path: Path) -> None:
    for child in path.rglob("*"):
        if child.is_file():
            fd = os.open(child, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
