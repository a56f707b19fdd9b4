"""The golden table (tests/golden/cases.tsv): engine and reference model both match it."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.inventory import Inventory
from tests.golden import daily
from tests.golden.cases import Case, cases, engine_answer, expected_by_reference, load_store

CASES = cases()


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return Inventory.open(load_store())


def test_table_is_filled_and_covers_every_parameter() -> None:
    from engine.params import PARAMS

    assert all(case.expected != "?" for case in CASES)
    text = " ".join(case.query for case in CASES)
    for param in PARAMS:
        assert f"{param.name}=" in text, param.name
    assert any(c.expected.startswith("error=") for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"line{c.line}" for c in CASES])
def test_engine_matches_golden(inventory: Inventory, case: Case) -> None:
    assert engine_answer(inventory, case) == case.expected


@pytest.mark.parametrize("case", CASES, ids=[f"line{c.line}" for c in CASES])
def test_reference_matches_golden(case: Case) -> None:
    store: Path = load_store()
    project = case.project or "-"
    assert expected_by_reference(store, project, case.options, case.query) == case.expected


# --- SPEC §6 over the bundled daily series (tests/golden/daily/) ----------------------------

DAILY = daily.cases()


def test_every_section_6_command_has_a_daily_case() -> None:
    commands = {case.args[0] for case in DAILY}
    assert commands >= {"snapshots", "history", "trend", "capacity", "diff", "query"}
    assert any("--forecast" in c.args for c in DAILY)
    assert any("--as-of" in c.args and c.args[0] == "query" for c in DAILY)


@pytest.mark.parametrize("case", DAILY, ids=[c.file for c in DAILY])
def test_the_cli_writes_the_daily_golden_output(case: daily.DailyCase) -> None:
    expected = case.path.read_text()
    got = daily.output(case)
    assert daily.same(expected, got, case.file), f"{case.file}:\n{got}"
