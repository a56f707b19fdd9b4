"""The store's tables as they are read: files, live rows, decode failures named, DuckDB's view.

Given a commit (:class:`engine.store.manifest.Manifest`), this module says
which Parquet files hold each table (:func:`table_files`, :func:`dead_file`),
scans them (:func:`scan_physical`: every stored row; :func:`scan`: the live
rows, less the ``(_seq, _row)`` pairs of the table's dead file), checks what
it reads against the commit (:func:`require_files`: sizes; :func:`verify_read`:
checksums), names the damaged file when a decoder fails (:func:`decoding`, which
asks :mod:`engine.store.integrity` where), reads chosen rows by position from the
row groups that hold them (:func:`fetch`, and :func:`fetch_batches` for an answer
written as it is read), and writes the same live-row rule as one DuckDB query for
readers without cbrq (:func:`duckdb_sql`). Names and order come from
:mod:`engine.store.layout`. Imports neither pyarrow nor numpy.

Example::

    from engine.store.read import scan
    scan(Path("cbrq-store"), "backups").filter(pl.col("status") == "error").collect()
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import polars as pl

from engine.errors import StoreError, engine_failure_message, is_engine_failure
from engine.store.layout import MANIFEST, POS, ROW, ROW_GROUP_ROWS, SEQ
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
    (what :func:`fetch` reads by). Use :func:`scan` for data.

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


# --- rows by position -------------------------------------------------------------------

#: The row number a fetched row had in its file (dropped before the rows are returned).
_AT: Final[str] = "_cbrq_at"
#: Files of a table a row group number can tell apart: ``file * _FILE_SPAN + group``.
_FILE_SPAN: Final[int] = 1 << 32
_HEIGHTS: dict[tuple[Path, float], int] = {}


def _heights(paths: Sequence[Path]) -> list[int]:
    """Row counts of Parquet files (from their footers, read once per file version)."""
    heights = []
    for path in paths:
        key = (path, path.stat().st_mtime)
        if key not in _HEIGHTS:
            _HEIGHTS[key] = int(pl.scan_parquet(path, glob=False).select(pl.len()).collect().item())
        heights.append(_HEIGHTS[key])
    return heights


def fetch(
    paths: Sequence[Path], rids: pl.Series, columns: Sequence[str] | None = None
) -> pl.DataFrame:
    """Records (all columns, or ``columns``) of rows ``rids`` of a table, in that order.

    ``paths`` are the table's Parquet files in order, and ``rids`` number
    its rows across them. Only the row groups that hold the rows are read
    (:data:`~engine.store.layout.ROW_GROUP_ROWS` rows each, as the store
    writes them), each once, in one polars query; see :func:`fetch_batches`.

    Example: ``fetch([path], pl.Series([5, 2]))["id"]``.
    """
    if not paths or rids.len() == 0:
        return _empty(columns)
    return _gather(paths, _located(paths, rids), columns)


def fetch_batches(
    paths: Sequence[Path],
    rids: pl.Series,
    columns: Sequence[str] | None = None,
    *,
    rows: int,
) -> Iterator[pl.DataFrame]:
    """:func:`fetch` of ``rids`` in that order, about ``rows`` at a time (one empty frame if none).

    A batch ends where the answer leaves a row group, so that an answer in
    (or against) the store's order reads each row group once; the first batch
    is the answer's first run of rows in one row group, so that its writing
    starts after one group is read. Memory: one batch and its row groups.

    Example: ``sum(b.height for b in fetch_batches([path], pl.Series([9, 1, 4]), rows=2))``.
    """
    if not paths or rids.len() == 0:
        yield _empty(columns)
        return
    located = _located(paths, rids)
    bounds = _cuts(located["group"], rows)
    for start, stop in itertools.pairwise(bounds):
        yield _gather(paths, located.slice(start, stop - start), columns)


def _empty(columns: Sequence[str] | None) -> pl.DataFrame:
    from engine.store.schema import empty_frame  # pyarrow: only for an empty answer

    empty = empty_frame("backups")
    return empty if columns is None else empty.select(columns)


def _located(paths: Sequence[Path], rids: pl.Series) -> pl.DataFrame:
    """Where each of ``rids`` lies: ``file`` (index into ``paths``), ``local`` row, ``group``.

    ``group`` numbers row groups across files (``file * 2**32 + local // ROW_GROUP_ROWS``).
    Example: ``_located([a, b], pl.Series([0, 3000]))["file"].to_list()`` -> ``[0, 1]`` for
    a 2,048-row ``a``.
    """
    at = pl.col("rid")
    if len(paths) == 1:  # most stores: every row in one file
        file, local = pl.lit(0, pl.Int64), at
    else:
        heights = pl.Series(_heights(paths), dtype=pl.Int64)
        starts = pl.concat([pl.Series([0], dtype=pl.Int64), heights.cum_sum()])
        file = pl.lit(starts).search_sorted(at, side="right").cast(pl.Int64) - 1
        local = at - pl.lit(starts).gather(file)
    return pl.DataFrame({"rid": rids.cast(pl.Int64)}).select(
        file=file, local=local, group=file * _FILE_SPAN + local // ROW_GROUP_ROWS
    )


def _cuts(groups: pl.Series, rows: int) -> list[int]:
    """Where the batches of an answer whose rows lie in ``groups`` start, and its end.

    A batch starts after the first row, then after about each ``rows``, where
    the answer's row group changes.

    Example: ``_cuts(pl.Series([7, 7, 7, 6, 6, 5]), 2)`` -> ``[0, 3, 5, 6]``.
    """
    changes = groups.ne_missing(groups.shift(1))
    starts = changes.arg_true()  # where a run of rows in one row group begins
    targets = pl.Series([1, *range(rows, groups.len(), rows)], dtype=starts.dtype)
    found = starts.search_sorted(targets, side="left")
    cuts = starts.gather(found.filter(found < starts.len())).unique().sort()
    return [0, *cuts.filter(cuts > 0).to_list(), groups.len()]


def _gather(
    paths: Sequence[Path], wanted: pl.DataFrame, columns: Sequence[str] | None
) -> pl.DataFrame:
    """The rows ``wanted`` (from :func:`_located`), in its order, read from their row groups.

    Each run of neighbouring row groups is one slice of its file's scan,
    filtered to the wanted rows (polars decodes the groups once and keeps
    those rows); the rows come in file order and are put in ``wanted``'s.
    """
    pieces = []
    for (file,), rows in wanted.sort("file", "local").partition_by("file", as_dict=True).items():
        scan = pl.scan_parquet(paths[int(file)], glob=False)  # names, not patterns
        kept = pl.col(_AT).cast(pl.Int64).is_in(rows["local"].implode())
        for low, high in _runs(rows["local"]):
            piece = scan.slice(low, high - low).with_row_index(_AT, offset=low).filter(kept)
            pieces.append(piece if columns is None else piece.select(columns))
    found = pl.concat(pieces).collect().rechunk()
    found = found.drop(_AT) if _AT in found.columns else found
    key = pl.col("file") * _FILE_SPAN + pl.col("local")
    order = wanted.select(key.rank("ordinal").cast(pl.Int64) - 1).to_series()
    if bool((order == pl.int_range(order.len(), eager=True)).all()):
        return found  # already in file order
    return found[order]


def _runs(local: pl.Series) -> list[tuple[int, int]]:
    """Row ranges ``[low, high)`` of a file covering the row groups that hold ``local`` rows.

    Neighbouring row groups make one range. ``local`` is sorted.
    Example: ``_runs(pl.Series([5, 2050, 9000]))`` -> ``[(0, 4096), (8192, 10240)]``.
    """
    group = (local // ROW_GROUP_ROWS).unique(maintain_order=True)
    run = (group.diff().fill_null(1) != 1).cum_sum()
    spans = (
        pl.DataFrame({"group": group, "run": run})
        .group_by("run", maintain_order=True)
        .agg(
            low=pl.col("group").first() * ROW_GROUP_ROWS,
            high=(pl.col("group").last() + 1) * ROW_GROUP_ROWS,
        )
    )
    return list(zip(spans["low"].to_list(), spans["high"].to_list(), strict=True))


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
