"""`-f table`: never wider than the terminal, ids whole, no word split, long results capped."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.inventory import Inventory
from engine.render import table
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return Inventory.from_dumps(str(SAMPLE / "dumps"))


@pytest.mark.parametrize("width", [40, 90, 120, 140, 160, 200])
def test_fits_the_terminal_and_keeps_ids_whole(inventory: Inventory, width: int) -> None:
    result = inventory.query("sort=name:desc&limit=20")
    text = table(result, width=width, max_rows=10)
    assert max(len(line) for line in text.splitlines()) <= width
    rows = [line for line in text.splitlines() if line.startswith("│")]
    assert len(rows) == 10  # one line per row: nothing folded
    for backup_id in result.ids[:10]:
        assert backup_id in text
    assert "10 more rows not shown here" in text


def test_off_a_terminal_nothing_is_cut_or_folded(inventory: Inventory) -> None:
    result = inventory.query("limit=30")
    text = CliRunner().invoke(main, ["query", "limit=30", "--from", str(SAMPLE / "dumps"),
                                     "-f", "table"]).output  # fmt: skip
    for record in result:
        for field in ("id", "name", "vault_id", "resource_type"):
            if record.get(field):
                assert f" {record[field]} " in text, (field, record[field])
    assert "…" not in text and "more rows not shown" not in text


def test_tsv_is_the_csv_with_tabs(inventory: Inventory) -> None:
    import csv
    import io

    args = ["query", "sort=name:asc&limit=25", "--from", str(SAMPLE / "dumps"), "-f"]
    comma = CliRunner().invoke(main, [*args, "csv"]).output
    tab = CliRunner().invoke(main, [*args, "tsv"]).output
    rows_csv = list(csv.reader(io.StringIO(comma)))
    rows_tsv = list(csv.reader(io.StringIO(tab), delimiter="\t"))
    assert rows_tsv == rows_csv and len(rows_tsv) == 26
    assert tab.splitlines()[0].startswith("id\tname\t")
