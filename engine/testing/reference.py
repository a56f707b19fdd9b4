"""A naive reference model of ListBackups (SPEC §2) and the analyses (SPEC §5).

Plain Python only: records are the dicts of a dump (as ``cbrq export`` gives
them back), the query is a query string, and the answer is the API response
dict or ``{"error": [bad parameter names]}``. :func:`analysis` and
:func:`diff` answer SPEC §5 with the JSON of ``cbrq <analysis> -f json``;
:func:`as_of`, :func:`snapshots`, :func:`history`, :func:`trend` and
:func:`forecast` model SPEC §6 over a list of :class:`Ingest` calls (its
readings are listed at its section). It
reads the written decisions of :mod:`engine.spec` (restated here where §5 needs
them) but none of the engine's code paths, so that the engine and this model
can disagree. Short on purpose: read it in one sitting.

Example::

    answer(backups, vaults, members, "status=available,error&sort=name:asc&limit=10")
    analysis("hygiene", backups, vaults, members, "vault_id=v1", stuck_hours=12)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any, Protocol
from urllib.parse import parse_qsl

from engine import spec

Record = dict[str, Any]


def _instant(text: Any) -> datetime | None:
    """Parse a timestamp (own simple implementation of SPEC §1's forms)."""
    if not isinstance(text, str) or not text.isascii():
        return None
    zone = 0
    if text.endswith("Z"):
        text = text[:-1]
    elif len(text) > 6 and text[-6] in "+-" and text[-3] == ":":
        sign = -1 if text[-6] == "-" else 1
        hours, minutes = text[-5:-3], text[-2:]
        if not (hours.isdigit() and minutes.isdigit()) or int(minutes) > 59:
            return None
        zone = sign * (int(hours) * 60 + int(minutes))
        text = text[:-6]
    whole, _, fraction = text.partition(".")
    if "." in text and not (1 <= len(fraction) <= 9 and fraction.isdigit()):
        return None
    if (
        len(whole) != 19
        or whole[10] != "T"
        or not whole.replace("-", "").replace(":", "").replace("T", "").isdigit()
    ):
        return None
    try:
        base = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        return base + timedelta(microseconds=int(fraction[:6].ljust(6, "0") or 0), minutes=-zone)
    except (ValueError, OverflowError):
        return None


#: Every parameter ListBackups knows; any other name is a bad parameter.
_KNOWN_PARAMS: tuple[str, ...] = (
    "checkpoint_id",
    "parent_id",
    "resource_id",
    "resource_az",
    "vault_id",
    "name",
    "resource_name",
    "image_type",
    "resource_type",
    "status",
    "start_time",
    "end_time",
    "used_percent",
    "enterprise_project_id",
    "own_type",
    "member_status",
    "incremental",
    "dec",
    "show_replication",
    "sort",
    "marker",
    "offset",
    "limit",
)


def _bad_values(
    params: dict[str, list[str]],
    project: str | None,
    vaults: list[Record],
    members: list[Record],
    types: set[str],
) -> list[str]:
    bad = [
        name
        for name, values in params.items()
        if not _value_ok(name, values, project, vaults, members, types)
    ]
    start, end = (
        _instant(params[k][-1]) if k in params and k not in bad else None
        for k in ("start_time", "end_time")
    )
    if start is not None and end is not None and start > end:
        bad.append("start_time")
    return bad


def _value_ok(
    name: str,
    values: list[str],
    project: str | None,
    vaults: list[Record],
    members: list[Record],
    types: set[str],
) -> bool:
    """Whether parameter ``name`` given as ``values`` is one the API accepts here."""
    value = values[-1]
    ok = name in _KNOWN_PARAMS and (len(values) == 1 or name == "status") and all(values)
    if ok and name == "image_type":
        ok = value in spec.IMAGE_TYPES
    if ok and name == "resource_type":
        ok = value in spec.RESOURCE_TYPES or value in types
    if ok and name == "status":
        ok = all(s in spec.STATUSES for v in values for s in v.split(","))
    if ok and name in ("start_time", "end_time"):
        ok = _instant(value) is not None
    if ok and name in ("used_percent", "offset", "limit"):
        ok = _number_ok(name, value) and (name != "used_percent" or bool(vaults))
    if ok and name in ("incremental", "dec", "show_replication"):
        ok = value.lower() in ("true", "false")
    if ok and name == "own_type":
        ok = value in spec.OWN_TYPES and project is not None
    if ok and name == "member_status":
        ok = value in ("pending", "accepted", "rejected", "accept", "reject")
        ok = ok and project is not None and bool(members)
    if ok and name == "sort":
        ok = _sort_ok(value)
    return ok


def _number_ok(name: str, value: str) -> bool:
    """Whether ``value`` is a plain decimal within the range of ``name``."""
    low, high = {"used_percent": (1, 100), "offset": (0, 2**63 - 1), "limit": (1, 1000)}[name]
    ok = value.isascii() and value.isdigit() and len(value.lstrip("0")) <= 19
    return ok and low <= int(value.lstrip("0") or "0") <= high


def _sort_ok(text: str) -> bool:
    if len(text) > 255:
        return False
    keys = []
    for item in text.split(","):
        key, colon, direction = item.partition(":")
        if key not in spec.SORT_KEYS or key in keys or (colon and direction not in ("asc", "desc")):
            return False
        keys.append(key)
    return True


def _vault_full(vault: Record, percent: int) -> bool:
    billing = vault.get("billing") or {}
    size, used = billing.get("size"), billing.get("used")
    if not size or used is None:
        return False
    return bool(used * 100 >= percent * size * 1024)


def _keep(
    b: Record,
    p: dict[str, str],
    statuses: list[str],
    project: str | None,
    vaults: list[Record],
    members: list[Record],
    exact: bool,
    time_field: str,
) -> bool:
    return (
        _keep_fields(b, p, statuses, exact)
        and _keep_time(b, p, time_field)
        and _keep_vault_and_flags(b, p, vaults)
        and (project is None or _keep_owner(b, p, project, members))
    )


def _keep_fields(b: Record, p: dict[str, str], statuses: list[str], exact: bool) -> bool:
    """Whether ``b`` passes the equality, name and status filters of ``p``."""
    for name in (
        "checkpoint_id",
        "parent_id",
        "resource_id",
        "resource_az",
        "vault_id",
        "image_type",
        "resource_type",
    ):
        if name in p and b.get(name) != p[name]:
            return False
    for name in ("name", "resource_name"):
        if name in p:
            value = b.get(name)
            if not isinstance(value, str) or (value != p[name] if exact else p[name] not in value):
                return False
    return not (statuses and b.get("status") not in statuses)


def _keep_time(b: Record, p: dict[str, str], time_field: str) -> bool:
    """Whether ``b``'s ``time_field`` lies within ``start_time`` .. ``end_time``."""
    when = _instant(b.get(time_field))
    if "start_time" in p and (when is None or when < _instant(p["start_time"])):  # type: ignore[operator]
        return False
    return not ("end_time" in p and (when is None or when > _instant(p["end_time"])))  # type: ignore[operator]


def _keep_vault_and_flags(b: Record, p: dict[str, str], vaults: list[Record]) -> bool:
    """Whether ``b`` passes ``used_percent``, ``enterprise_project_id`` and ``incremental``."""
    if "used_percent" in p:
        full = {v["id"] for v in vaults if _vault_full(v, int(p["used_percent"].lstrip("0")))}
        if b.get("vault_id") not in full:
            return False
    eps = p.get("enterprise_project_id", spec.ALL_GRANTED_EPS)
    if eps != spec.ALL_GRANTED_EPS and b.get("enterprise_project_id") != eps:
        return False
    if "incremental" in p:
        flag = b.get("incremental")
        if flag is None:
            flag = (b.get("extend_info") or {}).get("incremental")
        if flag is None or flag != (p["incremental"].lower() == "true"):
            return False
    return True


def _keep_owner(b: Record, p: dict[str, str], project: str, members: list[Record]) -> bool:
    """Whether ``b`` passes ``own_type`` and ``member_status`` as seen from ``project``."""
    own = p.get("own_type", "private")
    mine = b.get("project_id") == project
    shared_to_me = any(
        m.get("backup_id") == b["id"] and m.get("dest_project_id") == project for m in members
    )
    shared = not mine and (shared_to_me or not members)
    if not {"private": mine, "shared": shared, "all_granted": mine or shared}[own]:
        return False
    if "member_status" in p:
        want = spec.MEMBER_STATUS_ALIASES.get(p["member_status"], p["member_status"])
        return any(
            m.get("backup_id") == b["id"]
            and m.get("dest_project_id") == project
            and m.get("status") == want
            for m in members
        )
    return True


def _sorted(rows: list[Record], sort: str | None) -> list[Record]:
    keys = [
        (k, d != "asc") for k, _, d in (i.partition(":") for i in (sort or "created_at").split(","))
    ]
    if "id" not in [k for k, _ in keys]:
        keys.append(("id", False))
    for key, descending in reversed(keys):  # stable sorts, last key first

        def value(r: Record, key: str = key) -> Any:
            return _instant(r.get(key)) if key.endswith("_at") else r.get(key)

        present = [r for r in rows if value(r) is not None]
        missing = [r for r in rows if value(r) is None]
        rows = sorted(present, key=value, reverse=descending) + missing
    return rows


def answer(
    backups: list[Record],
    vaults: list[Record],
    members: list[Record],
    query: str,
    project: str | None = None,
    exact_names: bool = False,
    time_field: str = "created_at",
) -> dict[str, Any]:
    """The API's answer to ``query`` over these records, per SPEC §2.

    Example: ``answer(backups, [], [], "limit=1")["count"]``.
    """
    params: dict[str, list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(key, []).append(value)
    types = {b.get("resource_type") for b in backups if b.get("resource_type")}
    bad = _bad_values(params, project, vaults, members, types)  # type: ignore[arg-type]
    if bad:
        return {"error": sorted(set(bad))}
    p = {k: v[-1] for k, v in params.items()}
    statuses = [s for v in params.get("status", []) for s in v.split(",")]
    rows = [
        b
        for b in backups
        if _keep(b, p, statuses, project, vaults, members, exact_names, time_field)
    ]
    rows = _sorted(rows, p.get("sort"))
    start = 0
    if "marker" in p:
        ids = [r["id"] for r in rows]
        if p["marker"] not in ids:
            return {"error": ["marker"]}
        start = ids.index(p["marker"]) + 1
    offset = int(p.get("offset", "0").lstrip("0") or "0")
    limit = int(p["limit"].lstrip("0")) if "limit" in p else None
    page = rows[start + offset :][:limit] if limit is not None else rows[start + offset :]
    return {"count": len(rows), "backups": page, "offset": offset, "limit": limit}


def summary(response: dict[str, Any]) -> dict[str, Any]:
    """What two ListBackups answers must agree on: count, ids in order, offset, limit.

    Record bodies are left out (timestamps may be canonicalized differently);
    errors compare by the sorted names of the bad parameters.

    Example: ``summary(answer(backups, [], [], "limit=1"))["ids"]``.
    """
    if "error" in response:
        return {"error": sorted(set(response["error"]))}
    return {
        "count": response["count"],
        "ids": [b["id"] for b in response["backups"]],
        "offset": response["offset"],
        "limit": response["limit"],
    }


# --- SPEC §5: analyses beyond ListBackups ------------------------------------

#: Row keys of each analysis, in SPEC §5's order (stats rows start with the ``by`` keys).
ANALYSIS_COLUMNS: dict[str, tuple[str, ...]] = {
    "stats": ("backups", "size_gb", "first", "last"),
    "rpo": (
        "resource_id",
        "vault_id",
        "resource_name",
        "resource_type",
        "backups",
        "last_good",
        "age_seconds",
        "verdict",
    ),
    "retention": (
        "id",
        "finding",
        "name",
        "status",
        "created_at",
        "expired_at",
        "updated_at",
        "resource_id",
    ),
    "capacity": (
        "id",
        "name",
        "size_gb",
        "used_mb",
        "used_percent",
        "threshold",
        "full",
        "backups",
        "resources",
    ),
    "diff": (
        *("kind", "change", "id", "fields", "used_mb_delta"),
        *("name", "resource_name", "changes"),  # issue 23: added after SPEC §5's keys
    ),
}
ANALYSIS_COLUMNS["hygiene"] = ANALYSIS_COLUMNS["retention"]
# Restated from SPEC §5 rather than read from engine.spec, so that a wrong constant there shows.
STATS_FIELDS = (
    "status",
    "resource_type",
    "image_type",
    "vault_id",
    "project_id",
    "enterprise_project_id",
    "resource_az",
)
STATS_PERIODS = ("day", "week", "month")
STUCK_STATUSES = (
    "protecting",
    "deleting",
    "restoring",
    "waiting_protect",
    "waiting_delete",
    "waiting_restore",
)
VERDICTS = ("never", "breach", "ok")
DEFAULT_THRESHOLD = 80
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_FORBIDDEN = ("marker", "offset", "limit", "sort")
_OLDEST = datetime.min.replace(tzinfo=UTC)


def _api(when: datetime | None) -> str | None:
    """An instant in the API's form (UTC, no zone, microseconds), or None."""
    return None if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _at(at: str | datetime | None, backups: list[Record]) -> datetime | None:
    """The instant ages are measured against: given, ``now``, or the newest ``updated_at``."""
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError(f"at: {at!r} has no time zone")
        return at.astimezone(UTC)
    if at == "now":
        return datetime.now(UTC)
    if at is not None:
        when = _instant(at)
        if when is None:
            raise ValueError(f"at: {at!r} is not a SPEC §1 timestamp or 'now'")
        return when
    updated = [u for u in (_instant(b.get("updated_at")) for b in backups) if u is not None]
    return max(updated, default=None)


def _duration(value: str | timedelta) -> timedelta:
    """``90m``, ``24h``, ``7d`` (a whole number and a unit) or a timedelta."""
    if isinstance(value, timedelta):
        return value
    number, unit = value[:-1], value[-1:]
    if not (number.isascii() and number.isdigit()) or unit not in _UNITS:
        raise ValueError(f"max_age: {value!r} is not a duration like 90m, 24h or 7d")
    return timedelta(**{_UNITS[unit]: int(number)})


def _nulls_last(values: list[Any]) -> list[tuple[bool, Any]]:
    """A sort key: ascending, None after every value."""
    return [(v is None, "" if v is None else v) for v in values]


def _period(when: datetime | None, unit: str) -> str | None:
    """``created_at`` truncated to its UTC day, ISO week (Monday) or month, in API form."""
    if when is None:
        return None
    day = when.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "week":
        day -= timedelta(days=day.weekday())
    elif unit == "month":
        day = day.replace(day=1)
    return _api(day)


def _stats(rows: list[Record], by: tuple[str, ...]) -> list[Record]:
    groups: dict[tuple[Any, ...], list[Record]] = {}
    for b in rows:
        created = _instant(b.get("created_at"))
        key = tuple(_period(created, k) if k in STATS_PERIODS else b.get(k) for k in by)
        groups.setdefault(key, []).append(b)
    out = []
    for key, group in groups.items():
        stamps = [c for c in (_instant(b.get("created_at")) for b in group) if c is not None]
        row: Record = dict(zip(by, key, strict=True))
        row["backups"] = len(group)
        row["size_gb"] = sum(b.get("resource_size") or 0 for b in group)
        row["first"] = _api(min(stamps, default=None))
        row["last"] = _api(max(stamps, default=None))
        out.append(row)
    out.sort(key=lambda r: _nulls_last([r[k] for k in by]))
    out.sort(key=lambda r: -r["backups"])  # stable: count descending, then the keys
    return out


def _newest(rows: list[Record]) -> Record:
    """The newest backup by ``created_at`` (a null one is oldest), ties to the larger id."""
    return max(rows, key=lambda b: (_instant(b.get("created_at")) or _OLDEST, b["id"]))


def _resources(vault: Record) -> list[Any]:
    """A vault's ``resources`` if it is a list, else none (a string, number, object, null)."""
    listed = vault.get("resources")
    return listed if isinstance(listed, list) else []


def _item(element: Any) -> Record:
    """A ``resources`` element as read: its string ``id``, ``name``, ``type`` (else None)."""
    if not isinstance(element, dict):
        return {"id": None, "name": None, "type": None}
    return {k: v if isinstance(v := element.get(k), str) else None for k in ("id", "name", "type")}


def _items(vaults: list[Record], p: dict[str, str]) -> list[tuple[str, Record]]:
    """(vault id, resources item) pairs the filter keeps (only vault_id/resource_* narrow them)."""
    pairs = []
    for v in vaults:
        if "vault_id" in p and v["id"] != p["vault_id"]:
            continue
        for item in map(_item, _resources(v)):
            if item["id"] is None:
                continue
            if "resource_type" in p and item.get("type") != p["resource_type"]:
                continue
            if "resource_id" in p and item["id"] != p["resource_id"]:
                continue
            pairs.append((v["id"], item))
    return pairs


def _rpo(
    rows: list[Record], items: list[tuple[str, Record]], at: datetime | None, max_age: timedelta
) -> list[Record]:
    listed: dict[str, list[tuple[str, Record]]] = {}
    for vid, item in sorted(items, key=lambda pair: pair[0]):
        listed.setdefault(item["id"], []).append((vid, item))
    ids = set(listed) | {b["resource_id"] for b in rows if b.get("resource_id") is not None}
    out: list[Record] = []
    for rid in ids:
        mine = [b for b in rows if b.get("resource_id") == rid]
        good = [
            _instant(b.get("created_at"))
            for b in mine
            if b.get("status") == "available" and b.get("image_type") == "backup"
        ]
        last_good = max(
            (g for g in good if g is not None and (at is None or g <= at)), default=None
        )
        age = None if last_good is None or at is None else at - last_good
        verdict = (
            "never"
            if last_good is None
            else "breach"
            if age is not None and age > max_age
            else "ok"
        )
        newest = _newest(mine) if mine else None
        source = newest or {
            "resource_name": listed[rid][0][1].get("name"),
            "resource_type": listed[rid][0][1].get("type"),
        }
        vault_id: Any = listed[rid][0][0] if rid in listed else source.get("vault_id")
        out.append(
            {
                "resource_id": rid,
                "vault_id": vault_id,
                "resource_name": source.get("resource_name"),
                "resource_type": source.get("resource_type"),
                "backups": len(mine),
                "last_good": _api(last_good),
                "age_seconds": None if age is None else age.total_seconds(),
                "verdict": verdict,
            }
        )
    out.sort(key=lambda r: r["resource_id"])
    out.sort(key=lambda r: (r["age_seconds"] is None, -(r["age_seconds"] or 0)))
    out.sort(key=lambda r: VERDICTS.index(r["verdict"]))
    return out


def _finding(b: Record, finding: str) -> Record:
    row = {"id": b["id"], "finding": finding, "name": b.get("name"), "status": b.get("status")}
    for key in ("created_at", "expired_at", "updated_at"):
        row[key] = _api(_instant(b.get(key)))
    row["resource_id"] = b.get("resource_id")
    return row


def _retention(rows: list[Record], at: datetime | None, min_days: int) -> list[Record]:
    out = []
    for b in rows:
        if b.get("status") != "available":
            continue
        created, expired = _instant(b.get("created_at")), _instant(b.get("expired_at"))
        if created and expired and expired - created < timedelta(days=min_days):
            out.append(_finding(b, "short"))
        if expired and at and expired < at:
            out.append(_finding(b, "overdue"))
    return sorted(out, key=lambda r: (r["id"], r["finding"]))


def _capacity(rows: list[Record], vaults: list[Record]) -> list[Record]:
    out = []
    for v in vaults:
        billing = v.get("billing") or {}
        size, used = billing.get("size"), billing.get("used")
        threshold = v.get("threshold")
        threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        percent, full = None, False
        if size is not None and size > 0 and used is not None:
            # used / (size x 1024) x 100, dividing by 1024 apart (a power of two: the same
            # bits) so that size x 1024 cannot overflow; it may still be past the float
            # range (inf: the fullest, and null in JSON, see below).
            percent = float(used) / float(size) / 1024 * 100
            # Exactly, as used_percent= compares (SPEC §2): no division, no rounding,
            # no overflow (the numbers as fractions).
            full = Fraction(used) * 100 >= threshold * Fraction(size) * 1024
        out.append(
            {
                "id": v["id"],
                "name": v.get("name"),
                "size_gb": None if size is None else float(size),
                "used_mb": None if used is None else float(used),
                "used_percent": percent,
                "threshold": threshold,
                "full": full,
                "backups": sum(1 for b in rows if b.get("vault_id") == v["id"]),
                "resources": len(_resources(v)),
            }
        )
    out.sort(key=lambda r: r["id"])
    out.sort(key=lambda r: (r["used_percent"] is None, -(r["used_percent"] or 0)))
    for row in out:  # JSON has no infinity
        if row["used_percent"] is not None and math.isinf(row["used_percent"]):
            row["used_percent"] = None
    return out


def _hygiene(
    rows: list[Record], vaults: list[Record], at: datetime | None, stuck_hours: float
) -> list[Record]:
    listed = {_item(i)["id"] for v in vaults for i in _resources(v)} - {None}
    orphans_apply = any(_resources(v) for v in vaults)
    out = []
    for b in rows:
        if orphans_apply and (b.get("resource_id") is None or b.get("resource_id") not in listed):
            out.append(_finding(b, "orphan"))
        updated = _instant(b.get("updated_at"))
        late = updated and at and updated < at - timedelta(hours=stuck_hours)
        if b.get("status") in STUCK_STATUSES and late:
            out.append(_finding(b, "stuck"))
        if b.get("status") == "error":
            out.append(_finding(b, "error"))
    return sorted(out, key=lambda r: (r["id"], r["finding"]))


def analysis(
    name: str,
    backups: list[Record],
    vaults: list[Record],
    members: list[Record],
    filter: str | None = None,
    *,
    at: str | datetime | None = None,
    by: tuple[str, ...] = ("status",),
    max_age: str | timedelta = timedelta(hours=24),
    min_days: int = 35,
    stuck_hours: float = 24,
) -> dict[str, Any]:
    """The SPEC §5 answer ``{"at": ..., "rows": [...]}`` of analysis ``name``.

    ``backups`` are the live backups (one record per id), ``filter`` a
    ListBackups query string narrowing them (paging and sort in it are
    errors). A bad filter gives ``{"error": [bad parameter names]}``; a bad
    ``by``, ``at`` or ``max_age`` raises ValueError.

    Example: ``analysis("rpo", backups, vaults, [], "vault_id=v1", max_age="7d")["rows"]``.
    """
    if name not in ("stats", "rpo", "retention", "capacity", "hygiene"):
        raise ValueError(f"analysis: {name!r} is not stats, rpo, retention, capacity or hygiene")
    unknown = [k for k in by if k not in (*STATS_FIELDS, *STATS_PERIODS)]
    if name == "stats" and (not by or unknown or len(set(by)) != len(by)):
        raise ValueError(f"by: {by!r} must name distinct keys of {STATS_FIELDS + STATS_PERIODS}")
    query = filter or ""
    params = {k: v for k, v in parse_qsl(query, keep_blank_values=True)}
    response = answer(backups, vaults, members, query)
    bad = [k for k in params if k in _FORBIDDEN] + response.get("error", [])
    if bad:
        return {"error": sorted(set(bad))}
    rows: list[Record] = response["backups"]
    when = _at(at, backups)
    narrowed = [v for v in vaults if "vault_id" not in params or v["id"] == params["vault_id"]]
    result = {
        "stats": lambda: _stats(rows, by),
        "rpo": lambda: _rpo(rows, _items(vaults, params), when, _duration(max_age)),
        "retention": lambda: _retention(rows, when, min_days),
        "capacity": lambda: _capacity(rows, narrowed),
        "hygiene": lambda: _hygiene(rows, vaults, when, stuck_hours),
    }[name]()
    return {"at": _api(when), "rows": result}


class Records(Protocol):
    """What :func:`diff` reads of an inventory: its live backups and its vaults."""

    @property
    def backups(self) -> list[Record]: ...

    @property
    def vaults(self) -> list[Record]: ...


def _json(value: Any, key: str | None = None) -> Any:
    """A value in a form whose ``==`` is SPEC §5's diff equality."""
    if key in spec.TIMESTAMP_KEYS and isinstance(value, str) and _instant(value) is not None:
        return ("instant", _instant(value))
    if isinstance(value, dict):
        return {k: _json(v, k) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, bool):
        return ("bool", value)  # true is not 1
    if isinstance(value, int | float):
        return ("number", value)  # 1 == 1.0
    return value


def _shown(value: Any, key: str | None = None) -> Any:
    """A value as output shows it: timestamps, at any depth, in the API's form."""
    if key in spec.TIMESTAMP_KEYS and isinstance(value, str) and _instant(value) is not None:
        return _api(_instant(value))
    if isinstance(value, dict):
        return {k: _shown(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return value


def _named(record: Record) -> Record:
    """The names a diff row carries (issue 23)."""
    return {"name": record.get("name"), "resource_name": record.get("resource_name")}


def _changes(kind: str, old: list[Record], new: list[Record]) -> list[Record]:
    a, b = {r["id"]: r for r in old}, {r["id"]: r for r in new}
    rows = []
    for change, ids in (("added", b.keys() - a.keys()), ("removed", a.keys() - b.keys())):
        rows += [
            {"kind": kind, "change": change, "id": i, "fields": None, "used_mb_delta": None}
            | _named({**a, **b}[i])
            | {"changes": None}
            for i in sorted(ids)
        ]
    for i in sorted(a.keys() & b.keys()):
        left, right = _json(a[i]), _json(b[i])
        fields = sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))
        if not fields:
            continue
        values = {k: [_shown(a[i].get(k), k), _shown(b[i].get(k), k)] for k in fields}
        delta = None
        if kind == "vault":
            was, now = ((r.get("billing") or {}).get("used") for r in (a[i], b[i]))
            delta = None if was is None or now is None else float(now) - float(was)
            if _json(was) != _json(now):
                values["billing.used"] = [was, now]
        rows.append(
            {"kind": kind, "change": "changed", "id": i, "fields": fields, "used_mb_delta": delta}
            | _named(b[i])
            | {"changes": values}
        )
    return rows


def diff(a: Records, b: Records, *, at: str | datetime | None = None) -> dict[str, Any]:
    """SPEC §5's ``diff A B``: ``{"at": B's default at, "rows": [...]}``.

    Backups and vaults are matched by ``id``; an absent key equals null,
    timestamps compare as instants and numbers as numbers.

    Example: ``diff(before, after)["rows"]`` where each has ``.backups`` and ``.vaults``.
    """
    rows = _changes("backup", a.backups, b.backups) + _changes("vault", a.vaults, b.vaults)
    return {"at": _api(_at(at, b.backups)), "rows": rows}


# --- SPEC §6: the inventory over time ----------------------------------------
#
# A store fed ``cbrq ingest`` calls one after another, modelled as the list of those calls
# (:class:`Ingest`) in ingest order. Every function below takes the ingests the store KEPT:
# a snapshot whose pages fail the check is refused and leaves no trace, so pass
# ``accepted(calls)``; a refused snapshot given here raises ValueError. Members are not
# modelled; ``children`` are not top-level records (SPEC §2) and play no part.
#
# Readings of SPEC §6 this model chose (the engine makes the same ones):
#  R1 Time order is (taken_at, ingest order): "later", "after", "newest snapshot" and "ties:
#     the later ingest" all compare that pair. A null taken_at (no backups and nothing ingested
#     before with a taken_at) is before every instant.
#  R2 "b was seen in an ingest taken after P and at or before T": an ingest J with
#     (taken_at(J), J) > (taken_at(P), P) in R1's order and taken_at(J) <= T. So a single page
#     ingested after a snapshot with the same taken_at adds to it; one ingested before it does not.
#  R3 Version of a backup: newest ``updated_at`` (a copy without one is older than any copy
#     with one, as engine.spec's dedup decides), then the later ingest in INGEST order (not
#     taken_at: SPEC §2's "ties to the file ingested last"), then the later record in the call.
#     With no snapshot, as_of(latest) is therefore §2's dedup, which is ``ever``.
#  R4 Which snapshots cover b is judged on b's version at T. Project scope: b's project_id is
#     among the project_ids of the snapshot's backups (a missing or null project_id is a project
#     of its own, as in the check). Vault scope: b's vault_id (not null) is among the vault_ids
#     of the snapshot's backups.
#  R5 Vaults: a vault's version is its copy in the latest ingest in R1's order (then the later
#     record). A vault snapshot is the vault records of a snapshot ingest: project scope covers
#     the vaults whose project_id is among its vault records' project_ids; vault scope covers
#     only the vaults it lists (it can make no vault gone). A snapshot without vault records
#     covers no vault.
#  R6 The default taken_at reads top-level backups with a readable updated_at only; a call whose
#     backups have none falls back like a call without backups.
#  R7 ``snapshots`` and ``history`` read the store only through "present at T" (as as_of
#     does), at the effective taken_at of the ingests: ingests sharing a taken_at show as one
#     step (a snapshot superseded at its own instant by a later ingest shows that one's state;
#     a backup present at no instant has no history row, yet is no error: it was seen).

SCOPES: tuple[str, ...] = ("project", "vault")
_KINDS = ("backups", "vaults")


@dataclass(frozen=True)
class Ingest:
    """One ``cbrq ingest`` call as the §6 model sees it.

    ``backups`` and ``vaults`` are every top-level record the call read, in
    reading order (files as given, records in file order), whether a page, a
    ``{"backup": ...}`` or a bare line held them. ``pages`` are the responses
    with a ``count`` (backups and vault pages) that the snapshot check reads;
    a record that no page holds is taken as declared. ``taken_at`` None means
    SPEC's default rule (:func:`taken_at_of`). :meth:`from_dumps` builds one
    from dump responses.

    Example::

        Ingest(({"id": "b1", "project_id": "p1", "updated_at": "2020-02-21T07:00:00"},),
               snapshot=True)
    """

    backups: tuple[Record, ...] = ()
    vaults: tuple[Record, ...] = ()
    snapshot: bool = False
    scope: str = "project"
    taken_at: datetime | None = None
    pages: tuple[Record, ...] = ()

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"scope: {self.scope!r} is not one of {SCOPES}")
        if self.taken_at is not None and self.taken_at.tzinfo is None:
            raise ValueError(f"taken_at: {self.taken_at!r} has no time zone")

    @classmethod
    def from_dumps(
        cls,
        dumps: Iterable[Any],
        *,
        snapshot: bool = False,
        scope: str = "project",
        taken_at: datetime | None = None,
    ) -> Ingest:
        """The call that reads ``dumps``: SPEC §1 responses in reading order.

        A list is a JSON array of responses. Backups pages (``backups`` and
        ``count``) and vault pages with a ``count`` are pages; ``backup``,
        ``vault``, a vault page without ``count`` and a bare backup (an
        object with an ``id``) are records without a page; members are skipped.

        Example: ``Ingest.from_dumps([{"count": 1, "backups": [b1]}], snapshot=True)``.
        """
        read: dict[str, list[Record]] = {"backups": [], "vaults": [], "pages": []}
        for response in _responses(dumps):
            kind, records, paged = _dump_kind(response)
            if kind:
                read[kind].extend(records)
            if paged:
                read["pages"].append(response)
        return cls(
            tuple(read["backups"]),
            tuple(read["vaults"]),
            snapshot=snapshot,
            scope=scope,
            taken_at=taken_at,
            pages=tuple(read["pages"]),
        )


def _responses(dumps: Iterable[Any]) -> list[Any]:
    """The responses of ``dumps``, a JSON array read as its elements."""
    out: list[Any] = []
    for dump in dumps:
        out.extend(dump if isinstance(dump, list) else [dump])
    return out


def _dump_kind(response: Any) -> tuple[str | None, list[Record], bool]:
    """(``backups``/``vaults``/None, its top-level records, whether it is a checked page)."""
    if not isinstance(response, dict):
        raise ValueError(f"not a SPEC §1 response: {response!r}")
    if isinstance(response.get("backups"), list) and "count" in response:
        return "backups", list(response["backups"]), True
    if isinstance(response.get("backup"), dict):
        return "backups", [response["backup"]], False
    if isinstance(response.get("vaults"), list):
        return "vaults", list(response["vaults"]), "count" in response
    if isinstance(response.get("vault"), dict):
        return "vaults", [response["vault"]], False
    if "members" in response or "member" in response:
        return None, [], False
    if "id" in response:
        return "backups", [response], False  # a bare NDJSON backup line
    raise ValueError(f"not a SPEC §1 response: keys {sorted(response)}")


def _project_name(project: Any) -> str:
    return "(no project_id)" if project is None else str(project)


def snapshot_problems(pages: Iterable[Record]) -> list[str]:
    """What SPEC §6's completeness check finds wrong with the pages of one snapshot call.

    Per project (the ``project_id`` of the records) and per kind, the pages
    whose records belong to it must carry one ``count`` (a whole number) and
    together hold exactly ``count`` distinct ids. Each problem names the
    project, the count(s) and the distinct records found. Decisions:

    - A page whose records span two projects is a problem of its own ("each
      page of a snapshot belongs to one project"), and is left out of the
      per-project sums.
    - An empty page belongs to no project and is not checked (the page past
      the end of a paging loop; the project is unknown).
    - Records without ``project_id`` (absent or null) form one more project,
      named "(no project_id)".
    - Distinct ids: a page given twice alongside all the others holds the same
      ids and passes (the stored records are the same); a page repeated in
      place of another (the paging bug) loses ids and is caught.
    - Anything without a ``count`` (``backup``, ``vault``, bare records, a
      vault page without ``count``) is taken as declared: not checked.

    Example::

        >>> snapshot_problems([{"count": 3, "backups": [{"id": "a", "project_id": "p1"}]}])
        ['project p1: the backups pages give count 3 but hold 1 distinct record(s)']
    """
    problems: list[str] = []
    groups: dict[tuple[str, Any], list[Record]] = {}
    for page in pages:
        kind = next((k for k in _KINDS if isinstance(page.get(k), list)), None)
        if kind is None or "count" not in page:
            continue
        projects = _unique([r.get("project_id") for r in page[kind]])
        if len(projects) > 1:
            names = ", ".join(sorted(map(_project_name, projects)))
            problems.append(
                f"a {kind} page holds records of projects {names}: "
                "each page of a snapshot belongs to one project"
            )
            continue
        for project in projects:  # none for an empty page
            groups.setdefault((kind, project), []).append(page)
    for (kind, project), group in sorted(
        groups.items(), key=lambda g: (g[0][0], _project_name(g[0][1]))
    ):
        counts = _unique([page["count"] for page in group])
        found = len({r.get("id") for page in group for r in page[kind]})
        whole = isinstance(counts[0], int) and not isinstance(counts[0], bool)
        if len(counts) != 1 or not whole or counts[0] != found:
            problems.append(
                f"project {_project_name(project)}: the {kind} pages give count "
                f"{' and '.join(map(str, counts))} but hold {found} distinct record(s)"
            )
    return problems


def _unique(values: list[Any]) -> list[Any]:
    """``values`` without repeats, first seen first (works for unhashable values too)."""
    return [v for i, v in enumerate(values) if v not in values[:i]]


def refused(ingest: Ingest) -> bool:
    """Whether a store refuses ``ingest``: a snapshot whose pages fail the check.

    Example: ``refused(Ingest(snapshot=True, pages=({"count": 1, "backups": [b2, b3]},)))``.
    """
    return ingest.snapshot and bool(snapshot_problems(ingest.pages))


def accepted(ingests: Iterable[Ingest]) -> list[Ingest]:
    """The ingests a store keeps, in order: all but the refused snapshots.

    Example: ``as_of(accepted(calls), None)``.
    """
    return [ingest for ingest in ingests if not refused(ingest)]


def taken_at_of(ingests: Sequence[Ingest]) -> list[datetime | None]:
    """Each kept ingest's effective ``taken_at`` (SPEC §6), in UTC.

    Given, else the newest ``updated_at`` among its top-level backups (those
    without a readable one are skipped), else the newest ``taken_at`` of the
    ingests before it (in ingest order), else None.

    Example::

        >>> day = {"id": "b1", "updated_at": "2020-02-21T07:00:00Z"}
        >>> [t and t.isoformat() for t in taken_at_of([Ingest((day,)), Ingest()])]
        ['2020-02-21T07:00:00+00:00', '2020-02-21T07:00:00+00:00']
    """
    out: list[datetime | None] = []
    for ingest in ingests:
        when = ingest.taken_at.astimezone(UTC) if ingest.taken_at is not None else None
        if when is None:
            stamps = [_instant(b.get("updated_at")) for b in ingest.backups]
            when = max((s for s in stamps if s is not None), default=None)
        if when is None:
            when = max((t for t in out if t is not None), default=None)
        out.append(when)
    return out


@dataclass(frozen=True)
class _Timeline:
    """Kept ingests with their effective taken_at; positions are ingest numbers from 0."""

    ingests: tuple[Ingest, ...]
    taken: tuple[datetime | None, ...]

    def key(self, i: int) -> tuple[datetime, int]:
        """Ingest ``i``'s place in time order (R1)."""
        return (self.taken[i] or _OLDEST, i)

    def upto(self, at: datetime | None) -> list[int]:
        """The ingests taken at or before ``at`` (None: all of them)."""
        return [i for i in range(len(self.ingests)) if at is None or self.key(i)[0] <= at]

    def instants(self) -> list[datetime]:
        """The distinct effective taken_at of the ingests, in time order (null first, as oldest)."""
        return sorted({self.key(i)[0] for i in range(len(self.ingests))})


def _timeline(ingests: Iterable[Ingest]) -> _Timeline:
    kept = tuple(ingests)
    bad = [n + 1 for n, ingest in enumerate(kept) if refused(ingest)]
    if bad:
        raise ValueError(f"ingests {bad} are snapshots a store refuses: pass accepted(ingests)")
    return _Timeline(kept, tuple(taken_at_of(kept)))


def _utc(at: datetime | None) -> datetime | None:
    if at is not None and at.tzinfo is None:
        raise ValueError(f"at: {at!r} has no time zone")
    return None if at is None else at.astimezone(UTC)


def _records(ingest: Ingest, kind: str) -> tuple[Record, ...]:
    return ingest.backups if kind == "backups" else ingest.vaults


def _holds(ingest: Ingest, kind: str, ident: str) -> bool:
    return any(r.get("id") == ident for r in _records(ingest, kind))


def _version(line: _Timeline, kind: str, upto: list[int], ident: str) -> Record | None:
    """``ident``'s copy in ``upto`` that wins (R3 for backups, R5 for vaults), or None."""
    copies: list[tuple[tuple[datetime, int, int], Record]] = []
    for i in upto:
        for position, record in enumerate(_records(line.ingests[i], kind)):
            if record.get("id") != ident:
                continue
            if kind == "backups":
                rank = (_instant(record.get("updated_at")) or _OLDEST, i, position)
            else:
                rank = (*line.key(i), position)
            copies.append((rank, record))
    return max(copies, key=lambda copy: copy[0])[1] if copies else None


def _covers(snapshot: Ingest, kind: str, record: Record) -> bool:
    """Whether ``snapshot`` speaks for ``record`` (R4, R5)."""
    if kind == "backups" and snapshot.scope == "project":
        return record.get("project_id") in [b.get("project_id") for b in snapshot.backups]
    if kind == "backups":
        vaults = [b.get("vault_id") for b in snapshot.backups if b.get("vault_id") is not None]
        return record.get("vault_id") in vaults
    if snapshot.scope == "project":
        return record.get("project_id") in [v.get("project_id") for v in snapshot.vaults]
    return record.get("id") in [v.get("id") for v in snapshot.vaults]


def _present(line: _Timeline, kind: str, upto: list[int], ident: str) -> Record | None:
    """``ident``'s version if it is present given the ingests ``upto`` (all taken <= T), else None.

    SPEC §6: P is the newest snapshot (R1) in ``upto`` covering it; it is present
    when P holds it or an ingest after P (R2) does; with no P, when any ingest does.
    """
    version = _version(line, kind, upto, ident)
    if version is None:
        return None
    covering = [
        i for i in upto if line.ingests[i].snapshot and _covers(line.ingests[i], kind, version)
    ]
    if not covering:
        return version
    p = max(covering, key=line.key)
    later = [j for j in upto if line.key(j) > line.key(p)]
    seen = any(_holds(line.ingests[j], kind, ident) for j in [p, *later])
    return version if seen else None


def _state(line: _Timeline, kind: str, upto: list[int]) -> dict[str, Record]:
    """id -> version of every record present given the ingests ``upto``, by id."""
    ids = sorted({r["id"] for i in upto for r in _records(line.ingests[i], kind) if "id" in r})
    found = {ident: _present(line, kind, upto, ident) for ident in ids}
    return {ident: record for ident, record in found.items() if record is not None}


def as_of(ingests: Sequence[Ingest], at: datetime | None = None) -> dict[str, Record]:
    """id -> record (as dumped) of every backup present at ``at``, at its version then.

    ``at`` None is +infinity (the latest); a given one must carry a time zone.
    Follows SPEC §6's "Presence at an instant T" and "Version of b at T" with
    the readings R1-R4 of this section.

    Example::

        >>> day1 = Ingest(({"id": "b1", "project_id": "p"},), snapshot=True,
        ...               taken_at=datetime(2020, 1, 1, tzinfo=UTC))
        >>> day2 = Ingest(({"id": "b2", "project_id": "p"},), snapshot=True,
        ...               taken_at=datetime(2020, 1, 2, tzinfo=UTC))
        >>> sorted(as_of([day1, day2])), sorted(as_of([day1, day2], day1.taken_at))
        (['b2'], ['b1'])
    """
    line = _timeline(ingests)
    return _state(line, "backups", line.upto(_utc(at)))


def vaults_as_of(ingests: Sequence[Ingest], at: datetime | None = None) -> dict[str, Record]:
    """id -> record of every vault present at ``at`` (None: the latest), at its version then.

    The same rules as :func:`as_of` with the vault snapshots of R5: the vault
    records of snapshot ingests, versions ordered by taken_at then ingest order.

    Example: ``vaults_as_of(calls, datetime(2020, 2, 22, tzinfo=UTC))["v1"]["billing"]["used"]``.
    """
    line = _timeline(ingests)
    return _state(line, "vaults", line.upto(_utc(at)))


def ever(ingests: Sequence[Ingest]) -> dict[str, Record]:
    """id -> newest version (R3) of every backup ever seen: a store without snapshots.

    Example: ``ever([day1, day2]).keys() == {"b1", "b2"}`` whatever the snapshots say.
    """
    line = _timeline(ingests)
    everything = list(range(len(line.ingests)))
    ids = sorted({r["id"] for i in line.ingests for r in i.backups if "id" in r})
    found = {ident: _version(line, "backups", everything, ident) for ident in ids}
    return {ident: record for ident, record in found.items() if record is not None}


def _scope_of(snapshot: Ingest) -> tuple[str, list[Any]]:
    """What a snapshot speaks for: its scope and its projects or vaults (R4), sorted."""
    field = "project_id" if snapshot.scope == "project" else "vault_id"
    keys = _unique([b.get(field) for b in snapshot.backups])
    if snapshot.scope == "vault":
        keys = [k for k in keys if k is not None]
    return snapshot.scope, sorted(keys, key=_project_name)


def _covered(line: _Timeline, s: int, at: datetime) -> dict[str, Record]:
    """The backups snapshot ``s`` covers that are present at ``at``."""
    state = _state(line, "backups", line.upto(at))
    return {i: r for i, r in state.items() if _covers(line.ingests[s], "backups", r)}


def snapshots(ingests: Sequence[Ingest]) -> list[Record]:
    """The rows of ``cbrq snapshots`` (SPEC §6), one per snapshot, in ingest order.

    ``seq`` is the 1-based number of the ingest among the kept ones;
    ``taken_at`` its effective one (API form); ``projects`` the sorted
    distinct string ``project_id`` of its backup and vault records. Readings:
    ``backups`` counts the backups the snapshot covers (R4) that are present
    at its taken_at (R7); "now" in ``added`` means at this snapshot; "the
    previous snapshot of the same scope" is the newest earlier one in time
    order (R1) with the same scope and the same projects (project scope) or
    vaults (vault scope); with none, every backup counts as added. ``changed``
    compares the two versions as SPEC §5's diff does (timestamps as instants).

    Example: ``[(r["seq"], r["added"], r["gone"]) for r in snapshots(calls)]``.
    """
    line = _timeline(ingests)
    rows: list[Record] = []
    for s, snapshot in enumerate(line.ingests):
        if not snapshot.snapshot:
            continue
        now = _covered(line, s, line.key(s)[0])
        earlier = [
            r
            for r in range(len(line.ingests))
            if line.ingests[r].snapshot
            and _scope_of(line.ingests[r]) == _scope_of(snapshot)
            and line.key(r) < line.key(s)
        ]
        previous = max(earlier, key=line.key) if earlier else None
        before = {} if previous is None else _covered(line, s, line.key(previous)[0])
        both = sorted(now.keys() & before.keys())
        records = (*snapshot.backups, *snapshot.vaults)
        rows.append(
            {
                "seq": s + 1,
                "taken_at": _api(line.taken[s]),
                "scope": snapshot.scope,
                "projects": sorted(
                    {p for r in records if isinstance(p := r.get("project_id"), str)}
                ),
                "backups": len(now),
                "added": len(now.keys() - before.keys()),
                "gone": len(before.keys() - now.keys()),
                "changed": sum(1 for i in both if _json(now[i]) != _json(before[i])),
            }
        )
    return rows


class NeverSeen(KeyError):
    """``history`` was asked about backups that no kept ingest holds."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(*ids)
        self.ids = ids

    def __str__(self) -> str:
        return "never seen: " + ", ".join(self.ids)


def history(ingests: Sequence[Ingest], ids: Iterable[str]) -> list[Record]:
    """The rows of ``cbrq history ID...`` (SPEC §6): per backup, its changes in time order.

    Backups in the order asked (each once), each one's rows in time order:
    the backup as present at each taken_at of the store in turn (R7; with
    out-of-order ingests that is taken_at order, not ingest order).
    ``event``: ``seen`` (first present), ``changed`` (present before and
    after, another version by SPEC §5's diff equality), ``gone``, ``back``
    (present again; one row even when the version changed too). ``status`` and
    ``updated_at`` (API form) are the version's; for ``gone``, the version that
    went. ``taken_at`` is the effective taken_at of the ingest that showed the
    change. A backup no kept ingest holds raises :class:`NeverSeen` (a
    KeyError) naming every such id.

    Example::

        >>> one = Ingest(({"id": "b1", "status": "available", "project_id": "p"},),
        ...              taken_at=datetime(2020, 1, 1, tzinfo=UTC))
        >>> [(r["event"], r["status"]) for r in history([one], ["b1"])]
        [('seen', 'available')]
    """
    line = _timeline(ingests)
    asked = list(dict.fromkeys(ids))
    unknown = [i for i in asked if not any(_holds(ingest, "backups", i) for ingest in line.ingests)]
    if unknown:
        raise NeverSeen(unknown)
    return [row for ident in asked for row in _story(line, ident)]


def _story(line: _Timeline, ident: str) -> list[Record]:
    """``ident``'s history rows, walking the store's instants in time order."""
    rows: list[Record] = []
    last: Record | None = None  # the version shown while present
    present = shown = False
    for at in line.instants():
        now = _present(line, "backups", line.upto(at), ident)
        event: str | None = None
        if now is None:
            event = "gone" if present else None
        elif not shown:
            event = "seen"
        elif not present:
            event = "back"
        elif _json(now) != _json(last):
            event = "changed"
        if event is not None:
            version = now if now is not None else last
            assert version is not None
            rows.append(
                {
                    "id": ident,
                    "taken_at": None if at == _OLDEST else _api(at),
                    "event": event,
                    "status": version.get("status"),
                    "updated_at": _api(_instant(version.get("updated_at"))),
                }
            )
        present, shown = now is not None, shown or now is not None
        last = now if now is not None else last
    return rows


# --- SPEC §6: trend and forecast ------------------------------------------------------------
#
#  R8 A trend period ends at its last microsecond (UTC day, ISO week from Monday, month); rows
#     run from the period of max(first snapshot, since) to that of min(last snapshot, until),
#     the last row at that end. "added"/"gone": matching backups present at this row's ``at``
#     and not at the previous period's end, and the reverse.
#  R9 capacity --forecast (engine.spec's written decision, restated): a vault's points are the
#     copies of it that kept ingests held (snapshot or not, present or not) whose taken_at is in
#     [at - FORECAST_DAYS days, at], both ends in; one point per distinct taken_at, the copy of
#     the later ingest (ingest order; then the later record) at a shared instant; a copy without
#     a numeric billing.used is no point; an ingest without a taken_at gives none. x = days
#     from ``at`` (negative), y = billing.used (MB). The line is ordinary least squares: slope
#     = sum(dx * dy) / sum(dx * dx), none when every x is equal. days_to_full is 0 for a vault
#     ``full`` at ``at`` (capacity's row, even with no ``at`` at all); else null with no ``at``,
#     fewer than FORECAST_POINTS points, no slope or a slope <= 0, or a size (of the version at
#     ``at``) that is missing or 0; else the x where the line meets threshold % of size x 1024
#     MB, at least 0. Rows are capacity's:
#     the vaults present at ``at``; with ``at`` left out, the latest, and ``at`` is §5's
#     default (the newest updated_at then). Sums are exact (fractions), floats at the end.

_ONE_MICRO = timedelta(microseconds=1)


def _period_start(when: datetime, every: str) -> datetime:
    """The start (UTC) of the day, ISO week or month holding ``when``."""
    day = when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if every == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1) if every == "month" else day


def _next_period(start: datetime, every: str) -> datetime:
    if every == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start + timedelta(days=7 if every == "week" else 1)


def trend_instants(first: datetime, last: datetime, every: str) -> tuple[datetime, list[datetime]]:
    """(the end of the period before the first row, each row's ``at``) for R8.

    Example: ``trend_instants(t1, t2, "day")[1][-1] == t2``.
    """
    start = _period_start(first, every)
    ats = []
    while start <= last:
        following = _next_period(start, every)
        ats.append(min(following - _ONE_MICRO, last))
        start = following
    return _period_start(first, every) - _ONE_MICRO, ats


def _matching(ingests: Sequence[Ingest], at: datetime, filter: str) -> dict[str, Record]:
    present = as_of(ingests, at)
    vaults = list(vaults_as_of(ingests, at).values())
    kept = answer(list(present.values()), vaults, [], filter)["backups"]
    return {b["id"]: b for b in kept}


def trend(
    ingests: Sequence[Ingest],
    filter: str = "",
    *,
    every: str = "day",
    since: datetime | None = None,
    until: datetime | None = None,
    max_age: str | timedelta = "24h",
) -> list[Record]:
    """The rows of ``cbrq trend -f json`` (SPEC §6, readings R8), instants in API form.

    Raises ValueError for a store without a snapshot.

    Example: ``[r["backups"] for r in trend(accepted(calls), every="week")]``.
    """
    line = _timeline(ingests)
    taken = [t for t, i in zip(line.taken, line.ingests, strict=True) if i.snapshot and t]
    if not taken:
        raise ValueError("trend needs snapshots")
    first = max(min(taken), since) if since else min(taken)
    last = min(max(taken), until) if until else max(taken)
    if first > last:
        return []
    before, ats = trend_instants(first, last, every)
    previous = _matching(ingests, before, filter)
    vault_id = dict(parse_qsl(filter)).get("vault_id")
    rows = []
    for at in ats:
        now = _matching(ingests, at, filter)
        vaults = list(vaults_as_of(ingests, at).values())
        rpo = analysis(
            "rpo", list(as_of(ingests, at).values()), vaults, [], filter, at=at, max_age=max_age
        )["rows"]
        used = [
            (v.get("billing") or {}).get("used") or 0
            for v in vaults
            if vault_id is None or v["id"] == vault_id
        ]
        rows.append(
            {
                "at": _api(at),
                "backups": len(now),
                "size_gb": sum(b.get("resource_size") or 0 for b in now.values()),
                "available": sum(1 for b in now.values() if b.get("status") == "available"),
                "error": sum(1 for b in now.values() if b.get("status") == "error"),
                "added": len(now.keys() - previous.keys()),
                "gone": len(previous.keys() - now.keys()),
                "breaches": sum(1 for r in rpo if r["verdict"] in ("never", "breach")),
                "used_mb": float(sum(used)) if used else None,
            }
        )
        previous = now
    return rows


def forecast(ingests: Sequence[Ingest], at: datetime | None = None) -> dict[str, Any]:
    """``cbrq capacity --forecast -f json`` (SPEC §6, reading R9): capacity rows + ``days_to_full``.

    ``at`` None reads the latest inventory at §5's default ``at``; a given one
    reads the backups and vaults present then.

    Example: ``{r["id"]: r["days_to_full"] for r in forecast(accepted(calls))["rows"]}``.
    """
    line = _timeline(ingests)
    backups = list(as_of(ingests, at).values())
    vaults = list(vaults_as_of(ingests, at).values())
    result = analysis("capacity", backups, vaults, [], "", at=at)
    when = _at(at, backups)
    by_id = {v["id"]: v for v in vaults}
    for row in result["rows"]:
        row["days_to_full"] = _days_to_full(line, row, by_id[row["id"]], when)
    return result


def _points(line: _Timeline, ident: str, at: datetime) -> list[tuple[Fraction, Fraction]]:
    """(days from ``at``, billing.used) of vault ``ident`` per distinct taken_at (R9)."""
    newest: dict[datetime, Any] = {}
    for i, ingest in enumerate(line.ingests):  # ingest order: a later copy replaces one
        taken = line.taken[i]
        if taken is None or not at - timedelta(days=spec.FORECAST_DAYS) <= taken <= at:
            continue
        for vault in ingest.vaults:
            used = (vault.get("billing") or {}).get("used")
            numeric = isinstance(used, int | float) and not isinstance(used, bool)
            if vault.get("id") == ident and numeric:
                newest[taken] = used
    micros = timedelta(microseconds=1)
    return [(Fraction((t - at) // micros, 86_400_000_000), Fraction(y)) for t, y in newest.items()]


def _days_to_full(line: _Timeline, row: Record, vault: Record, at: datetime | None) -> float | None:
    """R9's days until ``vault`` (capacity ``row``) meets its threshold, 0 when full, or None."""
    if row["full"]:
        return 0.0
    size = (vault.get("billing") or {}).get("size")
    if at is None or not isinstance(size, int | float) or size <= 0:
        return None
    points = _points(line, vault["id"], at)
    if len(points) < spec.FORECAST_POINTS:
        return None
    x_mean = sum(x for x, _ in points) / len(points)
    y_mean = sum(y for _, y in points) / len(points)
    spread = sum((x - x_mean) ** 2 for x, _ in points)
    if spread == 0:
        return None
    slope = sum((x - x_mean) * (y - y_mean) for x, y in points) / spread
    if slope <= 0:
        return None
    target = Fraction(row["threshold"]) / 100 * Fraction(size) * 1024
    return float(max(x_mean + (target - y_mean) / slope, Fraction(0)))
