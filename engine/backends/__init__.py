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

Every backend is a :class:`Backend`: bound to one inventory (its commit), it
answers, counts, says its filters in words and shows its own plan. The
polars, DuckDB and Spark backends are in :data:`REGISTRY` (the ``--engine``
choices are its keys; :func:`backend_class` checks what each requires before
importing it); the server's in-memory executor,
:class:`engine.backends.resident.Resident`, has the same shape.

Example::

    from engine.inventory import Inventory
    Inventory.open("cbrq-store", engine="duckdb").query("status=error&limit=5").ids
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, Protocol, TypeVar

from engine.errors import MissingExtra
from engine.plan import NODE_TYPES, Node

if TYPE_CHECKING:
    from engine.backends.base import Result, Source
    from engine.query import BackupQuery


class Backend(Protocol):
    """One engine answering ListBackups for one inventory (one commit), SPEC §2 exactly.

    Made by its class from a :class:`~engine.backends.base.Source` (an
    inventory); :meth:`check` says, before any is made, whether this machine
    has what the backend needs beyond its Python package (Spark: a Java
    runtime), raising :class:`~engine.errors.MissingExtra`.

    Example::

        backend = backend_class("duckdb")(Inventory.open("cbrq-store"))
        backend.count(query), backend.answer(query, ["id"]).ids, print(backend.plan(query))
    """

    #: Its ``--engine`` name.
    name: ClassVar[str]

    def __init__(self, source: Source) -> None:
        """The backend answering for ``source``'s commit."""
        ...

    @classmethod
    def check(cls, source: Source) -> None:
        """Raise MissingExtra if this machine lacks what the backend needs for ``source``."""
        ...

    def answer(self, query: BackupQuery, columns: Sequence[str] | None = None) -> Result:
        """The count and the page (``columns`` of each record; default all)."""
        ...

    def count(self, query: BackupQuery) -> int:
        """The number of matches before paging, without reading records."""
        ...

    def words(self, query: BackupQuery) -> list[str]:
        """Each filter of the plan this backend applies, in words (``cbrq explain``)."""
        ...

    def plan(self, query: BackupQuery) -> str:
        """The backend's own plan of the query, as text."""
        ...


@dataclass(frozen=True)
class Entry:
    """Where a backend lives and what must be installed for it.

    ``package``: the Python package its module imports (``None``: one of
    cbrq's own dependencies); ``extra``: cbrq's extra that installs it.

    Example: ``Entry("engine.backends.duckdb", "DuckDBBackend", "duckdb", "duckdb")``.
    """

    module: str
    cls: str
    package: str | None = None
    extra: str = ""


#: The backends ``--engine`` chooses from, by name (the first is the default).
REGISTRY: Final[Mapping[str, Entry]] = MappingProxyType(
    {
        "polars": Entry("engine.backends.polars", "PolarsBackend"),
        "duckdb": Entry("engine.backends.duckdb", "DuckDBBackend", "duckdb", "duckdb"),
        "spark": Entry("engine.backends.spark", "SparkBackend", "pyspark", "spark"),
    }
)

#: The backends cbrq has, by the name ``--engine`` takes.
ENGINES: Final[tuple[str, ...]] = tuple(REGISTRY)


def backend_class(name: str) -> type[Backend]:
    """The backend called ``name``, its package checked before its module is imported.

    Raises ValueError for an unknown name (naming the allowed ones) and
    :class:`~engine.errors.MissingExtra` when its package is not installed.

    Example: ``backend_class("polars").name`` -> ``"polars"``.
    """
    entry = REGISTRY.get(name)
    if entry is None:
        near = difflib.get_close_matches(name, ENGINES, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"unknown engine {name!r} (allowed: {', '.join(ENGINES)}){hint}")
    if entry.package is not None and importlib.util.find_spec(entry.package) is None:
        raise MissingExtra(f"--engine {name}", entry.package, entry.extra)
    made: type[Backend] = getattr(importlib.import_module(entry.module), entry.cls)
    return made


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
