"""Generate the deterministic sample CBR inventory under ``sample_data/dumps/``.

Usage (from the repository root)::

    python sample_data/make_sample.py            # writes next to this script
    python sample_data/make_sample.py OUT_DIR    # writes OUT_DIR/dumps/...

Everything comes from ``random.Random(20261127)``: no wall clock, no
``uuid4``, gzip with ``mtime=0``, so two runs write byte-identical files.
Before writing, the script deletes only the files it generates itself (their
names are listed in ``GENERATED_PATTERNS``); ``make_sample.py``,
``api-example.json`` and ``README.md`` are never touched. The daily series in
``sample_daily/`` (beside this folder) is not this script's: ``cbrq generate
sample_daily -n 20 --days 5 --seed 7`` writes it (README.md).

What is generated (SPEC §1 record shapes; see README.md for the edge cases):

* 3 projects, 300 distinct top-level backups (server backups nest 1-3 child
  volume backups), created 2025-01-01 .. 2026-10-31;
* 8 vaults (ListVaults pages per project plus one ShowVault singleton);
* 20 share members (ShowMembersDetail pages plus one ShowMemberDetail);
* every input form the ingester accepts: pretty pages, a gzipped page, a JSON
  array of two responses, NDJSON of bare backups, a ShowBackup singleton;
* three duplicate backup ids (newer copy later by path, newer copy earlier by
  path, equal ``updated_at``), a key (``tags``) that only the very last
  backup record holds, unknown ``extend_info`` keys, mixed timestamp forms.
"""

from __future__ import annotations

import copy
import gzip
import json
import random
import re
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

SEED = 20261127
PAGE_SIZE = 50

Record = dict[str, Any]

STATUSES = (
    "available",
    "protecting",
    "deleting",
    "restoring",
    "error",
    "waiting_protect",
    "waiting_delete",
    "waiting_restore",
)
STATUS_WEIGHTS = (72, 4, 3, 3, 8, 4, 3, 3)
REPLICATION_STATUSES = ("replicating", "success", "fail", "skip", "waiting_replicate")

SERVER = "OS::Nova::Server"
VOLUME = "OS::Cinder::Volume"
TURBO = "OS::Sfs::Turbo"
# Provider ids of the seed example (server, volume); the turbo one is made up.
PROVIDERS = {
    SERVER: "0daac4c5-6707-4851-97ba-169e36266b66",
    VOLUME: "d1603440-187d-4516-af25-121250c7cc97",
    TURBO: "7e3d1a58-5b1f-4b4e-9a1e-2f0b8c6d4e11",
}

# Timestamp forms and their weights (per record; single fields may deviate).
TS_FORMS = ("naive6", "ms_utc", "plus8", "z", "nofrac", "frac3", "frac9")
TS_WEIGHTS = (60, 20, 8, 4, 3, 2.5, 2.5)
CST = timezone(timedelta(hours=8))

START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)

# Files this script owns (relative to OUT_DIR/dumps/<project_short>/).
GENERATED_PATTERNS = (
    "backups-page-*.json",
    "backups-page-*.json.gz",
    "backups-export.json",
    "backups-stream.ndjson",
    "backup-*.json",
    "vaults-page-*.json",
    "vault-*.json",
    "members-*.json",
    "member-*.json",
)


# --- small helpers ------------------------------------------------------------


class Ids:
    """UUID-like ids and project ids drawn from the seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hex32(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"


def fmt_ts(instant: datetime, form: str, rng: random.Random) -> str:
    """Write a UTC instant in one of the dump timestamp forms.

    ``ms_utc``/``frac3`` truncate to milliseconds and ``nofrac`` to seconds,
    so the written instant can be slightly earlier than ``instant``.
    """
    base = instant.strftime("%Y-%m-%dT%H:%M:%S")
    micro = f"{instant.microsecond:06d}"
    if form == "naive6":
        return f"{base}.{micro}"
    if form == "ms_utc":
        return f"{base}.{micro[:3]}+00:00"
    if form == "plus8":
        local = instant.astimezone(CST)
        return local.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+08:00"
    if form == "z":
        return f"{base}.{micro}Z" if rng.random() < 0.5 else f"{base}.{micro[:3]}Z"
    if form == "nofrac":
        return base
    if form == "frac3":
        return f"{base}.{micro[:3]}"
    if form == "frac9":
        zone = "Z" if rng.random() < 0.3 else ""
        return f"{base}.{micro}{rng.randrange(1000):03d}{zone}"
    raise ValueError(form)


class Clock:
    """Chooses a timestamp form per record, with an occasional per-field switch."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.form = "naive6"

    def new_record(self) -> None:
        self.form = self.rng.choices(TS_FORMS, TS_WEIGHTS)[0]

    def ts(self, instant: datetime) -> str:
        form = self.form
        if self.rng.random() < 0.12:
            form = self.rng.choices(TS_FORMS, TS_WEIGHTS)[0]
        return fmt_ts(instant, form, self.rng)


