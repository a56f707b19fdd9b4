"""One writer table for every output (LAYOUT change 4): queries and analyses alike."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import polars as pl
import pytest

from engine import render
from engine.analyses import Analysis
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


def _dumped(analysis: Analysis) -> tuple[str, str]:
    """What analyses' json and ndjson were before they were written by columns: json.dumps."""
    document = analysis.to_json()
    rows = document["rows"] or [{}]
    lines = (json.dumps({"at": document["at"], **row}, ensure_ascii=False) for row in rows)
    return json.dumps(document, ensure_ascii=False), "".join(line + "\n" for line in lines)


AT = datetime(2026, 11, 30, 12, tzinfo=UTC)
#: Values where polars' own text is not Python's: floats below 1e-4 and past 1e16,
#: non-finite floats, control and non-ASCII characters, separators inside JSON strings.
TRICKY = pl.DataFrame(
    {
        "id": ["a", 'q"\\\x00\x1b\x7f\u2028é中', None, "", "😀"],
        "size_gb": [1e-05, 9.9e-05, 1e-07, 1.5e16, float("inf")],
        "used": pl.Series([0.1, None, 3.4e38, -0.0, float("nan")], dtype=pl.Float32),
        "backups": [1, None, -(10**15), 0, 7],
        "full": [True, False, None, True, False],
        "created_at": [AT, None, AT, AT, datetime(1970, 1, 1, tzinfo=UTC)],
        "fields": [["status"], [], None, ["a,b", 'c"d'], [None]],
        "changes": [
            '{"status":["protecting","error"]}',
            '{"name":["a, b: c","d\\",e"],"extend_info":[{"x":[1,2.5]},null]}',
            None,
            "{}",
            '{"k":[true,{"a":"b:c,d"}]}',
        ],
    }
)


@pytest.mark.parametrize("piece", [2, 50_000])
@pytest.mark.parametrize("frame", [TRICKY, TRICKY.head(0), TRICKY.rename({"id": "at"})])
def test_analyses_json_written_by_columns_is_what_json_dumps_wrote(
    frame: pl.DataFrame, piece: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render.AnalysisOutput, "PIECE_ROWS", piece)
    analysis = Analysis("diff", AT, frame)
    output = render.AnalysisOutput(analysis)
    assert (output.json_text(), output.ndjson_text()) == _dumped(analysis)


def test_the_analyses_of_the_sample_write_json_as_json_dumps_did() -> None:
    with Inventory.from_dumps([str(SAMPLE / "dumps")]) as inv:
        for analysis in (inv.stats(), inv.rpo(), inv.retention(), inv.capacity(), inv.hygiene()):
            output = render.AnalysisOutput(analysis)
            assert (output.json_text(), output.ndjson_text()) == _dumped(analysis), analysis.name
