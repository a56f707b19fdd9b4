"""A naive reference model of ListBackups (SPEC §2), for differential tests.

Plain Python only: records are the dicts of a dump (as ``cbrq export`` gives
them back), the query is a query string, and the answer is the API response
dict or ``{"error": [bad parameter names]}``. It reads the written decisions
of :mod:`engine.spec` but none of the engine's code paths, so that the engine
and this model can disagree. Short on purpose: read it in one sitting.

Example::

    answer(backups, vaults, members, "status=available,error&sort=name:asc&limit=10")
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
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


def _bad_values(
    params: dict[str, list[str]],
    project: str | None,
    vaults: list[Record],
    members: list[Record],
    types: set[str],
) -> list[str]:
    bad = []
    for name, values in params.items():
        value = values[-1]
        known = name in (
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
        ok = known and (len(values) == 1 or name == "status") and all(values)
        if ok and name == "image_type":
            ok = value in spec.IMAGE_TYPES
        if ok and name == "resource_type":
            ok = value in spec.RESOURCE_TYPES or value in types
        if ok and name == "status":
            ok = all(s in spec.STATUSES for v in values for s in v.split(","))
        if ok and name in ("start_time", "end_time"):
            ok = _instant(value) is not None
        if ok and name in ("used_percent", "offset", "limit"):
            low, high = {"used_percent": (1, 100), "offset": (0, 2**63 - 1), "limit": (1, 1000)}[
                name
            ]
            ok = value.isascii() and value.isdigit() and len(value.lstrip("0")) <= 19
            ok = ok and low <= int(value.lstrip("0") or "0") <= high
            ok = ok and (name != "used_percent" or bool(vaults))
        if ok and name in ("incremental", "dec", "show_replication"):
            ok = value.lower() in ("true", "false")
        if ok and name == "own_type":
            ok = value in spec.OWN_TYPES and project is not None
        if ok and name == "member_status":
            ok = value in ("pending", "accepted", "rejected", "accept", "reject")
            ok = ok and project is not None and bool(members)
        if ok and name == "sort":
            ok = _sort_ok(value)
        if not ok:
            bad.append(name)
    start, end = (
        _instant(params[k][-1]) if k in params and k not in bad else None
        for k in ("start_time", "end_time")
    )
    if start is not None and end is not None and start > end:
        bad.append("start_time")
    return bad


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
    if statuses and b.get("status") not in statuses:
        return False
    when = _instant(b.get(time_field))
    if "start_time" in p and (when is None or when < _instant(p["start_time"])):  # type: ignore[operator]
        return False
    if "end_time" in p and (when is None or when > _instant(p["end_time"])):  # type: ignore[operator]
        return False
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
    if project is not None:
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
            if not any(
                m.get("backup_id") == b["id"]
                and m.get("dest_project_id") == project
                and m.get("status") == want
                for m in members
            ):
                return False
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
