"""Paths are paths: a store's files are read by their exact names, whatever its path holds.

polars, DuckDB and Spark all read file names as patterns unless told not to
(``*``, ``?``, ``[...]``, and ``{a,b}`` for Spark), so a store at ``st*``
answered from a sibling store ``stx`` too, an ingest plus a compaction
copied the sibling's rows in for good, and a store at ``st[x]`` could not be
ingested into; and DuckDB read a ``key=value`` folder in the path as a Hive
partition column, replacing the stored column of that name. Every store
below sits next to a sibling whose name its pattern would match, with other
backups (and a vault of the same id with other numbers): every answer must
come from the named store only. The Spark cases are in
``tests/test_spark_paths.py`` (one session for all).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from engine.api import compact, ingest
from engine.backends import duckdb as duckdb_backend
from engine.inventory import Inventory
from engine.server.app import create_app
from engine.server.workers import shared_rows
from engine.store.manifest import read_manifest
from engine.store.read import dead_file, duckdb_sql, table_files
from tests.records import backup, page
from tests.server_fixture import get, running, running_asgi

#: (store, sibling): the store's name read as a pattern matches the sibling's.
NAMES: list[tuple[str, str]] = [
    ("st*", "stx"),
    ("st?", "stx"),
    ("st[x]", "stx"),
    ("st[!a]", "stx"),
    ("st{x,y}", "stx"),
    ("s]t*", "s]tx"),
    ("s p*", "s px"),
    ("é*", "éx"),
    ("o'k*", "o'kx"),
    # DuckDB cannot name this one (its patterns split at backslashes): Arrow reads it.
    ("b\\s*", "b\\sx"),
    # Not a pattern, a Hive partition to DuckDB: every backup's status would be "error".
    ("status=error", "status=errorx"),
]
IDS = [name for name, _ in NAMES]

#: The named store's live backups after its two ingests (n2 replaced by a newer copy).
OWN = ["n1", "n2", "n3", "n4"]
FOREIGN = ["s1", "s2", "n1"]  # the sibling also holds an n1, newer than the store's
P1 = "p1"


def _vaults(used_mb: int) -> str:
    vault = {"id": "v1", "name": "vault-1", "project_id": P1, "resources": []}
    return json.dumps({"count": 1, "vaults": [{**vault, "billing": {"size": 1, "used": used_mb}}]})


def build(folder: Path, name: str, sibling: str) -> Path:
    """The store ``folder/name`` (with superseded rows) beside ``folder/sibling``; its path.

    The store: n1..n3, then n2 again (newer) and n4, and vault v1 at 0 % use.
    The sibling: s1, s2 and an n1 newer than the store's, and v1 at 100 %.
    """
    dumps = folder / "in"
    dumps.mkdir(parents=True)
    own = {
        "first.json": page(backup("n1"), backup("n2"), backup("n3")),
        "second.json": page(
            backup("n2", status="error", updated_at="2021-01-01T00:00:00Z"), backup("n4")
        ),
        "vaults.json": _vaults(0),
    }
    foreign = {
        "other.json": page(
            backup("s1"),
            backup("s2"),
            backup("n1", name="foreign", updated_at="2030-01-01T00:00:00Z"),
        ),
        "other-vaults.json": _vaults(1024),
    }
    for file, text in {**own, **foreign}.items():
        (dumps / file).write_text(text, encoding="utf-8")
    store, other = folder / name, folder / sibling
    ingest([str(dumps / "other.json"), str(dumps / "other-vaults.json")], other)
    ingest([str(dumps / "first.json"), str(dumps / "vaults.json")], store)
    ingest([str(dumps / "second.json")], store)
    return store


class Stores:
    """The named stores of :data:`NAMES`, each built (with its sibling) when first asked for.

    Built one by one, so that a store one reader cannot even write fails its
    own cases only.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.built: dict[str, Path] = {}

    def __getitem__(self, name: str) -> Path:
        if name not in self.built:
            folder = self.base / str(IDS.index(name))
            self.built[name] = build(folder, name, dict(NAMES)[name])
        return self.built[name]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    """Each named store of :data:`NAMES`, each pair in a folder of its own."""
    return Stores(tmp_path_factory.mktemp("paths"))


