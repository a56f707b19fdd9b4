"""Backends (engine.backends): one rule per parameter each, and the same answers as polars.

The Spark backend runs the same checks in tests/test_spark.py (one SparkSession).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, note, settings

from engine.backends import ENGINES, Translator
from engine.backends import duckdb as duckdb_backend
from engine.inventory import Inventory
from engine.params import EFFECTS, PARAMS
from engine.plan import OneOf, VaultUsedAtLeast
from engine.query import BackupQuery
from engine.testing.reference import answer, summary
from engine.testing.strategies import Inventory as Generated
from tests.golden.cases import Case, cases, engine_answer, load_store
from tests.test_differential import (
    engine_summary,
    load,
    reference_summary,
    scenarios,
)
from tests.test_differential import (
    load_store as load_two_ingests,
)

CASES = cases()


def test_every_query_field_is_set_by_a_parameter_of_the_table() -> None:
    set_by = {param.field for param in PARAMS}
    fields = {f.name for f in dataclasses.fields(BackupQuery)} - {"project", "semantics"}
    assert fields == set_by
    assert {param.effect for param in PARAMS} <= set(EFFECTS)
    assert [p.name for p in PARAMS if p.effect == "none"] == ["dec", "show_replication"]


def test_a_missing_rule_fails_loudly() -> None:
    rules = dict(duckdb_backend.TRANSLATE.rules)
    del rules[VaultUsedAtLeast]
    rules[str] = rules[OneOf]
    with pytest.raises(ImportError, match="no rule for VaultUsedAtLeast; rules for types "
                       "that are not plan nodes: str"):  # fmt: skip
        Translator("test", rules)


def test_parameters_without_effect_change_nothing() -> None:
    with Inventory.open(load_store()) as inv:
        for engine in ("polars", "duckdb"):
            other = inv.using(engine)
            plain = other.query("sort=name:asc&limit=20").ids
            flagged = other.query("sort=name:asc&limit=20&dec=true&show_replication=false").ids
            assert plain == flagged


@pytest.fixture(scope="module")
def golden() -> Inventory:
    return Inventory.open(load_store(), engine="duckdb")


@pytest.mark.parametrize("case", CASES, ids=[f"line{c.line}" for c in CASES])
def test_duckdb_matches_golden(golden: Inventory, case: Case) -> None:
    assert engine_answer(golden, case) == case.expected


@settings(max_examples=max(5, settings.default.max_examples // 2))  # ci profile: 50
@given(scenarios())
def test_duckdb_equals_reference(scenario: tuple[Generated, list[tuple[str, str | None]]]) -> None:
    generated, queries = scenario
    with tempfile.TemporaryDirectory() as tmp:
        for opened in (load, load_two_ingests):  # in memory; a store with superseded rows
            folder = Path(tmp) / opened.__name__
            folder.mkdir()
            with opened(generated, folder) as inv:
                duck = inv.using("duckdb")
                for query, project in queries:
                    note(f"{opened.__name__}: query={query!r} project={project!r}")
                    assert engine_summary(duck, query, project) == reference_summary(
                        generated, query, project
                    )


def test_shared_without_member_data_is_every_foreign_backup(tmp_path: Path) -> None:
    """The drift once found in the benchmark's SQL: no members, own_type=shared."""
    record = {"id": "b", "project_id": "other", "created_at": "2026-01-01T00:00:00Z"}
    (tmp_path / "b.json").write_text(json.dumps({"count": 1, "backups": [record]}))
    query = "own_type=shared"
    want = answer([record], [], [], query, project="mine")
    assert [b["id"] for b in want["backups"]] == ["b"]
    with Inventory.from_dumps(tmp_path) as inv:
        for engine in ("polars", "duckdb"):
            got = inv.using(engine).query(query, project="mine").to_dict()
            assert summary(got) == summary(want), engine
    (tmp_path / "store").mkdir()
    from engine.api import ingest

    ingest([str(tmp_path / "b.json")], tmp_path / "store")
    with Inventory.open(tmp_path / "store", engine="duckdb") as inv:
        assert inv.query(query, project="mine").ids == ["b"]


