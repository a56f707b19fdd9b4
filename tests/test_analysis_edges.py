"""Odd data is data, not a crash or a wrong number (issue 20 item 3).

- a vault ``resources`` that is not a list (a string, a number, an object, null)
  or a list of odd elements once broke rpo, capacity, hygiene, report and diff;
- stats ``size_gb`` wrapped to a negative number past Int64;
- capacity read 0.0 % and ``full`` for 1e308 MB of 1e308 GB (9.8 % in fact);
- ``-f ndjson`` with no rows stated no ``at``.

The engine is checked against the reference model (engine/testing/reference.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.inventory import Inventory
from engine.testing.reference import analysis
from engine.testing.strategies import inventories
from tests.records import backup

Record = dict[str, Any]
BAD_RESOURCES: list[Any] = [
    "r1",
    '[{"id": "r1"}]',  # a string that looks like a list is still a string
    5,
    2.5,
    True,
    {"id": "r1"},
    None,
    ["r1", 5, None, [1], {"id": 7}, {"id": True}, {"name": "no id"}],
    [{"id": "r1", "name": {"nested": 1}, "type": ["x"]}, {"id": "r9", "name": "n9"}],
]
BACKUPS = [
    backup("b1", resource_id="r1", vault_id="v1"),
    backup("b2", resource_id="r2", vault_id="v2", status="error"),
    backup("b3", resource_id="r9", vault_id="v1", status="protecting"),
]


def write(folder: Path, backups: list[Record], vaults: list[Record]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "b.json").write_text(json.dumps({"count": len(backups), "backups": backups}))
    (folder / "v.json").write_text(json.dumps({"vaults": vaults}))
    return [str(folder / "b.json"), str(folder / "v.json")]


def vaults_with(resources: Any) -> list[Record]:
    return [
        {"id": "v1", "billing": {"size": 10, "used": 9000}, "resources": resources},
        {"id": "v2", "billing": {"size": 10, "used": 10}, "resources": [{"id": "r2"}]},
    ]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("resources", BAD_RESOURCES, ids=repr)
@pytest.mark.parametrize("name", ["rpo", "capacity", "hygiene"])
def test_bad_resources_are_data_as_in_the_model(tmp_path: Path, name: str, resources: Any) -> None:
    vaults = vaults_with(resources)
    with Inventory.from_dumps(write(tmp_path, BACKUPS, vaults)) as inv:
        got = getattr(inv, name)().to_json()
    assert got == analysis(name, BACKUPS, vaults, [])


@pytest.mark.parametrize("resources", ["r1", 5, {"id": "r1"}, None, [5, "r1"]], ids=repr)
def test_a_vault_not_listing_a_list_lists_no_resource(tmp_path: Path, resources: Any) -> None:
    vaults = vaults_with(resources)
    with Inventory.from_dumps(write(tmp_path, BACKUPS, vaults)) as inv:
        capacity = {r["id"]: r["resources"] for r in inv.capacity().to_json()["rows"]}
        rpo = {r["resource_id"]: r["vault_id"] for r in inv.rpo().to_json()["rows"]}
        orphans = {r["id"] for r in inv.hygiene().to_json()["rows"] if r["finding"] == "orphan"}
    assert capacity == {"v1": len(resources) if isinstance(resources, list) else 0, "v2": 1}
    assert rpo["r1"] == "v1"  # the vault of its backup: no vault lists r1
    assert orphans == {"b1", "b3"}  # v2 lists r2 only


@pytest.mark.parametrize("resources", ["r1", 5, {"id": "r1"}, [5, {"id": 3}]], ids=repr)
def test_report_and_diff_take_bad_resources(tmp_path: Path, resources: Any) -> None:
    pytest.importorskip("matplotlib")
    write(tmp_path / "a", BACKUPS, vaults_with([{"id": "r1"}]))
    after = write(tmp_path / "b", BACKUPS, vaults_with(resources))
    out = tmp_path / "r.html"
    code, _, err = run("report", "--from", after[0], "--from", after[1], "-o", str(out))
    assert code == 0, err
    html = out.read_text()
    # Every chart is drawn or says why not (a report draws no empty chart).
    assert html.count("<svg") + html.count('<p class="nochart"') == 8
    code, text, err = run("diff", str(tmp_path / "a"), str(tmp_path / "b"), "-f", "json")
    assert code == 0, err
    changed = [r for r in json.loads(text)["rows"] if r["kind"] == "vault"]
    spec_keys = ("kind", "change", "id", "fields", "used_mb_delta")
    assert [{k: r[k] for k in spec_keys} for r in changed] == [
        {"kind": "vault", "change": "changed", "id": "v1", "fields": ["resources"],
         "used_mb_delta": 0.0}
    ]  # fmt: skip
    assert changed[0]["changes"] == {"resources": [[{"id": "r1"}], resources]}


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["r1", "r2", "r4", ""]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["id", "name", "type", "x"]), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=15)
@given(
    generated=inventories(max_backups=6),
    odd=st.lists(JSON_VALUES, min_size=1, max_size=3),
    name=st.sampled_from(["rpo", "capacity", "hygiene"]),
)
def test_any_json_in_resources_agrees_with_the_model(
    generated: Any, odd: list[Any], name: str
) -> None:
    import tempfile

    vaults = [{**v, "resources": odd[i % len(odd)]} for i, v in enumerate(generated.vaults)]
    with (
        tempfile.TemporaryDirectory() as folder,
        Inventory.from_dumps(write(Path(folder), generated.backups, vaults)) as inv,
    ):
        got = getattr(inv, name)(at="2020-03-01T00:00:00Z").to_json()
    assert got == analysis(name, generated.backups, vaults, [], at="2020-03-01T00:00:00Z")


# --- numbers ------------------------------------------------------------------


def test_stats_size_past_int64_is_exact_not_wrapped(tmp_path: Path) -> None:
    records = [backup(f"b{i}", resource_size=2**62) for i in range(3)] + [
        backup("small", status="error", resource_size=7)
    ]
    with Inventory.from_dumps(write(tmp_path, records, [])) as inv:
        result = inv.stats()
    sizes = {r["status"]: r["size_gb"] for r in result.to_json()["rows"]}
    assert sizes == {"available": 3 * 2**62, "error": 7}
    assert result.to_json() == analysis("stats", records, [], [])
    code, out, _ = run("stats", "--from", str(tmp_path / "b.json"), "-f", "csv")
    assert code == 0 and f"available,3,{3 * 2**62}," in out
    code, out, _ = run("stats", "--from", str(tmp_path / "b.json"), "-f", "table")
    assert code == 0 and str(3 * 2**62) in out


def test_stats_sizes_that_fit_stay_int64(tmp_path: Path) -> None:
    records = [backup("b1", resource_size=2**62), backup("b2", resource_size=-(2**62))]
    with Inventory.from_dumps(write(tmp_path, records, [])) as inv:
        frame = inv.stats().frame
    assert frame.schema["size_gb"] == pl.Int64 and frame["size_gb"].to_list() == [0]


def test_capacity_of_huge_billing_values_is_right_or_said_to_overflow(tmp_path: Path) -> None:
    vaults = [
        {"id": "huge", "billing": {"size": 1e308, "used": 1e308}},  # 9.8 %: not full
        {"id": "over", "billing": {"size": 1e-300, "used": 1e308}},  # past the float range
        {"id": "big", "threshold": 50, "billing": {"size": 1e308, "used": 1.5e308}},  # 0.1 %
        {"id": "tie", "threshold": 58, "billing": {"size": 25, "used": 14848}},
        {"id": "normal", "billing": {"size": 100, "used": 1024}},
    ]
    records = [backup("b1", vault_id="huge")]
    with Inventory.from_dumps(write(tmp_path, records, vaults)) as inv:
        result = inv.capacity()
    rows = {r["id"]: r for r in result.to_json()["rows"]}
    assert (rows["huge"]["used_percent"], rows["huge"]["full"]) == (100 / 1024, False)
    assert (rows["over"]["used_percent"], rows["over"]["full"]) == (None, True)
    assert (rows["big"]["used_percent"], rows["big"]["full"]) == (150 / 1024, False)
    assert rows["tie"]["full"] is True and rows["normal"]["used_percent"] == 1.0
    assert result.to_json()["rows"][0]["id"] == "over"  # the fullest first
    assert result.to_json() == analysis("capacity", records, vaults, [])
    code, out, _ = run("capacity", "--from", str(tmp_path), "-f", "json")
    assert code == 0 and "Infinity" not in out and json.loads(out)["rows"][0]["id"] == "over"
    code, out, _ = run("capacity", "--from", str(tmp_path), "-f", "csv")
    assert code == 0 and "over,,1e-300,1e+308,inf,80,true,0,0" in out


@pytest.mark.parametrize(
    "args",
    [["stats"], ["rpo"], ["retention"], ["capacity"], ["hygiene"], ["rpo", "--only", "breach"]],
)
def test_empty_ndjson_states_at(tmp_path: Path, args: list[str]) -> None:
    records = [backup("b1", status="error", updated_at="2020-03-01T00:00:00Z", vault_id="v9")]
    write(tmp_path, records, [])
    code, out, _ = run(*args, "--from", str(tmp_path), "status=available", "-f", "ndjson")
    assert code == 0
    assert out == '{"at": "2020-03-01T00:00:00.000000"}\n'


def test_ndjson_with_rows_is_unchanged(tmp_path: Path) -> None:
    records = [backup("b1", status="error", updated_at="2020-03-01T00:00:00Z")]
    write(tmp_path, records, [])
    code, out, _ = run("hygiene", "--from", str(tmp_path), "-f", "ndjson")
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["b1"]
    assert out.startswith('{"at": "2020-03-01T00:00:00.000000", "id": "b1", "finding": "error"')
