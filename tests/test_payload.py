"""Output-time timestamp rewriting: only timestamps change, whatever the chunking."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import payload
from engine.instants import canonical
from engine.spec import TIMESTAMP_KEYS
from engine.testing.strategies import backups


@st.composite
def texts(draw: st.DrawFn) -> list[str]:
    records = [draw(backups(f"b{i}")) for i in range(draw(st.integers(0, 6)))]
    return [msgspec.json.encode(r).decode() for r in records] + ['{"created_at":"not a time"}']


def walk(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [(k, v) for k, v in value.items()] + [x for v in value.values() for x in walk(v)]
    if isinstance(value, list):
        return [x for v in value for x in walk(v)]
    return []


@given(texts())
def test_chunks_agree_and_only_timestamps_change(records: list[str]) -> None:
    series = pl.Series(records, dtype=pl.String)
    small = payload.canonical_payloads(series)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(payload, "CHUNK", 2)
        chunked = payload.canonical_payloads(series)
    assert small.to_list() == chunked.to_list()
    for before, after in zip(records, small.to_list(), strict=True):
        old, new = json.loads(before), json.loads(after)
        for (key, was), (_, now) in zip(walk(old), walk(new), strict=True):
            if key in TIMESTAMP_KEYS and isinstance(was, str) and canonical(was) is not None:
                assert now == canonical(was)
            elif not isinstance(was, dict | list):
                assert now == was
