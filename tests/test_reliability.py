"""Regressions of the fault-injection campaign (issue 12): each case failed before its fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.errors import QueryError
from engine.inventory import Inventory
from engine.params import parse_paging
from tests.conftest import SAMPLE, snapshot
from tests.records import backup, page

HUGE = "9" * 5000


def _cbrq(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run cbrq in its own process, so that a native crash shows as a signal, not a dead suite."""
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


# --- 1. a null record never reaches Arrow's JSON reader ---------------------------

NULLS = [
    '{"backups":[null]}',
    '{"vaults":[null]}',
    '{"members":[null]}',
    '{"backup":null}',
    '{"backups":[null,' + json.dumps(backup("a")) + "]}",
    '{"backups":[' + json.dumps(backup("a")) + ",null]}",
    json.dumps(backup("a")) + "\nnull\n",
    json.dumps(backup("a")) + '\n"text"\n',
]


@pytest.mark.parametrize("content", NULLS, ids=range(len(NULLS)))
def test_null_record_is_an_error_not_a_crash(tmp_path: Path, content: str) -> None:
    dump = tmp_path / "n.json"
    dump.write_text(content)
    store = tmp_path / "s"
    strict = _cbrq("ingest", str(dump), "--store", str(store))
    assert strict.returncode == 1, strict.stderr
    assert "expected a JSON object" in strict.stderr and "Traceback" not in strict.stderr
    assert snapshot(store) == {}
    lenient = _cbrq("ingest", "--lenient", str(dump), "--store", str(store))
    assert lenient.returncode == 0, lenient.stderr
    good = content.count('"id"')
    assert Inventory.open(store).count() == good
    assert "quarantined: 1" in lenient.stderr


# --- 2. huge integers are the API's 400, in every entry point -----------------------

HUGE_QUERIES = [
    ("offset=9223372036854775808&limit=1", "offset", "0-9223372036854775807"),
    (f"offset={HUGE}", "offset", "0-9223372036854775807"),
    (f"limit={HUGE}", "limit", "1-1000"),
    (f"used_percent={HUGE}", "used_percent", "1-100"),
    (f"limit=000000000000000000000000000000000000000{HUGE}", "limit", "1-1000"),
]


@pytest.mark.parametrize(("query", "name", "allowed"), HUGE_QUERIES, ids=range(5))
def test_huge_integer_is_a_query_error(query: str, name: str, allowed: str) -> None:
    inventory = Inventory.from_dumps([SAMPLE / "dumps"])
    with pytest.raises(QueryError) as caught:
        inventory.query(query)
    assert caught.value.body()["error_code"] == "BackupService.9900"
    assert [p.name for p in caught.value.problems] == [name]
    assert f"allowed: an integer {allowed}" in str(caught.value)
    assert len(str(caught.value)) < 300  # a 5,000-digit value is shortened


def test_largest_offset_is_an_empty_page_with_and_without_marker() -> None:
    inventory = Inventory.from_dumps([SAMPLE / "dumps"])
    top = 2**63 - 1
    plain = inventory.query(f"offset={top}&limit=1")
    assert plain.count == 300 and plain.ids == []
    first = inventory.query("limit=1").ids[0]
    after = inventory.query(f"marker={first}&offset={top}&limit=1")
    assert after.count == 300 and after.ids == []


def test_huge_integers_through_the_cli_and_a_batch_that_goes_on(tmp_path: Path) -> None:
    dumps = str(SAMPLE / "dumps")
    for command in ("query", "count"):
        result = _cbrq(command, "--from", dumps, f"offset={HUGE}")
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and "out of range" in result.stderr
    batch = _cbrq(
        "query", "--from", dumps, "--batch", "-",
        stdin=f"limit=1\noffset={HUGE}\nused_percent={HUGE}\nlimit=2\n",
    )  # fmt: skip
    assert batch.returncode == 2 and "Traceback" not in batch.stderr
    lines = [json.loads(line) for line in batch.stdout.splitlines()]
    assert [len(x["backups"]) if "backups" in x else x["error_code"] for x in lines] == [
        1,
        "BackupService.9900",
        "BackupService.9900",
        2,
    ]


def test_list_vaults_paging_uses_the_same_rules() -> None:
    assert parse_paging("limit=10&offset=20") == (20, 10)
    for bad in (f"offset={HUGE}", "offset=99999999999999999999999", "limit=0", "status=error"):
        with pytest.raises(QueryError):
            parse_paging(bad)