def random_instant(rng: random.Random, start: datetime, end: datetime) -> datetime:
    span = int((end - start).total_seconds())
    return start + timedelta(seconds=rng.randrange(span), microseconds=rng.randrange(10**6))


# --- the model ----------------------------------------------------------------


@dataclass
class Volume:
    id: str
    name: str
    size: int
    bootable: bool


@dataclass
class Resource:
    id: str
    name: str
    type: str
    az: str
    ep: str
    size: int
    volumes: list[Volume] = field(default_factory=list)


@dataclass
class Project:
    id: str
    region: str
    short: str = ""
    servers: list[Resource] = field(default_factory=list)
    volumes: list[Resource] = field(default_factory=list)
    turbos: list[Resource] = field(default_factory=list)
    vaults: list[Record] = field(default_factory=list)
    backups: list[Record] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.short = self.id[:8]


@dataclass(frozen=True)
class VaultPlan:
    """One vault: owner (index into sorted projects), type, size GB, used MB."""

    project: int
    name: str
    rtype: str
    object_type: str
    size: int
    used: int
    description: str = ""


# Usage = used MB / (size GB * 1024): 49.7 %, exactly 80 %, size 0,
# exactly 100 %, 95.3 %, 1 MB under 80 %, 10.2 %, exactly 0 %.
VAULT_PLANS = (
    VaultPlan(0, "vault-prod-servers", SERVER, "server", 2000, 1017856),
    VaultPlan(0, "vault-prod-disks", VOLUME, "disk", 1000, 819200, "threshold reached"),
    VaultPlan(0, "vault-sfs-turbo", TURBO, "turbo", 0, 0, "capacity not set yet"),
    VaultPlan(1, "vault-hk-servers", SERVER, "server", 500, 512000, "full"),
    VaultPlan(1, "vault-hk-disks", VOLUME, "disk", 800, 780697),
    VaultPlan(2, "vault-sh-servers", SERVER, "server", 1500, 1228799),
    VaultPlan(2, "vault-sh-disks", VOLUME, "disk", 300, 31334),
    VaultPlan(2, "vault-sh-new-disks", VOLUME, "disk", 100, 0, "new, nothing stored yet"),
)
SHOW_VAULT_INDEX = 4  # vault-hk-disks is only in a ShowVault singleton file
EMPTY_VAULT_INDEX = 7  # holds only backups that never completed
BACKUPS_PER_PROJECT = (110, 95, 95)
REGIONS = ("cn-north-4", "ap-southeast-1", "cn-east-3")
SERVER_NAMES = (
    "web-01",
    "web-02",
    "web-03",
    "app-01",
    "app-02",
    "db-01",
    "db-02",
    "test001-01",
    "test001-02",
    "cache-01",
)
VOLUME_NAMES = (
    "data-disk-01",
    "data-disk-02",
    "log-vol-01",
    "archive-vol-01",
    "qsy_000",
    "qsy_001",
)


def make_projects(rng: random.Random, ids: Ids, eps: list[str]) -> list[Project]:
    """Three projects (sorted by short id) with their servers, volumes and turbos."""
    projects = sorted((Project(ids.hex32(), "") for _ in range(3)), key=lambda p: p.id)
    for project, region in zip(projects, REGIONS, strict=True):
        project.region = region
        azs = [f"{region}{letter}" for letter in "abc"]
        for name in SERVER_NAMES:
            ep = "0" if rng.random() < 0.7 else rng.choice(eps)
            server = Resource(ids.uuid(), name, SERVER, rng.choice(azs), ep, 0)
            for n in range(rng.randint(1, 3)):
                size = 40 if n == 0 else rng.choice((50, 100, 200, 500))
                server.volumes.append(Volume(ids.uuid(), f"{name}-volume-{n:04d}", size, n == 0))
            server.size = sum(v.size for v in server.volumes)
            project.servers.append(server)
        for name in VOLUME_NAMES:
            ep = "0" if rng.random() < 0.7 else rng.choice(eps)
            size = rng.choice((10, 20, 100, 250, 500))
            project.volumes.append(Resource(ids.uuid(), name, VOLUME, rng.choice(azs), ep, size))
    for name in ("sfs-turbo-shared-01", "sfs-turbo-build-02"):
        size = rng.choice((500, 1200, 2000))
        projects[0].turbos.append(Resource(ids.uuid(), name, TURBO, "cn-north-4a", "0", size))
    return projects


