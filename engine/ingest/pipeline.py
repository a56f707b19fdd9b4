"""Phase 2 to 3: batch by batch into the store (or into memory).

Ties the ingest phases together: :mod:`engine.ingest.sources` reads each
file and :mod:`engine.ingest.forms` splits it, :mod:`engine.ingest.normalize`
types a batch of records column-wise in a worker thread while the next batch
is read, and each typed
batch is staged in a new store generation (:mod:`engine.store.write`), which
is committed all or nothing. :func:`load_dumps` runs the same reading into
memory instead. The documented path of these names is :mod:`engine.api`.

Example::

    from engine.ingest.pipeline import ingest
    summary = ingest(["sample_data"], store="cbrq-store")
    print(summary.backups_new, "new backups")
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import gc
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

import polars as pl

from engine import interrupts
from engine.errors import BadFiles, IncompleteExport, InputError
from engine.ingest.forms import Chunk, split_source
from engine.ingest.normalize import Normalized, Rejected, normalize
from engine.ingest.snapshot import NARROW, Page, Seen, collapsed, page_problems, record, seen
from engine.ingest.snapshot import taken_at as taken
from engine.ingest.sources import SourceRef, expand_paths, read_source
from engine.spec import DEDUP_KEYS, RECORD_KINDS
from engine.store.manifest import IngestRecord, Manifest, read_manifest, resolve_store
from engine.store.read import decoding, scan
from engine.store.schema import PAYLOAD, ROW, SEQ, empty_frame
from engine.store.write import (
    Appended,
    Bounds,
    Generation,
    abandon,
    chain,
    newest,
    ordering,
    run_bounds,
    writer_lock,
)

#: Input bytes gathered before one normalize pass: big enough for Arrow's
#: threads and few staged parts (the final merge holds a little of each),
#: small enough that two batches in flight stay well inside memory.
BATCH_BYTES: Final[int] = 64 << 20
#: Batches normalized at once (each in its own thread).
WORKERS: Final[int] = 2
#: The hash of a record's text among an ingest's narrow rows.
FP: Final[str] = "_fp"


@dataclass(frozen=True)
class Tick:
    """Progress of an ingest: its phase, files and bytes done out of the totals, records read.

    ``phase`` is ``reading`` while files are read (bytes count up), then
    ``typing records`` while the last batches are normalized, ``writing
    backups`` (``vaults``, ``members``: each table that changes) and
    ``committing``; after reading, the byte counts stay at their totals.

    Example: ``ingest(paths, progress=lambda t: print(t.phase, t.files_done, t.files_total))``.
    """

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    records: int
    phase: str = "reading"


@dataclass
class IngestSummary:
    """What one ingest did, as the CLI reports it.

    Example: ``ingest(["dumps"]).backups_new``.
    """

    files: int = 0
    skipped: list[str] = field(default_factory=list)
    records: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RECORD_KINDS, 0))
    backups_new: int = 0
    #: Stored copies superseded by this ingest's records (changed ones, and in a store
    #: without history also those re-written with the same text).
    backups_replaced: int = 0
    backups_duplicate: int = 0
    totals: dict[str, int] = field(default_factory=dict)
    unknown_keys: set[str] = field(default_factory=set)
    quarantined: int = 0
    quarantine_file: str | None = None
    elapsed: float = 0.0
    bytes_read: int = 0
    segments_merged: int = 0
    #: SPEC §6: when the export was taken (``""``: unknown), whether it was declared a
    #: snapshot, whether its pages formed a complete export (``None``: no pages) and why
    #: not, and the records found unchanged (same id and text as the stored copy; history
    #: stores do not write them again).
    taken_at: str = ""
    snapshot: bool = False
    complete: bool | None = None
    why: str = ""
    backups_unchanged: int = 0
    #: Records that took over a stored copy of their id with other content: new, changed,
    #: unchanged and duplicate add up to the backups read.
    backups_changed: int = 0
    #: Each unknown key kept as its path from the record (``("fail_code", "Code")``).
    unknown_paths: set[tuple[str, ...]] = field(default_factory=set)


ProgressFn = Callable[[Tick], None]


def ingest(
    paths: Sequence[str],
    store: str | os.PathLike[str] | None = None,
    *,
    lenient: bool = False,
    progress: ProgressFn | None = None,
    snapshot: bool = False,
    taken_at: datetime | None = None,
    scope: str = "project",
) -> IngestSummary:
    """Ingest dump files into the inventory at ``store``, all or nothing.

    Strict (default): the first bad file or record raises an
    :class:`~engine.errors.InputError` and the inventory stays exactly as it
    was. ``lenient``: bad records (and unreadable files) go to the
    quarantine file with their reason; the rest lands.

    SPEC §6: ``snapshot`` declares the call one full export of ``scope``
    (``project`` or ``vault``), taken at ``taken_at`` (default: the newest
    ``updated_at`` of its backups); its pages must pass the completeness check
    (:class:`~engine.errors.IncompleteExport` otherwise, the store unchanged),
    every file is read even if ingested before, and from then on the store
    keeps history (:mod:`engine.store.history`).

    Example::

        summary = ingest(["sample_data"], store="/tmp/inv")
        assert summary.totals["backups"] > 0
    """
    started = time.perf_counter()
    root = resolve_store(store)
    refs = expand_paths(paths)
    committed = False
    with writer_lock(root), _no_cyclic_gc():
        previous = read_manifest(root)
        generation = Generation(root, previous)
        try:
            # A store that keeps history records what every ingest saw, files seen before too.
            again = snapshot or previous.keeps_history
            read = _read(refs, generation, previous, lenient, progress, again)
            interrupts.check()
            call = _call(read, previous, snapshot, taken_at, scope)
            if previous.generation and not read.entries and not read.rejected:
                # Every file was ingested before: the inventory stays as it is, and
                # rewriting the same tables would cost as much as the first ingest.
                generation.abandon()
                read.summary.totals = {k: previous.counts.get(k, 0) for k in RECORD_KINDS}
                read.summary.quarantine_file = previous.quarantine
            else:
                _finish(generation, previous, read, progress, call)
                committed = True
        except BaseException:
            abandon(generation)
            raise
    # A signal that came during the commit is acted on now that it is done.
    interrupts.check(committed=committed)
    read.summary.elapsed = time.perf_counter() - started
    return read.summary


@dataclass(frozen=True)
class Loaded:
    """Dump files parsed into memory: one typed frame per record kind, and what was read.

    Each frame is in the store's schema, one row per record key (SPEC's
    dedup rule), backups sorted by ``created_at`` then ``id``.

    Example: ``load_dumps(["sample_data"]).frames["backups"].height``.
    """

    frames: dict[str, pl.DataFrame]
    summary: IngestSummary


def load_dumps(paths: Sequence[str], *, lenient: bool = False) -> Loaded:
    """Parse dump files straight into memory, as one ingest would store them; nothing is written.

    For one-shot questions (``cbrq query --from``, ``Inventory.from_dumps``):
    the same reading, checks, dedup and order as :func:`ingest`, without
    the cost of a store. ``lenient`` leaves bad records out (counted in
    ``summary.quarantined``) instead of raising.

    Example: ``load_dumps(["sample_data"]).summary.totals["backups"]``.
    """
    started = time.perf_counter()
    memory = _Memory()
    with _no_cyclic_gc():
        read = _read(expand_paths(paths), memory, Manifest(), lenient, None)
    frames = {kind: memory.table(kind, read.small.get(kind, [])) for kind in RECORD_KINDS}
    summary = read.summary
    summary.files = len(read.entries)
    summary.totals = {kind: frame.height for kind, frame in frames.items()}
    summary.backups_new = summary.totals["backups"]
    summary.backups_duplicate = summary.records["backups"] - summary.backups_new
    summary.quarantined = len(read.rejected)
    summary.elapsed = time.perf_counter() - started
    return Loaded(frames, summary)


class _Memory:
    """Where :func:`load_dumps` keeps typed batches: per kind, each sorted, with its bounds."""

    def __init__(self) -> None:
        self._parts: dict[str, list[tuple[pl.DataFrame, Bounds]]] = {k: [] for k in RECORD_KINDS}

    def write_part(self, kind: str, frame: pl.DataFrame, sort: list[str]) -> None:
        """Keep a batch of typed records, sorted (cheap: ~16 ms for 36k backups)."""
        if frame.height:
            frame = frame.sort(sort, nulls_last=True)
            self._parts[kind].append((frame, run_bounds(frame, sort)))

    def table(self, kind: str, more: list[pl.DataFrame]) -> pl.DataFrame:
        """The batches of ``kind`` as one table: a row per key, the newest by the dedup order.

        The winners are picked and ordered on narrow columns; whole records
        are gathered once, or not at all when every record wins and the
        sorted batches follow one another without overlapping (an export
        paged newest first): then they are the table, put end to end.
        """
        held = self._parts[kind]
        parts = [*(frame for frame, _ in held), *more]
        if not parts:
            return empty_frame(kind)
        sort, order = ordering(kind)
        keys = list(DEDUP_KEYS[kind])
        narrow = list(dict.fromkeys([*keys, *order, *sort]))
        numbered = pl.concat([part.select(narrow) for part in parts]).with_row_index("_cbrq_at")
        winners = newest(numbered, keys, order)
        runs = None if more else chain([bounds for _, bounds in held])
        if runs is not None and winners.height == numbered.height:
            return pl.concat([parts[i] for i in runs], rechunk=True)
        # One chunk first: gathering nested columns across chunks is slow
        # (12 s against 1 s at 200k backups, measured 2026-12-01).
        frame = pl.concat(parts, rechunk=True) if len(parts) > 1 else parts[0]
        return frame[winners.sort(sort, nulls_last=True)["_cbrq_at"]]


class _Sink(Protocol):
    def write_part(self, kind: str, frame: pl.DataFrame, sort: list[str]) -> None: ...


@dataclass
class _Read:
    """What reading the input gave: the summary so far, new file entries, set-aside records."""

    summary: IngestSummary
    entries: list[dict[str, Any]]
    rejected: list[Rejected]
    small: dict[str, list[pl.DataFrame]]
    files_seen: int = 0
    #: The responses with a ``count`` read, and the narrow rows of every backup (SPEC §6).
    pages: list[Page] = field(default_factory=list)
    narrow: list[pl.DataFrame] = field(default_factory=list)


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cycle collector: ingest makes millions of small objects and
    no cycles, and each collection would hold the GIL the worker thread needs."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read(
    refs: list[SourceRef],
    sink: _Sink,
    previous: Manifest,
    lenient: bool,
    progress: ProgressFn | None,
    again: bool = False,
) -> _Read:
    """Read, split and normalize every file; backups go to ``sink`` a batch at a time.

    ``again``: files ingested before are read again (a store that keeps history
    records what each ingest saw).
    """
    reader = _Reader(refs, sink, previous, lenient, progress, again)
    try:
        for ref in refs:
            interrupts.check()  # between files: nothing is held
            reader.add(ref)
        reader.drain()
    except KeyboardInterrupt:
        reader.pipeline.stop()  # no waiting for the batches being typed: they write nothing now
        raise
    finally:
        reader.pipeline.close()
    if not lenient and reader.rejected:
        _refuse(reader.rejected, refs)
    reader.summary.files = len(reader.entries)
    return _Read(
        reader.summary,
        reader.entries,
        reader.rejected,
        reader.small,
        len(refs),
        reader.pages,
        reader.narrow,
    )


def _refuse(rejected: list[Rejected], refs: list[SourceRef]) -> None:
    """Raise the first problem of each bad file, in input order: one file's own error, or
    :class:`~engine.errors.BadFiles` naming them all."""
    order = {ref.label: n for n, ref in enumerate(refs)}
    first: dict[str, InputError] = {}
    for problem in rejected:
        error = problem.error or InputError(problem.location, problem.reason)
        first.setdefault(problem.location.source, error)
    errors = sorted(first.values(), key=lambda e: order.get(e.location.source, len(order)))
    if len(errors) == 1:
        raise errors[0]
    raise BadFiles(errors)


class _Reader:
    """One read's state: what was read so far, the batch being gathered, the pipeline.

    Files are read and split one at a time (:meth:`add`); their chunks are
    gathered until :data:`BATCH_BYTES` of input, then handed to the pipeline
    as one batch, typed column-wise there.
    """

    def __init__(
        self,
        refs: list[SourceRef],
        sink: _Sink,
        previous: Manifest,
        lenient: bool,
        progress: ProgressFn | None,
        again: bool = False,
    ) -> None:
        self.summary = IngestSummary()
        self.entries: list[dict[str, Any]] = []
        self.rejected: list[Rejected] = []
        self.small: dict[str, list[pl.DataFrame]] = {"vaults": [], "members": []}
        self.pages: list[Page] = []
        self.narrow: list[pl.DataFrame] = []
        self._known: set[str] = set() if again else set(previous.hashes)
        self._base_seq = 1 + max((int(f["seq"]) for f in previous.files), default=-1)
        self._lenient = lenient
        self._progress = progress
        self._unreadable: list[Rejected] = []
        self._files_total = len(refs)
        self._bytes_total = sum(_size(ref) for ref in refs)
        self._batch: list[tuple[int, Chunk]] = []
        self._batch_bytes = 0
        self._done_files = 0
        # Only an ingest into a store with backups and without history compares texts.
        fingerprint = bool(previous.tables.get("backups")) and not again
        self.pipeline = _Pipeline(sink, lenient, fingerprint)

    def add(self, ref: SourceRef) -> None:
        """Read and split one file into the batch; hand the batch on once it is big enough."""
        try:
            source = read_source(ref)
            chunks = split_source(source) if source.sha256 not in self._known else None
        except InputError as err:
            # Strict too: every bad file is named at once (:func:`_refuse`).
            self._unreadable.append(Rejected(err.location, err.reason, error=err))
            self._done_files += 1
            return
        self._done_files += 1
        self.summary.bytes_read += source.size
        if chunks is None:
            self.summary.skipped.append(ref.label)
            return
        self._known.add(source.sha256)
        seq = self._base_seq + len(self.entries)
        self.entries.append(_entry(source.label, source.sha256, seq, chunks))
        self.pages += [
            Page(c.kind, seq, c.first_row, len(c.records), c.count)
            for c in chunks
            if c.count is not None
        ]
        self._batch.extend((seq, c) for c in chunks)
        self._batch_bytes += len(source.data)
        if self._batch_bytes >= BATCH_BYTES:
            self._flush()
        self._tick(self._in_batch())

    def drain(self) -> None:
        """Hand on the last batch and take in the results of every batch in flight."""
        in_batch = self._in_batch()
        self._flush()
        self._tick(in_batch, "typing records")
        for kind, result in self.pipeline.wait():
            _absorb(result, kind, self.summary, self.rejected, self.small, self.narrow)

    def _in_batch(self) -> int:
        return sum(len(c.records) for _, c in self._batch)

    def _tick(self, in_batch: int, phase: str = "reading") -> None:
        # Records read: those of batches handed on (summed once absorbed) and this one's.
        if self._progress is not None:
            records = sum(self.summary.records.values()) + in_batch
            done, total = self._done_files, self._files_total
            bytes_done, bytes_total = self.summary.bytes_read, self._bytes_total
            self._progress(Tick(done, total, bytes_done, bytes_total, records, phase))

    def _flush(self) -> None:
        # Records set aside keep input order: the previous batch's, then this
        # batch's unreadable files, then (later) this batch's records.
        for kind, result in self.pipeline.submit(self._batch):
            _absorb(result, kind, self.summary, self.rejected, self.small, self.narrow)
        self.rejected.extend(self._unreadable)
        self._batch, self._batch_bytes, self._unreadable = [], 0, []


class _Pipeline:
    """Normalizes batches in :data:`WORKERS` threads while the main thread reads the next.

    Splitting is native and releases the GIL (:mod:`engine._native`), as do
    Arrow's reader and most of polars; one normalize worker left a core idle
    much of the time (1.45 cores busy on average at 1M, when splitting held
    the GIL), so two batches are in flight at once. Results come back in
    batch order.
    """

    def __init__(self, sink: _Sink, lenient: bool, fingerprint: bool = True) -> None:
        self._sink = sink
        self._lenient = lenient
        self._fingerprint = fingerprint  # whether the narrow rows carry the text's hash
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="cbrq-normalize")
        self._pending: collections.deque[Future[list[tuple[str, Normalized]]]] = collections.deque()
        # Workers write parts only while not stopped; stop() waits for the writes
        # under way, so nothing lands in a generation once it is being removed.
        self._gate = threading.Condition()
        self._writing = 0
        self._stopped = False

    def submit(self, batch: list[tuple[int, Chunk]]) -> list[tuple[str, Normalized]]:
        """Start on ``batch``; the results of the oldest batch if too many are in flight."""
        done: list[tuple[str, Normalized]] = []
        if len(self._pending) >= WORKERS:
            done = interrupts.interruptible_result(self._pending.popleft())
        self._pending.append(self._pool.submit(self._normalize, batch))
        return done

    def wait(self) -> list[tuple[str, Normalized]]:
        """The results of every batch in flight, in order (raising the first error)."""
        results: list[tuple[str, Normalized]] = []
        while self._pending:
            done: list[tuple[str, Normalized]]
            done = interrupts.interruptible_result(self._pending.popleft())
            results.extend(done)
        return results

    def close(self) -> None:
        """Let the batches in flight finish (their errors are dropped) and stop the workers."""
        if self._stopped:
            return
        while self._pending:
            with contextlib.suppress(Exception):
                self._pending.popleft().result()
        self._pool.shutdown()

    def stop(self) -> None:
        """Stop at once: no batch in flight writes a part from now on, none is waited for.

        Only the writes already under way are waited for (a part, well under
        a second); the typing in progress runs on in its thread and is thrown away.
        """
        with self._gate:
            self._stopped = True
            self._gate.wait_for(lambda: self._writing == 0)
        self._pending.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _normalize(self, batch: list[tuple[int, Chunk]]) -> list[tuple[str, Normalized]]:
        results: list[tuple[str, Normalized]] = []
        for kind in RECORD_KINDS:
            mine = [p for p in batch if p[1].kind == kind]
            result = normalize(kind, mine, lenient=self._lenient, each_file=not self._lenient)
            if kind == "backups":
                with self._gate:
                    if self._stopped:
                        return []
                    self._writing += 1
                try:
                    self._sink.write_part(kind, result.frame, ordering(kind)[0])
                finally:
                    with self._gate:
                        self._writing -= 1
                        self._gate.notify_all()
                # The records are written: only their narrow rows wait for the main
                # thread (a batch's typed frame is ~100 MB, two can be waiting).
                result.frame = result.frame.select(_narrow(self._fingerprint))
            results.append((kind, result))
        return results


def _size(ref: SourceRef) -> int:
    try:
        return 0 if ref.path is None else ref.path.stat().st_size
    except OSError:
        return 0


def _entry(label: str, sha256: str, seq: int, chunks: list[Chunk]) -> dict[str, Any]:
    counts = dict.fromkeys(RECORD_KINDS, 0)
    for chunk in chunks:
        counts[chunk.kind] += len(chunk.records)
    return {
        "source": label,
        "sha256": sha256,
        "seq": seq,
        "records": counts,
        "ingested_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _absorb(
    result: Normalized,
    kind: str,
    summary: IngestSummary,
    rejected: list[Rejected],
    small: dict[str, list[pl.DataFrame]],
    narrow: list[pl.DataFrame],
) -> None:
    """Count a batch's ``result`` of ``kind`` in; a backups result holds its narrow rows."""
    summary.records[kind] += result.frame.height
    summary.unknown_keys |= result.unknown_keys
    summary.unknown_paths |= result.unknown_paths
    rejected.extend(result.rejected)
    if kind != "backups" and result.frame.height:
        small[kind].append(result.frame)
    elif kind == "backups" and result.frame.height:
        narrow.append(result.frame)  # already narrowed by the worker that wrote it


