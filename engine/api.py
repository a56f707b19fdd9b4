"""The Python API: ingest dumps into an inventory and export it back.

The documented public functions, re-exported from the phases that define
them (their path here is documented in the README): ingest and
:func:`load_dumps` from :mod:`engine.ingest.pipeline`; :func:`compact`,
:func:`store_info` and :func:`export_pages` from :mod:`engine.store.admin`.
The CLI is a thin shell around them.

Example::

    from engine.api import ingest, export_pages
    summary = ingest(["sample_data"], store="cbrq-store")
    print(summary.backups_new, "new backups")
"""

from __future__ import annotations

from engine.ingest.pipeline import IngestSummary, Loaded, ProgressFn, Tick, ingest, load_dumps
from engine.store.admin import compact, export_pages, store_info

__all__ = [
    "IngestSummary",
    "Loaded",
    "ProgressFn",
    "Tick",
    "compact",
    "export_pages",
    "ingest",
    "load_dumps",
    "store_info",
]
