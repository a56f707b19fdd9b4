"""The analysis commands (stats, rpo, retention, capacity, hygiene, diff) as a user runs them.

Through click's CliRunner: exit status first, then the output. What the rows
hold is checked against the reference model elsewhere
(tests/test_analyses_model.py); here: formats, ``at``, errors, ``--fail-on``
and ``-o``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from engine.cli import main
from tests.conftest import REPO, SAMPLE
from tests.golden.cases import load_store

#: The newest updated_at of sample_data: the default ``at``.
SAMPLE_AT = "2026-11-07T08:33:40.775000"
ROW_KEYS = {
    "stats": ["status", "backups", "size_gb", "first", "last"],
    "rpo": [
        "resource_id",
        "vault_id",
        "resource_name",
        "resource_type",
        "backups",
        "last_good",
        "age_seconds",
        "verdict",
    ],
    "retention": [
        "id",
        "finding",
        "name",
        "status",
        "created_at",
        "expired_at",
        "updated_at",
        "resource_id",
    ],
    "capacity": [
        "id",
        "name",
        "size_gb",
        "used_mb",
        "used_percent",
        "threshold",
        "full",
        "backups",
        "resources",
    ],
}
ROW_KEYS["hygiene"] = ROW_KEYS["retention"]
# SPEC §5's keys, then those issue 23 added (the record's names, each change's old and new).
DIFF_KEYS = ["kind", "change", "id", "fields", "used_mb_delta", "name", "resource_name", "changes"]
ANALYSES = sorted(ROW_KEYS)


@pytest.fixture(scope="module")
def store() -> str:
    return str(load_store())


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", ANALYSES)
def test_json_states_at_and_rows_with_spec_keys(store: str, name: str) -> None:
    code, out, err = run(name, "--store", store, "-f", "json")
    assert code == 0, err
    body = json.loads(out)
    assert list(body) == ["at", "rows"]
    assert body["at"] == SAMPLE_AT
    assert body["rows"]
    assert all(list(row) == ROW_KEYS[name] for row in body["rows"])


@pytest.mark.parametrize("name", ANALYSES)
def test_json_is_the_default_off_a_terminal(store: str, name: str) -> None:
    code, out, _ = run(name, "--store", store)
    assert code == 0
    assert json.loads(out)["at"] == SAMPLE_AT


@pytest.mark.parametrize("name", ANALYSES)
def test_ndjson_puts_at_first_in_every_row(store: str, name: str) -> None:
    code, out, _ = run(name, "--store", store, "-f", "ndjson")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    _, whole, _ = run(name, "--store", store, "-f", "json")
    assert [{k: v for k, v in line.items() if k != "at"} for line in lines] == json.loads(whole)[
        "rows"
    ]
    assert all(next(iter(line)) == "at" and line["at"] == SAMPLE_AT for line in lines)


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_csv_and_tsv_hold_the_rows_only(store: str, fmt: str) -> None:
    code, out, _ = run("rpo", "--store", store, "-f", fmt)
    assert code == 0
    rows = list(csv.reader(io.StringIO(out), delimiter="," if fmt == "csv" else "\t"))
    assert rows[0] == ROW_KEYS["rpo"]
    _, whole, _ = run("rpo", "--store", store, "-f", "json")
    expected = json.loads(whole)["rows"]
    assert len(rows) - 1 == len(expected)
    assert rows[1][0] == expected[0]["resource_id"]
    assert rows[1][5] == expected[0]["last_good"]  # instants in the API's form


def test_parquet_to_a_file_keeps_types(store: str, tmp_path: Path) -> None:
    target = tmp_path / "capacity.parquet"
    code, out, _ = run("capacity", "--store", store, "-f", "parquet", "-o", str(target))
    assert (code, out) == (0, "")
    frame = pl.read_parquet(target)
    assert frame.columns == ROW_KEYS["capacity"]
    assert frame.schema["full"] == pl.Boolean and frame.schema["used_percent"] == pl.Float64


def test_table_ends_with_the_row_count_and_at(store: str) -> None:
    code, out, _ = run("stats", "--store", store, "-f", "table", "--by", "status,month")
    assert code == 0
    header = out.splitlines()[1]
    assert all(word in header for word in ("status", "month", "backups", "size_gb"))
    _, whole, _ = run("stats", "--store", store, "-f", "json", "--by", "status,month")
    count = len(json.loads(whole)["rows"])
    assert f"{count} rows; at {SAMPLE_AT}" in out


def test_output_file_gets_the_answer_and_stdout_nothing(store: str, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    code, out, _ = run("hygiene", "--store", store, "-f", "json", "-o", str(target))
    assert (code, out) == (0, "")
    assert json.loads(target.read_text())["at"] == SAMPLE_AT


def test_from_dumps_gives_the_same_answer_as_the_store(store: str) -> None:
    from_store = run("retention", "--store", store, "-f", "json")
    from_dumps = run("retention", "--from", str(SAMPLE), "-f", "json")
    assert from_store == from_dumps


def test_filter_narrows_the_backups(store: str) -> None:
    code, out, _ = run("stats", "status=error", "--store", store, "-f", "json")
    assert code == 0
    rows = json.loads(out)["rows"]
    assert [row["status"] for row in rows] == ["error"]
    assert rows[0]["backups"] == 22


def test_vault_id_in_the_filter_lists_that_vault_only(store: str) -> None:
    _, out, _ = run("capacity", "--store", store, "-f", "json")
    vault = json.loads(out)["rows"][-1]
    code, out, _ = run("capacity", "-p", f"vault_id={vault['id']}", "--store", store, "-f", "json")
    assert code == 0
    assert json.loads(out)["rows"] == [vault]


def test_group_keys_come_first_in_the_order_given(store: str) -> None:
    code, out, _ = run("stats", "--store", store, "-f", "json", "--by", "week,resource_type")
    assert code == 0
    rows = json.loads(out)["rows"]
    assert list(rows[0])[:2] == ["week", "resource_type"]
    assert all(datetime.fromisoformat(row["week"]).weekday() == 0 for row in rows)
    assert sum(row["backups"] for row in rows) == 302


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["capacity"], 3),  # sample vaults are over their threshold
        (["rpo", "--max-age", "1m"], 3),
        (["rpo", "--max-age", "36500d"], 0),  # nothing that has a good backup is too old
        (["retention", "--min-days", "35"], 3),
        (["retention", "--min-days", "0"], 0),
    ],
)
def test_fail_on_exits_3_after_writing_when_a_row_has_the_verdict(
    store: str, args: list[str], code: int
) -> None:
    verdict = {"capacity": "full", "rpo": "breach", "retention": "short"}[args[0]]
    result, out, _ = run(*args, "--store", store, "-f", "json", "--fail-on", verdict)
    assert result == code
    assert json.loads(out)["at"] == SAMPLE_AT  # the output is written either way
    plain, _, _ = run(*args, "--store", store, "-f", "json")
    assert plain == 0  # without --fail-on the same analysis exits 0


def test_fail_on_takes_only_its_commands_verdict(store: str) -> None:
    code, _, err = run("rpo", "--store", store, "--fail-on", "full")
    assert code == 2
    assert "cbrq: error:" in err and "breach" in err


@pytest.mark.parametrize("bad", ["24", "1.5h", "1y", "h", "-3d", "24 hours"])
def test_bad_duration_names_the_option_and_the_forms(store: str, bad: str) -> None:
    code, out, err = run("rpo", "--store", store, "--max-age", bad)
    assert (code, out) == (2, "")
    assert err.startswith("cbrq: error:")
    assert "--max-age" in err and repr(bad) in err and "90m, 24h, 7d" in err


@pytest.mark.parametrize(
    ("text", "seconds"), [("90m", 5400), ("24h", 86400), ("7d", 604800), ("2w", 1_209_600)]
)
def test_durations_set_the_breach_line(store: str, text: str, seconds: int) -> None:
    code, out, _ = run("rpo", "--store", store, "--max-age", text, "-f", "json")
    assert code == 0
    for row in json.loads(out)["rows"]:
        if row["verdict"] != "never":
            assert (row["verdict"] == "breach") == (row["age_seconds"] > seconds)


def test_unknown_and_repeated_group_keys_are_one_error(store: str) -> None:
    code, _, err = run("stats", "--store", store, "--by", "status,colour,status")
    assert code == 2
    assert "'colour'" in err and "given twice" in err and "resource_az" in err


@pytest.mark.parametrize("name", [*ANALYSES])
def test_paging_and_sort_in_the_filter_are_errors_with_the_others(store: str, name: str) -> None:
    query = "marker=x&offset=1&limit=5&sort=name:asc&status=availble"
    code, out, err = run(name, query, "--store", store)
    assert (code, out) == (2, "")
    for word in ("marker", "offset", "limit", "sort", "did you mean 'available'"):
        assert word in err


def test_at_now_is_stated(store: str) -> None:
    before = datetime.now(UTC).replace(tzinfo=None)
    code, out, _ = run("retention", "--store", store, "--at", "now", "-f", "json")
    after = datetime.now(UTC).replace(tzinfo=None)
    assert code == 0
    assert before <= datetime.fromisoformat(json.loads(out)["at"]) <= after


def test_at_with_an_offset_is_stated_in_utc(store: str) -> None:
    code, out, _ = run("hygiene", "--store", store, "--at", "2026-01-01T08:00:00+08:00")
    assert code == 0
    assert json.loads(out)["at"] == "2026-01-01T00:00:00.000000"


def test_an_earlier_at_finds_fewer_overdue_backups(store: str) -> None:
    def overdue(at: str) -> int:
        _, out, _ = run("retention", "--store", store, "--at", at, "-f", "json")
        return sum(row["finding"] == "overdue" for row in json.loads(out)["rows"])

    assert 0 < overdue("2026-01-01T00:00:00Z") < overdue(SAMPLE_AT)


def test_bad_at_is_an_error(store: str) -> None:
    code, _, err = run("rpo", "--store", store, "--at", "last tuesday")
    assert code == 2
    assert "--at='last tuesday'" in err
    assert all(form in err for form in ("now", "yesterday", "YYYY-MM-DD", "-7d", "now-24h"))


def test_missing_store_exits_1(tmp_path: Path) -> None:
    code, _, err = run("capacity", "--store", str(tmp_path / "nothing"))
    assert code == 1
    assert "no inventory here" in err


def test_bad_dump_exits_1_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "backups.json"
    bad.write_text('{"backups": [')
    code, _, err = run("stats", "--from", str(bad))
    assert code == 1
    assert str(bad) in err


def test_store_and_from_together_is_bad_usage(store: str) -> None:
    code, _, err = run("stats", "--store", store, "--from", str(SAMPLE))
    assert code == 2
    assert "--store or --from" in err


def test_parquet_to_a_pipe_is_written(store: str) -> None:
    result = CliRunner().invoke(main, ["stats", "--store", store, "-f", "parquet"])
    assert result.exit_code == 0  # CliRunner's stdout is a pipe, not a terminal
    assert pl.read_parquet(io.BytesIO(result.stdout_bytes)).columns == ROW_KEYS["stats"]


# --- diff ---------------------------------------------------------------------

PARTS = sorted(str(p) for p in (SAMPLE / "dumps").iterdir())


def test_diff_of_an_inventory_with_itself_is_empty(store: str) -> None:
    code, out, _ = run("diff", store, str(SAMPLE), "-f", "json")
    assert code == 0
    assert json.loads(out) == {"at": SAMPLE_AT, "rows": []}


def test_diff_rows_added_and_removed(tmp_path: Path) -> None:
    code, out, _ = run("diff", PARTS[0], PARTS[1], "-f", "json")
    assert code == 0
    rows = json.loads(out)["rows"]
    assert rows and all(list(row) == DIFF_KEYS for row in rows)
    assert {(r["kind"], r["change"]) for r in rows} == {
        ("backup", "added"),
        ("backup", "removed"),
        ("vault", "added"),
        ("vault", "removed"),
    }
    order = [(r["kind"] == "vault", r["change"] == "removed", r["id"]) for r in rows]
    assert order == sorted(order)
    swapped = json.loads(run("diff", PARTS[1], PARTS[0], "-f", "json")[1])["rows"]
    flip = {"added": "removed", "removed": "added"}
    assert sorted((r["kind"], flip[r["change"]], r["id"]) for r in rows) == sorted(
        (r["kind"], r["change"], r["id"]) for r in swapped
    )


def test_diff_names_the_changed_fields_and_the_vault_growth(tmp_path: Path) -> None:
    before, after = tmp_path / "a", tmp_path / "b"
    vault = {"id": "v1", "name": "v", "billing": {"size": 100, "used": 1000}, "threshold": 80}
    backup = {
        "id": "b1",
        "name": "x",
        "status": "available",
        "created_at": "2026-01-01T00:00:00.000000",
        "updated_at": "2026-01-01T00:00:00.000000",
        "vault_id": "v1",
        "resource_size": 40,
        "tags": {"n": 1, "gone": None},
    }
    moved = {
        **backup,
        "status": "error",
        "created_at": "2026-01-01T08:00:00+08:00",  # the same instant, another form
        "tags": {"n": 1.0},  # the same number; an absent key is null
        "updated_at": "2026-01-02T00:00:00.000000",
    }
    grown = {**vault, "billing": {"used": 1500.5, "size": 100}}
    for folder, b, v in ((before, backup, vault), (after, moved, grown)):
        folder.mkdir()
        (folder / "backups.json").write_text(json.dumps({"count": 1, "backups": [b]}))
        (folder / "vaults.json").write_text(json.dumps({"count": 1, "vaults": [v]}))
    code, out, _ = run("diff", str(before), str(after), "-f", "json")
    assert code == 0
    assert json.loads(out) == {
        "at": "2026-01-02T00:00:00.000000",
        "rows": [
            {
                "kind": "backup",
                "change": "changed",
                "id": "b1",
                "fields": ["status", "updated_at"],
                "used_mb_delta": None,
                "name": "x",
                "resource_name": None,
                "changes": {
                    "status": ["available", "error"],
                    "updated_at": ["2026-01-01T00:00:00.000000", "2026-01-02T00:00:00.000000"],
                },
            },
            {
                "kind": "vault",
                "change": "changed",
                "id": "v1",
                "fields": ["billing"],
                "used_mb_delta": 500.5,
                "name": "v",
                "resource_name": None,
                "changes": {
                    "billing": [{"size": 100, "used": 1000}, {"used": 1500.5, "size": 100}],
                    "billing.used": [1000, 1500.5],
                },
            },
        ],
    }


def test_diff_table_shows_the_counts_first(tmp_path: Path) -> None:
    code, out, _ = run("diff", PARTS[0], PARTS[1], "-f", "table")
    assert code == 0
    _, whole, _ = run("diff", PARTS[0], PARTS[1], "-f", "json")
    rows = json.loads(whole)["rows"]
    added = sum(r["kind"] == "backup" and r["change"] == "added" for r in rows)
    counts = out[: out.index("fields")]
    assert "count" in counts and f"│ backup │ added   │ {added}" in counts
    assert f"{len(rows)} rows; at" in out


def test_diff_of_a_missing_side_exits_1(tmp_path: Path) -> None:
    code, _, err = run("diff", str(SAMPLE), str(tmp_path / "gone"))
    assert code == 1
    assert "gone" in err


# --- the README ---------------------------------------------------------------


def readme_examples() -> list[tuple[str, str]]:
    """(command, output) of each unpiped example of the README's analysis commands."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Analysing an inventory", 1)[1].split("### `cbrq report", 1)[0]
    found = []
    for block in re.findall(r"```console\n(.*?)```", section, re.S):
        for example in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, output = example.partition("\n")
            if "|" not in command and ";" not in command:
                found.append((command, output))
    return found


