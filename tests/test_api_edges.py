"""The Python API's rough edges a newcomer meets first (issue 13): reprs, kinds, results."""

from __future__ import annotations

import pytest

from engine.errors import StoreError
from engine.inventory import Inventory
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return Inventory.from_dumps(str(SAMPLE / "dumps"))  # one path, not a list of letters


def test_reprs_say_what_is_held(inventory: Inventory) -> None:
    assert repr(inventory) == (
        f"Inventory(in memory: {SAMPLE / 'dumps'}; 300 backups, 8 vaults, 20 members)"
    )
    result = inventory.query("status=error&limit=2")
    text = repr(result)
    assert text.startswith(f"Result(count={result.count}, offset=0, limit=2, page of 2)")
    assert "_payload" not in text and "_seq" not in text


def test_a_result_has_a_length_and_yields_records(inventory: Inventory) -> None:
    result = inventory.query("sort=name:asc&limit=3")
    assert len(result) == 3 and result.count == 300
    assert [record["id"] for record in result] == result.ids


def test_unknown_kind_names_the_allowed_ones(inventory: Inventory) -> None:
    with pytest.raises(ValueError, match=r"unknown record kind 'vault'.*did you mean 'vaults'"):
        inventory.lazy("vault")


def test_opening_a_dump_folder_says_how_to_read_it() -> None:
    with pytest.raises(StoreError, match=r"holds dump files, not an inventory.*from_dumps"):
        Inventory.open(SAMPLE)
