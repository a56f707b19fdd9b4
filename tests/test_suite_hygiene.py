"""The test suite leaves the machine as it found it (issue 20, item 7).

A test once ran ``apt-get install -y chromium`` when it found itself root without a
browser: 115 packages and upgrades of system parts, without a word. Installing
what CI needs is ``.ci/run``'s job; a test that lacks something skips and says why.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

#: Programs that change what is installed on the machine.
INSTALLERS = frozenset({"apt-get", "apt", "dpkg", "dnf", "yum", "apk", "brew", "snap"})
#: A pip install may only go into a folder of the test's own (``--target``, ``--prefix``).
PRIVATE_PIP = frozenset({"--target", "-t", "--prefix", "--root"})
TEST_FILES = sorted((REPO / "tests").rglob("*.py"))


def _words(node: ast.List | ast.Tuple) -> list[str]:
    """The literal strings of an argv list, in order (other elements are skipped)."""
    return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]


def installs(source: str) -> list[str]:
    """Every argv literal in ``source`` that would install onto the machine.

    Example: ``installs('run(["apt-get", "install", "-y", "x"])')`` -> one finding.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.List | ast.Tuple):
            continue
        words = _words(node)
        if not words:
            continue
        program = Path(words[0]).name
        pip = "pip" in words and "install" in words and not PRIVATE_PIP & set(words)
        if program in INSTALLERS or pip:
            found.append(f"line {node.lineno}: {' '.join(words)}")
    return found


def test_the_checker_finds_an_install() -> None:
    assert installs('subprocess.run(["apt-get", "install", "-y", "chromium"])')
    assert installs('subprocess.run((sys.executable, "-m", "pip", "install", "x"))')
    assert not installs('subprocess.run([sys.executable, "-m", "pip", "install", "-t", d, w])')
    assert not installs('skip("apt-get install chromium does it by hand")')


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_test_installs_onto_the_machine(path: Path) -> None:
    assert installs(path.read_text("utf-8")) == []
