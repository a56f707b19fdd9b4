"""The ``cbrq`` command line: a thin shell over :mod:`engine.api`.

Each command parses its options, calls the library and renders; errors are
turned into messages and exit statuses in one place (:class:`_Group`).
Heavy modules (polars, pyarrow) are imported inside commands so that
``cbrq --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from engine.cli.analyses import COMMANDS as ANALYSIS_COMMANDS
from engine.cli.history import COMMANDS as HISTORY_COMMANDS
from engine.cli.options import (
    TIME_WORDS,
    check_at,
    chosen_format,
    format_option,
    format_output,
    from_option,
    history_options,
    open_inventory,
    output_file,
    output_option,
    query_params,
    semantics,
    source_options,
    store_label,
    store_option,
    to_terminal,
)
from engine.cli.report import report
from engine.cli.trend import COMMANDS as TREND_COMMANDS
from engine.errors import (
    INTERNAL_ERROR_STATUS,
    CbrqError,
    Interrupted,
    MissingExtra,
    engine_failure_message,
    internal_error_message,
    is_engine_failure,
    os_error_message,
)

if TYPE_CHECKING:
    from pathlib import Path

    from engine.api import IngestSummary, Tick
    from engine.backends.base import Result, Streamed
    from engine.generate import Series
    from engine.render.fields import Fields
    from engine.store.manifest import Manifest

F = TypeVar("F", bound=Callable[..., Any])


class _Group(click.Group):
    """Converts every cbrq error into its message on stderr and its exit status."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command with the whole first sentence of its help, wrapped, never cut."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """The command named first in ``args``; its own arguments are kept for error hints."""
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta[_ARGS_META] = list(rest)
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CbrqError as err:
            click.echo(f"cbrq: error: {err}", err=True)
            ctx.exit(err.exit_status)
        except click.UsageError as err:
            # One style for every error, click's own included, and the way to help.
            where = err.ctx.command_path if err.ctx is not None else ctx.command_path
            message = _parameter_hint(err, ctx.meta.get(_ARGS_META, [])) or err.format_message()
            click.echo(f"cbrq: error: {message} (see '{where} --help')", err=True)
            ctx.exit(err.exit_code)
        except click.ClickException as err:
            # click's own file errors (--batch FILE) in the same one style.
            click.echo(f"cbrq: error: {err.format_message()}", err=True)
            ctx.exit(err.exit_code)
        except BrokenPipeError:
            # The reader (`| head`) has gone: stop quietly, as Unix tools do.
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
        except OSError as err:
            # A file or filesystem failed under a command (a full disk, a read-only
            # mount, a file removed or unreadable): its name and the fix, exit 1.
            click.echo(f"cbrq: error: {os_error_message(err, store_label(ctx))}", err=True)
            ctx.exit(1)
        except (click.exceptions.Exit, click.exceptions.Abort, SystemExit, GeneratorExit):
            raise
        except Interrupted as err:
            # SIGINT or SIGTERM during ingest or compact, acted on at a safe point.
            work = "the compaction" if ctx.invoked_subcommand == "compact" else "this ingest"
            click.echo(f"cbrq: {err.message(work)}", err=True)
            _exit_now(ctx, err.exit_status)
        except KeyboardInterrupt:
            # Ctrl-C in a command that writes no inventory (ingest and compact say
            # more, see engine.interrupts): nothing was changed.
            click.echo("cbrq: interrupted", err=True)
            ctx.exit(130)
        except BaseException as err:
            # Last resort for what the engine's libraries raise on a damaged or
            # foreign file (polars, pyarrow, DuckDB; a panic in polars' Rust code):
            # a store error, exit 1, never a traceback.
            import os

            if os.environ.get("CBRQ_DEBUG"):
                raise  # the whole traceback, for whoever debugs cbrq
            if is_engine_failure(err):
                message = engine_failure_message(err, store_label(ctx))
                click.echo(f"cbrq: error: {message}", err=True)
                ctx.exit(1)
            if not isinstance(err, Exception):
                raise
            # A bug, or damage no check foresaw: still one line, and an exit
            # status of its own (EX_SOFTWARE) so that tests and scripts tell it apart.
            click.echo(f"cbrq: error: {internal_error_message(err, store_label(ctx))}", err=True)
            ctx.exit(INTERNAL_ERROR_STATUS)


#: Where ``ctx.meta`` keeps the arguments of the command being run (for :func:`_parameter_hint`).
_ARGS_META = "cbrq.args"


