"""`cbrq conformance` against our own server: agreement, and a shrunk disagreement."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from engine.cli import main
from engine.inventory import Inventory
from tests.golden.cases import load_store
from tests.records import backup, page
from tests.server_fixture import running

P1 = "3cbb7daa64c184fa48a7c8252abc5619"


def test_our_server_conforms() -> None:
    store = load_store()
    with running(Inventory.open(store)) as url:
        result = CliRunner().invoke(
            main,
            [
                "conformance",
                "--endpoint",
                url,
                "--project",
                P1,
                "--store",
                str(store),
                "--examples",
                "60",
                "--seed",
                "1",
            ],
        )
    assert result.exit_code == 0, result.output
    assert "60 queries, all answers agree" in result.output


def test_a_server_with_other_data_is_caught_with_a_small_query(tmp_path: Path) -> None:
    served = tmp_path / "served.json"
    served.write_text(page(backup("a", project_id="p"), backup("b", project_id="p")))
    claimed = tmp_path / "claimed.json"
    claimed.write_text(
        page(backup("a", project_id="p"), backup("b", project_id="p", status="error"))
    )
    with Inventory.from_dumps([str(served)]) as inv, running(inv) as url:
        result = CliRunner().invoke(
            main,
            [
                "conformance",
                "--endpoint",
                url,
                "--project",
                "p",
                "--from",
                str(claimed),
                "--seed",
                "3",
            ],
        )
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("conformance: disagreement")
    query = lines[1].split("query:", 1)[1].strip()
    assert len(query) < 40, query  # shrunk
    expected = json.loads(lines[2].split("expected:", 1)[1])
    actual = json.loads(lines[3].split("endpoint:", 1)[1])
    assert expected != actual
