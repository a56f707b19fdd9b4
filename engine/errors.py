"""The one exception tree of cbrq.

::

    CbrqError                      every error cbrq raises on purpose
    ├── InputError                 a dump file cbrq cannot take (CLI exit 1)
    │   ├── RecordError            one record in it is bad (field and value known)
    │   └── BadFiles               several files cannot be taken: each one's first problem
    ├── StoreError                 the inventory on disk is missing or damaged (CLI exit 1)
    ├── QueryError (ValueError)    bad query parameters, all of them (HTTP 400, CLI exit 2)
    ├── MissingExtra               an optional dependency is not installed (CLI exit 2)
    └── NotFoundError              unknown backup or vault on a show call (HTTP 404)
    Interrupted (KeyboardInterrupt) SIGINT/SIGTERM stopped a write (CLI exit 130/143)
    engine.testing.MissingTestingExtra (ModuleNotFoundError)  engine.testing.strategies
                                   without hypothesis (kept there: engine.testing imports
                                   nothing of the engine but spec)

Every error knows how to say itself in one message that names the file,
the record, the field and what is allowed; the CLI prints ``str(error)`` and
uses ``exit_status``, in one place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass


class CbrqError(Exception):
    """Base of every error cbrq raises on purpose.

    Example::

        try:
            ingest_paths(["dump.json"], store)
        except CbrqError as err:
            print(err, "exit", err.exit_status)
    """

    exit_status: int = 1


@dataclass(frozen=True)
class Location:
    """Where in the input a problem sits.

    ``where`` is a human phrase such as ``"response 2, record 17"`` or
    ``"line 9"``; it is empty when the whole file is at fault.

    Example: ``Location("dumps/p1.json", "record 3")``.
    """

    source: str
    where: str = ""

    def __str__(self) -> str:
        return f"{self.source}: {self.where}" if self.where else self.source


class InputError(CbrqError):
    """A dump file that cannot be ingested (malformed JSON, bad gzip, ...).

    Example: ``InputError(Location("a.json"), "not JSON: unexpected character at byte 12")``.
    """

    def __init__(self, location: Location, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"{location}: {reason}")


class RecordError(InputError):
    """One record of a dump is bad: a field has the wrong type or value.

    Example::

        RecordError(Location("a.json", "record 3"), "resource_size", "40GB",
                    "expected an integer")
    """

    def __init__(self, location: Location, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        shown = _shorten(_as_json(value))
        super().__init__(location, f"field {field!r} = {shown}: {reason}")


def _shorten(text: str, width: int = 80) -> str:
    """``text`` cut to ``width`` characters, saying how long it was."""
    if len(text) <= width:
        return text
    return f"{text[: width - 3]}... ({len(text):,} characters)"


def _as_json(value: object) -> str:
    """``value`` as it would be written in JSON (``null``, ``"a\\n"``), for messages."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


class BadFiles(InputError):
    """Several dump files a strict ingest cannot take: the first problem of each, in input order.

    Example::

        a, b = InputError(Location("a.json"), "not JSON"), InputError(Location("b.json"), "...")
        str(BadFiles([a, b])).splitlines()[1] == "  a.json: not JSON"
    """

    def __init__(self, problems: Sequence[InputError]) -> None:
        self.problems = list(problems)
        self.location, self.reason = problems[0].location, problems[0].reason
        lines = "".join(f"\n  {problem}" for problem in self.problems)
        CbrqError.__init__(
            self,
            f"{len(self.problems)} files cannot be ingested (the first problem of each); "
            f"nothing was ingested:{lines}",
        )


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a write of the inventory (exit 128 + the signal: 130, 143).

    A :class:`KeyboardInterrupt`, so code that handles Ctrl-C handles it;
    ``committed`` says whether the inventory already held the work when
    the signal was acted on (it came during or after the commit).

    Example: ``Interrupted(signal.SIGTERM).exit_status`` -> ``143``.
    """

    def __init__(self, signum: int, *, committed: bool = False) -> None:
        self.signum = signum
        self.committed = committed
        self.exit_status = 128 + signum
        super().__init__(f"interrupted by signal {signum}")

    def message(self, work: str) -> str:
        """What the user is told, ``work`` naming what was done ("this ingest").

        Example: ``Interrupted(2).message("this ingest")`` ->
        ``"interrupted; the inventory is unchanged"``.
        """
        if self.committed:
            return f"interrupted after the commit; the inventory holds {work}"
        return "interrupted; the inventory is unchanged"


class MissingExtra(CbrqError):
    """What was asked needs an optional dependency that is not installed (CLI exit 2).

    Example: ``raise MissingExtra("--engine duckdb", "duckdb", "duckdb")`` ->
    ``--engine duckdb needs duckdb, which is not installed: pip install 'cbrq[duckdb]'``.
    """

    exit_status = 2

    def __init__(
        self, what: str, module: str, extra: str, *, how: str | None = None, verb: str = "needs"
    ) -> None:
        fix = how or f"pip install 'cbrq[{extra}]'"
        super().__init__(f"{what} {verb} {module}, which is not installed: {fix}")


class IncompleteExport(CbrqError):
    """A call declared a snapshot whose pages do not form a complete export (exit 1).

    Example: ``raise IncompleteExport(["project p1: the backups pages give count 3 ..."])``.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        super().__init__(
            "--snapshot: these pages are not one complete export: "
            + "; ".join(problems[:3])
            + more
            + "; the inventory is unchanged (without --snapshot the records are only added)"
        )


class NeverSeen(CbrqError):
    """``cbrq history`` was asked about backups no ingest of the store holds (exit 2).

    Example: ``str(NeverSeen(["b9"]))`` -> ``"never seen in this inventory: b9"``.
    """

    exit_status = 2

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = list(ids)
        super().__init__("never seen in this inventory: " + ", ".join(self.ids))