def _parameter_hint(err: click.UsageError, args: list[str]) -> str:
    """For an unknown option named like a ListBackups parameter: the error, saying how to give it.

    ``--status error``, ``--vault-id v1`` and ``--vault_id=v1`` are what other
    tools would take; cbrq takes query parameters with ``-p KEY=VALUE`` (or in
    the query string). Any other error: ``""`` (click's own message stands).

    Example: ``_parameter_hint(err, ["--status", "error"])`` -> ``"... use -p status=error"``.
    """
    import shlex

    from engine.params import PARAMS

    if not isinstance(err, click.NoSuchOption) or err.ctx is None:
        return ""
    option = err.option_name
    name = option.lstrip("-").replace("-", "_").lower()
    if not option.startswith("--") or name not in {p.name for p in PARAMS}:
        return ""
    given = shlex.quote(f"{name}={_value_after(option, args)}")
    text = f"no such option: {option}; {name} is a ListBackups parameter"
    if any(p.name == "params" for p in err.ctx.command.params):
        return f"{text}: use -p {given}"
    return f"{text}, which {err.ctx.command_path} does not take: cbrq query -p {given} does"


def _value_after(option: str, args: list[str]) -> str:
    """The value given to ``option`` in ``args`` (``--x v`` or ``--x=v``), else ``VALUE``.

    Example: ``_value_after("--status", ["--status", "error"])`` -> ``"error"``.
    """
    for index, token in enumerate(args):
        if token.startswith(option + "="):
            return token[len(option) + 1 :]
        if token == option and index + 1 < len(args) and not args[index + 1].startswith("--"):
            return args[index + 1]
    return "VALUE"


def _exit_now(ctx: click.Context, status: int) -> None:
    """Exit with ``status`` without waiting for worker threads still typing a batch.

    The inventory is settled when this runs; a batch being typed by polars
    could hold the exit for seconds, and it would write nothing anyway.
    """
    import os
    import threading

    if threading.active_count() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    ctx.exit(status)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cbrq")
def main() -> None:
    """Query exported Huawei Cloud CBR backup inventories offline.

    \b
    Example:
      cbrq ingest sample_data --store inv
      cbrq query 'status=error&sort=created_at:desc&limit=5' --store inv -f table
      cbrq export --store inv -f ndjson | head
    """


def _kind_option(text: str) -> Callable[[F], F]:
    """The ``--kind`` option of export and info: which record table."""
    return click.option(
        "--kind",
        type=click.Choice(["backups", "vaults", "members"]),
        default="backups",
        show_default=True,
        help=text,
    )


@main.command()
@click.argument("paths", nargs=-1, required=True)
@store_option
@click.option(
    "--lenient",
    is_flag=True,
    help="Keep going past bad records: they go to the quarantine file with their reason.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@click.option(
    "--snapshot",
    is_flag=True,
    help="These files are one full export: a backup of its projects (or vaults, "
    "--scope vault) that it does not hold is gone from --taken-at on. Its pages "
    "must hold exactly their count of backups per project.",
)
@click.option(
    "--taken-at",
    callback=check_at,
    metavar="TIME",
    help=f"When the export was taken: {TIME_WORDS} [default: the newest "
    "updated_at of its backups].",
)
@click.option(
    "--scope",
    type=click.Choice(["project", "vault"]),
    default="project",
    show_default=True,
    help="With --snapshot: what the export covers, whole projects or the vaults "
    "it holds backups of (an export filtered by vault_id).",
)
def ingest(
    paths: tuple[str, ...],
    store: str | None,
    lenient: bool,
    quiet: bool,
    snapshot: bool,
    taken_at: Any,
    scope: str,
) -> None:
    """Ingest CBR dump files (PATHS) into the inventory.

    PATHS are files (.json, .json.gz, NDJSON), directories (searched
    recursively for *.json, *.ndjson, *.jsonl, optionally .gz), glob
    patterns, or - for standard input. A file already ingested (same
    content hash) is skipped, but for --snapshot. All or nothing: on a bad
    record the inventory is left exactly as it was (exit 1), unless --lenient.

    With --snapshot the store keeps history: every reader answers as of an
    instant (--as-of, default the latest), so a backup the newest export no
    longer holds is not listed; see cbrq snapshots and cbrq history.

    \b
    Example:
      cbrq ingest sample_data --store inv
      zcat dump.json.gz | cbrq ingest - --store inv
      cbrq ingest exports/2026-11-02 --store inv --snapshot --taken-at 2026-11-02T06:00:00Z
    """
    from engine import api, interrupts

    if scope != "project" and not snapshot:
        raise click.UsageError("--scope goes with --snapshot")
    show_bar = not quiet and sys.stderr.isatty()
    with interrupts.handling():  # a signal until the summary is out is reported
        with _progress(show_bar) as tick:
            summary = api.ingest(
                paths,
                store,
                lenient=lenient,
                progress=tick,
                snapshot=snapshot,
                taken_at=taken_at,
                scope=scope,
            )
        if not quiet:
            _print_summary(summary)


def history_options_decorator(command: F) -> F:
    """``--as-of`` and ``--ever`` (:func:`engine.cli.options.history_options`) on one command."""
    for option in reversed(history_options()):
        command = option(command)
    return command


