"""Phase: HTTP, in several processes: worker processes sharing one mapped copy of a commit.

:func:`serve_workers` writes the store's live records once per commit as an
uncompressed Arrow file in a :class:`SharedFolder` (:func:`shared_rows`),
hands its worker processes what to serve through :data:`WORKER_ENV`, and
each worker (:func:`worker_app`) builds the application of
:mod:`engine.server.app` over the mapped records, follows new commits by
itself and stops when the serve process dies.

Example::

    serve_workers(Path("cbrq-store"), "127.0.0.1", 8080, 2, token=None, quiet=True)
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Final

import polars as pl
import pyarrow as pa
import pyarrow.ipc as pa_ipc
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.backends.base import RID
from engine.errors import CbrqError, StoreError
from engine.inventory import Inventory
from engine.server.app import LOAD_ERRORS, LiveRows, _open, _reason, create_app, unloadable
from engine.server.http import _log, _uvicorn_settings

#: The exit status of a worker that could not load its commit (uvicorn's own for a
#: failed start: a supervisor that knows it stops instead of starting it again).
WORKER_FAILED: Final[int] = 3
#: Seconds between a worker's looks at whether the serve process that started it is alive.
PARENT_POLL: Final[float] = 1.0
#: How serve_workers tells its worker processes what to serve.
WORKER_ENV: Final[str] = "CBRQ_SERVE_WORKER"


def shared_rows(folder: Path) -> LiveRows:
    """Live rows mapped from one uncompressed Arrow file per commit in ``folder``.

    The first process to need a commit writes its file (under a lock; older
    commits' files are removed, and processes that mapped them keep reading
    them until they let go); every process maps it, so the operating system
    keeps one copy of the records in memory for all of them.

    Example: ``Snapshot.load(inventory, shared_rows(Path("/tmp/cbrq-serve-x")))``.
    """

    def live(inventory: Inventory) -> pl.DataFrame:
        path = folder / f"g{inventory.manifest.generation:06d}.arrow"
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.exists():
                numbered = inventory.physical().with_row_index(RID)
                staged = path.with_suffix(".staged")
                try:
                    # Streamed from Parquet to the file: the writer never holds every record.
                    inventory.live(numbered).drop(RID).sink_ipc(staged, compression="uncompressed")
                except BaseException:
                    staged.unlink(missing_ok=True)  # a damaged store leaves no half copy
                    raise
                os.replace(staged, path)
                for old in folder.glob("g*.arrow"):
                    if old.name < path.name:
                        old.unlink(missing_ok=True)
            table = pa_ipc.open_file(pa.memory_map(str(path))).read_all()
        frame = pl.from_arrow(table, rechunk=False)
        assert isinstance(frame, pl.DataFrame)
        return frame

    return live


class SharedFolder:
    """The temporary folder of a multi-process server's shared copy, removed by the last user.

    The serve process and each of its workers hold a shared lock on the
    folder's ``.users`` file while they live (the kernel lets go of it when
    a process dies, SIGKILL included); a process that leaves and then gets
    the lock exclusively is the last one, and removes the folder. Folders
    whose users all died before anyone could remove them (a serve process
    killed before its workers started) are removed by the next
    :meth:`sweep`.

    Example::

        shared = SharedFolder.create()
        ...  # write into shared.path, start workers that SharedFolder.join(shared.path)
        shared.leave()
    """

    PREFIX: Final[str] = "cbrq-serve-"
    USERS: Final[str] = ".users"

    def __init__(self, path: Path, handle: int) -> None:
        self.path = path
        self._handle: int | None = handle

    @classmethod
    def create(cls, parent: str | None = None) -> SharedFolder:
        """A new folder (in ``parent``, default the temporary directory) held by this process."""
        path = Path(tempfile.mkdtemp(prefix=cls.PREFIX, dir=parent))
        # Locked under another name, then renamed: no sweep ever sees it unlocked.
        fresh = path / (cls.USERS + ".new")
        handle = os.open(fresh, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(handle, fcntl.LOCK_SH)
        os.replace(fresh, path / cls.USERS)
        return cls(path, handle)

    @classmethod
    def join(cls, path: Path) -> SharedFolder:
        """Hold the folder another process created (raises OSError if it has gone)."""
        handle = os.open(path / cls.USERS, os.O_RDWR)
        fcntl.flock(handle, fcntl.LOCK_SH)
        return cls(path, handle)

    def leave(self) -> bool:
        """Let go of the folder, removing it if no one else holds it; whether it was removed."""
        if self._handle is None:
            return False
        os.close(self._handle)
        self._handle = None
        return self._remove_if_unused(self.path)

    @classmethod
    def sweep(cls, parent: str | None = None) -> list[Path]:
        """Remove the folders in ``parent`` that no living process holds; the ones removed."""
        removed = []
        for path in sorted(Path(parent or tempfile.gettempdir()).glob(cls.PREFIX + "*")):
            if (path / cls.USERS).is_file() and cls._remove_if_unused(path):
                removed.append(path)
        return removed

    @classmethod
    def _remove_if_unused(cls, path: Path) -> bool:
        try:
            handle = os.open(path / cls.USERS, os.O_RDWR)
        except OSError:
            return False  # gone already, or not ours to look at
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # someone still uses it
        else:
            shutil.rmtree(path, ignore_errors=True)
            return True
        finally:
            os.close(handle)


def serve_workers(
    store: Path,
    host: str,
    port: int,
    workers: int,
    *,
    token: str | None,
    quiet: bool,
    as_of: datetime | None = None,
    ever: bool = False,
) -> None:
    """Serve ``store`` from ``workers`` processes sharing one mapped copy of its records.

    Python runs one request at a time per process; several processes answer
    in parallel on several cores. The records are written once per commit
    as an uncompressed Arrow file in a temporary folder (:class:`SharedFolder`,
    removed by the last process to go, even when this one is killed) that
    every worker maps (:func:`shared_rows`); each worker keeps only its own
    orders, codes and masks. Each worker follows new commits by itself, and
    stops when this process dies. ``as_of`` and ``ever``: the instant the
    workers answer as of (SPEC §6; default the latest).

    Raises :class:`StoreError` (naming the damaged file) when the store's
    commit cannot be loaded here or by a worker at its start: the workers
    are stopped and the port let go of, rather than started again and again.

    Example: ``serve_workers(Path("cbrq-store"), "127.0.0.1", 8080, 2, token=None, quiet=True)``.
    """
    SharedFolder.sweep()
    shared = SharedFolder.create()
    try:
        with _open(store, as_of, ever) as inventory:
            try:
                shared_rows(shared.path)(inventory)  # written once, before the workers map it
            except LOAD_ERRORS as err:
                raise unloadable(store, inventory.manifest, err) from err
        spec = {
            "store": str(store),
            "folder": str(shared.path),
            "token": token,
            "quiet": quiet,
            "parent": os.getpid(),
            "view": [None if as_of is None else as_of.isoformat(), ever],  # SPEC §6
        }
        os.environ[WORKER_ENV] = json.dumps(spec)
        uvicorn.run(
            "engine.server.workers:worker_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            **_uvicorn_settings(),
        )
        failures = sorted(shared.path.glob("failed-*"))
        if failures:
            reasons = dict.fromkeys(path.read_text(encoding="utf-8") for path in failures)
            raise StoreError("; ".join(reasons))
    finally:
        os.environ.pop(WORKER_ENV, None)
        shared.leave()


def worker_app() -> ASGIApp:
    """The application of one worker process of :func:`serve_workers` (set up by its environment).

    A worker that cannot load the commit writes why into the shared folder
    and asks the serve process to stop (it reports the reason and exits
    non-zero); a worker whose serve process has died stops too.

    Example: ``uvicorn.run("engine.server.workers:worker_app", factory=True, workers=2)``.
    """
    spec = json.loads(os.environ[WORKER_ENV])
    parent = int(spec["parent"])
    folder = Path(spec["folder"])
    _follow_parent(parent)
    try:
        shared = SharedFolder.join(folder)
    except OSError:
        sys.exit(0)  # the server has gone and taken its folder: nothing to serve
    _held.append(shared)
    atexit.register(shared.leave)
    try:
        when, ever = spec["view"]
        as_of = None if when is None else datetime.fromisoformat(when)
        inventory = _open(Path(spec["store"]), as_of, ever)
        live = shared_rows(folder)
        app = create_app(inventory, token=spec["token"], quiet=spec["quiet"], live=live)
        return _Leaving(app, shared)
    except Exception as err:
        if isinstance(err, CbrqError):
            reason = str(err)
        else:  # a bug: its traceback helps, and the server must stop all the same
            _log(f"cbrq: worker {os.getpid()} failed:\n" + traceback.format_exc().rstrip())
            reason = f"a server worker could not start: {type(err).__name__}: {_reason(err)}"
        _stop_parent(folder, parent, reason)
        sys.exit(WORKER_FAILED)


class _Leaving:
    """A worker's application, letting go of the shared folder when the server shuts down.

    At the end of the lifespan, not at exit: uvicorn ends a worker stopped
    by a signal with that same signal, so no exit handler would run.
    """

    def __init__(self, app: ASGIApp, shared: SharedFolder) -> None:
        self.app = app
        self.shared = shared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"].startswith("lifespan.shutdown."):
                self.shared.leave()
            await send(message)

        await self.app(scope, receive, sending)


def _stop_parent(folder: Path, parent: int, reason: str) -> None:
    """Tell the serve process why this worker cannot start, stop it, and wait to be stopped.

    The reason is written first (renamed into place whole), so the serve
    process finds it when its workers are down; waiting for the stop lets
    it go down as on SIGTERM, rather than see a dead worker and start another.
    """
    staged = folder / f".failed-{os.getpid()}"
    with contextlib.suppress(OSError):  # the folder gone with the serve process: no one to tell
        staged.write_text(reason, encoding="utf-8")
        os.replace(staged, folder / f"failed-{os.getpid()}")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with contextlib.suppress(ProcessLookupError):
        os.kill(parent, signal.SIGTERM)
    for _ in range(100):  # 10 s at most: the serve process may be gone already
        if stopped.is_set() or os.getppid() != parent:
            return
        time.sleep(0.1)


#: The shared folder this worker holds (let go of at exit, however it comes).
_held: list[SharedFolder] = []
#: prctl(2)'s option that sends a signal to this process when its parent dies.
_PR_SET_PDEATHSIG: Final[int] = 1


def _follow_parent(parent: int, *, kernel: bool = True) -> None:
    """Make this worker stop (SIGTERM, a graceful exit) when the ``parent`` process dies.

    On Linux the kernel sends it (``prctl(PR_SET_PDEATHSIG)``), even when
    the parent is killed with SIGKILL; a thread that looks at the parent
    every :data:`PARENT_POLL` seconds does it elsewhere, and in case the
    signal was missed (``kernel=False``: the thread alone). A parent gone
    already ends the worker at once.
    """
    if kernel and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        sys.exit(0)  # died before the line above took effect

    def look() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # uvicorn's graceful exit ends the process well before this
        for shared in _held:
            shared.leave()
        os._exit(1)

    threading.Thread(target=look, name="cbrq-parent", daemon=True).start()
