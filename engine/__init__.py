"""cbrq: an offline query engine for exported Huawei Cloud CBR backup inventories.

The import package is ``engine``; the command is ``cbrq``. The names below are
the public surface (``__all__``, pinned by ``tests/test_public_surface.py``);
each is also importable from the module that defines it, as the README shows.
They load on first use, so ``import engine`` (and ``cbrq --help``) imports
neither polars nor pyarrow. Ingest is ``engine.api.ingest``: ``engine.ingest.sources``
is the module that reads dump files.

Example::

    import engine
    from engine.api import ingest

    ingest(["sample_data"], store="cbrq-store")
    print(engine.Inventory.open("cbrq-store").query("status=error&limit=5").count)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Each public name and the module it is documented in (engine.api re-exports its own).
_HOMES: dict[str, str] = {
    "Inventory": "engine.inventory",
    "compact": "engine.api",
    "store_info": "engine.api",
    "export_pages": "engine.api",
    "load_dumps": "engine.api",
    "IngestSummary": "engine.api",
    "parse_query": "engine.params",
    "BackupQuery": "engine.query",
    "Semantics": "engine.query",
    "SortKey": "engine.query",
    "CbrqError": "engine.errors",
    "InputError": "engine.errors",
    "RecordError": "engine.errors",
    "StoreError": "engine.errors",
    "QueryError": "engine.errors",
    "MissingExtra": "engine.errors",
    "NotFoundError": "engine.errors",
}

__all__ = [
    "BackupQuery",
    "CbrqError",
    "IngestSummary",
    "InputError",
    "Inventory",
    "MissingExtra",
    "NotFoundError",
    "QueryError",
    "RecordError",
    "Semantics",
    "SortKey",
    "StoreError",
    "__version__",
    "compact",
    "export_pages",
    "load_dumps",
    "parse_query",
    "store_info",
]

if TYPE_CHECKING:
    from engine.api import (
        IngestSummary,
        compact,
        export_pages,
        load_dumps,
        store_info,
    )
    from engine.errors import (
        CbrqError,
        InputError,
        MissingExtra,
        NotFoundError,
        QueryError,
        RecordError,
        StoreError,
    )
    from engine.inventory import Inventory
    from engine.params import parse_query
    from engine.query import BackupQuery, Semantics, SortKey


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
