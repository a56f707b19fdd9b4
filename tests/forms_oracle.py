"""The differential oracle for the native reader: cbrq's previous dump splitter.

This is the pure-Python (msgspec) reader that cut dumps into records before the
native core (``native/``, :mod:`engine._native`) took the job. It is no longer an
engine path; tests/test_native.py holds :mod:`engine.ingest.forms` to it on
generated dumps of every form. :func:`unknown_keys_of` is the definition of the
unknown keys a batch holds, written plainly (one ``json.loads`` per record).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

import msgspec

from engine import _native
from engine.errors import InputError, Location
from engine.ingest.sources import Source
from engine.spec import RESPONSE_KEYS

#: What JSON counts as whitespace (Python's strip() also takes \f and \v).
_BLANK: Final[bytes] = b" \t\r\n"

_RAW_OBJECT: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])
_RAW_LIST: Final = msgspec.json.Decoder(list[msgspec.Raw])
_RAW: Final = msgspec.json.Decoder(msgspec.Raw)


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
    #: The response's ``count``, when it is a page that gives one (SPEC §6's check).
    count: int | None = None

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
    count = _check_count(location, top)
    if not is_list:
        return [Chunk(kind, source.label, where, first_row, [top[key]])]
    try:
        records = _RAW_LIST.decode(top[key])
    except msgspec.DecodeError as err:
        raise InputError(location, f"'{key}' must be a list of records ({err})") from err
    return [Chunk(kind, source.label, where, first_row, records, count=count)]


def _check_count(location: Location, top: dict[str, msgspec.Raw]) -> int | None:
    if "count" not in top:
        return None
    try:
        return msgspec.json.decode(top["count"], type=int)
    except msgspec.DecodeError as err:
        raise InputError(location, "'count' must be an integer") from err


def _encode(top: dict[str, msgspec.Raw]) -> bytes:
    return msgspec.json.encode(top)


# --- unknown keys, by definition ----------------------------------------------


def unknown_keys_of(
    records: list[bytes], known: frozenset[str]
) -> tuple[set[str], set[tuple[str, ...]]]:
    """Key names outside ``known`` at any depth in ``records``, and the paths of those
    keys and of every key under them (a list's elements share its path), down to
    ``_native.PATH_DEPTH`` keys.

    Example: ``unknown_keys_of([b'{"a":{"b":1}}'], frozenset())`` ->
    ``({"a", "b"}, {("a",), ("a", "b")})``.
    """
    names: set[str] = set()
    paths: set[tuple[str, ...]] = set()

    def walk(value: object, prefix: tuple[str, ...], under: bool) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item, prefix, under)
        elif isinstance(value, dict):
            for key, inner in value.items():
                path = (*prefix, key)
                unknown = key not in known
                if unknown:
                    names.add(key)
                if (unknown or under) and len(path) <= _native.PATH_DEPTH:
                    paths.add(path)
                walk(inner, path, under or unknown)

    for record in records:
        walk(json.loads(record, object_pairs_hook=_pairs), (), False)
    return names, paths


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """Objects keep every key, a repeated one too (its last value)."""
    return dict(pairs)
