"""The engine answers exactly as the naive reference model, on generated data and queries."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import example, given, note, settings
from hypothesis import strategies as st

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