@dataclass(frozen=True)
class _Call:
    """This ingest call as SPEC §6 sees it: declared or not, when, its rows, its pages' verdict."""

    snapshot: bool
    scope: str
    when: str
    seen: Seen
    problems: list[str]
    paged: bool
    vault_projects: tuple[str, ...] = ()


def _call(
    read: _Read, previous: Manifest, snapshot: bool, given: datetime | None, scope: str
) -> _Call:
    """Check the call's pages; a snapshot that fails the check raises IncompleteExport."""
    rows = _rows(read)
    problems = page_problems(rows, read.pages, "backups")
    vaults = [f.select(*_narrow()[:2], *NARROW[-2:]) for f in read.small["vaults"]]
    vault_projects: tuple[str, ...] = ()
    if vaults:
        listed = pl.concat(vaults)
        problems += page_problems(listed, read.pages, "vaults")
        vault_projects = tuple(
            listed["project_id"].cast(pl.String).drop_nulls().unique().sort().to_list()
        )
    problems = collapsed(problems)
    if snapshot and problems:
        raise IncompleteExport(problems)
    summary = read.summary
    summary.snapshot, summary.taken_at = snapshot, taken(given, rows, previous)
    paged = any(page.kind in ("backups", "vaults") for page in read.pages)
    summary.complete = (not problems) if paged else None
    summary.why = "; ".join(problems)
    return _Call(snapshot, scope, summary.taken_at, seen(rows), problems, paged, vault_projects)


