"""A store is never destroyed by a write, and damage is found, named and refused (issue 20).

- A writer that finds committed generations its manifest does not know (a
  lost ``manifest.json``, an older one restored) refuses before writing and
  points at ``cbrq check --repair``; repair restores the newest generation
  whose manifest copy and files verify.
- ``cbrq check`` verifies the manifest, every file's size and SHA-256, row
  counts and dead-row positions, and names each damaged file (exit 1).
- Reads name a damaged file (``FILE: damaged (...)``, exit 1) instead of a
  traceback; ``compact`` refuses to rewrite damage.
- The "Numbers" defects: a user's file in a ``gNNNNNN`` directory, ``compact``
  of a path with no inventory, a compact with nothing to do.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from engine.cli import main
from engine.errors import StoreError
from engine.inventory import Inventory
from engine.store.manifest import read_manifest
from tests.conftest import snapshot
from tests.records import backup, page


def cbrq(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def ingest(store: Path, folder: Path, name: str, ids: range, **fields: Any) -> None:
    dump = folder / name
    dump.write_text(page(*(backup(f"b{i:05d}", **fields) for i in ids)))
    done = cbrq("ingest", "-q", str(dump), "--store", str(store))
    assert done.exit_code == 0, done.output


def refused(result: Result, *words: str) -> str:
    """The error of a command that must fail cleanly (exit 1, one `cbrq: error:` line)."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "cbrq: error: " in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    return result.stderr


@pytest.fixture
def two(tmp_path: Path) -> Path:
    """A store of two commits: 300 backups, then 20 more (a second segment in g000002)."""
    store = tmp_path / "inv"
    ingest(store, tmp_path, "a.json", range(300))
    ingest(store, tmp_path, "b.json", range(300, 320))
    return store


def without_manifest(store: Path) -> dict[str, str]:
    return {k: v for k, v in snapshot(store).items() if k != "manifest.json"}


# --- 1. a write never destroys a store ------------------------------------------------


def test_a_lost_manifest_is_refused_then_repaired(two: Path, tmp_path: Path) -> None:
    (two / "manifest.json").unlink()
    before = snapshot(two)
    dump = tmp_path / "c.json"
    dump.write_text(page(backup("new")))
    error = refused(
        cbrq("ingest", str(dump), "--store", str(two)),
        "has no manifest.json, yet g000001, g000002 hold committed generations",
        "nothing was written",
        "cbrq check --repair --store",
    )
    assert "Traceback" not in error
    assert snapshot(two) == before  # not one file removed or added
    for command in ("compact", "count", "check"):  # not "no inventory here, run cbrq ingest"
        refused(cbrq(command, "--store", str(two)), "a lost manifest", "cbrq check --repair")
    assert snapshot(two) == before
    repaired = cbrq("check", "--repair", "--store", str(two))
    assert repaired.exit_code == 0, repaired.output
    assert "restored generation 2 from g000002/manifest.json" in repaired.stderr
    assert Inventory.open(two).count() == 320
    assert cbrq("ingest", "-q", str(dump), "--store", str(two)).exit_code == 0
    assert Inventory.open(two).count() == 321


def test_a_lost_manifest_of_a_store_without_copies_is_refused(two: Path, tmp_path: Path) -> None:
    for name in ("g000001", "g000002"):
        (two / name / "manifest.json").unlink()  # as written by a cbrq before the copies
    (two / "manifest.json").unlink()
    before = snapshot(two)
    dump = tmp_path / "c.json"
    dump.write_text(page(backup("new")))
    refused(cbrq("ingest", str(dump), "--store", str(two)), "g000001, g000002 hold committed")
    assert snapshot(two) == before


def test_an_unreadable_manifest_is_refused_then_repaired(two: Path, tmp_path: Path) -> None:
    (two / "manifest.json").write_bytes(b'{"format": "cbrq-inventory", "vers')  # cut short
    before = snapshot(two)
    dump = tmp_path / "c.json"
    dump.write_text(page(backup("new")))
    refused(
        cbrq("ingest", str(dump), "--store", str(two)),
        "manifest.json: unreadable manifest",
        "cbrq check --repair",
    )
    assert snapshot(two) == before
    repaired = cbrq("check", "--repair", "--store", str(two))
    assert "restored generation 2" in repaired.stderr, repaired.output
    assert Inventory.open(two).count() == 320


