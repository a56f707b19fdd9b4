"""The inventory on disk as it is read: where the store is, its manifest, its tables.

Layout of a store directory (default ``./cbrq-store``, or ``$CBRQ_STORE``)::

    manifest.json                   the current generation: its tables and files
    g000003/backups-00000.parquet   typed columns + _payload/_seq/_row, sorted by
    g000003/backups-00001.parquet     created_at then id, FILE_ROWS rows per file
    g000003/vaults-00000.parquet
    g000003/members-00000.parquet
    g000003/quarantine.ndjson       records set aside by --lenient (all runs so far)

The files are plain Parquet: DuckDB, Spark or pyarrow read them without cbrq
(``manifest.json`` lists the current ones of each table, in order; the glob
``g000003/backups-*.parquet`` reads the same rows). :mod:`engine.store`
writes them. This module imports neither pyarrow nor numpy, so a query or a
count in a fresh process does not pay for them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import polars as pl

from engine.errors import StoreError

#: Columns every table carries besides its typed fields (:mod:`engine.schema`).
PAYLOAD: Final[str] = "_payload"
SEQ: Final[str] = "_seq"
ROW: Final[str] = "_row"
INTERNAL_COLUMNS: Final[tuple[str, ...]] = (PAYLOAD, SEQ, ROW)

STORE_ENV: Final[str] = "CBRQ_STORE"
DEFAULT_STORE: Final[str] = "cbrq-store"
MANIFEST: Final[str] = "manifest.json"
FORMAT: Final[str] = "cbrq-inventory"
#: Version 2 lists several files per table; version 1 (one file) is still read.
VERSION: Final[int] = 2
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


def resolve_store(path: str | os.PathLike[str] | None) -> Path:
    """The store directory: ``path`` if given, else ``$CBRQ_STORE``, else ``./cbrq-store``.

    Example: ``resolve_store(None)`` -> ``Path("cbrq-store")``.
    """
    if path is not None:
        return Path(path)
    return Path(os.environ.get(STORE_ENV) or DEFAULT_STORE)


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` says: the current generation, its tables and ingested files.

    Example: ``read_manifest(Path("cbrq-store")).tables["backups"]`` -> the
    store-relative Parquet files of the table, in order.
    """

    generation: int = 0
    tables: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    quarantine: str | None = None
    updated_at: str = ""

    def to_json(self) -> dict[str, Any]:
        """The manifest as the JSON object written to disk."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "generation": self.generation,
            "updated_at": self.updated_at,
            "tables": self.tables,
            "counts": self.counts,
            "quarantine": self.quarantine,
            "files": self.files,
        }

    @property
    def hashes(self) -> set[str]:
        """Content hashes of every file already ingested."""
        return {entry["sha256"] for entry in self.files}


def read_manifest(root: Path) -> Manifest:
    """Read the manifest of ``root``; an empty one if the store does not exist yet.

    Example: ``read_manifest(Path("cbrq-store")).generation``.
    """
    path = root / MANIFEST
    if not path.exists():
        return Manifest()
    try:
        raw = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as err:
        raise StoreError(f"{path}: unreadable manifest ({err})") from err
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise StoreError(f"{path}: not a cbrq inventory manifest")
    if raw.get("version") not in (1, VERSION):
        raise StoreError(f"{path}: inventory version {raw.get('version')}, expected {VERSION}")
    return Manifest(
        generation=int(raw["generation"]),
        tables={kind: _file_names(path, kind, files) for kind, files in raw["tables"].items()},
        counts=dict(raw.get("counts", {})),
        files=list(raw["files"]),
        quarantine=raw.get("quarantine"),
        updated_at=str(raw.get("updated_at", "")),
    )


def _file_names(path: Path, kind: str, value: Any) -> list[str]:
    """A table's files as the manifest lists them: one name (version 1) or a list."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise StoreError(
            f"{path}: tables.{kind} is {json.dumps(value)}; "
            "allowed: a file name, or a list of file names"
        )
    return names


def require_manifest(root: Path) -> Manifest:
    """The manifest of an existing inventory; :class:`StoreError` if there is none.

    Example: ``require_manifest(Path("cbrq-store")).counts["backups"]``.
    """
    if not (root / MANIFEST).exists():
        raise StoreError(f"{root}: no inventory here (run `cbrq ingest PATH --store {root}`)")
    return read_manifest(root)


def table_files(root: Path, manifest: Manifest, kind: str) -> list[Path]:
    """The Parquet files of ``kind`` in the current generation, in order (none before an ingest).

    Example: ``table_files(root, read_manifest(root), "vaults")``.
    """
    return [root / name for name in manifest.tables.get(kind, [])]


def scan(root: Path, kind: str, manifest: Manifest | None = None) -> pl.LazyFrame:
    """A lazy frame of one inventory table (empty if the store has none).

    Example: ``scan(Path("cbrq-store"), "backups").select("id").collect()``.
    """
    manifest = manifest if manifest is not None else read_manifest(root)
    files = table_files(root, manifest, kind)
    if not files:
        from engine.schema import empty_frame  # pyarrow: only for a store without the table

        return empty_frame(kind).lazy()
    for path in files:
        if not path.exists():
            raise StoreError(f"{path}: listed in {root / MANIFEST} but missing")
    return pl.scan_parquet(files)
