"""SPEC §6 (the inventory over time): the plain-Python model, on examples and properties.

The hand-written cases come straight from SPEC §6's words (the issue's
example, scopes, ties, out-of-order ``taken_at``, the default rule, the
completeness check); the properties hold by SPEC for any history that
:func:`engine.testing.strategies.ingest_sequences` draws. The model is the
oracle the engine's history store is tested against, so it is tested alone here.
"""

from __future__ import annotations

import ast
import doctest
import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from engine.testing import reference
from engine.testing.reference import (
    Ingest,
    NeverSeen,
    accepted,
    as_of,
    ever,
    history,
    refused,
    snapshot_problems,
    snapshots,
    taken_at_of,
    vaults_as_of,
)
from engine.testing.strategies import Step, ingest_sequences

Record = dict[str, Any]
DAY1 = datetime(2024, 3, 1, 12, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY1 + timedelta(days=2)


def api(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")


def b(ident: str, day: datetime = DAY1, **fields: Any) -> Record:
    """A backup of project p1 in vault v1, updated on ``day`` (fields override)."""
    return {
        "id": ident,
        "project_id": "p1",
        "vault_id": "v1",
        "status": "available",
        "updated_at": api(day - timedelta(hours=1)),
        **fields,
    }


def snap(*records: Record, at: datetime | None, scope: str = "project") -> Ingest:
    return Ingest(tuple(records), snapshot=True, scope=scope, taken_at=at)


def part(*records: Record, at: datetime | None) -> Ingest:
    return Ingest(tuple(records), taken_at=at)


def page(count: int, *ids: str, project: str = "p1", key: str = "backups") -> Record:
    return {"count": count, key: [{"id": i, "project_id": project} for i in ids]}


# --- presence and version at an instant ---------------------------------------


def test_the_issue_example() -> None:
    calls = [snap(b("b-1"), b("b-2"), at=DAY1), snap(b("b-2"), b("b-3", DAY2), at=DAY2)]
    assert as_of(calls, DAY2).keys() == {"b-2", "b-3"}
    assert as_of(calls, DAY1).keys() == {"b-1", "b-2"}
    assert as_of(calls).keys() == {"b-2", "b-3"}  # the latest never lists b-1
    assert as_of(calls, DAY1 - timedelta(seconds=1)) == {}
    assert ever(calls).keys() == {"b-1", "b-2", "b-3"}


def test_a_non_snapshot_ingest_never_makes_a_backup_gone() -> None:
    calls = [snap(b("b1"), b("b2"), at=DAY1), part(b("b3"), at=DAY2)]
    assert as_of(calls).keys() == {"b1", "b2", "b3"}
    # seen in an ingest after the snapshot: present, until the next snapshot
    calls.append(snap(b("b1"), at=DAY3))
    assert as_of(calls, DAY2).keys() == {"b1", "b2", "b3"}
    assert as_of(calls).keys() == {"b1"}


def test_with_no_snapshot_every_backup_seen_up_to_t_is_present() -> None:
    calls = [part(b("b1"), at=DAY1), part(b("b2"), at=DAY2)]
    assert as_of(calls, DAY1).keys() == {"b1"}
    assert as_of(calls) == ever(calls)


def test_a_vault_scope_snapshot_leaves_other_vaults_alone() -> None:
    day1 = snap(b("b1"), b("b2", vault_id="v2"), b("b3", vault_id=None), at=DAY1)
    day2 = snap(b("b4", DAY2), at=DAY2, scope="vault")  # an export of vault v1 only
    assert as_of([day1, day2]).keys() == {"b2", "b3", "b4"}
    assert as_of([day1, day2], DAY1).keys() == {"b1", "b2", "b3"}


def test_a_project_scope_snapshot_leaves_other_projects_alone() -> None:
    day1 = snap(b("b1"), b("b2", project_id="p2"), at=DAY1)
    day2 = snap(b("b3", DAY2), at=DAY2)
    assert as_of([day1, day2]).keys() == {"b2", "b3"}


def test_out_of_order_taken_at_is_read_in_time_order() -> None:
    later_first = [snap(b("b2"), at=DAY2), snap(b("b1"), at=DAY1)]
    assert as_of(later_first).keys() == {"b2"}  # P is the day-2 snapshot, ingested first
    assert as_of(later_first, DAY1).keys() == {"b1"}
    # a backfilled page taken before the newest snapshot adds to the past only
    backfill = [*later_first, part(b("b9"), at=DAY1)]
    assert as_of(backfill).keys() == {"b2"}
    assert as_of(backfill, DAY1).keys() == {"b1", "b9"}


def test_ties_of_taken_at_go_to_the_later_ingest() -> None:
    assert as_of([snap(b("b1"), at=DAY1), snap(b("b2"), at=DAY1)]).keys() == {"b2"}
    # R2: a page ingested after a snapshot with the same taken_at was taken "after" it
    assert as_of([snap(b("b1"), at=DAY1), part(b("b2"), at=DAY1)]).keys() == {"b1", "b2"}
    assert as_of([part(b("b2"), at=DAY1), snap(b("b1"), at=DAY1)]).keys() == {"b1"}


def test_the_version_at_t_is_the_newest_updated_at_taken_up_to_t() -> None:
    old, new = b("b1", DAY1), b("b1", DAY2, status="error")
    calls = [part(new, at=DAY2), part(old, at=DAY1)]  # the newer version ingested first
    assert as_of(calls)["b1"] is new
    assert as_of(calls, DAY1)["b1"] is old
    assert ever(calls)["b1"] is new


def test_version_ties_go_to_the_later_ingest_then_the_later_record() -> None:
    first, second = b("b1"), b("b1", status="error")  # the same updated_at
    assert as_of([part(second, at=DAY2), part(first, at=DAY1)])["b1"] is first
    assert as_of([part(first, second, at=DAY1)])["b1"] is second
    without = {"id": "b1", "project_id": "p1"}  # no updated_at: older than any
    assert as_of([part(first, at=DAY1), part(without, at=DAY2)])["b1"] is first


def test_timestamps_compare_as_instants() -> None:
    early = b("b1", updated_at="2024-03-01T10:00:00+08:00")  # 02:00 UTC
    late = b("b1", updated_at="2024-03-01T03:00:00", status="error")
    assert as_of([part(late, at=DAY1), part(early, at=DAY1)])["b1"] is late


def test_an_instant_needs_a_zone() -> None:
    with pytest.raises(ValueError, match="time zone"):
        as_of([], datetime(2024, 3, 1))
    with pytest.raises(ValueError, match="time zone"):
        Ingest(taken_at=datetime(2024, 3, 1))
    with pytest.raises(ValueError, match="scope"):
        Ingest(scope="region")


# --- the default taken_at -------------------------------------------------------


def test_the_default_taken_at() -> None:
    vaults_only = Ingest(vaults=({"id": "v1", "project_id": "p1"},))
    calls = [
        vaults_only,  # nothing before it: no taken_at
        part(b("b1", DAY3), b("b2", DAY1), at=None),  # the newest updated_at
        vaults_only,  # the newest taken_at so far
        part(b("b3", DAY1), at=DAY1 - timedelta(days=5)),  # given
        vaults_only,  # still the newest so far, not the last
        part({"id": "b4"}, at=None),  # backups without updated_at: as without backups
    ]
    newest = DAY3 - timedelta(hours=1)
    assert taken_at_of(calls) == [None, newest, newest, DAY1 - timedelta(days=5), newest, newest]


def test_a_taken_at_in_another_zone_is_the_same_instant() -> None:
    eight = datetime(2024, 3, 2, 4, tzinfo=timezone(timedelta(hours=8)))
    assert taken_at_of([part(at=eight)]) == [datetime(2024, 3, 1, 20, tzinfo=UTC)]


def test_an_ingest_without_taken_at_is_before_every_instant() -> None:
    vaults = Ingest(vaults=({"id": "v1", "project_id": "p1"},), snapshot=True)
    assert vaults_as_of([vaults], DAY1).keys() == {"v1"}


# --- the completeness check ---------------------------------------------------------


def test_complete_pages_pass_in_any_order_and_a_page_given_twice_too() -> None:
    pages = [page(3, "b1", "b2"), page(3, "b3")]
    assert snapshot_problems(pages) == []
    assert snapshot_problems(pages[::-1]) == []
    assert snapshot_problems([*pages, pages[1]]) == []  # the same ids: nothing lost


def test_a_missing_page_is_caught_naming_project_count_and_records() -> None:
    assert snapshot_problems([page(3, "b1", "b2")]) == [
        "project p1: the backups pages give count 3 but hold 2 distinct record(s)"
    ]


def test_a_duplicated_page_in_place_of_another_is_caught() -> None:
    problems = snapshot_problems([page(4, "b1", "b2"), page(4, "b1", "b2")])
    assert problems == ["project p1: the backups pages give count 4 but hold 2 distinct record(s)"]


def test_pages_with_differing_counts_are_caught() -> None:
    problems = snapshot_problems([page(3, "b1", "b2"), page(4, "b3")])
    assert problems == [
        "project p1: the backups pages give count 3 and 4 but hold 3 distinct record(s)"
    ]
    assert snapshot_problems([page(1, "b1") | {"count": "1"}]) != []  # not a whole number


def test_each_project_is_checked_alone() -> None:
    pages = [page(2, "a1", "a2"), page(2, "c1", project="p2"), page(9, project="p3")]
    assert snapshot_problems(pages) == [
        "project p2: the backups pages give count 2 but hold 1 distinct record(s)"
    ]  # the empty page names no project: not checked


def test_a_page_spanning_two_projects_is_a_problem() -> None:
    mixed = {"count": 2, "backups": [{"id": "a", "project_id": "p1"}, {"id": "b"}]}
    assert snapshot_problems([mixed]) == [
        "a backups page holds records of projects (no project_id), p1: "
        "each page of a snapshot belongs to one project"
    ]


def test_records_without_project_id_are_one_project() -> None:
    pages = [{"count": 2, "backups": [{"id": "a"}]}, {"count": 2, "backups": [{"id": "b"}]}]
    assert snapshot_problems(pages) == []
    assert "project (no project_id)" in snapshot_problems(pages[:1])[0]


def test_vault_pages_are_checked_the_same_way_and_bare_records_not_at_all() -> None:
    assert snapshot_problems([page(2, "v1", key="vaults")]) == [
        "project p1: the vaults pages give count 2 but hold 1 distinct record(s)"
    ]
    assert snapshot_problems([{"vaults": [{"id": "v1"}]}, {"backup": {"id": "b"}}]) == []


def test_a_refused_snapshot_leaves_no_trace() -> None:
    broken = Ingest.from_dumps([page(2, "b1")], snapshot=True, taken_at=DAY2)
    good = snap(b("b1"), b("b2"), at=DAY1)
    assert refused(broken) and not refused(replace(broken, snapshot=False))
    assert accepted([good, broken]) == [good]
    with pytest.raises(ValueError, match="accepted"):
        as_of([good, broken])


def test_from_dumps_reads_every_dump_kind() -> None:
    dumps = [
        page(2, "b1", "b2"),
        [{"backup": {"id": "b3"}}, {"id": "b4"}],  # a JSON array of responses
        {"vaults": [{"id": "v1"}]},
        {"count": 1, "vaults": [{"id": "v2"}]},
        {"vault": {"id": "v3"}},
        {"members": [{"id": "m1"}]},
    ]
    call = Ingest.from_dumps(dumps, snapshot=True, scope="vault", taken_at=DAY1)
    assert [r["id"] for r in call.backups] == ["b1", "b2", "b3", "b4"]
    assert [r["id"] for r in call.vaults] == ["v1", "v2", "v3"]
    assert call.pages == (dumps[0], dumps[3])
    with pytest.raises(ValueError, match="SPEC §1"):
        Ingest.from_dumps([{"backups": []}])  # a page without count is no §1 dump


# --- vaults -------------------------------------------------------------------


def vault(ident: str, used: int, project: str = "p1") -> Record:
    return {"id": ident, "project_id": project, "billing": {"size": 10, "used": used}}


def test_vault_versions_follow_taken_at_then_ingest_order() -> None:
    calls = [
        Ingest(vaults=(vault("v1", 30),), taken_at=DAY2),
        Ingest(vaults=(vault("v1", 10),), taken_at=DAY1),
        Ingest(vaults=(vault("v1", 20),), taken_at=DAY1),
    ]
    assert vaults_as_of(calls)["v1"]["billing"]["used"] == 30
    assert vaults_as_of(calls, DAY1)["v1"]["billing"]["used"] == 20


def test_vault_snapshots_are_the_vault_pages_of_a_snapshot() -> None:
    day1 = Ingest((b("b1"),), (vault("v1", 1), vault("v2", 1), vault("v9", 1, "p2")), True)
    day2 = Ingest((b("b1", DAY2),), (vault("v1", 5),), True, taken_at=DAY2)
    assert vaults_as_of([replace(day1, taken_at=DAY1), day2]).keys() == {"v1", "v9"}
    no_vaults = snap(b("b1", DAY3), at=DAY3)  # no vault records: no vault snapshot
    assert vaults_as_of([replace(day1, taken_at=DAY1), no_vaults]).keys() == {"v1", "v2", "v9"}
    one_vault = Ingest(vaults=(vault("v2", 7),), snapshot=True, scope="vault", taken_at=DAY3)
    assert vaults_as_of([replace(day1, taken_at=DAY1), one_vault]).keys() == {"v1", "v2", "v9"}


# --- cbrq snapshots and cbrq history ---------------------------------------------------


def test_snapshot_rows_of_the_issue_example() -> None:
    changed = b("b-2", DAY2, status="error")
    calls = [
        snap(b("b-1"), b("b-2"), at=DAY1),
        part(b("b-9"), at=DAY1),
        snap(changed, b("b-3", DAY2), at=DAY2),
    ]
    assert snapshots(calls) == [
        {"seq": 1, "taken_at": api(DAY1), "scope": "project", "projects": ["p1"],
         "backups": 3, "added": 3, "gone": 0, "changed": 0},
        {"seq": 3, "taken_at": api(DAY2), "scope": "project", "projects": ["p1"],
         "backups": 2, "added": 1, "gone": 2, "changed": 1},
    ]  # fmt: skip
    # "present at its taken_at": b-9, ingested after snapshot 1 with the same taken_at (R2),
    # counts at snapshot 1 and goes at snapshot 3


def test_snapshots_sharing_a_taken_at_show_the_later_one() -> None:
    calls = [snap(b("b1"), at=DAY1), snap(b("b2"), b("b3"), at=DAY1)]
    rows = [(r["backups"], r["added"], r["gone"]) for r in snapshots(calls)]
    assert rows == [(2, 2, 0), (2, 0, 0)]
    assert history(calls, ["b1"]) == []  # seen, but present at no instant


def test_snapshot_rows_compare_with_the_previous_one_of_the_same_scope() -> None:
    calls = [
        snap(b("b1"), b("b2", vault_id="v2"), at=DAY1),
        snap(b("b3", DAY2), at=DAY2, scope="vault"),  # v1 only: no earlier one of its scope
        snap(b("b1"), at=DAY3),
    ]
    rows = snapshots(calls)
    assert [(r["backups"], r["added"], r["gone"]) for r in rows] == [
        (2, 2, 0),
        (1, 1, 0),
        (1, 0, 1),
    ]


def test_the_history_of_the_issue_example() -> None:
    calls = [
        snap(b("b-1"), b("b-2"), at=DAY1),
        snap(b("b-2", DAY2, status="error"), at=DAY2),
        snap(b("b-1"), at=DAY3),
    ]
    rows = history(calls, ["b-2", "b-1", "b-2"])
    assert [(r["id"], r["taken_at"], r["event"], r["status"]) for r in rows] == [
        ("b-2", api(DAY1), "seen", "available"),
        ("b-2", api(DAY2), "changed", "error"),
        ("b-2", api(DAY3), "gone", "error"),
        ("b-1", api(DAY1), "seen", "available"),
        ("b-1", api(DAY2), "gone", "available"),
        ("b-1", api(DAY3), "back", "available"),
    ]
    assert rows[1]["updated_at"] == api(DAY2 - timedelta(hours=1))


def test_history_walks_time_order_not_ingest_order() -> None:
    calls = [snap(b("b1"), at=DAY2), part(b("b1"), b("b2"), at=DAY1)]
    assert [(r["taken_at"], r["event"]) for r in history(calls, ["b2"])] == [
        (api(DAY1), "seen"),
        (api(DAY2), "gone"),
    ]


def test_history_of_a_backup_never_seen_names_it() -> None:
    calls = [snap(b("b1"), at=DAY1)]
    with pytest.raises(KeyError) as caught:
        history(calls, ["b1", "nope", "b-x"])
    assert isinstance(caught.value, NeverSeen) and caught.value.ids == ["nope", "b-x"]
    assert str(caught.value) == "never seen: nope, b-x"


# --- the model itself --------------------------------------------------------------------


def test_the_model_imports_nothing_of_the_engine_but_spec() -> None:
    folder = Path(reference.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [f"{node.module}"]
                if isinstance(node, ast.ImportFrom) and node.module
                else []
            )
            for name in names:
                if name.startswith("engine"):
                    assert name in ("engine", "engine.spec") or name.startswith("engine.testing"), (
                        f"{path.name} imports {name}"
                    )


def test_the_examples_run_as_written() -> None:
    result = doctest.testmod(reference)
    assert result.attempted > 0 and result.failed == 0


# --- properties over drawn histories --------------------------------------------------------


def kept(steps: list[Step]) -> list[Ingest]:
    return [s.ingest for s in steps if not s.refused]


def instants(calls: list[Ingest]) -> list[datetime | None]:
    """Every taken_at of ``calls``, a moment before each and +infinity."""
    stamps = [t for t in taken_at_of(calls) if t is not None]
    return [None, *stamps, *(t - timedelta(seconds=1) for t in stamps)]


@given(ingest_sequences())
def test_a_snapshot_is_refused_exactly_when_its_pages_were_broken(steps: list[Step]) -> None:
    for step in steps:
        assert refused(step.ingest) == step.refused


@given(ingest_sequences(kinds=("partial",)))
def test_with_no_snapshot_the_latest_is_ever(steps: list[Step]) -> None:
    assert as_of(kept(steps)) == ever(kept(steps))


@given(ingest_sequences())
def test_non_snapshot_ingests_only_add(steps: list[Step]) -> None:
    calls = kept(steps)
    only_snapshots = [c for c in calls if c.snapshot]
    for at in instants(calls):
        assert as_of(only_snapshots, at).keys() <= as_of(calls, at).keys() <= ever(calls).keys()


@given(ingest_sequences())
def test_ingesting_the_last_snapshot_again_changes_nothing(steps: list[Step]) -> None:
    calls = kept(steps)
    assume(calls and calls[-1].snapshot)
    again = [*calls, calls[-1]]
    for at in instants(calls):
        assert as_of(again, at) == as_of(calls, at)
        assert vaults_as_of(again, at) == vaults_as_of(calls, at)
    ids = list(ever(calls))
    assert history(again, ids) == history(calls, ids)
    row = snapshots(again)[-1]
    assert (row["seq"], row["added"], row["gone"], row["changed"]) == (len(again), 0, 0, 0)


@given(ingest_sequences(max_ingests=1))
def test_a_lone_snapshot_is_the_inventory_at_its_taken_at(steps: list[Step]) -> None:
    calls = kept(steps)
    assume(calls and calls[0].snapshot)
    (taken,) = taken_at_of(calls)
    assert as_of(calls, taken).keys() == {r["id"] for r in calls[0].backups}


@given(ingest_sequences(max_projects=1, kinds=("project",)))
def test_export_as_of_a_snapshot_gives_exactly_its_backups(steps: list[Step]) -> None:
    # SPEC §6: "export --as-of T ... with T = taken_at of Sk, gives exactly the backups of Sk"
    # (each snapshot holding some backup, so that it speaks for the project; distinct taken_at)
    calls = kept(steps)
    taken = taken_at_of(calls)
    assume(all(c.backups for c in calls) and len(set(taken)) == len(taken))
    for call, at in zip(calls, taken, strict=True):
        assert as_of(calls, at).keys() == {r["id"] for r in call.backups}


@given(ingest_sequences(), st.data())
def test_history_follows_the_inventory_at_every_instant(
    steps: list[Step], data: st.DataObject
) -> None:
    calls = kept(steps)
    assume(ever(calls))
    ident = data.draw(st.sampled_from(sorted(ever(calls))))
    rows = history(calls, [ident])
    events = [r["event"] for r in rows]
    assert events[:1] in ([], ["seen"]) and "seen" not in events[1:]
    for before, after in itertools.pairwise(events):
        assert (before == "gone") == (after == "back")  # presence alternates
    for at in sorted({t for t in taken_at_of(calls) if t is not None}):
        shown = [r for r in rows if r["taken_at"] is not None and r["taken_at"] <= api(at)]
        present = as_of(calls, at).get(ident)
        assert (bool(shown) and shown[-1]["event"] != "gone") == (present is not None)
        if present is not None:
            assert shown[-1]["status"] == present.get("status")


@given(ingest_sequences())
def test_snapshot_rows_add_up(steps: list[Step]) -> None:
    calls = kept(steps)
    rows = snapshots(calls)
    assert [r["seq"] for r in rows] == [n + 1 for n, c in enumerate(calls) if c.snapshot]
    for row in rows:
        assert row["added"] <= row["backups"] and row["changed"] <= row["backups"] - row["added"]