def test_an_older_manifest_restored_is_refused(two: Path, tmp_path: Path) -> None:
    old = (two / "g000002" / "manifest.json").read_text()
    ingest(two, tmp_path, "c.json", range(320, 330))  # g000003
    newest = read_manifest(two).generation
    (two / "manifest.json").write_text(old)  # a restore from yesterday's backup
    before = snapshot(two)
    dump = tmp_path / "d.json"
    dump.write_text(page(backup("late")))
    refused(
        cbrq("ingest", str(dump), "--store", str(two)),
        f"manifest.json is generation 2, yet g{newest:06d} were committed after it",
    )
    assert snapshot(two) == before
    repaired = cbrq("check", "--repair", "--store", str(two))
    assert f"restored generation {newest}" in repaired.stderr, repaired.output
    assert Inventory.open(two).count() == 330


def test_repair_names_the_generations_it_could_not_use(two: Path) -> None:
    (two / "manifest.json").unlink()
    damaged = two / "g000002" / "backups-00000.parquet"
    damaged.write_bytes(damaged.read_bytes()[:-100])
    repaired = cbrq("check", "--repair", "--store", str(two))
    assert "restored generation 1 from g000001/manifest.json" in repaired.stderr, repaired.output
    assert "could not use g000002" in repaired.stderr
    assert "g000002/backups-00000.parquet" in repaired.stderr
    assert repaired.exit_code == 0, repaired.output
    assert Inventory.open(two).count() == 300  # what generation 1 held


def test_repair_leaves_directories_it_did_not_make_where_they_are(
    two: Path, tmp_path: Path
) -> None:
    ingest(two, tmp_path, "c.json", range(320, 330))  # g000003
    (two / "g000003" / "backups-00000.parquet").write_bytes(b"damaged")
    mine = two / "g000007"
    mine.mkdir()
    (mine / "notes.txt").write_text("kept")
    (two / "manifest.json").unlink()
    repaired = cbrq("check", "--repair", "--store", str(two))
    assert "restored generation 2" in repaired.stderr, repaired.output
    assert "moved aside to unusable-g000003" in repaired.stderr
    assert (mine / "notes.txt").read_text() == "kept"  # not moved, not named
    assert "g000007" not in repaired.stderr
    assert (two / "unusable-g000003" / "manifest.json").exists()  # kept for the user
    assert Inventory.open(two).count() == 320


def test_repair_of_a_store_without_copies_refuses_rather_than_guess(two: Path) -> None:
    for name in ("g000001", "g000002"):
        (two / name / "manifest.json").unlink()  # as a store of an older cbrq
    (two / "manifest.json").unlink()
    before = snapshot(two)
    refused(
        cbrq("check", "--repair", "--store", str(two)),
        "no intact generation",
        "the backups table's files are in g000001, g000002",
    )
    assert snapshot(two) == before


def test_repair_rebuilds_an_unambiguous_store_without_copies(tmp_path: Path) -> None:
    store = tmp_path / "inv"
    ingest(store, tmp_path, "a.json", range(40))  # every table in g000001
    (store / "g000001" / "manifest.json").unlink()  # as a store of an older cbrq
    (store / "manifest.json").unlink()
    repaired = cbrq("check", "--repair", "--store", str(store))
    assert repaired.exit_code == 0, repaired.output
    assert "rebuilt manifest.json from the files of g000001" in repaired.stderr
    assert Inventory.open(store).count() == 40


def test_a_user_file_in_a_generation_directory_blocks_nothing(two: Path, tmp_path: Path) -> None:
    mine = two / "g000003"  # the name the next commit would take
    mine.mkdir()
    (mine / "notes.txt").write_text("kept")
    ingest(two, tmp_path, "c.json", range(320, 325))
    ingest(two, tmp_path, "d.json", range(325, 330))
    assert (mine / "notes.txt").read_text() == "kept"
    assert Inventory.open(two).count() == 330
    assert "g000003" not in read_manifest(two).referenced()
    checked = cbrq("check", "--store", str(two))
    assert checked.exit_code == 0, checked.output
    assert "notice: " in checked.stdout and "g000003: holds files cbrq does not write" in (
        checked.stdout
    )


