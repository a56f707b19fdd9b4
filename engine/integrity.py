"""Is the inventory on disk intact? ``cbrq check``, the writers' survey, and repair.

Three questions, one module:

- :func:`verify`: does every file a manifest lists exist, with the size and
  SHA-256 its commit recorded, a Parquet footer that decodes, the row
  counts the manifest states and dead-row positions inside their table?
  (Files of stores written before checksums are decoded in full instead,
  Parquet page checksums verified where the file has them.)
- :func:`survey`: which generation directories does the manifest account
  for? A writer refuses to touch a store that has committed generations it
  cannot account for (a lost or older ``manifest.json``), and removes only
  what cbrq wrote and no commit uses.
- :func:`repair`: rebuild a lost or stale ``manifest.json`` from the copy
  each commit leaves in its own directory, the newest one whose files all
  verify.

Reads of a query use none of this but a ``stat`` per file
(:func:`engine.manifest.require_files`); only when a decoder fails is
:func:`locate` asked which file is to blame.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from engine.errors import StoreError
from engine.manifest import (
    GENERATION_DIR,
    MANIFEST,
    POS,
    Manifest,
    Recorded,
    load_manifest,
)

#: Each commit leaves a copy of its manifest here, in its own generation directory.
COPY: Final[str] = MANIFEST
#: In a generation directory while it is being written; removed once its commit is done.
WRITING: Final[str] = ".writing"
#: The lease file of a generation directory (:data:`engine.manifest.READERS`).
_READERS: Final[str] = ".readers"
#: The names a generation directory of cbrq holds: tables, staging, leases, markers.
OWN_ENTRY: Final = re.compile(
    r"(?:backups|vaults|members)-(?:[0-9]{5}|dead)\.parquet|quarantine\.ndjson"
    r"|\.readers|\.writing|parts|manifest\.json(?:\.tmp)?"
)
#: Bytes read at a time while a file is hashed.
_CHUNK: Final[int] = 1 << 20


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex (about 1 GB/s).

    Example: ``file_sha256(Path("inv/g000001/backups-00000.parquet"))``.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def record(path: Path) -> Recorded:
    """What a commit records of a file it wrote: its size and SHA-256.

    Example: ``record(Path("inv/g000002/backups-dead.parquet")).size``.
    """
    return Recorded(path.stat().st_size, file_sha256(path))


@dataclass(frozen=True)
class Finding:
    """One thing ``cbrq check`` found: a damaged file, or a notice about the store.

    ``name`` is store-relative (a file or a generation directory);
    ``damage`` findings make the check fail, notices do not.

    Example: ``Finding("g000001/backups-00000.parquet", "checksum mismatch", "damage")``.
    """

    name: str
    problem: str
    severity: Literal["damage", "notice"] = "damage"

    def __str__(self) -> str:
        return f"{self.name}: {self.problem}"


def verify(
    root: Path, manifest: Manifest, *, deep: bool = True, only: Iterable[str] | None = None
) -> list[Finding]:
    """Every problem of the files ``manifest`` lists (or just those in ``only``).

    ``deep``: hash every file that has a recorded checksum and decode in
    full (page checksums on) every Parquet file that has none; otherwise only
    sizes, footers, row counts and dead-row positions are looked at.

    Example: ``[str(f) for f in verify(Path("inv"), read_manifest(Path("inv")))]``.
    """
    wanted = None if only is None else set(only)
    findings: list[Finding] = []
    footers: dict[str, int] = {}  # rows of each Parquet file that opened
    for name in manifest.listed():
        if wanted is not None and name not in wanted:
            continue
        problem = _file_problem(root, manifest, name, deep, footers)
        if problem is not None:
            findings.append(Finding(name, problem))
    findings += _count_problems(root, manifest, footers, wanted)
    return findings


def _file_problem(
    root: Path, manifest: Manifest, name: str, deep: bool, footers: dict[str, int]
) -> str | None:
    path = root / name
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return f"missing; listed in {MANIFEST}"
    except OSError as err:
        return f"cannot be read: {err.strerror or err}"
    recorded = manifest.checksums.get(name)
    if recorded is not None and recorded.size != size:
        return f"{size:,} bytes, the commit wrote {recorded.size:,}"
    if recorded is not None and deep:
        try:
            digest = file_sha256(path)
        except OSError as err:
            return f"cannot be read: {err.strerror or err}"
        if digest != recorded.sha256:
            return (
                f"checksum mismatch (sha256 {digest[:12]}..., "
                f"the commit wrote {recorded.sha256[:12]}...)"
            )
    if not name.endswith(".parquet"):
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # A file whose checksum matched is what its commit wrote: its footer is enough.
        full = deep and recorded is None
        parquet = pq.ParquetFile(path, page_checksum_verification=full)
        footers[name] = parquet.metadata.num_rows
        if full:
            for group in range(parquet.num_row_groups):
                parquet.read_row_group(group)
    except (pa.ArrowException, OSError, ValueError) as err:
        text = str(err).strip().splitlines()
        return f"does not decode: {text[0] if text else type(err).__name__}"
    return None


def _count_problems(
    root: Path, manifest: Manifest, footers: dict[str, int], wanted: set[str] | None
) -> list[Finding]:
    """Row counts of each segment and table, and dead-row positions, against the manifest."""
    findings: list[Finding] = []
    for kind in manifest.tables:
        segments = manifest.segment_files(kind)
        if not all(name in footers for names in segments for name in names):
            continue  # a file already failed (or was not asked about)
        stored = [sum(footers[name] for name in names) for names in segments]
        expected = manifest.segment_rows(kind)
        if expected is not None and expected != stored:
            findings.append(
                Finding(
                    segments[-1][-1] if segments and segments[-1] else kind,
                    f"table {kind} stores {stored} rows per segment, the manifest says {expected}",
                )
            )
        dead_name = manifest.dead.get(kind)
        superseded = manifest.superseded.get(kind, 0)
        live = manifest.counts.get(kind)
        if live is not None and live != sum(stored) - superseded:
            findings.append(
                Finding(
                    kind,
                    f"manifest counts {live:,} live {kind}; its files hold "
                    f"{sum(stored):,} rows less {superseded:,} superseded",
                )
            )
        if dead_name is None or (wanted is not None and dead_name not in wanted):
            continue
        if dead_name not in footers:
            continue
        problem = _dead_problem(root / dead_name, sum(stored), superseded)
        if problem is not None:
            findings.append(Finding(dead_name, problem))
    return findings


def _dead_problem(path: Path, stored: int, superseded: int) -> str | None:
    """Whether a dead file's positions are distinct, inside the table, and as many as stated."""
    import polars as pl

    try:
        positions = pl.read_parquet(path, columns=[POS])[POS]
    except Exception as err:  # polars' decode errors have no common base but this
        return f"does not decode: {str(err).strip().splitlines()[0] if str(err).strip() else err}"
    if positions.len() != superseded:
        return f"lists {positions.len():,} superseded rows, the manifest says {superseded:,}"
    if positions.len() and (positions.min() < 0 or positions.max() >= stored):  # type: ignore[operator]
        return f"lists row positions outside the table's {stored:,} stored rows"
    if positions.n_unique() != positions.len():
        return "lists a superseded row twice"
    return None


