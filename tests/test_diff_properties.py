"""``diff A B`` (SPEC §5): its properties, the hand-checked cases, and engine == reference model.

Properties: diff(A, A) is empty; swapping A and B swaps added and removed
and keeps changed (same fields, opposite vault delta); ingesting B's changed
and added records over A in a store leaves only B's removals; the same
records written in two text forms differ in nothing.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from engine import spec
from engine.api import ingest
from engine.instants import parse_instant
from engine.inventory import Inventory
from engine.testing.reference import diff
from engine.testing.strategies import (
    VAULTS,
    backups,
    inventories,
    timestamps,
)
from engine.testing.strategies import (
    Inventory as Generated,
)

GOLDEN = Path(__file__).resolve().parent / "golden" / "analyses" / "diff.json"
Record = dict[str, Any]
#: Day of the changed records' ``updated_at``: after every generated instant,
#: so that ingesting them over A supersedes A's copies (SPEC §2 dedup).
LATER = (400,)


def write(folder: Path, generated: Generated, *, indent: int | None = None) -> list[str]:
    """The records as dump files; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    pages = {"b.json": {"count": 0, "backups": generated.backups}}
    pages["v.json"] = {"vaults": generated.vaults}
    for name, page in pages.items():
        (folder / name).write_text(json.dumps(page, indent=indent, ensure_ascii=False))
    return [str(folder / name) for name in pages]


@contextmanager
def opened(*inventories: Generated) -> Iterator[list[Inventory]]:
    """Each generated inventory read from its dump files, as ``cbrq diff a/ b/`` does."""
    with tempfile.TemporaryDirectory() as tmp:
        found = [
            Inventory.from_dumps(write(Path(tmp) / str(n), g)) for n, g in enumerate(inventories)
        ]
        try:
            yield found
        finally:
            for inv in found:
                inv.close()


def engine_diff(a: Inventory, b: Inventory) -> Record:
    return dict(a.diff(b).to_json())


def swapped(rows: list[Record]) -> list[Record]:
    """The rows diff(B, A) should have, given diff(A, B)'s, in SPEC §5's order."""
    turn = {"added": "removed", "removed": "added", "changed": "changed"}
    out = [
        {
            **r,
            "change": turn[r["change"]],
            "used_mb_delta": None if r["used_mb_delta"] is None else -r["used_mb_delta"],
            **swapped_changes(r["changes"] or {}),
        }
        for r in rows
    ]
    order = {name: n for n, name in enumerate(spec.DIFF_KINDS + spec.DIFF_CHANGES)}
    return sorted(out, key=lambda r: (order[r["kind"]], order[r["change"]], r["id"]))


def swapped_changes(changes: Record) -> Record:
    """The keys of a changed row that diff(B, A) turns: old and new, and the names (A's)."""
    if not changes:
        return {}
    names = {k: changes[k][0] for k in ("name", "resource_name") if k in changes}
    return {"changes": {k: [new, old] for k, (old, new) in changes.items()}, **names}


# --- generated pairs --------------------------------------------------------------


@st.composite
def changed_backup(draw: st.DrawFn, backup_id: str) -> Record:
    """A new copy of a backup: other field values, and an ``updated_at`` after A's."""
    record: Record = draw(backups(backup_id))
    record["updated_at"] = draw(timestamps(days=LATER))
    return record


@st.composite
def changed_vault(draw: st.DrawFn, vault: Record) -> Record:
    copy = json.loads(json.dumps(vault))
    billing = copy.setdefault("billing", {})
    billing["used"] = draw(st.sampled_from([0, 1, 512.5, billing.get("used")]))
    if draw(st.booleans()):
        copy["name"] = draw(st.sampled_from(["renamed", None]))
    return copy