def make_vaults(ids: Ids, clock: Clock, rng: random.Random, projects: list[Project]) -> list[str]:
    """Attach the eight planned vaults to their projects; their ids in plan order."""
    for plan in VAULT_PLANS:
        project = projects[plan.project]
        clock.new_record()
        created = random_instant(rng, datetime(2024, 6, 1, tzinfo=UTC), START)
        spec = {"server": "server", "disk": "volume", "turbo": "turbo"}[plan.object_type]
        project.vaults.append(
            {
                "id": ids.uuid(),
                "name": plan.name,
                "project_id": project.id,
                "provider_id": PROVIDERS[plan.rtype],
                "resource_type": plan.rtype,
                "description": plan.description,
                "created_at": clock.ts(created),
                "enterprise_project_id": "0",
                "auto_bind": rng.random() < 0.5,
                "bind_rules": {},
                "threshold": 80,
                "billing": {
                    "allocated": plan.size,
                    "charging_mode": "post_paid",
                    "cloud_type": "public",
                    "consistent_level": "crash_consistent",
                    "object_type": plan.object_type,
                    "protect_type": "backup",
                    "size": plan.size,
                    "spec_code": f"vault.backup.{spec}.normal",
                    "status": "available",
                    "used": plan.used,
                    "frozen_scene": None,
                    "order_id": None,
                    "product_id": "",
                    "storage_unit": "",
                    "is_multi_az": False,
                },
                "resources": [],
            }
        )
    return [
        v["id"]
        for plan in VAULT_PLANS
        for v in projects[plan.project].vaults
        if v["name"] == plan.name
    ]


# --- backups ------------------------------------------------------------------


def extend_info(
    rng: random.Random,
    ids: Ids,
    rtype: str,
    *,
    auto: bool,
    status: str,
    bootable: bool,
    system_disk: bool,
) -> Record:
    """An ``extend_info`` shaped like the seed example for the resource type."""
    progress = 100 if status == "available" else rng.choice((0, 15, 40, 85))
    if rtype == SERVER:
        info: Record = {
            "auto_trigger": auto,
            "supported_restore_mode": "backup",
            "contain_system_disk": True,
            "support_lld": True,
            "architecture": rng.choice(("x86_64", "x86_64", "arm")),
            "system_disk": False,
            "app_consistency": {
                "app_consistency_error_code": "0",
                "app_consistency_status": "0",
                "app_consistency_error_message": "",
                "app_consistency": "0",
            },
        }
        if rng.random() < 0.4:
            info["os_images_data"] = [{"image_id": ids.uuid()}]
        if rng.random() < 0.3:
            info["progress"] = progress
        return info
    if rtype == VOLUME:
        return {
            "auto_trigger": auto,
            "snapshot_id": ids.uuid(),
            "bootable": bootable,
            "progress": progress,
            "support_lld": True,
            "encrypted": rng.random() < 0.15,
            "system_disk": system_disk,
        }
    return {
        "auto_trigger": auto,
        "supported_restore_mode": rng.choice(("backup", "na")),
        "is_multi_az": False,
        "progress": progress,
        "support_lld": False,
    }


def set_incremental(rng: random.Random, record: Record) -> None:
    """~half top-level ``incremental``; others extend_info only, or neither."""
    value = rng.random() < 0.6
    roll = rng.random()
    if roll < 0.5:
        record["incremental"] = value
        if rng.random() < 0.3:
            record["extend_info"]["incremental"] = value
    elif roll < 0.85:
        record["extend_info"]["incremental"] = value


def backup_name(rng: random.Random, resource: Resource, created: datetime) -> tuple[str, bool]:
    """``autobk_XXXX`` for policy backups, ``manualbk_...`` for manual ones."""
    if rng.random() < 0.72:
        return f"autobk_{rng.getrandbits(16):04x}", True
    day = created.strftime("%Y%m%d")
    name = rng.choice(
        (
            f"manualbk_{resource.name}_{day}",
            f"manualbk_{resource.name}_pre-upgrade",
            f"manualbk_{day}",
            f"manualbk_{resource.name}",
        )
    )
    return name, False