def locate(root: Path, manifest: Manifest) -> tuple[str, str] | None:
    """The first damaged file of ``manifest`` and what is wrong with it; ``None`` if none is.

    Asked only after a read failed: shallow checks first (sizes, footers,
    counts), then checksums and full decodes.

    Example: ``locate(Path("inv"), read_manifest(Path("inv")))``.
    """
    for deep in (False, True):
        findings = verify(root, manifest, deep=deep)
        if findings:
            return findings[0].name, findings[0].problem
    return None


# --- which generation directories the manifest accounts for -----------------------


@dataclass(frozen=True)
class Survey:
    """The generation directories of a store, sorted by what a writer may do with them.

    ``unaccounted``: committed generations the manifest does not know (newer
    than it, or any when there is no manifest): a writer refuses.
    ``removable``: written by cbrq and used by no commit (superseded, or the
    leftovers of a write that never committed). ``foreign``: directories
    holding files cbrq does not write, left alone (their names skipped).

    Example: ``survey(Path("inv"), read_manifest(Path("inv"))).unaccounted``.
    """

    unaccounted: list[str] = field(default_factory=list)
    removable: list[str] = field(default_factory=list)
    foreign: dict[str, list[str]] = field(default_factory=dict)


def survey(root: Path, manifest: Manifest) -> Survey:
    """Sort the generation directories of ``root`` against ``manifest`` (see :class:`Survey`).

    Example: ``survey(root, read_manifest(root)).removable``.
    """
    found = Survey()
    used = manifest.referenced() | {f"g{manifest.generation:06d}"}
    try:
        children = sorted(root.iterdir())
    except FileNotFoundError:
        return found
    for child in children:
        if not GENERATION_DIR.fullmatch(child.name) or not child.is_dir():
            continue
        entries = [entry.name for entry in child.iterdir()]
        strange = sorted(name for name in entries if not OWN_ENTRY.fullmatch(name))
        if strange:
            found.foreign[child.name] = strange
        if child.name in used and manifest.generation:
            continue
        newer = int(child.name[1:]) > manifest.generation
        if newer and committed(entries):
            found.unaccounted.append(child.name)
        elif not strange:
            found.removable.append(child.name)
    return found


