"""The store's tables as they are read: files, live rows, decode failures named, DuckDB's view.

Given a commit (:class:`engine.store.manifest.Manifest`), this module says
which Parquet files hold each table (:func:`table_files`, :func:`dead_file`),
scans them (:func:`scan_physical`: every stored row; :func:`scan`: the live
rows, less the ``(_seq, _row)`` pairs of the table's dead file), checks what
it reads against the commit (:func:`require_files`: sizes; :func:`verify_read`:
checksums), names the damaged file when a decoder fails (:func:`decoding`, which
asks :mod:`engine.store.integrity` where), and writes the same live-row rule as
one DuckDB query for readers without cbrq (:func:`duckdb_sql`). Names and order
come from :mod:`engine.store.layout`. Imports neither pyarrow nor numpy.

Example::

    from engine.store.read import scan
    scan(Path("cbrq-store"), "backups").filter(pl.col("status") == "error").collect()
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import polars as pl

from engine.errors import StoreError, engine_failure_message, is_engine_failure
from engine.store.layout import MANIFEST, POS, ROW, SEQ
from engine.store.manifest import Manifest, damaged, read_manifest


def table_files(root: Path, manifest: Manifest, kind: str) -> list[Path]:
    """Every Parquet file of ``kind``, in physical order (none before an ingest).

    Superseded rows are still in them; :func:`scan` leaves them out.

    Example: ``table_files(root, read_manifest(root), "vaults")``.
    """
    return [root / name for name in manifest.tables.get(kind, [])]


def dead_file(root: Path, manifest: Manifest, kind: str) -> Path | None:
    """The Parquet file of superseded ``(_seq, _row)`` pairs of ``kind``, if any.

    Example: ``dead_file(root, read_manifest(root), "backups")``.
    """
    name = manifest.dead.get(kind)
    return None if name is None else root / name


def scan_physical(root: Path, kind: str, manifest: Manifest | None = None) -> pl.LazyFrame:
    """Every stored row of ``kind``, superseded ones included, in physical order.

    Row ``i`` of this frame is row ``i`` counted across :func:`table_files`
    (what :func:`engine.backends.base.fetch` reads by). Use :func:`scan` for data.

    Example: ``scan_physical(root, "backups").select(pl.len()).collect()``.
    """
    manifest = manifest if manifest is not None else read_manifest(root)
    files = table_files(root, manifest, kind)
    if not files:
        from engine.store.schema import empty_frame  # pyarrow: only for a store without the table

        return empty_frame(kind).lazy()
    require_files(root, manifest, manifest.tables.get(kind, []))
    return pl.scan_parquet(files, glob=False)  # names, not patterns (a store may be 'x*')


def require_files(root: Path, manifest: Manifest, names: list[str]) -> None:
    """Each of ``names`` exists, of the size the manifest recorded (one ``stat`` each).

    A truncated or missing file is caught before it is read; a bit flip is
    caught by ``cbrq check`` (checksums) or by the decoder (:func:`decoding`).

    Example: ``require_files(root, m, m.tables["backups"])``.
    """
    for name in names:
        path = root / name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise damaged(root, name, f"missing; listed in {root / MANIFEST}") from None
        except OSError as err:
            raise damaged(root, name, f"cannot be read: {err.strerror or err}") from err
        recorded = manifest.checksums.get(name)
        if recorded is not None and recorded.size != size:
            raise damaged(root, name, f"{size:,} bytes, the commit wrote {recorded.size:,}")


def verify_read(root: Path, manifest: Manifest, kind: str) -> None:
    """Check the recorded SHA-256 of every file of ``kind`` (and its dead file).

    For a reader that reads the whole table anyway (``cbrq export``):
    hashing costs a fraction of decoding. A query reads a few row groups and
    checks only sizes (:func:`require_files`).

    Example: ``verify_read(root, read_manifest(root), "backups")``.
    """
    from engine.store.integrity import file_sha256

    names = [
        *manifest.tables.get(kind, []),
        *([manifest.dead[kind]] if kind in manifest.dead else []),
    ]
    require_files(root, manifest, names)
    for name in names:
        recorded = manifest.checksums.get(name)
        if recorded is not None and file_sha256(root / name) != recorded.sha256:
            raise damaged(root, name, "checksum mismatch: not the bytes its commit wrote")


def is_read_failure(err: BaseException) -> bool:
    """Whether ``err`` is a decoder's or the filesystem's failure (not cbrq's own error).

    Example: ``is_read_failure(pl.exceptions.ComputeError("zstd error"))`` -> ``True``.
    """
    if isinstance(err, StoreError) or not isinstance(err, Exception):
        return False
    if isinstance(err, OSError):
        return not isinstance(err, BrokenPipeError)
    return is_engine_failure(err)


@contextlib.contextmanager
def decoding(root: Path | None, manifest: Manifest, *, filesystem: bool = True) -> Iterator[None]:
    """Turn a failure to read the store's files into a :class:`StoreError` naming the file.

    On such a failure (only then) the files of ``manifest`` are looked at
    (:func:`engine.store.integrity.locate`: sizes, footers, checksums) to name the
    damaged one; a failure no file explains is reported with the decoder's words.
    ``filesystem=False`` (writers): ``OSError`` passes through (a full disk
    is not a damaged store).

    Example::

        with decoding(root, manifest):
            frame = scan(root, "backups", manifest).collect()
    """
    try:
        yield
    except Exception as err:
        if (
            root is None
            or not is_read_failure(err)
            or (isinstance(err, OSError) and not filesystem)
        ):
            raise
        from engine.store.integrity import locate

        found = locate(root, manifest)
        if found is not None:
            raise damaged(root, found[0], found[1]) from err
        raise StoreError(engine_failure_message(err, str(root))) from err


def live(
    frame: pl.LazyFrame,
    root: Path,
    manifest: Manifest,
    kind: str,
    position: str,
    *,
    latest: bool = False,
) -> pl.LazyFrame:
    """``frame`` less the superseded rows; ``position`` numbers its rows in physical order.

    The dead file lists each superseded row's physical position (``_pos``)
    next to its ``(_seq, _row)``, so the filter needs no column but the row
    number (reading ``_seq`` and ``_row`` cost a count at 1M a third more).
    Keeps the order of ``frame``. ``latest``: less the rows of the manifest's
    away file instead (a history store's latest view, SPEC §6).

    Example: ``live(scan_physical(root, k).with_row_index("at"), root, m, k, "at")``.
    """
    listing = manifest.away if latest else manifest.dead
    name = listing.get(kind)
    if name is None:
        return frame
    dead = root / name
    require_files(root, manifest, [name])
    with decoding(root, manifest):
        positions = pl.read_parquet(dead, columns=[POS], glob=False)[POS]
    at = pl.col(position).cast(pl.Int64)
    return frame.filter(~at.is_in(positions.implode()))


def dead_key() -> pl.Expr:
    """One Int64 per stored row, unique in the store: ``_seq`` and ``_row`` packed.

    Example: ``frame.select(dead_key())``.
    """
    return (pl.col(SEQ).cast(pl.Int64) * (1 << 32) + pl.col(ROW).cast(pl.Int64)).alias("_key")


def scan(root: Path, kind: str, manifest: Manifest | None = None) -> pl.LazyFrame:
    """A lazy frame of one inventory table's live rows (empty if the store has none).

    One row per record key (backup id); superseded copies are left out.

    Example: ``scan(Path("cbrq-store"), "backups").select("id").collect()``.
    """
    manifest = manifest if manifest is not None else read_manifest(root)
    rows = scan_physical(root, kind, manifest)
    if kind not in manifest.dead:
        return rows
    counted = rows.with_row_index("_cbrq_position")
    return live(counted, root, manifest, kind, "_cbrq_position").drop("_cbrq_position")


def duckdb_sql(root: Path, manifest: Manifest, kind: str = "backups") -> str:
    """A DuckDB query of the live rows of ``kind``, for use without cbrq.

    Paths are as ``root`` is given (absolute if it is). Example::

        duckdb.sql(f"SELECT status, count(*) FROM ({duckdb_sql(root, m)}) GROUP BY 1")
    """
    files = table_files(root, manifest, kind)
    if not files:
        return "SELECT NULL AS id WHERE false"
    dead = dead_file(root, manifest, kind)
    listed = ", ".join(_sql_file(path) for path in files)
    superseded = None if dead is None else _sql_file(dead)
    # DuckDB takes key=value folders for Hive partitions: a store under status=prod/
    # would get every backup's status replaced by "prod". Said only where needed, so an
    # ordinary path's SQL stays as it was.
    hive = ", hive_partitioning = false" if "=" in f"{listed}{superseded}" else ""
    body = f"SELECT * FROM read_parquet([{listed}]{hive})"
    if superseded is None:
        return body
    return (
        f"SELECT t.* FROM read_parquet([{listed}]{hive}) AS t "
        f"ANTI JOIN read_parquet({superseded}{hive}) AS dead USING (_seq, _row)"
    )


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


#: What DuckDB's file functions take for pattern syntax: ``*``, ``?`` and ``[``
#: start a pattern; ``]``, ``{``, ``}`` are escaped with them so that no
#: reading of a bracket or a brace can widen the match.
_DUCKDB_PATTERN: Final = frozenset("*?[]{}")


def duckdb_file(path: Path) -> str | None:
    """``path`` as DuckDB must be given it to read that one file, or None if it cannot be.

    DuckDB expands ``*``, ``?`` and ``[...]`` in file names, so a store at
    ``x*`` would read the sibling store ``xy`` too; inside brackets each of
    those characters matches only itself. A leading ``~`` means the home
    folder to DuckDB, so such a path is made absolute. A path with a glob
    character and a backslash cannot be named (DuckDB's pattern matching
    splits names at backslashes): None. An ordinary path is returned as is.

    Example: ``duckdb_file(Path("x*/g000001/backups-00000.parquet"))`` ->
    ``"x[*]/g000001/backups-00000.parquet"``.
    """
    text = str(path)
    if text.startswith("~"):
        text = str(path.absolute())
    if not _DUCKDB_PATTERN.intersection(text):
        return text
    if "\\" in text:
        return None
    return "".join(f"[{c}]" if c in _DUCKDB_PATTERN else c for c in text)


def _sql_file(path: Path) -> str:
    """``path`` as a DuckDB string naming exactly that file (see :func:`duckdb_file`)."""
    name = duckdb_file(path)
    if name is None:
        raise StoreError(
            f"{path}: DuckDB cannot name this file (its path holds a glob character and a "
            "backslash); rename the store's folder, or read it with cbrq (any --engine)"
        )
    return _sql_string(name)
