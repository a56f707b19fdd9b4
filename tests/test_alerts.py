"""Alerts alert (issue 20 item 6): ``--fail-on`` and ``--only`` of the analysis commands.

A resource whose backups all failed has verdict ``never``: ``rpo --fail-on
breach`` exits 3 on it (it once exited 0, and the README's cron mail stayed
silent in the worst case), and ``--fail-on never`` is accepted. Every analysis
with verdicts takes ``--only`` to keep only some rows; ``--fail-on`` judges the
rows before ``--only`` keeps some.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.analyses import VERDICTS
from engine.cli import main
from engine.inventory import Inventory
from tests.records import backup, page

AT = "2020-03-01T00:00:00Z"


@pytest.fixture
def dumps(tmp_path: Path) -> list[str]:
    """r-failed: every backup in error (never); r-old: a good backup 9 days old (breach at 7d);
    r-new: a good backup a day old (ok)."""
    records = [
        backup("b1", resource_id="r-failed", status="error", created_at="2020-02-28T00:00:00Z"),
        backup("b2", resource_id="r-failed", status="error", created_at="2020-02-29T00:00:00Z"),
        backup("b3", resource_id="r-old", created_at="2020-02-21T00:00:00Z"),
        backup("b4", resource_id="r-new", created_at="2020-02-29T00:00:00Z"),
        backup("b5", resource_id="r-new", status="protecting", updated_at="2020-02-01T00:00:00Z"),
    ]
    vaults = [
        {"id": "v1", "billing": {"size": 1, "used": 1000}, "resources": [{"id": "r-old"}]},
        {"id": "v2", "billing": {"size": 10, "used": 10}},
    ]
    (tmp_path / "b.json").write_text(page(*records))
    (tmp_path / "v.json").write_text(json.dumps({"vaults": vaults}))
    return ["--from", str(tmp_path / "b.json"), "--from", str(tmp_path / "v.json"), "--at", AT]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def rows(out: str) -> list[dict[str, object]]:
    found: list[dict[str, object]] = json.loads(out)["rows"]
    return found


def test_fail_on_breach_fails_when_every_backup_failed(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text(page(backup("b1", status="error")))
    code, out, err = run("rpo", "--from", str(tmp_path / "b.json"), "--fail-on", "breach")
    assert [r["verdict"] for r in rows(out)] == ["never"]
    assert code == 3, err


def test_fail_on_never_is_accepted_and_fails_on_never_only(dumps: list[str]) -> None:
    code, out, err = run("rpo", *dumps, "--max-age", "7d", "--fail-on", "never")
    assert code == 3, err
    assert {r["verdict"] for r in rows(out)} == {"never", "breach", "ok"}


def test_fail_on_never_passes_a_breach(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text(page(backup("b1", created_at="2020-01-01T00:00:00Z")))
    source = ["--from", str(tmp_path / "b.json"), "--at", AT, "--max-age", "1d"]
    assert run("rpo", *source, "--fail-on", "never")[0] == 0
    assert run("rpo", *source, "--fail-on", "breach")[0] == 3


def test_only_keeps_the_problems_and_fail_on_still_judges_every_row(dumps: list[str]) -> None:
    code, out, _ = run(
        "rpo", *dumps, "--max-age", "7d", "--fail-on", "breach", "--only", "never,breach"
    )
    assert code == 3
    assert [(r["resource_id"], r["verdict"]) for r in rows(out)] == [
        ("r-failed", "never"),
        ("r-old", "breach"),
    ]
    # Judged before --only: the rows kept are fine, the analysis is not.
    code, out, _ = run("rpo", *dumps, "--max-age", "7d", "--fail-on", "breach", "--only", "ok")
    assert (code, [r["resource_id"] for r in rows(out)]) == (3, ["r-new"])


@pytest.mark.parametrize(
    ("args", "only", "kept"),
    [
        (["rpo", "--max-age", "7d"], "breach", {"breach"}),
        (["rpo", "--max-age", "7d"], "ok,never", {"ok", "never"}),
        (["retention", "--min-days", "85"], "short", {"short"}),
        (["hygiene"], "stuck", {"stuck"}),
        (["hygiene"], "error,orphan", {"error", "orphan"}),
        (["capacity"], "full", {"full"}),
        (["capacity"], "ok", {"ok"}),
    ],
)
def test_only_keeps_the_rows_with_those_verdicts(
    dumps: list[str], args: list[str], only: str, kept: set[str]
) -> None:
    code, everything, _ = run(*args, *dumps, "-f", "json")
    assert code == 0
    code, out, err = run(*args, *dumps, "--only", only, "-f", "json")
    assert code == 0, err
    column, _ = VERDICTS[args[0]]

    def verdict(row: dict[str, object]) -> object:
        return ("full" if row["full"] else "ok") if column == "full" else row[column]

    assert rows(out) == [r for r in rows(everything) if verdict(r) in kept]
    assert {verdict(r) for r in rows(out)} == kept  # the fixture has each of them


def test_only_in_a_diff_keeps_those_changes(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(page(backup("b1"), backup("b2")))
    (tmp_path / "b.json").write_text(page(backup("b2", status="error"), backup("b3")))
    a, b = str(tmp_path / "a.json"), str(tmp_path / "b.json")
    code, out, _ = run("diff", a, b, "--only", "added,changed", "-f", "json")
    assert code == 0
    assert [(r["change"], r["id"]) for r in rows(out)] == [("added", "b3"), ("changed", "b2")]


@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        ("rpo", "never, breach, ok"),
        ("retention", "overdue, short"),
        ("hygiene", "error, orphan, stuck"),
        ("capacity", "full, ok"),
    ],
)
def test_a_verdict_the_analysis_has_not_is_a_usage_error(
    dumps: list[str], command: str, allowed: str
) -> None:
    code, out, err = run(command, *dumps, "--only", "ok,nope")
    assert (code, out) == (2, "")
    assert err.startswith("cbrq: error:") and "--only" in err
    assert "'nope'" in err and allowed in err and "Traceback" not in err


def test_only_with_the_table_and_ndjson_formats(dumps: list[str]) -> None:
    code, out, _ = run("rpo", *dumps, "--max-age", "7d", "--only", "never", "-f", "ndjson")
    assert code == 0
    assert [json.loads(line)["resource_id"] for line in out.splitlines()] == ["r-failed"]
    code, out, _ = run("rpo", *dumps, "--max-age", "7d", "--only", "never", "-f", "table")
    assert code == 0 and "r-failed" in out and "r-old" not in out and "1 rows; at" in out


def test_the_python_api_judges_and_narrows_the_same(dumps: list[str]) -> None:
    with Inventory.from_dumps(dumps[1:4:2]) as inv:
        result = inv.rpo(max_age="7d", at=AT)
        assert result.fails("breach") and result.fails("never")
        assert result.only(["never"]).frame["resource_id"].to_list() == ["r-failed"]
        assert not result.only(["ok"]).fails("breach")
        with pytest.raises(ValueError, match="allowed: breach, never"):
            result.fails("full")