def committed(entries: Iterable[str]) -> bool:
    """Whether a generation directory holding ``entries`` was committed.

    A commit leaves a copy of its manifest (and its lease file); a write
    that never committed leaves :data:`WRITING` (or, before the copies
    existed, no lease file).

    Example: ``committed(["backups-00000.parquet", ".readers", "manifest.json"])`` -> ``True``.
    """
    names = set(entries)
    return COPY in names or (_READERS in names and WRITING not in names)


def refusal(root: Path, manifest: Manifest, found: Survey) -> StoreError | None:
    """The error a writer raises before writing into a store it cannot account for.

    Example: ``refusal(root, read_manifest(root), survey(root, read_manifest(root)))``.
    """
    if not found.unaccounted:
        return None
    import shlex

    names = ", ".join(found.unaccounted)
    repair = f"`cbrq check --repair --store {shlex.quote(str(root))}`"
    if manifest.generation == 0:
        state = f"has no {MANIFEST}, yet {names} hold committed generations"
        why = "a lost manifest or a partial restore?"
    else:
        state = (
            f"{MANIFEST} is generation {manifest.generation}, yet {names} were committed after it"
        )
        why = "an older manifest restored?"
    return StoreError(
        f"{root}: {state} ({why}); nothing was written: run {repair} to restore the newest "
        f"intact generation, or move {names} out of the store if they do not belong to it"
    )


# --- repair ------------------------------------------------------------------------


@dataclass(frozen=True)
class Repaired:
    """What :func:`repair` did: the generation restored, and the copies it could not use.

    Example: ``repair(Path("inv")).restored`` -> ``"g000005"``.
    """

    restored: str | None
    unusable: dict[str, str]
    message: str


def repair(root: Path) -> Repaired:
    """Restore ``manifest.json`` from the newest generation whose copy and files verify.

    Each commit leaves a copy of its manifest in its own directory; the
    newest copy whose every listed file has its recorded size and checksum
    is written back as the manifest (in one rename), if it is newer than the
    current manifest or there is none. A store written before the copies
    existed is rebuilt only when one generation holds every table (as after
    ``cbrq compact``); otherwise nothing is changed and the generations are named.

    Example: ``print(repair(Path("inv")).message)``.
    """
    current: Manifest | None = None
    try:
        if (root / MANIFEST).exists():
            current = load_manifest(root / MANIFEST)
            if verify(root, current):
                current = None  # damaged: any intact copy is better
    except StoreError:
        current = None
    directories = (
        sorted(
            (child.name for child in root.iterdir() if GENERATION_DIR.fullmatch(child.name)),
            reverse=True,
        )
        if root.is_dir()
        else []
    )
    floor = 0 if current is None else current.generation
    unusable: dict[str, str] = {}
    for name in directories:
        if int(name[1:]) <= floor:
            break
        copy = root / name / COPY
        if not copy.exists():
            unusable[name] = "no manifest copy (written before copies, or not committed)"
            continue
        try:
            candidate = load_manifest(copy)
        except StoreError as err:
            unusable[name] = str(err)
            continue
        findings = verify(root, candidate)
        if findings:
            unusable[name] = "; ".join(str(f) for f in findings[:3])
            continue
        _install(root, candidate)
        lost = ", ".join(f"{n} ({why})" for n, why in unusable.items())
        text = f"restored generation {candidate.generation} from {name}/{COPY}"
        text += f"; could not use {lost}" if lost else ""
        return Repaired(name, unusable, text)
    if current is not None:
        if unusable:
            lost = ", ".join(f"{n} ({why})" for n, why in unusable.items())
            return Repaired(None, unusable, f"{MANIFEST} kept (it verifies); could not use {lost}")
        return Repaired(None, {}, f"nothing to repair: {MANIFEST} verifies")
    rebuilt = _rebuild_compacted(root, directories)
    if rebuilt is not None:
        _install(root, rebuilt)
        text = (
            f"rebuilt {MANIFEST} from the files of g{rebuilt.generation:06d} (one generation "
            "holds every table); the list of ingested files is lost, so files ingested "
            "before are read again if ingested again"
        )
        return Repaired(f"g{rebuilt.generation:06d}", unusable, text)
    detail = ", ".join(f"{n} ({why})" for n, why in unusable.items()) or "no generation directory"
    raise StoreError(
        f"{root}: no intact generation to restore a manifest from ({detail}); nothing was "
        "changed: restore manifest.json from a backup of the store"
    )


