"""SPEC §5 analyses: the engine answers as the plain-Python model, and both as the golden cases.

The golden cases (``tests/golden/analyses/<analysis>.json``) were worked out
by hand from SPEC §5 and the decisions in ``engine/spec.py``; each says why in
its ``why``. Adding a case needs no Python: append an object to the file.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from engine.api import ingest
from engine.errors import QueryError
from engine.inventory import Inventory
from engine.testing.reference import ANALYSIS_COLUMNS, STATS_FIELDS, STATS_PERIODS, analysis
from engine.testing.strategies import (
    EXPIRY_DAYS,
    backups,
    inventories,
    query_strings,
    timestamps,
)
from engine.testing.strategies import Inventory as Generated

GOLDEN = Path(__file__).resolve().parent / "golden" / "analyses"
ANALYSES = ("stats", "rpo", "retention", "capacity", "hygiene")
PAGING = ("marker", "offset", "limit", "sort")
Record = dict[str, Any]


def write(folder: Path, backups: Sequence[Record], vaults: Sequence[Record]) -> Path:
    """The records written as dump files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "b.json").write_text(json.dumps({"count": len(backups), "backups": list(backups)}))
    (folder / "v.json").write_text(json.dumps({"vaults": list(vaults)}))
    return folder


def load(folder: Path, backups: Sequence[Record], vaults: Sequence[Record]) -> Inventory:
    """The records written as dump files and read the way a user does (``--from``)."""
    return Inventory.from_dumps([str(write(folder, backups, vaults))])


def engine_answer(inv: Inventory, name: str, filter: str | None, options: Record) -> Record:
    """``Inventory.<name>(...).to_json()``, or the bad parameters' names for a bad filter."""
    try:
        return dict(getattr(inv, name)(filter, **options).to_json())
    except QueryError as err:
        return {"error": sorted({p.name for p in err.problems})}


def records(generated: Generated) -> tuple[list[Record], list[Record]]:
    return generated.backups, generated.vaults


def model_answer(name: str, generated: Generated, filter: str | None, options: Record) -> Record:
    """The reference model's answer for the same inputs."""
    return analysis(name, generated.backups, generated.vaults, [], filter, **options)


def assert_same(got: Record, want: Record, name: str) -> None:
    """Equal JSON, and every row's keys in SPEC §5's order."""
    assert got == want
    for row in got.get("rows", []):
        keys = tuple(k for k in row if k not in ANALYSIS_COLUMNS[name])
        assert list(row) == [*keys, *ANALYSIS_COLUMNS[name]]


# --- golden cases -------------------------------------------------------------


def golden(name: str) -> list[Record]:
    cases: list[Record] = json.loads((GOLDEN / f"{name}.json").read_text())
    for case in cases:
        case["options"] = {k: tuple(v) if k == "by" else v for k, v in case["options"].items()}
    return cases


CASES = [(name, n, case) for name in ANALYSES for n, case in enumerate(golden(name))]
IDS = [f"{name}-{n}" for name, n, _ in CASES]


def test_every_analysis_has_golden_cases() -> None:
    assert {name for name, _, _ in CASES} == set(ANALYSES)
    assert all(case["why"] and case["expected"]["rows"] is not None for _, _, case in CASES)


@pytest.mark.parametrize(("name", "n", "case"), CASES, ids=IDS)
def test_model_matches_golden(name: str, n: int, case: Record) -> None:
    got = analysis(
        name,
        case.get("backups", []),
        case.get("vaults", []),
        [],
        case.get("filter"),
        **case["options"],
    )
    assert_same(got, case["expected"], name)


@pytest.mark.parametrize(("name", "n", "case"), CASES, ids=IDS)
def test_engine_matches_golden(tmp_path: Path, name: str, n: int, case: Record) -> None:
    with load(tmp_path, case.get("backups", []), case.get("vaults", [])) as inv:
        got = engine_answer(inv, name, case.get("filter"), case["options"])
    assert_same(got, case["expected"], name)


# --- generated inventories ------------------------------------------------------


@st.composite
def filters(draw: st.DrawFn) -> str | None:
    """No filter, or a ListBackups query without paging and sort (a bad one now and then)."""
    if draw(st.booleans()):
        return None
    query = draw(query_strings(with_project=False))
    return "&".join(p for p in query.split("&") if p and p.partition("=")[0] not in PAGING)