class StoreError(CbrqError):
    """The inventory directory is missing, damaged or of another version.

    Example: ``StoreError("cbrq-store: no inventory here (run `cbrq ingest` first)")``.
    """


@dataclass(frozen=True)
class Problem:
    """One bad query parameter: its name, value, what is wrong and what is allowed.

    Example: ``Problem("status", "availble", "not a status", "available, error, ...",
    "did you mean 'available'?")``.
    """

    name: str
    value: str | None
    reason: str
    allowed: str = ""
    hint: str = ""

    def __str__(self) -> str:
        shown = self.name if self.value is None else f"{self.name}={_shorten(repr(self.value))}"
        text = f"{shown}: {self.reason}"
        if self.allowed:
            text += f" (allowed: {self.allowed})"
        if self.hint:
            text += f"; {self.hint}"
        return text


class QueryError(CbrqError, ValueError):
    """A bad ListBackups query: every bad parameter, reported at once.

    Carries the API's answer: HTTP 400 with ``{"error_code": "BackupService.9900",
    "error_msg": ...}``; the CLI exits 2.

    Example::

        try:
            inventory.query("stauts=available")
        except QueryError as err:
            print(err.http_status, err.body())
    """

    exit_status = 2
    http_status = 400
    error_code = "BackupService.9900"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("invalid query: " + "; ".join(str(p) for p in problems))

    def body(self) -> dict[str, str]:
        """The API error body for this error."""
        return {"error_code": self.error_code, "error_msg": str(self)}


class NotFoundError(CbrqError):
    """An unknown backup or vault on a show call (HTTP 404).

    Example: ``NotFoundError("BackupService.6200", "backup b1 not found")``.
    """

    http_status = 404

    def __init__(self, error_code: str, message: str) -> None:
        self.error_code = error_code
        super().__init__(message)

    def body(self) -> dict[str, str]:
        """The API error body for this error."""
        return {"error_code": self.error_code, "error_msg": str(self)}


#: What an OS error means for the user, by errno name, and what to do.
_OS_HINTS: dict[str, str] = {
    "ENOSPC": "no space left on the device: free some space and run again",
    "EDQUOT": "disk quota exceeded: free some space and run again",
    "EROFS": "read-only file system: write somewhere writable",
    "EACCES": "permission denied: check the file's owner and mode",
    "EPERM": "operation not permitted: check the file's owner and mode",
    "ENOENT": "no such file or directory",
    "EISDIR": "is a directory: name a file",
    "ENOTDIR": "a part of the path is not a directory",
    "EIO": "input/output error: the device failed; check it, then run again",
}


def os_error_message(err: OSError, where: str | None = None) -> str:
    """One line for an :class:`OSError`: the file it is about, what happened and what to do.

    ``where`` names the thing at fault when the error names no file (pyarrow
    reports its own I/O failures as OSError without a file name).

    Example: ``os_error_message(OSError(28, "No space left on device", "out.json"))``
    -> ``"out.json: no space left on the device: free some space and run again"``.
    """
    import errno

    name = errno.errorcode.get(err.errno or -1, "")
    what = _OS_HINTS.get(name) or err.strerror or str(err) or type(err).__name__
    if err.filename is None:
        return f"{where}: {what}" if where else what
    target = f" -> {err.filename2}" if err.filename2 is not None else ""
    return f"{err.filename}{target}: {what}"


#: The libraries whose exceptions mean a file they read is damaged or foreign
#: (DuckDB's live in its C module ``_duckdb``; Spark's reach Python through py4j).
_ENGINE_MODULES: frozenset[str] = frozenset(
    {"polars", "pyarrow", "duckdb", "_duckdb", "pyo3_runtime", "py4j", "pyspark"}
)


def is_engine_failure(err: BaseException) -> bool:
    """Whether ``err`` comes from polars, pyarrow, DuckDB or Spark (a panic of polars included).

    Example: ``is_engine_failure(polars.exceptions.ComputeError("x"))`` -> ``True``.
    """
    return (
        any(
            cls.__module__.split(".")[0] in _ENGINE_MODULES
            for cls in type(err).__mro__
            if cls not in (BaseException, Exception, object)
        )
        or type(err).__name__ == "PanicException"
    )


def engine_failure_message(err: BaseException, store: str) -> str:
    """The message for a failure inside polars, pyarrow or DuckDB while ``store`` was read.

    Example: ``engine_failure_message(ComputeError("bad"), "inv")`` -> ``"inv: cannot read
    the inventory (ComputeError: bad); it may be damaged: check it with `cbrq check --store inv`"``.
    """
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    detail = _shorten(lines[0] if lines else "", 200)
    kind = type(err).__name__
    said = f"{kind}: {detail}" if detail else kind
    return (
        f"{store}: cannot read the inventory ({said}); "
        f"it may be damaged: check it with `cbrq check --store {store}`"
    )


#: The exit status of an unexpected failure (BSD's EX_SOFTWARE): a bug or unforeseen damage.
INTERNAL_ERROR_STATUS: int = 70


def internal_error_message(err: BaseException, store: str) -> str:
    """The message for an exception no part of cbrq expected, while ``store`` was in use.

    Example: ``internal_error_message(KeyError("tables"), "inv")`` -> ``"internal error
    (KeyError: 'tables') while using inv; ..."``.
    """
    detail = _shorten(" ".join(str(err).split()), 200)
    said = f"{type(err).__name__}: {detail}" if detail else type(err).__name__
    return (
        f"internal error ({said}) while using {store}: the store may be damaged "
        f"(check it with `cbrq check --store {store}`); CBRQ_DEBUG=1 shows the traceback"
    )
