"""Hypothesis strategies for CBR records, dumps and ListBackups queries.

Small alphabets on purpose: few projects, vaults, names and instants, so
that ties, substring hits, shared vaults and marker collisions are common.
Needs ``hypothesis`` (``pip install 'cbrq[testing]'``).

Example::

    from hypothesis import given
    from engine.testing.strategies import inventories, query_strings

    @given(inventories(), query_strings())
    def test_my_cache(inv, query): ...
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

try:
    from hypothesis import strategies as st
except ModuleNotFoundError as missing:
    if missing.name != "hypothesis":  # hypothesis is there; something it needs is not
        raise
    from engine.testing import MissingTestingExtra

    raise MissingTestingExtra(__name__) from None

from engine import spec
from engine.testing.reference import Ingest

PROJECTS = ("p1", "p2", "p3")
VAULTS = ("v0", "v1", "v2", "v3", "v4")
NAMES = st.text(alphabet="abAB_数", min_size=0, max_size=4)
SECONDS = st.integers(0, 7)
RESOURCES = ("r1", "r2", "r3")
#: Instants fall on a few days after BASE: a Friday, the next Monday (a new ISO
#: week) and a Sunday in March (a new month), half of them on the first day.
BASE = datetime(2020, 2, 21, 7, 0, tzinfo=UTC)
DAYS = (0, 3, 9)
#: ``expired_at`` days: before, on and after the others, 35 days (the default
#: minimum retention) after the first day, and far later.
EXPIRY_DAYS = (0, 3, 9, 35, 44, 400)
UNKNOWN_KEYS = st.sampled_from(["x_tag", "note", "ünï", 'q"k'])

Record = dict[str, Any]


@st.composite
def timestamps(draw: st.DrawFn, days: tuple[int, ...] = DAYS) -> str:
    """A timestamp in one of the forms dumps use (SPEC §1), on a few instants.

    Example: ``timestamps(days=EXPIRY_DAYS)`` for ``expired_at`` values.
    """
    day = draw(st.sampled_from(days)) if draw(st.booleans()) else days[0]
    when = BASE + timedelta(days=day, minutes=draw(st.sampled_from([0, 30])), seconds=draw(SECONDS))
    form = draw(st.sampled_from(["api", "ms+00", "+08", "Z", "bare", "nanos-01:30"]))

    def local(hours: float) -> str:
        return (when + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S")

    return {
        "api": f"{local(0)}.065135",
        "ms+00": f"{local(0)}.065+00:00",
        "+08": f"{local(8)}.065135+08:00",
        "Z": f"{local(0)}.065135Z",
        "bare": local(0),
        "nanos-01:30": f"{local(-1.5)}.065135999-01:30",
    }[form]


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def backups(draw: st.DrawFn, backup_id: str, children: bool = True) -> Record:
    """One backup record with every SPEC §1 field present, null or absent."""
    record: Record = {"id": backup_id}
    fields: dict[str, st.SearchStrategy[Any]] = {
        "name": _maybe(NAMES),
        "resource_name": _maybe(NAMES),
        "status": st.just("available") | st.sampled_from(spec.STATUSES),  # half available
        "created_at": _maybe(timestamps()),
        "updated_at": _maybe(timestamps()),
        "protected_at": _maybe(timestamps()),
        "expired_at": _maybe(timestamps(days=EXPIRY_DAYS)),
        "project_id": _maybe(st.sampled_from(PROJECTS)),
        "vault_id": _maybe(st.sampled_from([*VAULTS, "v-unknown"])),
        "checkpoint_id": st.sampled_from(["c1", "c2"]),
        "parent_id": _maybe(st.sampled_from(["b0", "b1"])),
        "resource_id": st.sampled_from(RESOURCES),
        "resource_az": st.sampled_from(["az1", "az2"]),
        "resource_type": st.sampled_from([*spec.RESOURCE_TYPES[:3], "OS::New::Thing"]),
        "resource_size": st.integers(0, 2000),
        "image_type": st.just("backup") | st.sampled_from(spec.IMAGE_TYPES),
        "enterprise_project_id": st.sampled_from(["0", "eps1"]),
        "incremental": _maybe(st.booleans()),
        "description": st.text(max_size=5),
        "extend_info": st.fixed_dictionaries(
            {}, optional={"incremental": st.booleans(), "bootable": st.booleans()}
        ),
        "replication_records": st.lists(
            st.fixed_dictionaries(
                {
                    "id": st.sampled_from(["rr1", "rr2"]),
                    "status": st.sampled_from(spec.REPLICATION_STATUSES),
                },
                optional={
                    "created_at": timestamps(),
                    "extra_info": st.just('{"progress": 100}') | st.just({"progress": 100}),
                },
            ),
            max_size=1,
        ),
    }
    for name, strategy in fields.items():
        if draw(st.integers(0, 4)) > 0:
            record[name] = draw(strategy)
    if children and draw(st.booleans()):
        kids = draw(st.lists(st.sampled_from(["k1", "k2", "k3"]), max_size=2, unique=True))
        record["children"] = [draw(backups(f"{backup_id}-{k}", children=False)) for k in kids]
    if draw(st.integers(0, 3)) == 0:
        record[draw(UNKNOWN_KEYS)] = draw(st.integers() | st.text(max_size=3))
    return record


#: What vaults list as protected resources: some of the backups' and one no backup names.
LISTED = st.fixed_dictionaries(
    {"id": st.sampled_from([*RESOURCES, "r4"])},
    optional={
        "name": NAMES,
        "type": st.sampled_from([*spec.RESOURCE_TYPES[:2], "OS::New::Thing"]),
    },
)


@st.composite
def vaults(draw: st.DrawFn) -> list[Record]:
    """Vault records for some of :data:`VAULTS`, usage anywhere from empty to over full.

    Some have a ``name``, a ``threshold``, a null ``billing.size``, and a
    ``resources`` list (a resource may be listed by two vaults).
    """
    found = []
    for vault_id in draw(st.lists(st.sampled_from(VAULTS), unique=True, max_size=len(VAULTS))):
        size = draw(st.sampled_from([0, 1, 10, 100]))
        used = draw(st.integers(0, 110 * 1024)) if size else 0
        if size and draw(st.booleans()):
            used = size * 1024 * draw(st.integers(0, 100)) // 100  # exact percentages
        vault: Record = {
            "id": vault_id,
            "project_id": draw(st.sampled_from(PROJECTS)),
            "billing": {"size": size, "used": used, "allocated": size},
        }
        if draw(st.integers(0, 5)) == 0:
            vault["billing"]["size"] = None  # unknown size: no usage percentage
        if draw(st.booleans()):
            vault["name"] = draw(NAMES)
        if draw(st.integers(0, 2)) == 0:
            vault["threshold"] = draw(st.sampled_from([1, 50, 80, 100]))
        if draw(st.booleans()):
            vault["resources"] = draw(st.lists(LISTED, max_size=3, unique_by=lambda i: i["id"]))
        found.append(vault)
    return found


@st.composite
def members(draw: st.DrawFn, backup_ids: list[str]) -> list[Record]:
    """Share-member records naming some of ``backup_ids``, one per (backup, project)."""
    if not backup_ids:
        return []
    pairs = draw(
        st.lists(
            st.tuples(st.sampled_from(backup_ids), st.sampled_from(PROJECTS)),
            unique=True,
            max_size=6,
        )
    )
    return [
        {
            "id": f"m{i}",
            "backup_id": b,
            "dest_project_id": p,
            "status": draw(st.sampled_from(spec.MEMBER_STATUSES)),
        }
        for i, (b, p) in enumerate(pairs)
    ]


@dataclass(frozen=True)
class Inventory:
    """Records of the three kinds, coherent with each other."""

    backups: list[Record]
    vaults: list[Record]
    members: list[Record]

    @property
    def ids(self) -> list[str]:
        """The backups' ids."""
        return [b["id"] for b in self.backups]


