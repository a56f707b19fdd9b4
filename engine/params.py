"""Phase: query string / CLI options / kwargs -> :class:`~engine.query.BackupQuery`.

Every input shape is first normalized into one multi-map
(:class:`QueryParams`); then one loop over :data:`PARAMS` -- one declarative
row per API parameter -- parses each value, collecting every problem, and
raises a single :class:`~engine.errors.QueryError` naming them all.

A filtering row also says what the parameter means: its ``plan`` builds
the backend-neutral nodes of :mod:`engine.plan` (each with its sentence), so
the SPEC interpretation is decided here once and every backend translates
node types, not parameters (:mod:`engine.backends`). Adding a filter of an
existing kind = one row here, one line in the reference model and its golden
cases; a new kind of filter adds a node and one rule per backend (a missing
one fails at import).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final
from urllib.parse import parse_qsl

from engine.errors import Problem, QueryError
from engine.instants import ALLOWED as TIME_ALLOWED
from engine.instants import parse_instant
from engine.plan import (
    AnyOf,
    AtLeast,
    AtMost,
    Contains,
    Equals,
    IncrementalIs,
    MemberStatus,
    Node,
    OneOf,
    OwnedBy,
    OwnedElsewhere,
    SharedTo,
    VaultUsedAtLeast,
)
from engine.query import BackupQuery, Semantics, SortKey
from engine.spec import (
    ALL_GRANTED_EPS,
    API_DEFAULT_LIMIT,
    BOOLEANS,
    DEFAULT_OWN_TYPE,
    IMAGE_TYPES,
    LIMIT_RANGE,
    MEMBER_STATUS_ALIASES,
    MEMBER_STATUSES,
    OFFSET_RANGE,
    OWN_TYPES,
    RESOURCE_TYPES,
    SORT_DIRECTIONS,
    SORT_KEYS,
    SORT_MAX_LENGTH,
    STATUSES,
    USED_PERCENT_RANGE,
)


class QueryParams:
    """An ordered multi-map of query parameters (``status`` may repeat).

    Example::

        >>> QueryParams.parse("status=available&status=error&limit=10").get_list("status")
        ['available', 'error']
    """

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self.pairs: list[tuple[str, str]] = [(str(k), str(v)) for k, v in pairs]

    @classmethod
    def parse(cls, query: str) -> QueryParams:
        """From a query string, percent-encoded or not (a leading ``?`` is fine)."""
        return cls(parse_qsl(query.lstrip("?"), keep_blank_values=True))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> QueryParams:
        """From keyword arguments: lists repeat a key, booleans become true/false."""
        pairs: list[tuple[str, str]] = []
        for key, value in mapping.items():
            values = value if isinstance(value, list | tuple) else [value]
            pairs.extend((key, _text(v)) for v in values if v is not None)
        return cls(pairs)

    @classmethod
    def of(cls, source: str | Mapping[str, Any] | QueryParams | None) -> QueryParams:
        """Any accepted input shape as a multi-map."""
        if source is None:
            return cls()
        if isinstance(source, QueryParams):
            return source
        if isinstance(source, str):
            return cls.parse(source)
        return cls.from_mapping(source)

    def merged(self, other: QueryParams) -> QueryParams:
        """These pairs followed by ``other``'s."""
        return QueryParams([*self.pairs, *other.pairs])

    def with_api_defaults(self) -> QueryParams:
        """These parameters as the live API reads them: ``limit`` 1000 unless given.

        Example::

            >>> QueryParams.parse("status=error").with_api_defaults().get_list("limit")
            ['1000']
        """
        if self.get_list("limit"):
            return self
        return self.merged(QueryParams([("limit", str(API_DEFAULT_LIMIT))]))

    def get_list(self, name: str) -> list[str]:
        """Every value given for ``name``, in order."""
        return [v for k, v in self.pairs if k == name]

    def names(self) -> list[str]:
        """Distinct parameter names, in first-seen order."""
        return list(dict.fromkeys(k for k, _ in self.pairs))


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class QueryContext:
    """What the inventory holds that validation needs (SPEC §2).

    ``resource_types``: a function giving the types present, called only for
    a value outside the API's list (``None``: accept any);
    ``has_vaults`` / ``has_members``: whether those tables have rows.

    Example: ``QueryContext(lambda: frozenset({"OS::Nova::Server"}), True, False)``.
    """

    resource_types: Callable[[], frozenset[str]] | None = None
    has_vaults: bool = True
    has_members: bool = True


