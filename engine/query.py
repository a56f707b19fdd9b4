"""The parsed ListBackups query as plain frozen data.

A :class:`BackupQuery` is what :mod:`engine.params` makes of a query string,
CLI options or keyword arguments, and what :mod:`engine.backends.polars` turns into a
lazy plan. It holds no polars objects and does no work: two equal queries
are equal values, and a query can be printed, hashed and compared in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Semantics:
    """Choices SPEC §2 leaves to the user.

    ``name_match``: ``"substring"`` (default, case-sensitive) or ``"exact"``
    for ``name`` and ``resource_name``; ``time_field``: ``"created_at"``
    (default) or ``"protected_at"`` for ``start_time``/``end_time``.

    Example::

        >>> Semantics(name_match="exact").time_field
        'created_at'
    """

    name_match: str = "substring"
    time_field: str = "created_at"


@dataclass(frozen=True)
class SortKey:
    """One sort key and its direction.

    Example::

        >>> str(SortKey("created_at", descending=True))
        'created_at:desc'
    """

    key: str
    descending: bool

    def __str__(self) -> str:
        return f"{self.key}:{'desc' if self.descending else 'asc'}"


@dataclass(frozen=True)
class BackupQuery:
    """Every parameter of ListBackups, parsed and validated.

    ``equals`` maps field names to the value they must equal; ``contains``
    maps name fields to a substring (or, with exact semantics, to an exact
    value); ``statuses`` is the OR-set of ``status``; times are aware UTC
    datetimes. ``project`` is the caller's project (path or CLI option).

    Example::

        >>> BackupQuery(statuses=("available", "error"), limit=100).offset
        0
    """

    equals: tuple[tuple[str, str], ...] = ()
    contains: tuple[tuple[str, str], ...] = ()
    statuses: tuple[str, ...] = ()
    start_time: datetime | None = None
    end_time: datetime | None = None
    used_percent: int | None = None
    enterprise_project_id: str | None = None
    own_type: str | None = None
    member_status: str | None = None
    incremental: bool | None = None
    dec: bool | None = None
    show_replication: bool | None = None
    sort: tuple[SortKey, ...] = ()
    marker: str | None = None
    offset: int = 0
    limit: int | None = None
    project: str | None = None
    semantics: Semantics = field(default_factory=Semantics)