def _rows(read: _Read) -> pl.DataFrame:
    """The narrow rows of every backup the call read (its batches' chunks, not copied)."""
    return pl.concat(read.narrow) if read.narrow else pl.DataFrame(schema=_NARROW_SCHEMA)


def _narrow(fingerprint: bool = True) -> list[pl.Expr]:
    """What an ingest keeps of each backup for SPEC §6 (about 32 bytes, not the record).

    ``id`` as a 64-bit hash (the completeness check counts distinct ids; two
    ids of one call sharing a hash is a chance of about 1 in 10^7 at ten
    million backups), projects and vaults as categoricals, the file and row
    as 32-bit numbers. ``fingerprint``: also a hash of the record's text, which
    only an ingest into a store with backups and without history compares.
    """
    return [
        pl.col("id").hash().alias("id"),
        pl.col("project_id").cast(pl.Categorical),
        pl.col("vault_id").cast(pl.Categorical),
        pl.col("updated_at"),
        pl.col(NARROW[-2]).cast(pl.Int32),
        pl.col(NARROW[-1]).cast(pl.Int32),
        *([pl.col(PAYLOAD).hash().alias(FP)] if fingerprint else []),
    ]


#: The narrow rows of an ingest without backups.
_NARROW_SCHEMA: Final = pl.Schema(
    {
        "id": pl.UInt64(),
        "project_id": pl.Categorical(),
        "vault_id": pl.Categorical(),
        "updated_at": pl.Datetime("us", "UTC"),
        "_seq": pl.Int32(),
        "_row": pl.Int32(),
        FP: pl.UInt64(),
    }
)


