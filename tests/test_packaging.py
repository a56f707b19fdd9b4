"""What a real install gets: the wheel holds every subpackage, and it runs without the repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from engine.inventory import Inventory
from tests.conftest import REPO, SAMPLE
from tests.server_fixture import running


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A clean copy, without the editable install's extension or cargo's output:
    # maturin compiles the native core again from the copied sources.
    source = tmp_path_factory.mktemp("src") / "cbrq"
    leftovers = shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".data", ".hypothesis",
        "target", "_native*.so", "scratch",
    )  # fmt: skip
    shutil.copytree(REPO, source, ignore=leftovers)
    out = tmp_path_factory.mktemp("dist")
    # The compiled dependencies (pyo3) are reused from the repo's target folder.
    env = {**os.environ, "CARGO_TARGET_DIR": str(REPO / "native" / "target")}
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        env=env,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (found,) = out.glob("cbrq-*.whl")
    return found


def test_the_wheel_holds_every_subpackage(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {
        str(init.parent.relative_to(REPO)) for init in (REPO / "engine").rglob("__init__.py")
    }
    assert packages >= {"engine", "engine/testing"}
    for package in packages:
        assert f"{package}/__init__.py" in names, package
    for module in (REPO / "engine").rglob("*.py"):
        assert str(module.relative_to(REPO)) in names, module
    assert "engine/py.typed" in names
    assert any(n.startswith("engine/_native") and n.endswith(".so") for n in names), names
    assert "engine/_native.pyi" in names
    # Package data the engine reads at run time: quiet Spark needs its log4j2 file.
    for data in (REPO / "engine").rglob("*.properties"):
        assert str(data.relative_to(REPO)) in names, data
    # A Spark driver cbrq starts reads its log4j2 file from the installed package.
    assert "engine/backends/spark-log4j2.properties" in names


def test_the_installed_wheel_runs_outside_the_repo(wheel: Path, tmp_path: Path) -> None:
    """Installed without -e into an environment that sees the dependencies but not the repo."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / "bin" / "python"
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    # -S: no site hooks, so no editable install of the repo can answer for `engine`;
    # the installed wheel comes first, then the dependencies of the system site.
    paths = [str(target), *_site_packages()]
    code = (
        f"import sys; sys.path[:0] = {paths!r};"
        "import engine, engine.testing.reference;"
        f"assert engine.__file__.startswith({str(target)!r}), engine.__file__;"
        "from engine.cli import main;"
        "sys.argv = ['cbrq', *sys.argv[1:]]; main()"
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    version = subprocess.run(
        [str(python), "-S", "-c", code, "--version"], cwd=work, capture_output=True, text=True
    )
    assert version.returncode == 0 and "cbrq" in version.stdout, version.stderr
    dump = SAMPLE / "dumps" / "eca9bad1" / "backups-page-001.json"

    def cbrq(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), "-S", "-c", code, *args], cwd=work, capture_output=True, text=True
        )

    query = cbrq("count", "--from", str(dump), "status=available")
    assert query.returncode == 0 and query.stdout.strip().isdigit(), query.stderr
    # The native core reads dumps in the installed wheel: ingest, query, conformance.
    ingest = cbrq("ingest", str(SAMPLE / "dumps"), "--store", "store", "-q")
    assert ingest.returncode == 0, ingest.stderr
    stored = cbrq("count", "status=available", "--store", "store")
    whole = cbrq("count", "status=available", "--from", str(SAMPLE / "dumps"))
    assert stored.returncode == 0 and stored.stdout == whole.stdout, stored.stderr
    with running(Inventory.from_dumps([dump])) as url:
        args = ["--endpoint", url, "--project", "eca9bad1", "--from", str(dump)]
        agreed = cbrq("conformance", *args, "--examples", "20")
    assert agreed.returncode == 0 and "conformance" in agreed.stdout, agreed.stdout + agreed.stderr


def _site_packages() -> list[str]:
    import site

    return [p for p in site.getsitepackages() if Path(p).is_dir()]


def test_conformance_without_hypothesis_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from engine.cli import main

    monkeypatch.setitem(sys.modules, "hypothesis", None)  # as if not installed
    args = ["conformance", "--endpoint", "http://127.0.0.1:9", "--project", "p"]
    result = CliRunner().invoke(main, [*args, "--from", str(SAMPLE / "dumps")])
    assert result.exit_code == 2 and "pip install 'cbrq[testing]'" in result.output
