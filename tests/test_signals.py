"""SIGINT and SIGTERM stop `cbrq ingest` and `cbrq compact` in every phase, cleanly.

Real processes on generated data: the signal is sent once the progress bar
(on a pseudo-terminal) names the phase, or once the compaction's new
generation directory holds a table file. Then: exit 130 (SIGINT) or 143
(SIGTERM), ``cbrq: interrupted; the inventory is unchanged`` and the
store's files byte for byte as before; or, when the signal came during the
commit, ``... after the commit; the inventory holds this ingest`` and a
store that answers like the complete ingest. No timing is asserted; the
waits are bounded generously.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.api import export_pages, ingest
from tests.conftest import snapshot

UNCHANGED = "cbrq: interrupted; the inventory is unchanged"
HOLDS = "cbrq: interrupted after the commit; the inventory holds this ingest"
#: Generous bounds for each wait (the machine may be busy): never assertions of speed.
PHASE_WAIT = 240.0
EXIT_WAIT = 120.0


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Generated dumps; a store of the first set; after the second; with two segments."""
    tmp = tmp_path_factory.mktemp("signals")
    for name, seed, count in (("first", 1, 30_000), ("second", 2, 30_000), ("small", 3, 3_000)):
        command = ["generate", str(tmp / name), "-n", str(count), "--seed", str(seed)]
        subprocess.run([sys.executable, "-m", "engine.cli", *command], check=True)
    base = tmp / "base"
    ingest([str(tmp / "first")], base)
    full = tmp / "full"
    shutil.copytree(base, full)
    ingest([str(tmp / "second")], full)
    two = tmp / "two"  # a second, small segment: compact has work
    shutil.copytree(base, two)
    ingest([str(tmp / "small")], two)
    return {"second": tmp / "second", "base": base, "full": full, "two": two}


def _ansi_free(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


class _Run:
    """``cbrq ARGS`` with stderr on a pseudo-terminal (so the progress bar shows)."""

    def __init__(self, args: list[str]) -> None:
        leader, follower = os.openpty()
        self._leader = leader
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=follower,
        )
        os.close(follower)
        self._shown = b""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._leader, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self._shown += chunk

    @property
    def shown(self) -> str:
        with self._lock:
            return _ansi_free(self._shown.decode(errors="replace"))

    def wait_for(self, condition: object) -> bool:
        """Wait until ``condition()`` holds; False if the process ended first."""
        deadline = time.monotonic() + PHASE_WAIT
        while time.monotonic() < deadline:
            if condition():  # type: ignore[operator]
                return self.process.poll() is None
            if self.process.poll() is not None:
                return False
            time.sleep(0.005)
        raise AssertionError(f"not reached in {PHASE_WAIT} s; shown: {self.shown[-500:]}")

    def finish(self) -> tuple[int, str]:
        status = self.process.wait(timeout=EXIT_WAIT)
        self._reader.join(timeout=EXIT_WAIT)
        os.close(self._leader)
        return status, self.shown


def _interrupt_ingest(
    data: dict[str, Path], tmp_path: Path, phase: str, sig: signal.Signals
) -> tuple[int, str, Path, dict[str, str]]:
    """Run an append, send ``sig`` once the bar shows ``phase``; status, screen, store."""
    root = tmp_path / "store"
    shutil.copytree(data["base"], root)
    before = snapshot(root)
    run = _Run(["ingest", str(data["second"]), "--store", str(root)])
    if not run.wait_for(lambda: f"ingest: {phase}" in run.shown):
        status, shown = run.finish()
        pytest.skip(f"the ingest ended (status {status}) before {phase!r} was seen")
    run.process.send_signal(sig)
    status, shown = run.finish()
    return status, shown, root, before


@pytest.mark.parametrize(
    ("phase", "sig"),
    [
        ("reading", signal.SIGINT),
        ("typing records", signal.SIGINT),
        ("writing backups", signal.SIGINT),
        ("writing backups", signal.SIGTERM),
    ],
    ids=["reading-INT", "typing-INT", "writing-INT", "writing-TERM"],
)
def test_a_signal_stops_an_ingest_and_changes_nothing(
    data: dict[str, Path], tmp_path: Path, phase: str, sig: signal.Signals
) -> None:
    status, shown, root, before = _interrupt_ingest(data, tmp_path, phase, sig)
    if "elapsed:" in shown and UNCHANGED not in shown:
        # Under load the bar can show the phase after the ingest is past it: the
        # signal then lands once everything was committed and said. Not this case.
        assert list(export_pages(root)) == list(export_pages(data["full"]))
        pytest.skip(f"the ingest had committed before {sig.name} arrived")
    assert status == 128 + sig, shown[-1000:]
    assert UNCHANGED in shown, shown[-1000:]
    assert "Traceback" not in shown and "Aborted!" not in shown, shown[-2000:]
    assert snapshot(root) == before


