"""`cbrq generate` writes realistic, reproducible dumps that ingest cleanly."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.inventory import Inventory


def digest(folder: Path) -> str:
    """One hash of every file's name and bytes (gzip members unpacked: zlib builds differ)."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            h.update(path.name.encode() + (gzip.decompress(data) if path.suffix == ".gz" else data))
    return h.hexdigest()


#: What ``cbrq generate`` wrote for these arguments before ``--days`` existed:
#: a single dump must stay byte for byte what it was (issue 22).
PINNED = {
    ("-n", "2500", "--seed", "5", "--page-size", "500"): (
        "bf9e40935262332954ccc33ab021c9a174641ab84e3f9518855a6c958326aacd"
    ),
    ("-n", "30", "--gzip", "--seed", "3"): (
        "791bcd2a7b2160740a7912e754c1955fd6fbd940c3be922347d2754dfaef593e"
    ),
}


def test_a_single_dump_is_the_same_bytes_as_before(tmp_path: Path) -> None:
    for number, (args, expected) in enumerate(PINNED.items()):
        result = CliRunner().invoke(main, ["generate", str(tmp_path / str(number)), *args])
        assert result.exit_code == 0, result.output
        assert digest(tmp_path / str(number)) == expected, args


def test_generate_is_reproducible_and_ingests(tmp_path: Path) -> None:
    runner = CliRunner()
    for name in ("a", "b"):
        result = runner.invoke(
            main,
            ["generate", str(tmp_path / name), "-n", "2500", "--seed", "5", "--page-size", "500"],
        )
        assert result.exit_code == 0, result.output
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    result = runner.invoke(main, ["ingest", str(tmp_path / "a"), "--store", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "backups: 2500 new" in result.stderr and "duplicate" in result.stderr
    inv = Inventory.open(tmp_path / "s")
    assert inv.count() == 2500
    assert inv.count(used_percent=50) > 0
    assert inv.count(status="error") > 0
    shared = inv.lazy("members").select("dest_project_id").collect()["dest_project_id"][0]
    assert inv.count(own_type="shared", project=shared) > 0


def test_gzip_pages(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["generate", str(tmp_path / "g"), "-n", "30", "--gzip"])
    assert result.exit_code == 0
    assert [p.name for p in (tmp_path / "g" / "backups").iterdir()] == ["page-000001.json.gz"]


def test_newest_first_is_one_listing_in_the_apis_default_order(tmp_path: Path) -> None:
    args = ["-n", "1200", "--seed", "4", "--page-size", "250", "--newest-first"]
    for name in ("a", "b"):
        result = CliRunner().invoke(main, ["generate", str(tmp_path / name), *args])
        assert result.exit_code == 0, result.output
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    pages = sorted((tmp_path / "a" / "backups").iterdir())
    records = [r for page in pages for r in msgspec.json.decode(page.read_bytes())["backups"]]
    assert len(pages) == 5 and len({r["id"] for r in records}) == len(records) == 1200
    stamps = [r["created_at"] for r in records]
    moments = [instant(stamp) for stamp in stamps]
    # created_at descending, no two alike (so no tie-break by id is needed), every form used
    assert all(a > b for a, b in itertools.pairwise(moments))
    forms = {"Z" if t.endswith("Z") else t[-6:] if t[-6] in "+-" else "naive" for t in stamps}
    assert forms == {"Z", "+00:00", "+08:00", "naive"}
    inv = Inventory.from_dumps(tmp_path / "a")
    assert inv.query("limit=1000").ids == [r["id"] for r in records[:1000]]


def test_newest_first_is_one_listing_not_a_series(tmp_path: Path) -> None:
    args = ["generate", str(tmp_path), "--newest-first", "--days", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "--newest-first" in result.output


# --- generate --days: a daily series of full exports (issue 22) ----------------------------

SERIES_ARGS = ["-n", "600", "--days", "4", "--seed", "3", "--page-size", "100"]
DAYS = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]


class Page(msgspec.Struct):
    """A saved ListBackups or ListVaults response, each record kept as its text."""

    count: int | None = None
    backups: list[msgspec.Raw] | None = None
    vaults: list[msgspec.Raw] | None = None


def instant(text: str) -> datetime:
    """SPEC §1's timestamp forms as a UTC instant (zone-less means UTC)."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def pages(folder: Path, kind: str) -> list[tuple[int, list[dict[str, Any]]]]:
    """Every response of ``kind`` (``backups`` or ``vaults``) under ``folder``: count, records."""
    found = []
    for path in sorted(folder.rglob("*.json*")):
        data = path.read_bytes()
        page = msgspec.json.decode(gzip.decompress(data) if path.suffix == ".gz" else data)
        if isinstance(page, dict) and isinstance(page.get(kind), list):
            found.append((page["count"], page[kind]))
    return found


def complete(folder: Path, kind: str) -> None:
    """SPEC §6: per project, the pages holding its records carry one ``count``, and
    together hold exactly ``count`` distinct ids."""
    counts: dict[str, set[int]] = {}
    ids: dict[str, set[str]] = {}
    for count, records in pages(folder, kind):
        for record in records:
            counts.setdefault(record["project_id"], set()).add(count)
            ids.setdefault(record["project_id"], set()).add(record["id"])
    assert counts, f"no {kind} pages in {folder}"
    for project, seen in counts.items():
        assert len(seen) == 1, (folder, kind, project, seen)
        assert len(ids[project]) == seen.pop(), (folder, kind, project)


def texts(folder: Path) -> dict[str, bytes]:
    """Each backup's record text, by id, as the day's pages hold it."""
    found: dict[str, bytes] = {}
    for path in sorted((folder / "backups").rglob("*.json*")):
        data = path.read_bytes()
        page = msgspec.json.decode(
            gzip.decompress(data) if path.suffix == ".gz" else data, type=Page
        )
        for raw in page.backups or []:
            found[msgspec.json.decode(raw)["id"]] = bytes(raw)
    return found


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("series") / "daily"
    result = CliRunner().invoke(main, ["generate", str(out), *SERIES_ARGS])
    assert result.exit_code == 0, result.output
    assert "4 daily exports, 2026-01-01 to 2026-01-04: 600 backups on day one" in result.stderr
    return out


def test_every_day_is_a_complete_export(series: Path) -> None:
    assert sorted(p.name for p in series.iterdir()) == DAYS
    for name in DAYS:
        complete(series / name, "backups")
        complete(series / name, "vaults")
        assert (series / name / "members.json").is_file()
    assert sum(len(r) for _, r in pages(series / DAYS[0], "backups")) == 600


def test_each_day_is_taken_that_day_and_holds_nothing_expired(series: Path) -> None:
    for name in DAYS:
        records = [r for _, rs in pages(series / name, "backups") for r in rs]
        newest = max(instant(r["updated_at"]) for r in records)
        assert newest.date().isoformat() == name  # SPEC's default taken_at is that day
        expiries = [instant(r["expired_at"]) for r in records if r["expired_at"] is not None]
        assert min(expiries) > newest


def test_the_inventory_churns_and_unchanged_records_keep_their_text(series: Path) -> None:
    for before, after in itertools.pairwise(DAYS):
        old, new = texts(series / before), texts(series / after)
        added, gone = new.keys() - old.keys(), old.keys() - new.keys()
        changed = {i for i in old.keys() & new.keys() if old[i] != new[i]}
        assert added and gone and changed
        for backup in map(msgspec.json.decode, (new[i] for i in added | changed)):
            assert instant(backup["updated_at"]).date().isoformat() == after, backup["id"]
        for backup in map(msgspec.json.decode, old.values()):
            fresh = instant(backup["updated_at"]).date().isoformat() == before
            if backup["status"] == "deleting" and fresh:
                assert backup["id"] in gone  # a day in deleting, then gone
            if backup["status"] == "protecting" and fresh:
                assert msgspec.json.decode(new[backup["id"]])["status"] in ("available", "error")


def test_a_vault_fills_up_day_by_day(series: Path) -> None:
    used: dict[str, list[int]] = {}
    for name in DAYS:
        for _, vaults in pages(series / name, "vaults"):
            for vault in vaults:
                used.setdefault(vault["id"], []).append(vault["billing"]["used"])
    rising = [u for u in used.values() if u == sorted(set(u)) and len(u) == len(DAYS)]
    assert len(rising) == 1


def test_a_series_is_reproducible_for_a_seed(series: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    result = CliRunner().invoke(main, ["generate", str(again), *SERIES_ARGS])
    assert result.exit_code == 0, result.output
    assert digest(again) == digest(series)
    other = tmp_path / "other"
    args = [a if a != "3" else "4" for a in SERIES_ARGS]
    assert CliRunner().invoke(main, ["generate", str(other), *args]).exit_code == 0
    assert digest(other) != digest(series)


def test_a_gzipped_series_from_a_given_day(tmp_path: Path) -> None:
    args = ["-n", "200", "--days", "2", "--gzip", "--start", "2026-02-28"]
    result = CliRunner().invoke(main, ["generate", str(tmp_path / "z"), *args])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "z").iterdir()) == ["2026-02-28", "2026-03-01"]
    for day in (tmp_path / "z").iterdir():
        assert all(p.name.endswith(".json.gz") for p in (day / "backups").rglob("page-*"))
        complete(day, "backups")
    assert (
        texts(tmp_path / "z" / "2026-02-28").keys() != texts(tmp_path / "z" / "2026-03-01").keys()
    )


def test_start_needs_days(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["generate", str(tmp_path), "--start", "2026-01-01"])
    assert result.exit_code == 2
    assert "--days" in result.output


def test_every_day_ingests_into_one_store(series: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    ever: set[str] = set()
    for name in DAYS:
        result = CliRunner().invoke(main, ["ingest", str(series / name), "--store", store])
        assert result.exit_code == 0, result.output
        ever |= texts(series / name).keys()
    inv = Inventory.open(tmp_path / "s")
    assert inv.count() == len(ever)  # no snapshots: every backup ever seen, newest version
    assert inv.count(status="deleting") > 0 and inv.count(status="error") > 0


def test_the_checker_catches_a_missing_page(series: Path, tmp_path: Path) -> None:
    """The completeness checker above can fail: a day less one page is refused."""
    day = tmp_path / "day"
    shutil.copytree(series / DAYS[1], day)
    next((day / "backups").rglob("page-000002.json")).unlink()
    with pytest.raises(AssertionError):
        complete(day, "backups")