def timing(rng: random.Random, created: datetime, status: str) -> tuple[datetime, datetime]:
    """(protected, updated) instants after ``created`` for a status."""
    protected = created + timedelta(seconds=rng.randint(1, 9), microseconds=rng.randrange(10**6))
    if status in ("available", "error", "protecting", "waiting_protect"):
        updated = protected + timedelta(seconds=rng.randint(5, 3600))
    else:  # a later operation (delete, restore) touched it
        updated = protected + timedelta(days=rng.randint(1, 60), seconds=rng.randint(0, 86399))
    return protected, updated


def make_backup(
    rng: random.Random,
    ids: Ids,
    clock: Clock,
    *,
    project: Project,
    vault_id: str,
    resource: Resource,
    rtype: str,
    az: str,
    size: int,
    created: datetime,
    status: str,
    image_type: str,
    name: str,
    auto: bool,
    checkpoint_id: str,
    ep: str,
    bootable: bool = False,
    system_disk: bool = False,
    parent_id: str | None = None,
) -> Record:
    """One backup record in the key order of the seed example, plus extras."""
    protected, updated = timing(rng, created, status)
    retention = rng.choice((7, 30, 90, 180, 365))
    expired = created + timedelta(days=retention, microseconds=-rng.randrange(1, 9000))
    record: Record = {
        "provider_id": PROVIDERS[rtype],
        "checkpoint_id": checkpoint_id,
        "updated_at": clock.ts(updated),
        "vault_id": vault_id,
        "id": ids.uuid(),
        "resource_az": az,
        "image_type": image_type,
        "resource_id": resource.id,
        "resource_size": size,
        "children": [],
        "extend_info": extend_info(
            rng, ids, rtype, auto=auto, status=status, bootable=bootable, system_disk=system_disk
        ),
        "project_id": project.id,
        "status": status,
        "resource_name": resource.name,
        "description": "" if rng.random() < 0.85 else "before maintenance window",
        "expired_at": clock.ts(expired),
        "replication_records": [],
        "name": name,
        "created_at": clock.ts(created),
        "resource_type": rtype,
    }
    roll = rng.random()
    if status in ("protecting", "waiting_protect") and roll < 0.5:
        record["protected_at"] = None  # not protected yet
    elif roll < 0.9:
        record["protected_at"] = clock.ts(protected)
    elif roll < 0.95:
        record["protected_at"] = None
    # else: protected_at missing
    set_incremental(rng, record)
    record["enterprise_project_id"] = ep
    if parent_id is not None:
        record["parent_id"] = parent_id
    return record


def make_children(
    rng: random.Random,
    ids: Ids,
    clock: Clock,
    parent: Record,
    project: Project,
    server: Resource,
    created: datetime,
) -> list[Record]:
    """Child volume backups of a server backup, one per attached volume."""
    children = []
    for n, volume in enumerate(server.volumes):
        child_created = created + timedelta(milliseconds=rng.randint(5, 900) + n)
        child = make_backup(
            rng,
            ids,
            clock,
            project=project,
            vault_id=parent["vault_id"],
            resource=Resource(volume.id, volume.name, VOLUME, server.az, server.ep, volume.size),
            rtype=VOLUME,
            az=server.az,
            size=volume.size,
            created=child_created,
            status=parent["status"],
            image_type=parent["image_type"],
            name=parent["name"],
            auto=parent["extend_info"]["auto_trigger"],
            checkpoint_id=parent["checkpoint_id"],
            ep=server.ep,
            bootable=volume.bootable,
            system_disk=volume.bootable,
            parent_id=parent["id"],
        )
        children.append(child)
    return children


def vault_for(
    rng: random.Random, project: Project, rtype: str, status: str, empty_vault_id: str
) -> str:
    """A vault of the project that stores this resource type.

    The 0 %-used vault only receives backups that never completed.
    """
    candidates: list[str] = [v["id"] for v in project.vaults if v["resource_type"] == rtype]
    if empty_vault_id in candidates:
        if status in ("protecting", "waiting_protect", "error") and rng.random() < 0.6:
            return empty_vault_id
        candidates.remove(empty_vault_id)
    return rng.choice(candidates)