@st.composite
def inventories(draw: st.DrawFn, max_backups: int = 12) -> Inventory:
    """A small inventory: unique backup ids, vaults and members that refer to them.

    Example: ``@given(inventories())``.
    """
    ids = draw(
        st.lists(st.sampled_from([f"b{i}" for i in range(20)]), unique=True, max_size=max_backups)
    )
    records = [draw(backups(i)) for i in ids]
    return Inventory(records, draw(vaults()), draw(members(ids)))


def _pair(name: str, value: str) -> str:
    return f"{name}={quote(value, safe='')}"


@st.composite
def query_strings(draw: st.DrawFn, ids: list[str] | None = None, with_project: bool = True) -> str:
    """A valid-looking query over all 23 parameters (invalid combinations may occur).

    Example: ``query_strings(ids=["b1", "b2"])`` draws markers from those ids.
    """
    pairs: list[str] = []
    options: dict[str, st.SearchStrategy[str]] = {
        "checkpoint_id": st.sampled_from(["c1", "c2"]),
        "parent_id": st.sampled_from(["b0", "b1"]),
        "resource_id": st.sampled_from(["r1", "r2"]),
        "resource_az": st.sampled_from(["az1", "az2"]),
        "vault_id": st.sampled_from(VAULTS),
        "name": NAMES.filter(bool),
        "resource_name": NAMES.filter(bool),
        "image_type": st.sampled_from(spec.IMAGE_TYPES),
        "resource_type": st.sampled_from([*spec.RESOURCE_TYPES[:3], "OS::New::Thing"]),
        "start_time": timestamps(),
        "end_time": timestamps(),
        "used_percent": st.integers(1, 100).map(str),
        "enterprise_project_id": st.sampled_from(["0", "eps1", spec.ALL_GRANTED_EPS]),
        "incremental": st.sampled_from(["true", "false", "TRUE"]),
        "dec": st.sampled_from(["true", "false"]),
        "show_replication": st.sampled_from(["true", "false"]),
        "offset": st.integers(0, 15).map(str),
        "limit": st.integers(1, 15).map(str),
    }
    if with_project:
        options["own_type"] = st.sampled_from(spec.OWN_TYPES)
        options["member_status"] = st.sampled_from([*spec.MEMBER_STATUSES, "accept", "reject"])
    for name in draw(st.lists(st.sampled_from(sorted(options)), unique=True, max_size=4)):
        pairs.append(_pair(name, draw(options[name])))
    if draw(st.booleans()):
        statuses = draw(st.lists(st.sampled_from(spec.STATUSES), min_size=1, max_size=3))
        if draw(st.booleans()):
            pairs.append(_pair("status", ",".join(statuses)))
        else:
            pairs.extend(_pair("status", s) for s in statuses)
    if draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(spec.SORT_KEYS), unique=True, min_size=1, max_size=3))
        parts = [k + draw(st.sampled_from(["", ":asc", ":desc"])) for k in keys]
        pairs.append(_pair("sort", ",".join(parts)))
    if ids and draw(st.integers(0, 3)) == 0:
        pairs.append(_pair("marker", draw(st.sampled_from(ids))))
    return "&".join(draw(st.permutations(pairs)))


