"""Spark reads a store's files by their exact names, whatever characters its path holds.

Spark expands ``*``, ``?``, ``[...]`` and ``{a,b}`` in the paths it reads
(Hadoop's globbing): a store at ``st*`` answered from its sibling ``stx``
too, and one at ``st{x,y}`` from ``stx`` alone. The stores and checks are
those of ``tests/test_store_paths.py``; one SparkSession (the one of
``tests/test_spark.py``) answers every case.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.inventory import Inventory
from tests.test_spark import spark  # noqa: F401  (the one session fixture of the test run)
from tests.test_store_paths import IDS, OWN, Stores, check_answers


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    return Stores(tmp_path_factory.mktemp("spark-paths"))


@pytest.mark.parametrize("name", IDS)
def test_spark_answers_from_the_named_store_only(
    spark: Any,  # noqa: F811  (the fixture imported above)
    stores: Stores,
    name: str,
) -> None:
    with Inventory.open(stores[name], engine="spark", spark=spark) as inventory:
        check_answers(inventory)


def test_spark_reads_a_relative_store_path_where_python_does(
    spark: Any,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The JVM's working folder is fixed when it starts: cbrq gives Spark absolute paths."""
    stores = Stores(tmp_path)
    stores["st*"]
    monkeypatch.chdir(tmp_path / str(IDS.index("st*")))
    with Inventory.open("st*", engine="spark", spark=spark) as inventory:
        assert inventory.query("sort=id:asc").ids == OWN
