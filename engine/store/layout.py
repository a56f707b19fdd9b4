"""The store's layout: its internal names, its physical order, its dedup order.

The one owner of what a store on disk is called and how its rows lie: the
internal columns every table carries, the generation directories' and the
manifest's names, the row-group and file sizes, and the order rows are stored
in (:data:`STORE_ORDER`) and deduplicated by (:data:`DEDUP_ORDER`). Everything
that assumes one of these reads it here, and :func:`is_store_dir` tells a
store from any other folder. Imports nothing of cbrq.

Example::

    >>> STORE_ORDER
    ('created_at', 'id')
    >>> bool(GENERATION_DIR.fullmatch("g000004"))
    True
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

#: Columns every table carries besides its typed fields (:mod:`engine.store.schema`).
PAYLOAD: Final[str] = "_payload"
SEQ: Final[str] = "_seq"
ROW: Final[str] = "_row"
INTERNAL_COLUMNS: Final[tuple[str, ...]] = (PAYLOAD, SEQ, ROW)
#: In a dead file: the superseded row's position among all stored rows of its
#: table (files in manifest order), next to its ``_seq`` and ``_row``.
POS: Final[str] = "_pos"

#: The name of a generation directory, as cbrq makes them.
GENERATION_DIR: Final = re.compile(r"g[0-9]{6}")
STORE_ENV: Final[str] = "CBRQ_STORE"
DEFAULT_STORE: Final[str] = "cbrq-store"
MANIFEST: Final[str] = "manifest.json"
#: The writer lock's file (one writer at a time: an advisory lock on it).
LOCK: Final[str] = ".lock"
FORMAT: Final[str] = "cbrq-inventory"
#: Version 3 adds segments and superseded rows; versions 1 (one file per
#: table) and 2 (one segment per table) are still read.
VERSION: Final[int] = 3
#: Version 4: a store that keeps history (it has had a snapshot ingest, SPEC §6):
#: superseded rows are kept as versions and each ingest records what it saw.
#: Written only by such stores, so a store without snapshots stays readable by
#: the versions before it.
HISTORY_VERSION: Final[int] = 4
#: Version 5: a segment may be several sorted runs (``runs`` in the manifest: an
#: ingest's batches, each written once as its own sorted file). Written only
#: when some segment is, so that no older reader takes such a segment for one
#: sorted run (its default order would be wrong).
RUNS_VERSION: Final[int] = 5
#: A history store's per-ingest file of the rows it saw (``_ref``: ``_seq`` and
#: ``_row`` packed as ``_seq * 2**32 + _row``), in the ingest's generation.
SIGHTINGS: Final[str] = "sightings.parquet"
REF: Final[str] = "_ref"
#: Small row groups keep whole records cheap to fetch for one result page: a
#: page of 100 backups scattered over 1M (sort by name) reads 100 groups of
#: 2048 rows, not 100 of 16384 (270 ms instead of 1.7 s, measured 2026-11-27).
ROW_GROUP_ROWS: Final[int] = 2_048
#: Rows per Parquet file of a table (512 row groups); a bigger table is
#: several files, each following the one before in sort order. A writer holds
#: the footer of the file it writes: one 10M-row file (4,883 row groups of 107
#: leaf columns) grew pyarrow's writer by ~300 MB, and closing it by ~540 MB
#: more (1.4 GB peak for the merge, measured 2026-11-27).
FILE_ROWS: Final[int] = 512 * ROW_GROUP_ROWS

#: The order a backups table is stored in: ``created_at`` ascending (nulls
#: last), then ``id``. A store of one segment is in this order, which lets the
#: default sort run on the row number (:func:`engine.backends.polars.physical_keys`).
STORE_ORDER: Final[tuple[str, ...]] = ("created_at", "id")
#: Which copy of a backup id wins: the newest ``updated_at``, then the later
#: file (``_seq``), then the later record in it (``_row``).
DEDUP_ORDER: Final[tuple[str, ...]] = ("updated_at", SEQ, ROW)


def is_store_dir(path: Path) -> bool:
    """Whether ``path`` is a cbrq store (a cbrq manifest, or a writer lock and generations).

    Example: ``is_store_dir(Path("cbrq-store"))`` -> ``True`` after an ingest.
    """
    manifest = path / MANIFEST
    if manifest.is_file():
        try:
            with open(manifest, "rb") as handle:
                head = handle.read(4096)
        except OSError:
            return False
        return FORMAT.encode() in head
    return (path / LOCK).is_file() and any(
        GENERATION_DIR.fullmatch(child.name) for child in path.iterdir()
    )
