"""Every input form of SPEC §1 lands in the inventory and comes back out."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
from click.testing import CliRunner

from engine.api import export_pages, ingest
from engine.cli import main
from engine.store.manifest import read_manifest
from engine.store.read import scan
from tests.conftest import snapshot
from tests.records import backup, page

Write = Callable[[str, str | bytes], Path]


def exported(store: Path, kind: str = "backups") -> list[dict[str, Any]]:
    pages = [json.loads(p) for p in export_pages(store, kind=kind)]
    return [r for p in pages for r in p[kind]]


def ids(store: Path) -> set[str]:
    return {r["id"] for r in exported(store)}


def test_one_page(write: Write, store: Path) -> None:
    path = write("p.json", page(backup("a"), backup("b")))
    summary = ingest([str(path)], store)
    assert summary.backups_new == 2
    # Same created_at: the API's tie-break on id orders them.
    assert exported(store) == [backup("a"), backup("b")]


def test_gzip_detected_by_content_not_name(write: Write, store: Path) -> None:
    write("p.json.gz", gzip.compress(page(backup("a")).encode()))
    write("q.json", gzip.compress(page(backup("b")).encode()))
    ingest([str(store.parent / "in")], store)
    assert ids(store) == {"a", "b"}


def test_array_of_responses(write: Write, store: Path) -> None:
    body = f"[{page(backup('a'))}, {page(backup('b'), backup('c'))}]"
    ingest([str(write("arr.json", body))], store)
    assert ids(store) == {"a", "b", "c"}


def test_ndjson_of_responses_and_of_bare_backups(write: Write, store: Path) -> None:
    lines = [json.dumps(json.loads(page(backup("a")))), "", json.dumps({"backup": backup("b")})]
    write("r.ndjson", "\n".join(lines) + "\n")
    write("s.jsonl", "\n".join(json.dumps(backup(i)) for i in "cde") + "\n")
    ingest([str(store.parent / "in")], store)
    assert ids(store) == set("abcde")


def test_singletons_vaults_and_members(write: Write, store: Path) -> None:
    write("b.json", json.dumps({"backup": backup("a")}))
    vault = {"id": "v1", "name": "vault", "billing": {"size": 100, "used": 2048}}
    write("v.json", json.dumps({"count": 1, "vaults": [vault]}))
    write("v2.json", json.dumps({"vault": {"id": "v2", "billing": {"size": 1, "used": 0}}}))
    member = {"id": "m", "backup_id": "a", "dest_project_id": "p2", "status": "pending"}
    write("m.json", json.dumps({"members": [member]}))
    write("m2.json", json.dumps({"member": {**member, "dest_project_id": "p3"}}))
    summary = ingest([str(store.parent / "in")], store)
    assert summary.totals == {"backups": 1, "vaults": 2, "members": 2}
    vaults = scan(store, "vaults").collect()
    assert vaults.filter(pl.col("id") == "v1")["billing"].struct.field("used").item() == 2048
    assert {m["dest_project_id"] for m in exported(store, "members")} == {"p2", "p3"}


def test_globs_and_directory_order(write: Write, store: Path) -> None:
    write("x/1.json", page(backup("a")))
    write("x/2.json.gz", gzip.compress(page(backup("b")).encode()))
    write("x/notes.txt", "not a dump")
    ingest([str(store.parent / "in" / "x" / "*.json*")], store)
    assert ids(store) == {"a", "b"}
    assert [f["source"].rsplit("/", 1)[1] for f in read_manifest(store).files] == [
        "1.json",
        "2.json.gz",
    ]


def test_stdin_through_the_cli(store: Path) -> None:
    result = CliRunner().invoke(
        main, ["ingest", "-", "--store", str(store)], input=page(backup("a"))
    )
    assert result.exit_code == 0, result.output
    assert ids(store) == {"a"}


def test_a_file_already_ingested_is_skipped_and_reported(write: Write, store: Path) -> None:
    path = write("p.json", page(backup("a")))
    ingest([str(path)], store)
    before = snapshot(store)
    result = CliRunner().invoke(main, ["ingest", str(path), "--store", str(store)])
    assert result.exit_code == 0
    assert "1 skipped" in result.stderr and f"skipped: {path}" in result.stderr
    assert "inventory: 1 backups, 0 vaults, 0 members" in result.stderr
    assert snapshot(store) == before  # nothing new: not even a new generation


def test_timestamps_are_typed_instants_and_canonical_on_export(write: Write, store: Path) -> None:
    record = backup(
        "a",
        created_at="2020-02-21T15:00:54.065+08:00",
        updated_at="2020-02-21T07:00:54Z",
        protected_at="2020-02-21T07:00:54.123456789-01:30",
        children=[backup("c", created_at="2020-02-21T07:00:54.065+00:00")],
    )
    ingest([str(write("p.json", page(record)))], store)
    frame = scan(store, "backups").collect()
    assert str(frame["created_at"].dtype) == "Datetime(time_unit='us', time_zone='UTC')"
    child = frame["children"].list.first().struct.field("created_at").item()
    assert child == frame["created_at"].item()
    [out] = exported(store)
    assert out["created_at"] == "2020-02-21T07:00:54.065000"
    assert out["updated_at"] == "2020-02-21T07:00:54.000000"
    assert out["protected_at"] == "2020-02-21T08:30:54.123456"
    assert out["children"][0]["created_at"] == "2020-02-21T07:00:54.065000"


def test_unknown_keys_survive_and_are_reported(write: Write, store: Path) -> None:
    first = backup("a")
    last = backup("b", tags=[{"key": "env"}], extend_info={"retention": {"class": "gold"}})
    last["replication_records"] = [{"id": "r", "extra_info": {"progress": 100}, "new_field": 1}]
    result = CliRunner().invoke(
        main, ["ingest", str(write("p.json", page(first, last))), "--store", str(store)]
    )
    assert result.exit_code == 0
    # Each under its parent: nested in a known object by path, under an unknown one in (...).
    kept = "extend_info.retention (class), replication_records.new_field, tags (key)"
    assert f"unknown keys kept: {kept}\n" in result.stderr
    assert {r["id"]: r for r in exported(store)}["b"] == last


def test_export_formats_reingest_to_the_same_inventory(
    write: Write, store: Path, tmp_path: Path
) -> None:
    ingest([str(write("p.json", page(*(backup(str(i)) for i in range(7)))))], store)
    runner = CliRunner()
    out = tmp_path / "out.ndjson"
    result = runner.invoke(
        main, ["export", "--store", str(store), "-f", "ndjson", "--page-size", "3", "-o", str(out)]
    )
    assert result.exit_code == 0
    lines = out.read_text().splitlines()
    assert [json.loads(x)["count"] for x in lines] == [7, 7, 7]
    again = tmp_path / "again"
    ingest([str(out)], again)
    assert exported(again) == exported(store)


def test_every_output_puts_timestamps_in_the_api_form(write: Write, store: Path) -> None:
    """The store keeps the text as dumped; pages, records, export and --from rewrite on output."""
    from engine.inventory import Inventory

    record = backup(
        "a", created_at="2020-02-21T15:00:54.065+08:00", updated_at="2020-02-21T07:00:00Z"
    )
    path = write("p.json", page(record))
    ingest([str(path)], store)
    stored = scan(store, "backups").collect()["_payload"].item()
    assert '"created_at":"2020-02-21T15:00:54.065+08:00"' in stored  # as dumped
    for inv in (Inventory.open(store), Inventory.from_dumps([str(path)])):
        for text in (inv.query("limit=1").payloads[0], inv.record("a")):
            assert text is not None
            out = json.loads(text)
            assert out["created_at"] == "2020-02-21T07:00:54.065000"
            assert out["updated_at"] == "2020-02-21T07:00:00.000000"