@st.composite
def pairs(draw: st.DrawFn) -> tuple[Generated, Generated]:
    """A and B: B keeps, changes or drops each of A's records and adds others."""
    a = draw(inventories())
    fates = st.sampled_from(["same", "changed", "removed"])
    b_backups = []
    for record in a.backups:
        fate = draw(fates)
        if fate != "removed":
            b_backups.append(draw(changed_backup(record["id"])) if fate == "changed" else record)
    added = draw(st.lists(st.sampled_from([f"n{i}" for i in range(5)]), unique=True, max_size=3))
    b_backups += [draw(backups(i)) for i in added]
    b_vaults = []
    for vault in a.vaults:
        fate = draw(fates)
        if fate != "removed":
            b_vaults.append(draw(changed_vault(vault)) if fate == "changed" else vault)
    for vault_id in sorted(set(VAULTS) - {v["id"] for v in a.vaults}):
        if draw(st.integers(0, 3)) == 0:
            b_vaults.append({"id": vault_id, "billing": {"size": 1, "used": 10}})
    return a, Generated(b_backups, b_vaults, [])


def reformatted(value: Any, key: str | None = None) -> Any:
    """The same JSON value with every timestamp written in another form (UTC+08:00)."""
    if key in spec.TIMESTAMP_KEYS and isinstance(value, str):
        when = parse_instant(value)
        if when is not None:
            return (when + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S.%f+08:00")
    if isinstance(value, dict):
        return {k: reformatted(v, k) for k, v in reversed(value.items())}
    if isinstance(value, list):
        return [reformatted(v) for v in value]
    return value


# --- properties -------------------------------------------------------------------


@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(inventories())
def test_diff_of_an_inventory_with_itself_is_empty(generated: Generated) -> None:
    assert diff(generated, generated)["rows"] == []
    with opened(generated) as (inv,):
        assert engine_diff(inv, inv)["rows"] == []


@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(pairs())
def test_engine_equals_model_and_swapping_swaps(pair: tuple[Generated, Generated]) -> None:
    a, b = pair
    forward, backward = diff(a, b), diff(b, a)
    assert backward["rows"] == swapped(forward["rows"])
    with opened(a, b) as (inv_a, inv_b):
        got = engine_diff(inv_a, inv_b)
        note(f"engine={got}\nmodel={forward}")
        assert got == forward
        assert engine_diff(inv_b, inv_a) == backward


@settings(max_examples=max(5, settings.default.max_examples // 3))  # two ingests per example
@given(pairs())
def test_ingesting_b_changes_over_a_leaves_only_removals(pair: tuple[Generated, Generated]) -> None:
    a, b = pair
    rows = diff(a, b)["rows"]
    newer = {r["id"] for r in rows if r["change"] in ("added", "changed")}
    b_new = Generated(
        [r for r in b.backups if r["id"] in newer], [v for v in b.vaults if v["id"] in newer], []
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        ingest(write(Path(tmp) / "a", a), store)
        ingest(write(Path(tmp) / "b-new", b_new), store)
        with (
            Inventory.open(store) as merged,
            Inventory.from_dumps(write(Path(tmp) / "b", b)) as inv_b,
        ):
            got = engine_diff(merged, inv_b)
    assert got["rows"] == [r for r in rows if r["change"] == "removed"]


@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(inventories())
def test_same_records_in_two_text_forms_differ_in_nothing(generated: Generated) -> None:
    other = Generated(reformatted(generated.backups), reformatted(generated.vaults), [])
    assert diff(generated, other)["rows"] == []
    with tempfile.TemporaryDirectory() as tmp:
        pretty = write(Path(tmp) / "pretty", generated, indent=2)
        compact = write(Path(tmp) / "compact", other)
        with Inventory.from_dumps(pretty) as a, Inventory.from_dumps(compact) as b:
            assert engine_diff(a, b)["rows"] == []


# --- golden cases -------------------------------------------------------------------

CASES: list[Record] = json.loads(GOLDEN.read_text())


def sides(case: Record) -> tuple[Generated, Generated]:
    return tuple(Generated(case[s]["backups"], case[s]["vaults"], []) for s in "ab")  # type: ignore[return-value]


@pytest.mark.parametrize("case", CASES, ids=[f"diff-{n}" for n in range(len(CASES))])
def test_model_matches_golden(case: Record) -> None:
    got = diff(*sides(case))
    spec_keys = ["kind", "change", "id", "fields", "used_mb_delta"]
    assert {**got, "rows": [{k: r[k] for k in spec_keys} for r in got["rows"]]} == case["expected"]


@pytest.mark.parametrize("case", CASES, ids=[f"diff-{n}" for n in range(len(CASES))])
def test_engine_matches_golden(case: Record) -> None:
    with opened(*sides(case)) as (a, b):
        got = engine_diff(a, b)
    # The golden rows hold SPEC §5's keys; the keys issue 23 added come after them.
    spec_keys = ["kind", "change", "id", "fields", "used_mb_delta"]
    assert {**got, "rows": [{k: r[k] for k in spec_keys} for r in got["rows"]]} == case["expected"]
    for row in got["rows"]:
        assert list(row) == [*spec_keys, "name", "resource_name", "changes"]


# --- issue 23: the rows name the record and carry each change's old and new value ----------


def named_pair() -> tuple[Generated, Generated]:
    def b(i: str, **more: Any) -> Record:
        return {"id": i, "name": f"n-{i}", "resource_name": f"vm-{i}", "status": "available"} | more

    vault = {"id": "v", "name": "vault-1", "billing": {"size": 10, "used": 100, "status": "ok"}}
    a = Generated([b("x", status="protecting"), b("y")], [vault], [])
    b_vault = vault | {"billing": {"size": 10, "used": 250.5, "status": "ok"}}
    later = b("x", status="error", name="renamed", created_at="2020-01-01T08:00:00+08:00")
    return a, Generated([later, b("z")], [b_vault], [])


def test_changed_rows_carry_names_and_old_and_new_values() -> None:
    a, b = named_pair()
    with opened(a, b) as (inv_a, inv_b):
        rows = {r["id"]: r for r in engine_diff(inv_a, inv_b)["rows"]}
    assert rows["x"]["changes"] == {
        "created_at": [None, "2020-01-01T00:00:00.000000"],
        "name": ["n-x", "renamed"],
        "status": ["protecting", "error"],
    }
    assert rows["x"]["fields"] == ["created_at", "name", "status"]
    assert (rows["x"]["name"], rows["x"]["resource_name"]) == ("renamed", "vm-x")
    assert (rows["y"]["change"], rows["y"]["name"], rows["y"]["changes"]) == (
        "removed",
        "n-y",
        None,
    )
    assert (rows["z"]["change"], rows["z"]["resource_name"]) == ("added", "vm-z")
    vault = rows["v"]
    assert vault["fields"] == ["billing"] and vault["name"] == "vault-1"
    assert vault["changes"]["billing.used"] == [100, 250.5]
    assert vault["used_mb_delta"] == 150.5 and vault["resource_name"] is None
    assert diff(a, b)["rows"] == list(rows.values())


def test_a_table_shows_old_and_new_and_csv_the_json(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from engine.cli import main

    a, b = named_pair()
    write(tmp_path / "a", a), write(tmp_path / "b", b)
    left, right = str(tmp_path / "a"), str(tmp_path / "b")
    runner = CliRunner()
    table = runner.invoke(main, ["diff", left, right, "-f", "table"], prog_name="cbrq")
    assert table.exit_code == 0, table.output
    assert "status: protecting → error" in table.stdout
    assert "billing.used: 100 → 250.5" in table.stdout
    got = runner.invoke(main, ["diff", left, right, "-f", "csv"], prog_name="cbrq")
    assert '"{""created_at"":[null,""2020-01-01T00:00:00.000000""],' in got.stdout