@pytest.mark.parametrize(("command", "output"), readme_examples())
def test_readme_example_output_is_real(store: str, command: str, output: str) -> None:
    args = shlex.split(command)[1:]
    args = [store if a == "scratch/inv" else a for a in args]  # the README's store
    if "-f" not in args:
        args += ["-f", "table"]  # what a terminal gets; CliRunner's stdout is a pipe
    code, out, _ = run(*args)
    assert code == 0
    assert out == output


def test_fields_choose_the_columns_of_every_format() -> None:
    base = ["capacity", "--from", str(SAMPLE / "dumps"), "--fields", "used_percent,id"]
    runner = CliRunner()
    rows = json.loads(runner.invoke(main, [*base, "-f", "json"]).output)["rows"]
    assert rows and all(list(row) == ["used_percent", "id"] for row in rows)
    assert runner.invoke(main, [*base, "-f", "csv"]).output.splitlines()[0] == "used_percent,id"
    table = runner.invoke(main, [*base, "-f", "table"]).output
    assert "used_percent" in table and "threshold" not in table
    bad = runner.invoke(main, ["capacity", "--from", str(SAMPLE / "dumps"), "--fields", "ful"])
    assert bad.exit_code == 2 and "did you mean 'full'?" in bad.stderr
    # --fail-on judges the whole rows, whatever --fields keeps.
    whole = runner.invoke(main, [*base[:3], "--fail-on", "full", "-f", "json"])
    cut = runner.invoke(main, [*base, "--fail-on", "full", "-f", "json"])
    assert cut.exit_code == whole.exit_code == 3


@pytest.mark.parametrize(
    "args",
    [
        ["retention", "--min-days", "1000000000"],
        ["hygiene", "--stuck-hours", "999999999"],
        ["rpo", "--max-age", "36501d"],
    ],
)
def test_spans_past_a_century_are_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(main, [*args, "--from", str(SAMPLE / "dumps")])
    assert result.exit_code == 2 and result.stderr.startswith("cbrq: error: ")


def test_an_at_near_year_one_finds_nothing_stuck() -> None:
    args = ["hygiene", "--from", str(SAMPLE / "dumps"), "--at", "0001-01-01T05:00:00Z"]
    result = CliRunner().invoke(main, [*args, "--stuck-hours", "10", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert all(row["finding"] != "stuck" for row in json.loads(result.output)["rows"])
