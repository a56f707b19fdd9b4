"""SIGINT and SIGTERM during a write of the inventory: stop soon, at a safe point.

Python's own SIGINT handling raises :class:`KeyboardInterrupt` wherever the
main thread happens to be: inside a ``finally`` that closes a Parquet writer
while a worker thread still writes into it (a segfault), inside
``ThreadPoolExecutor.__exit__`` (the join is cut short), inside a
finalizer (printed as "Exception ignored" and lost), or inside a
``contextlib.suppress(BaseException)``; a lost one lets the ingest go on
and commit. So while ``cbrq ingest`` or ``cbrq compact`` runs,
:func:`handling` installs handlers that only note the signal, and the
writer calls :func:`check` at points where stopping is safe (between
files, batches, chunks of the merge, phases, and just before the commit),
which raises :class:`~engine.errors.Interrupted`. The commit itself is
never cut: a signal that arrives during it is reported after it.

Outside :func:`handling` (the Python API, every other command) nothing
changes: :func:`check` does nothing.

Example::

    with handling():
        ...               # long work
        check()           # raises Interrupted once SIGINT or SIGTERM came
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from types import FrameType
from typing import TypeVar

from engine.errors import Interrupted

#: The signals :func:`handling` defers.
SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)

_T = TypeVar("_T")
_received: list[int] = []  # the signals noted, first first
_active = threading.Event()  # set while handlers are installed
_raising = threading.Event()  # set while raising at once is safe (see raising())


def _note(signum: int, frame: FrameType | None) -> None:
    # Runs in the main thread between two bytecodes: only note, never raise
    # (unless the main thread is in a wait that holds nothing, see raising()).
    _received.append(signum)
    if _raising.is_set():
        raise Interrupted(signum)


@contextlib.contextmanager
def raising() -> Iterator[None]:
    """Within :func:`handling`, raise at once while the block runs: for waits that
    hold nothing to clean up (another writer's lock), which a noted signal
    would not end.

    Example: ``with raising(): stack.enter_context(locked(root))``.
    """
    _raising.set()  # before the check: a signal between the two would be noted, not raised
    try:
        check()
        yield
    finally:
        _raising.clear()


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """Defer SIGINT and SIGTERM to the next :func:`check` while the block runs.

    A signal noted but not acted on when the block ends normally raises
    :class:`~engine.errors.Interrupted` with ``committed`` (the block's
    work is done). Only the main thread can install handlers: elsewhere
    this does nothing.

    Example: ``with handling(): api.ingest(paths, store)``.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _note) for sig in SIGNALS}
    _received.clear()
    _active.set()
    try:
        yield
    finally:
        _active.clear()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        noted = received()
        _received.clear()
    if noted is not None:
        # The block ran to its end (its work is done and committed) and a signal
        # came late: say so rather than lose it.
        raise Interrupted(noted, committed=True)


def received() -> int | None:
    """The first signal noted since :func:`handling` began, if any.

    Example: ``received()`` -> ``2`` after a Ctrl-C.
    """
    return _received[0] if _received else None


def check(*, committed: bool = False) -> None:
    """Raise :class:`~engine.errors.Interrupted` if a signal was noted (main thread only).

    ``committed`` says the inventory already holds the work (the message says so).

    Example: ``for path in files: check(); read(path)``.
    """
    if not _received or threading.current_thread() is not threading.main_thread():
        return
    raise Interrupted(_received[0], committed=committed)


def interruptible_result(future: Future[_T]) -> _T:
    """``future.result()``, checking for a signal every tenth of a second while it waits.

    A plain wait does not return to :func:`check` until the work is done
    (seconds for a batch being typed).

    Example: ``interruptible_result(pool.submit(work))``.
    """
    while True:
        if _active.is_set():
            check()
        try:
            return future.result(timeout=0.1 if _active.is_set() else None)
        except TimeoutError:
            continue