def make_backups(
    rng: random.Random,
    ids: Ids,
    clock: Clock,
    project: Project,
    count: int,
    same_instant: datetime | None,
    empty_vault_id: str,
) -> None:
    """Generate ``count`` top-level backups (with children) for one project."""
    kinds = [SERVER, VOLUME, TURBO] if project.turbos else [SERVER, VOLUME]
    weights = [50, 42, 8] if project.turbos else [55, 45]
    for i in range(count):
        clock.new_record()
        rtype = rng.choices(kinds, weights)[0]
        pool = {SERVER: project.servers, VOLUME: project.volumes, TURBO: project.turbos}[rtype]
        resource = rng.choice(pool)
        status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
        created = random_instant(rng, START, END)
        name, auto = backup_name(rng, resource, created)
        if auto:  # policy runs at 02:00 +08:00 (18:00 UTC) give or take a few minutes
            created = created.replace(hour=18, minute=rng.randint(0, 14))
        if same_instant is not None and i < 3:
            created = same_instant  # three backups share one created_at instant
        image_type = "replication" if rng.random() < 0.08 else "backup"
        vault_id = vault_for(rng, project, rtype, status, empty_vault_id)
        record = make_backup(
            rng,
            ids,
            clock,
            project=project,
            vault_id=vault_id,
            resource=resource,
            rtype=rtype,
            az=resource.az,
            size=resource.size,
            created=created,
            status=status,
            image_type=image_type,
            name=name,
            auto=auto,
            checkpoint_id=ids.uuid(),
            ep=resource.ep,
        )
        if rtype == SERVER:
            record["children"] = make_children(rng, ids, clock, record, project, resource, created)
        project.backups.append(record)


def replication_record(
    rng: random.Random,
    ids: Ids,
    clock: Clock,
    backup: Record,
    project: Project,
    projects: list[Project],
    status: str,
) -> Record:
    """One replication record with every key of SPEC §1."""
    other = rng.choice([p for p in projects if p is not project])
    created = parse_written(backup["created_at"]) + timedelta(minutes=rng.randint(5, 120))
    progress = {
        "success": 100,
        "replicating": rng.choice((20, 55)),
        "fail": 30,
        "skip": 0,
        "waiting_replicate": 0,
    }[status]
    if rng.random() < 0.5:
        extra: Any = json.dumps({"progress": progress})
    else:
        extra = {
            "progress": progress,
            "fail_code": "BackupService.6302" if status == "fail" else None,
        }
    return {
        "created_at": clock.ts(created),
        "destination_backup_id": ids.uuid(),
        "destination_checkpoint_id": ids.uuid(),
        "destination_project_id": other.id,
        "destination_region": other.region,
        "destination_vault_id": ids.uuid(),
        "extra_info": extra,
        "id": ids.uuid(),
        "source_backup_id": backup["id"],
        "source_checkpoint_id": backup["checkpoint_id"],
        "source_project_id": project.id,
        "source_region": project.region,
        "status": status,
        "vault_id": backup["vault_id"],
    }


def parse_written(text: str) -> datetime:
    """Parse a timestamp this script wrote (any of its forms) to a UTC instant."""
    zone = UTC
    if text.endswith("Z"):
        text = text[:-1]
    elif text[-6] in "+-":
        sign = 1 if text[-6] == "+" else -1
        zone = timezone(sign * timedelta(hours=int(text[-5:-3]), minutes=int(text[-2:])))
        text = text[:-6]
    base, _, frac = text.partition(".")
    instant = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=zone)
    micros = int(frac.ljust(9, "0")[:6]) if frac else 0
    return (instant + timedelta(microseconds=micros)).astimezone(UTC)


def add_replications(rng: random.Random, ids: Ids, clock: Clock, projects: list[Project]) -> None:
    """Give ~10 % of completed source backups 1-2 replication records."""
    statuses = list(REPLICATION_STATUSES)
    n = 0
    for project in projects:
        for backup in project.backups:
            if backup["image_type"] != "backup" or backup["status"] != "available":
                continue
            if rng.random() >= 0.1:
                continue
            clock.new_record()
            for _ in range(rng.randint(1, 2)):
                status = (
                    statuses[n]
                    if n < len(statuses)
                    else rng.choices(REPLICATION_STATUSES, (10, 70, 8, 4, 8))[0]
                )
                n += 1
                backup["replication_records"].append(
                    replication_record(rng, ids, clock, backup, project, projects, status)
                )


def ensure_all_statuses(rng: random.Random, projects: list[Project]) -> None:
    """Make sure each of the 8 statuses occurs among top-level backups."""
    top = [b for p in projects for b in p.backups]
    present = {b["status"] for b in top}
    for status in STATUSES:
        if status not in present:
            victim = rng.choice([b for b in top if b["status"] == "available"])
            victim["status"] = status
            for child in victim["children"]:
                child["status"] = status


# --- edge cases -----------------------------------------------------------------


@dataclass
class Edges:
    """Ids of the special records, for the report and the file layout."""

    dup_later_path: str = ""  # newer copy sorts later by path
    dup_earlier_path: str = ""  # newer copy sorts earlier by path
    dup_tie: str = ""  # equal updated_at instants, later file wins the tie
    orphans: list[str] = field(default_factory=list)
    retention: list[str] = field(default_factory=list)
    incremental_conflict: list[str] = field(default_factory=list)
    same_created: list[str] = field(default_factory=list)
    tags: str = ""
    extra_copies: dict[str, Record] = field(default_factory=dict)