def check_answers(inventory: Inventory) -> None:
    """Every ListBackups answer of ``inventory`` is the named store's, records included."""
    result = inventory.query("sort=id:asc")
    assert result.ids == OWN
    assert result.count == len(OWN)
    names = result.rows["name"].to_list()
    assert names == [f"autobk_{i}" for i in OWN]  # not the sibling's newer n1 ("foreign")
    assert result.rows["status"].to_list() == ["available", "error", "available", "available"]
    assert inventory.count("status=error") == 1
    # v1 is at 0 % in the store, at 100 % in the sibling.
    assert inventory.count("used_percent=50") == 0
    assert inventory.query("marker=n2&sort=id:asc&limit=1").ids == ["n3"]


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
@pytest.mark.parametrize("name", IDS)
def test_every_engine_answers_from_the_named_store_only(
    stores: Stores, name: str, engine: str
) -> None:
    with Inventory.open(stores[name], engine=engine) as inventory:
        check_answers(inventory)


@pytest.mark.parametrize("name", IDS)
def test_serve_answers_from_the_named_store_only(stores: Stores, name: str) -> None:
    """In one process, and from the shared Arrow copy that ``serve --workers`` maps."""
    with Inventory.open(stores[name]) as inventory, running(inventory, watch=None) as url:
        body = get(f"{url}/v3/{P1}/backups?sort=id:asc")[2]
        assert [b["id"] for b in body["backups"]] == OWN
        assert get(f"{url}/v3/{P1}/backups/n1")[2]["backup"]["name"] == "autobk_n1"
    shared = stores[name].parent / "shared"
    shared.mkdir(exist_ok=True)
    with Inventory.open(stores[name]) as inventory:
        app = create_app(inventory, quiet=True, watch=None, live=shared_rows(shared))
        with running_asgi(app) as url:
            body = get(f"{url}/v3/{P1}/backups?sort=id:asc")[2]
            assert [b["id"] for b in body["backups"]] == OWN
            assert body["backups"][0]["name"] == "autobk_n1"


def stored_ids(store: Path) -> list[str]:
    """The ids in every file the store's manifest lists, read by pyarrow (names taken as is)."""
    manifest = read_manifest(store)
    files = table_files(store, manifest, "backups")
    return sorted(i for path in files for i in pq.read_table(path)["id"].to_pylist())


@pytest.mark.parametrize("name", IDS)
def test_ingest_and_compact_bring_in_no_foreign_rows(tmp_path: Path, name: str) -> None:
    store = build(tmp_path, name, dict(NAMES)[name])
    assert stored_ids(store) == ["n1", "n2", "n2", "n3", "n4"]  # n2's old copy is superseded
    assert compact(store)["backups"] == len(OWN)
    assert stored_ids(store) == OWN
    assert dead_file(store, read_manifest(store), "backups") is None
    with Inventory.open(store) as inventory:
        check_answers(inventory)
    # The sibling is untouched by all this.
    with Inventory.open(tmp_path / dict(NAMES)[name]) as sibling:
        assert sibling.query("sort=id:asc").ids == ["n1", "s1", "s2"]


