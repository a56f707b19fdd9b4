"""Phase 1: a file's bytes -> raw pages, one function per dump form.

Cuts a :class:`~engine.ingest.sources.Source` into :class:`Chunk` objects:
runs of raw JSON records of one kind (backups, vaults or members), tagged
with where they came from. The byte work is native (:mod:`engine._native`,
the crate in ``native/``): one pass per file checks the JSON grammar and
drops the blanks between tokens, and a chunk's records come out as one
buffer and an offsets array (:class:`Records`, the shape of an Arrow string
column), so no Python object is made per record. Nothing is typed here;
:mod:`engine.ingest.normalize` does that column-wise. This module decides
only what each response is (one Python step per response, never per record).

Dump forms (SPEC §1), one function each: one response (or one bare backup)
per file (``_split_response``), a JSON array of responses (``_split_array``),
NDJSON of responses or of bare backups (``_split_ndjson``);
:func:`split_source` recognises which.

Guarantees: every problem raises :class:`~engine.errors.InputError` naming
the file and, where it can, the line or response; records keep their file
order; the text of a record is kept as written (numbers and escapes
verbatim) except for whitespace between tokens, which is dropped.

Example::

    chunks = split_source(read_source(SourceRef("p1.json", Path("p1.json"))))
    print([(c.kind, len(c.records)) for c in chunks])
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, overload

import numpy as np
import numpy.typing as npt

from engine import _native
from engine.errors import InputError, Location
from engine.ingest.sources import Source
from engine.spec import RESPONSE_KEYS

#: What JSON counts as whitespace (Python's strip() also takes \f and \v).
_BLANK: Final[bytes] = b" \t\r\n"
#: A span of compact text: where a value starts and ends.
Span = tuple[int, int]


@dataclass(frozen=True, eq=False)
class Records:
    """Compact JSON records back to back, and where each starts (``n + 1`` offsets).

    Indexing gives one record's bytes; slicing gives :class:`Records` again.

    Example::

        records = Records.of([b'{"id":"a"}', b'{"id":"b"}'])
        assert len(records) == 2 and records[1] == b'{"id":"b"}'
        assert records[1:].text == b'{"id":"b"}'
    """

    text: bytes
    offsets: npt.NDArray[np.int64]

    @staticmethod
    def of(records: Sequence[bytes]) -> Records:
        """Records from separate texts (tests and small inputs).

        Example: ``len(Records.of([b"{}", b"{}"])) == 2``.
        """
        offsets = np.zeros(len(records) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in records], out=offsets[1:])
        return Records(b"".join(records), offsets)

    @staticmethod
    def native(pair: tuple[bytes, bytes]) -> Records:
        """Records from the native core's ``(text, little-endian int64 offsets)``.

        Example: ``Records.native(_native.lines(b"{}\\n{}")[:2])``.
        """
        text, offsets = pair
        return Records(text, np.frombuffer(offsets, dtype="<i8").astype(np.int64, copy=False))

    @staticmethod
    def concat(parts: Sequence[Records]) -> Records:
        """All of ``parts``, one after the other.

        Example: ``len(Records.concat([a, b])) == len(a) + len(b)``.
        """
        if len(parts) <= 1:
            return parts[0] if parts else Records(b"", np.zeros(1, dtype=np.int64))
        shifts = np.cumsum([0] + [int(p.offsets[-1] - p.offsets[0]) for p in parts[:-1]])
        pairs = zip(parts, shifts, strict=True)
        offsets = [p.offsets[:-1] - p.offsets[0] + shift for p, shift in pairs]
        end = np.array([shifts[-1] + parts[-1].offsets[-1] - parts[-1].offsets[0]])
        text = b"".join(p.text[p.offsets[0] : p.offsets[-1]] for p in parts)
        return Records(text, np.concatenate([*offsets, end]).astype(np.int64))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> Records: ...

    def __getitem__(self, index: int | slice) -> bytes | Records:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise ValueError("records are sliced in order, step 1")
            stop = max(start, stop)
            low, high = int(self.offsets[start]), int(self.offsets[stop])
            return Records(self.text[low:high], self.offsets[start : stop + 1] - low)
        if index < 0:
            index += len(self)
        return self.text[int(self.offsets[index]) : int(self.offsets[index + 1])]

    def __iter__(self) -> Iterator[bytes]:
        return (self[i] for i in range(len(self)))

    def lines(self) -> bytes:
        """The records one per line, for a newline-delimited JSON reader.

        Example: ``Records.of([b"{}", b"[]"]).lines() == b"{}\\n[]"``.
        """
        if not len(self):
            return b""
        if self.offsets[0] != 0:
            return self[0:].lines()
        return _native.join_lines(self.text, self.offsets.astype("<i8").tobytes())


@dataclass(frozen=True)
class Chunk:
    """Raw records of one kind from one response (or one NDJSON file).

    ``where`` names the response inside the file (``"response 2"``, ``"line 7"``
    or ``""``); ``first_row`` is the index in the file of the first record;
    ``ndjson`` holds the file's text for NDJSON of bare records, where record
    *i* sits on the *i*-th non-blank line (counted only when a message needs it).

    Example: ``Chunk("backups", "p1.json", "", 0, Records.of([b'{"id":"a"}']))``.
    """

    kind: str
    source: str
    where: str
    first_row: int
    records: Records
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
    data = source.data
    # Positions, not stripped copies: a dump may be gigabytes.
    start, end = _content(data)
    head = data[start : start + 1]
    if not head:
        raise InputError(Location(source.label), "the file is empty")
    if head == b"[":
        return _split_array(source, _compact(source))
    newline = data.find(b"\n", start, end)
    several = newline != -1
    if head != b"{":
        if several:  # NDJSON whose first line is no object: each line says what it is
            return _split_ndjson(source)
        raise _not_json(source.label, data, "expected a JSON object or array")
    if several and _is_whole_object(data[start:newline]):
        return _split_ndjson(source)
    text = _compact(source)
    return _split_response(source, text, (0, len(text)), "", 0)


def _content(data: bytes) -> tuple[int, int]:
    """Where ``data`` starts and ends without the JSON blanks around it.

    Example: ``_content(b" [1]\\n")`` -> ``(1, 4)``.
    """
    start, end = 0, len(data)
    while start < end and data[start] in _BLANK:
        start += 1
    while end > start and data[end - 1] in _BLANK:
        end -= 1
    return start, end


def _is_whole_object(line: bytes) -> bool:
    try:
        return _native.compact(line)[:1] == b"{"
    except _native.JsonSyntaxError:
        return False


def _compact(source: Source) -> bytes:
    """The document without insignificant whitespace (numbers and escapes kept verbatim).

    This also checks the JSON syntax of the whole file in one pass.
    """
    try:
        return _native.compact(source.data)
    except _native.JsonSyntaxError as err:
        raise _syntax(source.label, source.data, err) from None


def _syntax(label: str, data: bytes, err: _native.JsonSyntaxError) -> InputError:
    """The message for the native reader's complaint about ``data``."""
    message, _offset, line, too_deep = err.args
    if too_deep:
        return InputError(Location(label), "not valid JSON: nested too deeply")
    if line:
        return InputError(Location(label, f"line {line}"), f"not valid JSON: {message}")
    return _not_json(label, data, message)


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


