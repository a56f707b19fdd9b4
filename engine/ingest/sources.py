"""Phase 1: dump files -> raw pages.

Turns the paths a user names into :class:`Chunk` objects: runs of raw JSON
records of one kind (backups, vaults or members), each still undecoded bytes
(``msgspec.Raw``), tagged with where they came from. Nothing is typed here;
:mod:`engine.ingest.normalize` does that column-wise.

Input forms (SPEC §1): one response per file, a JSON array of responses,
NDJSON of responses or of bare backups, any of them gzip-compressed (found by
its magic bytes, whatever the name); directories expand recursively to their
``*.json``, ``*.ndjson``, ``*.jsonl`` files (optionally ``.gz``) in sorted path
order; glob patterns expand sorted; ``-`` is standard input.

Guarantees: every problem raises :class:`~engine.errors.InputError` naming
the file and, where it can, the line or response; records keep their file
order; the text of a record is kept as written (numbers and escapes
verbatim) except for whitespace between tokens, which is dropped.
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

import msgspec

from engine import interrupts
from engine.errors import InputError, Location
from engine.spec import DUMP_SUFFIXES, RESPONSE_KEYS
from engine.store.manifest import FORMAT, GENERATION_DIR, MANIFEST

STDIN_LABEL: Final[str] = "<stdin>"
_BOM: Final[bytes] = b"\xef\xbb\xbf"
#: What JSON counts as whitespace (Python's strip() also takes \f and \v).
_BLANK: Final[bytes] = b" \t\r\n"

_RAW_OBJECT: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])
_RAW_LIST: Final = msgspec.json.Decoder(list[msgspec.Raw])
_RAW: Final = msgspec.json.Decoder(msgspec.Raw)


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


@dataclass(frozen=True)
class Chunk:
    """Raw records of one kind from one response (or one NDJSON file).

    ``where`` names the response inside the file (``"response 2"``, ``"line 7"``
    or ``""``); ``first_row`` is the index in the file of the first record;
    ``ndjson`` holds the file's text for NDJSON of bare records, where record
    *i* sits on the *i*-th non-blank line (counted only when a message needs it).

    Example: ``Chunk("backups", "p1.json", "", 0, records)``.
    """

    kind: str
    source: str
    where: str
    first_row: int
    records: list[msgspec.Raw]
    ndjson: bytes | None = None

    def locate(self, index: int) -> Location:
        """The location of record ``index`` of this chunk, for messages.

        Example: ``chunk.locate(3)`` -> ``p1.json: response 2, record 4``.
        """
        if self.ndjson is not None:
            return Location(self.source, f"line {_nth_nonblank_line(self.ndjson, index)}")
        prefix = f"{self.where}, " if self.where else ""
        return Location(self.source, f"{prefix}record {index + 1}")


def _nth_nonblank_line(text: bytes, index: int) -> int:
    seen = -1
    for number, line in enumerate(text.split(b"\n"), start=1):
        if line.strip():
            seen += 1
            if seen == index:
                return number
    return index + 1


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
    return (path / ".lock").is_file() and any(
        GENERATION_DIR.fullmatch(child.name) for child in path.iterdir()
    )


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


# --- splitting into chunks --------------------------------------------------


def split_source(source: Source) -> list[Chunk]:
    """Recognise the form of a file and cut it into chunks of raw records.

    Example: ``[c.kind for c in split_source(read_source(ref))]`` -> ``["backups"]``.
    """
    try:
        return _split(source)
    except RecursionError as err:
        # msgspec gives up on arrays/objects nested thousands deep.
        raise InputError(Location(source.label), "not valid JSON: nested too deeply") from err


def _split(source: Source) -> list[Chunk]:
    data = source.data
    body = data.lstrip(_BLANK)
    head = body[:1]
    if not head:
        raise InputError(Location(source.label), "the file is empty")
    if head == b"[":
        return _split_array(source, _compact(source))
    several = b"\n" in body.rstrip(_BLANK)
    if head != b"{":
        if several:  # NDJSON whose first line is no object: each line says what it is
            return _split_ndjson(source)
        raise _not_json(source.label, data, "expected a JSON object or array")
    first_line = body.split(b"\n", 1)[0]
    if _is_whole_object(first_line) and several:
        return _split_ndjson(source)
    top = _RAW_OBJECT.decode(_compact(source))
    return _split_response(source, top, "", 0)


def _is_whole_object(line: bytes) -> bool:
    try:
        _RAW_OBJECT.decode(line)
    except msgspec.DecodeError:
        return False
    return True


def _compact(source: Source) -> bytes:
    """The document without insignificant whitespace (numbers and escapes kept verbatim).

    This also checks the JSON syntax of the whole file in one pass.
    """
    try:
        return msgspec.json.format(source.data, indent=-1)
    except msgspec.DecodeError as err:
        raise _not_json(source.label, source.data, str(err)) from err


def _not_json(label: str, data: bytes, detail: str) -> InputError:
    return InputError(Location(label), f"not valid JSON: {_with_line(data, detail)}")


def _with_line(data: bytes, detail: str) -> str:
    marker = "(byte "
    if marker in detail:
        try:
            offset = int(detail.rsplit(marker, 1)[1].rstrip(")"))
        except ValueError:
            return detail
        line = data.count(b"\n", 0, offset) + 1
        return f"{detail}, line {line}"
    return detail


def _split_array(source: Source, flat: bytes) -> list[Chunk]:
    items = _RAW_LIST.decode(flat)
    chunks: list[Chunk] = []
    for number, item in enumerate(items, start=1):
        where = f"response {number}"
        try:
            top = _RAW_OBJECT.decode(item)
        except msgspec.DecodeError as err:
            raise InputError(Location(source.label, where), "expected a JSON object") from err
        row = chunks[-1].first_row + len(chunks[-1].records) if chunks else 0
        chunks.extend(_split_response(source, top, where, row))
    return chunks


def _split_ndjson(source: Source) -> list[Chunk]:
    data = source.data.replace(b"\r", b" ")
    lines = data.split(b"\n")
    # The first line that is an object says whether lines are responses or records.
    top = next((obj for obj in map(_object_or_none, lines) if obj is not None), None)
    if top is None or _response_key(top) is None:
        return [_bare_lines(source, data, lines)]
    chunks: list[Chunk] = []
    row = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            obj = _RAW_OBJECT.decode(line)
        except msgspec.DecodeError as err:
            raise InputError(Location(source.label, where), f"not valid JSON: {err}") from err
        for chunk in _split_response(source, obj, where, row):
            chunks.append(chunk)
            row += len(chunk.records)
    return chunks


def _object_or_none(line: bytes) -> dict[str, msgspec.Raw] | None:
    try:
        return _RAW_OBJECT.decode(line) if line.strip(_BLANK) else None
    except msgspec.DecodeError:
        return None


def _bare_lines(source: Source, data: bytes, lines: list[bytes]) -> Chunk:
    try:
        records = _RAW.decode_lines(data)
    except msgspec.DecodeError as err:
        number = _first_bad_line(lines)
        raise InputError(
            Location(source.label, f"line {number}"), f"not valid JSON: {err}"
        ) from err
    return Chunk("backups", source.label, "", 0, records, data)


def _first_bad_line(lines: list[bytes]) -> int:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                _RAW.decode(line)
            except msgspec.DecodeError:
                return number
    return len(lines)


def _response_key(top: dict[str, msgspec.Raw]) -> str | None:
    keys = [key for key in RESPONSE_KEYS if key in top]
    return keys[0] if len(keys) == 1 else (None if not keys else "")


def _split_response(
    source: Source, top: dict[str, msgspec.Raw], where: str, first_row: int
) -> list[Chunk]:
    location = Location(source.label, where)
    key = _response_key(top)
    if key == "":
        found = ", ".join(k for k in RESPONSE_KEYS if k in top)
        raise InputError(location, f"ambiguous response: it has several record keys ({found})")
    if key is None:
        if "count" in top:
            raise InputError(
                location, "a page with 'count' but no 'backups', 'vaults' or 'members' list"
            )
        if "id" not in top:
            keys = ", ".join(sorted(top)[:8]) or "none"
            raise InputError(
                location,
                f"not a CBR response (top-level keys: {keys}); expected one of "
                + ", ".join(RESPONSE_KEYS)
                + ", or a bare backup record with 'id'",
            )
        return [Chunk("backups", source.label, where, first_row, [msgspec.Raw(_encode(top))])]
    kind, is_list = RESPONSE_KEYS[key]
    _check_count(location, top)
    if not is_list:
        return [Chunk(kind, source.label, where, first_row, [top[key]])]
    try:
        records = _RAW_LIST.decode(top[key])
    except msgspec.DecodeError as err:
        raise InputError(location, f"'{key}' must be a list of records ({err})") from err
    return [Chunk(kind, source.label, where, first_row, records)]


def _check_count(location: Location, top: dict[str, msgspec.Raw]) -> None:
    if "count" not in top:
        return
    try:
        msgspec.json.decode(top["count"], type=int)
    except msgspec.DecodeError as err:
        raise InputError(location, "'count' must be an integer") from err


def _encode(top: dict[str, msgspec.Raw]) -> bytes:
    return msgspec.json.encode(top)
