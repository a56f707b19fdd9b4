"""The Spark backend answers as the polars engine and the reference model do.

The same suites as the polars engine, run against :mod:`engine.backends.spark`
with ONE SparkSession for the whole test session (starting one takes tens of
seconds on two cores): the golden table, the differential property test
against :mod:`engine.testing.reference`, the paging walk, the
``own_type=shared`` drift case and a store with superseded rows. Property
tests draw a quarter of the active profile's examples (6 by default, 25 under
``ci``, 500 under ``nightly``): each Spark query costs a few jobs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install '.[spark]')")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip(
        "no Java runtime for Spark (java not on PATH, JAVA_HOME unset)", allow_module_level=True
    )

from hypothesis import given, note, settings
from hypothesis import strategies as st

from engine.api import ingest
from engine.backends import spark as backend
from engine.backends.base import Result
from engine.inventory import Inventory
from engine.query import Semantics
from engine.testing import reference
from engine.testing.strategies import Inventory as Generated
from engine.testing.strategies import Step, ingest_sequences
from tests.golden.cases import SAMPLE, Case, cases, engine_answer, load_store
from tests.records import backup, page
from tests.test_differential import engine_summary, load, reference_summary, scenarios
from tests.test_differential import load_store as load_store_twice
from tests.test_history import _engine_state, _instants
from tests.test_history_readers import _expected, _model_runs
from tests.test_paging import PagingWalk

#: Property-test examples: a quarter of the active profile's.
EXAMPLES = max(1, settings.default.max_examples // 4)
CASES = cases()


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The one SparkSession of the test session (local[2]), stopped at its end."""
    session = backend.session()
    yield session
    session.stop()


class OnSpark:
    """An inventory whose queries Spark answers: the engine suites' helpers take it as is."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory

    def query(
        self,
        query: str,
        *,
        project: str | None = None,
        semantics: Semantics | None = None,
        columns: list[str] | None = None,
    ) -> Result:
        parsed = self.inventory.parse(query, project=project, semantics=semantics)
        return backend.answer(parsed, self.inventory, columns)


def on_spark(inventory: Inventory) -> Inventory:
    return cast(Inventory, OnSpark(inventory))


# --- golden table ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def golden_answers(spark: Any) -> dict[int, str]:
    """Spark's answer to every golden line, asked four at a time (a query is mostly latency)."""
    inventory = Inventory.open(load_store())
    with ThreadPoolExecutor(4) as pool:
        answers = pool.map(lambda case: engine_answer(on_spark(inventory), case), CASES)
        return {case.line: got for case, got in zip(CASES, answers, strict=True)}


@pytest.mark.parametrize("case", CASES, ids=[f"line{c.line}" for c in CASES])
def test_spark_matches_golden(golden_answers: dict[int, str], case: Case) -> None:
    assert golden_answers[case.line] == case.expected


# --- differential ---------------------------------------------------------------------------


@settings(max_examples=EXAMPLES)
@given(scenarios(), st.booleans())
def test_spark_equals_reference(
    spark: Any, scenario: tuple[Generated, list[tuple[str, str | None]]], from_store: bool
) -> None:
    """In memory, or from a store of two ingests (superseded rows: the live-row rule)."""
    generated, queries = scenario
    opened = load_store_twice if from_store else load
    with tempfile.TemporaryDirectory() as tmp, opened(generated, Path(tmp)) as inv:
        for query, project in queries:
            note(f"query={query!r} project={project!r}")
            expected = reference_summary(generated, query, project)
            assert engine_summary(on_spark(inv), query, project) == expected


# --- paging ---------------------------------------------------------------------------------


class SparkPagingWalk(PagingWalk):
    """The paging walk with every page asked of Spark (the unpaged answer is the engine's)."""

    def _page(self, extra: str) -> list[str]:
        assert self.inv is not None
        query = "&".join(p for p in [self.query, extra] if p)
        return backend.answer(self.inv.parse(query), self.inv, ["id"]).ids