def test_a_crashed_write_is_still_cleaned_up(two: Path, tmp_path: Path) -> None:
    leftover = two / "g000003"
    shutil.copytree(two / "g000002", leftover)  # as a write killed before its commit
    (leftover / "manifest.json").unlink(missing_ok=True)
    (leftover / ".writing").touch()
    (leftover / "parts").mkdir()
    ingest(two, tmp_path, "c.json", range(320, 321))
    assert Inventory.open(two).count() == 321
    assert not (two / "g000003").exists() or "g000003" in read_manifest(two).referenced()


def test_compact_of_a_path_without_an_inventory_makes_nothing(tmp_path: Path) -> None:
    refused(cbrq("compact", "--store", str(tmp_path / "typo")), "no inventory here")
    assert not (tmp_path / "typo").exists()


def test_a_compact_with_nothing_to_do_writes_nothing(two: Path) -> None:
    assert cbrq("compact", "--store", str(two)).exit_code == 0
    before = snapshot(two)
    again = cbrq("compact", "--store", str(two))
    assert again.exit_code == 0, again.output
    assert "nothing to compact" in again.stderr
    assert snapshot(two) == before


# --- 2. the manifest is checked key by key --------------------------------------------


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda m: m.pop("generation"), "'generation' is missing"),
        (lambda m: m.update(generation="7"), "'generation' is \"7\""),
        (lambda m: m.pop("files"), "'files' is missing"),
        (lambda m: m.update(files=[{}]), "files[0] is {}"),
        (lambda m: m.update(counts=[1]), "'counts' is [1]"),
        (lambda m: m.update(counts={"backups": "x"}), "'counts.backups' is \"x\""),
        (lambda m: m.pop("tables"), "'tables' is missing"),
        (lambda m: m.update(dead={"backups": 3}), "dead.backups is 3"),
        (lambda m: m.update(rows={"backups": "1"}), "'rows.backups' is \"1\""),
        (lambda m: m.update(quarantine=["x"]), "'quarantine' is [\"x\"]"),
        (lambda m: m["checksums"].update(x={"size": 1}), "checksums.x is"),
        (lambda m: m["tables"].update(backups=["../../etc/passwd"]), "a file inside the store"),
    ],
)
def test_a_manifest_with_a_missing_or_mistyped_key_names_it(
    two: Path, change: Any, key: str
) -> None:
    manifest = json.loads((two / "manifest.json").read_text())
    change(manifest)
    (two / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match=r"manifest\.json: "):
        read_manifest(two)
    for command in (["count"], ["info"], ["export"], ["check"]):
        error = refused(cbrq(*command, "--store", str(two)), "manifest.json: ", key)
        assert "Traceback" not in error


# --- 3. cbrq check ----------------------------------------------------------------------


def flip(path: Path, at: float = 0.5, count: int = 8) -> None:
    """Invert ``count`` bytes at the relative place ``at`` of a file."""
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    for i in range(start, start + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_check_of_an_intact_store(two: Path) -> None:
    checked = cbrq("check", "--store", str(two))
    assert checked.exit_code == 0, checked.output
    assert "size and SHA-256 of each of the" in checked.stdout
    assert "ok: the inventory verifies" in checked.stdout
    every = read_manifest(two)
    assert set(every.checksums) == set(every.listed())


@pytest.mark.parametrize("damage", ["flip", "truncate", "remove"])
def test_check_names_each_damaged_file(two: Path, damage: str) -> None:
    target = two / "g000001" / "backups-00000.parquet"
    if damage == "flip":
        flip(target)
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:1000])
    else:
        target.unlink()
    flip(two / "g000002" / "backups-00000.parquet", at=0.3)
    checked = cbrq("check", "--store", str(two))
    refused(checked, "2 problem(s) found")
    lines = [line for line in checked.stdout.splitlines() if line.startswith("damaged: ")]
    assert [line.split(": ")[1] for line in lines] == [
        str(two / "g000001" / "backups-00000.parquet"),
        str(two / "g000002" / "backups-00000.parquet"),
    ]
    expected = {"flip": "checksum mismatch", "truncate": "the commit wrote", "remove": "missing"}
    assert expected[damage] in lines[0]


def older(store: Path) -> None:
    """Make ``store`` look written by a cbrq before checksums: no checksums, no copies."""
    manifest = json.loads((store / "manifest.json").read_text())
    del manifest["checksums"]
    (store / "manifest.json").write_text(json.dumps(manifest))


