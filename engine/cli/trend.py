"""The ``cbrq trend`` command (SPEC §6): the inventory counted per day, week or month.

A thin shell over :meth:`~engine.inventory.Inventory.trend`: parse, call,
render with the analyses' writer (every format, ``-o``, ``--fields``, ``at``
stated as the analyses state it: here the last row's). Registered on the
``cbrq`` group by :mod:`engine.cli`; errors are turned into messages by the group.

Example::

    cbrq trend --store inv --every week -f csv -o weekly.csv
"""

from __future__ import annotations

from typing import Any, Final

import click

from engine.cli.analyses import analysis_source, emit
from engine.cli.options import (
    TIME_WORDS,
    check_at,
    format_option,
    max_age_option,
    open_inventory,
    output_option,
    query_params,
    semantics,
)
from engine.spec import DEFAULT_TREND_EVERY, STATS_PERIODS


@click.command()
@analysis_source
@click.option(
    "--every",
    type=click.Choice(list(STATS_PERIODS)),
    default=DEFAULT_TREND_EVERY,
    show_default=True,
    help="The period: day (UTC), week (ISO, from Monday) or month.",
)
@click.option(
    "--since",
    callback=check_at,
    metavar="TIME",
    help=f"Start at this instant's period ({TIME_WORDS}).",
)
@click.option(
    "--until", callback=check_at, metavar="TIME", help="End at this instant (as --since)."
)
@max_age_option("breaches: rpo's oldest acceptable good backup (90m, 24h, 7d, 2w).")
@format_option()
@output_option()
@click.option(
    "--fields", metavar="A,B", help="Only these columns of the rows, in this order (every format)."
)
def trend(
    every: str,
    since: Any,
    until: Any,
    max_age: Any,
    fmt: str | None,
    output: str | None,
    **options: Any,
) -> None:
    """Count the inventory at the end of every day, week or month, from the first snapshot on.

    One row per period end: at, backups and size_gb present then, available
    and error among them, added and gone during the period, breaches (rpo
    rows never or breach with --max-age), used_mb (billing.used of the
    vaults present). The last row is at the last snapshot. Needs a store fed
    `cbrq ingest --snapshot`. FILTER is any ListBackups filter (paging and
    sort are errors), applied to each backup's version at each period end.

    \b
    Example:
      cbrq trend --store inv
      cbrq trend 'status=error' --store inv --every week -f csv -o errors.csv
      cbrq trend --store inv --since 2026-01-01T00:00:00Z --max-age 36h -f json
    """
    with open_inventory(options["store"], options["dumps"]) as inventory:
        result = inventory.trend(
            query_params(options["filter_string"], options["params"]),
            every=every,
            since=since,
            until=until,
            max_age=max_age,
            project=options["project"],
            semantics=semantics(options["exact_names"], options["time_field"]),
        )
    emit(result, fmt, output, None, options["fields"], origin="the last row's")


COMMANDS: Final[tuple[click.Command, ...]] = (trend,)
