"""CSV/TSV cells: nested values are the typed values as JSON, instants in the API's form."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings

from engine.instants import format_instant
from engine.inventory import Inventory
from engine.render import flat, render
from engine.testing.strategies import Inventory as Generated
from engine.testing.strategies import inventories


def as_json_value(value: Any) -> Any:
    """A typed value as the CSV must write it: instants as API-form text, at any depth."""
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, dict):
        return {k: as_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json_value(v) for v in value]
    return value


@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(inventories(max_backups=6))
def test_nested_cells_are_the_typed_values(generated: Generated) -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "b.json").write_text(json.dumps({"count": 0, "backups": generated.backups}))
        with Inventory.from_dumps(folder) as inv:
            frame = inv.query("sort=id:asc").frame
    cells = flat(frame)
    assert cells.columns == frame.columns
    for name, dtype in frame.schema.items():
        typed = frame[name].to_list()
        written = cells[name].to_list()
        if dtype.is_nested():
            assert [None if t is None else json.loads(t) for t in written] == [
                as_json_value(v) for v in typed
            ], name
        else:
            assert written == [as_json_value(v) for v in typed], name


@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(inventories(max_backups=6))
def test_csv_reads_back_to_the_flat_cells(generated: Generated) -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "b.json").write_text(json.dumps({"count": 0, "backups": generated.backups}))
        with Inventory.from_dumps(folder) as inv:
            result = inv.query("sort=id:asc")
    out = io.BytesIO()
    render(result, "csv", out)
    rows = list(csv.reader(io.StringIO(out.getvalue().decode())))
    cells = flat(result.frame)
    assert rows[0] == cells.columns
    assert len(rows) == cells.height + 1
    for row, expected in zip(rows[1:], cells.iter_rows(), strict=True):
        assert row == ["" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
                       for v in expected]  # fmt: skip