@pytest.mark.usefixtures("spark")
class TestSparkPaging(SparkPagingWalk.TestCase):  # type: ignore[name-defined,misc]
    settings = settings(max_examples=max(1, EXAMPLES // 2), stateful_step_count=6)


# --- named cases ----------------------------------------------------------------------------


def test_shared_without_member_data_is_every_foreign_backup(spark: Any, tmp_path: Path) -> None:
    """The drift of benchmarks/sql.py (issue 15): no members, own_type=shared keeps 'b'."""
    (tmp_path / "b.json").write_text(page(backup("b", project_id="p2")))
    with Inventory.from_dumps([str(tmp_path / "b.json")]) as inv:
        query = "own_type=shared"
        alone = Generated([backup("b", project_id="p2")], [], [])
        expected = reference_summary(alone, query, "p1")
        assert expected["ids"] == ["b"]
        assert engine_summary(on_spark(inv), query, "p1") == expected
        assert inv.query(query, project="p1").ids == ["b"]


def test_store_with_superseded_rows_shows_live_rows_only(spark: Any, tmp_path: Path) -> None:
    """Two ingests, the second updating 'b1': Spark sees the newer copy, once."""
    old = backup("b1", status="error", updated_at="2020-02-21T07:07:25.000000")
    new = backup("b1", status="available", updated_at="2020-03-01T00:00:00.000000")
    (tmp_path / "one.json").write_text(page(old, backup("b2")))
    (tmp_path / "two.json").write_text(page(new))
    store = tmp_path / "store"
    ingest([str(tmp_path / "one.json")], store)
    ingest([str(tmp_path / "two.json")], store)
    with Inventory.open(store) as inv:
        assert inv.manifest.superseded.get("backups") == 1
        result = backend.answer(inv.parse("sort=id:asc"), inv)
        assert result.ids == ["b1", "b2"]
        assert result.rows["status"].to_list() == ["available", "available"]
        assert json.loads(result.payloads[0])["updated_at"] == "2020-03-01T00:00:00.000000"
        assert backend.answer(inv.parse("status=error"), inv).count == 0
        paged = backend.answer(inv.parse("sort=id:desc&limit=1"), inv)  # records read by id
        assert paged.count == 2 and paged.rows["status"].to_list() == ["available"]


def test_records_come_back_whole(spark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nested structs, lists and instants survive Spark: the page equals the engine's.

    Through both paths: records carried through the sort, and read by id
    afterwards (a store's page; an in-memory one past DEEP_OFFSET, here 0).
    """
    with Inventory.from_dumps(str(SAMPLE)) as memory:
        for deep_offset in (backend.DEEP_OFFSET, 0):
            monkeypatch.setattr(backend, "DEEP_OFFSET", deep_offset)
            for inv in (Inventory.open(load_store()), memory):
                query = inv.parse("sort=name:desc,created_at:asc&limit=7&offset=3")
                assert backend.answer(query, inv).rows.equals(inv.run(query).rows)


def test_explain_names_each_filter_and_the_plan(spark: Any) -> None:
    inv = Inventory.open(load_store(), engine="spark", spark=spark)
    text = inv.explain("status=error&used_percent=80")
    assert "status is one of error" in text
    assert "at least 80 % used" in text
    assert "spark plan:" in text and "BroadcastHashJoin" in text


def test_the_inventory_api_takes_a_session_and_the_cli_a_master(spark: Any) -> None:
    """What a user types: Inventory.open(engine="spark", spark=session), and the CLI."""
    store = load_store()
    query = "status=available&status=error&sort=name:asc&limit=5"
    with Inventory.open(store) as inv:
        expected = inv.query(query, columns=["id", "_payload"]).to_dict()
        assert Inventory.open(store, engine="spark", spark=spark).count("status=error") == (
            inv.count("status=error")
        )
    with Inventory.open(store, engine="spark", spark=spark) as on_spark:
        assert on_spark.query(query, columns=["id", "_payload"]).to_dict() == expected
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "query", query, "--store", str(store),
         "--engine", "spark", "--spark-master", "local[1]", "-f", "json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == expected
    # Quiet by default: neither Spark's banner and WARN lines nor the JVM's notice.
    noise = ("log4j", "WARN", "Using Spark's default", "Setting default log level")
    assert not [line for line in done.stderr.splitlines() if any(n in line for n in noise)], (
        done.stderr[-2000:]
    )


def test_the_jvm_stderr_is_passed_on_less_its_notices(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.write(write, b"WARNING: Using incubator modules: jdk.incubator.vector\nERROR real\n")
    os.close(write)
    with (tmp_path / "err").open("wb") as out, os.fdopen(read, "rb") as stream:
        backend.pass_on(stream, to=out.fileno())
    assert (tmp_path / "err").read_bytes() == b"ERROR real\n"


def test_spark_logs_come_back_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, wanted in (("1", True), ("yes", True), ("0", False), ("", False)):
        monkeypatch.setenv(backend.VERBOSE_ENV, value)
        assert backend.verbose() is wanted
    monkeypatch.delenv(backend.VERBOSE_ENV)
    assert not backend.verbose()
    assert backend.LOG4J2_FILE.is_file()
    assert "rootLogger.level = error" in backend.LOG4J2_FILE.read_text()


def test_a_running_session_is_used_and_left_running(spark: Any) -> None:
    held = backend.Started.on(None)  # nothing asked for: the session already running
    assert not held.own
    held.close()  # not cbrq's to stop
    assert spark.range(2).count() == 2
    with pytest.raises(backend.SessionError, match="already runs a Spark session"):
        backend.Started.on("local[7]")  # asked for another master: said, not ignored


# --- SPEC §6: a store with snapshots, as of each instant --------------------------------------


@pytest.fixture(scope="module")
def answering(spark: Any) -> Any:
    """The session, once it has answered a query (Spark's first answer raises the recursion
    limit, which hypothesis refuses to see change inside a test)."""
    with Inventory.open(load_store(), engine="spark", spark=spark) as inv:
        inv.query("limit=1")
    return spark


@settings(max_examples=EXAMPLES)
@given(ingest_sequences())
def test_spark_answers_as_the_history_model_at_every_instant(
    answering: Any, steps: list[Step]
) -> None:
    def check(store: Path, kept: list[reference.Ingest]) -> None:
        with Inventory.open(store, engine="spark", spark=answering) as inv:
            for at in _instants(kept):
                note(f"at {at}")
                assert _engine_state(inv.as_of(at)) == _expected(kept, at)

    _model_runs(steps, check)