# --- 4. one timestamp grammar: a trailing newline is no timestamp -------------------


def test_trailing_newline_timestamp_strict_and_lenient(tmp_path: Path) -> None:
    dump = tmp_path / "nl.json"
    dump.write_text(page(backup("a", created_at="2026-01-01T00:00:00\n"), backup("b")))
    store = tmp_path / "s"
    strict = CliRunner().invoke(main, ["ingest", str(dump), "--store", str(store)])
    assert strict.exit_code == 1
    assert "record 1: field 'created_at' = \"2026-01-01T00:00:00\\n\"" in strict.stderr
    assert snapshot(store) == {}
    lenient = CliRunner().invoke(main, ["ingest", "--lenient", str(dump), "--store", str(store)])
    assert lenient.exit_code == 0, lenient.output
    assert Inventory.open(store).query("").ids == ["b"]


@pytest.mark.parametrize(
    "value", ["2026-01-01T00:00:00\n", "2026-01-01T00:00:00Z\n", "2026-01-01T00:00:00 "]
)
def test_trailing_whitespace_in_a_time_parameter_is_refused(value: str) -> None:
    inventory = Inventory.from_dumps([SAMPLE / "dumps"])
    with pytest.raises(QueryError, match="start_time"):
        inventory.query({"start_time": value})


# --- 5. a store inside its own input directory is never read as input --------------


def test_store_inside_its_input_directory(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "p1.json").write_text(page(backup("a"), backup("b")))
    first = _cbrq("ingest", ".", cwd=work)
    assert first.returncode == 0, first.stderr
    before = snapshot(work / "cbrq-store")
    for args in ((".",), (".", "--lenient"), ("./**/*.json",)):
        again = _cbrq("ingest", *args, cwd=work)
        assert again.returncode == 0, again.stderr
        assert "quarantined" not in again.stderr
    assert snapshot(work / "cbrq-store") == before  # nothing new to commit
    assert Inventory.open(work / "cbrq-store").count() == 2


def test_cleanup_leaves_directories_cbrq_did_not_make(tmp_path: Path) -> None:
    store = tmp_path / "s"
    dump = tmp_path / "a.json"
    dump.write_text(page(backup("a")))
    assert CliRunner().invoke(main, ["ingest", str(dump), "--store", str(store)]).exit_code == 0
    mine = store / "g000099"
    mine.mkdir()
    (mine / "notes.txt").write_text("kept")
    dump.write_text(page(backup("b")))
    assert CliRunner().invoke(main, ["ingest", str(dump), "--store", str(store)]).exit_code == 0
    assert (mine / "notes.txt").read_text() == "kept"


# --- 3. a batch reader keeps its commit while ingests and compactions go on ---------


def test_batch_reader_across_ingest_and_compaction(tmp_path: Path) -> None:
    store = tmp_path / "s"
    dump = tmp_path / "a.json"
    dump.write_text(page(backup("a"), backup("b")))
    assert CliRunner().invoke(main, ["ingest", str(dump), "--store", str(store)]).exit_code == 0
    reader = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "query", "--batch", "-", "--store", str(store)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert reader.stdin is not None and reader.stdout is not None
    try:
        reader.stdin.write("limit=10\n")
        reader.stdin.flush()
        assert json.loads(reader.stdout.readline())["count"] == 2
        for n in range(3):
            dump.write_text(
                page(backup(f"new{n}"), backup("a", updated_at=f"203{n}-01-01T00:00:00Z"))
            )
            ingested = CliRunner().invoke(main, ["ingest", str(dump), "--store", str(store)])
            assert ingested.exit_code == 0, ingested.output
        assert CliRunner().invoke(main, ["compact", "--store", str(store)]).exit_code == 0
        reader.stdin.write("limit=10\nsort=name:asc&limit=1\n")
        reader.stdin.flush()
        assert json.loads(reader.stdout.readline())["count"] == 2  # still its own commit
        assert json.loads(reader.stdout.readline())["backups"][0]["id"] == "a"
    finally:
        reader.communicate(timeout=60)  # closes stdin, then every pipe
    assert reader.returncode == 0, reader.stderr.read() if reader.stderr else ""
    assert Inventory.open(store).count() == 5
