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
(:func:`engine.store.manifest.require_files`); only when a decoder fails is
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
from engine.store.layout import GENERATION_DIR, MANIFEST, POS
from engine.store.manifest import Manifest, Recorded, load_manifest

#: Each commit leaves a copy of its manifest here, in its own generation directory.
COPY: Final[str] = MANIFEST
#: In a generation directory while it is being written; removed once its commit is done.
WRITING: Final[str] = ".writing"
#: The lease file of a generation directory (:data:`engine.store.manifest.READERS`).
_READERS: Final[str] = ".readers"
#: The names a generation directory of cbrq holds: tables, staging, leases, markers.
OWN_ENTRY: Final = re.compile(
    r"(?:backups|vaults|members)-(?:[0-9]{5}|dead|away)\.parquet|quarantine\.ndjson"
    r"|sightings(?:-[0-9]{6})?\.parquet|(?:vaults|members)-held(?:-[0-9]{6})?\.parquet"
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
        positions = pl.read_parquet(path, columns=[POS], glob=False)[POS]
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


def _intact_current(root: Path) -> Manifest | None:
    """The store's manifest if it loads and verifies, else ``None`` (missing or damaged).

    Example: ``floor = 0 if (m := _intact_current(root)) is None else m.generation``.
    """
    try:
        if (root / MANIFEST).exists():
            current = load_manifest(root / MANIFEST)
            # damaged: any intact copy is better
            return None if verify(root, current) else current
    except StoreError:
        pass
    return None


def _committed_generations(root: Path) -> list[str]:
    """The store's committed generation directories, newest first.

    Only committed generations: a write's leftover is the next writer's to
    remove, and a directory of the user's own files is none of repair's business.
    Example: ``_committed_generations(Path("inv"))`` -> ``["g000003", "g000002"]``.
    """
    if not root.is_dir():
        return []
    return sorted(
        (
            child.name
            for child in root.iterdir()
            if GENERATION_DIR.fullmatch(child.name)
            and child.is_dir()
            and committed(entry.name for entry in child.iterdir())
        ),
        reverse=True,
    )


def _restore_copy(
    root: Path, directories: list[str], floor: int, unusable: dict[str, str]
) -> Repaired | None:
    """Install the newest copy newer than generation ``floor`` that verifies.

    Each generation passed over on the way is named in ``unusable`` with why;
    ``None`` when no copy newer than ``floor`` verifies.
    Example: ``_restore_copy(root, ["g000002"], 0, {})``.
    """
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
        text = f"restored generation {candidate.generation} from {name}/{COPY}"
        return Repaired(name, unusable, text + _set_aside(root, unusable))
    return None


def _rebuild_or_refuse(root: Path, directories: list[str], unusable: dict[str, str]) -> Repaired:
    """Rebuild a manifest from a pre-copy store's files when they leave no doubt, else raise.

    Raises :class:`StoreError` naming every generation and why it is unusable.
    Example: ``_rebuild_or_refuse(root, ["g000001"], {})``.
    """
    rebuilt, doubt = _rebuild_compacted(root, directories) if directories else (None, "")
    if rebuilt is not None:
        _install(root, rebuilt)
        homes = sorted({name.split("/", 1)[0] for name in rebuilt.listed()})
        text = (
            f"rebuilt {MANIFEST} from the files of {', '.join(homes)} (each table's files in "
            "one generation, no superseded rows); the list of ingested files is lost, so a "
            "file ingested before is read again if ingested again"
        )
        return Repaired(f"g{rebuilt.generation:06d}", unusable, text)
    detail = ", ".join(f"{n} ({why})" for n, why in unusable.items()) or "no generation directory"
    doubt = f"; cannot rebuild from the Parquet files alone: {doubt}" if doubt else ""
    raise StoreError(
        f"{root}: no intact generation to restore a manifest from ({detail}){doubt}; "
        "nothing was changed: restore manifest.json from a backup of the store"
    )


def repair(root: Path) -> Repaired:
    """Restore ``manifest.json`` from the newest generation whose copy and files verify.

    Each commit leaves a copy of its manifest in its own directory; the
    newest copy whose every listed file has its recorded size and checksum
    is written back as the manifest (in one rename), if it is newer than the
    current manifest or there is none. A store written before the copies
    existed is rebuilt only when its files leave no doubt (each table's files
    in one directory, no superseded rows); otherwise nothing is changed and
    the generations are named.

    Example: ``print(repair(Path("inv")).message)``.
    """
    current = _intact_current(root)
    directories = _committed_generations(root)
    floor = 0 if current is None else current.generation
    unusable: dict[str, str] = {}
    restored = _restore_copy(root, directories, floor, unusable)
    if restored is not None:
        return restored
    if current is not None:
        if unusable:
            text = f"{MANIFEST} kept (it verifies)" + _set_aside(root, unusable)
            return Repaired(None, unusable, text)
        return Repaired(None, {}, f"nothing to repair: {MANIFEST} verifies")
    return _rebuild_or_refuse(root, directories, unusable)


#: Where repair moves the newer generations it could not use (out of the gNNNNNN names).
ASIDE: Final[str] = "unusable-"


def _set_aside(root: Path, unusable: dict[str, str]) -> str:
    """Move the generations newer than the restored one out of the writers' way; what it says.

    They are renamed, not removed (``unusable-gNNNNNN``): whatever they still
    hold stays for the user, and writers no longer refuse the store for them.
    """
    if not unusable:
        return ""
    for name in unusable:
        os.replace(root / name, root / f"{ASIDE}{name}")
    lost = ", ".join(f"{n} ({why})" for n, why in unusable.items())
    moved = ", ".join(f"{ASIDE}{n}" for n in unusable)
    return f"; could not use {lost}; moved aside to {moved} (remove once not needed)"


def _rebuild_compacted(root: Path, directories: list[str]) -> tuple[Manifest | None, str]:
    """A manifest from the Parquet files alone, when they leave no doubt; else why not.

    That is when no directory has a dead file (no superseded rows to know
    about) and no two directories hold files of the same table: a store of
    one ingest, or one whose older generations were all cleaned away. (After
    ``cbrq compact`` an older directory that still holds the vaults keeps
    its old backups files too: which segments are live is then not known.)
    """
    import pyarrow.parquet as pq

    from engine.spec import RECORD_KINDS

    homes: dict[str, list[str]] = {kind: [] for kind in RECORD_KINDS}
    quarantine: str | None = None
    for name in sorted(directories):
        entries = {entry.name for entry in (root / name).iterdir()}
        if any(entry.endswith("-dead.parquet") for entry in entries):
            return None, f"{name} has superseded rows (a dead file)"
        for kind in RECORD_KINDS:
            if f"{kind}-00000.parquet" in entries:
                homes[kind].append(name)
        if "quarantine.ndjson" in entries:
            quarantine = f"{name}/quarantine.ndjson"  # each commit's holds every run so far
    for kind, where in homes.items():
        if len(where) != 1:
            found = ", ".join(where) or "no generation"
            return None, f"the {kind} table's files are in {found}"
    tables: dict[str, list[str]] = {}
    rows: dict[str, list[int]] = {}
    checksums: dict[str, Recorded] = {}
    for kind, (name,) in homes.items():
        folder = root / name
        files: list[str] = []
        while (folder / f"{kind}-{len(files):05d}.parquet").exists():
            files.append(f"{kind}-{len(files):05d}.parquet")
        try:
            held = [pq.ParquetFile(folder / f).metadata.num_rows for f in files]
        except Exception as err:  # a file that does not decode: nothing to rebuild from
            return None, f"{name}/{kind}: does not decode ({err})"
        tables[kind] = [f"{name}/{f}" for f in files]
        rows[kind] = [sum(held)]
        for f in files:
            checksums[f"{name}/{f}"] = record(folder / f)
    if quarantine is not None:
        checksums[quarantine] = record(root / quarantine)
    return Manifest(
        generation=max(int(name[1:]) for name in directories),
        tables=tables,
        counts={kind: counted[0] for kind, counted in rows.items()},
        files=[],
        quarantine=quarantine,
        segments={kind: [len(files)] for kind, files in tables.items()},
        # Each file is sorted; whether they follow one another is not known here.
        runs={kind: [len(files)] for kind, files in tables.items() if files},
        rows=rows,
        checksums=checksums,
    ), ""


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
    from engine.store.manifest import require_manifest

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
            "no checksums recorded (written by an older cbrq): checked footers, row counts, "
            "dead-row positions, and page checksums where present"
        )
    elif unsummed:
        lines.append(
            f"{len(unsummed)} of {len(listed)} files have no recorded checksum (written by "
            "an older cbrq): decoded in full instead"
        )
    else:
        lines.append(f"checked: size and SHA-256 of each of the {len(listed)} files")
    return findings, lines