def _export_lines(summary: IngestSummary) -> list[str]:
    """What SPEC §6 says of the call: a snapshot, or whether its pages form a complete export."""
    when = summary.taken_at or "unknown"
    if summary.snapshot:
        unchanged = f", {summary.backups_unchanged} unchanged" if summary.backups_unchanged else ""
        return [f"snapshot: taken at {when}, complete{unchanged}"]
    if summary.complete is None:
        return []
    if summary.complete:
        return [
            f"export: the pages form a complete export taken at {when} "
            "(ingest them with --snapshot to keep history)"
        ]
    return [f"export: the pages are not a complete export ({summary.why})"]


def _progress(enabled: bool) -> Any:
    """A context giving a progress callback: a rich bar on a terminal, else nothing."""
    if not enabled:
        return contextlib.nullcontext(None)
    return _Bar()


class _Bar:
    """A rich progress bar on stderr: the phase, files, records, MB/s and a running clock.

    The bar follows the bytes read, then names each later phase (typing
    records, writing each table, committing). Its total is one more than
    the bytes, so rich never sees the task finished and the clock runs
    until the ingest is done.
    """

    def __enter__(self) -> Any:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("ingest: {task.fields[phase]:<16}"),
            BarColumn(),
            TextColumn("{task.fields[files]} files"),
            TextColumn("{task.fields[records]:,} records"),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.progress.__enter__()
        self.task = self.progress.add_task(
            "ingest", total=None, files="0", records=0, phase="reading"
        )
        return self.update

    def update(self, tick: Tick) -> None:
        self.progress.update(
            self.task,
            total=tick.bytes_total + 1,  # never finished: a finished task's clock stops
            completed=tick.bytes_done,
            files=f"{tick.files_done}/{tick.files_total}",
            records=tick.records,
            phase=tick.phase,
        )

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)


class _CountBar:
    """A rich progress bar of records written, on stderr."""

    def __init__(self, total: int) -> None:
        self.total = total

    def __enter__(self) -> Any:
        from rich.console import Console
        from rich.progress import Progress

        self.progress = Progress(console=Console(stderr=True), transient=True)
        self.progress.__enter__()
        self.task = self.progress.add_task("generate", total=self.total)
        return self.update

    def update(self, done: int) -> None:
        self.progress.update(self.task, completed=done)

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)


def _print_summary(summary: IngestSummary) -> None:
    from engine.render.summary import ingest_lines, number

    terminal = sys.stderr.isatty()
    lines = ingest_lines(summary, terminal)
    lines += _export_lines(summary)
    if summary.quarantined:
        shown = number(summary.quarantined, terminal)
        lines.append(f"quarantined: {shown} (see {summary.quarantine_file})")
    for label in summary.skipped:
        lines.append(f"skipped: {label}")
    mb = summary.bytes_read / 1e6
    lines.append(f"elapsed: {summary.elapsed:.2f} s ({mb:.1f} MB)")
    for line in lines:
        click.echo(line, err=True)


@main.command()
@store_option
@format_option(
    ("json", "ndjson"),
    "json",
    "json: one response (or a JSON array of pages with --page-size); "
    "ndjson: one response page per line.",
)
@output_option()
@_kind_option("Which records to export.")
@click.option(
    "--page-size",
    type=click.IntRange(min=1),
    default=None,
    help="Records per page [default: all in one page for json, 1000 for ndjson].",
)
@history_options_decorator
def export(
    store: str | None,
    fmt: str,
    output: str | None,
    kind: str,
    page_size: int | None,
    as_of: datetime | None,
    ever: bool,
) -> None:
    """Write the inventory back as API-shaped pages ({"count", "backups"}).

    Records come out exactly as ingested (every key, unknown ones too),
    timestamps in the API's form YYYY-MM-DDTHH:MM:SS.ffffff (UTC), newest
    first. The output can be ingested again.

    \b
    Example:
      cbrq export --store inv -o all.json
      cbrq export --store inv -f ndjson --page-size 500 | wc -l
    """
    from engine import api

    size = page_size if page_size is not None or fmt == "json" else 1000
    if as_of is not None and ever:
        raise click.UsageError("give --as-of or --ever, not both")
    pages = api.export_pages(store, kind=kind, page_size=size, as_of=as_of, ever=ever)
    first = next(pages)  # fails before any output file is created
    pages = itertools.chain([first], pages)
    with output_file(output) as out:
        if fmt == "ndjson":
            for page in pages:
                out.write(page + "\n")
        elif page_size is None:
            out.write(next(pages) + "\n")
        else:
            out.write("[" + ",".join(pages) + "]\n")


def _sql_of(root: Path, manifest: Manifest, kind: str, as_of: datetime | None) -> str:
    """The DuckDB query ``cbrq info --sql`` prints: the live rows, or the backups as of."""
    from engine.errors import QueryError
    from engine.store.history import NO_HISTORY
    from engine.store.history_sql import duckdb_history_sql
    from engine.store.read import duckdb_sql

    if kind == "backups" and manifest.keeps_history:
        return duckdb_history_sql(root, manifest, as_of)
    if as_of is not None and kind != "backups":
        raise click.UsageError("--as-of reads the backups: give it with --kind backups")
    if as_of is not None:
        raise QueryError([NO_HISTORY])
    return duckdb_sql(root, manifest, kind)


