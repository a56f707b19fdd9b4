"""The store walked through time once: which version of each backup is present at each instant.

SPEC §6 defines presence at T from the ingests taken at or before T. Asking
:func:`engine.store.history.present` once per instant reads every sighting
again each time (30 daily snapshots of 1M backups: 30 passes over up to 30M
sightings). A :class:`Walk` reads each ingest's sightings once, in time order
(``taken_at``, then ingest number), and keeps per backup the few numbers the
rule needs, as flat arrays updated a whole ingest at a time:

- ``best``: its version so far (newest ``updated_at``, then the later ingest
  that saw it, then the later row: :func:`engine.store.history.present`'s order);
- ``last``: the time-order position of the newest ingest that saw it;
- per project and per vault: the position of the newest snapshot covering it.

The backup is present at T when it was seen and no covering snapshot is newer
than its newest sighting (``last >= P``): "P saw it, or an ingest after P
did". Coverage is judged on the version at T, as SPEC §6 says. The answer at
each instant asked is one array over backups (the physical row of the
present version, or -1), so that callers count with array operations.

Example::

    walk = Walk.read(root, manifest)
    for shown in walk.states([t1, t2]):
        print((shown >= 0).sum())  # backups present at t1, then at t2
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.store.history import NO_PROJECT, ingests, sightings
from engine.store.layout import REF
from engine.store.manifest import Manifest
from engine.store.read import dead_key, scan_physical

Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]
#: The backup columns the trend reads of every stored row (every version).
COLUMNS: Final[tuple[str, ...]] = (
    "id",
    "status",
    "image_type",
    "resource_id",
    "resource_size",
    "created_at",
)


@dataclass
class Walk:
    """Every stored backup row (every version), and the ingests to replay in time order.

    ``rows``: :data:`COLUMNS` of each physical row, in store order (row ``i`` is
    ``_rid`` ``i``); ``code``: the backup (a number per id) of each row.

    Example: ``Walk.read(root, manifest).rows.height`` -> stored rows, versions included.
    """

    root: Path
    manifest: Manifest
    rows: pl.DataFrame
    code: Ints
    codes: int
    _rank: Ints
    _project: Ints
    _vault: Ints
    _projects: dict[str, int]
    _vaults: dict[str, int]
    _refs: Ints
    _order: Ints

    @classmethod
    def read(cls, root: Path, manifest: Manifest) -> Walk:
        """The stored rows of ``root``, numbered for the walk.

        Example: ``Walk.read(root, read_manifest(root))``.
        """
        frame = (
            scan_physical(root, "backups", manifest)
            .select(
                *COLUMNS,
                pl.col("project_id").fill_null(NO_PROJECT).alias("_project"),
                "vault_id",
                pl.col("updated_at").rank("dense").fill_null(0).cast(pl.Int64).alias("_rank"),
                dead_key().alias(REF),
            )
            .with_columns(
                (pl.col("id").rank("dense").cast(pl.Int64) - 1).alias("_code"),
                (pl.col("_project").rank("dense").cast(pl.Int64) - 1).alias("_p"),
                (pl.col("vault_id").rank("dense").cast(pl.Int64) - 1).fill_null(-1).alias("_v"),
            )
            .collect()
        )
        refs = frame[REF].to_numpy()
        order = np.argsort(refs, kind="stable").astype(np.int64)
        return cls(
            root=root,
            manifest=manifest,
            rows=frame.select(*COLUMNS),
            code=frame["_code"].to_numpy().astype(np.int64),
            codes=frame["_code"].n_unique() if frame.height else 0,
            _rank=frame["_rank"].to_numpy().astype(np.int64),
            _project=frame["_p"].to_numpy().astype(np.int64),
            _vault=frame["_v"].to_numpy().astype(np.int64),
            _projects=_numbering(frame, "_project", "_p"),
            _vaults=_numbering(frame.drop_nulls("vault_id"), "vault_id", "_v"),
            _refs=refs[order],
            _order=order,
        )

    def states(self, instants: Sequence[datetime]) -> Iterator[Ints]:
        """Per instant (ascending), per backup: the row of its version present then, else -1.

        Example: ``[int((s >= 0).sum()) for s in walk.states(ends)]`` -> backups per instant.
        """
        made = ingests(self.manifest).sort("order_time", "n")
        state = _State.empty(self.codes, len(self.code), len(self._projects), len(self._vaults))
        times = made["order_time"].to_list()
        done = 0
        for instant in instants:
            while done < len(times) and times[done] <= instant:
                self._replay(state, made.row(done, named=True), done)
                done += 1
            yield self._shown(state)

    def _replay(self, state: _State, ingest: dict[str, Any], position: int) -> None:
        """Take one ingest (the next in time order) into ``state``."""
        seen = self._seen(int(ingest["n"]))
        if seen.size:
            state.see(seen, self.code[seen], self._rank, int(ingest["n"]), position)
        if ingest["snapshot"]:
            if ingest["scope"] == "vault":
                covered = [self._vaults[v] for v in ingest["vaults"] if v in self._vaults]
                state.vault_head[covered] = position
            else:
                covered = [self._projects[p] for p in ingest["projects"] if p in self._projects]
                state.project_head[covered] = position

    def _seen(self, number: int) -> Ints:
        """The rows ingest ``number`` saw (from its sightings), as row numbers."""
        refs = sightings(self.root, self.manifest, [number]).collect()[REF].to_numpy()
        return self._order[_matched(self._refs, refs.astype(np.int64))]

    def _shown(self, state: _State) -> Ints:
        """Per backup: the row of its present version, or -1 (SPEC §6 presence)."""
        best = state.best
        row = np.maximum(best, 0)
        project_head = state.project_head[self._project[row]]
        vault_head = np.append(state.vault_head, -1)[self._vault[row]]
        head = np.maximum(project_head, vault_head)
        present = (best >= 0) & (state.last >= head)
        return np.where(present, best, -1)


def _matched(sorted_refs: Ints, refs: Ints) -> Ints:
    """Positions in ``sorted_refs`` of each of ``refs`` found there (the rest dropped)."""
    where = np.searchsorted(sorted_refs, refs).astype(np.int64)
    inside = where < sorted_refs.size
    where, refs = where[inside], refs[inside]
    found: Ints = where[sorted_refs[where] == refs]
    return found


def _numbering(frame: pl.DataFrame, name: str, number: str) -> dict[str, int]:
    """Each distinct value of column ``name`` and its number (column ``number``)."""
    pairs = frame.select(name, number).unique()
    return dict(zip(pairs[name].to_list(), pairs[number].to_list(), strict=True))


@dataclass
class _State:
    """What the walk keeps between ingests (see the module docstring)."""

    best: Ints
    last: Ints
    seen_by: Ints
    project_head: Ints
    vault_head: Ints

    @classmethod
    def empty(cls, codes: int, rows: int, projects: int, vaults: int) -> _State:
        def none(size: int) -> Ints:
            return np.full(size, -1, dtype=np.int64)

        return cls(none(codes), none(codes), none(rows), none(projects), none(vaults))

    def see(self, rows: Ints, codes: Ints, rank: Ints, number: int, position: int) -> None:
        """Ingest ``number`` (time-order ``position``) saw ``rows`` of backups ``codes``."""
        self.seen_by[rows] = np.maximum(self.seen_by[rows], number)
        self.last[codes] = position  # ingests come in time order: the newest so far
        if np.bincount(codes).max() > 1:  # one backup twice in one ingest: its best row only
            order = np.lexsort((rows, self.seen_by[rows], rank[rows], codes))
            rows, codes = rows[order], codes[order]
            final = np.append(codes[1:] != codes[:-1], True)
            rows, codes = rows[final], codes[final]
        current = self.best[codes]
        better = (current < 0) | _newer(rows, np.maximum(current, 0), rank, self.seen_by)
        self.best[codes[better]] = rows[better]


def _newer(a: Ints, b: Ints, rank: Ints, seen_by: Ints) -> Flags:
    """Whether row ``a`` is a newer version than row ``b``: ``updated_at``, ingest, row."""
    ra, rb, na, nb = rank[a], rank[b], seen_by[a], seen_by[b]
    later: Flags = (ra > rb) | ((ra == rb) & ((na > nb) | ((na == nb) & (a > b))))
    return later
