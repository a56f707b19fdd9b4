"""The inventory over time (SPEC §6): snapshot ingests, answers as of an instant, history.

The store is held to :mod:`engine.testing.reference`'s model of SPEC §6
(written from SPEC, not from the engine) on random sequences of snapshot and
partial ingests (:func:`engine.testing.strategies.ingest_sequences`): pages
dropped, reordered and repeated, out-of-order ``taken_at``, vault scope.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, note, settings

from engine.api import ingest
from engine.errors import IncompleteExport, QueryError
from engine.instants import parse_instant
from engine.inventory import Inventory
from engine.store.manifest import read_manifest
from engine.testing import reference
from engine.testing.strategies import Step, ingest_sequences
from tests.conftest import snapshot as files_of
from tests.records import cbrq, write_page


def _backup(ident: str, day: int, status: str = "available", **more: Any) -> dict[str, Any]:
    when = f"2026-11-0{day}T0{day}:00:00Z"
    return {
        "id": ident,
        "name": ident,
        "status": status,
        "project_id": "p1",
        "vault_id": "v1",
        "resource_id": "r1",
        "resource_type": "OS::Nova::Server",
        "created_at": when,
        "updated_at": when,
        **more,
    }


@pytest.fixture
def two_days(tmp_path: Path) -> Path:
    """The issue's example: b-1, b-2 on day 1; b-2, b-3 on day 2 (b-1 deleted)."""
    store = tmp_path / "s"
    day1 = write_page(tmp_path / "day1.json", _backup("b-1", 1), _backup("b-2", 1))
    day2 = write_page(tmp_path / "day2.json", _backup("b-2", 1), _backup("b-3", 2))
    for day in (day1, day2):
        assert cbrq("ingest", day, "--store", str(store), "--snapshot", "-q").returncode == 0
    return store


def test_a_deleted_backup_is_not_listed_after_the_next_snapshot(two_days: Path) -> None:
    done = cbrq("query", "status=available", "--store", str(two_days), "-f", "json")
    assert sorted(b["id"] for b in json.loads(done.stdout)["backups"]) == ["b-2", "b-3"]
    assert cbrq("count", "--store", str(two_days), "--ever").stdout.strip() == "3"
    day1 = cbrq("count", "--store", str(two_days), "--as-of", "2026-11-01T12:00:00Z")
    assert day1.stdout.strip() == "2"
    exported = cbrq("export", "--store", str(two_days), "--as-of", "2026-11-01T12:00:00Z")
    assert sorted(b["id"] for b in json.loads(exported.stdout)["backups"]) == ["b-1", "b-2"]
    duck = cbrq("count", "--store", str(two_days), "--engine", "duckdb")
    assert duck.stdout.strip() == "2", duck.stderr


def test_the_server_executor_answers_the_latest_too(two_days: Path) -> None:
    from engine.backends.resident import Resident

    with Inventory.open(two_days) as inv:
        resident = Resident.build(inv)  # what cbrq serve answers from
        assert sorted(resident.answer(inv.parse("")).ids) == ["b-2", "b-3"]
        assert resident.count(inv.parse("status=available")) == 2


def test_snapshots_and_history_say_what_went_when(two_days: Path) -> None:
    rows = json.loads(cbrq("snapshots", "--store", str(two_days), "-f", "json").stdout)["rows"]
    assert [(r["seq"], r["backups"], r["added"], r["gone"]) for r in rows] == [
        (1, 2, 2, 0),
        (2, 2, 1, 1),
    ]
    story = json.loads(cbrq("history", "b-1", "--store", str(two_days), "-f", "json").stdout)
    assert [(r["event"], r["taken_at"][:10]) for r in story["rows"]] == [
        ("seen", "2026-11-01"),
        ("gone", "2026-11-02"),
    ]
    unknown = cbrq("history", "b-9", "--store", str(two_days))
    assert unknown.returncode == 2 and "never seen in this inventory: b-9" in unknown.stderr


def test_an_incomplete_snapshot_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    store = tmp_path / "s"
    ingest([write_page(tmp_path / "a.json", _backup("b-1", 1))], store, snapshot=True)
    before = files_of(store)
    short = write_page(tmp_path / "b.json", _backup("b-2", 2), count=3)
    with pytest.raises(IncompleteExport, match=r"project p1: .* count 3 but hold 1 distinct"):
        ingest([short], store, snapshot=True)
    assert files_of(store) == before
    done = cbrq("ingest", short, "--store", str(store), "--snapshot")
    assert done.returncode == 1 and "the inventory is unchanged" in done.stderr
    plain = cbrq("ingest", short, "--store", str(store))
    assert plain.returncode == 0 and "not a complete export" in plain.stderr


