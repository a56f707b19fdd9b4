"""`cbrq count` of a whole store answers from the manifest's live count, without polars.

The manifest records each table's live rows; a count that nothing in the
query narrows is that number. It must equal the backend's count on every kind
of store (repeated copies, appends with superseded rows, kept runs, compacted),
validate paging parameters as before, and leave anything else (a filter, a
project, another engine, a store with snapshots, a damaged store) to the backend.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.api import compact, ingest
from engine.cli import main
from engine.generate import write_dumps
from engine.inventory import Inventory
from engine.store.manifest import read_manifest
from engine.store.read import table_files
from tests.conftest import SAMPLE

WHOLE = ("", "limit=5&offset=3&sort=name:asc", "dec=true&enterprise_project_id=all_granted_eps")


def count(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["count", *args])
    return result.exit_code, result.stdout.strip(), result.stderr


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("live")
    dumps = base / "dumps"
    write_dumps(dumps, 1_500, seed=21, page_size=100)
    pages = sorted(str(p) for p in (dumps / "backups").iterdir())
    made = {name: base / name for name in ("sample", "appended", "compacted")}
    ingest([str(SAMPLE)], made["sample"])
    for name in ("appended", "compacted"):
        ingest(pages[:9], made[name])
        ingest(pages[6:], made[name])  # overlaps: newer copies supersede stored rows
    compact(made["compacted"])
    assert read_manifest(made["appended"]).superseded.get("backups")
    return made


@pytest.mark.parametrize("query", WHOLE)
@pytest.mark.parametrize("name", ["sample", "appended", "compacted"])
def test_the_live_count_is_the_backends_count(
    stores: dict[str, Path], name: str, query: str
) -> None:
    store = str(stores[name])
    code, out, err = count(query, "--store", store)
    assert code == 0, err
    assert int(out) == Inventory.open(store).count(query or None)
    _, by_duckdb, _ = count(query, "--store", store, "--engine", "duckdb")
    assert out == by_duckdb


def test_a_whole_store_count_imports_no_polars(stores: dict[str, Path]) -> None:
    script = (
        "import sys\n"
        "from engine.cli import main\n"
        "try:\n"
        f"    main(['count', '--store', {str(stores['appended'])!r}])\n"
        "except SystemExit as done:\n"
        "    assert done.code in (0, None), done.code\n"
        "assert 'polars' not in sys.modules\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) == Inventory.open(stores["appended"]).count()


@pytest.mark.parametrize("query", ["limit=0", "offset=-1", "sort=size:asc", "marker="])
def test_paging_parameters_are_still_validated(stores: dict[str, Path], query: str) -> None:
    store = str(stores["sample"])
    fast = count(query, "--store", store)
    slow = count(query, "--store", store, "--engine", "duckdb")
    assert fast[0] == slow[0] == 2 and fast[2] == slow[2]


def test_a_missing_file_is_the_backends_error(stores: dict[str, Path], tmp_path: Path) -> None:
    store = tmp_path / "s"
    shutil.copytree(stores["compacted"], store)
    table_files(store, read_manifest(store), "backups")[0].unlink()
    code, out, err = count("--store", str(store))
    assert code != 0 and not out and "backups-00000.parquet" in err


def test_a_missing_dead_file_is_the_backends_error(stores: dict[str, Path], tmp_path: Path) -> None:
    store = tmp_path / "s"
    shutil.copytree(stores["appended"], store)
    (store / read_manifest(store).dead["backups"]).unlink()
    code, out, err = count("--store", str(store))
    assert code != 0 and not out and "dead" in err


def test_filters_and_projects_are_counted_by_the_backend(stores: dict[str, Path]) -> None:
    store = str(stores["sample"])
    inventory = Inventory.open(store)
    code, out, _ = count("status=error", "--store", store)
    assert code == 0 and int(out) == inventory.count("status=error") < inventory.count()
    project = inventory.lazy("backups").select("project_id").collect()["project_id"][0]
    code, out, _ = count("--store", store, "--project", project)
    assert code == 0 and int(out) == inventory.count(project=project) < inventory.count()