@main.command()
@store_option
@format_option(
    ("text", "json"), "text", "text: a summary for people; json: every detail, for scripts."
)
@click.option("--files", is_flag=True, help="Print the Parquet files of --kind, one per line.")
@click.option("--sql", is_flag=True, help="Print a DuckDB query of the live rows of --kind.")
@click.option(
    "--as-of",
    "as_of",
    callback=check_at,
    metavar="TIME",
    help="With --sql on a store fed --snapshot ingests: the backups as of TIME "
    "[default: the variable cbrq_as_of if set in DuckDB, else the latest].",
)
@click.option(
    "--ingested",
    is_flag=True,
    help="List the ingested dump files: time, records read per kind, source (in ingest order).",
)
@_kind_option("The table --files and --sql are about.")
def info(
    store: str | None,
    fmt: str,
    files: bool,
    sql: bool,
    as_of: datetime | None,
    ingested: bool,
    kind: str,
) -> None:
    """Show the inventory's state: generation, rows, segments, superseded rows.

    A table is stored as segments (one per ingest until merged), each one
    sorted run or, as an ingest wrote its batches, several; rows that a
    newer copy of the same id superseded (or a copy read twice) stay in
    their file until a merge and are listed in the table's dead file. --sql prints the
    one query that reads exactly the live rows (one per backup id) with
    DuckDB, after any number of ingests; on a store fed --snapshot ingests,
    the backups present at an instant (docs/semantics.md §6): --as-of, or in DuckDB
    SET VARIABLE cbrq_as_of = 'TIME' before the query (default: the latest).

    \b
    Example:
      cbrq info --store inv
      cbrq info --store inv --ingested | tail -3
      duckdb -c "SELECT status, count(*) FROM ($(cbrq info --store inv --sql)) GROUP BY 1"
      cbrq info --store inv --sql --as-of 2026-11-01T00:00:00Z > day1.sql
    """
    from pathlib import Path

    from engine import api
    from engine.render import visible
    from engine.store.manifest import require_manifest, resolve_store

    state = api.store_info(store)
    if as_of is not None and not sql:
        raise click.UsageError("--as-of needs --sql")
    if sql:
        root = resolve_store(store)
        click.echo(_sql_of(root, require_manifest(root), kind, as_of))
    elif files:
        for segment in state["tables"][kind]["segments"]:
            for name in segment["files"]:
                click.echo(name)
    elif ingested and fmt == "text":
        for entry in state["files"]:
            counts = ", ".join(f"{n} {k}" for k, n in (entry["records"] or {}).items() if n)
            source = visible(entry["source"])  # a file name from an export: shown, not obeyed
            click.echo(f"{entry['ingested_at']}  {counts or 'no'} read  {source}")
    elif fmt == "json":
        click.echo(json.dumps(state, indent=2))
    else:
        for line in _info_lines(state, Path(state["store"])):
            click.echo(line)


def _info_lines(state: dict[str, Any], root: Any) -> list[str]:
    lines = [
        f"store: {root} (generation {state['generation']}, committed {state['updated_at']})",
    ]
    times = sorted(entry["ingested_at"] for entry in state["files"] if entry["ingested_at"])
    span = f" between {times[0]} and {times[-1]}" if times and times[0] != times[-1] else ""
    span = f" at {times[0]}" if times and not span else span
    lines.append(f"ingested files: {state['ingested_files']}{span} (list them: --ingested)")
    for kind, table in state["tables"].items():
        segments = table["segments"]
        rows = ", ".join(f"{seg['rows']:,}" for seg in segments) or "none"
        files = sum(len(seg["files"]) for seg in segments)
        runs = sum(seg["runs"] for seg in segments)
        sorted_runs = f" ({runs} sorted runs)" if runs > len(segments) else ""
        lines.append(
            f"{kind}: {table['live']:,} live, {table['superseded']:,} superseded; "
            f"{len(segments)} segment(s) of {rows} rows in {files} file(s){sorted_runs}"
        )
    limits = state["limits"]
    if state["history"]["keeps_history"]:
        lines.append(
            f"merges: automatic past {limits['segments']} segments; superseded rows are "
            "earlier versions, kept (docs/semantics.md §6); `cbrq compact` merges all"
        )
    else:
        lines.append(
            f"merges: automatic past {limits['segments']} segments or "
            f"{limits['superseded_share']:.0%} superseded rows; `cbrq compact` merges all"
        )
    if state["quarantine"]:
        size, where = state["quarantine_bytes"], state["quarantine"]
        lines.append(f"quarantine: {state['quarantined']} record(s), {size:,} bytes, in {where}")
    history = state["history"]
    if history["keeps_history"]:
        lines.append(
            f"history: {history['snapshots']} snapshot(s) among {history['ingests']} ingests, "
            f"newest taken at {history['newest_taken_at']}; {history['versions_kept']:,} "
            f"earlier version(s) kept, sightings {history['sightings_bytes']:,} bytes, "
            f"vault and member listings {history['listings_bytes']:,} bytes"
        )
    return lines