def plain_candidates(project: Project, lo: int, hi: int, used: set[str]) -> list[Record]:
    """Top-level ``backup``-image records in positions [lo, hi) not used yet."""
    return [
        b
        for b in project.backups[lo:hi]
        if b["image_type"] == "backup" and b["id"] not in used and not b["replication_records"]
    ]


def apply_edges(rng: random.Random, ids: Ids, projects: list[Project], same: datetime) -> Edges:
    """Duplicates, orphans, unknown keys, conflicting incremental flags."""
    edges = Edges()
    used: set[str] = set()
    p0, p1, p2 = projects
    edges.same_created = [b["id"] for b in p0.backups if parse_written(b["created_at"]) == same]
    used.update(edges.same_created)

    # A: P2, old copy in backups-page-001.json, newer copy in backups-stream.ndjson.
    a = rng.choice(plain_candidates(p2, 0, PAGE_SIZE, used))
    used.add(a["id"])
    old_updated = parse_written(a["created_at"]).replace(hour=rng.randint(2, 9)) + timedelta(days=1)
    new_updated = old_updated + timedelta(hours=2, microseconds=417)
    a["status"] = "protecting"
    a["updated_at"] = fmt_ts(old_updated, "plus8", rng)  # string sorts after the newer one
    newer = copy.deepcopy(a)
    newer["status"] = "available"
    newer["updated_at"] = fmt_ts(new_updated, "naive6", rng)
    for rec in (a, newer):
        for child in rec["children"]:
            child["status"] = rec["status"]
    edges.dup_later_path = a["id"]
    edges.extra_copies["A"] = newer

    # B: P0, old copy in backups-page-002.json.gz, newer copy in backup-<id8>.json.
    b = rng.choice(plain_candidates(p0, PAGE_SIZE, 2 * PAGE_SIZE, used))
    used.add(b["id"])
    b["status"] = "available"
    newer = copy.deepcopy(b)
    newer["status"] = "deleting"
    newer["updated_at"] = fmt_ts(
        parse_written(b["updated_at"]) + timedelta(days=3, hours=1), "naive6", rng
    )
    newer["created_at"] = fmt_ts(parse_written(b["created_at"]), "plus8", rng)
    for rec in (b, newer):
        for child in rec["children"]:
            child["status"] = rec["status"]
    edges.dup_earlier_path = b["id"]
    edges.extra_copies["B"] = newer

    # C: P1, equal updated_at; copy 1 in backups-export.json, copy 2 in backups-page-001.json.
    c = rng.choice(plain_candidates(p1, 0, PAGE_SIZE, used))
    used.add(c["id"])
    tie = parse_written(c["updated_at"]).replace(microsecond=123000)
    c["updated_at"] = fmt_ts(tie, "ms_utc", rng)
    c["description"] = "tie copy kept (later file)"
    loser = copy.deepcopy(c)
    loser["updated_at"] = fmt_ts(tie, "naive6", rng)
    loser["description"] = "tie copy dropped (earlier file)"
    edges.dup_tie = c["id"]
    edges.extra_copies["C"] = loser

    # Backups whose vault is in no dump (one per project).
    for project in projects:
        victim = rng.choice(plain_candidates(project, 0, len(project.backups), used))
        used.add(victim["id"])
        victim["vault_id"] = ids.uuid()
        for child in victim["children"]:
            child["vault_id"] = victim["vault_id"]
        edges.orphans.append(victim["id"])

    # Unknown key inside extend_info: four top-level records and one child.
    pool = [r for p in projects for r in p.backups if r["id"] not in used]
    for rec, value in zip(rng.sample(pool, 4), ("gold", "gold", "silver", "gold"), strict=True):
        rec["extend_info"]["retention_class"] = value
        edges.retention.append(rec["id"])
        used.add(rec["id"])
    parent = rng.choice([r for r in pool if r["children"] and r["id"] not in used])
    parent["children"][-1]["extend_info"]["retention_class"] = "bronze"
    edges.retention.append(parent["children"][-1]["id"])

    # Top-level incremental disagrees with extend_info.incremental (top-level wins).
    pool = [r for r in pool if r["id"] not in used]
    for rec in rng.sample(pool, 2):
        rec["incremental"] = True
        rec["extend_info"]["incremental"] = False
        edges.incremental_conflict.append(rec["id"])
        used.add(rec["id"])
    return edges