def test_a_signal_while_committing_is_before_or_after_it(
    data: dict[str, Path], tmp_path: Path
) -> None:
    status, shown, root, before = _interrupt_ingest(data, tmp_path, "committing", signal.SIGINT)
    assert "Traceback" not in shown, shown[-2000:]
    if status == -signal.SIGINT:
        # The signal came once all was done and said, as the interpreter exited
        # (it restores the default action then): the shell sees 130 all the same.
        assert "elapsed:" in shown, shown[-1000:]
        assert list(export_pages(root)) == list(export_pages(data["full"]))
        return
    assert status == 130, shown[-1000:]
    if HOLDS in shown:
        assert list(export_pages(root)) == list(export_pages(data["full"]))
    else:
        assert UNCHANGED in shown, shown[-1000:]
        assert snapshot(root) == before


def test_a_signal_stops_a_compaction_and_changes_nothing(
    data: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "store"
    shutil.copytree(data["two"], root)
    before = snapshot(root)
    run = _Run(["compact", "--store", str(root)])
    fresh = f"g{int(max(p.name[1:] for p in root.glob('g[0-9]*'))) + 1:06d}"
    if not run.wait_for(lambda: any((root / fresh).glob("backups-*.parquet"))):
        status, shown = run.finish()
        pytest.skip(f"the compaction ended (status {status}) before it wrote a table file")
    run.process.send_signal(signal.SIGINT)
    status, shown = run.finish()
    assert status == 130, shown[-1000:]
    assert UNCHANGED in shown, shown[-1000:]
    assert "Traceback" not in shown, shown[-2000:]
    assert snapshot(root) == before


def test_a_signal_ends_the_wait_for_another_writer(data: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "store"
    shutil.copytree(data["base"], root)
    before = snapshot(root)
    with open(root / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another writer holds the store
        run = _Run(["ingest", str(data["second"]), "--store", str(root)])
        assert run.wait_for(lambda: _blocked_in_flock(run.process.pid))
        run.process.send_signal(signal.SIGINT)
        status, shown = run.finish()
    assert status == 130, shown[-1000:]
    assert UNCHANGED in shown, shown[-1000:]
    assert snapshot(root) == before


def _blocked_in_flock(pid: int) -> bool:
    """Whether the process's main thread sleeps waiting for a file lock (by /proc).

    Only the file-lock waits (``locks_lock_inode_wait``, ``flock_lock_inode_wait``,
    ``locks_lock_file_wait``): "lock" alone also matches a kernel mutex that a
    starting process on a loaded machine may sleep on, before cbrq handles signals.
    """
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False
    return "lock_inode_wait" in wchan or "lock_file_wait" in wchan


def test_a_failure_after_the_commit_keeps_the_committed_generation(
    data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cleaning up after the manifest's rename may fail (or be interrupted): the
    new generation is the inventory by then and must not be removed."""
    import engine.store.write

    root = tmp_path / "store"
    shutil.copytree(data["base"], root)
    real = engine.store.write._remove_stale
    calls: list[int] = []

    def failing(where: Path, keep: object, **options: object) -> None:
        calls.append(1)
        if len(calls) == 2:  # the cleanup after the commit's rename
            raise OSError(5, "Input/output error", str(where))
        real(where, keep, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(engine.store.write, "_remove_stale", failing)
    with pytest.raises(OSError):
        ingest([str(data["second"])], root)
    monkeypatch.undo()
    assert list(export_pages(root)) == list(export_pages(data["full"]))


def test_a_signal_ends_the_wait_for_standard_input(data: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "store"
    shutil.copytree(data["base"], root)
    before = snapshot(root)
    reading, writing = os.pipe()  # standard input that stays open and says nothing
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "ingest", "-", "--store", str(root)],
            stdin=reading,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + PHASE_WAIT
        while not _blocked_reading(process.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=EXIT_WAIT)
    finally:
        os.close(reading)
        os.close(writing)
    assert process.returncode == 130, stderr
    assert UNCHANGED in stderr, stderr
    assert snapshot(root) == before


def _blocked_reading(pid: int) -> bool:
    """Whether the process's main thread sleeps in a read of a pipe (by /proc)."""
    try:
        return "pipe" in Path(f"/proc/{pid}/wchan").read_text()  # pipe_read
    except OSError:
        return False