def _members(text: bytes, span: Span) -> dict[str, Span]:
    """The members of the object at ``span`` of compact ``text``: key -> value span.

    A key given twice keeps its last value, as a JSON object decoder does.
    """
    return {_key(raw): (start, end) for raw, start, end in _native.members(text, *span)}


def _key(raw: bytes) -> str:
    return str(json.loads(b'"' + raw + b'"')) if b"\\" in raw else raw.decode()


def _kind_of(text: bytes, span: Span) -> str:
    """What JSON value sits at ``span``, in words (for messages)."""
    head = text[span[0] : span[0] + 1]
    kinds = {b"{": "an object", b"[": "an array", b'"': "a string", b"n": "null"}
    return kinds.get(head, "true or false" if head in (b"t", b"f") else "a number")


def _split_array(source: Source, text: bytes) -> list[Chunk]:
    chunks: list[Chunk] = []
    for number, span in enumerate(_native.elements(text, 0, len(text)), start=1):
        where = f"response {number}"
        if text[span[0] : span[0] + 1] != b"{":
            raise InputError(Location(source.label, where), "expected a JSON object")
        row = chunks[-1].first_row + len(chunks[-1].records) if chunks else 0
        chunks.extend(_split_response(source, text, span, where, row))
    return chunks


def _split_ndjson(source: Source) -> list[Chunk]:
    data = source.data.replace(b"\r", b" ")
    try:
        text, offsets, numbers = _native.lines(data)
    except _native.JsonSyntaxError as err:
        raise _syntax(source.label, data, err) from None
    lines = Records.native((text, offsets))
    heads = np.frombuffer(text, dtype=np.uint8)[lines.offsets[:-1]]
    objects = np.flatnonzero(heads == ord("{"))
    # The first line that is an object says whether lines are responses or records.
    first = _members(text, _span(lines, int(objects[0]))) if len(objects) else None
    if first is None or _response_key(first) is None:
        return [Chunk("backups", source.label, "", 0, lines, data)]
    line_numbers = np.frombuffer(numbers, dtype="<i8")
    chunks: list[Chunk] = []
    row = 0
    for index in range(len(lines)):
        where = f"line {int(line_numbers[index])}"
        span = _span(lines, index)
        if text[span[0] : span[0] + 1] != b"{":
            reason = f"not valid JSON: expected a JSON object, got {_kind_of(text, span)}"
            raise InputError(Location(source.label, where), reason)
        for chunk in _split_response(source, text, span, where, row):
            chunks.append(chunk)
            row += len(chunk.records)
    return chunks


def _span(records: Records, index: int) -> Span:
    return int(records.offsets[index]), int(records.offsets[index + 1])


def _response_key(top: dict[str, Span]) -> str | None:
    keys = [key for key in RESPONSE_KEYS if key in top]
    return keys[0] if len(keys) == 1 else (None if not keys else "")


def _split_response(
    source: Source, text: bytes, whole: Span, where: str, first_row: int
) -> list[Chunk]:
    """The chunks of the response (or bare record) at ``whole``, an object of ``text``."""
    location = Location(source.label, where)
    top = _members(text, whole)
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
        record = Records.of([text[slice(*whole)]])
        return [Chunk("backups", source.label, where, first_row, record)]
    kind, is_list = RESPONSE_KEYS[key]
    count = _check_count(location, text, top)
    span = top[key]
    if not is_list:
        return [Chunk(kind, source.label, where, first_row, Records.of([text[slice(*span)]]))]
    if text[span[0] : span[0] + 1] != b"[":
        reason = f"'{key}' must be a list of records (got {_kind_of(text, span)})"
        raise InputError(location, reason)
    records = Records.native(_native.records(text, *span))
    return [Chunk(kind, source.label, where, first_row, records, count=count)]


def _check_count(location: Location, text: bytes, top: dict[str, Span]) -> int | None:
    if "count" not in top:
        return None
    value = text[slice(*top["count"])]
    # An integer of at most 19 digits (int64, and far inside Python's digit limit).
    if not value.lstrip(b"-").isdigit() or len(value.lstrip(b"-")) > 19:
        raise InputError(location, "'count' must be an integer")
    return int(value)