@main.command()
@store_option
def compact(store: str | None) -> None:
    """Merge every table into one segment and drop superseded rows.

    Ingest merges segments by itself, within fixed limits (see cbrq info);
    this merges everything at once, for example before copying or archiving
    a store. Answers do not change; the same lock and crash safety as ingest.

    \b
    Example:
      cbrq compact --store inv && cbrq info --store inv
    """
    import time

    from engine import api, interrupts
    from engine.store.manifest import require_manifest, resolve_store
    from engine.store.write import fragmented

    root = resolve_store(store)
    if not fragmented(require_manifest(root)):  # api.compact checks again under the lock
        shape = "one segment per table, no superseded rows"
        click.echo(f"nothing to compact: {root} is {shape}", err=True)
        return
    started = time.perf_counter()
    with interrupts.handling():
        rows = api.compact(store)
        elapsed = time.perf_counter() - started
        counts = ", ".join(f"{n:,} {kind}" for kind, n in rows.items())
        click.echo(f"compacted: {counts} in one segment each ({elapsed:.2f} s)", err=True)


@main.command()
@store_option
@click.option(
    "--repair",
    is_flag=True,
    help="Restore a lost or stale manifest.json from the newest intact generation.",
)
def check(store: str | None, repair: bool) -> None:
    """Verify the inventory: manifest, every file's size and checksum, row counts.

    Names each damaged file and exits 1 if any is. Directories holding
    files cbrq does not write are reported and left alone. --repair (under
    the writer lock) restores manifest.json from the copy the newest intact
    generation keeps, and says which generation it restored and which it
    could not use.

    \b
    Example:
      cbrq check --store inv
      cbrq check --store inv --repair && cbrq check --store inv
    """
    from engine.errors import StoreError
    from engine.store import integrity
    from engine.store.manifest import resolve_store
    from engine.store.write import locked

    root = resolve_store(store)
    if repair:
        if not root.is_dir():
            raise StoreError(f"{root}: no inventory here (nothing to repair)")
        with locked(root):
            done = integrity.repair(root)
        click.echo(f"repair: {done.message}", err=True)
    findings, lines = integrity.report(root)
    for line in lines:
        click.echo(line)
    damaged = [f for f in findings if f.severity == "damage"]
    for finding in findings:
        label = "damaged" if finding.severity == "damage" else "notice"
        click.echo(f"{label}: {root / finding.name}: {finding.problem}")
    if damaged:
        raise StoreError(
            f"{root}: {len(damaged)} problem(s) found; restore the named files from a "
            "backup of the store, or run `cbrq check --repair` for a lost manifest"
        )
    click.echo("ok: the inventory verifies")


# --- queries ------------------------------------------------------------------


@main.command()
@click.argument("query_string", required=False)
@source_options(engines=True)
@format_option()
@output_option()
@click.option(
    "--batch",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Run one query string per line of FILE (- for stdin); one JSON response "
    "(or API error body) per output line.",
)
@click.option(
    "--fields",
    metavar="A,B.C",
    help="Only these fields: column names or dotted paths (extend_info.incremental, "
    "replication_records.status). JSON records keep their nesting; the other formats "
    "get one column per path.",
)
def query(
    query_string: str | None,
    store: str | None,
    dumps: tuple[str, ...],
    project: str | None,
    params: tuple[str, ...],
    exact_names: bool,
    time_field: str,
    engine: str,
    spark_master: str | None,
    as_of: datetime | None,
    ever: bool,
    fmt: str | None,
    output: str | None,
    batch: str | None,
    fields: str | None,
) -> None:
    """Answer a ListBackups query (the API's own query string) from the inventory.

    Every parameter of GET /v3/{project_id}/backups works with the API's
    meaning: status (repeatable or comma list), start_time/end_time,
    used_percent, own_type, member_status, sort=key:dir,..., marker, offset,
    limit and the rest. Without limit every match is returned. Bad
    parameters: all reported at once, exit status 2.

    \b
    Example:
      cbrq query 'status=available&status=error&sort=created_at:asc&limit=100'
      cbrq query -p used_percent=80 -p resource_type=OS::Cinder::Volume -f csv
      cbrq query --from dumps/ 'name=autobk' -f ndjson
      cbrq query 'status=error' --fields id,name,extend_info.incremental -f csv
      printf 'status=error\\nlimit=1\\n' | cbrq query --batch - --store inv
    """
    from engine import render
    from engine.render.fields import Fields

    chosen_semantics = semantics(exact_names, time_field)
    with open_inventory(store, dumps, engine, spark_master, as_of, ever) as inventory:
        typed = inventory.lazy().collect_schema()
        chosen_fields = None if fields is None else Fields.parse(fields, typed, payload=True)
        if batch is not None:
            _run_batch(inventory, batch, project, chosen_semantics, output, fmt, chosen_fields)
            return
        chosen = chosen_format(fmt, output)
        request = query_params(query_string, params)
        columns = render.columns_for(chosen, typed.names(), chosen_fields)
        terminal = to_terminal(output)
        try:
            parsed = inventory.parse(request, project=project, semantics=chosen_semantics)
            # Off a terminal the records are written as they are read (bounded memory).
            answer = None if terminal else inventory.stream(parsed, columns)
            result = inventory.run(parsed, columns) if terminal else None
        except CbrqError as err:
            if chosen == "json" and hasattr(err, "body"):
                click.echo(json.dumps(err.body()))
            raise
        _write_answer(answer, result, chosen, output, chosen_fields)


