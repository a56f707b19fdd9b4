"""Phase 3: the store's administration: compact it, describe it, export it.

What ``cbrq compact``, ``cbrq info`` and ``cbrq export`` call: merge a store's
segments under the writer lock (:func:`compact`), read its state from the
manifest and Parquet footers (:func:`store_info`), and give it back as
API-shaped response pages (:func:`export_pages`). Nothing here ingests; the
documented path of these names is :mod:`engine.api`.

Example::

    from engine.store.admin import export_pages, store_info
    print(store_info("cbrq-store")["tables"]["backups"]["live"])
    for page in export_pages("cbrq-store", page_size=1000):
        print(page)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from engine import interrupts
from engine.errors import QueryError
from engine.payload import canonical_payloads
from engine.spec import RECORD_KINDS
from engine.store.history import NO_HISTORY, POSITION, as_of_rows
from engine.store.manifest import Manifest, require_manifest, resolve_store
from engine.store.read import decoding, require_files, scan, scan_physical, verify_read
from engine.store.schema import PAYLOAD
from engine.store.write import (
    MAX_DEAD_SHARE,
    MAX_SEGMENTS,
    Generation,
    abandon,
    fragmented,
    ordering,
    writer_lock,
)


def compact(store: str | os.PathLike[str] | None = None) -> dict[str, int]:
    """Merge every table's segments into one and drop superseded rows; rows per table.

    Ingest merges segments by itself (a bounded number of segments and of
    superseded rows, :mod:`engine.store.write`); this merges all of them at once,
    for a store that is about to be archived or copied. A store that keeps
    history keeps every version, and its ingests' sightings files move into
    the new generation, so no older generation stays on disk for them. Same writer lock and
    crash safety as ingest; the answers to every query stay the same.

    Example: ``compact("cbrq-store")`` -> ``{"backups": 1000, "vaults": 12, "members": 3}``.
    """
    root = resolve_store(store)
    with writer_lock(root, create=False):
        previous = require_manifest(root)
        if not fragmented(previous):
            return {kind: previous.counts.get(kind, 0) for kind in RECORD_KINDS}  # nothing to do
        generation = Generation(root, previous)
        try:
            for kind in fragmented(previous):
                interrupts.check()
                generation.compact(kind, ordering(kind)[0])
            interrupts.check()
            ingests = generation.fold_sightings(previous.ingests, previous.quarantine)
            generation.commit(
                generation.manifest(
                    dict(previous.counts), previous.files, previous.quarantine, ingests
                )
            )
        except BaseException:
            abandon(generation)
            raise
    interrupts.check(committed=True)
    return {kind: previous.counts.get(kind, 0) for kind in RECORD_KINDS}


def store_info(store: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The state of the inventory at ``store``, as ``cbrq info`` prints it.

    Per table: live rows, stored rows (live plus superseded), segments with
    their files and rows, and the file of superseded rows; plus the
    generation, when it was committed, the ingested files (source, time,
    records per kind, content hash, in ingest order) and the quarantine
    (file, records, bytes).
    Reads only the manifest and Parquet footers.

    Example: ``store_info("cbrq-store")["tables"]["backups"]["segments"]``.
    """
    root = resolve_store(store)
    manifest = require_manifest(root)
    require_files(root, manifest, manifest.listed())  # a stat each: a lost file is not "clean"
    tables: dict[str, Any] = {}
    for kind in RECORD_KINDS:
        rows = manifest.segment_rows(kind) or [
            _rows(root, names) for names in manifest.segment_files(kind)
        ]
        segments = [
            {"files": [str(root / n) for n in names], "rows": n, "runs": runs}
            for names, n, runs in zip(
                manifest.segment_files(kind), rows, manifest.segment_runs(kind), strict=True
            )
        ]
        stored = sum(rows)
        dead = manifest.dead.get(kind)
        tables[kind] = {
            "live": manifest.counts.get(kind, 0),
            "stored": stored,
            "superseded": manifest.superseded.get(kind, 0),
            "segments": segments,
            "dead_file": None if dead is None else str(root / dead),
        }
    quarantined = quarantine_bytes = 0
    if manifest.quarantine:
        with open(root / manifest.quarantine, "rb") as handle:
            quarantined = sum(1 for _ in handle)
            quarantine_bytes = handle.tell()
    return {
        "store": str(root),
        "generation": manifest.generation,
        "updated_at": manifest.updated_at,
        "tables": tables,
        "limits": {"segments": MAX_SEGMENTS, "superseded_share": MAX_DEAD_SHARE},
        "ingested_files": len(manifest.files),
        "files": [
            {key: entry.get(key) for key in ("source", "ingested_at", "records", "sha256")}
            for entry in manifest.files
        ],
        "quarantine": None if manifest.quarantine is None else str(root / manifest.quarantine),
        "quarantined": quarantined,
        "quarantine_bytes": quarantine_bytes,
        "history": _history(root, manifest),
    }