def test_explain_prints_sql_that_duckdb_runs_as_is(tmp_path: Path) -> None:
    store = load_store()
    query = "status=available&status=error&used_percent=50&sort=name:asc&limit=7"
    args = [sys.executable, "-m", "engine.cli"]
    text = subprocess.run(
        [*args, "explain", query, "--store", str(store), "--engine", "duckdb"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    sql = text.split("duckdb plan:\n", 1)[1]
    rows = duckdb.sql(sql).fetchall()
    with Inventory.open(store) as inv:
        expected = inv.query(query)
    assert [r[0] for r in rows] == expected.ids and rows[0][1] == expected.count


def test_query_and_count_take_an_engine_on_the_command_line() -> None:
    store = str(load_store())
    args = [sys.executable, "-m", "engine.cli"]
    query = "status=error&sort=name:asc&limit=4"
    outputs = []
    for engine in ("polars", "duckdb"):
        done = subprocess.run(
            [*args, "query", query, "--store", store, "--engine", engine, "-f", "json"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    counted = subprocess.run(
        [*args, "count", "status=error", "--store", store, "--engine", "duckdb"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert int(counted) == json.loads(outputs[0])["count"]


def test_an_unknown_engine_names_the_allowed_ones() -> None:
    with Inventory.open(load_store()) as inv, pytest.raises(ValueError, match="allowed: polars"):
        inv.using("duckbd")
    assert ENGINES == ("polars", "duckdb", "spark")


def test_an_engine_without_its_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from engine.errors import MissingExtra

    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "duckdb" else found(name, *a)
    )
    with Inventory.open(load_store()) as inv, pytest.raises(MissingExtra) as caught:
        inv.using("duckdb")
    assert "pip install 'cbrq[duckdb]'" in str(caught.value) and caught.value.exit_status == 2


def test_one_inventory_answers_from_several_threads_on_duckdb() -> None:
    from concurrent.futures import ThreadPoolExecutor

    queries = ["sort=name:asc&limit=3", "status=error", "used_percent=50", "offset=2&limit=4"] * 10
    with Inventory.open(load_store()) as inv:
        expected = [inv.query(q, columns=["id"]).ids for q in queries]
        duck = inv.using("duckdb")
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda q: duck.query(q, columns=["id"]).ids, queries))
    assert got == expected


def test_explain_gives_each_engines_own_words() -> None:
    with Inventory.open(load_store(), engine="duckdb") as inv:
        query = inv.parse("status=error&used_percent=80&own_type=shared", project="p")
        text = inv.explain("status=error&used_percent=80&own_type=shared", project="p")
        said = duckdb_backend.words(query, inv)
    assert len(said) == 3 and all(f"  - {words}\n" in text for words in said)


def test_spark_without_java_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.errors import MissingExtra

    pytest.importorskip("pyspark")
    monkeypatch.setenv("JAVA_HOME", "/nonexistent-java")
    with Inventory.open(load_store()) as inv, pytest.raises(MissingExtra) as caught:
        inv.using("spark")
    assert "Java" in str(caught.value) and "JAVA_HOME" in str(caught.value)


def _shape(cls: type) -> dict[str, list[str]]:
    """The public methods of a backend class and their parameters (``self`` left out)."""
    import inspect

    methods = ("answer", "count", "words", "plan", "check")
    return {
        name: list(inspect.signature(getattr(cls, name)).parameters)[0 if name == "check" else 1 :]
        for name in methods
    }


def test_every_backend_has_the_protocols_shape() -> None:
    import importlib

    from engine.backends import REGISTRY, Backend, backend_class
    from engine.backends.resident import Resident

    expected = _shape(Backend)
    for name, entry in REGISTRY.items():
        cls = getattr(importlib.import_module(entry.module), entry.cls)
        assert cls.name == name and _shape(cls) == expected, name
        assert backend_class(name) is cls
    assert _shape(Resident) == expected and Resident.name == "resident"


def test_the_facade_names_no_engine_and_the_cli_offers_the_registrys() -> None:
    from click.testing import CliRunner

    from engine.cli import main
    from tests.conftest import REPO

    source = (REPO / "engine" / "inventory.py").read_text("utf-8")
    assert not [name for name in ENGINES[1:] if f'== "{name}"' in source or f"'{name}'" in source]
    shown = CliRunner().invoke(main, ["query", "--help"], terminal_width=200).output
    assert "[polars|duckdb|spark]" in shown


def test_resident_count_words_and_plan_agree_with_polars() -> None:
    from engine.backends.resident import Resident

    with Inventory.open(load_store()) as inv:
        resident = Resident.build(inv)
        for text in ["status=error&used_percent=50", "own_type=shared", "sort=name:asc"]:
            query = inv.parse(text, project="p" if "own_type" in text else None)
            assert resident.count(query) == inv.count(text, project=query.project)
            assert resident.words(query) == inv.backend.words(query)
            assert resident.answer(query, ["id"]).ids == inv.run(query, ["id"]).ids
            assert "walk the order of" in resident.plan(query)
