"""Properties of ingest: nothing a dump holds is lost, and the result depends
only on the records, not on how they were split into files or how often."""

from __future__ import annotations

import gzip
import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import example, given
from hypothesis import strategies as st

from engine.api import export_pages, ingest
from engine.instants import canonical, parse_instant
from engine.spec import TIMESTAMP_KEYS
from engine.store.read import scan
from engine.store.schema import INTERNAL_COLUMNS
from engine.testing.strategies import timestamps

# Small alphabets make duplicate ids and shared timestamps common.
IDS = st.sampled_from([f"b{i}" for i in range(12)])


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
UNKNOWN_NAMES = st.sampled_from(["x_tag", "x_deep", "note", "ünïcode", 'q"uote', "x\\y"])


def json_values(depth: int = 2) -> st.SearchStrategy[Any]:
    if depth == 0:
        return JSON_SCALARS
    inner = json_values(depth - 1)
    return (
        JSON_SCALARS
        | st.lists(inner, max_size=3)
        | st.dictionaries(UNKNOWN_NAMES, inner, max_size=3)
    )


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def records(draw: st.DrawFn, depth: int = 1) -> dict[str, Any]:
    record: dict[str, Any] = {"id": draw(IDS)}
    fields: dict[str, st.SearchStrategy[Any]] = {
        "name": optional(st.text(max_size=6)),
        "status": st.sampled_from(["available", "error", "protecting"]),
        "created_at": optional(timestamps()),
        "updated_at": optional(timestamps()),
        "protected_at": optional(timestamps()),
        "resource_size": optional(st.integers(0, 2**40)),
        "incremental": optional(st.booleans()),
        "extend_info": optional(
            st.fixed_dictionaries(
                {}, optional={"bootable": st.booleans(), "progress": st.integers(0, 100)}
            )
        ),
        "replication_records": st.lists(
            st.fixed_dictionaries(
                {"id": st.text(max_size=4)},
                optional={
                    "created_at": timestamps(),
                    "extra_info": st.text(max_size=8)
                    | st.dictionaries(UNKNOWN_NAMES, JSON_SCALARS),
                },
            ),
            max_size=2,
        ),
    }
    for name, strategy in fields.items():
        if draw(st.booleans()):
            record[name] = draw(strategy)
    if depth and draw(st.booleans()):
        record["children"] = draw(st.lists(records(depth=depth - 1), max_size=2))
    for name in draw(st.lists(UNKNOWN_NAMES, max_size=2, unique=True)):
        record[name] = draw(json_values())
    return record


@st.composite
def dumps(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """Records split into files (each a list of records)."""
    recs = draw(st.lists(records(), min_size=1, max_size=14))
    cuts = sorted(draw(st.lists(st.integers(0, len(recs)), max_size=3)))
    bounds = [0, *cuts, len(recs)]
    return [recs[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def write_files(folder: Path, files: list[list[dict[str, Any]]], style: int) -> list[str]:
    paths = []
    for i, recs in enumerate(files):
        form = (i + style) % 3
        path = folder / f"f{i:03d}.{'ndjson' if form == 1 else 'json'}{'.gz' if form == 2 else ''}"
        if form == 1:
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs)
        else:
            text = json.dumps({"count": len(recs), "backups": recs}, indent=2, ensure_ascii=False)
        data = text.encode()
        path.write_bytes(gzip.compress(data) if form == 2 else data)
        paths.append(str(path))
    return paths


def canonicalized(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in TIMESTAMP_KEYS and isinstance(item, str) and canonical(item) is not None:
                out[key] = canonical(item)
            else:
                out[key] = canonicalized(item)
        return out
    if isinstance(value, list):
        return [canonicalized(v) for v in value]
    return value


def expected(files: list[list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The written dedup rule: newest updated_at; ties (and no time) to the later copy."""
    best: dict[str, tuple[Any, dict[str, Any]]] = {}
    for recs in files:
        for rec in recs:
            stamp = rec.get("updated_at")
            instant = parse_instant(stamp) if isinstance(stamp, str) else None
            rank = (instant is not None, instant)
            held = best.get(rec["id"])
            if held is None or not _older(rank, held[0]):
                best[rec["id"]] = (rank, rec)
    return {key: canonicalized(rec) for key, (_, rec) in best.items()}


def _older(rank: Any, held: Any) -> bool:
    if rank[0] != held[0]:
        return not rank[0]
    return bool(rank[0] and rank[1] < held[1])


def exported(store: Path) -> dict[str, dict[str, Any]]:
    [page] = [json.loads(p) for p in export_pages(store)]
    assert page["count"] == len(page["backups"])
    return {rec["id"]: rec for rec in page["backups"]}


def typed(store: Path) -> pl.DataFrame:
    return scan(store, "backups").collect().drop(INTERNAL_COLUMNS).sort("id")


@given(dumps(), st.integers(0, 2))
@example([[{"id": "b0", "x_tag": {"created_at": "2020-02-21T07:00:00Z"}}]], 0)
@example([[{"id": "b0", "updated_at": None}, {"id": "b0", "name": "later"}]], 1)
def test_export_of_ingest_gives_back_every_record(
    files: list[list[dict[str, Any]]], style: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ingest(write_files(folder, files, style), folder / "store")
        assert exported(folder / "store") == expected(files)


@given(dumps(), st.integers(0, 2))
def test_page_split_and_repetition_do_not_matter(
    files: list[list[dict[str, Any]]], style: int
) -> None:
    flat = [rec for recs in files for rec in recs]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "a").mkdir()
        (folder / "b").mkdir()
        ingest(write_files(folder / "a", files, style), folder / "s1")
        ingest(write_files(folder / "b", [flat], style + 1), folder / "s2")
        assert typed(folder / "s1").equals(typed(folder / "s2"))
        assert exported(folder / "s1") == exported(folder / "s2")
        # Twice the same files: skipped; the same records in new files: no change.
        once = exported(folder / "s1")
        ingest(write_files(folder / "a", files, style), folder / "s1")
        ingest([str(p) for p in sorted((folder / "b").iterdir())], folder / "s1")
        (folder / "again.json").write_text(next(iter(export_pages(folder / "s1"))))
        ingest([str(folder / "again.json")], folder / "s1")
        assert exported(folder / "s1") == once
        assert typed(folder / "s1").equals(typed(folder / "s2"))
