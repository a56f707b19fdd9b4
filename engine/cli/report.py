"""The ``cbrq report`` command: every analysis of an inventory as one HTML page.

A thin shell over :mod:`engine.report`: parse the options, build, write. It
takes its source and filter options from the analysis commands
(:mod:`engine.cli.analyses`), so FILTER, --store, --from, --project and -p
mean the same everywhere. Registered on the ``cbrq`` group by :mod:`engine.cli`;
it imports nothing of ``engine.cli`` (no import cycle), and matplotlib only when
run, so that a missing ``report`` extra is one clear message, not a traceback.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from engine.cli.analyses import analysis_source
from engine.cli.options import (
    at_option,
    max_age_option,
    min_days_option,
    open_inventory,
    output_file,
    output_option,
    query_params,
    semantics,
    stuck_hours_option,
)
from engine.errors import MissingExtra


@click.command()
@analysis_source
@output_option("report.html", "The HTML file to write (- for standard output).")
@at_option
@max_age_option("rpo: oldest acceptable good backup (90m, 24h, 7d, 2w).")
@min_days_option("retention: shortest acceptable retention, in days.")
@stuck_hours_option("hygiene: hours a backup may stay in a passing status (protecting, ...).")
@click.option(
    "--png",
    "png_dir",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Also write each chart as DIR/NAME.png.",
)
def report(
    output: str,
    at: datetime | None,
    max_age: timedelta,
    min_days: int,
    stuck_hours: int,
    png_dir: str | None,
    **options: Any,
) -> None:
    """Write one self-contained HTML report of the inventory: every analysis, with charts.

    A summary (counts, oldest and newest backup, the 'at' used), then a
    section per analysis (stats, rpo, replication, retention, capacity,
    hygiene), each with its table and charts: backups per day by status,
    error rate per week, size by resource type, RPO age distribution,
    replication coverage, retention periods, vault fill against thresholds,
    hygiene findings; with two or more snapshots, trends (up to --at) and
    each vault's fill forecast. Cards say their verdict (OK, REVIEW,
    ACTION); a chart with nothing to draw is a sentence saying so; printed,
    each section starts an A4 page. FILTER narrows the backups (a ListBackups
    filter: no marker, offset, limit or sort). Nothing is loaded from the
    network; the same inventory and --at give the same bytes. Needs the
    report extra: pip install 'cbrq[report]'.

    \b
    Example:
      cbrq report --store inv -o report.html
      cbrq report 'resource_type=OS::Nova::Server' --store inv --max-age 7d -o servers.html
      cbrq report --from sample_data --at 2026-11-01T00:00:00Z --png charts -o sample.html
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingExtra(
            "cbrq report", "matplotlib", "report", verb="draws its charts with"
        ) from None
    from engine.report import ReportOptions, build
    from engine.report.charts import write_pngs

    settings = ReportOptions(
        filter=query_params(options["filter_string"], options["params"]),
        at=at,
        max_age=max_age,
        min_days=min_days,
        stuck_hours=stuck_hours,
        project=options["project"],
        semantics=semantics(options["exact_names"], options["time_field"]),
    )
    with open_inventory(options["store"], options["dumps"]) as inventory:
        built = build(inventory, settings)
    with output_file(output) as out:
        out.write(built.html)
    if png_dir is not None:
        write_pngs(built.charts, Path(png_dir))
    where = "standard output" if output == "-" else output
    pngs = f", PNGs in {png_dir}" if png_dir else ""
    size = len(built.html.encode()) // 1024
    drawn = sum(chart.drawn for chart in built.charts)
    click.echo(f"report: {where} ({size} KB, {drawn} charts{pngs})", err=True)
