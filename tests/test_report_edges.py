"""``cbrq report`` on odd names and extreme dates: data, not crashes (issue 20 item 3).

A vault named ``$$`` once failed in matplotlib's mathtext parser, a backup
dated 9999-12-31 overflowed the date axis (its day ends in year 10000), and
one dated 0001-01-01 overflowed the window of the last 180 days.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main
from tests.records import backup, page

pytest.importorskip("matplotlib")

FAR = "9999-12-31T23:59:59.999999"
OLD = "0001-01-01T00:00:00"
ODD_NAMES = ("$$", "$x^2$", "$", "\\$", "a_b^c{d}", "%s {0}", "", "[/]", "<b>&amp;", "x" * 3000)


def report(
    tmp_path: Path, backups: list[dict[str, object]], *options: str, names: tuple[str, ...]
) -> str:
    (tmp_path / "b.json").write_text(page(*backups))
    vaults = [
        {"id": f"v{n}", "name": name, "billing": {"size": 10, "used": 9000}}
        for n, name in enumerate(names)
    ]
    (tmp_path / "v.json").write_text(json.dumps({"vaults": vaults}))
    out = tmp_path / "r.html"
    args = ["report", "--from", str(tmp_path / "b.json"), "--from", str(tmp_path / "v.json")]
    done = CliRunner().invoke(main, [*args, *options, "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)
    return out.read_text(encoding="utf-8")


def test_names_with_dollars_and_tex_are_drawn_literally(tmp_path: Path) -> None:
    records = [
        backup(f"b{n}", vault_id=f"v{n}", resource_type=name or "t", status=name or "error")
        for n, name in enumerate(ODD_NAMES)
    ]
    text = report(tmp_path, records, names=ODD_NAMES)
    # The vault fill chart names the vaults as they are (SVG text, XML-escaped).
    assert ">$$<" in text and ">$x^2$<" in text and ">a_b^c{d}<" in text


@pytest.mark.parametrize(
    "dates",
    [(FAR,), (OLD,), (OLD, FAR)],
    ids=["9999-12-31", "0001-01-01", "both"],
)
@pytest.mark.parametrize("at", [None, "now", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_extreme_dates_are_drawn(tmp_path: Path, dates: tuple[str, ...], at: str | None) -> None:
    records = [
        backup(
            f"b{n}",
            created_at=when,
            updated_at=when,
            expired_at=FAR,
            resource_id=f"r{n}",
            replication_records=[{"status": "success"}],
        )
        for n, when in enumerate(dates)
    ]
    text = report(tmp_path, records, *(["--at", at] if at else []), names=("vault",))
    # Every chart is drawn or says why not; those with a date axis are drawn.
    assert text.count("<svg") + text.count('<p class="nochart"') == 8
    for name in ("backups_per_day", "error_rate_per_week", "replication_coverage"):
        assert f'<figure id="chart-{name}">' in text
    assert dates[-1][:10] in text  # the newest backup is named in the summary


def test_numbers_past_their_range_are_drawn(tmp_path: Path) -> None:
    """A size sum past Int64 (stats) and a fill past the float range (capacity)."""
    records = [backup(f"b{n}", resource_size=2**62, vault_id="v0") for n in range(3)]
    (tmp_path / "b.json").write_text(page(*records))
    vaults = [{"id": "v0", "name": "over", "billing": {"size": 1e-300, "used": 1e308}}]
    (tmp_path / "v.json").write_text(json.dumps({"vaults": vaults}))
    out = tmp_path / "r.html"
    args = ["report", "--from", str(tmp_path / "b.json"), "--from", str(tmp_path / "v.json")]
    done = CliRunner().invoke(main, [*args, "-o", str(out)])
    assert done.exit_code == 0, done.output
    text = out.read_text(encoding="utf-8")
    assert f"{3 * 2**62:,}" in text  # the exact sum in the stats table
    assert "inf %" in text  # the vault fill chart
