"""A naive reference model of ListBackups (SPEC §2) and the analyses (SPEC §5).

Plain Python only: records are the dicts of a dump (as ``cbrq export`` gives
them back), the query is a query string, and the answer is the API response
dict or ``{"error": [bad parameter names]}``. :func:`analysis` and
:func:`diff` answer SPEC §5 with the JSON of ``cbrq <analysis> -f json``. It
reads the written decisions of :mod:`engine.spec` (restated here where §5 needs
them) but none of the engine's code paths, so that the engine and this model
can disagree. Short on purpose: read it in one sitting.

Example::

    answer(backups, vaults, members, "status=available,error&sort=name:asc&limit=10")
    analysis("hygiene", backups, vaults, members, "vault_id=v1", stuck_hours=12)
"""

from __future__ import annotations

import math
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
    "diff": ("kind", "change", "id", "fields", "used_mb_delta"),
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


def _changes(kind: str, old: list[Record], new: list[Record]) -> list[Record]:
    a, b = {r["id"]: r for r in old}, {r["id"]: r for r in new}
    rows = []
    for change, ids in (("added", b.keys() - a.keys()), ("removed", a.keys() - b.keys())):
        rows += [
            {"kind": kind, "change": change, "id": i, "fields": None, "used_mb_delta": None}
            for i in sorted(ids)
        ]
    for i in sorted(a.keys() & b.keys()):
        left, right = _json(a[i]), _json(b[i])
        fields = sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))
        if not fields:
            continue
        delta = None
        if kind == "vault":
            was, now = ((r.get("billing") or {}).get("used") for r in (a[i], b[i]))
            delta = None if was is None or now is None else float(now) - float(was)
        rows.append(
            {"kind": kind, "change": "changed", "id": i, "fields": fields, "used_mb_delta": delta}
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
