"""Habits of neighbouring tools, met with a hint instead of a surprise (issue 23, item 4).

``-o table`` (the AWS CLI's format flag) warns and names ``-f``; an unknown
option named like a ListBackups parameter (``--status error``) says to use
``-p``; ``-f json`` on a terminal is indented and, off one, compact as
before. Through click's CliRunner, and a real pseudo-terminal for the last.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLE
from tests.golden.cases import load_store
from tests.test_analyses_cli import run


@pytest.fixture(scope="module")
def store() -> str:
    return str(load_store())


# --- -o given a format name ---------------------------------------------------


@pytest.mark.parametrize("name", ["table", "json", "ndjson", "csv", "tsv", "parquet"])
def test_o_with_a_format_name_warns_and_still_writes_that_file(
    store: str, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run("query", "--store", store, "limit=1", "-o", name)
    assert (code, out) == (0, "")
    assert f"cbrq: warning: -o {name} writes a file named '{name}'; did you mean -f {name}?" in err
    assert json.loads((tmp_path / name).read_text())["count"] > 0  # json, the default off a tty


def test_analyses_warn_too(store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run("capacity", "--store", store, "-o", "csv")
    assert code == 0 and "did you mean -f csv?" in err
    assert list(json.loads((tmp_path / "csv").read_text())) == ["at", "rows"]


def test_no_warning_for_a_file_that_exists_or_a_name_that_is_no_format(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "json").write_text("old")
    for target in ("json", "out.json", "csv.txt"):
        code, _, err = run("query", "--store", store, "limit=1", "-o", target)
        assert code == 0 and "warning" not in err, target


def test_a_format_the_command_has_not_is_no_hint(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # export writes json or ndjson only: -f csv would be wrong
    code, _, err = run("export", "--store", store, "-o", "csv")
    assert code == 0 and "warning" not in err
    code, _, err = run("export", "--store", store, "-o", "ndjson")
    assert code == 0 and "did you mean -f ndjson?" in err


# --- unknown options named like parameters ------------------------------------


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["query", "--status", "error"], "use -p status=error"),
        (["query", "--status=error"], "use -p status=error"),
        (["count", "--vault-id", "v1"], "use -p vault_id=v1"),
        (["explain", "--vault_id", "v1"], "use -p vault_id=v1"),
        (["rpo", "--resource-type", "OS::Nova::Server"], "use -p resource_type=OS::Nova::Server"),
        (["stats", "--name", "daily backup"], "use -p 'name=daily backup'"),
        (["query", "--status"], "use -p status=VALUE"),
        (["export", "--status", "error"], "cbrq query -p status=error does"),
    ],
)
def test_an_unknown_parameter_option_says_to_use_p(store: str, args: list[str], hint: str) -> None:
    code, out, err = run(*args, "--store", store)
    assert (code, out) == (2, "")
    assert err.startswith("cbrq: error: no such option: --")
    assert "is a ListBackups parameter" in err and hint in err
    assert err.count("\n") == 1


def test_other_unknown_options_keep_clicks_message(store: str) -> None:
    code, _, err = run("query", "--store", store, "--colour", "red")
    assert code == 2
    assert "No such option" in err and "-p" not in err


# --- json on a terminal -------------------------------------------------------


def _on_a_terminal(*args: str) -> bytes:
    """What ``cbrq ARGS`` writes to a real pseudo-terminal (its line endings made \\n)."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", *args], cwd=REPO, stdout=slave, stderr=subprocess.PIPE
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return b"".join(chunks).replace(b"\r\n", b"\n")


@pytest.mark.parametrize(
    "args",
    [
        ["query", "--from", str(SAMPLE), "limit=2", "--fields", "id,name"],
        ["capacity", "--from", str(SAMPLE)],
    ],
)
def test_json_on_a_terminal_is_indented_and_compact_elsewhere(args: list[str]) -> None:
    shown = _on_a_terminal(*args, "-f", "json")
    piped = subprocess.run(
        [sys.executable, "-m", "engine", *args, "-f", "json"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    document = json.loads(piped)
    assert piped.count(b"\n") == 1 and piped.endswith(b"\n")  # one compact line, as before
    assert shown == json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"
    assert json.loads(shown) == document


def test_json_to_a_file_stays_compact(store: str, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    code, _, _ = run("query", "--store", store, "limit=2", "-f", "json", "-o", str(target))
    _, piped, _ = run("query", "--store", store, "limit=2", "-f", "json")
    assert code == 0 and target.read_text() == piped and piped.count("\n") == 1
