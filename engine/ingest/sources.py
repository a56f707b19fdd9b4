"""Phase 1: dump files -> their bytes.

Turns the paths a user names into :class:`SourceRef` objects and reads each
into a :class:`Source`: its bytes, gunzipped if they are gzip data (found by
the magic bytes, whatever the name), checked to be UTF-8, with the SHA-256 of
the raw bytes. Directories expand recursively to their ``*.json``,
``*.ndjson``, ``*.jsonl`` files (optionally ``.gz``) in sorted path order;
glob patterns expand sorted; ``-`` is standard input. What form of dump the
bytes hold, and the records in it, is :mod:`engine.ingest.forms`'s part.

Guarantees: every problem raises :class:`~engine.errors.InputError` naming
the file; files keep the order given.

Example::

    for ref in expand_paths(["sample_data"]):
        print(ref.label, read_source(ref).sha256)
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import os
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from engine import interrupts
from engine.errors import InputError, Location
from engine.spec import DUMP_SUFFIXES
from engine.store.layout import is_store_dir

STDIN_LABEL: Final[str] = "<stdin>"
_BOM: Final[bytes] = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class SourceRef:
    """A file to read: its label in messages and its path (``None`` = stdin).

    Example: ``SourceRef("dumps/p1.json", Path("dumps/p1.json"))``.
    """

    label: str
    path: Path | None


@dataclass(frozen=True)
class Source:
    """The decompressed bytes of one input file and the hash of its raw bytes.

    Example: ``read_source(ref).sha256`` identifies the file in the manifest.
    """

    label: str
    data: bytes
    sha256: str
    size: int


# --- expanding paths --------------------------------------------------------


def expand_paths(paths: Sequence[str]) -> list[SourceRef]:
    """Expand files, directories, globs and ``-`` into files, in the order given.

    Example::

        expand_paths(["sample_data", "extra/*.json.gz", "-"])
    """
    refs: list[SourceRef] = []
    for raw in paths:
        if raw == "-":
            refs.append(SourceRef(STDIN_LABEL, None))
            continue
        path = Path(raw)
        if path.is_dir():
            refs.extend(_walk(path))
        elif path.is_file():
            refs.append(SourceRef(raw, path))
        elif glob.has_magic(raw):
            matches = sorted(m for m in glob.glob(raw, recursive=True) if not _in_store(Path(m)))
            if not matches:
                raise InputError(Location(raw), "the pattern matches no file")
            refs.extend(expand_paths(matches))
        else:
            raise InputError(Location(raw), "no such file or directory")
    return refs


def _walk(root: Path) -> Iterator[SourceRef]:
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for top, dirs, files in os.walk(root, followlinks=True):
        here = Path(top)
        info = here.stat()
        if (info.st_dev, info.st_ino) in seen:  # a symlink back up the tree
            dirs[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        # Never descend into a cbrq store: its manifest is no dump, and a store
        # kept inside its own input directory would otherwise feed itself.
        dirs[:] = [d for d in dirs if not is_store_dir(here / d)]
        found.extend(
            here / name for name in files if not name.startswith(".") and is_dump_name(name)
        )
    for path in sorted(found):
        yield SourceRef(str(path), path)


def _in_store(path: Path) -> bool:
    return any(is_store_dir(parent) for parent in path.parents)


def is_dump_name(name: str) -> bool:
    """Whether a directory walk reads a file of this name (``*.json``, ``*.ndjson.gz``, ...).

    Example: ``is_dump_name("page-1.json.gz")`` -> ``True``.
    """
    name = name.lower().removesuffix(".gz")
    return name.endswith(DUMP_SUFFIXES)


def source_size(ref: SourceRef) -> int:
    """About how many bytes of JSON ``ref`` holds (a gzip file by its trailer; stdin: 0).

    Example: ``sum(source_size(r) for r in expand_paths(["dumps"]))``.
    """
    if ref.path is None:
        return 0
    try:
        with open(ref.path, "rb") as handle:
            if handle.read(2) != b"\x1f\x8b":
                return ref.path.stat().st_size
            handle.seek(-4, 2)  # ISIZE: the uncompressed size modulo 2**32
            return int.from_bytes(handle.read(4), "little")
    except OSError:
        return 0


# --- reading bytes ----------------------------------------------------------


def read_source(ref: SourceRef) -> Source:
    """Read a file (or stdin), gunzip it if needed and check it is UTF-8.

    Example: ``read_source(SourceRef("p1.json.gz", Path("p1.json.gz"))).data``.
    """
    try:
        # A read may wait (a pipe, a terminal, a slow mount) and holds nothing to
        # clean up: SIGINT/SIGTERM end it at once (engine.interrupts).
        with interrupts.raising():
            raw = sys.stdin.buffer.read() if ref.path is None else ref.path.read_bytes()
    except OSError as err:
        raise InputError(Location(ref.label), f"cannot read: {err.strerror}") from err
    data = _gunzip(ref.label, raw) if raw[:2] == b"\x1f\x8b" else raw
    # A UTF-8 byte order mark (Windows tools write one) is no part of the JSON text.
    data = data.removeprefix(_BOM)
    _check_utf8(ref.label, data)
    return Source(ref.label, data, hashlib.sha256(raw).hexdigest(), len(raw))


def _gunzip(label: str, raw: bytes) -> bytes:
    try:
        return gzip.decompress(raw)
    except EOFError as err:
        raise InputError(Location(label), "truncated gzip data (the file ends early)") from err
    except (OSError, zlib.error) as err:
        raise InputError(Location(label), f"corrupt gzip data: {err}") from err


def _check_utf8(label: str, data: bytes) -> None:
    if data.isascii():
        return
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        where = f"line {line}, byte {err.start}"
        bad = data[err.start : err.start + 4].hex(" ")
        raise InputError(Location(label, where), f"invalid UTF-8 (bytes {bad})") from err