def _write_answer(
    answer: Streamed | None,
    result: Result | None,
    fmt: str,
    output: str | None,
    fields: Fields | None,
) -> None:
    """A query's answer in ``fmt``: streamed off a terminal, or the result read whole on one."""
    from engine import render

    with format_output(output, fmt) as out:
        if answer is not None:
            render.render_stream(answer, fmt, out, fields=fields)
        else:
            assert result is not None
            render.render(result, fmt, out, terminal=True, fields=fields)


def _run_batch(
    inventory: Any,
    path: str,
    project: str | None,
    semantics: Any,
    output: str | None,
    fmt: str | None,
    fields: Any,
) -> None:
    from engine.errors import QueryError
    from engine.render import columns_for, json_response

    if fmt not in (None, "json"):
        raise click.UsageError("--batch writes one JSON response per line; use -f json")
    failed = 0
    with (
        click.open_file(path, "rb") as lines,
        output_file(output) as out,
    ):
        for number, raw in enumerate(lines, start=1):
            try:
                line = _batch_line(raw, number)
                columns = columns_for("json", [], fields)
                result = inventory.query(
                    line, project=project, semantics=semantics, columns=columns
                )
                text = json_response(result, fields)
            except QueryError as err:
                failed += 1
                text = json.dumps(err.body())
            out.write(text + "\n")
            out.flush()  # one answer per line as it comes, for a pipe that waits on it
    if failed:
        click.echo(f"cbrq: {failed} batch line(s) failed", err=True)
        sys.exit(2)


def _batch_line(raw: bytes, number: int) -> str:
    """One line of a batch as text; a line that is not UTF-8 is that line's QueryError."""
    from engine.errors import Problem, QueryError

    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as err:
        bad = raw[err.start : err.start + 4].hex(" ")
        problem = Problem(f"line {number}", None, f"not valid UTF-8 (bytes {bad})")
        raise QueryError([problem]) from err


def _ask(what: str, query_string: str | None, options: dict[str, Any]) -> Any:
    """Open the inventory the source options name and call its ``what`` method."""
    source = open_inventory(
        options["store"],
        options["dumps"],
        options["engine"],
        options["spark_master"],
        options["as_of"],
        options["ever"],
    )
    with source as inventory:
        ask = getattr(inventory, what)
        return ask(
            query_params(query_string, options["params"]),
            project=options["project"],
            semantics=semantics(options["exact_names"], options["time_field"]),
        )


#: Parameters that narrow nothing (SPEC §2): a count naming no others is every live backup.
_NARROWING_NOTHING = frozenset(
    {"limit", "offset", "marker", "sort", "dec", "show_replication", "enterprise_project_id"}
)


def _live_count(query_string: str | None, options: dict[str, Any]) -> int | None:
    """Every live backup of a store, from its manifest, if the query narrows nothing; else None.

    The manifest records each table's live rows (what ``cbrq info`` shows),
    so this count needs neither polars nor a Parquet footer. Only for the
    latest answers of a store without snapshots, whose files are all there
    at their recorded sizes; anything else is answered by the backend.
    """
    if (
        options["dumps"]
        or options["engine"] != "polars"
        or options["as_of"] is not None
        or options["ever"]
        or options["project"] is not None
    ):
        return None
    params = query_params(query_string, options["params"])
    if not set(params.names()) <= _NARROWING_NOTHING:
        return None
    from engine.params import filter_plan, parse_query
    from engine.store.manifest import Lease, resolve_store

    root = resolve_store(options["store"])
    lease = Lease.take(root)
    try:
        manifest = lease.manifest
        query = parse_query(
            params, semantics=semantics(options["exact_names"], options["time_field"])
        )
        has_members = bool(manifest.counts.get("members"))
        if manifest.keeps_history or filter_plan(query, has_members) or not manifest.checksums:
            return None
        dead = [manifest.dead["backups"]] if "backups" in manifest.dead else []
        for name in [*manifest.tables.get("backups", []), *dead]:
            recorded = manifest.checksums.get(name)
            path = root / name
            if recorded is None or not path.is_file() or path.stat().st_size != recorded.size:
                return None  # the backend's read says what is wrong
        return manifest.counts.get("backups")
    finally:
        lease.release()


