"""Synthetic CBR dumps for benchmarks and demos: realistic, seeded, fast.

Writes ListBackups pages (pretty-printed like saved API responses, or
gzipped), one ListVaults response and one ShowMembersDetail-style response.
The data has what real dumps have: several projects, both timestamp forms
and ``+08:00`` offsets, nulls, server backups with child volume backups,
replication records (``extra_info`` as string and as object), unknown keys,
vaults used from 0 to 100 %, share members in every state, and about 1 % of
backups repeated in a later page with a newer ``updated_at``. For the
analyses: about 30 backups per resource, vaults listing their resources
(one each with no backup yet, ~2 % of resources listed by none), and
retention from a week to a year or none.

:func:`write_series` writes instead a daily series of full exports of one
inventory (issue 22, SPEC §6): a folder per day, every page of each project
with the project's ``count``, about 1 % churn a day, unchanged records the
same text day to day. It keeps a few bytes per backup between days and reads
each day back to write the next, so memory does not grow with the days.

Example::

    write_dumps(Path("big"), 1_000_000, seed=7)     # ~1.5 GB in 1000 pages
    write_series(Path("daily"), 100_000, days=30)   # daily/2026-01-01/ ... /2026-01-30/
"""

from __future__ import annotations

import gzip
import itertools
import os
import random
import uuid
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import msgspec

from engine import spec

EPOCH: Final = datetime(2025, 1, 1, tzinfo=UTC)
SPAN_SECONDS: Final[int] = 640 * 86400
STATUS_WEIGHTS: Final[tuple[int, ...]] = (80, 4, 2, 2, 8, 2, 1, 1)
#: Backups per protected resource, on average (the pool is ``count`` / this).
BACKUPS_PER_RESOURCE: Final[int] = 30
#: Share of resources with backups that no vault lists (hygiene: orphan).
ORPHANS: Final[float] = 0.02
#: Retention periods in days (None: kept forever) and how often each is set.
RETENTION_DAYS: Final[tuple[int | None, ...]] = (7, 30, 90, 365, None)
RETENTION_WEIGHTS: Final[tuple[int, ...]] = (10, 30, 40, 15, 5)


@dataclass(frozen=True)
class Generated:
    """What :func:`write_dumps` wrote.

    Example: ``write_dumps(out, 1000).pages``.
    """

    backups: int
    pages: int
    vaults: int
    members: int
    files: list[Path]


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _expiry(rng: random.Random, created: datetime) -> str | None:
    """Retention as policies set it: a week to a year, or kept forever (null)."""
    return _expires(rng, created, rng.choices(RETENTION_DAYS, RETENTION_WEIGHTS)[0])


def _expires(rng: random.Random, created: datetime, days: int | None) -> str | None:
    """``expired_at`` of a backup kept ``days`` days (None: forever, a null).

    Example: ``_expires(rng, EPOCH, 30)`` is ``2025-01-31T00:00:00.000000`` in one of the forms.
    """
    return None if days is None else _stamp(rng, created + timedelta(days=days))


