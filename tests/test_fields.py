"""``--fields``: the chosen fields, nested in JSON and one column per path elsewhere."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.inventory import Inventory
from engine.render.fields import FieldError, Fields
from engine.testing.strategies import Inventory as Generated
from engine.testing.strategies import inventories
from tests.conftest import SAMPLE
from tests.test_flat import as_json_value

DUMPS = str(SAMPLE / "dumps")
QUERY = "status=error&sort=id:asc&limit=5"
PATHS = [
    "id",
    "name",
    "status",
    "created_at",
    "extend_info",
    "extend_info.incremental",
    "extend_info.app_consistency.app_consistency_status",
    "replication_records",
    "replication_records.status",
    "replication_records.created_at",
    "children.id",
    "children.extend_info.bootable",
]


def cbrq(*args: str) -> Any:
    return CliRunner().invoke(main, [*args], prog_name="cbrq")


def pick(value: Any, path: list[str]) -> Any:
    """The value at ``path``, mapping over lists (what a path means, said plainly)."""
    if not path:
        return value
    if value is None:
        return None
    if isinstance(value, list):
        return [pick(v, path) for v in value]
    return pick(value.get(path[0]), path[1:])


def typed_records(folder: str, query: str) -> list[dict[str, Any]]:
    with Inventory.from_dumps(folder) as inv:
        frame = inv.query(query).frame
    return [as_json_value(row) for row in frame.to_dicts()]


@settings(max_examples=max(5, settings.default.max_examples // 4))  # six CLI runs an example
@given(
    inventories(max_backups=6),
    st.lists(st.sampled_from(PATHS), min_size=1, max_size=4, unique=True),
)
def test_every_format_gives_the_values_at_the_paths(generated: Generated, paths: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "b.json").write_text(json.dumps({"count": 0, "backups": generated.backups}))
        expected = [
            [pick(row, p.split(".")) for p in paths] for row in typed_records(folder, "sort=id:asc")
        ]
        chosen = ",".join(paths)
        base = ["query", "sort=id:asc", "--from", folder, "--fields", chosen]
        records = json.loads(cbrq(*base, "-f", "json").output)["backups"]
        assert [[pick(r, p.split(".")) for p in paths] for r in records] == expected
        lines = cbrq(*base, "-f", "ndjson").output.splitlines()
        assert [json.loads(line) for line in lines] == records
        for fmt, separator in (("csv", ","), ("tsv", "\t")):
            rows = list(csv.reader(io.StringIO(cbrq(*base, "-f", fmt).output), delimiter=separator))
            assert rows[0] == paths
            assert len(rows) == len(expected) + 1
            for row, want in zip(rows[1:], expected, strict=True):
                # One empty cell is an empty line, which csv.reader reads as no cells.
                for cell, value in zip(row or [""], want, strict=True):
                    if isinstance(value, dict | list):
                        assert json.loads(cell) == value
                    elif isinstance(value, bool):
                        assert cell == str(value).lower()
                    else:
                        assert cell == ("" if value is None else str(value))
        parquet = Path(folder, "page.parquet")
        assert cbrq(*base, "-f", "parquet", "-o", str(parquet)).exit_code == 0
        assert pl.read_parquet(parquet).columns == paths


def test_json_keeps_nesting_and_the_order_given() -> None:
    result = cbrq("query", QUERY, "--from", DUMPS, "--fields", "name,extend_info.incremental,id")
    assert result.exit_code == 0, result.output
    first = json.loads(result.output)["backups"][0]
    assert list(first) == ["name", "extend_info", "id"]
    assert list(first["extend_info"]) == ["incremental"]


def test_a_whole_value_wins_over_a_path_under_it() -> None:
    out = cbrq("query", QUERY, "--from", DUMPS, "--fields", "extend_info.bootable,extend_info")
    first = json.loads(out.output)["backups"][0]
    assert "incremental" in first["extend_info"] and "auto_trigger" in first["extend_info"]


def test_table_shows_the_paths_as_columns() -> None:
    out = cbrq("query", QUERY, "--from", DUMPS, "--fields", "id,extend_info.incremental", "-f",
               "table").output  # fmt: skip
    assert "extend_info.incremental" in out.splitlines()[1]
    assert "showing 5 from offset 0" in out


def test_batch_answers_carry_only_the_fields() -> None:
    out = cbrq("query", "--batch", "-", "--from", DUMPS, "--fields", "id")
    assert out.exit_code == 0
    out = CliRunner().invoke(
        main, ["query", "--batch", "-", "--from", DUMPS, "--fields", "id"], input="limit=2\n"
    )
    assert [list(b) for b in json.loads(out.output)["backups"]] == [["id"], ["id"]]


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ("id,nmae", "unknown field 'nmae' (fields: id, name,"),
        ("nmae", "did you mean 'name'?"),
        ("extend_info.incremntal", "did you mean 'extend_info.incremental'?"),
        ("extend_info.incremntal", "fields of extend_info: auto_trigger,"),
        ("name.first", "unknown field 'name.first' (name has no fields)"),
        (",", "name at least one field"),
        ("_payload", "unknown field '_payload'"),
    ],
)
def test_unknown_fields_are_usage_errors_with_a_hint(fields: str, said: str) -> None:
    result = cbrq("query", QUERY, "--from", DUMPS, "--fields", fields)
    assert result.exit_code == 2
    assert result.stderr.startswith("cbrq: error: --fields: ") and said in result.stderr


def test_fields_read_only_their_columns() -> None:
    schema = {"id": pl.String, "extend_info": pl.Struct({"incremental": pl.Boolean})}
    chosen = Fields.parse("extend_info.incremental, id", schema)
    assert chosen.top == ["extend_info", "id"]
    with pytest.raises(FieldError):
        Fields.parse("status", schema)


def test_a_null_struct_stays_null_in_json() -> None:
    schema = {"e": pl.Struct({"a": pl.Int64, "b": pl.Int64})}
    frame = pl.DataFrame({"e": [{"a": 1, "b": 2}, None]}, schema=schema)
    picked = frame.select(Fields.parse("e.a", frame.schema).records())
    assert picked["e"].to_list() == [{"a": 1}, None]


# --- kept unknown keys (issue 23 item 6) ---------------------------------------------

FAILED = {"Code": "BackupService.6100", "Description": "disk full", "retries": 3}


def kept_dump(folder: Path) -> str:
    from tests.records import backup, page

    records = [backup("a", status="error", fail_code=FAILED), backup("b", status="error")]
    path = folder / "p.json"
    path.write_text(page(*records))
    return str(path)


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv", "tsv", "table", "parquet"])
def test_fields_reach_kept_unknown_keys_in_every_format(tmp_path: Path, fmt: str) -> None:
    dump = kept_dump(tmp_path)
    out = tmp_path / f"out.{fmt}"
    chosen = "id,fail_code.Description,fail_code.retries"
    result = cbrq(
        "query", "sort=id:asc", "--from", dump, "--fields", chosen, "-f", fmt, "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    if fmt == "json":
        rows = json.loads(out.read_text())["backups"]
    elif fmt == "ndjson":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    else:
        if fmt == "table":
            assert "disk full" in out.read_text()
            return
        frame = (
            pl.read_parquet(out)
            if fmt == "parquet"
            else pl.read_csv(out, separator="\t" if fmt == "tsv" else ",", infer_schema=False)
        )
        assert frame.rows() == [("a", "disk full", "3"), ("b", None, None)]
        return
    assert rows == [
        {"id": "a", "fail_code": {"Description": "disk full", "retries": "3"}},
        {"id": "b", "fail_code": None},
    ]


def test_a_whole_kept_object_comes_as_its_json(tmp_path: Path) -> None:
    result = cbrq(
        "query",
        "sort=id:asc",
        "--from",
        kept_dump(tmp_path),
        "--fields",
        "id,fail_code",
        "-f",
        "csv",
    )
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert json.loads(rows[0]["fail_code"]) == FAILED and rows[1]["fail_code"] == ""


def test_payload_prefix_reads_a_kept_key_and_near_misses_stay_errors(tmp_path: Path) -> None:
    dump = kept_dump(tmp_path)
    result = cbrq(
        "query", "sort=id:asc&limit=1", "--from", dump, "--fields", "_payload.fail_code.Code"
    )
    assert json.loads(result.stdout)["backups"] == [{"fail_code": {"Code": "BackupService.6100"}}]
    near = cbrq("query", "--from", dump, "--fields", "id,stauts")
    assert near.exit_code == 2 and "did you mean 'status'?" in near.stderr
    typed = cbrq("query", "--from", dump, "--fields", "_payload.status")
    assert typed.exit_code == 2 and "unknown field '_payload.status'" in typed.stderr


def test_kept_paths_without_the_text_are_errors() -> None:
    schema = {"id": pl.String}
    with pytest.raises(FieldError):
        Fields.parse("fail_code.Description", schema)
    chosen = Fields.parse("id,fail_code.Description", schema, payload=True)
    assert chosen.top == ["id", "_payload"] and chosen.kept == {("fail_code", "Description")}
