"""Every command has help with an example and is documented in the README."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from engine.cli import main
from tests.conftest import REPO, SAMPLE

COMMANDS = sorted(main.commands)
#: What an example line of a help text may start with.
COMMAND_WORDS = ("cbrq", "curl", "printf", "zcat", "duckdb")


def test_there_are_commands() -> None:
    assert {"ingest", "export"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_help_with_example(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_help_examples_are_whole_command_lines(name: str) -> None:
    """Each example line is a command as typed (a ``\\n`` in a docstring once split one)."""
    text = CliRunner().invoke(main, [name, "--help"]).output
    block = text.split("Example:", 1)[1].split("\n\n", 1)[0].strip("\n").splitlines()
    assert block
    for line in block:
        assert line.startswith("    ") and line.split()[0] in COMMAND_WORDS, line


@pytest.mark.parametrize("name", COMMANDS)
def test_command_is_in_readme(name: str) -> None:
    assert f"### `cbrq {name}" in (REPO / "README.md").read_text()


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    install, test = [line for line in quick_start.splitlines() if line.strip()]
    assert test in ci.splitlines()
    assert install.split(" && ")[0] in ci.splitlines()


def test_readme_conformance_example_works_as_written() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Test your own ListBackups implementation", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    # Line numbers as in README.md, so that tools reading the source (hypothesis) find it.
    code = "\n" * readme[: readme.index(code)].count("\n") + code
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    test = namespace["test_my_list_backups_matches_the_spec"]
    assert callable(test)
    test()


def test_top_level_help_shows_a_query_and_whole_summaries() -> None:
    text = CliRunner().invoke(main, ["--help"]).output
    assert "cbrq query '" in text
    commands = text.split("Commands:", 1)[1]
    assert "..." not in commands
    for name in COMMANDS:
        assert f"\n  {name} " in commands


def test_parquet_to_a_terminal_is_refused() -> None:
    leader, follower = os.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "engine.cli", "query", "-f", "parquet", "limit=1",
             "--from", str(SAMPLE / "dumps")],
            stdout=follower,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )  # fmt: skip
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 2 and "-o FILE" in done.stderr


def test_every_error_has_one_style() -> None:
    for args, where in (
        (["query", "--bogus"], "cbrq query"),
        (["nosuch"], "cbrq"),
        (["query", "-f", "xml"], "cbrq query"),
    ):
        result = CliRunner().invoke(main, args, prog_name="cbrq")
        assert result.exit_code == 2
        assert result.stderr.startswith("cbrq: error: ") and f"(see '{where} --help')" in (
            result.stderr
        )
        assert "Usage:" not in result.stderr
