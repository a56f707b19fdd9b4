"""Strings from a dump are shown, never obeyed (issue 20 item 5).

An id or a name holding ESC sequences (clear the screen, set the window
title), C1 controls, DEL or a bidirectional override is shown escaped
(``\\x1b``) by every table writer, on a terminal and through a pipe, and in
the HTML report; rich markup and emoji codes in a name are shown as typed.
The data formats (json, ndjson, csv) keep the strings exactly.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from engine.render import frame_table, visible, visible_columns
from tests.conftest import on_terminal
from tests.records import backup, page

CLEAR = "\x1b[2J\x1b[H"  # clear the screen, cursor home
TITLE = "\x1b]0;PWNED\x07"  # set the window title
EVIL_ID = f"b-{TITLE}x"
EVIL_NAME = f"n{CLEAR}\x9b31m\x7f\u202eevil\x00"
#: Every character a terminal could obey, and the escapes a reader sees instead.
RAW = ("\x1b", "\x07", "\x9b", "\x7f", "\u202e", "\x00")
SHOWN = ("\\x1b]0;PWNED\\x07", "\\x1b[2J\\x1b[H", "\\x9b31m", "\\x7f", "\\u202e", "\\x00")


@pytest.fixture
def dumps(tmp_path: Path) -> list[str]:
    records = [
        backup(EVIL_ID, name=EVIL_NAME, resource_id=f"r{CLEAR}", resource_name=EVIL_NAME),
        backup(f"{EVIL_ID}-e", name=EVIL_NAME, status="error", resource_id="r3"),
        backup("b-markup", name="[/] [bold]x :thumbs_up:", status="error", resource_id="r2"),
    ]
    vaults = {"vaults": [{"id": "v1", "name": EVIL_NAME, "billing": {"size": 1, "used": 9}}]}
    (tmp_path / "b.json").write_text(page(*records))
    (tmp_path / "v.json").write_text(json.dumps(vaults))
    return ["--from", str(tmp_path / "b.json"), "--from", str(tmp_path / "v.json")]


def cbrq(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli", *args]


def assert_escaped(text: str) -> None:
    """Nothing a terminal obeys, and the escapes visible instead."""
    assert not [c for c in RAW if c in text], repr(text)
    assert [s for s in SHOWN if s in text], text


def test_visible_escapes_c0_c1_del_and_bidi_only() -> None:
    assert visible("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert visible("\x00\x09\x0a\x1f\x7f\x80\x9f") == "\\x00\\x09\\x0a\\x1f\\x7f\\x80\\x9f"
    assert visible("\u202a\u202e\u2066\u2069") == "\\u202a\\u202e\\u2066\\u2069"
    assert visible("plain é 漢 \\x1b [b] $$") == "plain é 漢 \\x1b [b] $$"


def test_visible_columns_is_visible_per_cell() -> None:
    values = [EVIL_NAME, "plain", None, f"{TITLE}{TITLE}"]
    frame = pl.DataFrame({"s": values, "n": [1, 2, 3, 4]})
    shown = visible_columns(frame)
    assert shown["s"].to_list() == [None if v is None else visible(v) for v in values]
    assert shown["n"].to_list() == [1, 2, 3, 4]


def test_markup_and_emoji_codes_are_shown_as_typed() -> None:
    text = frame_table(pl.DataFrame({"name": ["[/]", "[bold]x[/bold]", ":thumbs_up:"]}))
    assert "[/]" in text and "[bold]x[/bold]" in text and ":thumbs_up:" in text


@pytest.mark.parametrize(
    "args",
    [
        ["query"],
        ["rpo"],
        ["hygiene"],
        ["retention", "--min-days", "500"],
        ["capacity"],
    ],
    ids=lambda a: a[0],
)
def test_tables_on_a_terminal_show_control_characters_escaped(
    dumps: list[str], args: list[str]
) -> None:
    status, shown, err = on_terminal(cbrq(*args, *dumps))
    assert status == 0, err
    assert_escaped(shown)


@pytest.mark.parametrize("command", ["query", "rpo", "hygiene", "capacity"])
def test_tables_through_a_pipe_show_control_characters_escaped(
    dumps: list[str], command: str
) -> None:
    done = subprocess.run(cbrq(command, *dumps, "-f", "table"), capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert_escaped(done.stdout.decode())


def test_a_stats_key_holding_an_escape_is_shown_escaped(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text(page(backup("b1", resource_type=f"OS::{TITLE}")))
    done = subprocess.run(
        cbrq("stats", "--from", str(tmp_path / "b.json"), "--by", "resource_type", "-f", "table"),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "OS::\\x1b]0;PWNED\\x07" in done.stdout.decode()
    assert b"\x1b" not in done.stdout


def test_data_formats_keep_the_strings_exactly(dumps: list[str]) -> None:
    as_json = subprocess.run(cbrq("query", *dumps, "-f", "json"), capture_output=True, check=True)
    names = {b["id"]: b["name"] for b in json.loads(as_json.stdout)["backups"]}
    assert names[EVIL_ID] == EVIL_NAME
    rows = subprocess.run(cbrq("rpo", *dumps, "-f", "ndjson"), capture_output=True, check=True)
    assert EVIL_NAME in [json.loads(line)["resource_name"] for line in rows.stdout.splitlines()]
    as_csv = subprocess.run(
        cbrq("query", *dumps, "-f", "csv"), capture_output=True, check=True
    ).stdout.decode()
    assert EVIL_NAME in [row["name"] for row in csv.DictReader(io.StringIO(as_csv))]


def test_info_lists_an_ingested_file_name_escaped(tmp_path: Path) -> None:
    dump = tmp_path / f"dump{TITLE}.json"
    dump.write_text(page(backup("b1")))
    store = str(tmp_path / "store")
    subprocess.run(cbrq("ingest", str(dump), "--store", store, "-q"), check=True)
    done = subprocess.run(
        cbrq("info", "--store", store, "--ingested"), capture_output=True, check=True
    )
    assert b"\x1b" not in done.stdout
    assert "dump\\x1b]0;PWNED\\x07.json" in done.stdout.decode()


def test_the_html_report_shows_control_characters_escaped(dumps: list[str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "r.html"
    done = subprocess.run(cbrq("report", *dumps, "-o", str(out)), capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    controls = [c for c in text if c not in "\n\t" and (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F)]
    assert controls == []
    assert "\u202e" not in text
    assert "n\\x1b[2J\\x1b[H\\x9b31m\\x7f\\u202eevil\\x00" in text  # the vault's name, escaped
    assert "[/] [bold]x :thumbs_up:" in text