def test_pages_mixing_projects_are_named_once_with_their_number(tmp_path: Path) -> None:
    mixed = [_backup("b-1", 1), _backup("b-2", 2, project_id="p2")]
    pages = [write_page(tmp_path / f"{n}.json", *mixed, count=4 + n) for n in range(3)]
    done = cbrq("ingest", *pages, "--store", str(tmp_path / "s"))
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("export:"))
    said = "a backups page holds records of projects p1, p2"
    assert (
        line.count(said) == 1
        and f"{said}: each page of a snapshot belongs to one project (3 pages)" in line
    )
    with pytest.raises(IncompleteExport, match=r"\(3 pages\)") as refused:
        ingest(pages, tmp_path / "t", snapshot=True)
    assert len(refused.value.problems) == 1


def test_the_same_snapshot_twice_changes_no_answer(tmp_path: Path) -> None:
    store = tmp_path / "s"
    day = write_page(tmp_path / "day.json", _backup("b-1", 1), _backup("b-2", 1))
    ingest([day], store, snapshot=True)
    with Inventory.open(store) as inv:
        before = inv.query().to_dict()
    again = ingest([day], store, snapshot=True)
    assert (again.backups_unchanged, again.backups_new, again.backups_replaced) == (2, 0, 0)
    with Inventory.open(store) as inv:
        assert inv.query().to_dict() == before
        rows = inv.snapshots().frame.select("seq", "backups", "added", "gone", "changed").rows()
    assert rows == [(1, 2, 2, 0, 0), (2, 2, 0, 0, 0)]


def test_an_unchanged_record_is_not_written_again(tmp_path: Path) -> None:
    store = tmp_path / "s"
    ingest(
        [write_page(tmp_path / "1.json", _backup("b-1", 1), _backup("b-2", 1))],
        store,
        snapshot=True,
    )
    second = write_page(tmp_path / "2.json", _backup("b-1", 1), _backup("b-2", 2, "error"))
    summary = ingest([second], store, snapshot=True)
    assert (summary.backups_unchanged, summary.backups_new, summary.backups_replaced) == (1, 0, 1)
    with Inventory.open(store, ever=True) as inv:
        assert inv.physical().collect().height == 3  # b-1 once, b-2 in two versions


def test_a_store_without_snapshots_answers_as_before(tmp_path: Path) -> None:
    store = tmp_path / "s"
    ingest([write_page(tmp_path / "1.json", _backup("b-1", 1), _backup("b-2", 1))], store)
    ingest([write_page(tmp_path / "2.json", _backup("b-2", 2, "error"), _backup("b-3", 2))], store)
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["version"] == 3 and [i["snapshot"] for i in manifest["ingests"]] == [False] * 2
    with Inventory.open(store) as inv:
        assert not inv.history_view and inv.count() == 3
        assert inv.query("status=error").ids == ["b-2"]
        with pytest.raises(QueryError, match="keeps no history"):
            inv.as_of("2026-11-01T12:00:00Z")
    refused = cbrq("count", "--store", str(store), "--as-of", "now")
    assert refused.returncode == 2 and "cbrq ingest --snapshot" in refused.stderr


# --- against the model ---------------------------------------------------------------------


def _engine_state(inv: Inventory) -> dict[str, tuple[Any, ...]]:
    return {b["id"]: _key(b) for b in inv.query()}


def _vault_state(inv: Inventory) -> dict[str, Any]:
    vaults = inv.lazy("vaults").select("id", "billing").collect()
    return {v["id"]: _vault(v) for v in vaults.to_dicts()}


def _vault(record: dict[str, Any]) -> Any:
    billing = record.get("billing")
    return billing.get("used") if isinstance(billing, dict) else None


def _key(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record.get("status"), parse_instant(str(record.get("updated_at"))))


def _instants(kept: list[reference.Ingest]) -> list[datetime | None]:
    times = {t for t in reference.taken_at_of(kept) if t is not None}
    probes = {t + delta for t in times for delta in (timedelta(0), timedelta(hours=-1))}
    return [None, *sorted(probes)]