@main.command()
@click.argument("query_string", required=False)
@source_options(engines=True)
def count(query_string: str | None, **options: Any) -> None:
    """Print how many backups match the query (paging parameters are validated, then ignored).

    \b
    Example:
      cbrq count 'status=error&start_time=2026-01-01T00:00:00Z' --store inv
    """
    live = _live_count(query_string, options)
    click.echo(_ask("count", query_string, options) if live is None else live)


@main.command()
@click.argument("query_string", required=False)
@source_options(engines=True)
def explain(query_string: str | None, **options: Any) -> None:
    """Print each filter of the query in plain words, the sort and paging, then the plan.

    The plan is the polars plan, or with --engine duckdb the whole SQL
    statement (the store's live rows as CTEs), ready to paste into DuckDB.

    \b
    Example:
      cbrq explain 'status=error&used_percent=80&sort=name:asc' --store inv
      cbrq explain 'status=error&limit=5' --store inv --engine duckdb
    """
    click.echo(_ask("explain", query_string, options))


@main.command()
@store_option
@from_option("Serve dump files directly, without a store (repeatable).")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind (loopback unless you mean it).",
)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token",
    help="Require this X-Auth-Token on every request (401 otherwise). Visible to `ps`: "
    "prefer --token-file or $CBRQ_TOKEN.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, exists=True),
    help="Read the required X-Auth-Token from the first line of this file.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes (one per core answers the most; they share one copy of the "
    "records). Needs --store.",
)
@click.option(
    "--quiet", "-q", is_flag=True, help="No log line per request (reloads and 500s still)."
)
@history_options_decorator
def serve(
    store: str | None,
    dumps: tuple[str, ...],
    host: str,
    port: int,
    token: str | None,
    token_file: str | None,
    workers: int,
    quiet: bool,
    as_of: datetime | None,
    ever: bool,
) -> None:
    """Serve the inventory as a local CBR endpoint that the official SDK uses unchanged.

    GET /v3/{project_id}/backups (every ListBackups parameter, limit 1000 by
    default), /backups/{id}, /vaults and /vaults/{id}; API error bodies;
    X-Request-Id on every response and in its log line. SDK requests signed
    with AK/SK are accepted without checking the signature. A token is taken
    from --token, --token-file or $CBRQ_TOKEN, in that order. Serving a
    store, the server picks up a new commit (a later `cbrq ingest`) by itself
    within seconds and logs it. A store fed --snapshot ingests is served as
    of --as-of (default: the latest export), or as ever with --ever.

    \b
    Example:
      cbrq serve --store inv --port 8080 --workers 2
      cbrq serve --store inv --as-of 2026-11-01T00:00:00Z
      curl 'http://127.0.0.1:8080/v3/PROJECT/backups?status=error&limit=2'
    """
    from engine.instants import format_instant
    from engine.server.app import create_app
    from engine.server.http import read_token
    from engine.server.http import serve as run
    from engine.server.workers import serve_workers
    from engine.store.manifest import resolve_store

    try:
        required = read_token(token, token_file)
    except (OSError, ValueError) as err:
        raise click.BadParameter(str(err), param_hint="--token-file") from err
    when = "" if as_of is None else f" as of {format_instant(as_of)}"
    when = " as ever seen" if ever else when
    if workers > 1:
        if dumps:
            raise click.UsageError("--workers needs a store: ingest the dumps, then --store")
        if as_of is not None and ever:
            raise click.UsageError("give --as-of or --ever, not both")
        root = resolve_store(store)
        click.echo(
            f"cbrq: serving {root}{when} on http://{host}:{port} ({workers} workers)", err=True
        )
        serve_workers(
            root, host, port, workers, token=required, quiet=quiet, as_of=as_of, ever=ever
        )
        return
    with open_inventory(store, dumps, as_of=as_of, ever=ever) as inventory:
        app = create_app(inventory, token=required, quiet=quiet)
        click.echo(f"cbrq: serving {inventory.label}{when} on http://{host}:{port}", err=True)
        run(app, host, port)


@main.command()
@click.option("--endpoint", required=True, help="Base URL of the implementation to check.")
@click.option("--project", required=True, help="Project ID used in /v3/{project_id}/backups.")
@store_option
@from_option("The data the endpoint serves, as dump files (repeatable).")
@click.option(
    "--examples",
    default=200,
    show_default=True,
    type=click.IntRange(1),
    help="How many generated queries to replay.",
)
@click.option("--seed", type=int, help="Make the run reproducible.")
def conformance(
    endpoint: str,
    project: str,
    store: str | None,
    dumps: tuple[str, ...],
    examples: int,
    seed: int | None,
) -> None:
    """Check any ListBackups endpoint against cbrq's semantics, on the same data.

    Replays generated queries (valid ones over all 23 parameters, and bad
    ones of every kind) and compares status, count, ids in order, offset and
    limit (or the error code). A disagreement is shrunk to a minimal query
    and shown with both answers; exit status 1.

    \b
    Example:
      cbrq serve --store inv --port 8080 &
      cbrq conformance --endpoint http://127.0.0.1:8080 --project P --store inv
    """
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        raise MissingExtra(
            "cbrq conformance", "hypothesis", "testing", verb="generates its queries with"
        ) from None
    from engine.server.conformance import check_endpoint

    with open_inventory(store, dumps) as inventory:
        report = check_endpoint(endpoint, project, inventory, examples=examples, seed=seed)
    if report.disagreement is None:
        click.echo(f"conformance: {report.agreed} queries, all answers agree")
        return
    found = report.disagreement
    click.echo(f"conformance: disagreement after {report.agreed} agreeing queries")
    click.echo(f"  query:    {found.query}")
    click.echo(f"  expected: {json.dumps(found.expected)[:2000]}")
    click.echo(f"  endpoint: {json.dumps(found.actual)[:2000]}")
    sys.exit(1)