BAD_PAIRS = st.sampled_from(
    [
        "stauts=available",
        "status=availble",
        "status=",
        "limit=0",
        "limit=1001",
        "limit=x",
        "offset=-1",
        "used_percent=0",
        "used_percent=101",
        "sort=size",
        "sort=name:up",
        "sort=name,name",
        "sort=",
        "start_time=yesterday",
        "incremental=yes",
        "dec=1",
        "image_type=backups",
        "own_type=public",
        "vault_id=a&vault_id=b",
        "marker=nope",
        "start_time=2030-01-01T00:00:00Z&end_time=2020-01-01T00:00:00Z",
    ]
)


@st.composite
def bad_query_strings(draw: st.DrawFn) -> str:
    """A query with at least one bad parameter, mixed into valid ones.

    Example: ``@given(bad_query_strings())``.
    """
    good = draw(query_strings(with_project=False))
    bad = draw(st.lists(BAD_PAIRS, min_size=1, max_size=3, unique=True))
    return "&".join(p for p in [good, *bad] if p)


# --- SPEC §6: histories of daily exports -------------------------------------

#: The projects a drawn history may hold, each with its vaults.
HISTORY_VAULTS: dict[str, tuple[str, ...]] = {"p1": ("v1", "v2"), "p2": ("v3",)}
HISTORY_IDS = tuple(f"b{i}" for i in range(1, 9))
#: Exact forms of one instant (whole seconds), as dumps and ``--taken-at`` write them.
_FORMS = ("api", "ms+00", "+08", "Z", "bare", "nanos-01:30")


