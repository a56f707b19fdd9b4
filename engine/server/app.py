"""Phase: HTTP. A local CBR endpoint serving an inventory with the full SPEC semantics.

This module holds the routes and what answers them (the Starlette app, the
in-memory snapshot, the reload of new commits); :mod:`engine.server.http` is
the protocol side under it (framing, limits, timeouts, JSON errors, uvicorn),
and :mod:`engine.server.workers` runs it in several processes.

Routes (SPEC §3 and §4)::

    GET /v3/{project_id}/backups               ListBackups (every parameter, limit default 1000)
    GET /v3/{project_id}/backups/{backup_id}   ShowBackup   (unknown: 404 BackupService.6200)
    GET /v3/{project_id}/vaults                ListVaults   (the project's vaults; limit/offset)
    GET /v3/{project_id}/vaults/{vault_id}     ShowVault    (unknown: 404 BackupService.6105)

The inventory is held in memory (:class:`~engine.backends.resident.Resident`: every
record; 2.9 GB for the 1M benchmark store, whose payloads alone take 1.4 GB;
worker processes share one mapped copy): a page is a walk along a
precomputed order and a gather of rows, never a disk read. A store-backed server looks at the
store's manifest every few seconds and, when an ingest has committed, loads
the new commit beside the old one and switches to it between requests
(saying so in its log); answers never mix two commits. A commit that cannot
be loaded (a damaged file) is logged once, named, and tried again less and
less often while the old commit keeps answering; at start it is an error
(:class:`~engine.errors.StoreError`), in one process or several.

Example::

    from engine.server.http import serve

    app = create_app(Inventory.open("cbrq-store"))
    serve(app, "127.0.0.1", 8080)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import polars as pl
import pyarrow as pa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from engine.backends.resident import Resident
from engine.errors import CbrqError, NotFoundError, QueryError, StoreError
from engine.inventory import Inventory
from engine.params import QueryParams, parse_paging
from engine.payload import canonical_payloads
from engine.server.http import BODY_TIMEOUT, JSON, _error, _Frame, _http_error, _log
from engine.store.integrity import locate
from engine.store.layout import MANIFEST, PAYLOAD
from engine.store.manifest import Manifest, check_hint, damaged

#: Seconds between looks at the store's manifest for a new commit.
WATCH_SECONDS: Final[float] = 2.0
#: Longest wait between two tries at a commit that failed to load (the wait doubles up to it).
RETRY_CAP: Final[float] = 60.0
#: How a commit on disk fails to load when a file is missing, unreadable or damaged
#: (a decoder's panic included): data to report, not a bug in cbrq.
LOAD_ERRORS: Final = (
    CbrqError,
    OSError,
    pl.exceptions.PolarsError,
    pl.exceptions.PanicException,
    pa.ArrowException,
)
#: All that a ListBackups response needs of each record.
RESPONSE_COLUMNS: Final[tuple[str, ...]] = ("id", PAYLOAD)


def _reason(err: BaseException) -> str:
    """The first line of what a reader said, for a one-line log or error message."""
    text = str(err).strip().splitlines()
    first = text[0] if text else type(err).__name__
    return first if len(first) <= 300 else first[:297] + "..."


def unloadable(root: Path, manifest: Manifest | None, err: BaseException) -> CbrqError:
    """The error to report for a commit of ``root`` that failed to load with ``err``.

    A cbrq error is already phrased; a reader's error (polars, pyarrow, the
    operating system) rarely names the file, so the commit's files are looked
    at as every store read does (:func:`engine.store.integrity.locate`) and the
    first damaged one is named. Costs a read of the store, on a failure only.

    Example: ``raise unloadable(inv.root, inv.manifest, err) from err``.
    """
    if isinstance(err, CbrqError):
        return err
    if manifest is not None:
        found = locate(root, manifest)
        if found is not None:
            return damaged(root, *found)
    named = getattr(err, "filename", None)
    where = root / MANIFEST if manifest is None and named is None else (named or root)
    return StoreError(f"{where}: cannot be loaded ({_reason(err)}); {check_hint(root)}")


def _open(root: Path, as_of: datetime | None = None, ever: bool = False) -> Inventory:
    """``Inventory.open(root, as_of=, ever=)``, every failure a cbrq error naming what failed.

    ``as_of`` and ``ever``: the instant the server answers as of (SPEC §6).
    """
    try:
        return Inventory.open(root, as_of=as_of, ever=ever)
    except LOAD_ERRORS as err:
        raise unloadable(root, None, err) from err


@dataclass(frozen=True)
class Snapshot:
    """One commit of the inventory as the server holds it: backups, vaults, where from.

    Example: ``Snapshot.load(Inventory.open("cbrq-store")).resident.frame.height``.
    """

    resident: Resident
    vaults: pl.DataFrame
    generation: int
    stamp: tuple[int, int] | None

    @classmethod
    def load(
        cls,
        inventory: Inventory,
        live: LiveRows | None = None,
        stamp: tuple[int, int] | None = None,
    ) -> Snapshot:
        """Hold ``inventory`` in memory (records, orders, vault payloads in the API's form).

        ``live`` gives the live backup rows another way than reading the
        store (:func:`~engine.server.workers.shared_rows`, for worker
        processes); ``stamp`` is the manifest's as read before ``inventory``
        was opened (``None``: unknown, so the first look at the store opens
        it to compare generations).
        """
        try:
            vaults = inventory.raw("vaults").select("id", "project_id", PAYLOAD).collect()
            vaults = vaults.with_columns(canonical_payloads(vaults[PAYLOAD]))
            rows = None if live is None else live(inventory)
            resident = Resident.build(inventory, rows)
        except LOAD_ERRORS as err:
            if inventory.root is None:
                raise
            raise unloadable(inventory.root, inventory.manifest, err) from err
        return cls(resident, vaults, inventory.manifest.generation, stamp)


#: How a server process gets the live backup rows of an inventory's commit.
LiveRows = Callable[[Inventory], pl.DataFrame]


def _stamp(root: Path) -> tuple[int, int] | None:
    """What changes when a commit replaces the manifest (its inode and mtime)."""
    try:
        info = (root / MANIFEST).stat()
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns


@dataclass(frozen=True)
class LoadFailure:
    """A newer commit the server could not load: why, how often, when it tries again.

    Example: ``backend.failure.message if backend.failure else "serving the newest commit"``.
    """

    #: The manifest's stamp when it failed (another commit is tried at once).
    stamp: tuple[int, int] | None
    message: str
    tries: int
    #: Seconds waited before the next try (doubled after each failure, up to RETRY_CAP).
    delay: float
    #: When (on the backend's clock) the next try is due.
    due: float


class Backend:
    """The inventory as the server sees it: queries, shows and vault lists, over one snapshot.

    :meth:`refresh` switches to a newer commit of a store-backed inventory;
    a request reads ``self.snapshot`` once, so it never sees two commits.
    ``retry`` is the first wait after a commit fails to load (then doubled
    up to :data:`RETRY_CAP`); ``clock`` tells the time those waits are on.

    Example: ``Backend(Inventory.open()).list_backups("p1", [("status", "error")])``.
    """

    def __init__(
        self,
        inventory: Inventory,
        *,
        log: Callable[[str], None] = _log,
        live: LiveRows | None = None,
        retry: float = WATCH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.snapshot = Snapshot.load(inventory, live)
        self._live = live
        self._log = log
        self._retry = retry
        self._clock = clock
        #: The newer commit that failed to load, while it does (``None``: none).
        self.failure: LoadFailure | None = None
        self._refreshing = threading.Lock()
        self._owned = False  # the first inventory is the caller's to close
        # A newer commit is read as the first inventory is: as of its instant, or as ever.
        self._view = (inventory.instant, inventory.everything)

    def list_backups(self, project: str, pairs: list[tuple[str, str]]) -> str:
        """The ListBackups response text; raises QueryError."""
        resident = self.snapshot.resident
        params = QueryParams(pairs).with_api_defaults()
        query = resident.inventory.parse(params, project=project)
        return resident.answer(query, RESPONSE_COLUMNS).to_json()

    def show_backup(self, backup_id: str) -> str:
        """The ShowBackup response text; raises NotFoundError."""
        found = self.snapshot.resident.record(backup_id)
        if found is None:
            raise NotFoundError("BackupService.6200", f"backup {backup_id} not found")
        return f'{{"backup":{found}}}'

    def list_vaults(self, project: str, pairs: list[tuple[str, str]]) -> str:
        """The ListVaults response text: the project's vaults, limit/offset honoured."""
        offset, limit = parse_paging(QueryParams(pairs))
        vaults = self.snapshot.vaults
        mine = vaults.filter(pl.col("project_id").is_null() | (pl.col("project_id") == project))
        page = mine[PAYLOAD].slice(min(offset, mine.height), limit).to_list()
        return f'{{"count":{mine.height},"vaults":[{",".join(page)}]}}'

    def show_vault(self, vault_id: str) -> str:
        """The ShowVault response text; raises NotFoundError."""
        found = self.snapshot.vaults.filter(pl.col("id") == vault_id)
        if found.height == 0:
            raise NotFoundError("BackupService.6105", f"vault {vault_id} not found")
        return f'{{"vault":{found[PAYLOAD][0]}}}'

    def close(self) -> None:
        """Let go of the commit this backend opened itself (on a reload), if any."""
        if self._owned:
            self.snapshot.resident.inventory.close()

    def refresh(self) -> bool:
        """Switch to the store's newest commit if an ingest made one; whether it did.

        The new commit is loaded while the old one keeps answering. A commit
        that cannot be loaded is logged once (the damaged file named, no
        traceback), and the old commit stays; it is tried again after
        ``retry`` seconds, then after twice as long each time, up to
        :data:`RETRY_CAP` (a newer commit is tried at once). Recovering is
        logged too.

        Example: ``backend.refresh()`` after ``cbrq ingest`` into the served store.
        """
        old = self.snapshot
        root = old.resident.inventory.root
        stamp = None if root is None else _stamp(root)
        if root is None or stamp == old.stamp:
            return False
        failure = self.failure
        if failure is not None and failure.stamp == stamp and self._clock() < failure.due:
            return False  # waiting out the backoff: one stat per look, no read
        with self._refreshing:
            if self.snapshot is not old or self.failure is not failure:
                return False
            started = time.perf_counter()
            # The stamp is read before the store is opened: a commit in between
            # changes the stamp again, and the next look loads that commit too.
            inventory = None
            try:
                inventory = _open(root, *self._view)
                if inventory.manifest.generation == old.generation:
                    inventory.close()
                    self.snapshot = dataclasses.replace(old, stamp=stamp)
                    self.failure = None
                    return False
                fresh = Snapshot.load(inventory, self._live, stamp=stamp)
            except CbrqError as err:
                if inventory is not None:
                    inventory.close()
                self._failed(stamp, str(err))
                return False
            self.snapshot = fresh
            self.failure = None
            if self._owned:
                old.resident.inventory.close()
            self._owned = True
        seconds = time.perf_counter() - started
        counts = fresh.resident.inventory.manifest.counts
        after = "" if failure is None else f"; it loads now, after {failure.tries} failed tries"
        self._log(
            f"cbrq: now serving generation {fresh.generation} of {root} "
            f"({counts.get('backups', 0):,} backups; was {old.generation}; "
            f"loaded in {seconds:.1f} s{after})"
        )
        return True

    def _failed(self, stamp: tuple[int, int] | None, message: str) -> None:
        """Note a failed load: log it if it is news, and put the next try off."""
        before = self.failure
        same = before is not None and before.message == message
        if before is not None and before.stamp == stamp:
            delay = min(before.delay * 2, RETRY_CAP)
        else:
            delay = self._retry  # a newer commit: its own backoff from the start
        tries = before.tries + 1 if before is not None else 1
        self.failure = LoadFailure(stamp, message, tries, delay, self._clock() + delay)
        if not same:
            # One line per distinct failure: a damaged file does not flood the log.
            self._log(
                f"cbrq: still serving generation {self.snapshot.generation}: the store's "
                f"new commit cannot be loaded: {message} (trying again in {delay:g} s, "
                f"then less often, up to every {RETRY_CAP:g} s)"
            )


def _handle(work: Callable[[Request], str]) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint running ``work`` off the event loop; a query's error is its API error.

    Example: ``Route("/v3/{project_id}/backups", _handle(lambda r: "{}"))``.
    """

    async def endpoint(request: Request) -> Response:
        try:
            text = await run_in_threadpool(work, request)
        except (QueryError, NotFoundError) as err:
            return _error(err.http_status, err.error_code, str(err))
        return Response(text, media_type=JSON)

    return endpoint


def _pairs(request: Request) -> list[tuple[str, str]]:
    """The query string as (key, value) pairs, repeated keys kept in order."""
    return list(request.query_params.multi_items())


def _routes(backend: Backend) -> list[Route]:
    """The four CBR read APIs, each answered by ``backend``.

    Example: ``Starlette(routes=_routes(backend))``.
    """
    return [
        Route(
            "/v3/{project_id}/backups",
            _handle(lambda r: backend.list_backups(r.path_params["project_id"], _pairs(r))),
        ),
        Route(
            "/v3/{project_id}/backups/{backup_id}",
            _handle(lambda r: backend.show_backup(r.path_params["backup_id"])),
        ),
        Route(
            "/v3/{project_id}/vaults",
            _handle(lambda r: backend.list_vaults(r.path_params["project_id"], _pairs(r))),
        ),
        Route(
            "/v3/{project_id}/vaults/{vault_id}",
            _handle(lambda r: backend.show_vault(r.path_params["vault_id"])),
        ),
    ]


async def _watch(backend: Backend, watch: float) -> None:
    """Look for a new commit every ``watch`` seconds until cancelled.

    A failed reload waits twice as long next time (up to ``RETRY_CAP``).
    Example: ``loop.create_task(_watch(backend, 2.0))``.
    """
    pause, shown = watch, ""
    while True:
        await asyncio.sleep(pause)
        try:
            await run_in_threadpool(backend.refresh)
            pause = watch
        except Exception:  # a bug in reloading must not stop the server
            text = traceback.format_exc().rstrip()
            if text != shown:  # the same bug again is not logged again
                _log("cbrq: reload failed:\n" + text)
            shown, pause = text, min(pause * 2, RETRY_CAP)


def _lifespan(
    backend: Backend, inventory: Inventory, watch: float | None
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """The app's lifespan: watch a store-backed inventory, close ``backend`` at the end.

    Example: ``Starlette(lifespan=_lifespan(backend, inventory, 2.0))``.
    """

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = None
        if watch is not None and inventory.root is not None:
            task = asyncio.get_running_loop().create_task(_watch(backend, watch))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
            backend.close()

    return lifespan


def create_app(
    inventory: Inventory,
    *,
    token: str | None = None,
    quiet: bool = False,
    watch: float | None = WATCH_SECONDS,
    live: LiveRows | None = None,
    body_timeout: float = BODY_TIMEOUT,
) -> ASGIApp:
    """The ASGI application serving ``inventory``.

    ``watch``: seconds between looks for a new commit of a store-backed
    inventory (``None``: never look); a commit that fails to load is tried
    again after as long, then less often. Log lines go to stderr unless
    ``quiet`` (a reload, a failed load and a 500 are logged always).
    ``live``: see :meth:`Snapshot.load`. ``body_timeout``: seconds a client
    has to send the body its head announces (else 408, connection closed).
    Raises :class:`StoreError` when the inventory cannot be loaded.

    Example::

        uvicorn.run(create_app(Inventory.open("cbrq-store"), token="t"), port=8080)
    """
    backend = Backend(inventory, live=live, retry=watch or WATCH_SECONDS)
    app = Starlette(
        routes=_routes(backend),
        exception_handlers={HTTPException: _http_error, Exception: _http_error},
        lifespan=_lifespan(backend, inventory, watch),
    )
    app.router.redirect_slashes = False
    app.state.backend = backend
    return _Frame(app, token=token, quiet=quiet, body_timeout=body_timeout)