def _told_series(series: Series, out: str) -> str:
    """What ``cbrq generate --days`` says it wrote."""
    first, last = series.days[0], series.days[-1]
    return (
        f"{len(series.days)} daily exports, {first.day} to {last.day}: "
        f"{first.backups} backups on day one, {last.backups} on the last; "
        f"{sum(d.added for d in series.days[1:])} added, "
        f"{sum(d.gone for d in series.days)} gone, "
        f"{sum(d.changed for d in series.days)} changed -> {out}"
    )


def _check_generate(count: int, newest_first: bool, days: int | None, start: Any) -> None:
    """Refuse the options of ``cbrq generate`` that do not go together."""
    from engine.generate import SPAN_SECONDS

    if start is not None and days is None:
        raise click.UsageError("--start is the first day of a series: give --days too")
    if newest_first and days is not None:
        raise click.UsageError("--newest-first is for one listing: leave out --days")
    if newest_first and count > SPAN_SECONDS:
        raise click.BadParameter(
            f"at most {SPAN_SECONDS:,} backups with --newest-first (one a second of the span)",
            param_hint="'-n'",
        )


@main.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option(
    "-n",
    "count",
    type=click.IntRange(1),
    default=10_000,
    show_default=True,
    help="Number of distinct top-level backups (on day one, with --days).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generator.")
@click.option(
    "--page-size",
    type=click.IntRange(1, 1000),
    default=1000,
    show_default=True,
    help="Backups per ListBackups page.",
)
@click.option("--gzip", "gzipped", is_flag=True, help="Write .json.gz pages.")
@click.option(
    "--newest-first",
    is_flag=True,
    help="One listing as ListBackups pages it (created_at descending), each backup once.",
)
@click.option(
    "--days",
    type=click.IntRange(1),
    default=None,
    help="Write a daily series of full exports, OUT/<YYYY-MM-DD>/ per day, with churn.",
)
@click.option(
    "--start",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="First day of the series (with --days).  [default: 2026-01-01]",
)
def generate(
    out: str,
    count: int,
    seed: int,
    page_size: int,
    gzipped: bool,
    newest_first: bool,
    days: int | None,
    start: Any,  # a datetime from click.DateTime, or None
) -> None:
    """Write realistic synthetic CBR dumps (backups pages, vaults, members) into OUT.

    Same seed, same bytes. Both timestamp forms and offsets, nulls, server
    backups with children, replication records, unknown keys, vaults from
    empty to full, share members, ~1 % of backups repeated with a newer
    updated_at. With --newest-first: one listing in ListBackups' default
    order, each backup once. With --days N: N daily full exports of one
    inventory of -n backups (each day's pages per project, vaults, members)
    with ~1 % churn a day; see the README.

    \b
    Example:
      cbrq generate big -n 1000000 --seed 7
      cbrq generate listed -n 1000000 --newest-first
      cbrq ingest big --store inv
      cbrq generate daily -n 100000 --days 30 --gzip
    """
    from pathlib import Path

    from engine.generate import write_dumps, write_series

    _check_generate(count, newest_first, days, start)
    total = count * (days or 1)
    with _CountBar(total) if sys.stderr.isatty() else contextlib.nullcontext(None) as tick:
        if days is not None:
            first = {} if start is None else {"start": start.date()}
            series = write_series(
                Path(out), count, days=days, seed=seed, page_size=page_size,
                gzipped=gzipped, progress=tick, **first,
            )  # fmt: skip
        else:
            done = write_dumps(
                Path(out), count, seed=seed, page_size=page_size, gzipped=gzipped,
                newest_first=newest_first, progress=tick,
            )  # fmt: skip
    if days is not None:
        click.echo(_told_series(series, out), err=True)
        return
    click.echo(
        f"{done.backups} backups in {done.pages} pages, {done.vaults} vaults, "
        f"{done.members} members -> {out}",
        err=True,
    )


for _command in (*ANALYSIS_COMMANDS, *HISTORY_COMMANDS, *TREND_COMMANDS):
    main.add_command(_command)
main.add_command(report)

if __name__ == "__main__":
    main()
