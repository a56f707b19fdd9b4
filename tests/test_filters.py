"""Per-filter properties: filters only narrow, every row satisfies them, order is total."""

from __future__ import annotations

import itertools
import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.backends.polars import sort_keys
from engine.errors import QueryError
from engine.inventory import Inventory
from engine.testing.strategies import PROJECTS, inventories, query_strings


def load(generated: Any, folder: Path) -> Inventory:
    (folder / "b.json").write_text(json.dumps({"backups": generated.backups}))
    (folder / "v.json").write_text(json.dumps({"vaults": generated.vaults}))
    (folder / "m.json").write_text(json.dumps({"members": generated.members}))
    return Inventory.from_dumps([str(folder)])


@st.composite
def cases(draw: st.DrawFn) -> tuple[Any, str, str, str | None]:
    generated = draw(inventories())
    project = draw(st.none() | st.sampled_from(PROJECTS))
    base = draw(query_strings(with_project=project is not None))
    extra = draw(query_strings(with_project=project is not None))
    return generated, base, extra, project


def unpaged(query: str) -> str:
    keep = [p for p in query.split("&") if p.split("=")[0] not in ("limit", "offset", "marker")]
    return "&".join(p for p in keep if p)


@given(cases())
def test_adding_filters_never_raises_the_count(case: tuple[Any, str, str, str | None]) -> None:
    generated, base, extra, project = case
    base, extra = unpaged(base), unpaged(extra)
    if "status=" in base:  # more status values widen (OR), so they are no added filter
        extra = "&".join(p for p in extra.split("&") if not p.startswith("status="))
    if project is not None and "own_type=" not in base:
        # With a project, no own_type means private: own_type=shared or all_granted
        # replaces that default rather than adding a filter (it can widen).
        extra = "&".join(p for p in extra.split("&") if not p.startswith("own_type="))
    with tempfile.TemporaryDirectory() as tmp, load(generated, Path(tmp)) as inv:
        try:
            wide = inv.query(base, project=project)
            narrow = inv.query("&".join(p for p in [base, extra] if p), project=project)
        except QueryError:
            return  # e.g. the same parameter twice: an error, not a result
        assert narrow.count <= wide.count
        assert set(narrow.ids) <= set(wide.ids)


def _key(value: Any) -> Any:
    return value.timestamp() if isinstance(value, datetime) else value


@given(cases())
def test_rows_are_in_sort_order_with_id_tie_break(case: tuple[Any, str, str, str | None]) -> None:
    generated, base, _, project = case
    with tempfile.TemporaryDirectory() as tmp, load(generated, Path(tmp)) as inv:
        try:
            result = inv.query(unpaged(base), project=project)
        except QueryError:
            return
        keys = sort_keys(inv.parse(unpaged(base), project=project))
        rows = result.frame.select([k.key for k in keys]).rows()
        for before, after in itertools.pairwise(rows):
            for key, x, y in zip(keys, before, after, strict=True):
                if x == y:
                    continue
                if x is None or y is None:
                    assert y is None, f"nulls sort last for {key}"
                else:
                    assert (_key(x) > _key(y)) if key.descending else (_key(x) < _key(y)), key
                break
            else:
                raise AssertionError(f"two rows tie on every key including id: {before}")


@given(inventories(), st.sampled_from(["available", "error", "protecting"]), st.integers(1, 100))
def test_every_row_satisfies_its_filters(generated: Any, status: str, percent: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, load(generated, Path(tmp)) as inv:
        full = {
            v["id"]
            for v in generated.vaults
            if v["billing"]["size"]
            and v["billing"]["used"] * 100 >= percent * v["billing"]["size"] * 1024
        }
        try:
            result = inv.query(f"status={status}&used_percent={percent}&name=a")
        except QueryError:
            assert not generated.vaults  # used_percent needs vault data
            return
        for row in result.frame.iter_rows(named=True):
            assert row["status"] == status
            assert row["vault_id"] in full
            assert "a" in row["name"]
