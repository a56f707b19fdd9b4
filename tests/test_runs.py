"""An ingest writes each record once: its batches are kept as the sorted runs of one segment.

A batch is sorted and written in the store's final form; an ingest that
merges nothing keeps those runs as its segment (``runs`` in the manifest,
version 5) and lists the copies that lost in the dead file. The store must
answer exactly as the same store compacted into one sorted run, stay
readable without cbrq, and fall back to one merged run when most of what an
ingest read lost to other copies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

import engine.ingest.pipeline
import engine.store.write
from engine.api import compact, ingest
from engine.errors import StoreError
from engine.generate import write_dumps
from engine.inventory import Inventory
from engine.store.layout import RUNS_VERSION, STORE_ORDER, VERSION
from engine.store.manifest import read_manifest
from engine.store.read import table_files
from tests.records import backup, page

Write = Callable[[str, str | bytes], Path]

QUERIES = (
    "limit=50",
    "sort=created_at:asc&limit=40&offset=700",
    "sort=name:asc&limit=30",
    "status=error&status=available&sort=status:desc,created_at:desc",
    "start_time=2025-06-01T00:00:00Z&end_time=2025-09-01T00:00:00Z&limit=100",
)


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dumps")
    write_dumps(out, 2_500, seed=11, page_size=100)
    return out


def small_batches(monkeypatch: pytest.MonkeyPatch, runs: int = 100) -> None:
    """Batches of 150 kB, and up to ``runs`` of them kept as runs."""
    monkeypatch.setattr(engine.ingest.pipeline, "BATCH_BYTES", 150_000)
    monkeypatch.setattr(engine.store.write, "MAX_RUNS", runs)


def merged_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files every merge reads from now on (a spy on the store's merge)."""
    rewritten: list[str] = []
    real = engine.store.write._sink

    def spy(sources: list[tuple[Path, int]], *args: object, **kwargs: object) -> list[Path]:
        rewritten.extend(path.name for path, _ in sources)
        return real(sources, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine.store.write, "_sink", spy)
    return rewritten


def test_an_ingest_keeps_its_batches_as_sorted_runs_and_answers_as_compacted(
    dumps: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch)
    runs, merged = tmp_path / "runs", tmp_path / "merged"
    for root in (runs, merged):
        ingest([str(dumps)], root)
    compact(merged)
    manifest = read_manifest(runs)
    raw = json.loads((runs / "manifest.json").read_text())
    files = table_files(runs, manifest, "backups")
    assert raw["version"] == RUNS_VERSION and raw["runs"]["backups"] == [len(files)] > [1]
    assert not manifest.ordered("backups") and read_manifest(merged).ordered("backups")
    for file in files:  # each run sorted on its own, as the store's order says
        keys = pl.read_parquet(file, columns=list(STORE_ORDER))
        assert keys.equals(keys.sort(list(STORE_ORDER), nulls_last=True)), file
    assert manifest.superseded["backups"] > 0  # the generator's repeated copies, listed dead
    one, other = Inventory.open(runs), Inventory.open(merged)
    assert not one.tables.ordered and other.tables.ordered
    for query in QUERIES:
        a, b = one.query(query), other.query(query)
        assert (a.count, a.ids, a.payloads) == (b.count, b.ids, b.payloads), query
    # Readers without cbrq: every file is plain Parquet with the same schema.
    schemas = {
        pq.read_schema(f) for f in [*files, *table_files(merged, read_manifest(merged), "backups")]
    }
    assert len({str(s) for s in schemas}) == 1


def test_batches_are_written_once(
    dumps: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch)
    rewritten = merged_files(monkeypatch)
    ingest([str(dumps)], tmp_path / "s")
    assert rewritten and not any(name.startswith("backups") for name in rewritten)
    compact(tmp_path / "s")  # a merge does rewrite them: the spy sees it
    assert any(name.startswith("backups") for name in rewritten)
    assert read_manifest(tmp_path / "s").to_json()["version"] == VERSION


def test_an_ingest_of_mostly_repeated_copies_is_merged_into_one_run(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch)
    records = [backup(f"b{i:04d}", updated_at=f"2020-03-0{1 + i % 5}T00:00:00") for i in range(400)]
    days = [
        str(write(f"day{d}.json", page(*[{**r, "description": f"day {d}"} for r in records])))
        for d in range(6)
    ]
    ingest(days, tmp_path / "s")
    manifest = read_manifest(tmp_path / "s")
    # Five of six copies lose: kept as runs they would be most of the table.
    assert manifest.ordered("backups") and "backups" not in manifest.dead
    assert Inventory.open(tmp_path / "s").count() == 400


