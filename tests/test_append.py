"""Appends: any sequence of ingests equals one ingest of all files in that order.

The store keeps each ingest's winners as a sorted segment and lists the
stored rows they supersede (engine.store.write); these properties pin that this is
invisible: the same export, the same answers, the same live rows seen by
DuckDB without cbrq, before and after compaction.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import duckdb
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from engine.api import compact, export_pages, ingest
from engine.inventory import Inventory
from engine.store import write as store_module
from engine.store.manifest import read_manifest
from engine.store.read import duckdb_sql
from engine.testing.strategies import PROJECTS, inventories, timestamps
from tests.records import backup, page

Write = Callable[[str, str | bytes], Path]
Record = dict[str, Any]

QUERIES = [
    "",
    "limit=3&offset=1",
    "sort=name:asc,updated_at:desc&limit=5",
    "sort=created_at:asc&limit=4",
    "status=available&status=error&sort=updated_at:asc",
]


History = tuple[list[tuple[str, Record]], list[int], list[int]]


@st.composite
def histories(draw: st.DrawFn) -> History:
    """Records (with newer, older and equal copies), file sizes, and files per ingest."""
    generated = draw(inventories())
    records: list[tuple[str, Record]] = [("backups", b) for b in generated.backups]
    copies = st.lists(st.sampled_from(generated.backups), max_size=8)
    for original in draw(copies) if generated.backups else []:
        copy = dict(original)
        copy["name"] = draw(st.sampled_from(["copy_a", "copy_b", original.get("name")]))
        same_or_none = st.sampled_from([original.get("updated_at"), None])
        copy["updated_at"] = draw(same_or_none | timestamps())
        records.append(("backups", copy))
    records += [("vaults", v) for v in generated.vaults]
    records += [("members", m) for m in generated.members]
    records = draw(st.permutations(records)) if records else []
    cuts = sorted(draw(st.lists(st.integers(0, len(records)), max_size=6)))
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, len(records)], strict=True)]
    sizes = [n for n in sizes if n] or [0]
    groups: list[int] = []
    while sum(groups) < len(sizes):
        groups.append(draw(st.integers(1, 3)))
    return records, sizes, groups


def write_files(folder: Path, records: list[tuple[str, Record]], sizes: list[int]) -> list[str]:
    """One file per run of records (a response per record kind in it); their paths."""
    paths = []
    start = 0
    for number, size in enumerate(sizes):
        by_kind: dict[str, list[Record]] = {"backups": [], "vaults": [], "members": []}
        for kind, record in records[start : start + size]:
            by_kind[kind].append(record)
        start += size
        body = [{kind: rows} for kind, rows in by_kind.items() if rows] or [{"backups": []}]
        path = folder / f"f{number:03d}.json"
        path.write_text(json.dumps(body))
        paths.append(str(path))
    return paths


def answers(root: Path) -> list[Any]:
    """What a user sees: every export, a few queries, DuckDB's view of the live rows."""
    inv = Inventory.open(root)
    seen: list[Any] = [list(export_pages(root, kind=k)) for k in ("backups", "vaults", "members")]
    for query in QUERIES:
        result = inv.query(query)
        seen.append((result.count, result.ids, result.payloads))
    seen.append(inv.query("", project=PROJECTS[0], own_type="all_granted").ids)
    seen.append(duckdb_live(root))
    return seen


def assert_dead_positions_match(root: Path) -> None:
    """Each dead row's ``_pos`` is the stored row with its ``_seq`` and ``_row``."""
    import polars as pl

    from engine.store.read import dead_file, scan_physical

    manifest = read_manifest(root)
    path = dead_file(root, manifest, "backups")
    if path is None:
        return
    dead = pl.read_parquet(path)
    rows = scan_physical(root, "backups", manifest).with_row_index("_pos").collect()
    found = rows.with_columns(pl.col("_pos").cast(pl.Int64)).join(dead, on="_pos", how="semi")
    assert (
        found.select("_seq", "_row")
        .sort("_seq", "_row")
        .equals(dead.select("_seq", "_row").sort("_seq", "_row"))
    )


def page_answers(inv: Inventory) -> list[Any]:
    """Pages of a few queries and a record lookup, from a store or from memory."""
    seen: list[Any] = []
    for query in QUERIES:
        result = inv.query(query)
        seen.append((result.count, result.ids, result.payloads, result.frame.to_dicts()))
    first = inv.query("limit=1").ids
    seen.append(inv.record(first[0]) if first else None)
    return seen


def duckdb_live(root: Path) -> list[tuple[str, str]]:
    """``(id, _payload)`` of the live backups as DuckDB reads them, without cbrq."""
    sql = duckdb_sql(root, read_manifest(root))
    return duckdb.sql(f"SELECT id, _payload FROM ({sql}) ORDER BY id").fetchall()