class _Bad(Exception):
    def __init__(self, reason: str, allowed: str = "", hint: str = "") -> None:
        super().__init__(reason)
        self.reason, self.allowed, self.hint = reason, allowed, hint


Parser = Callable[[list[str], QueryContext], dict[str, Any]]
#: Problems of a parameter that only the whole query or the inventory reveal.
Requirement = Callable[[BackupQuery, "QueryParams", QueryContext], list[Problem]]
#: A filtering parameter's meaning: the plan nodes of its value in a parsed query
#: (none when it is not given), knowing whether any share-member record exists.
Builder = Callable[[BackupQuery, bool], tuple[Node, ...]]

#: What a parameter does once parsed: filters the backups, orders them, pages
#: them, or nothing at all on a dump (validated, no effect).
EFFECTS: Final[tuple[str, ...]] = ("filter", "order", "page", "none")


@dataclass(frozen=True)
class Param:
    """One API parameter: everything cbrq knows of it, in one row.

    ``field`` is the :class:`~engine.query.BackupQuery` field its value goes
    to; ``effect`` one of :data:`EFFECTS`; ``plan`` (given exactly when the
    effect is ``filter``) what the parameter means, as :mod:`engine.plan`
    nodes (:func:`filter_plan`); ``needs`` what it cannot do without
    (``project``, ``vaults``, ``members``: :data:`NEEDS` says how each is checked, and a query that
    lacks one is refused naming it); ``requires`` other checks that need the
    whole query.

    Example: ``Param("vault_id", "vault ID equals", _equals("vault_id"), field="equals",
    plan=_plan_equals("vault_id"))``.
    """

    name: str
    description: str
    parse: Parser
    repeatable: bool = False
    field: str = ""
    effect: str = "filter"
    needs: tuple[str, ...] = ()
    requires: Requirement | None = None
    plan: Builder | None = None

    def __post_init__(self) -> None:
        # A filter without a meaning would be silently left out of every backend.
        if (self.plan is not None) != (self.effect == "filter"):
            raise ValueError(f"parameter {self.name}: a plan is given exactly for a filter")


def _one(values: list[str]) -> str:
    return values[-1]


def _choice(value: str, allowed: Iterable[str], what: str) -> str:
    options = list(allowed)
    if value in options:
        return value
    near = difflib.get_close_matches(value, options, n=1)
    raise _Bad(
        f"not a valid {what}", ", ".join(options), f"did you mean {near[0]!r}?" if near else ""
    )


def _equals(name: str) -> Parser:
    return lambda values, _ctx: {"equals": ((name, _one(values)),)}


def _contains(name: str) -> Parser:
    return lambda values, _ctx: {"contains": ((name, _one(values)),)}


def _enum(name: str, allowed: tuple[str, ...], what: str) -> Parser:
    def parse(values: list[str], _ctx: QueryContext) -> dict[str, Any]:
        return {"equals": ((name, _choice(_one(values), allowed, what)),)}

    return parse


def _resource_type(values: list[str], ctx: QueryContext) -> dict[str, Any]:
    value = _one(values)
    if value in RESOURCE_TYPES or ctx.resource_types is None:
        return {"equals": (("resource_type", value),)}
    held = ctx.resource_types()
    if value in held:
        return {"equals": (("resource_type", value),)}
    allowed = sorted(set(RESOURCE_TYPES) | held)
    return {"equals": (("resource_type", _choice(value, allowed, "resource type")),)}


def _statuses(values: list[str], _ctx: QueryContext) -> dict[str, Any]:
    found: list[str] = []
    for value in values:
        for item in value.split(","):
            status = _choice(item, STATUSES, "status")
            if status not in found:
                found.append(status)
    return {"statuses": tuple(found)}


