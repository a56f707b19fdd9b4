"""What the ``cbrq`` commands share: where the data is, the filter's options, the output format.

:mod:`engine.cli` (ingest, query, serve, ...), :mod:`engine.cli.analyses`
(stats, rpo, ...) and :mod:`engine.cli.report` all build on this module,
which imports none of them, so they take the same options with the same
words and turn them into an inventory, query parameters and a format the
same way. Imports click only; the engine's modules when a command runs.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, TypeVar

import click

from engine.backends import ENGINES
from engine.spec import (
    DEFAULT_MAX_AGE,
    DEFAULT_MIN_DAYS,
    DEFAULT_STUCK_HOURS,
    LONGEST_SPAN_DAYS,
    OUTPUT_FORMATS,
)

if TYPE_CHECKING:
    from engine.inventory import Inventory
    from engine.params import QueryParams
    from engine.query import Semantics

F = TypeVar("F", bound=Callable[..., Any])

STORE_HELP: Final[str] = "Inventory directory [default: $CBRQ_STORE or ./cbrq-store]."
#: Where ``ctx.meta`` keeps the ``--store`` a command was given, for error messages.
STORE_META: Final[str] = "cbrq.store"


def remember_store(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The ``--store`` callback: keeps the store in ``ctx.meta`` so errors can name it.

    Example: ``click.option("--store", callback=remember_store)``.
    """
    ctx.meta[STORE_META] = value
    return value


def store_label(ctx: click.Context) -> str:
    """The store the running command reads or writes, as its messages name it.

    Example: ``store_label(ctx)`` -> ``"cbrq-store"`` with no ``--store`` and no $CBRQ_STORE.
    """
    from engine.store.manifest import resolve_store

    return str(resolve_store(ctx.meta.get(STORE_META)))


def store_option(command: F) -> F:
    """``--store DIR``, remembered for error messages (:func:`remember_store`).

    Example: ``@store_option`` above a click command.
    """
    return click.option(
        "--store",
        "store",
        type=click.Path(file_okay=False),
        help=STORE_HELP,
        callback=remember_store,
    )(command)


#: The help of ``-f`` where the format follows the terminal.
FORMAT_HELP: Final[str] = "Output format [default: table on a terminal, else json]."


def format_option(
    choices: tuple[str, ...] = OUTPUT_FORMATS, default: str | None = None, text: str = FORMAT_HELP
) -> Callable[[F], F]:
    """``--format``/``-f`` (the parameter ``fmt``) among ``choices``.

    Example: ``@format_option(("json", "ndjson"), "json", "json: one response ...")``.
    """
    return click.option(
        "--format",
        "-f",
        "fmt",
        type=click.Choice(choices),
        default=default,
        show_default=default is not None,
        help=text,
    )


def output_option(
    default: str | None = None, text: str = "Write here instead of standard output."
) -> Callable[[F], F]:
    """``--output``/``-o FILE`` (written whole or not at all, :func:`output_file`).

    With a ``default`` the file is the default output and ``-`` means standard output.

    Example: ``@output_option()`` or ``@output_option("report.html", "The HTML file ...")``.
    """
    return click.option(
        "--output",
        "-o",
        default=default,
        show_default=default is not None,
        type=click.Path(dir_okay=False, writable=True, allow_dash=default is not None),
        callback=warn_format_name,
        help=text,
    )