def _rebuild_compacted(root: Path, directories: list[str]) -> Manifest | None:
    """A manifest of the newest generation if it alone holds every table and no dead file."""
    if not directories:
        return None
    import pyarrow.parquet as pq

    from engine.spec import RECORD_KINDS

    name = directories[0]
    folder = root / name
    entries = {entry.name for entry in folder.iterdir()}
    if any(entry.endswith("-dead.parquet") for entry in entries):
        return None
    tables: dict[str, list[str]] = {}
    rows: dict[str, list[int]] = {}
    counts: dict[str, int] = {}
    checksums: dict[str, Recorded] = {}
    for kind in RECORD_KINDS:
        files = sorted(e for e in entries if re.fullmatch(rf"{kind}-[0-9]{{5}}\.parquet", e))
        if not files or files != [f"{kind}-{i:05d}.parquet" for i in range(len(files))]:
            return None
        try:
            held = [pq.ParquetFile(folder / f).metadata.num_rows for f in files]
        except Exception:  # a file that does not decode: nothing to rebuild from
            return None
        tables[kind] = [f"{name}/{f}" for f in files]
        rows[kind] = [sum(held)]
        counts[kind] = sum(held)
        for f in files:
            checksums[f"{name}/{f}"] = record(folder / f)
    quarantine = f"{name}/quarantine.ndjson" if "quarantine.ndjson" in entries else None
    if quarantine is not None:
        checksums[quarantine] = record(root / quarantine)
    return Manifest(
        generation=int(name[1:]),
        tables=tables,
        counts=counts,
        files=[],
        quarantine=quarantine,
        segments={kind: [len(files)] for kind, files in tables.items()},
        rows=rows,
        checksums=checksums,
    )


def _install(root: Path, manifest: Manifest) -> None:
    """Write ``manifest`` as the store's ``manifest.json`` in one rename (durably)."""
    import msgspec

    text = msgspec.json.format(msgspec.json.encode(manifest.to_json()), indent=2) + b"\n"
    tmp = root / f"{MANIFEST}.tmp"
    with open(tmp, "wb") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, root / MANIFEST)
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def report(root: Path) -> tuple[list[Finding], list[str]]:
    """What ``cbrq check`` prints: every finding, and lines of what was verified.

    Example: ``findings, lines = report(Path("inv"))``.
    """
    from engine.manifest import require_manifest

    manifest = require_manifest(root)
    findings = verify(root, manifest)
    found = survey(root, manifest)
    for name in found.unaccounted:
        findings.append(
            Finding(
                name,
                f"a committed generation newer than {MANIFEST} (generation "
                f"{manifest.generation}); `cbrq check --repair` restores the newest intact one",
            )
        )
    for name, strange in found.foreign.items():
        more = f" and {len(strange) - 5} more" if len(strange) > 5 else ""
        shown = ", ".join(strange[:5]) + more
        findings.append(
            Finding(name, f"holds files cbrq does not write ({shown}); left alone", "notice")
        )
    listed = manifest.listed()
    unsummed = [name for name in listed if name not in manifest.checksums]
    lines = [f"store: {root} (generation {manifest.generation}, {len(listed)} files)"]
    if unsummed and len(unsummed) == len(listed):
        lines.append(
            "no checksums recorded (written by an older cbrq): footers, row counts, "
            "dead-row positions and page checksums (where present) verified"
        )
    elif unsummed:
        lines.append(
            f"{len(unsummed)} of {len(listed)} files have no recorded checksum (written by "
            "an older cbrq): decoded in full instead"
        )
    else:
        lines.append(f"sizes and SHA-256 of all {len(listed)} files verified")
    return findings, lines
