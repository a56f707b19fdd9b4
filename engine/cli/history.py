"""The history commands of ``cbrq`` (SPEC §6): snapshots, history.

A thin shell over :meth:`~engine.inventory.Inventory.snapshots` and
:meth:`~engine.inventory.Inventory.history`: parse, call, render with the
analyses' writer (every format, ``--fields``, ``at`` stated as the analyses
state it: here the newest ``taken_at`` of the store). Registered on the
``cbrq`` group by :mod:`engine.cli`; errors are turned into messages by the
group.

Example::

    cbrq snapshots --store inv -f table
    cbrq history b-1 b-2 --store inv -f json
"""

from __future__ import annotations

from typing import Any, Final

import click

from engine.cli.analyses import emit, listing_options
from engine.cli.options import open_inventory, store_option


@click.command()
@store_option
@listing_options
def snapshots(store: str | None, fmt: str | None, output: str | None, **options: Any) -> None:
    """List the snapshot ingests of the store: what each export held, added and lost.

    One row per ingest made with --snapshot, in ingest order: seq, taken_at,
    scope, projects, backups (those it covers present at its taken_at),
    added and gone (against the previous snapshot of the same projects or
    vaults), changed (present at both, another version).

    \b
    Example:
      cbrq snapshots --store inv
      cbrq snapshots --store inv -f csv -o snapshots.csv
    """
    with open_inventory(store, ()) as inventory:
        result = inventory.snapshots()
    emit(result, fmt, output, None, options["fields"], origin="the newest taken_at")


@click.command()
@click.argument("ids", nargs=-1, required=True)
@store_option
@listing_options
def history(
    ids: tuple[str, ...], store: str | None, fmt: str | None, output: str | None, **options: Any
) -> None:
    """Show each backup's history (IDS): when it was seen, changed, gone and back.

    One row per change, in time order: id, taken_at (of the ingest that
    showed it), event (seen, changed, gone, back), status and updated_at of
    the version. A backup no ingest held is an error naming it (exit 2).

    \b
    Example:
      cbrq history b1c4afd9-e7a6-4888-9010-c2bac3aa7910 --store inv
      cbrq history ID1 ID2 --store inv -f json
    """
    with open_inventory(store, ()) as inventory:
        result = inventory.history(list(ids))
    emit(result, fmt, output, None, options["fields"], origin="the newest taken_at")


COMMANDS: Final[tuple[click.Command, ...]] = (snapshots, history)
