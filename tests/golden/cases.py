"""Reading the golden cases and answering them with the engine or the reference model."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from engine.api import export_pages, ingest
from engine.errors import QueryError
from engine.inventory import Inventory
from engine.query import Semantics
from engine.testing.reference import answer

HERE = Path(__file__).resolve().parent
CASES_FILE = HERE / "cases.tsv"
SAMPLE = HERE.parent.parent / "sample_data"


@dataclass(frozen=True)
class Case:
    """One golden line."""

    line: int
    project: str | None
    options: str
    query: str
    expected: str


def cases() -> list[Case]:
    """Every case of cases.tsv."""
    found = []
    for number, line in enumerate(CASES_FILE.read_text().splitlines(), start=1):
        if line.startswith("#") or not line.strip():
            continue
        project, options, query, expected = line.split("\t")
        found.append(Case(number, None if project == "-" else project, options, query, expected))
    return found


@cache
def load_store() -> Path:
    """sample_data/ ingested once into a temporary store (removed when the process exits)."""
    root = Path(tempfile.mkdtemp(prefix="cbrq-golden-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    ingest([str(SAMPLE)], root / "store")
    return root / "store"


def summary(response: dict[str, Any]) -> str:
    """A response (or error) in the golden file's notation."""
    if "error" in response:
        return "error=" + ",".join(sorted(set(response["error"])))
    ids = ",".join(b["id"] for b in response["backups"])
    return f"count={response['count']} ids={ids}"


def expected_by_reference(store: Path, project: str, options: str, query: str) -> str:
    """The reference model's answer in golden notation."""
    records = {kind: _records(store, kind) for kind in ("backups", "vaults", "members")}
    response = answer(
        records["backups"],
        records["vaults"],
        records["members"],
        query,
        project=None if project == "-" else project,
        exact_names=options == "exact",
        time_field="protected_at" if options == "protected_at" else "created_at",
    )
    return summary(response)


def _records(store: Path, kind: str) -> list[dict[str, Any]]:
    [page] = [json.loads(p) for p in export_pages(store, kind=kind)]
    return list(page[kind])


def engine_answer(inventory: Inventory, case: Case) -> str:
    """The engine's answer in golden notation."""
    semantics = Semantics(
        "exact" if case.options == "exact" else "substring",
        "protected_at" if case.options == "protected_at" else "created_at",
    )
    try:
        result = inventory.query(case.query, project=case.project, semantics=semantics)
    except QueryError as err:
        return summary({"error": [p.name for p in err.problems]})
    return summary(result.to_dict())
