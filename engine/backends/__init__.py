"""Query backends: one ListBackups semantics, compiled for polars, DuckDB and Spark.

A parameter is the unit. :data:`engine.params.PARAMS` holds one row per API
parameter: its parser, its requirements, its words, what it needs from the
inventory, and its effect. Every parameter whose effect is ``filter`` has
exactly one rule in every backend, registered by name:

- polars: :data:`engine.compile.RULES` (lazy polars predicates; the default);
- DuckDB: :data:`engine.backends.duckdb.RULES` (SQL conditions);
- Spark: :data:`engine.backends.spark.RULES` (pyspark Column predicates).

A backend module passes its table to :func:`ordered_rules` when it is
imported, so a missing or misspelt rule fails at import, not as a filter
silently left out. ``sort`` (``order``) and ``marker``/``offset``/``limit``
(``page``) are each backend's sort and paging; ``dec`` and
``show_replication`` are validated and have no effect on a dump (``none``).

Example::

    from engine.inventory import Inventory
    Inventory.open("cbrq-store", engine="duckdb").query("status=error&limit=5").ids
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, TypeVar

from engine.params import PARAMS

#: The backends cbrq has, by the name ``--engine`` takes.
ENGINES: Final[tuple[str, ...]] = ("polars", "duckdb", "spark")

R = TypeVar("R")


def filter_params() -> list[str]:
    """The names of the parameters that filter, in :data:`~engine.params.PARAMS` order.

    Example: ``"used_percent" in filter_params()``.
    """
    return [p.name for p in PARAMS if p.effect == "filter"]


def setting(field: str) -> list[str]:
    """The filtering parameters whose value goes to the ``BackupQuery`` field ``field``.

    The ``equals`` and ``contains`` parameters share one rule shape, so
    backends make their rules from this list.

    Example: ``setting("contains")`` -> ``["name", "resource_name"]``.
    """
    return [p.name for p in PARAMS if p.effect == "filter" and p.field == field]


def ordered_rules(backend: str, rules: Mapping[str, R]) -> tuple[R, ...]:
    """A backend's rules in table order; raises ImportError if one is missing or unknown.

    Example: ``_ORDER = ordered_rules("duckdb", RULES)``.
    """
    wanted = filter_params()
    missing = [name for name in wanted if name not in rules]
    unknown = sorted(set(rules) - set(wanted))
    if missing or unknown:
        raise ImportError(
            f"backend {backend}: "
            + "; ".join(
                part
                for part in (
                    f"no rule for {', '.join(missing)}" if missing else "",
                    f"rules for parameters that do not filter: {', '.join(unknown)}"
                    if unknown
                    else "",
                )
                if part
            )
        )
    return tuple(rules[name] for name in wanted)