def _integer(text: str, low: int, high: int) -> int:
    allowed = f"an integer {low}-{high}"
    if not text.isascii() or not text.isdigit():
        raise _Bad("not an integer", allowed)
    if len(text.lstrip("0")) > len(str(high)):
        # Too many digits to be in range; this also keeps int() clear of
        # Python's limit on the digits of a string it converts.
        raise _Bad("out of range", allowed)
    number = int(text.lstrip("0") or "0")
    if not low <= number <= high:
        raise _Bad("out of range", allowed)
    return number


def _int(key: str, low: int, high: int) -> Parser:
    return lambda values, _ctx: {key: _integer(_one(values), low, high)}


def _boolean(key: str) -> Parser:
    def parse(values: list[str], _ctx: QueryContext) -> dict[str, Any]:
        value = BOOLEANS.get(_one(values).lower())
        if value is None:
            raise _Bad("not a boolean", "true, false")
        return {key: value}

    return parse


def _time(key: str) -> Parser:
    def parse(values: list[str], _ctx: QueryContext) -> dict[str, Any]:
        instant = parse_instant(_one(values))
        if instant is None:
            text = _one(values)
            hint = "for example 2018-02-01T12:00:00Z"
            if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):  # a date is cbrq's, not the API's
                hint = f"the API takes no bare date: write {text}T00:00:00Z"
            elif " " in text:
                hint = "a '+' in a query string means a space: write the offset as %2B08:00"
            raise _Bad("not a timestamp", TIME_ALLOWED, hint)
        return {key: instant}

    return parse


def _sort(values: list[str], _ctx: QueryContext) -> dict[str, Any]:
    text = _one(values)
    if len(text) > SORT_MAX_LENGTH:
        raise _Bad(f"longer than {SORT_MAX_LENGTH} characters")
    keys: list[SortKey] = []
    allowed = "key[:asc|desc],... with keys " + ", ".join(SORT_KEYS)
    for item in text.split(","):
        key, _, direction = item.partition(":")
        if ":" in item and direction not in SORT_DIRECTIONS:
            raise _Bad(f"bad direction {direction!r} for {key!r}", allowed)
        key = _choice(key, SORT_KEYS, "sort key") if key else ""
        if not key:
            raise _Bad("empty sort key", allowed)
        if any(k.key == key for k in keys):
            raise _Bad(f"sort key {key!r} given twice", allowed)
        keys.append(SortKey(key, direction != "asc"))
    return {"sort": tuple(keys)}


def _eps(values: list[str], _ctx: QueryContext) -> dict[str, Any]:
    value = _one(values)
    return {"enterprise_project_id": None if value == ALL_GRANTED_EPS else value}


def _own_type(values: list[str], _ctx: QueryContext) -> dict[str, Any]:
    return {"own_type": _choice(_one(values), OWN_TYPES, "own_type")}


def _member_status(values: list[str], _ctx: QueryContext) -> dict[str, Any]:
    value = MEMBER_STATUS_ALIASES.get(_one(values), _one(values))
    allowed = (*MEMBER_STATUSES, *MEMBER_STATUS_ALIASES)
    return {
        "member_status": MEMBER_STATUS_ALIASES.get(_choice(value, allowed, "member status"), value)
    }


def _marker(values: list[str], _ctx: QueryContext) -> dict[str, Any]:
    return {"marker": _one(values)}


def _ordered_times(query: BackupQuery, params: QueryParams, _ctx: QueryContext) -> list[Problem]:
    if query.start_time and query.end_time and query.start_time > query.end_time:
        value = f"{params.get_list('start_time')[-1]} > {params.get_list('end_time')[-1]}"
        return [Problem("start_time", value, "start_time is after end_time")]
    return []


# --- what each filter means: its plan nodes (engine.plan) ----------------------------


def _plan_equals(name: str) -> Builder:
    def build(q: BackupQuery, _members: bool) -> tuple[Node, ...]:
        value = dict(q.equals).get(name)
        return () if value is None else (Equals(name, value),)

    return build