def test_an_ingest_of_more_batches_than_it_may_keep_is_merged_into_one_run(
    dumps: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch, runs=3)
    ingest([str(dumps)], tmp_path / "many")
    pages = sorted(str(p) for p in (dumps / "backups").iterdir())
    ingest(pages[:2], tmp_path / "few")  # two batches of about 180 kB: kept as they are
    many, few = read_manifest(tmp_path / "many"), read_manifest(tmp_path / "few")
    assert many.ordered("backups") and "backups" not in many.dead
    assert not few.ordered("backups") and few.segment_runs("backups") == [2]
    staged = list((tmp_path / "many").rglob("*.arrow"))
    assert not staged  # the staged parts are gone with the commit


@pytest.mark.parametrize("runs", [[2], [1, 1], ["x"], 3])
def test_a_manifest_with_bad_runs_is_a_clear_error(
    dumps: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runs: object
) -> None:
    small_batches(monkeypatch)
    ingest([str(dumps)], tmp_path / "s")
    path = tmp_path / "s" / "manifest.json"
    raw = json.loads(path.read_text())
    raw["runs"]["backups"] = runs
    path.write_text(json.dumps(raw))
    with pytest.raises(StoreError, match=r"runs\.backups'? is .*; allowed"):
        read_manifest(tmp_path / "s")


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One listing paged newest first, as ListBackups returns it with no sort."""
    out = tmp_path_factory.mktemp("listed")
    write_dumps(out, 2_500, seed=12, page_size=100, newest_first=True)
    return out


def test_an_export_paged_newest_first_is_kept_whole_as_one_sorted_run(
    listed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch, runs=2)
    rewritten = merged_files(monkeypatch)
    ingest([str(listed)], tmp_path / "s")
    # Many batches, none overlapping another: one run, in key order, nothing merged.
    assert not any(name.startswith("backups") for name in rewritten)
    manifest = read_manifest(tmp_path / "s")
    files = table_files(tmp_path / "s", manifest, "backups")
    assert len(files) > 2 and manifest.ordered("backups")
    assert manifest.segment_runs("backups") == [1]
    assert manifest.to_json()["version"] == VERSION and "backups" not in manifest.dead
    keys = pl.read_parquet(files, columns=list(STORE_ORDER))
    assert keys.equals(keys.sort(list(STORE_ORDER), nulls_last=True))
    ingest([str(listed)], tmp_path / "merged")  # the same store, merged as a big ingest is
    compact(tmp_path / "merged")
    one, other = Inventory.open(tmp_path / "s"), Inventory.open(tmp_path / "merged")
    assert one.tables.ordered
    for query in QUERIES:
        a, b = one.query(query), other.query(query)
        assert (a.count, a.ids, a.payloads) == (b.count, b.ids, b.payloads), query


def test_a_batch_that_overlaps_the_others_has_them_all_merged(
    listed: Path, dumps: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch, runs=2)
    pages = sorted(str(p) for p in (listed / "backups").iterdir())
    # The last page of a random-order dump spans the whole time range.
    stray = max((dumps / "backups").iterdir())
    ingest([*pages, str(stray)], tmp_path / "s")
    manifest = read_manifest(tmp_path / "s")
    assert manifest.ordered("backups")
    assert len(table_files(tmp_path / "s", manifest, "backups")) == 1
    assert not list((tmp_path / "s").rglob("*.arrow"))
    ingest([*pages, str(stray)], tmp_path / "c")
    compact(tmp_path / "c")
    one, other = Inventory.open(tmp_path / "s"), Inventory.open(tmp_path / "c")
    for query in QUERIES:
        a, b = one.query(query), other.query(query)
        assert (a.count, a.ids, a.payloads) == (b.count, b.ids, b.payloads), query


def test_runs_that_touch_are_not_one_run() -> None:
    first, last = engine.store.write._key, engine.store.write.chain
    apart = [(first((3, "b")), first((9, "a"))), (first((1, "a")), first((3, "a")))]
    touching = [(first((3, "a")), first((9, "a"))), (first((1, "a")), first((3, "a")))]
    nulls = [(first((None, "a")), first((None, "z"))), (first((1, "a")), first((8, None)))]
    assert last(apart) == [1, 0] and last(touching) is None and last(nulls) == [1, 0]


@pytest.mark.parametrize("data", ["listed", "dumps"])
def test_one_shot_dumps_answer_as_the_store_whether_or_not_batches_overlap(
    data: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_batches(monkeypatch)
    folder: Path = request.getfixturevalue(data)
    ingest([str(folder)], tmp_path / "s")
    compact(tmp_path / "s")
    memory, stored = Inventory.from_dumps(folder), Inventory.open(tmp_path / "s")
    frame = memory.lazy("backups").select(*STORE_ORDER).collect()
    assert frame.equals(frame.sort(list(STORE_ORDER), nulls_last=True))  # the table's order
    for query in QUERIES:
        a, b = memory.query(query), stored.query(query)
        assert (a.count, a.ids, a.payloads) == (b.count, b.ids, b.payloads), query
