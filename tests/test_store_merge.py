"""The bounded-memory final merge (engine.store) writes the same table whatever its limits.

Tiny limits force every path at small sizes: staged parts merged into runs
over several levels, dedup keys ranked in several hash partitions, and key
blocks of a few rows. The result must equal a store written with the
defaults, row for row, with the same row groups.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

import engine.api
import engine.store
from engine.api import ingest
from engine.generate import write_dumps
from engine.store import read_manifest
from tests.conftest import SAMPLE, snapshot
from tests.records import backup, page

Write = Callable[[str, str | bytes], Path]


def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.store, "FAN_IN", 3)
    monkeypatch.setattr(engine.store, "DEDUP_ROWS", 700)
    monkeypatch.setattr(engine.store, "KEY_ROWS", 37)
    monkeypatch.setattr(engine.store, "PART_ROWS", 64)
    monkeypatch.setattr(engine.api, "BATCH_BYTES", 60_000)


def same_stores(left: Path, right: Path) -> None:
    one, two = read_manifest(left), read_manifest(right)
    assert one.counts == two.counts
    for kind, name in one.tables.items():
        a, b = left / name, right / two.tables[kind]
        assert pl.read_parquet(a).equals(pl.read_parquet(b)), kind
        assert pq.read_schema(a).equals(pq.read_schema(b)), kind
        groups_a, groups_b = pq.ParquetFile(a).metadata, pq.ParquetFile(b).metadata
        assert [groups_a.row_group(i).num_rows for i in range(groups_a.num_row_groups)] == [
            groups_b.row_group(i).num_rows for i in range(groups_b.num_row_groups)
        ], kind


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
    parts = pl.scan_parquet(
        tmp_path / "tiny" / "twice" / read_manifest(tmp_path / "tiny" / "twice").tables["backups"]
    )
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
    created = pl.read_parquet(
        tmp_path / "tiny" / read_manifest(tmp_path / "tiny").tables["backups"]
    )["created_at"]
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

    monkeypatch.setattr(engine.store, "_winners", broken)
    with pytest.raises(OSError, match="disk full"):
        ingest([str(dumps)], store)
    assert snapshot(store) == before