def _plan_contains(name: str) -> Builder:
    def build(q: BackupQuery, _members: bool) -> tuple[Node, ...]:
        value = dict(q.contains).get(name)
        if value is None:
            return ()
        # --exact-names (Semantics.name_match): the name equals the value instead.
        return (
            (Equals(name, value),)
            if q.semantics.name_match == "exact"
            else (Contains(name, value),)
        )

    return build


def _plan_statuses(q: BackupQuery, _members: bool) -> tuple[Node, ...]:
    return (OneOf("status", q.statuses),) if q.statuses else ()


def _plan_start_time(q: BackupQuery, _members: bool) -> tuple[Node, ...]:
    # --time-field (Semantics.time_field) chooses the column both bounds apply to.
    return () if q.start_time is None else (AtLeast(q.semantics.time_field, q.start_time),)


def _plan_end_time(q: BackupQuery, _members: bool) -> tuple[Node, ...]:
    return () if q.end_time is None else (AtMost(q.semantics.time_field, q.end_time),)


def _plan_used_percent(q: BackupQuery, _members: bool) -> tuple[Node, ...]:
    return () if q.used_percent is None else (VaultUsedAtLeast(q.used_percent),)


def _plan_eps(q: BackupQuery, _members: bool) -> tuple[Node, ...]:
    # all_granted_eps was parsed to None: no filter.
    value = q.enterprise_project_id
    return () if value is None else (Equals("enterprise_project_id", value),)


def _plan_own_type(q: BackupQuery, has_members: bool) -> tuple[Node, ...]:
    if q.own_type is None or q.project is None:
        return ()
    if q.own_type == "private":
        return (OwnedBy(q.project),)
    # SPEC §2: with no share-member data at all, every foreign backup counts as shared.
    shared: Node = SharedTo(q.project) if has_members else OwnedElsewhere(q.project)
    if q.own_type == "shared":
        return (shared,)
    return (AnyOf((OwnedBy(q.project), shared)),)  # all_granted: private or shared


def _plan_member_status(q: BackupQuery, _members: bool) -> tuple[Node, ...]:
    if q.member_status is None or q.project is None:
        return ()
    return (MemberStatus(q.project, q.member_status),)


def _plan_incremental(q: BackupQuery, _members: bool) -> tuple[Node, ...]:
    # The fallback to extend_info.incremental is part of the node's meaning.
    return () if q.incremental is None else (IncrementalIs(q.incremental),)


#: What a parameter may need (its row's ``needs``), how to tell it is missing, and the
#: problem then: (reason, hint).
NEEDS: Final[dict[str, tuple[Callable[[BackupQuery, QueryContext], bool], str, str]]] = {
    "project": (
        lambda q, _c: q.project is None,
        "needs a project",
        "give the project (path /v3/{project_id} or --project)",
    ),
    "members": (
        lambda _q, c: not c.has_members,
        "the inventory has no share-member data",
        "ingest ShowMembersDetail dumps",
    ),
    "vaults": (
        lambda _q, c: not c.has_vaults,
        "the inventory has no vault data",
        "ingest ListVaults dumps",
    ),
}


def _missing(
    param: Param, query: BackupQuery, params: QueryParams, ctx: QueryContext
) -> list[Problem]:
    """The problems of a given parameter whose ``needs`` the query or the inventory lack."""
    value = params.get_list(param.name)[-1]
    return [
        Problem(param.name, value, reason, "", hint)
        for need in param.needs
        for lacking, reason, hint in [NEEDS[need]]
        if lacking(query, ctx)
    ]