def _stamp(rng: random.Random, moment: datetime) -> str:
    form = rng.random()
    if form < 0.70:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")
    if form < 0.85:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+00:00"
    if form < 0.97:
        local = moment + timedelta(hours=8)
        return local.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+08:00"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class _World:
    """Projects, vaults and the record factory, all from one seeded RNG."""

    def __init__(
        self,
        rng: random.Random,
        projects: int = 3,
        vaults_per_project: int = 4,
        resources: int = 1000,
    ) -> None:
        self.rng = rng
        self.projects = [f"{rng.getrandbits(128):032x}" for _ in range(projects)]
        self.vaults: list[dict[str, Any]] = []
        for project in self.projects:
            for _ in range(vaults_per_project):
                size = rng.choice([100, 500, 1000, 2000])
                used = size * 1024 * rng.randint(0, 100) // 100
                self.vaults.append(
                    {
                        "id": _uid(rng),
                        "name": f"vault-{len(self.vaults):03d}",
                        "project_id": project,
                        "provider_id": _uid(rng),
                        "resource_type": "OS::Nova::Server",
                        "enterprise_project_id": "0",
                        "created_at": _stamp(rng, EPOCH),
                        "threshold": 80,
                        "billing": {
                            "size": size,
                            "used": used,
                            "allocated": size,
                            "status": "available",
                            "object_type": "server",
                            "protect_type": "backup",
                            "charging_mode": "post_paid",
                        },
                        "bind_rules": {},
                        "resources": [],
                    }
                )
        self.resources = [self._resource(number) for number in range(resources)]
        for vault in self.vaults:  # protected, but not one backup yet (rpo: never)
            self._resource(len(self.resources), vault)

    def _resource(self, number: int, vault: dict[str, Any] | None = None) -> dict[str, Any]:
        """A protected resource in a vault, listed by it unless it is one of the ~2 % orphans."""
        rng = self.rng
        server = rng.random() < 0.4
        resource: dict[str, Any] = {
            "id": _uid(rng),
            "name": f"{'ecs' if server else 'evs'}-{number:05d}",
            "type": "OS::Nova::Server" if server else "OS::Cinder::Volume",
            "vault": vault if vault is not None else rng.choice(self.vaults),
        }
        if vault is not None or rng.random() >= ORPHANS:
            item = {k: resource[k] for k in ("id", "name", "type")}
            resource["vault"]["resources"].append(item)
        return resource

    def backup(self, number: int, created: datetime | None = None) -> dict[str, Any]:
        """A backup of a random resource, created at ``created`` or a random moment of the span.

        Example: ``world.backup(0)["name"]`` is ``autobk_0000`` or ``manualbk_0000``.
        """
        rng = self.rng
        resource = rng.choice(self.resources)
        if created is None:
            created = EPOCH + timedelta(
                seconds=rng.randrange(SPAN_SECONDS), microseconds=rng.randrange(1_000_000)
            )
        return self.record(number, resource, created, lambda: _expiry(rng, created))

    def record(
        self,
        number: int,
        resource: dict[str, Any],
        created: datetime,
        expiry: Callable[[], str | None],
    ) -> dict[str, Any]:
        """A backup of ``resource`` created at ``created``, ``expiry()`` its ``expired_at``.

        Example: ``world.record(0, world.resources[0], EPOCH, lambda: None)``.
        """
        rng = self.rng
        vault = resource["vault"]
        updated = created + timedelta(seconds=rng.randrange(1, 3600))
        server = resource["type"] == "OS::Nova::Server"
        backup_id = _uid(rng)
        record: dict[str, Any] = {
            "provider_id": "0daac4c5-6707-4851-97ba-169e36266b66",
            "checkpoint_id": _uid(rng),
            "updated_at": _stamp(rng, updated),
            "vault_id": vault["id"],
            "id": backup_id,
            "resource_az": rng.choice(["cn-north-4a", "cn-north-4b", "cn-east-3a"]),
            "image_type": "replication" if rng.random() < 0.05 else "backup",
            "resource_id": resource["id"],
            "resource_size": rng.choice([10, 20, 40, 100, 250, 500]),
            "children": [],
            "extend_info": {
                "auto_trigger": rng.random() < 0.8,
                "bootable": server,
                "incremental": rng.random() < 0.6,
                "support_lld": True,
                "supported_restore_mode": "backup",
                "progress": 100,
            },
            "project_id": vault["project_id"],
            "status": rng.choices(spec.STATUSES, STATUS_WEIGHTS)[0],
            "resource_name": resource["name"],
            "description": "" if rng.random() < 0.9 else None,
            "expired_at": expiry(),
            "replication_records": [],
            "name": f"{'autobk' if rng.random() < 0.85 else 'manualbk'}_{number % 65536:04x}",
            "created_at": _stamp(rng, created),
            "resource_type": "OS::Nova::Server" if server else "OS::Cinder::Volume",
            "enterprise_project_id": "0",
        }
        if rng.random() < 0.9:
            record["protected_at"] = _stamp(rng, created + timedelta(seconds=3))
        if rng.random() < 0.5:
            record["incremental"] = record["extend_info"]["incremental"]
        if server:
            record["children"] = [self._child(record, created) for _ in range(rng.randint(1, 2))]
        if rng.random() < 0.05:
            record["replication_records"] = [self._replication(record, created)]
        if rng.random() < 0.02:
            record["tags"] = [{"key": "env", "value": rng.choice(["prod", "test"])}]
        return record

    def _child(self, parent: dict[str, Any], created: datetime) -> dict[str, Any]:
        rng = self.rng
        child = {
            k: parent[k]
            for k in (
                "provider_id",
                "checkpoint_id",
                "vault_id",
                "project_id",
                "status",
                "resource_az",
                "enterprise_project_id",
            )
        }
        child.update(
            {
                "id": _uid(rng),
                "parent_id": parent["id"],
                "name": parent["name"],
                "resource_id": _uid(rng),
                "resource_name": f"{parent['resource_name']}-disk",
                "resource_size": rng.choice([10, 40, 100]),
                "resource_type": "OS::Cinder::Volume",
                "image_type": "backup",
                "children": [],
                "replication_records": [],
                "created_at": _stamp(rng, created),
                "updated_at": parent["updated_at"],
                "expired_at": parent["expired_at"],
                "description": "",
                "extend_info": {"bootable": False, "system_disk": rng.random() < 0.5},
            }
        )
        return child

    def _replication(self, parent: dict[str, Any], created: datetime) -> dict[str, Any]:
        rng = self.rng
        extra: Any = '{"progress": 100}' if rng.random() < 0.5 else {"progress": 100}
        return {
            "created_at": _stamp(rng, created + timedelta(hours=1)),
            "destination_backup_id": _uid(rng),
            "destination_checkpoint_id": _uid(rng),
            "destination_project_id": rng.choice(self.projects),
            "destination_region": "cn-east-3",
            "destination_vault_id": _uid(rng),
            "extra_info": extra,
            "id": _uid(rng),
            "source_backup_id": parent["id"],
            "source_checkpoint_id": parent["checkpoint_id"],
            "source_project_id": parent["project_id"],
            "source_region": "cn-north-4",
            "status": rng.choice(spec.REPLICATION_STATUSES),
            "vault_id": parent["vault_id"],
        }


