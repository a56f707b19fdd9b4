"""`cbrq query`, `count` and `explain` through click's CliRunner: exit status, then output."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from engine.cli import main
from tests.conftest import SAMPLE
from tests.golden.cases import load_store

P1 = "3cbb7daa64c184fa48a7c8252abc5619"


@pytest.fixture(scope="module")
def store() -> str:
    return str(load_store())


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_json_is_the_api_response(store: str) -> None:
    code, out, _ = run(
        "query", "status=error&sort=name:asc&limit=3", "--store", store, "-f", "json"
    )
    assert code == 0
    body = json.loads(out)
    assert set(body) == {"count", "backups", "offset", "limit"}
    assert (body["count"], body["offset"], body["limit"], len(body["backups"])) == (22, 0, 3, 3)
    names = [b["name"] for b in body["backups"]]
    assert names == sorted(names)
    assert all(b["status"] == "error" for b in body["backups"])


def test_without_limit_every_match_and_null_limit(store: str) -> None:
    code, out, _ = run("query", "--store", store, "-p", "status=error", "-f", "json")
    body = json.loads(out)
    assert code == 0 and body["limit"] is None and len(body["backups"]) == body["count"] == 22


def test_query_string_and_params_merge(store: str) -> None:
    code, out, _ = run(
        "query",
        "status=error",
        "-p",
        "status=available",
        "-p",
        "limit=1",
        "--store",
        store,
        "-f",
        "json",
    )
    assert code == 0 and json.loads(out)["count"] == 243


def test_ndjson_csv_parquet_table(store: str, tmp_path: Path) -> None:
    code, out, _ = run("query", "limit=4&sort=id:asc", "--store", store, "-f", "ndjson")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 4
    ids = [json.loads(x)["id"] for x in lines]
    assert ids == sorted(ids)
    code, out, _ = run("query", "limit=4&sort=id:asc", "--store", store, "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["id"] for r in rows] == ids
    assert rows[0]["created_at"].count(":") == 2 and "T" in rows[0]["created_at"]
    json.loads(rows[0]["extend_info"])  # nested values are JSON text
    target = tmp_path / "page.parquet"
    code, _, _ = run(
        "query", "limit=4&sort=id:asc", "--store", store, "-f", "parquet", "-o", str(target)
    )
    assert code == 0 and pl.read_parquet(target)["id"].to_list() == ids
    code, out, _ = run("query", "limit=2&sort=id:asc", "--store", store, "-f", "table")
    assert code == 0 and ids[0][:8] in out and "count 302; showing 2 from offset 0" in out


def test_from_dump_files_without_a_store(tmp_path: Path) -> None:
    code, out, _ = run("query", "status=error&limit=1", "--from", str(SAMPLE), "-f", "json")
    assert code == 0 and json.loads(out)["count"] == 22
    code, out, _ = run("count", "own_type=shared", "--from", str(SAMPLE), "--project", P1)
    assert code == 0 and out.strip() == "9"


def test_bad_query_exit_2_message_and_error_body(store: str) -> None:
    code, out, err = run("query", "stauts=error&limit=0", "--store", store, "-f", "json")
    assert code == 2
    assert "stauts='error': unknown parameter; did you mean 'status'?" in err
    assert "limit='0': out of range (allowed: an integer 1-1000)" in err
    body = json.loads(out)
    assert body["error_code"] == "BackupService.9900" and "stauts" in body["error_msg"]
    code, out, err = run("query", "sort=bogus", "--store", store, "-f", "ndjson")
    assert code == 2 and out == "" and "sort='bogus'" in err


def test_missing_store_exit_1(tmp_path: Path) -> None:
    code, _, err = run("query", "--store", str(tmp_path / "none"))
    assert code == 1 and "no inventory here" in err


def test_batch_one_response_per_line_and_bad_lines(store: str) -> None:
    lines = "status=error&limit=1\nlimit=0\n\nsort=name:asc&limit=2\n"
    code, out, err = run("query", "--batch", "-", "--store", store, input=lines)
    assert code == 2 and "1 batch line(s) failed" in err
    answers = [json.loads(x) for x in out.splitlines()]
    assert [a.get("count", a.get("error_code")) for a in answers] == [
        22,
        "BackupService.9900",
        302,
        302,
    ]
    assert len(answers[2]["backups"]) == 302 and len(answers[3]["backups"]) == 2


def test_batch_all_good_exits_0(store: str) -> None:
    code, out, _ = run("query", "--batch", "-", "--store", store, input="limit=1\n")
    assert code == 0 and json.loads(out)["count"] == 302


def test_count_and_explain(store: str) -> None:
    code, out, _ = run("count", "status=error&limit=1", "--store", store)
    assert (code, out.strip()) == (0, "22")
    code, out, _ = run("explain", "status=error&used_percent=80&sort=name:asc", "--store", store)
    assert code == 0
    assert "status is one of error" in out and "at least 80 % used" in out
    assert "sort: name:asc, id:asc (nulls last)" in out and "polars plan:" in out


def test_semantics_options(store: str) -> None:
    code, out, _ = run("count", "name=autobk_1f", "--store", store, "--exact-names")
    assert (code, out.strip()) == (0, "0")
    code, out, _ = run(
        "count", "start_time=2026-09-01T00:00:00Z", "--store", store, "--time-field", "protected_at"
    )
    assert (code, out.strip()) == (0, "14")


@pytest.mark.parametrize(
    "args",
    [
        ["count", "status=error"],
        ["query", "sort=name:asc&limit=3"],
        ["query", "limit=2", "-f", "csv"],
    ],
)
def test_count_and_query_processes_import_neither_pyarrow_nor_numpy(
    store: str, args: list[str]
) -> None:
    # ~0.1-0.14 s of every CLI call at 1M went to importing them (benchmarks/README.md).
    script = (
        "import sys\n"
        "from engine.cli import main\n"
        "try:\n"
        f"    main({[*args, '--store', store]!r})\n"
        "except SystemExit as done:\n"
        "    assert done.code in (0, None), done.code\n"
        "heavy = sorted(m for m in ('pyarrow', 'numpy') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip()