#: Every query parameter of ListBackups (newest edition), one row each.
PARAMS: Final[tuple[Param, ...]] = (
    Param(
        "checkpoint_id",
        "restore point ID equals",
        _equals("checkpoint_id"),
        field="equals",
        plan=_plan_equals("checkpoint_id"),
    ),
    Param(
        "parent_id",
        "parent backup ID equals",
        _equals("parent_id"),
        field="equals",
        plan=_plan_equals("parent_id"),
    ),
    Param(
        "resource_id",
        "resource ID equals",
        _equals("resource_id"),
        field="equals",
        plan=_plan_equals("resource_id"),
    ),
    Param(
        "resource_az",
        "resource AZ equals",
        _equals("resource_az"),
        field="equals",
        plan=_plan_equals("resource_az"),
    ),
    Param(
        "vault_id",
        "vault ID equals",
        _equals("vault_id"),
        field="equals",
        plan=_plan_equals("vault_id"),
    ),
    Param(
        "name",
        "backup name contains (case-sensitive)",
        _contains("name"),
        field="contains",
        plan=_plan_contains("name"),
    ),
    Param(
        "resource_name",
        "resource name contains (case-sensitive)",
        _contains("resource_name"),
        field="contains",
        plan=_plan_contains("resource_name"),
    ),
    Param(
        "image_type",
        "backup type equals",
        _enum("image_type", IMAGE_TYPES, "image type"),
        field="equals",
        plan=_plan_equals("image_type"),
    ),
    Param(
        "resource_type",
        "resource type equals",
        _resource_type,
        field="equals",
        plan=_plan_equals("resource_type"),
    ),
    Param(
        "status",
        "status is one of",
        _statuses,
        repeatable=True,
        field="statuses",
        plan=_plan_statuses,
    ),
    Param(
        "start_time",
        "time at or after",
        _time("start_time"),
        field="start_time",
        requires=_ordered_times,
        plan=_plan_start_time,
    ),
    Param(
        "end_time",
        "time at or before",
        _time("end_time"),
        field="end_time",
        plan=_plan_end_time,
    ),
    Param(
        "used_percent",
        "vault usage at least N %",
        _int("used_percent", *USED_PERCENT_RANGE),
        field="used_percent",
        needs=("vaults",),
        plan=_plan_used_percent,
    ),
    Param(
        "enterprise_project_id",
        "enterprise project equals",
        _eps,
        field="enterprise_project_id",
        plan=_plan_eps,
    ),
    # own_type reads the member table when there is one; without it, "shared"
    # means every backup of another project (SPEC §2), so it needs only a project.
    Param(
        "own_type",
        "ownership (private, shared, all_granted)",
        _own_type,
        field="own_type",
        needs=("project",),
        plan=_plan_own_type,
    ),
    Param(
        "member_status",
        "shared to the project with member status",
        _member_status,
        field="member_status",
        needs=("project", "members"),
        plan=_plan_member_status,
    ),
    Param(
        "incremental",
        "incremental backup equals",
        _boolean("incremental"),
        field="incremental",
        plan=_plan_incremental,
    ),
    Param(
        "dec", "dedicated cloud (no effect on a dump)", _boolean("dec"), field="dec", effect="none"
    ),
    Param(
        "show_replication",
        "show replication (no effect on a dump)",
        _boolean("show_replication"),
        field="show_replication",
        effect="none",
    ),
    Param("sort", "sort keys", _sort, field="sort", effect="order"),
    Param("marker", "page starts after this backup ID", _marker, field="marker", effect="page"),
    Param(
        "offset",
        "records skipped after the marker",
        _int("offset", *OFFSET_RANGE),
        field="offset",
        effect="page",
    ),
    Param("limit", "page size", _int("limit", *LIMIT_RANGE), field="limit", effect="page"),
)
BY_NAME: Final[dict[str, Param]] = {p.name: p for p in PARAMS}