def write_dumps(
    out: Path,
    count: int,
    *,
    seed: int = 0,
    page_size: int = 1000,
    gzipped: bool = False,
    newest_first: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Generated:
    """Write ``count`` backups as ListBackups pages plus vaults and members into ``out``.

    ``newest_first``: the pages are one listing as ListBackups pages it with
    no ``sort`` (``created_at`` descending), each backup once; otherwise
    backups come in random order and ~1 % of them again later, newer.

    Example: ``write_dumps(Path("demo"), 10_000, seed=1, gzipped=True)``.
    """
    if newest_first and count > SPAN_SECONDS:
        raise ValueError(f"newest first, at most {SPAN_SECONDS:,} backups fit (one a second)")
    rng = random.Random(seed)
    world = _World(rng, resources=max(1, count // BACKUPS_PER_RESOURCE))
    moments = _newest_first(rng, count) if newest_first else None
    (out / "backups").mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    repeated: list[dict[str, Any]] = []
    shared: list[str] = []
    written = 0
    page_number = 0
    while written < count:
        size = min(page_size, count - written)
        if moments is None:
            records = [world.backup(written + i) for i in range(size)]
        else:
            records = [world.backup(written + i, next(moments)) for i in range(size)]
        written += size
        for record in records[: 0 if newest_first else size // 100]:  # ~1 %: again, newer
            again = dict(record, status="available")
            again["updated_at"] = (EPOCH + timedelta(seconds=SPAN_SECONDS + 86400)).strftime(
                "%Y-%m-%dT%H:%M:%S.%f"
            )
            repeated.append(again)
        if len(shared) < 200:
            shared.extend(r["id"] for r in records[:2])
        if repeated and page_number % 10 == 9:
            records, repeated = records + repeated, []
        page_number += 1
        files.append(_write_page(out / "backups", page_number, records, count, gzipped))
        if progress is not None:
            progress(written)
    if repeated:
        page_number += 1
        files.append(_write_page(out / "backups", page_number, repeated, count, gzipped))
    members = _members(world, shared)
    files.append(
        _write(out / "vaults.json", {"count": len(world.vaults), "vaults": world.vaults}, False)
    )
    files.append(_write(out / "members.json", {"count": len(members), "members": members}, False))
    return Generated(count, page_number, len(world.vaults), len(members), files)


def _members(world: _World, shared: list[str]) -> list[dict[str, Any]]:
    """A share member record for each backup of ``shared``, to a random project.

    Example: ``_members(world, ["<backup id>"])[0]["backup_id"]``.
    """
    rng = world.rng
    return [
        {
            "id": _uid(rng),
            "backup_id": backup_id,
            "dest_project_id": rng.choice(world.projects),
            "status": rng.choice(spec.MEMBER_STATUSES),
            "vault_id": None,
            "image_id": None,
            "created_at": _stamp(rng, EPOCH),
            "updated_at": _stamp(rng, EPOCH),
        }
        for backup_id in shared
    ]


def _newest_first(rng: random.Random, count: int) -> Iterator[datetime]:
    """``count`` moments of the span, newest first, each in a second of its own.

    The span is cut into ``count`` equal stretches and each gets one moment,
    so no two share a second: every timestamp form (some drop the fraction)
    keeps them apart and in order, and the pages need no tie-break by id.

    Example: ``list(_newest_first(random.Random(0), 2))`` -> two moments, the newer first.
    """
    for i in reversed(range(count)):
        low, high = i * SPAN_SECONDS // count, (i + 1) * SPAN_SECONDS // count
        second = low + rng.randrange(max(1, high - low))
        yield EPOCH + timedelta(seconds=second, microseconds=rng.randrange(1_000_000))


def _write_page(folder: Path, number: int, records: list[Any], total: int, gzipped: bool) -> Path:
    name = f"page-{number:06d}.json" + (".gz" if gzipped else "")
    return _write(folder / name, {"count": total, "backups": records}, gzipped)


def _write(path: Path, body: dict[str, Any], gzipped: bool) -> Path:
    text = msgspec.json.format(msgspec.json.encode(body), indent=2)
    # Whole or not at all: a full disk leaves no cut page that a later ingest would refuse.
    partial = path.with_name(f".{path.name}.tmp")
    try:
        partial.write_bytes(gzip.compress(text, compresslevel=1, mtime=0) if gzipped else text)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


# --- a daily series of full exports (issue 22) --------------------------------------------

#: The first day of a series unless told: a year after EPOCH, so day one's backups fit.
SERIES_START: Final = date(2026, 1, 1)
#: A day's export is taken at this hour (UTC); every change of the day happens before it.
EXPORT_HOUR: Final[int] = 23
#: Retention of the backups alive on day one: a policy's share of a steady inventory is
#: its share of new backups times the days it keeps them (forever counted as a year), so
#: about 0.8 % of the inventory expires a day.
LIVE_WEIGHTS: Final[tuple[int, ...]] = tuple(
    weight * (days or 365) for days, weight in zip(RETENTION_DAYS, RETENTION_WEIGHTS, strict=True)
)
#: Daily churn per project, as shares of its backups; each happens at least once a day.
NEW_SHARE: Final[float] = 0.01
EARLY_DELETE_SHARE: Final[float] = 0.001
DELETING_SHARE: Final[float] = 0.0005
RESTORING_SHARE: Final[float] = 0.0005
#: A new backup is available, still protecting (it settles tomorrow) or failed.
NEW_STATUSES: Final[tuple[str, ...]] = ("available", "protecting", "error")
NEW_STATUS_WEIGHTS: Final[tuple[int, ...]] = (85, 10, 5)
#: Share of yesterday's protecting backups that end in error rather than available.
FAILED_SHARE: Final[float] = 0.2
#: The vault that fills: 40 % of its size on day one, then 1.5 to 2.5 % more a day.
FILL_START: Final[float] = 0.40
FILL_DAILY: Final[tuple[float, float]] = (0.015, 0.025)
#: Day one shares the first two backups of every 500 with another project, up to this many.
SHARED_AT_MOST: Final[int] = 200

_KEEP, _SETTLE, _RESTORED, _GONE = range(4)  # what tomorrow does to a backup
_AFTER: Final[dict[str, int]] = {"protecting": _SETTLE, "restoring": _RESTORED, "deleting": _GONE}
_STATUS_CODE: Final[dict[str, int]] = {name: code for code, name in enumerate(spec.STATUSES)}
_DAY: Final = timedelta(days=1)


class _BackupsPage(msgspec.Struct):
    """A ListBackups page as written, its records left as their JSON text."""

    count: int
    backups: list[msgspec.Raw]


class _Id(msgspec.Struct):
    """Only the id of a record (the rest is skipped unread)."""

    id: str


@dataclass(frozen=True)
class Day:
    """One day of :func:`write_series`: the export's folder and what changed since yesterday.

    Example: ``write_series(out, 1000, days=2).days[1].added``.
    """

    day: date
    folder: Path
    backups: int
    added: int
    gone: int
    changed: int
    files: int


@dataclass(frozen=True)
class Series:
    """What :func:`write_series` wrote, day by day.

    Example: ``write_series(out, 1000, days=3).days[-1].backups``.
    """

    days: tuple[Day, ...]


@dataclass
class _Ledger:
    """What a project's export leaves for tomorrow: a few bytes per backup, in page order.

    The records themselves stay in the pages just written; tomorrow reads them back.

    Example: ``ledger.add(-1, "available", _KEEP, False)`` for a backup kept forever.
    """

    expiry: array[int] = field(default_factory=lambda: array("q"))
    status: bytearray = field(default_factory=bytearray)
    plan: bytearray = field(default_factory=bytearray)
    shared: bytearray = field(default_factory=bytearray)

    def add(self, expiry: int, status: str, plan: int, shared: bool) -> None:
        """Append one backup: ``expiry`` in epoch seconds (-1: never), its status and plan."""
        self.expiry.append(expiry)
        self.status.append(_STATUS_CODE[status])
        self.plan.append(plan)
        self.shared.append(shared)

    def __len__(self) -> int:
        return len(self.plan)


@dataclass(frozen=True)
class _Plan:
    """Today's fate of yesterday's backups, by position: dropped, or given a new status."""

    drop: frozenset[int]
    status: dict[int, str]
    new: int


def _share(size: int, share: float) -> int:
    """``share`` of ``size``, at least one. Example: ``_share(300, 0.01) == 3``."""
    return max(1, round(size * share))


def _seconds(moment: datetime) -> int:
    """Epoch seconds of ``moment``. Example: ``_seconds(EPOCH) == 1735689600``."""
    return int(moment.timestamp())


def _plan(ledger: _Ledger, rng: random.Random, export_at: int) -> _Plan:
    """Decide today's churn of one project from yesterday's ledger.

    Gone: yesterday's ``deleting``, the expired (``expired_at`` before the export) and a
    few deleted early. Changed: yesterday's ``protecting`` (to available, some to error)
    and ``restoring`` (to available), a few available ones to ``deleting`` or ``restoring``.

    Example: ``_plan(ledger, rng, _seconds(datetime(2026, 1, 2, 23, tzinfo=UTC)))``.
    """
    drop: set[int] = set()
    status: dict[int, str] = {}
    idle: list[int] = []
    available = _STATUS_CODE["available"]
    for i, plan in enumerate(ledger.plan):
        if plan == _GONE or 0 <= ledger.expiry[i] < export_at:
            drop.add(i)
        elif plan == _SETTLE:
            status[i] = "error" if rng.random() < FAILED_SHARE else "available"
        elif plan == _RESTORED:
            status[i] = "available"
        elif ledger.status[i] == available:
            idle.append(i)
    size = len(ledger)
    early, deleting, restoring = (
        _share(size, s) for s in (EARLY_DELETE_SHARE, DELETING_SHARE, RESTORING_SHARE)
    )
    picked = rng.sample(idle, min(len(idle), early + deleting + restoring))
    drop.update(picked[:early])
    status.update(dict.fromkeys(picked[early : early + deleting], "deleting"))
    status.update(dict.fromkeys(picked[early + deleting :], "restoring"))
    return _Plan(frozenset(drop), status, _share(size, NEW_SHARE))


def _set_status(record: dict[str, Any], status: str, updated_at: str | None = None) -> None:
    """Give ``record`` and its children ``status`` (and ``updated_at``, when a change).

    Example: ``_set_status(record, "deleting", "2026-01-02T10:00:00.000000")``.
    """
    for item in (record, *record["children"]):
        item["status"] = status
        if updated_at is not None:
            item["updated_at"] = updated_at


def _read_pages(folder: Path) -> Iterator[msgspec.Raw]:
    """The records of the ListBackups pages in ``folder``, in page order, as written.

    Example: ``next(_read_pages(Path("daily/2026-01-01/backups/<project>")))``.
    """
    for path in sorted(folder.glob("page-*")):  # not a ``.page-*.tmp`` a crash left
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        yield from msgspec.json.decode(data, type=_BackupsPage).backups


def _split(count: int, parts: int) -> list[int]:
    """``count`` in ``parts`` near-equal shares, the larger first. Example: ``[4, 3, 3]``."""
    return [count // parts + (i < count % parts) for i in range(parts)]


def _midnight(day: date) -> datetime:
    """The start of ``day`` in UTC. Example: ``_midnight(date(2026, 1, 1))``."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class _Chronicle:
    """One inventory lived day by day: the world, each project's ledger, members, the vaults.

    It keeps no backup record between days: each day reads yesterday's pages back and
    copies the unchanged records' text, so memory does not grow with the days.
    """

    def __init__(
        self, rng: random.Random, count: int, out: Path, page_size: int, gzipped: bool
    ) -> None:
        self.rng, self.out, self.page_size, self.gzipped = rng, out, page_size, gzipped
        self.world = _World(rng, resources=max(30, count // BACKUPS_PER_RESOURCE))
        self.by_project: dict[str, list[dict[str, Any]]] = {p: [] for p in self.world.projects}
        for resource in self.world.resources:
            self.by_project[resource["vault"]["project_id"]].append(resource)
        for project, resources in self.by_project.items():
            if not resources:  # so rare it needs a seed to see, but never an empty choice
                vault = next(v for v in self.world.vaults if v["project_id"] == project)
                resources.append(self.world._resource(len(self.world.resources), vault))
        self.ledgers: dict[str, _Ledger] = {}
        self.members: dict[str, dict[str, Any]] = {}
        self.fresh: list[str] = []  # backups shared today: the share is accepted tomorrow
        self.filling = self.world.vaults[0]
        self.number = 0
        self.yesterday: Path | None = None

    def first(self, day: date, count: int) -> Day:
        """Day one: ``count`` backups, the youngest created today, written as a full export.

        Example: ``chronicle.first(date(2026, 1, 1), 1000).backups == 1000``.
        """
        folder = self.out / day.isoformat()
        limit = self.filling["billing"]["size"] * 1024
        self.filling["billing"]["used"] = round(limit * FILL_START)
        files: list[Path] = []
        for project, size in zip(self.by_project, _split(count, len(self.by_project)), strict=True):
            ledger = self.ledgers[project] = _Ledger()
            new = min(size, _share(size, NEW_SHARE))
            records = itertools.chain(
                self._founded(project, size - new, day, ledger),
                self._born(project, new, day, ledger),
            )
            files += self._pages(folder, project, size, records)
        return self._finish(day, folder, files, (count, count, 0, 0))

    def next(self, day: date) -> Day:
        """Yesterday's export read back, today's churn applied, written as today's export.

        Example: ``chronicle.next(date(2026, 1, 2)).added`` (about 1 % of the backups).
        """
        assert self.yesterday is not None, "day one comes first"
        folder = self.out / day.isoformat()
        self._settle_members(day)
        billing = self.filling["billing"]
        grown = round(billing["size"] * 1024 * self.rng.uniform(*FILL_DAILY))
        billing["used"] = min(billing["size"] * 1024, billing["used"] + grown)
        export_at = _seconds(_midnight(day) + timedelta(hours=EXPORT_HOUR))
        files: list[Path] = []
        added = gone = changed = 0
        for project in self.by_project:
            old, ledger = self.ledgers[project], _Ledger()
            plan = _plan(old, self.rng, export_at)
            records = itertools.chain(
                self._carried(self.yesterday / "backups" / project, plan, old, ledger, day),
                self._born(project, plan.new, day, ledger),
            )
            total = len(old) - len(plan.drop) + plan.new
            files += self._pages(folder, project, total, records)
            self.ledgers[project] = ledger
            added += plan.new
            gone += len(plan.drop)
            changed += len(plan.status)
        backups = sum(len(ledger) for ledger in self.ledgers.values())
        return self._finish(day, folder, files, (backups, added, gone, changed))

    def _founded(
        self, project: str, count: int, day: date, ledger: _Ledger
    ) -> Iterator[msgspec.Raw]:
        """Backups made before ``day`` and alive at its export, statuses as real dumps hold.

        A backup kept ``r`` days was created between ``r`` days and one day before the
        export, so none has expired yet and none was updated today.
        """
        rng = self.rng
        export = _midnight(day) + timedelta(hours=EXPORT_HOUR)
        for number in range(count):
            days = rng.choices(RETENTION_DAYS, LIVE_WEIGHTS)[0]
            age = rng.uniform(86400, (days or 365) * 86400)
            created = export - timedelta(seconds=age)
            record = self._make(project, created, days)
            shared = number % 500 < 2 and len(self.members) < SHARED_AT_MOST
            if shared:
                status = rng.choice(spec.MEMBER_STATUSES)
                self._share(record["id"], project, created + timedelta(hours=2), status)
            expiry = -1 if days is None else _seconds(created + timedelta(days=days))
            ledger.add(expiry, record["status"], _KEEP, shared)
            yield msgspec.Raw(msgspec.json.encode(record))

    def _born(self, project: str, count: int, day: date, ledger: _Ledger) -> Iterator[msgspec.Raw]:
        """Backups created today: the first still protecting, the others mostly available.

        The first project shares its last new backup of the day (accepted tomorrow).
        """
        rng = self.rng
        for number in range(count):
            created = _midnight(day) + timedelta(seconds=rng.uniform(0, 21 * 3600))
            days = rng.choices(RETENTION_DAYS, RETENTION_WEIGHTS)[0]
            status = rng.choices(NEW_STATUSES, NEW_STATUS_WEIGHTS)[0] if number else "protecting"
            record = self._make(project, created, days)
            _set_status(record, status)
            shared = project == self.world.projects[0] and number == count - 1
            if shared:
                self._share(record["id"], project, created + timedelta(minutes=30), "pending")
                self.fresh.append(record["id"])
            expiry = -1 if days is None else _seconds(created + timedelta(days=days))
            ledger.add(expiry, status, _AFTER.get(status, _KEEP), shared)
            yield msgspec.Raw(msgspec.json.encode(record))

    def _carried(
        self, pages: Path, plan: _Plan, old: _Ledger, ledger: _Ledger, day: date
    ) -> Iterator[msgspec.Raw]:
        """Yesterday's records of one project, less the dropped, the changed rewritten.

        An unchanged record is yesterday's text itself.
        """
        for i, raw in enumerate(_read_pages(pages)):
            if i in plan.drop:
                if old.shared[i]:
                    self.members.pop(msgspec.json.decode(raw, type=_Id).id, None)
                continue
            status = plan.status.get(i)
            if status is None:
                ledger.add(old.expiry[i], spec.STATUSES[old.status[i]], _KEEP, bool(old.shared[i]))
                yield raw
                continue
            record = msgspec.json.decode(raw)
            moment = _midnight(day) + timedelta(seconds=self.rng.uniform(0, 22 * 3600))
            _set_status(record, status, _stamp(self.rng, moment))
            ledger.add(old.expiry[i], status, _AFTER.get(status, _KEEP), bool(old.shared[i]))
            yield msgspec.Raw(msgspec.json.encode(record))

    def _make(self, project: str, created: datetime, days: int | None) -> dict[str, Any]:
        """A backup of one of ``project``'s resources, kept ``days`` days."""
        resource = self.rng.choice(self.by_project[project])
        record = self.world.record(
            self.number, resource, created, lambda: _expires(self.rng, created, days)
        )
        self.number += 1
        return record

    def _share(self, backup_id: str, project: str, moment: datetime, status: str) -> None:
        """Share a backup with another project (a ShowMembersDetail member)."""
        others = [p for p in self.world.projects if p != project] or [project]
        stamp = _stamp(self.rng, moment)
        self.members[backup_id] = {
            "id": _uid(self.rng),
            "backup_id": backup_id,
            "dest_project_id": self.rng.choice(others),
            "status": status,
            "vault_id": None,
            "image_id": None,
            "created_at": stamp,
            "updated_at": stamp,
        }

    def _settle_members(self, day: date) -> None:
        """Yesterday's new shares are accepted today (their backup may be gone already)."""
        for backup_id in self.fresh:
            member = self.members.get(backup_id)
            if member is not None:
                moment = _midnight(day) + timedelta(seconds=self.rng.uniform(0, 22 * 3600))
                member.update(status="accepted", updated_at=_stamp(self.rng, moment))
        self.fresh = []

    def _pages(
        self, folder: Path, project: str, total: int, records: Iterator[msgspec.Raw]
    ) -> list[Path]:
        """Write one project's ListBackups pages, each carrying the project's ``total``."""
        where = folder / "backups" / project
        where.mkdir(parents=True, exist_ok=True)
        files: list[Path] = []
        chunk = list(itertools.islice(records, self.page_size))
        while chunk or not files:  # an empty project still answers one page, count 0
            files.append(_write_page(where, len(files) + 1, chunk, total, self.gzipped))
            chunk = list(itertools.islice(records, self.page_size))
        return files

    def _finish(
        self, day: date, folder: Path, files: list[Path], counts: tuple[int, int, int, int]
    ) -> Day:
        """Write the day's vaults and members, remove a former run's leftovers, sum up."""
        for project in self.by_project:
            vaults = [v for v in self.world.vaults if v["project_id"] == project]
            where = folder / "vaults" / project
            where.mkdir(parents=True, exist_ok=True)
            page = {"count": len(vaults), "vaults": vaults}
            files.append(_write(where / "page-000001.json", page, False))
        members = {"count": len(self.members), "members": list(self.members.values())}
        files.append(_write(folder / "members.json", members, False))
        kept = set(files)
        for sub in ("backups", "vaults"):
            for path in sorted((folder / sub).rglob("*")):
                if path.is_file() and path not in kept:
                    path.unlink()
        self.yesterday = folder
        return Day(day, folder, *counts, files=len(files))


def write_series(
    out: Path,
    count: int,
    *,
    days: int,
    seed: int = 0,
    page_size: int = 1000,
    gzipped: bool = False,
    start: date = SERIES_START,
    progress: Callable[[int], None] | None = None,
) -> Series:
    """Write ``days`` daily full exports of one inventory into ``out/<YYYY-MM-DD>/``.

    Each day holds every ListBackups page of each project (``backups/<project>/``, every
    page with the project's ``count``), its ListVaults page (``vaults/<project>/``) and
    the share members (``members.json``). Day one holds ``count`` backups; each later day
    is the one before with ~1 % churn: new backups, status changes, expiries and early
    deletions, a backup in ``deleting`` gone the next day, and one vault filling up.
    A record that did not change is the same text as the day before. Same seed, same bytes.
    A day's folder written by an earlier run is replaced: its other pages are removed.

    Example: ``write_series(Path("daily"), 100_000, days=30, seed=7)``.
    """
    chronicle = _Chronicle(random.Random(seed), count, out, page_size, gzipped)
    written: list[Day] = []
    for number in range(days):
        day = start + timedelta(days=number)
        written.append(chronicle.first(day, count) if number == 0 else chronicle.next(day))
        if progress is not None:
            progress(sum(d.backups for d in written))
    return Series(tuple(written))