def _history(root: Path, manifest: Manifest) -> dict[str, Any]:
    """What SPEC §6 keeps: ingests, snapshots, newest taken_at, versions, sightings, listings."""
    snapshots = [r for r in manifest.ingests if r.snapshot]
    sightings = [r.sightings for r in manifest.ingests if r.sightings]
    listings = [name for r in manifest.ingests for name in (r.listings or {}).values()]
    return {
        "keeps_history": manifest.keeps_history,
        "ingests": len(manifest.ingests),
        "snapshots": len(snapshots),
        "newest_taken_at": max((r.taken_at for r in manifest.ingests if r.taken_at), default=None),
        "versions_kept": manifest.superseded.get("backups", 0) if manifest.keeps_history else 0,
        "sightings_bytes": sum((root / name).stat().st_size for name in sightings),
        "listings_bytes": sum((root / name).stat().st_size for name in listings),
    }


def _rows(root: Path, names: list[str]) -> int:
    if not names:
        return 0
    files = [root / n for n in names]
    return int(pl.scan_parquet(files, glob=False).select(pl.len()).collect().item())


# --- export -------------------------------------------------------------------


def export_pages(
    store: str | os.PathLike[str] | None = None,
    *,
    kind: str = "backups",
    page_size: int | None = None,
    as_of: datetime | None = None,
    ever: bool = False,
) -> Iterator[str]:
    """The inventory as API-shaped response pages of JSON text.

    Backups come in the API's default order (``created_at`` newest first,
    then ``id``); every record exactly as ingested, timestamps put into the
    API's form (:mod:`engine.payload`). ``page_size=None`` gives one page with everything.
    A store fed snapshots gives its backups as of ``as_of`` (default: the
    latest; SPEC §6); ``ever``: every backup ever seen.

    Example::

        for page in export_pages("cbrq-store", page_size=1000):
            print(page)   # {"count":1234,"backups":[...]}
    """
    root = resolve_store(store)
    manifest = require_manifest(root)
    frame = scan(root, kind, manifest)
    if as_of is not None and not manifest.keeps_history:
        raise QueryError([NO_HISTORY])
    if kind == "backups" and not ever and manifest.keeps_history:
        rows = as_of_rows(root, manifest, as_of)
        numbered = scan_physical(root, kind, manifest).with_row_index(POSITION)
        frame = numbered.join(rows, on=POSITION, how="semi").drop(POSITION)
    if kind == "backups":
        frame = frame.sort(["created_at", "id"], descending=[True, False], nulls_last=True)
    with decoding(root, manifest):  # every file is read: a checksum costs little more
        verify_read(root, manifest, kind)
        payloads = frame.select(PAYLOAD).collect()[PAYLOAD]
    total = payloads.len()
    size = page_size or max(total, 1)
    for start in range(0, max(total, 1), size):
        part = canonical_payloads(payloads.slice(start, size))
        body = ",".join(part.to_list())
        yield f'{{"count":{total},"{kind}":[{body}]}}'