def _finish(
    generation: Generation,
    previous: Manifest,
    read: _Read,
    progress: ProgressFn | None,
    call: _Call,
) -> None:
    summary, rejected = read.summary, read.rejected
    generation.history = previous.keeps_history or call.snapshot

    def phase(name: str) -> None:
        interrupts.check()  # between phases
        if progress is not None:
            done, records = read.files_seen, sum(summary.records.values())
            progress(Tick(done, done, summary.bytes_read, summary.bytes_read, records, name))

    sightings: str | None = None
    if generation.history and not generation.has_parts("backups"):
        sightings = generation.write_sightings(pl.Series([], dtype=pl.Int64))
    listings: dict[str, str] | None = {} if generation.history else None
    for kind, frames in read.small.items():
        for frame in frames:
            generation.write_part(kind, frame, ordering(kind)[0])
        if listings is not None and any(frame.height for frame in frames):
            listings[kind] = generation.write_listing(kind, frames)
    for kind in RECORD_KINDS:
        sort, order = ordering(kind)
        if previous.tables.get(kind) and not generation.has_parts(kind):
            summary.totals[kind] = previous.counts.get(kind, 0)  # nothing new: files stay
            continue
        phase(f"writing {kind}")
        if kind == "backups":
            # Before the append: a store without history re-writes a record of the same text.
            same = 0 if generation.history else _same_text(generation.root, previous, _rows(read))
            # The narrow rows are not needed past this point: at ten million
            # backups they are ~500 MB, which the append can use instead.
            read.narrow.clear()
            done = generation.append(kind, sort, order)
            _count_backups(summary, done, same)
            if done.seen is not None:
                sightings = generation.write_sightings(done.seen)
        else:
            summary.totals[kind] = generation.write_table(kind, sort, order)
    phase("committing")
    quarantine = _write_quarantine(generation, previous, rejected)
    summary.quarantined = len(rejected)
    summary.quarantine_file = quarantine
    # The last point to stop with the inventory unchanged; the commit itself is never cut.
    interrupts.check()
    files = [*previous.files, *read.entries]
    made = dataclasses.replace(_record(previous, read, call, sightings), listings=listings)
    ingests = (*previous.ingests, made)
    if generation.history:
        ingests = generation.fold_sightings(ingests, quarantine)
    generation.commit(generation.manifest(summary.totals, files, quarantine, ingests))


