"""The inventory on disk as it is read: where the store is, its manifest, its tables.

Layout of a store directory (default ``./cbrq-store``, or ``$CBRQ_STORE``)::

    manifest.json                   the commit: each table's segments and files,
                                    the superseded rows, every ingested file
    g000001/backups-00000.parquet   segment 1 of backups (the first ingest):
    g000001/backups-00001.parquet     sorted by created_at then id, FILE_ROWS a file
    g000004/backups-00000.parquet   segment 2 (a later append), sorted the same way
    g000004/backups-dead.parquet    (_seq, _row) of rows that newer copies superseded
    g000004/vaults-00000.parquet    vaults and members: one segment, rewritten when
    g000001/members-00000.parquet     an ingest brings records of their kind
    g000004/quarantine.ndjson       records set aside by --lenient (all runs so far)
    g000004/manifest.json           a copy of the manifest of the commit that made g000004
                                    (what ``cbrq check --repair`` restores)

An ingest writes only what it adds (a new segment, the superseded-row list,
sometimes a merge of the newest segments) into a new ``gNNNNNN`` directory
and then switches ``manifest.json`` in one rename; unchanged files stay
where an earlier commit wrote them. The manifest records each file's size
and SHA-256 (``checksums``); :mod:`engine.store.integrity` verifies them. A
table's live rows are the rows of its files in order, less the
``(_seq, _row)`` pairs of its dead file: exactly one row per backup id. The
files are plain Parquet: DuckDB, Spark or pyarrow read them without cbrq
(:func:`engine.store.read.duckdb_sql` writes the query; ``cbrq info --sql``
prints it). :mod:`engine.store.read` reads the tables; :mod:`engine.store.write`
writes them. This module imports neither polars, pyarrow nor numpy.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from engine.errors import StoreError
from engine.spec import DUMP_SUFFIXES
from engine.store.layout import (
    DEFAULT_STORE,
    FORMAT,
    GENERATION_DIR,
    HISTORY_VERSION,
    MANIFEST,
    RUNS_VERSION,
    STORE_ENV,
    VERSION,
)


def resolve_store(path: str | os.PathLike[str] | None) -> Path:
    """The store directory: ``path`` if given, else ``$CBRQ_STORE``, else ``./cbrq-store``.

    Example: ``resolve_store(None)`` -> ``Path("cbrq-store")``.
    """
    if path is not None:
        return Path(path)
    return Path(os.environ.get(STORE_ENV) or DEFAULT_STORE)


@dataclass(frozen=True)
class Recorded:
    """A store file's size and SHA-256 as the commit that wrote it recorded them.

    Example: ``read_manifest(root).checksums["g000001/backups-00000.parquet"].size``.
    """

    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        """As written in the manifest's ``checksums``."""
        return {"size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class IngestRecord:
    """One ``cbrq ingest`` call as its commit recorded it (SPEC §6).

    ``n`` numbers ingests from 1 in the order they were made; ``taken_at``
    is when the export was taken (ISO 8601, UTC, microseconds; ``""``: no
    backup and no earlier ingest to take it from); ``snapshot`` says the
    call was declared a full export of ``scope`` (``project`` or ``vault``)
    covering ``projects`` / ``vaults``; ``seqs`` are the first and last
    ``_seq`` of its files (``last < first``: it read no new file);
    ``sightings`` the store file of the rows it saw (history stores);
    ``backups`` the backup records it held; ``complete`` whether its pages
    formed a complete export (``None``: it had no page with a ``count``),
    and ``why`` what was not. ``listings`` (history stores): the store file
    of the vault and member records it held, by kind (none held: no entry;
    ``None``: an ingest that kept no listings, made before a store kept
    them or before it kept history).

    Example: ``read_manifest(root).ingests[-1].taken_at`` -> ``"2026-11-02T00:00:00.000000Z"``.
    """

    n: int
    taken_at: str
    snapshot: bool = False
    scope: str | None = None
    projects: tuple[str, ...] = ()
    vaults: tuple[str, ...] = ()
    seqs: tuple[int, int] = (0, -1)
    sightings: str | None = None
    backups: int = 0
    complete: bool | None = None
    why: str = ""
    #: The projects of its vault records (shown by ``cbrq snapshots``, not a coverage).
    vault_projects: tuple[str, ...] = ()
    listings: Mapping[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        """As written in the manifest's ``ingests``."""
        return {
            "n": self.n,
            "taken_at": self.taken_at,
            "snapshot": self.snapshot,
            "scope": self.scope,
            "projects": list(self.projects),
            "vaults": list(self.vaults),
            "seqs": list(self.seqs),
            "sightings": self.sightings,
            "backups": self.backups,
            "complete": self.complete,
            "why": self.why,
            "vault_projects": list(self.vault_projects),
            "listings": None if self.listings is None else dict(self.listings),
        }

    def files(self) -> list[str]:
        """The store files this ingest wrote for history: sightings, then listings.

        Example: ``record.files()`` -> ``["g02/sightings.parquet", "g02/vaults-held.parquet"]``.
        """
        named = [self.sightings] if self.sightings else []
        return named + list((self.listings or {}).values())


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` says: the current commit, its tables and ingested files.

    ``tables`` lists each table's Parquet files in physical order;
    ``segments`` how many of them each segment has, in the same order (a
    table missing here is one segment); ``runs`` how many sorted runs each
    segment is: 1 (its files follow one another in sort order; the default
    where missing) or its file count (each file is sorted on its own, as an
    ingest wrote its batches); ``dead`` the file of superseded
    ``(_seq, _row)`` pairs of a table, if it has any, and ``superseded``
    how many rows it lists; ``counts`` are live rows.

    Example: ``read_manifest(Path("cbrq-store")).tables["backups"]`` -> the
    store-relative Parquet files of the table, in order.
    """

    generation: int = 0
    tables: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    quarantine: str | None = None
    updated_at: str = ""
    segments: dict[str, list[int]] = field(default_factory=dict)
    runs: dict[str, list[int]] = field(default_factory=dict)
    dead: dict[str, str] = field(default_factory=dict)
    superseded: dict[str, int] = field(default_factory=dict)
    rows: dict[str, list[int]] = field(default_factory=dict)
    #: Size and SHA-256 of each file, by store-relative name (none before checksums existed).
    checksums: dict[str, Recorded] = field(default_factory=dict)
    #: Every ingest, oldest first (none before ingests were recorded).
    ingests: tuple[IngestRecord, ...] = ()
    #: A history store's file of the backup rows not in the latest view (superseded
    #: versions and backups gone), laid out as a dead file: SPEC §6 as of now, read
    #: as cheaply as a store without history (none: computed from the sightings).
    away: dict[str, str] = field(default_factory=dict)

    @property
    def keeps_history(self) -> bool:
        """Whether any ingest was a snapshot: superseded rows are then versions, kept.

        Example: ``read_manifest(root).keeps_history`` -> ``False`` for a store never fed
        ``--snapshot``.
        """
        return any(record.snapshot for record in self.ingests)

    def to_json(self) -> dict[str, Any]:
        """The manifest as the JSON object written to disk (``away`` only when there is one)."""
        runs = {kind: counts for kind, counts in self.runs.items() if any(n > 1 for n in counts)}
        version = HISTORY_VERSION if self.keeps_history else VERSION
        out = {
            "format": FORMAT,
            "version": RUNS_VERSION if runs else version,
            "generation": self.generation,
            "updated_at": self.updated_at,
            "tables": self.tables,
            "segments": self.segments,
            "rows": self.rows,
            "dead": self.dead,
            "superseded": self.superseded,
            "counts": self.counts,
            "quarantine": self.quarantine,
            "files": self.files,
            "checksums": {name: entry.to_json() for name, entry in self.checksums.items()},
            "ingests": [record.to_json() for record in self.ingests],
        }
        if runs:
            out["runs"] = runs
        return {**out, "away": self.away} if self.away else out

    @property
    def hashes(self) -> set[str]:
        """Content hashes of every file already ingested."""
        return {entry["sha256"] for entry in self.files}

    def segment_files(self, kind: str) -> list[list[str]]:
        """The store-relative files of each segment of ``kind``, oldest segment first.

        Example: ``len(read_manifest(root).segment_files("backups"))`` -> segments.
        """
        names = self.tables.get(kind, [])
        sizes = self.segments.get(kind, [len(names)] if names else [])
        out: list[list[str]] = []
        start = 0
        for size in sizes:
            out.append(names[start : start + size])
            start += size
        return out

    def segment_runs(self, kind: str) -> list[int]:
        """Sorted runs in each segment of ``kind`` (1: the segment is one run).

        Example: ``read_manifest(root).segment_runs("backups")`` -> ``[1, 30]``.
        """
        count = len(self.segment_files(kind))
        runs = self.runs.get(kind)
        return list(runs) if runs is not None and len(runs) == count else [1] * count

    def ordered(self, kind: str) -> bool:
        """Whether the table of ``kind`` is one sorted run (store order is then sort order).

        Example: ``read_manifest(root).ordered("backups")`` -> ``True`` after ``cbrq compact``.
        """
        return self.segment_runs(kind) in ([], [1])

    def segment_rows(self, kind: str) -> list[int] | None:
        """Rows stored in each segment of ``kind``; ``None`` if the manifest predates the count.

        Example: ``read_manifest(root).segment_rows("backups")`` -> ``[1000000, 1000]``.
        """
        rows = self.rows.get(kind)
        return rows if rows is not None and len(rows) == len(self.segment_files(kind)) else None

    def listed(self) -> list[str]:
        """Every store-relative file this commit reads: tables, dead files, quarantine.

        Example: ``read_manifest(root).listed()`` -> ``["g000001/backups-00000.parquet", ...]``.
        """
        names = [n for files in self.tables.values() for n in files]
        names += [*self.dead.values(), *self.away.values()]
        if self.quarantine:
            names.append(self.quarantine)
        names += [name for record in self.ingests for name in record.files()]
        return list(dict.fromkeys(names))

    def referenced(self) -> set[str]:
        """The generation directories this commit reads files from.

        Example: ``read_manifest(root).referenced()`` -> ``{"g000001", "g000004"}``.
        """
        names = [n for files in self.tables.values() for n in files]
        names += [*self.dead.values(), *self.away.values()]
        if self.quarantine:
            names.append(self.quarantine)
        names += [name for record in self.ingests for name in record.files()]
        return {name.split("/", 1)[0] for name in names}


#: What a damaged manifest's error says to do.
REPAIR: Final[str] = "; `cbrq check --repair` restores the newest intact copy"


def read_manifest(root: Path) -> Manifest:
    """Read the manifest of ``root``; an empty one if the store does not exist yet.

    A manifest that is not JSON, or has a key missing or of the wrong type,
    is a :class:`StoreError` naming the key (never a ``KeyError``).

    Example: ``read_manifest(Path("cbrq-store")).generation``.
    """
    path = root / MANIFEST
    if not path.exists():
        return Manifest()
    return load_manifest(path)


def load_manifest(path: Path) -> Manifest:
    """The manifest in the file ``path`` (``manifest.json``, or a generation's copy of it).

    Example: ``load_manifest(Path("cbrq-store/g000004/manifest.json")).generation`` -> ``4``.
    """
    try:
        raw = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as err:
        raise StoreError(f"{path}: unreadable manifest ({err}){REPAIR}") from err
    return parse_manifest(path, raw)


def parse_manifest(path: Path, raw: Any) -> Manifest:
    """A manifest from its decoded JSON, every key checked; ``path`` names it in errors.

    Example: ``parse_manifest(Path("m.json"), {"format": "cbrq-inventory", ...})``.
    """
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise StoreError(f"{path}: not a cbrq inventory manifest")
    if raw.get("version") not in (1, 2, VERSION, HISTORY_VERSION, RUNS_VERSION):
        raise StoreError(
            f"{path}: inventory version {raw.get('version')}, expected {VERSION}, "
            f"{HISTORY_VERSION} or {RUNS_VERSION}"
        )
    check = _Keys(path, raw)
    tables = {
        kind: _file_names(path, kind, files)
        for kind, files in check.mapping("tables", required=True).items()
    }
    segments, runs = _segments(path, check, tables)
    files = check.value("files", list, "a list of ingested files", required=True)
    for number, entry in enumerate(files):
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise StoreError(
                f"{path}: files[{number}] is {_shown(entry)}; "
                'allowed: an object with a "sha256" string' + REPAIR
            )
    quarantine = check.value("quarantine", (str, type(None)), "a file name or null")
    if quarantine is not None:
        _safe_name(path, "quarantine", quarantine)
    dead = check.mapping("dead")
    away = check.mapping("away")
    for key, named in (("dead", dead), ("away", away)):
        for kind, name in named.items():
            if not isinstance(name, str):
                raise StoreError(f"{path}: {key}.{kind} is {_shown(name)}; allowed: a file name")
            _safe_name(path, f"{key}.{kind}", name)
    return Manifest(
        generation=check.integer("generation", required=True),
        tables=tables,
        counts=check.ints("counts"),
        files=list(files),
        quarantine=quarantine,
        updated_at=str(check.value("updated_at", str, "a timestamp string") or ""),
        segments=segments,
        runs=runs,
        dead=dict(dead),
        away=dict(away),
        superseded=check.ints("superseded"),
        rows=check.int_lists("rows"),
        checksums=_checksums(path, check.mapping("checksums")),
        ingests=_ingests(path, check.value("ingests", list, "a list of ingest records")),
    )


def _segments(
    path: Path, check: _Keys, tables: dict[str, list[str]]
) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """The manifest's ``segments`` and ``runs``, each checked against the tables' files."""
    segments = check.int_lists("segments")
    for kind, sizes in segments.items():
        if sum(sizes) != len(tables.get(kind, [])) or any(n < 1 for n in sizes):
            raise StoreError(
                f"{path}: segments.{kind} is {sizes}; allowed: positive file counts "
                f"adding up to the {len(tables.get(kind, []))} files of tables.{kind}"
            )
    runs = check.int_lists("runs")
    for kind, counts in runs.items():
        sizes = segments.get(kind, [len(tables.get(kind, []))])
        if len(counts) != len(sizes) or any(
            n not in (1, size) for n, size in zip(counts, sizes, strict=True)
        ):
            raise StoreError(
                f"{path}: runs.{kind} is {counts}; allowed: per segment of {sizes} files, "
                "1 or its file count"
            )
    return segments, runs


def _ingests(path: Path, raw: list[Any] | None) -> tuple[IngestRecord, ...]:
    """The manifest's ``ingests``, each checked; ``path`` names the manifest in errors."""
    out: list[IngestRecord] = []
    for number, entry in enumerate(raw or []):
        try:
            seqs = entry["seqs"]
            record = IngestRecord(
                n=int(entry["n"]),
                taken_at=str(entry["taken_at"]),
                snapshot=bool(entry["snapshot"]),
                scope=entry.get("scope"),
                projects=tuple(str(p) for p in entry.get("projects", [])),
                vaults=tuple(str(v) for v in entry.get("vaults", [])),
                seqs=(int(seqs[0]), int(seqs[1])),
                sightings=entry.get("sightings"),
                backups=int(entry.get("backups", 0)),
                complete=entry.get("complete"),
                why=str(entry.get("why", "")),
                vault_projects=tuple(str(p) for p in entry.get("vault_projects", [])),
                listings=_listings(entry.get("listings")),
            )
        except (KeyError, TypeError, ValueError, IndexError):
            raise StoreError(
                f"{path}: ingests[{number}] is {_shown(entry)}; allowed: an object with n, "
                "taken_at, snapshot and seqs" + REPAIR
            ) from None
        if record.sightings is not None:
            _safe_name(path, f"ingests[{number}].sightings", record.sightings)
        for kind, name in (record.listings or {}).items():
            _safe_name(path, f"ingests[{number}].listings.{kind}", name)
        out.append(record)
    return tuple(out)


def _listings(raw: Any) -> dict[str, str] | None:
    """An ingest's ``listings``: kind -> file name; a wrong shape is a ``TypeError``."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(
        k in ("vaults", "members") and isinstance(v, str) for k, v in raw.items()
    ):
        raise TypeError("listings")
    return dict(raw)


class _Keys:
    """Reads the keys of a manifest's JSON object, each of its type, or says which is wrong."""

    def __init__(self, path: Path, raw: dict[str, Any]) -> None:
        self._path = path
        self._raw = raw

    def _fail(self, key: str, value: Any, allowed: str) -> StoreError:
        shown = "missing" if value is _MISSING else f"{_shown(value)}"
        return StoreError(f"{self._path}: key {key!r} is {shown}; allowed: {allowed}{REPAIR}")

    def value(self, key: str, kind: Any, allowed: str, *, required: bool = False) -> Any:
        value = self._raw.get(key, _MISSING)
        if value is _MISSING and not required:
            return None
        if value is _MISSING or not isinstance(value, kind) or isinstance(value, bool):
            raise self._fail(key, value, allowed)
        return value

    def integer(self, key: str, *, required: bool = False) -> int:
        value = self.value(key, int, "an integer ≥ 0", required=required)
        if value is None or value < 0:
            raise self._fail(key, value, "an integer ≥ 0")
        return int(value)

    def mapping(self, key: str, *, required: bool = False) -> dict[str, Any]:
        value = self.value(key, (dict, type(None)), "an object", required=required)
        return {} if value is None else dict(value)

    def ints(self, key: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for name, value in self.mapping(key).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise self._fail(f"{key}.{name}", value, "an integer ≥ 0")
            out[str(name)] = value
        return out

    def int_lists(self, key: str) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for name, value in self.mapping(key).items():
            if not isinstance(value, list) or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value
            ):
                raise self._fail(f"{key}.{name}", value, "a list of integers ≥ 0")
            out[str(name)] = list(value)
        return out


_MISSING: Final = object()


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _safe_name(path: Path, key: str, name: str) -> None:
    """A file name of the manifest must stay inside the store (``gNNNNNN/file``)."""
    parts = name.split("/")
    if not name or name.startswith("/") or ".." in parts or "\\" in name or "" in parts:
        raise StoreError(
            f"{path}: {key} is {_shown(name)}; allowed: a file inside the store "
            "(gNNNNNN/NAME)" + REPAIR
        )


def _checksums(path: Path, raw: dict[str, Any]) -> dict[str, Recorded]:
    out: dict[str, Recorded] = {}
    for name, entry in raw.items():
        size = entry.get("size") if isinstance(entry, dict) else None
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if (
            not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
            or not isinstance(digest, str)
            or not re.fullmatch(r"[0-9a-f]{64}", digest)
        ):
            raise StoreError(
                f"{path}: checksums.{name} is {_shown(entry)}; allowed: "
                '{"size": bytes, "sha256": 64 hex digits}' + REPAIR
            )
        out[str(name)] = Recorded(size, digest)
    return out


def _file_names(path: Path, kind: str, value: Any) -> list[str]:
    """A table's files as the manifest lists them: one name (version 1) or a list."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise StoreError(
            f"{path}: tables.{kind} is {json.dumps(value)}; "
            "allowed: a file name, or a list of file names"
        )
    for name in names:
        _safe_name(path, f"tables.{kind}", name)
    return names


#: In each generation directory: readers hold a shared lock on it while they
#: use a commit that refers to the directory, and a writer removes a
#: directory no commit refers to only once it gets this lock exclusively.
READERS: Final[str] = ".readers"
#: Tries to lease a commit's directories while commits race past.
LEASE_TRIES: Final[int] = 20


class Lease:
    """Shared locks on the generation directories one commit uses, held by a reader.

    While a reader holds it, no writer removes those directories, so the
    files of the commit it opened stay readable for as long as it needs
    them, whatever is ingested or merged meanwhile. Released by
    :meth:`release` (or when the process ends).

    Inventories opened from one another share one lease; it is released
    when the last of them lets go of it.

    Example::

        lease = Lease.take(Path("cbrq-store"))
        print(lease.manifest.generation)
        lease.release()
    """

    def __init__(self, manifest: Manifest, handles: list[int]) -> None:
        self.manifest = manifest
        self._handles = handles

    @classmethod
    def take(cls, root: Path) -> Lease:
        """Read the current manifest of ``root`` and lock the directories it uses.

        A commit that lands between reading the manifest and locking may
        have removed a directory: then the new manifest is read and leased.
        """
        for _ in range(LEASE_TRIES):
            manifest = require_manifest(root)
            handles = _lock_shared(root, sorted(manifest.referenced()))
            if handles is not None:
                return cls(manifest, handles)
        raise StoreError(f"{root}: the inventory changed {LEASE_TRIES} times while being opened")

    def release(self) -> None:
        """Let writers remove the directories again (if no other reader holds them)."""
        handles, self._handles = self._handles, []
        for fd in handles:
            os.close(fd)

    def __del__(self) -> None:
        # Not contextlib.suppress: at interpreter exit module globals (contextlib, os)
        # may already be None; the OS closes the files then.
        try:  # noqa: SIM105
            self.release()
        except Exception:
            pass


def _lock_shared(root: Path, names: list[str]) -> list[int] | None:
    """Shared locks on ``root/name/.readers``; ``None`` if a directory was removed meanwhile.

    A store written before leases (no ``.readers`` file) is read without one.
    """
    import fcntl

    handles: list[int] = []
    for name in names:
        marker = root / name / READERS
        try:
            fd = os.open(marker, os.O_RDONLY)
        except FileNotFoundError:
            if (root / name).is_dir():
                continue  # made before leases existed
            break
        handles.append(fd)
        fcntl.flock(fd, fcntl.LOCK_SH)
        if not marker.exists():  # removed while we waited for the lock
            break
    else:
        return handles
    for fd in handles:
        os.close(fd)
    return None


def require_manifest(root: Path) -> Manifest:
    """The manifest of an existing inventory; :class:`StoreError` if there is none.

    Example: ``require_manifest(Path("cbrq-store")).counts["backups"]``.
    """
    if not (root / MANIFEST).exists():
        generations = _generation_dirs(root)
        if generations:
            import shlex

            shown = ", ".join(generations[:3]) + (", ..." if len(generations) > 3 else "")
            raise StoreError(
                f"{root}: has no {MANIFEST}, yet holds generation directories ({shown}): "
                "a lost manifest or a partial restore? run "
                f"`cbrq check --repair --store {shlex.quote(str(root))}` to restore it"
            )
        if root.is_dir() and _holds_dumps(root):
            raise StoreError(
                f"{root}: holds dump files, not an inventory: query them directly "
                f"(`cbrq query --from {root}`, `Inventory.from_dumps({str(root)!r})`) or "
                f"ingest them first (`cbrq ingest {root} --store cbrq-store`)"
            )
        raise StoreError(f"{root}: no inventory here (run `cbrq ingest PATH --store {root}`)")
    return read_manifest(root)


def _generation_dirs(root: Path) -> list[str]:
    """The ``gNNNNNN`` directories of ``root`` that hold a table file, newest first."""
    try:
        children = list(root.iterdir())
    except OSError:
        return []
    return sorted(
        (
            child.name
            for child in children
            if GENERATION_DIR.fullmatch(child.name) and any(child.glob("*.parquet"))
        ),
        reverse=True,
    )


def _holds_dumps(root: Path) -> bool:
    """Whether a directory has dump files (what ``cbrq ingest DIR`` would read)."""
    return any(
        path.name.lower().removesuffix(".gz").endswith(DUMP_SUFFIXES) for path in root.rglob("*")
    )


def damaged(root: Path, name: str, reason: str) -> StoreError:
    """The error of a store file (``name``, store-relative) that is missing or damaged.

    Example: ``raise damaged(root, "g000001/backups-00000.parquet", "missing")``.
    """
    return StoreError(f"{root / name}: damaged ({reason}); {check_hint(root)}")


def check_hint(root: Path) -> str:
    """What to run to learn more about a damaged store at ``root``.

    Example: ``check_hint(Path("inv"))`` -> ``"run `cbrq check --store inv`"``.
    """
    import shlex

    return f"run `cbrq check --store {shlex.quote(str(root))}`"
