"""A query's filters as backend-neutral nodes, each carrying its English sentence.

The SPEC interpretation of a filtering parameter (``own_type=all_granted``,
the no-members fallback of ``own_type=shared``, ``--exact-names``,
``--time-field``, the ``incremental`` fallback to ``extend_info``) is decided
once, where :data:`engine.params.PARAMS`' rows build these nodes
(:func:`engine.params.filter_plan`). Each backend then translates every node
*type* once (:class:`engine.backends.Translator`), and ``cbrq explain`` prints
each node's :attr:`text`, so the words and the predicates cannot drift apart
between backends.

Nodes are plain frozen data (no polars, like :mod:`engine.query`): two equal
plans are equal values.

Example::

    >>> OneOf("status", ("available", "error")).text
    'status is one of available, error'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeAlias, get_args


def _instant(moment: datetime) -> str:
    """An instant as the explain sentences write it (UTC, microseconds)."""
    return f"{moment:%Y-%m-%dT%H:%M:%S.%f} UTC"


@dataclass(frozen=True)
class Equals:
    """A text column equals a value.

    Example::

        >>> Equals("vault_id", "v1").text
        "vault_id equals 'v1'"
    """

    field: str
    value: str

    @property
    def text(self) -> str:
        """The filter in words."""
        return f"{self.field} equals {self.value!r}"


@dataclass(frozen=True)
class Contains:
    """A text column holds a value as a substring, case-sensitive, literally (no pattern).

    Example::

        >>> Contains("name", "db").text
        "name contains 'db' (case-sensitive)"
    """

    field: str
    value: str

    @property
    def text(self) -> str:
        """The filter in words."""
        return f"{self.field} contains {self.value!r} (case-sensitive)"


@dataclass(frozen=True)
class OneOf:
    """A text column equals one of the values.

    Example::

        >>> OneOf("status", ("error",)).text
        'status is one of error'
    """

    field: str
    values: tuple[str, ...]

    @property
    def text(self) -> str:
        """The filter in words."""
        return f"{self.field} is one of {', '.join(self.values)}"


@dataclass(frozen=True)
class AtLeast:
    """A time column is at or after an instant (by instant; a null never matches).

    Example::

        >>> from datetime import UTC
        >>> AtLeast("created_at", datetime(2026, 1, 1, tzinfo=UTC)).text
        'created_at at or after 2026-01-01T00:00:00.000000 UTC'
    """

    field: str
    instant: datetime

    @property
    def text(self) -> str:
        """The filter in words."""
        return f"{self.field} at or after {_instant(self.instant)}"


@dataclass(frozen=True)
class AtMost:
    """A time column is at or before an instant (by instant; a null never matches).

    Example::

        >>> from datetime import UTC
        >>> AtMost("protected_at", datetime(2026, 1, 1, tzinfo=UTC)).text
        'protected_at at or before 2026-01-01T00:00:00.000000 UTC'
    """

    field: str
    instant: datetime

    @property
    def text(self) -> str:
        """The filter in words."""
        return f"{self.field} at or before {_instant(self.instant)}"


@dataclass(frozen=True)
class VaultUsedAtLeast:
    """The backup's vault is at least ``percent`` % used (SPEC §2 ``used_percent``).

    Usage is ``billing.used`` MB / (``billing.size`` GB x 1024) x 100, compared
    exactly (``used * 100 >= percent * size * 1024``); a backup whose vault is
    unknown or has size 0 does not match.

    Example::

        >>> VaultUsedAtLeast(80).text
        "the backup's vault is at least 80 % used (billing.used / billing.size)"
    """

    percent: int

    @property
    def text(self) -> str:
        """The filter in words."""
        return f"the backup's vault is at least {self.percent} % used (billing.used / billing.size)"


@dataclass(frozen=True)
class OwnedBy:
    """The backup's ``project_id`` is the project (``own_type=private``).

    Example::

        >>> OwnedBy("p1").text
        "owned by project 'p1'"
    """

    project: str

    @property
    def text(self) -> str:
        """The filter in words."""
        return f"owned by project {self.project!r}"


@dataclass(frozen=True)
class OwnedElsewhere:
    """The backup belongs to another project (or to none): ``own_type=shared`` with no member data.

    SPEC §2: with no share-member data at all, every foreign backup counts as
    shared to the project.

    Example::

        >>> OwnedElsewhere("p1").text
        'owned by another project (no share-member data: every such backup)'
    """

    project: str

    @property
    def text(self) -> str:
        """The filter in words."""
        return "owned by another project (no share-member data: every such backup)"


@dataclass(frozen=True)
class SharedTo:
    """Owned elsewhere (as :class:`OwnedElsewhere`) and named by a member record for the project.

    A member record names the project when its ``dest_project_id`` is it.

    Example::

        >>> SharedTo("p1").text
        "owned by another project and shared to 'p1'"
    """

    project: str

    @property
    def text(self) -> str:
        """The filter in words."""
        return f"owned by another project and shared to {self.project!r}"


@dataclass(frozen=True)
class MemberStatus:
    """A member record names the project (``dest_project_id``) with this status.

    Example::

        >>> MemberStatus("p1", "accepted").text
        "shared to 'p1' with member status 'accepted'"
    """

    project: str
    status: str

    @property
    def text(self) -> str:
        """The filter in words."""
        return f"shared to {self.project!r} with member status {self.status!r}"


@dataclass(frozen=True)
class IncrementalIs:
    """``incremental`` equals the value, falling back to ``extend_info.incremental``.

    Older dumps carry the flag only inside ``extend_info`` (SPEC §2); a backup
    with neither never matches.

    Example::

        >>> IncrementalIs(True).text
        'incremental is true (or extend_info.incremental)'
    """

    value: bool

    @property
    def text(self) -> str:
        """The filter in words."""
        return f"incremental is {str(self.value).lower()} (or extend_info.incremental)"


@dataclass(frozen=True)
class AnyOf:
    """At least one of the nodes holds (``own_type=all_granted``).

    Example::

        >>> AnyOf((OwnedBy("p1"), SharedTo("p1"))).text
        "owned by project 'p1', or owned by another project and shared to 'p1'"
    """

    nodes: tuple[Node, ...]

    @property
    def text(self) -> str:
        """The filter in words."""
        return ", or ".join(node.text for node in self.nodes)


#: A filter of a query plan: one of the node types above.
Node: TypeAlias = (
    Equals
    | Contains
    | OneOf
    | AtLeast
    | AtMost
    | VaultUsedAtLeast
    | OwnedBy
    | OwnedElsewhere
    | SharedTo
    | MemberStatus
    | IncrementalIs
    | AnyOf
)

#: Every node type: each backend translates each of them exactly once.
NODE_TYPES: Final[tuple[type, ...]] = get_args(Node)