# --- members --------------------------------------------------------------------


def make_members(
    rng: random.Random,
    ids: Ids,
    clock: Clock,
    projects: list[Project],
    skip: set[str],
    total: int = 20,
) -> dict[str, list[Record]]:
    """``total`` share members, grouped by shared backup id (in creation order)."""
    statuses = ["accepted"] * 9 + ["pending"] * 6 + ["rejected"] * 5
    rng.shuffle(statuses)
    pool = [
        (p, b)
        for p in projects
        for b in p.backups
        if b["status"] == "available" and b["image_type"] == "backup" and b["id"] not in skip
    ]
    groups: dict[str, list[Record]] = {}
    while sum(len(g) for g in groups.values()) < total:
        owner, backup = rng.choice(pool)
        if backup["id"] in groups:
            continue
        others = [p for p in projects if p is not owner]
        dests = rng.sample(others, rng.choice((1, 1, 2)))
        dests = dests[: total - sum(len(g) for g in groups.values())]
        members = []
        for dest in dests:
            clock.new_record()
            status = statuses.pop()
            created = parse_written(backup["created_at"]) + timedelta(
                days=rng.randint(0, 20), seconds=rng.randint(60, 86399)
            )
            # pending: untouched since the share (a second or more later, so that
            # truncating forms never put updated_at before created_at)
            if status == "pending":
                updated = created + timedelta(seconds=rng.randint(1, 30))
            else:
                updated = created + timedelta(
                    hours=rng.randint(1, 72), microseconds=rng.randrange(10**6)
                )
            accepted = status == "accepted"
            members.append(
                {
                    "id": ids.uuid(),
                    "backup_id": backup["id"],
                    "dest_project_id": dest.id,
                    "status": status,
                    "vault_id": rng.choice(dest.vaults)["id"] if accepted and dest.vaults else None,
                    "image_id": ids.uuid() if accepted else None,
                    "created_at": clock.ts(created),
                    "updated_at": clock.ts(updated),
                }
            )
        groups[backup["id"]] = members
    return groups


# --- file layout ----------------------------------------------------------------


