"""The bounded-memory final merge (engine.store.write) writes the same table whatever its limits.

Tiny limits force every path at small sizes: sources merged into runs over
several levels, dedup keys ranked in several hash partitions, key blocks of
a few rows, and tables split into many files. The result must equal a store
written with the defaults: the same live rows in store order (an ingest keeps
its batches as sorted runs, so the batch size shapes its files), and once
compacted, row for row with the same row groups (or, split into files, the
same rows and answers).
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
from engine.api import ingest
from engine.errors import StoreError
from engine.generate import write_dumps
from engine.inventory import Inventory
from engine.store.admin import compact
from engine.store.layout import STORE_ORDER
from engine.store.manifest import read_manifest
from engine.store.read import scan, table_files
from tests.conftest import SAMPLE, snapshot
from tests.records import backup, page

Write = Callable[[str, str | bytes], Path]


def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.store.write, "FAN_IN", 3)
    monkeypatch.setattr(engine.store.write, "DEDUP_ROWS", 700)
    monkeypatch.setattr(engine.store.write, "KEY_ROWS", 37)
    monkeypatch.setattr(engine.store.write, "PART_ROWS", 64)
    monkeypatch.setattr(engine.ingest.pipeline, "BATCH_BYTES", 60_000)


def groups(path: Path) -> list[int]:
    metadata = pq.ParquetFile(path).metadata
    return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]


def same_stores(left: Path, right: Path, *, layout: bool = True) -> None:
    """Same live rows (and, with ``layout``, where both are one sorted run, the same row groups)."""
    one, two = read_manifest(left), read_manifest(right)
    assert one.counts == two.counts
    for kind in one.tables:
        a, b = table_files(left, one, kind), table_files(right, two, kind)
        plain = [m.ordered(kind) and kind not in m.dead for m in (one, two)]
        if not all(plain):  # runs, or copies listed dead: the live rows must agree
            order = list(STORE_ORDER) if kind == "backups" else ["_seq", "_row"]
            rows = [scan(at, kind).collect().sort(order, nulls_last=True) for at in (left, right)]
            assert rows[0].equals(rows[1]), kind
            layout = False
        else:
            assert pl.read_parquet(a).equals(pl.read_parquet(b)), kind
        for path in [*a, *b]:
            assert pq.read_schema(path).equals(pq.read_schema(a[0])), kind
        if layout:
            assert [groups(path) for path in a] == [groups(path) for path in b], kind


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dumps")
    write_dumps(out, 3_000, seed=5, page_size=100)
    return out


def test_tiny_limits_write_the_same_store(
    dumps: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = sorted(str(p) for p in (dumps / "backups").iterdir())
    first = [*pages[:12], str(dumps / "vaults.json")]
    for name in ("default", "tiny"):
        if name == "tiny":
            tiny(monkeypatch)
        ingest([str(SAMPLE)], tmp_path / name / "sample")
        ingest(first, tmp_path / name / "twice")
        ingest([str(dumps)], tmp_path / name / "twice")
    for store in ("sample", "twice"):
        same_stores(tmp_path / "default" / store, tmp_path / "tiny" / store)
        compact(tmp_path / "default" / store)
        compact(tmp_path / "tiny" / store)
        same_stores(tmp_path / "default" / store, tmp_path / "tiny" / store)
    parts = scan(tmp_path / "tiny" / "twice", "backups")
    assert parts.select(pl.col("id").is_unique().all()).collect().item()


def test_null_created_at_sorts_last_through_the_merge(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [
        backup(f"b{i:03d}", created_at=f"2020-01-{1 + i % 28:02d}T00:00:00") for i in range(300)
    ]
    for record in records[::7]:
        record.pop("created_at")
    files = [str(write(f"{i}.json", page(*records[i::5]))) for i in range(5)]
    ingest(files, tmp_path / "default")
    tiny(monkeypatch)
    ingest(files, tmp_path / "tiny")
    same_stores(tmp_path / "default", tmp_path / "tiny")
    for root in (tmp_path / "default", tmp_path / "tiny"):
        compact(root)
    same_stores(tmp_path / "default", tmp_path / "tiny")
    created = scan(tmp_path / "tiny", "backups").collect()["created_at"]
    assert created.null_count() == len(records[::7])
    assert created.tail(created.null_count()).is_null().all()


def test_a_failing_merge_leaves_the_store_as_it_was(
    dumps: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = sorted(str(p) for p in (dumps / "backups").iterdir())
    ingest(pages[:5], store)
    before = snapshot(store)
    tiny(monkeypatch)

    def broken(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(engine.store.write, "_winners", broken)
    with pytest.raises(OSError, match="disk full"):
        ingest([str(dumps)], store)
    assert snapshot(store) == before


def test_a_table_split_into_files_reads_and_answers_the_same(
    dumps: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = sorted(str(p) for p in (dumps / "backups").iterdir())
    first = [*pages[:12], str(dumps / "vaults.json"), str(dumps / "members.json")]
    for name in ("default", "split"):
        if name == "split":
            tiny(monkeypatch)
            monkeypatch.setattr(engine.store.write, "FILE_ROWS", 250)
        ingest(first, tmp_path / name)
        ingest([str(dumps)], tmp_path / name)  # the split table is a source of the next
    same_stores(tmp_path / "default", tmp_path / "split", layout=False)
    split = read_manifest(tmp_path / "split")
    files = table_files(tmp_path / "split", split, "backups")
    assert len(files) == -(-split.counts["backups"] // 250)
    assert [pq.ParquetFile(f).metadata.num_rows for f in files[:-1]] == [250] * (len(files) - 1)
    one, many = Inventory.open(tmp_path / "default"), Inventory.open(tmp_path / "split")
    for query in (
        "limit=40",
        "sort=name:asc&limit=60&offset=300",
        "status=error&status=available&sort=status:desc,name:asc",
        "sort=created_at:desc&limit=30&offset=970",
    ):
        a, b = one.query(query), many.query(query)
        assert (a.count, a.ids) == (b.count, b.ids), query
        assert a.frame.equals(b.frame), query
        assert a.payloads == b.payloads, query
    some = one.query("sort=id:desc&limit=3").ids
    assert [many.record(i) for i in some] == [one.record(i) for i in some]


def test_a_version_1_store_with_one_file_per_table_is_still_read(store: Path, write: Write) -> None:
    ingest([str(SAMPLE)], store)
    compact(store)  # one sorted file per table, no superseded rows: what version 1 held
    manifest = json.loads((store / "manifest.json").read_text())
    expected = Inventory.open(store).query("sort=name:asc&limit=7")
    manifest["version"] = 1
    manifest["tables"] = {kind: files[0] for kind, files in manifest["tables"].items()}
    for newer in ("segments", "dead", "superseded"):
        del manifest[newer]
    (store / "manifest.json").write_text(json.dumps(manifest))
    got = Inventory.open(store).query("sort=name:asc&limit=7")
    assert (got.count, got.ids, got.payloads) == (expected.count, expected.ids, expected.payloads)
    ingest([str(write("new.json", page(backup("new-one"))))], store)  # on top of it
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["version"] == 3
    assert manifest["counts"]["backups"] == got.count + 1
    assert Inventory.open(store).count() == got.count + 1


@pytest.mark.parametrize("tables", [5, [3], [""], {"a": "b"}])
def test_a_manifest_with_bad_table_files_is_a_clear_error(store: Path, tables: object) -> None:
    ingest([str(SAMPLE)], store)
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["tables"]["backups"] = tables
    (store / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match=r"tables\.backups is .*allowed: a file name, or a list"):
        read_manifest(store)
