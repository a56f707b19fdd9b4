"""Types of cbrq's native ingest core (the crate in ``native/``, built by maturin).

Every function releases the GIL while it works. Records come back as
``(text, offsets)``: the records back to back and ``n + 1`` little-endian int64
offsets (``numpy.frombuffer(offsets, "<i8")``).
"""

from typing import Final

from typing_extensions import Buffer

#: Arrays and objects nested deeper than this are refused.
MAX_DEPTH: Final[int]
#: Unknown keys' paths are kept this many keys deep at most.
PATH_DEPTH: Final[int]

class JsonSyntaxError(ValueError):
    """Not valid JSON; ``args`` are ``(message, byte offset, line or 0, too deep)``."""

    args: tuple[str, int, int, bool]

def compact(data: bytes) -> bytes:
    """The one JSON value in ``data`` without blanks between tokens."""

def lines(data: bytes) -> tuple[bytes, bytes, bytes]:
    """Each non-blank NDJSON line compacted: ``(text, offsets, line numbers)``."""

def members(text: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """The members of the object at ``text[start:end]``: ``(key as written, start, end)``."""

def elements(text: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """The spans of the elements of the array at ``text[start:end]``."""

def records(text: bytes, start: int, end: int) -> tuple[bytes, bytes]:
    """The elements of the array at ``text[start:end]`` back to back, as records."""

def join_lines(text: bytes, offsets: bytes) -> bytes:
    """The records one per line."""

def instants(
    data: Buffer, offsets: Buffer, validity: Buffer | None, offset: int, length: int
) -> tuple[bytes, bytes, int]:
    """The timestamps of an Arrow large-string column (its buffers, offset and length)
    parsed to UTC microseconds: ``(int64 values, validity bitmap, null count)``."""

def unknown_keys(text: bytes, known: list[str]) -> tuple[list[str], list[list[str]]]:
    """Key names outside ``known`` at any depth, and their paths (with every key under them)."""
