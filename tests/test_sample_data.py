"""`cbrq ingest sample_data` then `cbrq export` gives back every record."""

from __future__ import annotations

import gzip
import json
from itertools import pairwise
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from engine.cli import main
from tests.conftest import SAMPLE, snapshot
from tests.test_roundtrip import canonicalized, expected


def responses(path: Path) -> list[dict[str, Any]]:
    """The responses of one sample file, read independently of the engine."""
    data = path.read_bytes()
    text = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode()
    if path.name.endswith(".ndjson"):
        return [{"backup": json.loads(line)} for line in text.splitlines() if line.strip()]
    body = json.loads(text)
    return body if isinstance(body, list) else [body]


def sample_records(kind: str, single: str) -> list[list[dict[str, Any]]]:
    suffixes = (".json", ".json.gz", ".ndjson")
    files = sorted(p for p in SAMPLE.rglob("*") if p.is_file() and p.name.endswith(suffixes))
    out = []
    for path in files:
        recs = []
        for response in responses(path):
            recs.extend(response.get(kind, []))
            if single in response:
                recs.append(response[single])
        out.append(recs)
    return out


def export(store: Path, kind: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, ["export", "--store", str(store), "--kind", kind])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["count"] == len(body[kind])
    return list(body[kind])


def test_sample_data_round_trip(tmp_path: Path) -> None:
    store = tmp_path / "S"
    result = CliRunner().invoke(main, ["ingest", str(SAMPLE), "--store", str(store)])
    assert result.exit_code == 0, result.output
    backups = {r["id"]: r for r in export(store, "backups")}
    assert backups == expected(sample_records("backups", "backup"))
    assert len(backups) >= 300
    winners = {
        "f28e28cb-1180-419f-b882-f2aada1ae4ab": ("status", "available"),
        "ec8bb50a-6874-411a-a05c-e06404dad78f": ("status", "deleting"),
        "b72df127-3f5e-435f-abd4-adbc2cf09f4c": ("description", "tie copy kept (later file)"),
    }
    for backup_id, (name, value) in winners.items():
        assert backups[backup_id][name] == value
    assert "tags" in backups["a7af9746-176d-4c75-b1e7-15c3137003b7"]
    vaults = [r for recs in sample_records("vaults", "vault") for r in recs]
    assert sorted(map(json.dumps, export(store, "vaults"))) == sorted(
        json.dumps(canonicalized(v)) for v in vaults
    )
    members = [r for recs in sample_records("members", "member") for r in recs]
    assert len(export(store, "members")) == len(members)


# --- the bundled daily series (sample_daily/, beside sample_data/) --------------------------

#: The bundled series and the command that writes it (sample_data/README.md says the same).
DAILY = SAMPLE.parent / "sample_daily"
DAILY_COMMAND = "cbrq generate sample_daily -n 20 --days 5 --seed 7"


def _days() -> list[Path]:
    return sorted(p for p in DAILY.iterdir() if p.is_dir())


def test_the_daily_series_is_what_its_documented_command_writes(tmp_path: Path) -> None:
    out = tmp_path / "sample_daily"
    _, command, _, *options = DAILY_COMMAND.split()
    result = CliRunner().invoke(main, [command, str(out), *options])
    assert result.exit_code == 0, result.output
    assert snapshot(out) == snapshot(DAILY)
    assert [p.name for p in _days()] == [f"2026-01-0{n}" for n in range(1, 6)]
    size = sum(p.stat().st_size for p in DAILY.rglob("*") if p.is_file())
    assert size < 300_000, size  # small enough to bundle and to read by eye
    assert DAILY_COMMAND in (SAMPLE / "README.md").read_text()


def test_the_daily_series_feeds_a_store_day_by_day(tmp_path: Path) -> None:
    store = str(tmp_path / "daily-store")
    for day in _days():
        args = ["ingest", str(day), "--store", store, "--snapshot", "-q"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["snapshots", "--store", store, "-f", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["taken_at"][:10] for r in rows] == [d.name for d in _days()]
    projects = sorted(p.name for p in (_days()[0] / "backups").iterdir())
    assert all(r["projects"] == projects and r["scope"] == "project" for r in rows)
    assert rows[0]["added"] == rows[0]["backups"] == 20
    for before, after in pairwise(rows):
        assert after["backups"] == before["backups"] + after["added"] - after["gone"]