def info_sql(store: Path, kind: str = "backups") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "engine.cli", "info", "--sql", "--kind", kind]
    return subprocess.run(
        [*command, "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("name", [n for n in IDS if "\\" not in n])
def test_info_sql_reads_exactly_the_stores_files_in_duckdb(stores: Stores, name: str) -> None:
    shown = info_sql(stores[name])
    assert shown.returncode == 0, shown.stderr
    rows = duckdb.sql(f"SELECT id, name, status FROM ({shown.stdout}) ORDER BY id").fetchall()
    statuses = ["available", "error", "available", "available"]
    assert rows == [(i, f"autobk_{i}", status) for i, status in zip(OWN, statuses, strict=True)]
    vaults = info_sql(stores[name], "vaults")
    used = duckdb.sql(f"SELECT id, billing.used FROM ({vaults.stdout})").fetchall()
    assert used == [("v1", 0.0)]


def test_info_sql_says_when_duckdb_cannot_name_the_files(stores: Stores) -> None:
    """A glob character and a backslash: no SQL can name the files, so none is printed."""
    store = stores["b\\s*"]
    shown = info_sql(store)
    assert shown.returncode == 1
    assert shown.stdout == ""
    assert shown.stderr.startswith(f"cbrq: error: {store}/g")
    assert "DuckDB cannot name this file" in shown.stderr and "Traceback" not in shown.stderr


def test_info_sql_of_an_ordinary_path_is_unchanged(tmp_path: Path) -> None:
    """Byte for byte the SQL printed before: the paths quoted as they are, nothing escaped."""
    store = build(tmp_path, "plain store", "plain storex")
    manifest = read_manifest(store)
    listed = ", ".join(f"'{path}'" for path in table_files(store, manifest, "backups"))
    dead = dead_file(store, manifest, "backups")
    assert info_sql(store).stdout == (
        f"SELECT t.* FROM read_parquet([{listed}]) AS t "
        f"ANTI JOIN read_parquet('{dead}') AS dead USING (_seq, _row)\n"
    )
    vaults = ", ".join(f"'{path}'" for path in table_files(store, manifest, "vaults"))
    assert info_sql(store, "vaults").stdout == f"SELECT * FROM read_parquet([{vaults}])\n"


@pytest.mark.parametrize("name", ["st*", "st[x]", "b\\s*"])
def test_the_duckdb_plan_reads_the_named_store_only(stores: Stores, name: str) -> None:
    """What ``cbrq explain --engine duckdb`` prints runs in DuckDB (or says why it cannot)."""
    with Inventory.open(stores[name], engine="duckdb") as inventory:
        text = duckdb_backend.plan(inventory.parse("sort=id:asc"), inventory)
        if "\\" in name:
            assert text.startswith("-- backups, vaults, members: Arrow datasets")
            return
        rows = duckdb.sql(text).fetchall()
    assert [row[0] for row in rows] == OWN


def test_a_store_named_like_a_home_folder_is_read_where_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB reads a leading ``~`` as the home folder: ``~st`` is made absolute for it."""
    build(tmp_path, "~st", "~stx")
    monkeypatch.chdir(tmp_path)
    for engine in ("polars", "duckdb"):
        with Inventory.open("~st", engine=engine) as inventory:
            check_answers(inventory)
    sql = duckdb_sql(Path("~st"), read_manifest(Path("~st")))
    assert f"'{tmp_path}/~st/g" in sql
    assert sorted(r[0] for r in duckdb.sql(sql).fetchall()) == OWN


def test_cli_query_and_ingest_take_a_store_path_with_glob_characters(tmp_path: Path) -> None:
    """What a user types: ``--store 'st[x]'`` ingests, queries and exports that store only."""
    store = build(tmp_path, "st[x]", "stx")

    def cbrq(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "engine.cli", *args, "--store", str(store)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    for engine in ("polars", "duckdb"):
        shown = cbrq("query", "sort=id:asc", "--engine", engine, "-f", "json")
        assert shown.returncode == 0, shown.stderr
        assert [b["id"] for b in json.loads(shown.stdout)["backups"]] == OWN
    exported = cbrq("export", "-f", "ndjson")
    assert exported.returncode == 0, exported.stderr
    pages = [json.loads(line) for line in exported.stdout.splitlines()]
    ids = sorted(b["id"] for p in pages for b in p["backups"])
    assert ids == OWN
