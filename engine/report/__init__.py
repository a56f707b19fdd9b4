"""Phase: an inventory's analyses -> one self-contained HTML page.

``cbrq report`` gathers every analysis of SPEC §5 over one inventory (and the
few aggregates the charts need that they do not give, as lazy polars over the
narrow columns), has :mod:`engine.report.charts` draw them, and writes one HTML page.
Data flows one way: :func:`gather` (polars, the only code of the report that
reads the inventory) -> :func:`engine.report.charts.draw` and
:func:`engine.report.trends.draw_trends` (matplotlib) -> :func:`page` (HTML
text); :func:`build` runs them. A store holding two or more snapshots (SPEC §6)
adds a trends section after the summary; any other inventory gives the page
without it.

Guarantees:

- *self-contained*: inline CSS and SVG only; no script, font, image or style
  sheet from anywhere, and no ``http://`` or ``https://`` in the file;
- *deterministic*: the same inventory and ``at`` give a byte-identical file
  (no clock, no generation time; the charts' SVG is fixed by :mod:`engine.report.charts`);
- *no empty chart*: a chart with nothing to draw has no figure, and the page says why in
  its place (``No replication records: ...``);
- *printable*: printed or saved as PDF, each section starts an A4 page whose tables fit
  its width (the RPO table's verdict and age included) and no chart or card is split.

Needs the ``report`` extra (matplotlib): ``pip install 'cbrq[report]'``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.report.charts import Chart, draw
from engine.report.data import ReportData, ReportOptions, duration_text, gather
from engine.report.page import SECTIONS, TABLE_ROWS, TRENDS_SECTION, page, sections
from engine.report.trends import draw_trends

if TYPE_CHECKING:
    from engine.inventory import Inventory

__all__ = [
    "SECTIONS",
    "TABLE_ROWS",
    "TRENDS_SECTION",
    "Report",
    "ReportData",
    "ReportOptions",
    "build",
    "duration_text",
    "gather",
    "page",
    "sections",
]


@dataclass(frozen=True)
class Report:
    """The page and its charts (for ``--png``).

    Example: ``report = build(inv); Path("r.html").write_text(report.html)``.
    """

    html: str
    charts: tuple[Chart, ...]


def build(inv: Inventory, options: ReportOptions | None = None) -> Report:
    """Gather, draw and write the whole report of ``inv``.

    Example: ``Path("report.html").write_text(build(inv, ReportOptions(at="now")).html)``.
    """
    data = gather(inv, options or ReportOptions())
    charts = draw_trends(data) + draw(data)  # page order: trends come after the summary
    return Report(page(data, charts), charts)
