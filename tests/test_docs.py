"""Every command has help with an example and is documented in the README."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

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


def quick_start() -> tuple[list[str], list[str]]:
    """The README's two quick-start lines, each as its ``&&``-separated steps."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    install, test = [line for line in block.splitlines() if line.strip()]
    return install.split(" && "), test.split(" && ")


def ci_commands() -> list[str]:
    """The command lines of ``.ci/run`` (comments and blank lines left out)."""
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_ci_runs_the_readme_test_command() -> None:
    """Each step of the README's test line is a line of .ci/run, in order; pytest runs once."""
    _, test = quick_start()
    ci = ci_commands()
    assert all(step in ci for step in test), (test, ci)
    at = [ci.index(step) for step in test]
    assert at == sorted(at), (test, ci)
    assert test[0] == "python -m pip install -e '.[dev]'"
    assert [line for line in ci if "pytest" in line] == [test[-1]]


def test_the_readme_test_command_is_under_development_too() -> None:
    readme = (REPO / "README.md").read_text()
    _, test = quick_start()
    development = readme.split("\n## Development\n", 1)[1]
    assert " && ".join(test) in development.split("```sh", 1)[1].split("```", 1)[0]


def test_the_quick_start_works_on_a_stock_machine() -> None:
    """A venv made with python3 (no ``python`` on stock Debian, no pip outside a venv),
    the user's install (the ``report`` extra, not 1.3 GB of ``dev``), then the job."""
    install, _ = quick_start()
    assert install[0].startswith("python3 -m venv "), install
    venv = install[0].split()[-1]
    assert install[1] == f". {venv}/bin/activate", install
    assert install[2] == "python -m pip install '.[report]'", install
    assert (
        "report"
        in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    jobs = install[3:]
    assert jobs[0].startswith("cbrq ingest sample_data --store scratch/"), jobs
    assert jobs[-1].startswith("cbrq query ") and "--store scratch/" in jobs[-1], jobs
    assert not any(step.startswith("python ") for step in install[:2])


def test_scratch_and_the_venv_are_ignored() -> None:
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert "/scratch/" in ignored and "/.venv/" in ignored


#: A Markdown link or image: ``[text](target)``, the target up to a space or ``)``.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")
DOCS = [
    REPO / "README.md",
    REPO / "sample_data" / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
]


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of ``markdown``.

    Example: ``anchors("## 2. Query parameters")`` == ``{"2-query-parameters"}``.
    """
    found = set()
    inside = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif not inside and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_anchors_are_githubs() -> None:
    assert anchors("## 2. Query parameters\n```\n# not a heading\n```") == {"2-query-parameters"}
    assert anchors("### `cbrq query [Q]`") == {"cbrq-query-q"}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_points_to_something_that_exists(doc: Path) -> None:
    text = doc.read_text()
    links = [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]
    assert links
    for target in links:
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        assert file.exists(), f"{doc.name}: {target} -> {file} does not exist"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file.read_text()), f"{doc.name}: {target}: no such heading"


def test_the_readme_cites_the_semantics_it_ships() -> None:
    """SPEC.md is the team's; users get docs/semantics.md, linked wherever it is cited."""
    readme = (REPO / "README.md").read_text()
    assert "SPEC" not in readme
    assert "(docs/semantics.md)" in readme.split("## Quick start", 1)[0]
    for cited in re.findall(r"semantics §\d", readme):
        assert f"[{cited}](docs/semantics.md#" in readme, cited


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


def test_the_semantics_name_every_parameter_and_the_error_body_as_given() -> None:
    """docs/semantics.md covers the parameter table, and its error example is cbrq's own."""
    from engine.errors import QueryError
    from engine.inventory import Inventory
    from engine.params import PARAMS

    text = (REPO / "docs" / "semantics.md").read_text()
    section = text.split("### The 23 parameters", 1)[1].split("\n## 3.", 1)[0]
    assert len(PARAMS) == 23
    for param in PARAMS:
        assert f"`{param.name}`" in section, param.name
    shown = json.loads(text.split("## 3. Errors", 1)[1].split("```json\n", 1)[1].split("```")[0])
    with Inventory.from_dumps([str(SAMPLE / "dumps")]) as inv, pytest.raises(QueryError) as err:
        inv.query("stauts=error&limit=0")
    assert err.value.body() == shown