def parse_query(
    source: str | Mapping[str, Any] | QueryParams | None = None,
    *,
    project: str | None = None,
    semantics: Semantics | None = None,
    context: QueryContext | None = None,
) -> BackupQuery:
    """Parse and validate a ListBackups query; raise one QueryError listing every problem.

    Example::

        >>> q = parse_query("status=available,error&sort=name:asc&limit=10", project="p1")
        >>> q.statuses, q.own_type, q.limit
        (('available', 'error'), 'private', 10)
    """
    params = QueryParams.of(source)
    ctx = context or QueryContext()
    problems: list[Problem] = []
    fields: dict[str, Any] = {"equals": (), "contains": ()}
    for name in params.names():
        values = params.get_list(name)
        problem = _check_one(name, values)
        if problem is not None:
            problems.append(problem)
            continue
        try:
            parsed = BY_NAME[name].parse(values, ctx)
        except _Bad as bad:
            problems.append(Problem(name, values[-1], bad.reason, bad.allowed, bad.hint))
            continue
        for key, value in parsed.items():
            fields[key] = fields.get(key, ()) + value if key in ("equals", "contains") else value
    query = BackupQuery(**fields, project=project, semantics=semantics or Semantics())
    problems.extend(_cross_checks(query, params, ctx))
    if problems:
        raise QueryError(problems)
    if project is not None and query.own_type is None:
        query = replace(query, own_type=DEFAULT_OWN_TYPE)
    return query


def filter_plan(query: BackupQuery, has_members: bool) -> tuple[Node, ...]:
    """The filters of ``query`` as :mod:`engine.plan` nodes, in :data:`PARAMS` order.

    ``has_members``: whether the inventory holds any share-member record
    (SPEC §2: without one, ``own_type=shared`` means every foreign backup).
    Every backend applies, and ``explain`` words, exactly these nodes.

    Example::

        >>> q = parse_query("status=error&own_type=all_granted", project="p1")
        >>> for node in filter_plan(q, has_members=True):
        ...     print(node.text)
        status is one of error
        owned by project 'p1', or owned by another project and shared to 'p1'
    """
    return tuple(
        node
        for param in PARAMS
        if param.plan is not None
        for node in param.plan(query, has_members)
    )


def parse_paging(
    source: str | QueryParams, *, default_limit: int = API_DEFAULT_LIMIT, what: str = "ListVaults"
) -> tuple[int, int]:
    """Parse a query string that may hold only ``offset`` and ``limit``: (offset, limit).

    The same rules and errors as ListBackups' own ``offset`` and ``limit``;
    any other parameter is a problem naming ``what``. Raises QueryError.

    Example::

        >>> parse_paging("limit=10&offset=20")
        (20, 10)
    """
    params = QueryParams.of(source)
    problems: list[Problem] = []
    fields: dict[str, Any] = {"offset": 0, "limit": default_limit}
    for name in params.names():
        values = params.get_list(name)
        if name not in ("offset", "limit"):
            problems.append(Problem(name, values[-1], f"not supported by {what}", "limit, offset"))
            continue
        problem = _check_one(name, values)
        if problem is None:
            try:
                fields.update(BY_NAME[name].parse(values, QueryContext()))
            except _Bad as bad:
                problem = Problem(name, values[-1], bad.reason, bad.allowed, bad.hint)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise QueryError(problems)
    return fields["offset"], fields["limit"]


def _check_one(name: str, values: list[str]) -> Problem | None:
    if name not in BY_NAME:
        near = difflib.get_close_matches(name, list(BY_NAME), n=1)
        hint = f"did you mean {near[0]!r}?" if near else ""
        return Problem(name, values[-1], "unknown parameter", "", hint)
    if len(values) > 1 and not BY_NAME[name].repeatable:
        return Problem(name, ",".join(values), "given more than once")
    if any(v == "" for v in values):
        return Problem(name, "", "empty value")
    return None


def _cross_checks(query: BackupQuery, params: QueryParams, ctx: QueryContext) -> list[Problem]:
    """Each given parameter's ``needs`` and ``requires`` checks, in table order."""
    given = set(params.names())
    problems: list[Problem] = []
    for param in PARAMS:
        if param.name in given:
            problems += _missing(param, query, params, ctx)
            if param.requires is not None:
                problems += param.requires(query, params, ctx)
    return problems


def describe_params() -> list[tuple[str, str]]:
    """(name, description) of every parameter, for help texts.

    Example::

        >>> dict(describe_params())["limit"]
        'page size'
    """
    return [(p.name, p.description) for p in PARAMS]
