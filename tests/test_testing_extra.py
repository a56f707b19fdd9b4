"""``engine.testing`` without the ``testing`` extra says what to install.

Each case runs in a fresh interpreter where ``sys.modules["hypothesis"] = None`` stands for
an environment without hypothesis (an import of it then fails as if it were not installed).
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

WITHOUT_HYPOTHESIS = "import sys; sys.modules['hypothesis'] = None\n"


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_HYPOTHESIS + code],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_strategies_without_hypothesis_name_the_extra() -> None:
    done = run(
        "from engine.testing import MissingTestingExtra\n"
        "try:\n"
        "    import engine.testing.strategies\n"
        "except ImportError as err:\n"
        "    assert type(err) is MissingTestingExtra, type(err)\n"
        "    assert isinstance(err, ModuleNotFoundError) and err.name == 'hypothesis'\n"
        "    print(err)\n"
        "else:\n"
        "    raise SystemExit('imported without hypothesis')\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "engine.testing.strategies needs hypothesis, which is not installed: "
        "pip install 'cbrq[testing]'"
    )


def test_the_message_is_the_last_line_of_the_traceback() -> None:
    done = run("import engine.testing.strategies\n")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("engine.testing.MissingTestingExtra: ") and (
        "pip install 'cbrq[testing]'" in last
    ), done.stderr
    assert "During handling" not in done.stderr  # one error, not a chain of two


def test_the_reference_model_needs_no_hypothesis() -> None:
    done = run("from engine.testing.reference import answer\nprint(answer([], [], [], 'limit=1'))")
    assert done.returncode == 0, done.stderr
    assert "'count': 0" in done.stdout


def test_a_broken_hypothesis_is_not_reported_as_missing() -> None:
    """Another module missing (here hypothesis' own) is not hidden behind the install hint."""
    done = subprocess.run(
        [sys.executable, "-c",
         "import sys; sys.modules['hypothesis.strategies'] = None\n"
         "import engine.testing.strategies\n"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "MissingTestingExtra" not in done.stderr and "ModuleNotFoundError" in done.stderr
