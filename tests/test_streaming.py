"""Query output written as it is read (issue 23 item 1): the same bytes as a whole page.

Speed and memory are measured in ``benchmarks/`` (the first line of a 1M
answer, peak RSS of a full export), never asserted here.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from engine import render
from engine.api import ingest
from engine.backends import base
from engine.generate import write_dumps
from engine.inventory import Inventory
from engine.render.fields import Fields
from engine.store import read


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("streaming")
    write_dumps(folder / "dumps", 3_000, seed=3)
    ingest([str(folder / "dumps")], folder / "s")
    return folder / "s"


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 700 rows: every answer here spans several."""
    monkeypatch.setattr(base, "STREAM_ROWS", 700)


CASES = [
    ("", None),
    ("status=available&sort=name:asc", None),
    ("sort=created_at:asc&offset=5&limit=1000", None),
    ("marker=MARKER&sort=name:desc", None),
    ("status=error&resource_type=OS::Nova::Server&name=no-such-name", None),
    ("", "id,name,extend_info.incremental,replication_records.status"),
]


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv", "tsv", "parquet"])
@pytest.mark.parametrize(("query", "fields"), CASES)
def test_streamed_output_equals_the_whole_page(
    store: Path, fmt: str, query: str, fields: str | None
) -> None:
    with Inventory.open(store) as inv:
        chosen = None if fields is None else Fields.parse(fields, inv.lazy().collect_schema())
        columns = render.columns_for(fmt, inv.lazy().collect_schema().names(), chosen)
        if "MARKER" in query:
            query = query.replace("MARKER", inv.query("sort=name:desc&limit=3").ids[-1])
        parsed = inv.parse(query)
        whole, streamed = io.BytesIO(), io.BytesIO()
        render.render(inv.run(parsed, columns), fmt, whole, fields=chosen)
        render.render_stream(inv.stream(parsed, columns), fmt, streamed, fields=chosen)
        if fmt == "parquet":
            read = [pl.read_parquet(io.BytesIO(b.getvalue())) for b in (streamed, whole)]
            assert read[0].equals(read[1]) and read[0].height == len(inv.run(parsed))
        else:
            assert streamed.getvalue() == whole.getvalue()


def test_a_table_off_a_terminal_stops_at_its_cap(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "TABLE_CAP", 1_000)
    out = io.BytesIO()
    with Inventory.open(store) as inv:
        render.render_stream(inv.stream(inv.parse("")), "table", out)
    text = out.getvalue().decode()
    assert "stopped at 1,000 rows" in text and "-f tsv" in text
    assert "showing 1000 from offset 0" in text
    small = io.BytesIO()
    with Inventory.open(store) as inv:
        render.render_stream(inv.stream(inv.parse("limit=5")), "table", small)
    assert "stopped at" not in small.getvalue().decode()


@pytest.mark.parametrize(("fmt", "start"), [("ndjson", '{"'), ("csv", "id,")])
def test_the_cli_streams_through_a_pipe_that_closes_early(
    store: Path, fmt: str, start: str
) -> None:
    """`cbrq query -f ndjson | head -1`: the first line, and no error when head exits."""
    command = f"{sys.executable} -m engine.cli query --store {store} -f {fmt} | head -1"
    done = subprocess.run(
        ["bash", "-c", f"{command}; exit ${{PIPESTATUS[0]}}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.count("\n") == 1, done.stderr
    assert done.stdout.startswith(start) and done.stderr == ""


@pytest.mark.parametrize("order", ["store", "reversed", "scattered"])
def test_rows_fetched_in_batches_are_the_rows_asked_in_their_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, order: str
) -> None:
    """Two files of uneven heights, groups of 64: each batch is the rows asked, in order."""
    monkeypatch.setattr(read, "ROW_GROUP_ROWS", 64)
    table = pl.DataFrame({"n": range(1_000), "text": [f"row {i}" for i in range(1_000)]})
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    table.head(700).write_parquet(paths[0], row_group_size=64)
    table.tail(300).write_parquet(paths[1], row_group_size=64)
    wanted = pl.Series(range(0, 1_000, 3))
    if order == "reversed":
        wanted = wanted.reverse()
    elif order == "scattered":
        wanted = wanted.shuffle(seed=1)
    batches = list(read.fetch_batches(paths, wanted, ["n", "text"], rows=50))
    assert batches[0].height < 50 and len(batches) > 5
    assert pl.concat(batches).equals(table[wanted])
    assert read.fetch(paths, wanted).equals(table[wanted])