def pretty(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def compact(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def created_desc(records: list[Record]) -> list[Record]:
    """The API's default order: created_at descending, id ascending on ties."""
    by_id = sorted(records, key=lambda r: r["id"])
    return sorted(by_id, key=lambda r: parse_written(r["created_at"]), reverse=True)


def pages(records: list[Record], size: int) -> list[list[Record]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


def layout(
    projects: list[Project], edges: Edges, members: dict[str, list[Record]], show_id: str
) -> dict[str, bytes]:
    """Relative path (under ``dumps/``) -> file bytes."""
    files: dict[str, bytes] = {}
    p0, p1, p2 = projects
    owner = {b["id"]: p for p in projects for b in p.backups}

    # P0: three pages (the second gzipped) + ShowBackup with B's newer copy.
    d = p0.short
    for n, page in enumerate(pages(p0.backups, PAGE_SIZE), start=1):
        body = pretty({"count": len(p0.backups), "backups": page})
        if n == 2:
            files[f"{d}/backups-page-{n:03d}.json.gz"] = gzip.compress(body, mtime=0)
        else:
            files[f"{d}/backups-page-{n:03d}.json"] = body
    newer_b = edges.extra_copies["B"]
    files[f"{d}/backup-{newer_b['id'][:8]}.json"] = pretty({"backup": newer_b})

    # P1: page 1 of limit 50, then the rest as an array of two limit-25 responses.
    d = p1.short
    files[f"{d}/backups-page-001.json"] = pretty(
        {"count": len(p1.backups), "backups": p1.backups[:PAGE_SIZE]}
    )
    rest = p1.backups[PAGE_SIZE:]
    second = [*rest[25:], edges.extra_copies["C"]]
    files[f"{d}/backups-export.json"] = pretty(
        [
            {"count": len(p1.backups), "backups": rest[:25]},
            {"count": len(p1.backups), "backups": second},
        ]
    )

    # P2: two pages of 50/30, the last 15 as NDJSON (plus A's newer copy).
    d = p2.short
    paged, streamed = p2.backups[:80], p2.backups[80:]
    for n, page in enumerate(pages(paged, PAGE_SIZE), start=1):
        files[f"{d}/backups-page-{n:03d}.json"] = pretty({"count": len(paged), "backups": page})
    streamed = [*streamed[:5], edges.extra_copies["A"], *streamed[5:]]
    streamed[-1]["tags"] = [{"key": "env", "value": "prod"}]
    edges.tags = streamed[-1]["id"]
    files[f"{d}/backups-stream.ndjson"] = "".join(compact(r) + "\n" for r in streamed).encode(
        "utf-8"
    )

    # Vaults: one ListVaults page per project; one vault only as ShowVault.
    for project in projects:
        listed = [v for v in project.vaults if v["id"] != show_id]
        files[f"{project.short}/vaults-page-001.json"] = pretty(
            {"count": len(listed), "vaults": listed}
        )
        for vault in project.vaults:
            if vault["id"] == show_id:
                files[f"{project.short}/vault-{show_id[:8]}.json"] = pretty({"vault": vault})

    # Members: one ShowMembersDetail file per shared backup; the first
    # single-member group is written as a ShowMemberDetail singleton instead.
    singleton_done = False
    for backup_id, group in members.items():
        d = owner[backup_id].short
        if len(group) == 1 and not singleton_done:
            files[f"{d}/member-{group[0]['id'][:8]}.json"] = pretty({"member": group[0]})
            singleton_done = True
        else:
            files[f"{d}/members-{backup_id[:8]}.json"] = pretty(
                {"count": len(group), "members": group}
            )
    return files


# --- main -------------------------------------------------------------------------


def clean(dumps: Path) -> None:
    """Delete files this script generates (and directories left empty)."""
    if not dumps.is_dir():
        return
    for sub in sorted(dumps.iterdir()):
        if not sub.is_dir() or not re.fullmatch(r"[0-9a-f]{8}", sub.name):
            continue
        for pattern in GENERATED_PATTERNS:
            for path in sorted(sub.glob(pattern)):
                path.unlink()
        if not any(sub.iterdir()):
            sub.rmdir()
    if not any(dumps.iterdir()):
        dumps.rmdir()


def generate() -> tuple[dict[str, bytes], list[Project], Edges, dict[str, list[Record]]]:
    """Build the whole inventory in memory."""
    rng = random.Random(SEED)
    ids = Ids(rng)
    clock = Clock(rng)
    eps = [ids.uuid(), ids.uuid()]
    projects = make_projects(rng, ids, eps)
    vault_ids = make_vaults(ids, clock, rng, projects)
    same = datetime(2025, 11, 11, 18, 0, 5, tzinfo=UTC)
    for project, count in zip(projects, BACKUPS_PER_PROJECT, strict=True):
        make_backups(
            rng,
            ids,
            clock,
            project,
            count,
            same if project is projects[0] else None,
            vault_ids[EMPTY_VAULT_INDEX],
        )
    # the three same-instant records are written in three different forms
    for rec, form in zip(projects[0].backups[:3], ("naive6", "plus8", "nofrac"), strict=True):
        rec["created_at"] = fmt_ts(same, form, rng)
    ensure_all_statuses(rng, projects)
    # a few names that test case-sensitive and non-ASCII substring/sort handling
    specials = ("Manualbk_DB-01_cutover", "manualbk_数据库_迁移", "MANUALBK_web-01")
    for rec, name in zip(rng.sample(projects[1].backups, 3), specials, strict=True):
        rec["name"] = name
        for child in rec["children"]:
            child["name"] = name
    add_replications(rng, ids, clock, projects)
    for project in projects:
        project.backups = created_desc(project.backups)
    edges = apply_edges(rng, ids, projects, same)
    skip = {edges.dup_later_path, edges.dup_earlier_path, edges.dup_tie, *edges.orphans}
    members = make_members(rng, ids, clock, projects, skip)
    files = layout(projects, edges, members, vault_ids[SHOW_VAULT_INDEX])
    return files, projects, edges, members


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    dumps = out_dir / "dumps"
    files, projects, edges, members = generate()
    # path order must not depend on how it is sorted (strings vs. Path parts)
    assert sorted(files) == [str(p) for p in sorted(Path(f) for f in files)]
    clean(dumps)
    for rel, data in sorted(files.items()):
        path = dumps / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    top = sum(len(p.backups) for p in projects)
    children = sum(len(b["children"]) for p in projects for b in p.backups)
    print(f"wrote {len(files)} files under {dumps}")
    print(
        f"top-level backups {top} (+3 duplicate copies), children {children}, "
        f"vaults {sum(len(p.vaults) for p in projects)}, "
        f"members {sum(len(g) for g in members.values())}"
    )
    print(f"duplicate, newer copy later by path:   {edges.dup_later_path}")
    print(f"duplicate, newer copy earlier by path: {edges.dup_earlier_path}")
    print(f"duplicate, equal updated_at:           {edges.dup_tie}")
    print(f"'tags' only on the last record:        {edges.tags}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