def _told(step: Step) -> str:
    """One step in a line: its options, then each file as compact JSON."""
    files = " | ".join(json.dumps(content, separators=(",", ":")) for content in step.files)
    return f"{step.options} refused={step.refused} {files}"


def _run(steps: list[Step], store: Path, folder: Path) -> list[reference.Ingest]:
    kept: list[reference.Ingest] = []
    for number, step in enumerate(steps):
        note(f"step {number}: {_told(step)}")
        if not step.files:
            continue  # `cbrq ingest` takes at least one path
        paths = step.write(folder / str(number))
        taken = None if step.taken_at is None else parse_instant(step.taken_at)
        options = {"snapshot": step.ingest.snapshot, "scope": step.ingest.scope, "taken_at": taken}
        if step.refused:
            before = files_of(store)
            with pytest.raises(IncompleteExport):
                ingest(paths, store, **options)
            assert files_of(store) == before
            continue
        ingest(paths, store, **options)
        kept.append(step.ingest)
    return kept


@settings(max_examples=max(10, settings().max_examples // 2))
@given(ingest_sequences())
def test_the_store_answers_as_the_model_at_every_instant(steps: list[Step]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / "s"
        kept = _run(steps, store, Path(scratch))
        if not kept or not kept[0].snapshot:
            return  # history begins with a store's first snapshot (README)
        with Inventory.open(store) as inv:
            for at in _instants(kept):
                expected = {i: _key(r) for i, r in reference.as_of(kept, at).items()}
                note(f"at {at}")
                assert _engine_state(inv.as_of(at)) == expected
                vaults = {i: _vault(r) for i, r in reference.vaults_as_of(kept, at).items()}
                assert _vault_state(inv.as_of(at)) == vaults
            ever = {i: _key(r) for i, r in reference.ever(kept).items()}
            assert _engine_state(inv.as_of(None, ever=True)) == ever
            if any(k.snapshot for k in kept):
                assert _rows(inv.snapshots().frame) == _rows_of(reference.snapshots(kept))
            ids = sorted(reference.ever(kept))[:3]
            if ids:
                told = [(r["id"], r["event"], r["status"]) for r in reference.history(kept, ids)]
                rows = inv.history(ids).frame.select("id", "event", "status").rows()
                assert rows == told


def _rows(frame: Any) -> list[tuple[Any, ...]]:
    return [
        (r["seq"], r["backups"], r["added"], r["gone"], r["changed"], r["taken_at"])
        for r in frame.iter_rows(named=True)
    ]


def _rows_of(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    def when(text: str | None) -> datetime | None:
        return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)

    return [
        (r["seq"], r["backups"], r["added"], r["gone"], r["changed"], when(r["taken_at"]))
        for r in rows
    ]


def test_compact_keeps_every_answer_and_moves_the_sightings(two_days: Path) -> None:
    def answers() -> list[Any]:
        with Inventory.open(two_days) as inv:
            instants = [None, "2026-11-01T12:00:00Z", "2026-11-02T12:00:00Z"]
            return [inv.as_of(at).query().ids for at in instants] + [inv.snapshots().frame.rows()]

    before = answers()
    assert cbrq("compact", "--store", str(two_days)).returncode == 0
    assert answers() == before
    check = cbrq("check", "--store", str(two_days))
    assert check.returncode == 0 and "notice" not in check.stdout, check.stdout
    # No generation stays on disk for a sightings file alone (day 2 merged day 1's segment).
    manifest = read_manifest(two_days)
    used = {name.split("/")[0] for files in manifest.tables.values() for name in files}
    assert {r.sightings.split("/")[0] for r in manifest.ingests if r.sightings} <= used


def test_info_reports_the_history(two_days: Path) -> None:
    state = json.loads(cbrq("info", "--store", str(two_days), "-f", "json").stdout)["history"]
    assert (state["keeps_history"], state["ingests"], state["snapshots"]) == (True, 2, 2)
    assert state["newest_taken_at"] == "2026-11-02T02:00:00.000000Z"
    assert state["sightings_bytes"] > 0
    text = cbrq("info", "--store", str(two_days)).stdout
    assert "history: 2 snapshot(s) among 2 ingests" in text


def test_manifest_records_every_ingest(two_days: Path) -> None:
    records = read_manifest(two_days).ingests
    assert [(r.n, r.snapshot, r.scope, r.projects, r.complete) for r in records] == [
        (1, True, "project", ("p1",), True),
        (2, True, "project", ("p1",), True),
    ]
    assert records[1].taken_at == "2026-11-02T02:00:00.000000Z"


# --- vaults over time ----------------------------------------------------------------------


def _vault_page(path: Path, *vaults: dict[str, Any]) -> str:
    path.write_text(json.dumps({"count": len(vaults), "vaults": list(vaults)}))
    return str(path)


def _vault_record(ident: str, used: float) -> dict[str, Any]:
    return {"id": ident, "name": ident, "project_id": "p1", "billing": {"size": 100, "used": used}}


@pytest.fixture
def filling(tmp_path: Path) -> Path:
    """Two days: v1 fills from 10 % to 90 %; v2 is deleted on day 2."""
    store = tmp_path / "s"
    days = [
        (_backup("b-1", 1), [_vault_record("v1", 10_240), _vault_record("v2", 1_024)]),
        (_backup("b-2", 2), [_vault_record("v1", 92_160)]),
    ]
    for day, (backup, vaults) in enumerate(days, start=1):
        backups = write_page(tmp_path / f"b{day}.json", backup)
        listing = _vault_page(tmp_path / f"v{day}.json", *vaults)
        done = cbrq("ingest", backups, listing, "--store", str(store), "--snapshot", "-q")
        assert done.returncode == 0, done.stderr
    return store


def test_vaults_answer_as_of_an_instant(filling: Path) -> None:
    with Inventory.open(filling) as inv:
        day1, day2 = inv.as_of("2026-11-01T12:00:00Z"), inv.as_of(None)
        assert _vault_state(day1) == {"v1": 10_240, "v2": 1_024}
        assert _vault_state(day2) == {"v1": 92_160}
        # used_percent reads the vault versions at T (SPEC §6).
        assert day1.count("used_percent=80") == 0
        assert day2.count("used_percent=80") == 1  # b-1 went on day 2
        assert [r["id"] for r in day1.capacity().frame.to_dicts()] == ["v1", "v2"]
        assert inv.as_of(None, ever=True).lazy("vaults").collect().height == 2
    listed = cbrq(
        "count", "used_percent=80", "--store", str(filling), "--as-of", "2026-11-01T12:00:00Z"
    )
    assert listed.returncode == 0 and listed.stdout.split() == ["0"], listed


def test_a_history_store_without_vault_listings_still_answers(filling: Path) -> None:
    """A store made before listings were kept: its vault table's rows stand for the ingests
    that wrote them (the table kept only each vault's newest copy: v1's day-1 copy is lost)."""
    path = filling / "manifest.json"
    manifest = json.loads(path.read_text())
    for entry in manifest["ingests"]:
        entry.pop("listings")
    path.write_text(json.dumps(manifest))
    with Inventory.open(filling) as inv:
        assert _vault_state(inv) == {"v1": 92_160}
        assert _vault_state(inv.as_of("2026-11-01T12:00:00Z")) == {"v2": 1_024}


def test_compact_moves_the_listings(filling: Path) -> None:
    before = [
        _vault_state(Inventory.open(filling).as_of(at)) for at in (None, "2026-11-01T12:00:00Z")
    ]
    assert cbrq("compact", "--store", str(filling)).returncode == 0
    with Inventory.open(filling) as inv:
        assert [_vault_state(inv.as_of(at)) for at in (None, "2026-11-01T12:00:00Z")] == before
    check = cbrq("check", "--store", str(filling))
    assert check.returncode == 0 and "notice" not in check.stdout, check.stdout


def test_a_history_store_without_an_away_file_answers_the_same(two_days: Path) -> None:
    """A store with snapshots written before the latest view was kept (no ``away``)."""
    with Inventory.open(two_days) as inv:
        before = (inv.query().ids, inv.count("status=available"), inv.as_of(None).query().ids)
    path = two_days / "manifest.json"
    manifest = json.loads(path.read_text())
    assert manifest.pop("away")
    path.write_text(json.dumps(manifest))
    with Inventory.open(two_days) as inv:
        assert not inv.manifest.away
        assert (inv.query().ids, inv.count("status=available"), inv.query().ids) == before
    # The next commit writes it again.
    day3 = write_page(two_days.parent / "day3.json", _backup("b-3", 2), _backup("b-4", 3))
    assert cbrq("ingest", day3, "--store", str(two_days), "--snapshot", "-q").returncode == 0
    with Inventory.open(two_days) as inv:
        assert inv.manifest.away and sorted(inv.query().ids) == ["b-3", "b-4"]
