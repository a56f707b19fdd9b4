"""Query backends: one ListBackups semantics, compiled for polars, DuckDB and Spark.

A parameter's meaning is written once. :data:`engine.params.PARAMS` holds one
row per API parameter: its parser, its requirements, its words, what it needs
from the inventory, its effect and, for a filter, its plan: the
backend-neutral nodes of :mod:`engine.plan`, each with its sentence
(:func:`engine.params.filter_plan`). Every backend has exactly one rule per
**node type**, in a :class:`Translator`:

- polars: :data:`engine.backends.polars.TRANSLATE` (lazy polars predicates; the default);
- DuckDB: :data:`engine.backends.duckdb.TRANSLATE` (SQL conditions);
- Spark: :data:`engine.backends.spark.TRANSLATE` (pyspark Column predicates).

A translator is checked against :data:`engine.plan.NODE_TYPES` when its
module is imported, so a missing rule fails at import, not as a filter
silently left out. ``sort`` (``order``) and ``marker``/``offset``/``limit``
(``page``) are each backend's sort and paging; ``dec`` and
``show_replication`` are validated and have no effect on a dump (``none``).

Example::

    from engine.inventory import Inventory
    Inventory.open("cbrq-store", engine="duckdb").query("status=error&limit=5").ids
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar

from engine.plan import NODE_TYPES, Node

#: The backends cbrq has, by the name ``--engine`` takes.
ENGINES: Final[tuple[str, ...]] = ("polars", "duckdb", "spark")

#: What a backend's rules read (its tables) and what they give (a predicate, a condition).
C = TypeVar("C")
T = TypeVar("T")


class Translator(Generic[C, T]):
    """One backend's rules: one per :mod:`engine.plan` node type, checked complete when made.

    Calling it translates one node with the backend's tables; a node of a type
    it has no rule for raises ``TypeError("... no rule for <type>")`` (the base
    case of ibis' ``translate``). Making one with a rule missing, or with a rule
    for a type that is not a plan node, raises ImportError: translators are made
    at module level, so the module fails to import.

    Example::

        TRANSLATE = Translator("duckdb", {Equals: _equals, ...})
        TRANSLATE(Equals("vault_id", "v1"), SqlTables(True))
    """

    def __init__(self, backend: str, rules: Mapping[type, Callable[[Any, C], T]]) -> None:
        missing = [kind.__name__ for kind in NODE_TYPES if kind not in rules]
        unknown = sorted(kind.__name__ for kind in rules if kind not in NODE_TYPES)
        problems = [
            *([f"no rule for {', '.join(missing)}"] if missing else []),
            *(
                [f"rules for types that are not plan nodes: {', '.join(unknown)}"]
                if unknown
                else []
            ),
        ]
        if problems:
            raise ImportError(f"backend {backend}: " + "; ".join(problems))
        self.backend = backend
        self._rules: dict[type, Callable[[Any, C], T]] = dict(rules)

    @property
    def rules(self) -> Mapping[type, Callable[[Any, C], T]]:
        """The rule of each node type (read-only).

        Example: ``Translator("duckdb", {...}).rules[Equals]``.
        """
        return MappingProxyType(self._rules)

    def __call__(self, node: Node, tables: C) -> T:
        """``node`` in this backend's terms."""
        rule = self._rules.get(type(node))
        if rule is None:
            raise TypeError(f"backend {self.backend}: no rule for {type(node).__name__}")
        return rule(node, tables)
