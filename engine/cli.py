"""The ``cbrq`` command line: a thin shell over :mod:`engine.api`.

Each command parses its options, calls the library and renders; errors are
turned into messages and exit statuses in one place (:class:`_Group`).
Heavy modules (polars, pyarrow) are imported inside commands so that
``cbrq --help`` stays fast.
"""

from __future__ import annotations

import itertools
import sys
from typing import TYPE_CHECKING, Any

import click

from engine.errors import CbrqError

if TYPE_CHECKING:
    from engine.api import IngestSummary, Tick

STORE_HELP = "Inventory directory [default: $CBRQ_STORE or ./cbrq-store]."


class _Group(click.Group):
    """Converts every cbrq error into its message on stderr and its exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CbrqError as err:
            click.echo(f"cbrq: error: {err}", err=True)
            ctx.exit(err.exit_status)
        except BrokenPipeError:
            # The reader (`| head`) has gone: stop quietly, as Unix tools do.
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cbrq")
def main() -> None:
    """Query exported Huawei Cloud CBR backup inventories offline.

    \b
    Example:
      cbrq ingest sample_data --store inv
      cbrq export --store inv -f ndjson | head
    """


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--store", "store", type=click.Path(file_okay=False), help=STORE_HELP)
@click.option(
    "--lenient",
    is_flag=True,
    help="Keep going past bad records: they go to the quarantine file with their reason.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
def ingest(paths: tuple[str, ...], store: str | None, lenient: bool, quiet: bool) -> None:
    """Ingest CBR dump files (PATHS) into the inventory.

    PATHS are files (.json, .json.gz, NDJSON), directories (searched
    recursively for *.json, *.ndjson, *.jsonl, optionally .gz), glob
    patterns, or - for standard input. A file already ingested (same
    content hash) is skipped. All or nothing: on a bad record the inventory
    is left exactly as it was (exit 1), unless --lenient.

    \b
    Example:
      cbrq ingest sample_data --store inv
      zcat dump.json.gz | cbrq ingest - --store inv
    """
    from engine import api

    show_bar = not quiet and sys.stderr.isatty()
    with _progress(show_bar) as tick:
        summary = api.ingest(paths, store, lenient=lenient, progress=tick)
    if not quiet:
        _print_summary(summary)


def _progress(enabled: bool) -> Any:
    """A context giving a progress callback: a rich bar on a terminal, else nothing."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext(None)
    return _Bar()


class _Bar:
    """A rich progress bar of files, records and MB/s on stderr."""

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
            TextColumn("ingest"),
            BarColumn(),
            TextColumn("{task.fields[files]} files"),
            TextColumn("{task.fields[records]:,} records"),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.progress.__enter__()
        self.task = self.progress.add_task("ingest", total=None, files="0", records=0)
        return self.update

    def update(self, tick: Tick) -> None:
        self.progress.update(
            self.task,
            total=tick.bytes_total or None,
            completed=tick.bytes_done,
            files=f"{tick.files_done}/{tick.files_total}",
            records=tick.records,
        )

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)


def _print_summary(summary: IngestSummary) -> None:
    lines = [
        f"files: {summary.files} ingested, {len(summary.skipped)} skipped (already ingested)",
        f"backups: {summary.backups_new} new, {summary.backups_replaced} replaced, "
        f"{summary.backups_duplicate} duplicate ({summary.records['backups']} read)",
        f"vaults: {summary.records['vaults']} read; members: {summary.records['members']} read",
        "inventory: " + ", ".join(f"{n} {k}" for k, n in summary.totals.items()),
    ]
    if summary.unknown_keys:
        keys = sorted(summary.unknown_keys)
        shown = ", ".join(keys[:10]) + (f", ... ({len(keys)} in all)" if len(keys) > 10 else "")
        lines.append(f"unknown keys kept: {shown}")
    if summary.quarantined:
        lines.append(f"quarantined: {summary.quarantined} (see {summary.quarantine_file})")
    for label in summary.skipped:
        lines.append(f"skipped: {label}")
    mb = summary.bytes_read / 1e6
    lines.append(f"elapsed: {summary.elapsed:.2f} s ({mb:.1f} MB)")
    for line in lines:
        click.echo(line, err=True)


@main.command()
@click.option("--store", "store", type=click.Path(file_okay=False), help=STORE_HELP)
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["json", "ndjson"]),
    default="json",
    show_default=True,
    help="json: one response (or a JSON array of pages with --page-size); "
    "ndjson: one response page per line.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write here instead of standard output.",
)
@click.option(
    "--kind",
    type=click.Choice(["backups", "vaults", "members"]),
    default="backups",
    show_default=True,
    help="Which records to export.",
)
@click.option(
    "--page-size",
    type=click.IntRange(min=1),
    default=None,
    help="Records per page [default: all in one page for json, 1000 for ndjson].",
)
def export(
    store: str | None, fmt: str, output: str | None, kind: str, page_size: int | None
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
    pages = api.export_pages(store, kind=kind, page_size=size)
    first = next(pages)  # fails before any output file is created
    pages = itertools.chain([first], pages)
    with click.open_file(output or "-", "w", encoding="utf-8") as out:
        if fmt == "ndjson":
            for page in pages:
                out.write(page + "\n")
        elif page_size is None:
            out.write(next(pages) + "\n")
        else:
            out.write("[" + ",".join(pages) + "]\n")


if __name__ == "__main__":
    main()
