"""One writer table for every output (LAYOUT change 4): queries and analyses alike."""

from __future__ import annotations

import io
import json

import pytest

from engine import render
from engine.inventory import Inventory
from engine.spec import OUTPUT_FORMATS
from tests.conftest import SAMPLE


def test_the_formats_are_the_writers_in_spec_order() -> None:
    assert render.FORMATS == tuple(render.WRITERS) == OUTPUT_FORMATS


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_every_writer_writes_a_query_and_an_analysis(fmt: str) -> None:
    with Inventory.from_dumps([str(SAMPLE / "dumps")]) as inv:
        outputs = [render.QueryOutput(inv.query("limit=3")), render.AnalysisOutput(inv.rpo())]
        for output in outputs:
            out = io.BytesIO()
            render.write(output, fmt, out)
            assert out.getvalue(), (fmt, type(output).__name__)


def test_query_json_through_the_table_is_the_api_response() -> None:
    with Inventory.from_dumps([str(SAMPLE / "dumps")]) as inv:
        result = inv.query("limit=2")
        out = io.BytesIO()
        render.render(result, "json", out)
    body = json.loads(out.getvalue())
    assert set(body) == {"count", "backups", "offset", "limit"} and len(body["backups"]) == 2


def test_an_unknown_format_names_the_allowed_ones() -> None:
    with (
        Inventory.from_dumps([str(SAMPLE / "dumps")]) as inv,
        pytest.raises(ValueError, match="allowed: table, json, ndjson, csv, tsv, parquet"),
    ):
        render.write(render.QueryOutput(inv.query("limit=1")), "xml", io.BytesIO())