def warn_format_name(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """The ``-o`` callback: a bare format name (``-o table``) is warned of, then obeyed.

    Other tools (the AWS CLI's ``--output table``) name the format with the
    option cbrq names the file with: when the value is one of the command's
    ``-f`` formats and no such file exists, say so on stderr, naming ``-f``.

    Example: ``click.option("-o", callback=warn_format_name)``.
    """
    formats = [p for p in ctx.command.params if p.name == "fmt"]
    choices = (
        formats[0].type.choices if formats and isinstance(formats[0].type, click.Choice) else ()
    )
    if value is not None and value in choices and not os.path.exists(value):
        click.echo(
            f"cbrq: warning: -o {value} writes a file named {value!r}; did you mean -f {value}?",
            err=True,
        )
    return value


#: How a TIME option is written (every one of them reads it by :func:`check_at`).
TIME_WORDS: Final[str] = (
    "now, today, yesterday, a date (2026-11-01: midnight UTC), -7d, now-24h "
    "or a timestamp (2026-11-01T06:00:00Z)"
)


def check_at(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """The callback of every TIME option, as aware UTC (or None): :data:`TIME_WORDS`.

    One grammar for ``--at``, ``--as-of``, ``--to``, ``--taken-at``,
    ``--since`` and ``--until`` (:func:`engine.instants.parse_moment`); a bad
    value is an error naming the option and every accepted form.

    Example: ``click.option("--taken-at", callback=check_at)``.
    """
    if value is None:
        return None  # unset: nothing to import (engine.analyses costs a command 0.2 s)
    from engine.analyses import parse_at

    return parse_at(value, param.opts[0] if param.opts else "--at")


def _check_duration(ctx: click.Context, param: click.Parameter, value: str) -> Any:
    from engine.analyses import parse_duration

    return parse_duration(value, "--max-age")


#: The help of ``--at``, the instant every analysis measures ages against.
AT_HELP: Final[str] = (
    f"The instant ages are measured against: {TIME_WORDS} "
    "[default: the newest updated_at of the inventory]. On a store fed --snapshot "
    "ingests, stats, rpo, retention, capacity, hygiene and report read the inventory "
    "as of an --at given."
)


def at_option(command: F) -> F:
    """``--at TIME``, parsed by :func:`check_at`; ``None``: the inventory's default.

    Example: ``@at_option`` above an analysis command.
    """
    return click.option("--at", callback=check_at, metavar="TIME", help=AT_HELP)(command)


def max_age_option(text: str) -> Callable[[F], F]:
    """``--max-age`` (rpo), default :data:`engine.spec.DEFAULT_MAX_AGE`, parsed to a timedelta.

    Example: ``@max_age_option("Oldest acceptable good backup ...")``.
    """
    return click.option(
        "--max-age", default=DEFAULT_MAX_AGE, show_default=True, callback=_check_duration, help=text
    )


def min_days_option(text: str) -> Callable[[F], F]:
    """``--min-days`` (retention), default :data:`engine.spec.DEFAULT_MIN_DAYS`.

    Example: ``@min_days_option("Shortest acceptable retention ...")``.
    """
    return click.option(
        "--min-days",
        default=DEFAULT_MIN_DAYS,
        show_default=True,
        type=click.IntRange(0, LONGEST_SPAN_DAYS),
        help=text,
    )


def stuck_hours_option(text: str) -> Callable[[F], F]:
    """``--stuck-hours`` (hygiene), default :data:`engine.spec.DEFAULT_STUCK_HOURS`.

    Example: ``@stuck_hours_option("A backup in a passing status ...")``.
    """
    return click.option(
        "--stuck-hours",
        default=DEFAULT_STUCK_HOURS,
        show_default=True,
        type=click.IntRange(0, LONGEST_SPAN_DAYS * 24),
        help=text,
    )


def from_option(text: str) -> Callable[[F], F]:
    """``--from PATH`` (repeatable, the parameter ``dumps``): dump files instead of a store.

    Example: ``@from_option("Serve dump files directly, without a store (repeatable).")``.
    """
    return click.option("--from", "dumps", multiple=True, metavar="PATH", help=text)


def _where_options(verb: str) -> list[Callable[[F], F]]:
    """``--store`` and ``--from``: which inventory a command reads."""
    return [
        store_option,
        from_option(
            f"{verb} dump files directly: parsed into memory, nothing written (repeatable)."
        ),
    ]


def _asking_options() -> list[Callable[[F], F]]:
    """``--project``, ``-p``, ``--exact-names``, ``--time-field``: who asks, and how."""
    return [
        click.option(
            "--project",
            help="The caller's project ID (the API's path {project_id}); "
            "enables own_type (default private) and member_status.",
        ),
        click.option(
            "--param",
            "-p",
            "params",
            multiple=True,
            metavar="KEY=VALUE",
            help="A query parameter (repeatable); merged with the query string.",
        ),
        click.option(
            "--exact-names",
            is_flag=True,
            help="name/resource_name must match exactly (default: substring).",
        ),
        click.option(
            "--time-field",
            type=click.Choice(["created_at", "protected_at"]),
            default="created_at",
            show_default=True,
            help="The time start_time/end_time bound.",
        ),
    ]


def _engine_options() -> list[Callable[[F], F]]:
    """``--engine`` and ``--spark-master``: which backend answers."""
    return [
        click.option(
            "--engine",
            type=click.Choice(list(ENGINES)),
            default=ENGINES[0],
            show_default=True,
            help="The backend that answers (same answers): polars in process, DuckDB "
            "SQL over the store's Parquet, or Spark (the spark extra).",
        ),
        click.option(
            "--spark-master",
            metavar="URL",
            help="With --engine spark: the master URL (default local mode; "
            "spark://host:7077 or yarn reach a cluster).",
        ),
    ]


def history_options() -> list[Callable[[F], F]]:
    """``--as-of TIME`` and ``--ever``: which instant of a store's history answers (SPEC §6)."""
    return [
        click.option(
            "--as-of",
            "as_of",
            callback=check_at,
            metavar="TIME",
            help=f"Answer as the API would have at TIME ({TIME_WORDS}): the "
            "backups present then, each at its version then [default: the latest].",
        ),
        click.option(
            "--ever",
            is_flag=True,
            help="Every backup ever ingested, at its newest version (what a store "
            "without --snapshot ingests answers).",
        ),
    ]


def source_options(verb: str = "Query", *, engines: bool = False) -> Callable[[F], F]:
    """``--store``/``--from``, ``--project``, ``-p``, ``--exact-names``, ``--time-field``.

    ``verb`` starts the help of ``--from``; ``engines`` adds ``--engine``,
    ``--spark-master``, ``--as-of`` and ``--ever`` (the query commands).

    Example: ``@source_options("Analyse")`` above a click command.
    """
    options = _where_options(verb) + _asking_options()
    if engines:
        options += _engine_options() + history_options()

    def apply(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


def open_inventory(
    store: str | None,
    dumps: tuple[str, ...],
    engine: str = "polars",
    master: str | None = None,
    as_of: datetime | None = None,
    ever: bool = False,
) -> Inventory:
    """The inventory ``--store`` or ``--from`` names, answering with ``engine``, as of ``as_of``.

    Example: ``with open_inventory(None, ("sample_data",)) as inv: ...``.
    """
    from engine.inventory import Inventory

    if dumps and store:
        raise click.UsageError("give --store or --from, not both")
    if master is not None and engine != "spark":
        raise click.UsageError("--spark-master needs --engine spark")
    if as_of is not None and ever:
        raise click.UsageError("give --as-of or --ever, not both")
    inventory = Inventory.from_dumps(list(dumps)) if dumps else Inventory.open(store)
    if as_of is not None or ever:
        inventory = inventory.as_of(as_of, ever=ever)
    return inventory.using(engine, spark=master)


def query_params(query_string: str | None, params: tuple[str, ...]) -> QueryParams:
    """The query string and the ``-p KEY=VALUE`` options as one multi-map.

    Example: ``query_params("status=error", ("limit=5",)).get_list("limit")`` -> ``["5"]``.
    """
    from engine.params import QueryParams

    pairs = []
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="-p")
        pairs.append((key, value))
    return QueryParams.parse(query_string or "").merged(QueryParams(pairs))


def semantics(exact_names: bool, time_field: str) -> Semantics:
    """The name matching and time field ``--exact-names`` and ``--time-field`` choose.

    Example: ``semantics(True, "created_at").name_match`` -> ``"exact"``.
    """
    from engine.query import Semantics

    return Semantics("exact" if exact_names else "substring", time_field)


def to_terminal(output: str | None) -> bool:
    """Whether the output goes to a terminal (no ``-o``, and stdout is one).

    Example: ``to_terminal(None)``.
    """
    return output is None and sys.stdout.isatty()


def chosen_format(fmt: str | None, output: str | None) -> str:
    """The format to write: ``fmt``, else table on a terminal and json elsewhere.

    Parquet is binary, so it is refused on a terminal.

    Example: ``chosen_format(None, "out.json")`` -> ``"json"``.
    """
    chosen = fmt or ("table" if to_terminal(output) else "json")
    if chosen == "parquet" and to_terminal(output):
        raise click.UsageError("-f parquet is binary: write it to a file (-o FILE) or a pipe")
    return chosen


@contextlib.contextmanager
def output_file(output: str | None, mode: str = "w") -> Iterator[IO[Any]]:
    """Where a command writes: standard output, or ``output`` written whole or not at all.

    A named file is written to a temporary file in the same folder and
    renamed over ``output`` on success, so a failed or interrupted write
    (a full disk, Ctrl-C) leaves neither a partial file nor the temporary
    one. A missing folder is a :class:`~engine.errors.InputError` naming it.
    Something that is not a regular file (``/dev/null``, a FIFO, a terminal)
    is opened as it is: it cannot be renamed over, and it keeps no partial file.
    ``mode`` is ``"w"`` (UTF-8 text) or ``"wb"``.

    Example: ``with output_file("out/rows.json") as out: out.write("{}\\n")``.
    """
    from engine.errors import InputError, Location

    text = "b" not in mode
    if output is None or output == "-":
        with click.open_file("-", mode, encoding="utf-8" if text else None) as stream:
            yield stream
        return
    # Through a symlink: the file it points to is replaced, the link stays.
    target = Path(os.path.realpath(output)) if os.path.islink(output) else Path(output)
    folder = target.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise InputError(Location(output), f"folder {folder} {what}")
    if target.exists() and not target.is_file():
        if target.is_dir():
            raise InputError(Location(output), "is a folder: name a file to write")
        with open(target, mode, encoding="utf-8" if text else None) as special:
            yield special
        return
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as err:  # named by the output, not by the temporary file's name
        raise OSError(err.errno, err.strerror, output) from err
    try:
        # mkstemp makes the file private (0600); the output gets the mode a plain open gives.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with open(fd, mode, encoding="utf-8" if text else None) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(err, OSError) and err.errno in _WRITE_ERRORS and err.filename is None:
            # A write or fsync names no file: this output is the one that failed.
            raise OSError(err.errno, err.strerror, output) from err
        raise


@contextlib.contextmanager
def format_output(output: str | None, fmt: str) -> Iterator[IO[bytes]]:
    """Where a command writes ``fmt`` (binary, :func:`output_file`); json on a terminal indented.

    Off a terminal (a file, a pipe) the bytes are the writer's own, compact;
    on one, ``-f json`` is shown indented by two spaces, as ``jq`` shows it.

    Example: ``with format_output(None, "json") as out: out.write(b'{"a": 1}')``.
    """
    with output_file(output, "wb") as out:
        if fmt != "json" or not to_terminal(output):
            yield out
            return
        buffer = io.BytesIO()
        yield buffer
        document = json.loads(buffer.getvalue())
        out.write(json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n")


#: What a write of an output fails with (a read of the store never does).
_WRITE_ERRORS: Final[frozenset[int]] = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO}
)
