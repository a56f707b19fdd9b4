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

Example::

    write_dumps(Path("big"), 1_000_000, seed=7)     # ~1.5 GB in 1000 pages
"""

from __future__ import annotations

import gzip
import os
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    days = rng.choices(RETENTION_DAYS, RETENTION_WEIGHTS)[0]
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

    def backup(self, number: int) -> dict[str, Any]:
        rng = self.rng
        resource = rng.choice(self.resources)
        vault = resource["vault"]
        created = EPOCH + timedelta(
            seconds=rng.randrange(SPAN_SECONDS), microseconds=rng.randrange(1_000_000)
        )
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
            "expired_at": _expiry(rng, created),
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
    progress: Callable[[int], None] | None = None,
) -> Generated:
    """Write ``count`` backups as ListBackups pages plus vaults and members into ``out``.

    Example: ``write_dumps(Path("demo"), 10_000, seed=1, gzipped=True)``.
    """
    rng = random.Random(seed)
    world = _World(rng, resources=max(1, count // BACKUPS_PER_RESOURCE))
    (out / "backups").mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    repeated: list[dict[str, Any]] = []
    shared: list[str] = []
    written = 0
    page_number = 0
    while written < count:
        size = min(page_size, count - written)
        records = [world.backup(written + i) for i in range(size)]
        written += size
        for record in records[: size // 100]:  # ~1 %: saved again later, newer
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
    members = [
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
    files.append(
        _write(out / "vaults.json", {"count": len(world.vaults), "vaults": world.vaults}, False)
    )
    files.append(_write(out / "members.json", {"count": len(members), "members": members}, False))
    return Generated(count, page_number, len(world.vaults), len(members), files)


def _write_page(
    folder: Path, number: int, records: list[dict[str, Any]], total: int, gzipped: bool
) -> Path:
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