# Each example is several ingests, a compaction and DuckDB: default 6, ci 25, nightly 500.
@settings(max_examples=max(5, settings.default.max_examples // 4))
@given(histories(), st.integers(1, 4))
def test_a_sequence_of_ingests_equals_one_ingest(history: History, max_segments: int) -> None:
    records, sizes, groups = history
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.object(store_module, "MAX_SEGMENTS", max_segments),
    ):
        folder = Path(tmp)
        paths = write_files(folder, records, sizes)
        one, many = folder / "one", folder / "many"
        ingest(paths, one)
        start = 0
        for size in groups:
            ingest(paths[start : start + size], many)
            start += size
        manifest = read_manifest(many)
        note(f"segments={manifest.segments} superseded={manifest.superseded}")
        assert len(manifest.segment_files("backups")) <= max_segments
        stored = [
            store_module._rows([many / n for n in files])
            for files in manifest.segment_files("backups")
        ]
        assert manifest.segment_rows("backups") == stored
        assert_dead_positions_match(many)
        expected = answers(one)
        assert answers(many) == expected
        assert page_answers(Inventory.from_dumps(paths)) == page_answers(Inventory.open(one))
        compact(many)
        assert answers(many) == expected
        assert read_manifest(many).segments["backups"] == [1]
        assert read_manifest(many).dead == {}


def test_an_append_writes_only_what_it_adds(write: Write, store: Path) -> None:
    ingest([str(write("1.json", page(*(backup(f"b{i}") for i in range(50)))))], store)
    first = read_manifest(store)
    newer = backup("b7", name="renamed", updated_at="2030-01-01T00:00:00Z")
    summary = ingest([str(write("2.json", page(newer, backup("new"))))], store)
    second = read_manifest(store)
    assert second.tables["backups"][: len(first.tables["backups"])] == first.tables["backups"]
    assert second.segments["backups"] == [1, 1]
    assert second.superseded == {"backups": 1}
    assert (summary.backups_new, summary.backups_replaced, summary.backups_duplicate) == (1, 1, 0)
    assert Inventory.open(store).query("name=renamed").ids == ["b7"]
    assert Inventory.open(store).count() == 51


def test_compact_merges_everything_and_keeps_answers(write: Write, store: Path) -> None:
    for i in range(5):
        again = backup("same", name=f"n{i}", updated_at=f"202{i}-01-01T00:00:00Z")
        ingest([str(write(f"{i}.json", page(backup(f"b{i}"), again)))], store)
    before = answers(store)
    assert compact(store) == {"backups": 6, "vaults": 0, "members": 0}
    manifest = read_manifest(store)
    assert manifest.segments["backups"] == [1] and manifest.dead == {}
    assert answers(store) == before
    assert sorted(p.name for p in store.iterdir() if p.name.startswith("g")) == sorted(
        manifest.referenced()
    )


@pytest.mark.parametrize(
    ("sizes", "added", "dead", "merged"),
    [
        ([], 10, 0.0, 0),
        ([1000], 10, 0.0, 0),
        ([1000, 10], 10, 0.0, 1),
        ([1000, 20, 10], 10, 0.0, 2),
        ([1000, 20, 10], 10, 0.5, 3),
        ([1000, 640, 320, 160, 80, 40, 20, 10], 1, 0.0, 1),  # at most MAX_SEGMENTS
        ([1000, 640, 320, 160, 80, 40, 20, 10], 10, 0.0, 8),  # a carry runs all the way
    ],
)
def test_merge_count_is_a_binary_counter_with_limits(
    sizes: list[int], added: int, dead: float, merged: int
) -> None:
    assert store_module.merge_count(sizes, added, dead) == merged


def test_cbrq_info_and_its_sql_show_the_live_rows(write: Write, store: Path) -> None:
    from click.testing import CliRunner

    from engine.cli import main

    ingest([str(write("1.json", page(*(backup(i) for i in "abdef"))))], store)
    newer = backup("a", name="newer", updated_at="2030-01-01T00:00:00Z")
    ingest([str(write("2.json", page(newer, backup("c"))))], store)
    runner = CliRunner()
    text = runner.invoke(main, ["info", "--store", str(store)])
    assert text.exit_code == 0, text.output
    assert "backups: 6 live, 1 superseded; 2 segment(s) of 5, 2 rows in 2 file(s)" in text.output
    state = json.loads(runner.invoke(main, ["info", "--store", str(store), "-f", "json"]).output)
    assert state["tables"]["backups"]["dead_file"].endswith("backups-dead.parquet")
    files = runner.invoke(main, ["info", "--store", str(store), "--files"]).output.split()
    assert files == [s for seg in state["tables"]["backups"]["segments"] for s in seg["files"]]
    sql = runner.invoke(main, ["info", "--store", str(store), "--sql"]).output
    rows = duckdb.sql(f"SELECT id, name FROM ({sql}) ORDER BY id").fetchall()
    assert rows[:3] == [("a", "newer"), ("b", "autobk_b"), ("c", "autobk_c")]
    assert len(rows) == 6
    done = runner.invoke(main, ["compact", "--store", str(store)])
    assert done.exit_code == 0 and "compacted: 6 backups" in done.output
    sql = runner.invoke(main, ["info", "--store", str(store), "--sql"]).output
    assert "dead" not in sql
    assert duckdb.sql(f"SELECT id, name FROM ({sql}) ORDER BY id").fetchall() == rows


def test_a_reader_keeps_its_commit_while_merges_remove_files(write: Write, store: Path) -> None:
    """Files merged away stay on disk while an Inventory that read them is open."""
    ingest([str(write("0.json", page(*(backup(f"a{i}") for i in range(20)))))], store)
    ingest([str(write("1.json", page(backup("b1"))))], store)
    held = Inventory.open(store)
    fast = held.in_memory()  # shares the commit and the lease
    before = held.query("sort=name:asc&limit=30").ids
    first = read_manifest(store).tables["backups"]
    compact(store)  # merges every segment: the files above are no longer referenced
    ingest([str(write("2.json", page(backup("c1"))))], store)
    assert not set(first) & set(read_manifest(store).tables["backups"])
    assert all((store / name).exists() for name in first)
    assert held.query("sort=name:asc&limit=30").ids == before
    assert fast.query("sort=name:asc&limit=30").ids == before
    assert held.record("b1") is not None
    assert Inventory.open(store).count() == 22
    held.close()
    ingest([str(write("3.json", page(backup("d1"))))], store)  # now they can go
    used = read_manifest(store).referenced()
    assert not (store / first[-1]).exists()
    assert not any((store / name).exists() for name in first if name.split("/")[0] not in used)


def test_dumps_too_big_for_memory_go_through_a_temporary_store(
    write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gzip

    from engine import inventory as inventory_module
    from engine.ingest.sources import SourceRef, source_size

    path = write("big.json.gz", gzip.compress(page(*(backup(f"b{i}") for i in range(30))).encode()))
    assert source_size(SourceRef(str(path), path)) == len(gzip.decompress(path.read_bytes()))
    in_memory = Inventory.from_dumps([str(path)])
    assert in_memory.root is None
    monkeypatch.setattr(inventory_module, "_physical_memory", lambda: 1000)
    spilled = Inventory.from_dumps([str(path)])
    assert spilled.root is not None and spilled.root.exists()
    assert page_answers(spilled) == page_answers(in_memory)
    spilled.close()
    assert not spilled.root.exists()


def test_dead_rows_keep_their_positions_when_newer_segments_merge(
    write: Write, store: Path
) -> None:
    ingest([str(write("0.json", page(*(backup(f"a{i:03d}") for i in range(100)))))], store)
    newer = [backup(f"a{i:03d}", name="v2", updated_at="2030-01-01T00:00:00Z") for i in (5, 50)]
    ingest([str(write("1.json", page(*newer, *(backup(f"b{i}") for i in range(8)))))], store)
    again = [backup("a050", name="v3", updated_at="2031-01-01T00:00:00Z")]
    ingest([str(write("2.json", page(*again, *(backup(f"c{i}") for i in range(9)))))], store)
    manifest = read_manifest(store)
    assert manifest.segment_rows("backups") == [100, 19]  # the two appends merged
    assert manifest.superseded == {"backups": 2}  # a005 and a050 in the first segment
    assert_dead_positions_match(store)
    inv = Inventory.open(store)
    assert inv.count() == 117
    assert inv.query("name=v").ids == ["a005", "a050"]
    assert [json.loads(inv.record(i) or "{}")["name"] for i in ("a005", "a050")] == ["v2", "v3"]


def test_cbrq_info_lists_ingested_files_and_the_quarantine(write: Write, store: Path) -> None:
    from click.testing import CliRunner

    from engine.cli import main

    first = write("1.json", page(backup("a"), backup("b")))
    ingest([str(first)], store)
    bad = write(
        "2.json", '{"count": 2, "backups": [{"id": "c"}, {"id": "d", "resource_size": "x"}]}'
    )
    ingest([str(bad)], store, lenient=True)
    runner = CliRunner()
    listed = runner.invoke(main, ["info", "--store", str(store), "--ingested"]).output.splitlines()
    assert [line.split("  ")[1:] for line in listed] == [
        ["2 backups read", str(first)],
        ["2 backups read", str(bad)],  # one of them went to the quarantine
    ]
    assert all(line[:4].isdigit() and line[19] == "Z" for line in listed)  # an ingest time
    text = runner.invoke(main, ["info", "--store", str(store)]).output
    assert "ingested files: 2 " in text and "(list them: --ingested)" in text
    state = json.loads(runner.invoke(main, ["info", "--store", str(store), "-f", "json"]).output)
    quarantine = Path(state["quarantine"])
    assert state["quarantined"] == 1 and state["quarantine_bytes"] == quarantine.stat().st_size > 0
    assert f"quarantine: 1 record(s), {quarantine.stat().st_size:,} bytes, in {quarantine}" in text
    assert [f["source"] for f in state["files"]] == [str(first), str(bad)]
