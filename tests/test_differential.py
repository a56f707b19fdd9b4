"""The engine answers exactly as the naive reference model, on generated data and queries."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import example, given, note, settings
from hypothesis import strategies as st

from engine.api import ingest
from engine.backends.resident import Resident
from engine.errors import QueryError
from engine.inventory import Inventory
from engine.testing.reference import answer, summary
from engine.testing.strategies import (
    PROJECTS,
    bad_query_strings,
    inventories,
    query_strings,
)
from engine.testing.strategies import (
    Inventory as Generated,
)


def load(generated: Generated, folder: Path) -> Inventory:
    (folder / "b.json").write_text(json.dumps({"count": 0, "backups": generated.backups}))
    (folder / "v.json").write_text(json.dumps({"vaults": generated.vaults}))
    (folder / "m.json").write_text(json.dumps({"members": generated.members}))
    return Inventory.from_dumps([str(folder)])


def engine_summary(inv: Inventory, query: str, project: str | None) -> dict[str, Any]:
    try:
        return summary(inv.query(query, project=project, columns=["id", "_payload"]).to_dict())
    except QueryError as err:
        return summary({"error": [p.name for p in err.problems]})


def reference_summary(generated: Generated, query: str, project: str | None) -> dict[str, Any]:
    response = answer(generated.backups, generated.vaults, generated.members, query, project)
    return summary(response)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Generated, list[tuple[str, str | None]]]:
    generated = draw(inventories())
    queries = []
    for _ in range(draw(st.integers(1, 6))):
        project = draw(st.none() | st.sampled_from(PROJECTS))
        query = draw(
            query_strings(ids=generated.ids, with_project=project is not None) | bad_query_strings()
        )
        queries.append((query, project))
    return generated, queries


@settings(max_examples=3 * settings.default.max_examples)  # ci profile: 300
@given(scenarios())
@example(  # a repeated end_time is reported as such, not also as start_time > end_time
    (
        Generated([], [], []),
        [
            (
                "end_time=2020-01-01T00:00:00Z&start_time=2030-01-01T00:00:00Z"
                "&end_time=2020-01-01T00:00:00Z",
                None,
            )
        ],
    )
)
def test_engine_equals_reference(scenario: tuple[Generated, list[tuple[str, str | None]]]) -> None:
    generated, queries = scenario
    with tempfile.TemporaryDirectory() as tmp, load(generated, Path(tmp)) as inv:
        for query, project in queries:
            note(f"query={query!r} project={project!r}")
            assert engine_summary(inv, query, project) == reference_summary(
                generated, query, project
            )


def load_store(generated: Generated, folder: Path) -> Inventory:
    """The generated inventory ingested in two steps, so that the store has superseded rows."""
    half = len(generated.backups) // 2
    for n, part in enumerate((generated.backups[:half], generated.backups[half:])):
        (folder / f"b{n}.json").write_text(json.dumps({"count": 0, "backups": part}))
        paths = [str(folder / f"b{n}.json")]
        if n == 0:
            (folder / "v.json").write_text(json.dumps({"vaults": generated.vaults}))
            (folder / "m.json").write_text(json.dumps({"members": generated.members}))
            paths += [str(folder / "v.json"), str(folder / "m.json")]
        ingest(paths, folder / "store")
    return Inventory.open(folder / "store")


def resident_summary(resident: Resident, query: str, project: str | None) -> dict[str, Any]:
    try:
        parsed = resident.inventory.parse(query, project=project)
        return summary(resident.answer(parsed, ["id", "_payload"]).to_dict())
    except QueryError as err:
        return summary({"error": [p.name for p in err.problems]})


@given(scenarios(), st.booleans())
def test_server_snapshot_equals_reference(
    scenario: tuple[Generated, list[tuple[str, str | None]]], from_store: bool
) -> None:
    """What `cbrq serve` answers from (engine.backends.resident) agrees with the reference model."""
    generated, queries = scenario
    with tempfile.TemporaryDirectory() as tmp:
        opened = load_store if from_store else load
        with opened(generated, Path(tmp)) as inv:
            resident = Resident.build(inv)
            for query, project in queries:
                note(f"query={query!r} project={project!r}")
                assert resident_summary(resident, query, project) == reference_summary(
                    generated, query, project
                )
            for record in generated.backups[:3]:
                shown = resident.record(record["id"])
                assert shown is not None and json.loads(shown)["id"] == record["id"]
            assert resident.record("no-such-backup") is None