#: ``at``: the default, an instant on the records' days (boundaries), or any instant.
ATS = (
    st.none()
    | timestamps(days=EXPIRY_DAYS)
    | st.datetimes(datetime(2020, 2, 20), datetime(2020, 4, 1), timezones=st.just(UTC))
)
DURATIONS = (
    st.builds("{}{}".format, st.integers(1, 400), st.sampled_from("mhd"))
    | st.sampled_from(["24h", "72h", "216h", "9d", "3d"])
    | st.timedeltas(timedelta(minutes=1), timedelta(days=400))
)
OPTIONS: dict[str, st.SearchStrategy[Record]] = {
    "stats": st.fixed_dictionaries(
        {
            "by": st.lists(
                st.sampled_from((*STATS_FIELDS, *STATS_PERIODS)),
                unique=True,
                min_size=1,
                max_size=3,
            ).map(tuple)
        }
    ),
    "rpo": st.fixed_dictionaries({"max_age": DURATIONS, "at": ATS}),
    "retention": st.fixed_dictionaries(
        {"min_days": st.integers(1, 60) | st.sampled_from([9, 26, 35, 44]), "at": ATS}
    ),
    "capacity": st.fixed_dictionaries({"at": ATS}),
    "hygiene": st.fixed_dictionaries(
        {"stuck_hours": st.integers(1, 300) | st.sampled_from([24, 72, 216]), "at": ATS}
    ),
}


@pytest.mark.parametrize("name", ANALYSES)
@settings(max_examples=max(10, settings.default.max_examples // 2))  # five analyses: ci 250
@given(generated=inventories(), filter=filters(), data=st.data())
def test_engine_equals_model(
    name: str, generated: Generated, filter: str | None, data: st.DataObject
) -> None:
    options = data.draw(OPTIONS[name], label="options")
    with tempfile.TemporaryDirectory() as tmp, load(Path(tmp), *records(generated)) as inv:
        got = engine_answer(inv, name, filter, options)
    want = model_answer(name, generated, filter, options)
    note(f"engine={got}\nmodel={want}")
    assert_same(got, want, name)


@st.composite
def superseded(draw: st.DrawFn) -> tuple[Generated, list[Record], list[Record]]:
    """An inventory, and older copies of its records (other values, no ``updated_at``)."""
    generated = draw(inventories())
    stale = []
    chosen = st.lists(st.sampled_from(generated.backups), unique_by=lambda r: r["id"])
    for record in draw(chosen) if generated.backups else []:
        copy = draw(backups(record["id"]))
        copy.pop("updated_at", None)  # older than any copy with one; else the later ingest wins
        stale.append(copy)
    old_vaults = [{**v, "resources": [{"id": "r-gone"}], "threshold": 1} for v in generated.vaults]
    return generated, stale, old_vaults


@settings(max_examples=max(5, settings.default.max_examples // 3))  # two ingests per example
@given(superseded(), st.data())
def test_a_store_analyses_its_live_records_only(
    case: tuple[Generated, list[Record], list[Record]], data: st.DataObject
) -> None:
    """Superseded copies in a store (SPEC §2 dedup) are no part of any analysis."""
    generated, stale, old_vaults = case
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        ingest([str(write(Path(tmp) / "old", stale, old_vaults))], store)
        ingest([str(write(Path(tmp) / "new", *records(generated)))], store)
        with Inventory.open(store) as inv:
            for name in ANALYSES:
                options = data.draw(OPTIONS[name], label=name)
                got = engine_answer(inv, name, None, options)
                assert_same(got, model_answer(name, generated, None, options), name)


@pytest.mark.parametrize("name", ANALYSES)
@pytest.mark.parametrize("bad", ["limit=1", "sort=name", "offset=0", "marker=b1"])
def test_paging_or_sort_in_the_filter_is_an_error(tmp_path: Path, name: str, bad: str) -> None:
    backups = [{"id": "b1", "status": "available"}]
    filter = f"status=available&{bad}"
    with load(tmp_path, backups, []) as inv:
        got = engine_answer(inv, name, filter, {})
    want = analysis(name, backups, [], [], filter)
    assert got == want == {"error": [bad.partition("=")[0]]}


@pytest.mark.parametrize("name", ["rpo", "retention", "hygiene"])
def test_at_now_is_read_once_and_stated(tmp_path: Path, name: str) -> None:
    """``at="now"``: the output states the instant used, and the rows are measured against it."""
    case = golden(name)[0]
    before = datetime.now(UTC)
    with load(tmp_path, case.get("backups", []), case.get("vaults", [])) as inv:
        got = engine_answer(inv, name, case.get("filter"), {**case["options"], "at": "now"})
    after = datetime.now(UTC)
    stated = datetime.fromisoformat(got["at"]).replace(tzinfo=UTC)
    assert before <= stated <= after
    options = {**case["options"], "at": stated}
    assert_same(
        got,
        analysis(
            name, case.get("backups", []), case.get("vaults", []), [], case.get("filter"), **options
        ),
        name,
    )