def _count_backups(summary: IngestSummary, done: Appended, same: int) -> None:
    """The backups counts of ``summary`` from what the append did.

    ``same``: records of a store without history that superseded a stored copy of
    the same text (counted unchanged, not changed, though the store wrote them).
    """
    summary.totals["backups"] = done.live
    summary.backups_new = done.added - done.displaced
    summary.backups_replaced = done.displaced
    summary.backups_changed = done.displaced - same
    summary.backups_unchanged = done.unchanged + same
    summary.backups_duplicate = summary.records["backups"] - done.added - done.unchanged
    summary.segments_merged = done.merged


def _same_text(root: Path, previous: Manifest, rows: pl.DataFrame) -> int:
    """How many of this ingest's winning records meet a live stored copy of the same text.

    ``rows``: the narrow rows of the call (hashed ids, ``_fp`` the text's hash). Only
    the winners whose stored copy has the same ``updated_at`` can be the same text,
    so the stored text is hashed for those alone; a winner beats such a copy (a tie
    goes to the later file), so each is one of the stored copies the append displaces.
    """
    if not previous.tables.get("backups") or rows.height == 0:
        return 0
    winners = newest(rows.select("id", "updated_at", SEQ, ROW, FP), ["id"], ordering("backups")[1])
    stored = scan(root, "backups", previous).select(
        pl.col("id").hash().alias("id"), "updated_at", pl.col(PAYLOAD).alias("_text")
    )
    with decoding(root, previous, filesystem=False):
        same_time = (
            stored.select("id", "updated_at")
            .filter(pl.col("id").is_in(winners["id"].implode()))
            .collect()
            .join(winners.select("id", "updated_at"), on=["id", "updated_at"], nulls_equal=True)
        )
        texts = (
            stored.filter(pl.col("id").is_in(same_time["id"].implode()))
            .select("id", pl.col("_text").hash().alias(FP))
            .collect()
        )
    return winners.join(texts, on=["id", FP], how="semi").height


def _record(previous: Manifest, read: _Read, call: _Call, sightings: str | None) -> IngestRecord:
    """This call's entry in the manifest's ``ingests`` (SPEC §6)."""
    seqs = [int(entry["seq"]) for entry in read.entries]
    made = record(
        previous,
        when=call.when,
        snapshot=call.snapshot,
        scope=call.scope,
        seen=call.seen,
        seqs=(min(seqs), max(seqs)) if seqs else (0, -1),
        problems=call.problems,
        paged=call.paged,
        sightings=sightings,
    )
    return dataclasses.replace(made, vault_projects=call.vault_projects)


def _write_quarantine(
    generation: Generation, previous: Manifest, rejected: list[Rejected]
) -> str | None:
    old = ""
    if previous.quarantine:
        old = (generation.root / previous.quarantine).read_text("utf-8")
    if not rejected and not old:
        return None
    lines = [
        json.dumps(
            {
                "source": r.location.source,
                "where": r.location.where,
                "reason": r.reason,
                "record": None if r.record is None else r.record.decode("utf-8", "replace"),
            },
            ensure_ascii=False,
        )
        for r in rejected
    ]
    return generation.write_text("quarantine.ndjson", old + "".join(f"{ln}\n" for ln in lines))
