"""The analysis commands of ``cbrq``: stats, rpo, retention, capacity, hygiene, diff.

A thin shell over the :class:`~engine.inventory.Inventory` methods of
:mod:`engine.analyses`: each command parses its options, calls one method and
renders the :class:`~engine.analyses.Analysis` it returns. Registered on the
``cbrq`` group by :mod:`engine.cli` (:data:`COMMANDS`); the options it
shares with ``cbrq query`` come from :mod:`engine.cli.options`, and polars is
imported only when a command runs. Errors are turned into messages and exit
statuses by the group, as for every command.

Every output states ``at``: a footer line under a table; ``{"at", "rows"}``
in json; an ``"at"`` key first in every ndjson line, and with no rows one
line ``{"at": ...}`` holding nothing else. csv, tsv and parquet hold the rows
only (ask ``-f json`` for ``at``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, TypeVar

import click

from engine.cli.options import (
    TIME_WORDS,
    at_option,
    check_at,
    chosen_format,
    format_option,
    format_output,
    max_age_option,
    min_days_option,
    open_inventory,
    output_option,
    query_params,
    semantics,
    source_options,
    store_option,
    stuck_hours_option,
    to_terminal,
)
from engine.spec import ANALYSIS_VERDICTS, DEFAULT_STATS_BY, FAIL_ON_VERDICTS

if TYPE_CHECKING:
    from engine.analyses import Analysis
    from engine.inventory import Inventory

F = TypeVar("F", bound=Callable[..., Any])


def analysis_source(command: F) -> F:
    """The ``[FILTER]`` argument and the source options of ``cbrq query`` (no --engine).

    Example: ``@analysis_source`` above an analysis command.
    """
    command = source_options("Analyse")(command)
    return click.argument("filter_string", metavar="[FILTER]", required=False)(command)


def _check_by(ctx: click.Context, param: click.Parameter, value: str) -> Any:
    from engine.analyses import parse_by

    return parse_by(value, "--by")


def output_options(command: F) -> F:
    """``--at``, ``-f``, ``-o`` and ``--fields``, shared by every analysis command."""
    return at_option(listing_options(command))


def listing_options(command: F) -> F:
    """``-f``, ``-o`` and ``--fields``: for commands whose rows do not depend on an instant
    (``snapshots``, ``history``), which take no ``--at``."""
    options = [
        format_option(),
        output_option(),
        click.option(
            "--fields",
            metavar="A,B",
            help="Only these columns of the rows, in this order (every format).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _fail_on(name: str, what: str) -> Callable[[F], F]:
    """``--fail-on VERDICT``: exit status 3 when a row fails it (for cron jobs and CI)."""
    return click.option(
        "--fail-on",
        type=click.Choice(list(FAIL_ON_VERDICTS[name])),
        help=f"Exit with status 3 when {what} (judged on every row, before --only; "
        "after writing the output).",
    )


def _only(name: str) -> Callable[[F], F]:
    """``--only VERDICT[,VERDICT...]``: keep only the rows with those verdicts."""
    verdicts = ANALYSIS_VERDICTS[name]

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        from engine.analyses import parse_only

        return None if value is None else parse_only(name, value, "--only")

    return click.option(
        "--only",
        callback=check,
        metavar="VERDICT[,VERDICT...]",
        help=f"Keep only the rows with these verdicts ({', '.join(verdicts)}), comma-separated.",
    )


def _run(name: str, options: dict[str, Any], **arguments: Any) -> Analysis:
    """Open the inventory of the source options and run analysis ``name`` on the filter."""
    with open_inventory(options["store"], options["dumps"]) as inventory:
        analyse = getattr(inventory, name)
        result: Analysis = analyse(
            query_params(options["filter_string"], options["params"]),
            project=options["project"],
            semantics=semantics(options["exact_names"], options["time_field"]),
            at=options["at"],
            **arguments,
        )
    return result


#: Where an analysis' ``at`` comes from when ``--at`` is not given (SPEC §5).
AT_DEFAULT: Final[str] = "the newest updated_at"


def at_origin(given: datetime | None, default: str = AT_DEFAULT) -> str:
    """Where ``at`` came from, as a table's footer says it: given, or which default.

    Example: ``at_origin(None)`` -> ``"default: the newest updated_at"``.
    """
    return "given" if given is not None else f"default: {default}"


def emit(
    analysis: Analysis,
    fmt: str | None,
    output: str | None,
    fail_on: str | None,
    fields: str | None = None,
    only: tuple[str, ...] | None = None,
    *,
    origin: str = "",
) -> None:
    """Write ``analysis`` (the rows of the ``only`` verdicts, its ``fields``) in the chosen format.

    ``origin``: where ``at`` came from (:func:`at_origin`), said after it in
    a table's footer (json keeps ``{"at", "rows"}``). Exits 3 afterwards if a
    row fails ``fail_on`` (judged on every row, whatever ``only`` and
    ``fields`` keep: the mail lists the problems, the status says there is one).

    Example: ``emit(inv.rpo(), "table", None, None, origin=at_origin(None))``.
    """
    failed = fail_on is not None and analysis.fails(fail_on)
    if only is not None:
        analysis = analysis.only(only)
    if fields is not None:
        from dataclasses import replace

        from engine.render.fields import Fields

        chosen = Fields.parse(fields, analysis.frame.schema)
        analysis = replace(analysis, frame=analysis.frame.select(chosen.columns()))
    written = chosen_format(fmt, output)
    with format_output(output, written) as out:
        write(analysis, written, out, terminal=to_terminal(output), origin=origin)
    if failed:
        sys.exit(3)


def write(
    analysis: Analysis, fmt: str, out: IO[bytes], *, terminal: bool = False, origin: str = ""
) -> None:
    """Write ``analysis`` to ``out`` as ``fmt``, by the writers every output uses.

    Example: ``write(inv.rpo(), "ndjson", sys.stdout.buffer)``.
    """
    from engine import render

    render.write(render.AnalysisOutput(analysis, origin), fmt, out, terminal=terminal)


@click.command()
@analysis_source
@click.option(
    "--by",
    default=",".join(DEFAULT_STATS_BY),
    show_default=True,
    callback=_check_by,
    help="Group keys, comma-separated: status, resource_type, image_type, vault_id, "
    "project_id, enterprise_project_id, resource_az, and day, week (ISO, Monday) or "
    "month of created_at (UTC).",
)
@output_options
def stats(by: tuple[str, ...], fmt: str | None, output: str | None, **options: Any) -> None:
    """Count backups and sum their size per group, with the first and last created_at.

    Rows: the --by keys, then backups, size_gb (sum of resource_size),
    first and last (created_at); most backups first. FILTER is any
    ListBackups filter (paging and sort are errors).

    \b
    Example:
      cbrq stats --store inv --by status,resource_type
      cbrq stats 'status=error' --store inv --by vault_id,week -f csv -o errors.csv
      cbrq stats --store inv --by resource_type --fields resource_type,size_gb
    """
    result = _run("stats", options, by=by)
    emit(result, fmt, output, None, options["fields"], origin=at_origin(options["at"]))


@click.command()
@analysis_source
@max_age_option("Oldest acceptable good backup: a number and m, h, d or w (90m, 24h, 7d, 2w).")
@_fail_on("rpo", "a resource has no good backup (never), or, with breach, one older than --max-age")
@_only("rpo")
@output_options
def rpo(
    max_age: Any,
    fail_on: str | None,
    only: tuple[str, ...] | None,
    fmt: str | None,
    output: str | None,
    **options: Any,
) -> None:
    """List every resource's newest good backup, its age, and a verdict: never, breach or ok.

    Resources are those vaults list and those backups name; a good backup
    is available, of image_type backup and created at or before --at.
    Rows: never first, then breach, then ok, oldest first.

    \b
    Example:
      cbrq rpo --store inv --max-age 24h
      cbrq rpo --store inv --max-age 36h --at now --fail-on breach -f json -o rpo.json
      cbrq rpo --store inv --at now --fail-on breach --only never,breach -f csv
    """
    result = _run("rpo", options, max_age=max_age)
    emit(result, fmt, output, fail_on, options["fields"], only, origin=at_origin(options["at"]))


@click.command()
@analysis_source
@min_days_option("Shortest acceptable retention (expired_at - created_at), in days.")
@_fail_on("retention", "an available backup is kept fewer than --min-days")
@_only("retention")
@output_options
def retention(
    min_days: int,
    fail_on: str | None,
    only: tuple[str, ...] | None,
    fmt: str | None,
    output: str | None,
    **options: Any,
) -> None:
    """Find available backups kept too briefly (short) or past their expiry (overdue).

    A backup with no expired_at is kept forever and never flagged. One row
    per backup and finding, by id.

    \b
    Example:
      cbrq retention --store inv --min-days 35
      cbrq retention 'vault_id=VAULT' --store inv --fail-on short -f csv -o short.csv
    """
    result = _run("retention", options, min_days=min_days)
    emit(result, fmt, output, fail_on, options["fields"], only, origin=at_origin(options["at"]))


@click.command()
@analysis_source
@_fail_on("capacity", "a vault is at or above its threshold")
@_only("capacity")
@click.option(
    "--forecast",
    is_flag=True,
    help="Add days_to_full: the least-squares line of billing.used over the vault's versions "
    "of the last 30 days, solved for its threshold (a store fed --snapshot ingests).",
)
@output_options
def capacity(
    forecast: bool,
    fail_on: str | None,
    only: tuple[str, ...] | None,
    fmt: str | None,
    output: str | None,
    **options: Any,
) -> None:
    """Show each vault's size, use and fill against its threshold, with its backups and resources.

    used_percent = billing.used / (billing.size x 1024) x 100; full when it
    reaches the vault's threshold (80 if it has none). Fullest first. A
    vault_id in FILTER lists that vault only; the rest of FILTER narrows the
    backups counted.

    \b
    Example:
      cbrq capacity --store inv
      cbrq capacity --store inv --fail-on full -f json -o capacity.json
      cbrq capacity --store inv --forecast
    """
    result = _run("capacity", options, forecast=forecast)
    emit(result, fmt, output, fail_on, options["fields"], only, origin=at_origin(options["at"]))


@click.command()
@analysis_source
@stuck_hours_option(
    "A backup in a passing status (protecting, deleting, ...) not updated for this "
    "many hours before --at is stuck."
)
@_only("hygiene")
@output_options
def hygiene(
    stuck_hours: int,
    only: tuple[str, ...] | None,
    fmt: str | None,
    output: str | None,
    **options: Any,
) -> None:
    """Find orphaned backups (no vault lists their resource), stuck ones and failed ones.

    Findings: orphan (only when some vault lists resources), stuck, error.
    One row per backup and finding, by id.

    \b
    Example:
      cbrq hygiene --store inv
      cbrq hygiene --store inv --stuck-hours 12 --at now -f ndjson
    """
    result = _run("hygiene", options, stuck_hours=stuck_hours)
    emit(result, fmt, output, None, options["fields"], only, origin=at_origin(options["at"]))


def _side(path: str) -> Inventory:
    """An inventory from a store directory (it has a manifest) or from dump paths."""
    from engine.inventory import Inventory
    from engine.store.layout import MANIFEST

    if (Path(path) / MANIFEST).is_file():
        return Inventory.open(path)
    return Inventory.from_dumps(path)


@click.command()
@click.argument("a", metavar="[A B]", required=False)
@click.argument("b", metavar="", required=False)
@store_option
@click.option(
    "--as-of",
    "as_of",
    callback=check_at,
    metavar="TIME",
    help=f"Instead of A and B: the store (--store) as of TIME is A ({TIME_WORDS}).",
)
@click.option(
    "--to",
    callback=check_at,
    metavar="TIME",
    help="With --as-of: the store as of TIME is B [default: the latest].",
)
@_only("diff")
@output_options
def diff(
    a: str | None,
    b: str | None,
    store: str | None,
    as_of: datetime | None,
    to: datetime | None,
    only: tuple[str, ...] | None,
    at: Any,
    fmt: str | None,
    output: str | None,
    fields: str | None,
) -> None:
    """Show the backups and vaults added, removed or changed from inventory A to B.

    A and B are each a store directory or a dump file or directory; or,
    with --as-of T1 [--to T2], the store (--store) as of T1 and as of T2
    (semantics §6; default the latest), without A and B. A changed row names the
    fields that differ (timestamps compared as instants, absent equal to
    null); vaults also give the change of billing.used (MB). On a terminal
    the counts come first; -f json gives every row. --at defaults to B's
    newest updated_at.

    \b
    Example:
      cbrq diff last-week-store today-store
      cbrq diff dumps/2026-11-01 dumps/2026-11-08 -f json -o changes.json
      cbrq diff --store inv --as-of 2026-11-01T00:00:00Z --to 2026-11-08T00:00:00Z
    """
    _check_sides(a, b, store, as_of, to)
    if a is not None and b is not None:
        with _side(a) as before, _side(b) as after:
            result = before.diff(after, at=at)
    else:
        with open_inventory(store, ()) as inventory:
            result = inventory.as_of(as_of).diff(inventory.as_of(to), at=at)
    emit(result, fmt, output, None, fields, only, origin=at_origin(at, f"{AT_DEFAULT} of B"))


def _check_sides(
    a: str | None, b: str | None, store: str | None, as_of: datetime | None, to: datetime | None
) -> None:
    """Two inventories (A B) or two instants of one store (--as-of, --to): one or the other."""
    instants = "--store S --as-of T1 [--to T2]"
    if a is not None and (store is not None or as_of is not None or to is not None):
        raise click.UsageError(
            f"give A and B (two inventories) or {instants} (two instants of one store), not both"
        )
    if a is not None and b is None:
        raise click.UsageError(f"give both A and B (or {instants} without them)")
    if a is None and as_of is None:
        first = "--to needs --as-of" if to is not None else "give A and B"
        raise click.UsageError(f"{first} (the inventories to compare), or {instants}")


#: The commands :mod:`engine.cli` adds to the ``cbrq`` group.
COMMANDS: Final[tuple[click.Command, ...]] = (stats, rpo, retention, capacity, hygiene, diff)
