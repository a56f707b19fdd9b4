"""Malformed dumps and query strings never cause a traceback: always the documented error."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from engine.cli import main
from engine.errors import QueryError
from engine.inventory import Inventory
from tests.conftest import snapshot
from tests.golden.cases import load_store
from tests.records import backup, page

GOOD = page(backup("a"), backup("b", children=[backup("c")]))


@st.composite
def malformed(draw: st.DrawFn) -> bytes:
    data = GOOD.encode()
    kind = draw(
        st.sampled_from(
            ["truncate", "wrong_type", "huge", "deep", "utf8", "duplicate", "gzip", "garbage"]
        )
    )
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if kind == "wrong_type":
        field = draw(
            st.sampled_from(
                [
                    "resource_size",
                    "status",
                    "incremental",
                    "created_at",
                    "extend_info",
                    "children",
                    "id",
                ]
            )
        )
        value = draw(st.sampled_from(['"40GB"', "12", "true", "[]", "{}", "null", "1.5"]))
        return data.replace(
            f'"{field}": '.encode(), f'"{field}": {value}, "x_{field}": '.encode(), 1
        )
    if kind == "huge":
        number = draw(st.sampled_from(["1" + "0" * 30, "-1e999", "1e400", "9" * 400]))
        return data.replace(b'"resource_size": 40', f'"resource_size": {number}'.encode(), 1)
    if kind == "deep":
        depth = draw(st.integers(100, 5000))
        return data.replace(
            b'"name": ', b'"deep": ' + b"[" * depth + b"]" * depth + b', "name": ', 1
        )
    if kind == "utf8":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + data[at:]
    if kind == "duplicate":
        return data.replace(b'"id": "a",', b'"id": "a", "id": "z",', 1)
    if kind == "gzip":
        packed = gzip.compress(data)
        return packed[: draw(st.integers(2, len(packed) - 1))]
    return draw(st.binary(max_size=200))


@given(malformed())
@example(b"[" * 100_000)
@example(b'{"backups": [' + b"[" * 3000 + b"]" * 3000 + b"]}")
def test_bad_dump_never_tracebacks_and_store_is_unchanged(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        first = Path(tmp) / "first.json"
        first.write_text(page(backup("q")))
        CliRunner().invoke(main, ["ingest", str(first), "--store", str(store)])
        before = snapshot(store)
        bad = Path(tmp) / "bad.json"
        bad.write_bytes(content)
        result = CliRunner().invoke(main, ["ingest", str(bad), "--store", str(store)])
        assert result.exit_code in (0, 1), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        if result.exit_code == 1:
            assert result.stderr.startswith(f"cbrq: error: {bad}")
            assert snapshot(store) == before
        lenient = CliRunner().invoke(main, ["ingest", "--lenient", str(bad), "--store", str(store)])
        assert lenient.exit_code == 0, lenient.output


@given(
    st.text(max_size=60)
    | st.lists(
        st.tuples(
            st.sampled_from(
                ["status", "limit", "sort", "marker", "start_time", "used_percent", "x"]
            ),
            st.text(max_size=12),
        )
    ).map(lambda ps: "&".join(f"{k}={v}" for k, v in ps))
)
def test_bad_query_strings_give_the_documented_error(query: str) -> None:
    inventory = Inventory.open(load_store())
    try:
        result = inventory.query(query, project="p1")
    except QueryError as err:
        assert err.body()["error_code"] == "BackupService.9900" and err.problems
        return
    assert result.count >= 0
