"""Shared fixtures and hypothesis profiles.

Profiles: ``default`` (fast, for development), ``ci`` (more examples; chosen
automatically when the ``CI`` environment variable is set, as on CI) and
``nightly`` (long runs: ``HYPOTHESIS_PROFILE=nightly python -m pytest``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "nightly", max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default")
)

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the hash of its bytes (to prove nothing changed)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A fresh, not yet existing store directory."""
    return tmp_path / "store"


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    """Write a dump file under tmp_path/in and return its path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
        return path

    return _write


def on_terminal(command: list[str], stream: str = "stdout", **options: Any) -> tuple[int, str, str]:
    """Run ``command`` with ``stream`` (stdout or stderr) on a new pseudo-terminal.

    Returns the exit status, what the terminal showed (line ends as ``\\n``)
    and what the other stream wrote to its pipe. ``options`` go to Popen.
    """
    leader, follower = os.openpty()
    other = "stderr" if stream == "stdout" else "stdout"
    try:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, **{stream: follower, other: subprocess.PIPE},
            **options,
        )  # fmt: skip
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: every writer has exited
                break
            if not chunk:
                break
            shown += chunk
        with getattr(process, other) as pipe:
            piped = pipe.read()
        status = process.wait(timeout=300)
    finally:
        os.close(leader)
    return status, shown.decode().replace("\r\n", "\n"), piped.decode()
