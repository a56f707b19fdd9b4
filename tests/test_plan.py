"""engine.plan: a filter's meaning written once, and each backend's one rule per node type."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.backends import Translator
from engine.backends import duckdb as duckdb_backend
from engine.backends.polars import TRANSLATE as POLARS
from engine.params import PARAMS, Param, filter_plan, parse_query
from engine.plan import (
    NODE_TYPES,
    AnyOf,
    AtLeast,
    AtMost,
    Contains,
    Equals,
    IncrementalIs,
    MemberStatus,
    Node,
    OneOf,
    OwnedBy,
    OwnedElsewhere,
    SharedTo,
    VaultUsedAtLeast,
)
from engine.query import Semantics

NEW_YEAR = datetime(2026, 1, 1, 12, 30, 5, 123, tzinfo=UTC)

#: Every node type with the sentence ``cbrq explain`` prints for it (the words of the
#: per-backend templates they replace, byte for byte).
SENTENCES: list[tuple[Node, str]] = [
    (Equals("vault_id", "v'1"), 'vault_id equals "v\'1"'),
    (Contains("name", "db"), "name contains 'db' (case-sensitive)"),
    (OneOf("status", ("available", "error")), "status is one of available, error"),
    (AtLeast("created_at", NEW_YEAR), "created_at at or after 2026-01-01T12:30:05.000123 UTC"),
    (AtMost("protected_at", NEW_YEAR), "protected_at at or before 2026-01-01T12:30:05.000123 UTC"),
    (
        VaultUsedAtLeast(80),
        "the backup's vault is at least 80 % used (billing.used / billing.size)",
    ),
    (OwnedBy("p1"), "owned by project 'p1'"),
    (OwnedElsewhere("p1"), "owned by another project (no share-member data: every such backup)"),
    (SharedTo("p1"), "owned by another project and shared to 'p1'"),
    (MemberStatus("p1", "accepted"), "shared to 'p1' with member status 'accepted'"),
    (IncrementalIs(False), "incremental is false (or extend_info.incremental)"),
    (
        AnyOf((OwnedBy("p1"), OwnedElsewhere("p1"))),
        "owned by project 'p1', or owned by another project (no share-member data: every such "
        "backup)",
    ),
]


@pytest.mark.parametrize("node, sentence", SENTENCES, ids=[type(n).__name__ for n, _ in SENTENCES])
def test_each_node_carries_its_sentence(node: Node, sentence: str) -> None:
    assert node.text == sentence


def test_the_sentences_cover_every_node_type() -> None:
    assert {type(node) for node, _ in SENTENCES} == set(NODE_TYPES)


def test_nodes_are_frozen_values() -> None:
    assert OneOf("status", ("error",)) == OneOf("status", ("error",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        OwnedBy("p1").project = "p2"  # type: ignore[misc]


# --- the completeness check -------------------------------------------------------------


def test_a_backend_missing_a_node_type_fails_at_import() -> None:
    rules = dict(duckdb_backend.TRANSLATE.rules)
    del rules[VaultUsedAtLeast]
    with pytest.raises(ImportError, match=r"^backend test: no rule for VaultUsedAtLeast$"):
        Translator("test", rules)


def test_a_rule_for_something_that_is_not_a_node_fails_at_import() -> None:
    rules = dict(POLARS.rules)
    del rules[AnyOf]
    rules[str] = rules[Equals]
    with pytest.raises(
        ImportError,
        match=r"^backend test: no rule for AnyOf; rules for types that are not plan nodes: str$",
    ):
        Translator("test", rules)


def test_a_node_of_an_unknown_type_has_no_rule() -> None:
    @dataclasses.dataclass(frozen=True)
    class Fuzzy:
        text: str = "name sounds like 'x'"

    tables = duckdb_backend.SqlTables(has_members=True)
    with pytest.raises(TypeError, match=r"^backend duckdb: no rule for Fuzzy$"):
        duckdb_backend.TRANSLATE(Fuzzy(), tables)  # type: ignore[arg-type]


def test_a_filter_row_without_a_plan_is_refused() -> None:
    row = PARAMS[0]
    with pytest.raises(ValueError, match="a plan is given exactly for a filter"):
        dataclasses.replace(row, plan=None)
    with pytest.raises(ValueError, match="a plan is given exactly for a filter"):
        Param("sortish", "x", row.parse, effect="order", plan=row.plan)


# --- filter_plan: the SPEC decisions, made once ---------------------------------------------


def _plan(query: str, *, members: bool = True, **options: Any) -> tuple[Node, ...]:
    return filter_plan(parse_query(query, **options), members)


def test_private_is_the_default_ownership_with_a_project() -> None:
    assert _plan("", project="p1") == (OwnedBy("p1"),)
    assert _plan("") == ()


def test_shared_reads_the_members_when_there_are_any() -> None:
    assert _plan("own_type=shared", project="p1") == (SharedTo("p1"),)


def test_shared_without_member_data_is_every_foreign_backup() -> None:
    assert _plan("own_type=shared", project="p1", members=False) == (OwnedElsewhere("p1"),)


def test_all_granted_is_private_or_shared() -> None:
    assert _plan("own_type=all_granted", project="p1") == (AnyOf((OwnedBy("p1"), SharedTo("p1"))),)
    assert _plan("own_type=all_granted", project="p1", members=False) == (
        AnyOf((OwnedBy("p1"), OwnedElsewhere("p1"))),
    )


def test_names_are_substrings_unless_exact_names_is_asked() -> None:
    assert _plan("name=db&resource_name=vm") == (
        Contains("name", "db"),
        Contains("resource_name", "vm"),
    )
    exact = Semantics(name_match="exact")
    assert _plan("name=db&resource_name=vm", semantics=exact) == (
        Equals("name", "db"),
        Equals("resource_name", "vm"),
    )


def test_the_time_field_chooses_the_column_of_both_bounds() -> None:
    query = "start_time=2026-01-01T12:30:05.000123Z&end_time=2026-02-01T00:00:00%2B08:00"
    end = datetime(2026, 1, 31, 16, tzinfo=UTC)
    assert _plan(query) == (AtLeast("created_at", NEW_YEAR), AtMost("created_at", end))
    protected = Semantics(time_field="protected_at")
    assert _plan(query, semantics=protected) == (
        AtLeast("protected_at", NEW_YEAR),
        AtMost("protected_at", end),
    )


def test_all_granted_eps_is_no_filter() -> None:
    assert _plan("enterprise_project_id=all_granted_eps") == ()
    assert _plan("enterprise_project_id=0") == (Equals("enterprise_project_id", "0"),)


def test_nodes_come_in_the_parameter_table_order() -> None:
    query = (
        "incremental=true&member_status=accept&used_percent=5&status=error,available"
        "&resource_type=OS::Nova::Server&vault_id=v1&checkpoint_id=c&dec=true&sort=name&limit=3"
    )
    assert _plan(query, project="p1") == (
        Equals("checkpoint_id", "c"),
        Equals("vault_id", "v1"),
        Equals("resource_type", "OS::Nova::Server"),
        OneOf("status", ("error", "available")),
        VaultUsedAtLeast(5),
        OwnedBy("p1"),
        MemberStatus("p1", "accepted"),
        IncrementalIs(True),
    )


def test_the_backends_translate_the_plan_as_before() -> None:
    """DuckDB's SQL for every node, as the per-parameter rules wrote it (explain prints it)."""
    query = parse_query(
        "name=a'b&status=error&start_time=2026-01-01T00:00:00Z&used_percent=80"
        "&own_type=all_granted&member_status=pending&incremental=false",
        project="p1",
    )
    with_members = duckdb_backend.SqlTables(has_members=True)
    assert duckdb_backend.conditions(query, with_members) == [
        "strpos(name, 'a''b') > 0",
        "status IN ('error')",
        "created_at >= TIMESTAMPTZ '2026-01-01 00:00:00.000000+00'",
        "vault_id IN (SELECT id FROM vaults WHERE billing.size > 0 "
        "AND billing.used * 100 >= 80 * billing.size * 1024)",
        "(project_id = 'p1') OR ((project_id IS NULL OR project_id <> 'p1') "
        "AND id IN (SELECT backup_id FROM members WHERE dest_project_id = 'p1'))",
        "id IN (SELECT backup_id FROM members WHERE dest_project_id = 'p1' AND status = 'pending')",
        "coalesce(incremental, extend_info.incremental) = false",
    ]
    bare = duckdb_backend.SqlTables(has_members=False)
    shared = parse_query("own_type=shared", project="p1")
    assert duckdb_backend.conditions(shared, bare) == ["(project_id IS NULL OR project_id <> 'p1')"]