def test_check_of_a_store_without_checksums_verifies_what_it_can(two: Path, tmp_path: Path) -> None:
    ingest(two, tmp_path, "a2.json", range(10), updated_at="2031-01-01T00:00:00Z")  # a dead file
    older(two)
    checked = cbrq("check", "--store", str(two))
    assert checked.exit_code == 0, checked.output
    assert "no checksums recorded (written by an older cbrq)" in checked.stdout
    manifest = json.loads((two / "manifest.json").read_text())
    manifest["rows"]["backups"][0] += 1
    manifest["superseded"]["backups"] += 1
    (two / "manifest.json").write_text(json.dumps(manifest))
    checked = cbrq("check", "--store", str(two))
    refused(checked)
    assert "rows per segment, the manifest says" in checked.stdout
    assert "superseded rows, the manifest says 11" in checked.stdout


def test_page_checksums_catch_a_flip_without_a_recorded_checksum(two: Path) -> None:
    target = two / "g000001" / "backups-00000.parquet"
    assert pq.ParquetFile(target).metadata.num_row_groups >= 1
    older(two)
    flip(target, at=0.4, count=1)
    checked = cbrq("check", "--store", str(two))
    refused(checked)
    assert f"damaged: {target}: does not decode" in checked.stdout


# --- 4. reads name the damaged file -------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["export"],
        ["query", "-f", "ndjson"],
        ["count", "status=available"],
        ["stats"],
        ["rpo"],
        ["info"],
    ],
)
@pytest.mark.parametrize("damage", ["truncate", "remove"])
def test_reads_of_a_missing_or_truncated_file_name_it(
    two: Path, command: list[str], damage: str
) -> None:
    target = two / "g000001" / "backups-00000.parquet"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:-1])
    else:
        target.unlink()
    error = refused(cbrq(*command, "--store", str(two)), f"{target}: damaged (", "cbrq check")
    assert "Traceback" not in error


def test_export_catches_a_flipped_bit_by_its_checksum(two: Path) -> None:
    target = two / "g000001" / "backups-00000.parquet"
    flip(target, count=1)
    refused(cbrq("export", "--store", str(two)), f"{target}: damaged (checksum mismatch")


@pytest.mark.parametrize("at", [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 0.999])
def test_every_single_bit_flip_stops_an_export(two: Path, at: float) -> None:
    intact = cbrq("export", "--store", str(two))
    assert intact.exit_code == 0, intact.output
    target = two / "g000001" / "backups-00000.parquet"
    data = bytearray(target.read_bytes())
    data[int(len(data) * at)] ^= 0x10
    target.write_bytes(bytes(data))
    again = cbrq("export", "--store", str(two))
    # Every flip is caught by the checksum (on main: 2 of these 8 exported other rows).
    refused(again, f"{target}: damaged (checksum mismatch")
    assert again.stdout != intact.stdout and not again.stdout


def test_a_file_that_does_not_decode_is_named_not_a_traceback(two: Path) -> None:
    older(two)  # no checksum to compare: the decoder's failure is what tells
    target = two / "g000001" / "backups-00000.parquet"
    flip(target, at=0.5, count=4000)
    error = refused(cbrq("query", "-f", "ndjson", "--store", str(two)), f"{target}: damaged (")
    assert "Traceback" not in error


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_a_decoder_failure_is_named_whatever_the_engine(two: Path, engine: str) -> None:
    older(two)  # no recorded size: the decoder is the first to notice
    target = two / "g000001" / "backups-00000.parquet"
    target.write_bytes(target.read_bytes()[:-500])
    error = refused(
        cbrq("count", "status=available", "--engine", engine, "--store", str(two)),
        f"{target}: damaged (does not decode",
    )
    assert "Traceback" not in error


def test_serve_of_a_damaged_store_names_the_file(two: Path) -> None:
    older(two)
    target = two / "g000001" / "backups-00000.parquet"
    target.write_bytes(target.read_bytes()[:-500])
    # It stops before it binds; were it to serve, the timeout stops it (and the test fails).
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "serve", "--store", str(two), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert f"cbrq: error: {target}: damaged (does not decode" in done.stderr
    assert "Traceback" not in done.stderr


def test_compact_refuses_to_rewrite_a_damaged_store(two: Path) -> None:
    flip(two / "g000001" / "backups-00000.parquet", count=1)
    before = snapshot(two)
    refused(
        cbrq("compact", "--store", str(two)),
        "g000001/backups-00000.parquet: damaged (checksum mismatch",
        "not compacted",
    )
    assert snapshot(two) == before
