"""The public surface of ``engine`` is pinned: a change to it is a deliberate edit here."""

from __future__ import annotations

import subprocess
import sys

import engine

PUBLIC = [
    "BackupQuery",
    "CbrqError",
    "IngestSummary",
    "InputError",
    "Inventory",
    "MissingExtra",
    "NotFoundError",
    "QueryError",
    "RecordError",
    "Semantics",
    "SortKey",
    "StoreError",
    "__version__",
    "compact",
    "export_pages",
    "load_dumps",
    "parse_query",
    "store_info",
]


def test_all_is_pinned() -> None:
    assert engine.__all__ == PUBLIC
    assert sorted(engine._HOMES) == sorted(set(PUBLIC) - {"__version__"})


def test_every_public_name_is_the_one_its_module_defines() -> None:
    from engine import api, errors, inventory, params, query

    homes = (api, errors, inventory, params, query)
    for name in PUBLIC:
        if name == "__version__":
            continue
        value = getattr(engine, name)
        assert any(getattr(home, name, None) is value for home in homes), name


def test_star_import_gives_exactly_the_surface() -> None:
    scope: dict[str, object] = {}
    exec("from engine import *", scope)
    assert sorted(k for k in scope if k != "__builtins__") == sorted(PUBLIC)


def test_unknown_names_raise_attribute_error() -> None:
    assert not hasattr(engine, "no_such_name")


def test_importing_engine_loads_neither_polars_nor_pyarrow() -> None:
    code = "import engine, sys; print(sorted({'polars', 'pyarrow'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