def _written(when: datetime, form: str) -> str:
    """``when`` (whole seconds, UTC) in one of SPEC §1's forms, the same instant in each."""

    def local(hours: float) -> str:
        return (when + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S")

    return {
        "api": f"{local(0)}.000000",
        "ms+00": f"{local(0)}.000+00:00",
        "+08": f"{local(8)}.000000+08:00",
        "Z": f"{local(0)}Z",
        "bare": local(0),
        "nanos-01:30": f"{local(-1.5)}.000000000-01:30",
    }[form]


def _day(day: int) -> datetime:
    """Noon of day ``day`` of a history: when that day's export is taken."""
    return BASE + timedelta(days=day, hours=5)


@dataclass(frozen=True)
class Step:
    """One ``cbrq ingest`` of a drawn history.

    ``files`` are the dump files to write, in the order to pass them (each one
    JSON value: a response or an array of responses); ``taken_at`` is the
    ``--taken-at`` argument (None: the default rule); ``ingest`` is the same
    call as :mod:`engine.testing.reference` models it; ``refused`` marks a
    snapshot drawn with a page dropped, a page in place of another or a wrong
    count, which a store must refuse (exit 1, store unchanged).
    """

    ingest: Ingest
    files: tuple[Any, ...]
    taken_at: str | None
    refused: bool

    @property
    def options(self) -> list[str]:
        """The ingest's options: ``--snapshot --scope S`` and ``--taken-at T`` as drawn."""
        out = ["--snapshot", "--scope", self.ingest.scope] if self.ingest.snapshot else []
        return out + (["--taken-at", self.taken_at] if self.taken_at is not None else [])

    def write(self, folder: Path) -> list[str]:
        """Write ``files`` under ``folder`` (a bare backup as an NDJSON line); their paths in order.

        Example: ``["ingest", "--store", store, *step.options, *step.write(tmp / "3")]``.
        """
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for n, content in enumerate(self.files):
            bare = isinstance(content, dict) and "id" in content
            path = folder / f"{n:03d}.{'ndjson' if bare else 'json'}"
            path.write_text(json.dumps(content, ensure_ascii=False) + "\n", encoding="utf-8")
            paths.append(str(path))
        return paths


@st.composite
def _next_day(
    draw: st.DrawFn, alive: dict[str, Record], used: set[str], day: int, projects: list[str]
) -> dict[str, Record]:
    """The backups alive on ``day``: some of ``alive`` deleted or changed, some never ``used``."""
    stamp = st.sampled_from(_FORMS).map(
        lambda form: _written(BASE + timedelta(days=day, minutes=30 * (day % 2)), form)
    )
    out: dict[str, Record] = {}
    for ident, record in alive.items():
        fate = draw(st.sampled_from(["keep", "keep", "change", "tie", "delete"]))
        if fate == "delete":
            continue
        record = dict(record)
        if fate in ("change", "tie"):  # a tie: another version, same updated_at
            record["status"] = draw(st.sampled_from(spec.STATUSES))
            record["updated_at"] = record["updated_at"] if fate == "tie" else draw(stamp)
        out[ident] = record
    for ident in draw(
        st.lists(st.sampled_from(HISTORY_IDS), min_size=int(not used), max_size=3, unique=True)
    ):
        if ident in used:
            continue
        record = draw(backups(ident))
        project = draw(st.sampled_from(projects))
        record["project_id"] = project
        record["vault_id"] = draw(st.sampled_from(HISTORY_VAULTS[project]))
        record["status"] = draw(st.just("available") | st.sampled_from(spec.STATUSES))
        record["updated_at"] = draw(stamp)
        out[ident] = record
    return dict(sorted(out.items()))


@st.composite
def _vaults_of(draw: st.DrawFn, projects: list[str], day: int) -> list[Record]:
    """The vault records of ``projects`` on ``day``: their usage moves from day to day."""
    return [
        {
            "id": vault,
            "project_id": project,
            "billing": {"size": 10, "used": draw(st.integers(0, 12 * 1024)), "allocated": 10},
            "name": f"{vault}-day{day}",
        }
        for project in projects
        for vault in HISTORY_VAULTS[project]
    ]


def _pages(records: list[Record], size: int, key: str = "backups") -> list[Record]:
    """A full listing of ``records`` as pages of ``size`` (one empty page when none)."""
    chunks = [records[i : i + size] for i in range(0, len(records), size)] or [[]]
    return [
        {"count": len(records), key: chunk, "offset": n * size, "limit": size}
        for n, chunk in enumerate(chunks)
    ]


@st.composite
def _broken(draw: st.DrawFn, groups: list[list[Record]]) -> bool:
    """Break one project's pages as a failed export does; whether one was broken.

    A page dropped or a page in place of another (only where a project has two
    pages, so that it keeps some records and stays checked), or a count one off.
    """
    many = [g for g in groups if len(g) >= 2]
    filled = [g for g in groups if g[0]["backups"]]
    ways = [w for w, ok in (("drop", many), ("repeat", many), ("count", filled)) if ok]
    if not ways:
        return False
    way = draw(st.sampled_from(ways))
    group = draw(st.sampled_from(filled if way == "count" else many))
    n = draw(st.integers(0, len(group) - 1))
    if way == "drop":
        del group[n]
    elif way == "repeat":
        group[n] = group[(n + 1) % len(group)]
    else:
        group[n] = {**group[n], "count": group[n]["count"] + 1}
    return True


@st.composite
def _partial(draw: st.DrawFn, alive: dict[str, Record], vault_records: list[Record]) -> list[Any]:
    """Dumps of a partial listing: some backups as pages, ``backup``s or bare lines."""
    files: list[Any] = []
    picked: list[str] = draw(st.lists(st.sampled_from(sorted(alive)), unique=True)) if alive else []
    for ident in picked:
        record = alive[ident]
        forms = [{"count": len(alive), "backups": [record]}, {"backup": record}, record]
        files.append(draw(st.sampled_from(forms)))
    if draw(st.booleans()) and vault_records:
        files.append({"vaults": draw(st.lists(st.sampled_from(vault_records), max_size=2))})
    return files


@st.composite
def _export(
    draw: st.DrawFn,
    kind: str,
    alive: dict[str, Record],
    vault_records: list[Record],
    projects: list[str],
    listed: bool = False,
) -> tuple[list[Any], bool]:
    """The dump files of one day's export of ``kind``, and whether its pages were broken.

    ``listed``: a snapshot always holds its vault listing (else one in two does).
    """
    if kind == "partial":
        return draw(_partial(alive, vault_records)), False
    size = draw(st.integers(1, 3))
    records = list(alive.values())
    if kind == "project":
        chosen = draw(st.lists(st.sampled_from(projects), min_size=1, unique=True))
        groups = [_pages([r for r in records if r["project_id"] == p], size) for p in chosen]
        listings = [
            _pages([v for v in vault_records if v["project_id"] == p], 1, "vaults") for p in chosen
        ]
    else:
        vault = draw(st.sampled_from(sorted({v["id"] for v in vault_records})))
        groups = [_pages([r for r in records if r["vault_id"] == vault], size)]
        listings = [[{"vault": v} for v in vault_records if v["id"] == vault]]
    broken = draw(st.integers(0, 4)) == 0 and draw(_broken(groups))
    files = [page for group in groups for page in group]
    if listed or draw(st.booleans()):
        files += [page for listing in listings for page in listing]
    if draw(st.booleans()):
        files = draw(st.permutations(files))
    if draw(st.integers(0, 3)) == 0:
        files.append(draw(st.sampled_from(files)))  # the same page twice: still complete
    return files, broken


@st.composite
def _step(
    draw: st.DrawFn,
    alive: dict[str, Record],
    vault_records: list[Record],
    day: int,
    days: int,
    projects: list[str],
    kinds: tuple[str, ...],
    listed: bool = False,
) -> Step:
    kind = draw(st.sampled_from(kinds))
    files, broken = draw(_export(kind, alive, vault_records, projects, listed))
    taken = draw(st.sampled_from(["default", "day", "day", "other"]))
    when = None
    if taken != "default":
        when = _day(day if taken == "day" else draw(st.integers(0, days - 1)))
    written = None if when is None else _written(when, draw(st.sampled_from(_FORMS)))
    ingest = Ingest.from_dumps(
        files,
        snapshot=kind != "partial",
        scope="vault" if kind == "vault" else "project",
        taken_at=when,
    )
    return Step(ingest, tuple(files), written, broken)


@st.composite
def ingest_sequences(
    draw: st.DrawFn,
    max_ingests: int = 6,
    max_projects: int = 2,
    kinds: tuple[str, ...] = ("project", "project", "vault", "partial"),
    min_ingests: int = 1,
    listed: bool = False,
) -> list[Step]:
    """A short history of daily exports of one or two projects, as ingest calls.

    Each day some backups (at most 8 ids) are new, changed (a later
    ``updated_at``, or another status at the same one) or deleted (absent from
    later exports); vault usage moves. Each call exports one day, mostly in
    order, sometimes out of order or the same day twice: a project-scope
    snapshot of some projects, a vault-scope snapshot of one vault, or a
    partial listing (``kinds`` picks among ``project``, ``vault``, ``partial``).
    ``min_ingests`` to ``max_ingests`` calls; ``listed``: every snapshot holds
    its vault listing (for series of vault usage such as ``capacity --forecast``).
    ``--taken-at`` is that day's noon, another day's, or left to the default.
    Snapshot pages are sometimes reordered or one given twice (still
    complete), and sometimes broken (``Step.refused``).

    Example::

        @given(ingest_sequences())
        def test_store(steps):
            kept = [s.ingest for s in steps if not s.refused]
    """
    projects = sorted(HISTORY_VAULTS)[: draw(st.integers(1, max_projects))]
    days = draw(st.integers(min_ingests, max_ingests))
    alive: dict[str, Record] = {}
    used: set[str] = set()
    worlds: list[tuple[dict[str, Record], list[Record]]] = []
    for day in range(days):
        alive = draw(_next_day(alive, used, day, projects))
        used |= set(alive)
        worlds.append((alive, draw(_vaults_of(projects, day))))
    order = list(range(days))
    if draw(st.booleans()):
        order = draw(st.lists(st.integers(0, days - 1), min_size=days, max_size=days))
    return [draw(_step(*worlds[day], day, days, projects, kinds, listed)) for day in order]
