"""`cbrq generate` writes realistic, reproducible dumps that ingest cleanly."""

from __future__ import annotations

import hashlib
from pathlib import Path

from click.testing import CliRunner

from engine.cli import main
from engine.inventory import Inventory


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


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
