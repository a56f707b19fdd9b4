"""Phase: HTTP. A local CBR endpoint serving an inventory with the full SPEC semantics.

Routes (SPEC §3 and §4)::

    GET /v3/{project_id}/backups               ListBackups (every parameter, limit default 1000)
    GET /v3/{project_id}/backups/{backup_id}   ShowBackup   (unknown: 404 BackupService.6200)
    GET /v3/{project_id}/vaults                ListVaults   (the project's vaults; limit/offset)
    GET /v3/{project_id}/vaults/{vault_id}     ShowVault    (unknown: 404 BackupService.6105)

A trailing slash names the same resource. Requests signed by the official
SDK (AK/SK headers) are accepted without checking the signature, and so are
``X-Auth-Token`` requests; with a token configured, ``X-Auth-Token`` must
equal it (compared in constant time; 401 otherwise). Every response is JSON
and carries ``X-Request-Id``, which the log line of the request repeats
(with the traceback of a 500). Malformed HTTP, oversized headers, clients
that do not finish their headers in time and clients that do not send the
body they announce in time get a JSON error and a closed connection.

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

    app = create_app(Inventory.open("cbrq-store"))
    serve(app, "127.0.0.1", 8080)
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import dataclasses
import fcntl
import hmac
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import h11
import polars as pl
import pyarrow as pa
import pyarrow.ipc as pa_ipc
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from engine.backends.base import RID
from engine.backends.resident import Resident
from engine.errors import CbrqError, NotFoundError, QueryError, StoreError
from engine.inventory import Inventory
from engine.params import QueryParams, parse_paging
from engine.payload import canonical_payloads
from engine.store.integrity import locate
from engine.store.manifest import MANIFEST, PAYLOAD, Manifest, check_hint, damaged

MAX_QUERY_LENGTH: Final[int] = 8192
#: Largest request head (request line and headers) accepted.
MAX_HEADER_BYTES: Final[int] = 16 * 1024
#: Seconds a client has to send a complete request head.
HEADER_TIMEOUT: Final[float] = 10.0
#: Seconds a client has, once its request head is in, to send the whole body it announced.
BODY_TIMEOUT: Final[float] = 5.0
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
#: The exit status of a worker that could not load its commit (uvicorn's own for a
#: failed start: a supervisor that knows it stops instead of starting it again).
WORKER_FAILED: Final[int] = 3
#: Seconds between a worker's looks at whether the serve process that started it is alive.
PARENT_POLL: Final[float] = 1.0
#: All that a ListBackups response needs of each record.
RESPONSE_COLUMNS: Final[tuple[str, ...]] = ("id", PAYLOAD)
JSON: Final[str] = "application/json"
TOKEN_ENV: Final[str] = "CBRQ_TOKEN"
#: How serve_workers tells its worker processes what to serve.
WORKER_ENV: Final[str] = "CBRQ_SERVE_WORKER"
#: What Huawei Cloud's API gateway answers for a path it does not know.
NO_SUCH_API: Final[tuple[str, str]] = (
    "APIGW.0101",
    "The API does not exist or has not been published",
)
BAD_TOKEN: Final[tuple[str, str]] = ("APIGW.0301", "Incorrect IAM authentication information")
#: The gateway's code for a request it cannot read.
BAD_REQUEST: Final[str] = "APIGW.0201"


def _body(code: str, message: str) -> bytes:
    return json.dumps({"error_code": code, "error_msg": message}).encode()


def _error(status: int, code: str, message: str) -> Response:
    return Response(_body(code, message), status_code=status, media_type=JSON)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


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


def _open(root: Path) -> Inventory:
    """``Inventory.open(root)``, every failure a cbrq error naming what could not be read."""
    try:
        return Inventory.open(root)
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
        store (:func:`shared_rows`, for worker processes); ``stamp`` is the
        manifest's as read before ``inventory`` was opened (``None``: unknown,
        so the first look at the store opens it to compare generations).
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
                inventory = _open(root)
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


async def _http_error(request: Request, exc: Exception) -> Response:
    """The CBR-shaped body of a failure outside a query: 404, 405, or a 500."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return _error(404, *NO_SUCH_API)
    if status == 405:
        return _error(405, "APIGW.0102", f"method {request.method} is not allowed here")
    return _error(status, "BackupService.9999", "internal error")


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


class _Frame:
    """What every request passes through: request id, log line, limits, token, 500s.

    A plain ASGI wrapper (not Starlette's BaseHTTPMiddleware), outside the
    application's own error handling, so that even an exception that escapes
    it is answered in JSON with an ``X-Request-Id`` and logged with its
    traceback under that id.
    """

    def __init__(
        self, app: Starlette, *, token: str | None, quiet: bool, body_timeout: float
    ) -> None:
        self.app = app
        self.state = app.state
        self.token = None if token is None else token.encode()
        self.quiet = quiet
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        started = time.perf_counter()
        status = 0

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        path = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/"}
        query = scope.get("query_string", b"")
        try:
            refused = None
            if _announces_body(scope):
                # Read (and drop: no route takes a body) before any answer, within a
                # bound: a client that drips its body or never sends it holds no
                # connection (after an answer, each piece it sends would keep it open).
                given, refused = await self._body(receive)
                if given is None:
                    return  # the client went away: no one to answer
                receive = given
            refused = refused or self._refuse(scope, query)
            if refused is not None:
                await refused(scope, receive, tagged)
            else:
                await self.app(scope, receive, tagged)
        except Exception:
            _log(f"cbrq: 500 on request {request_id}:\n" + traceback.format_exc().rstrip())
            if status == 0:
                await _error(500, "BackupService.9999", "internal error")(scope, receive, tagged)
        finally:
            if not self.quiet or status >= 500:
                ms = (time.perf_counter() - started) * 1000
                target = path + ("?" + query.decode("latin-1") if query else "")
                _log(f"{scope['method']} {target[:2048]} {status} {ms:.1f} ms {request_id}")

    async def _body(self, receive: Receive) -> tuple[Receive | None, Response | None]:
        """Wait for the request body (at most ``body_timeout`` s in all) and drop it.

        Gives what the application receives instead (an empty body), and the
        408 to answer when the body did not come in time; ``None`` for a
        client that went away meanwhile.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except TimeoutError:
                text = f"request body not complete within {self.body_timeout:g} s"
                late = _error(408, BAD_REQUEST, text)
                late.headers["connection"] = "close"
                return receive, late
            if message["type"] == "http.disconnect":
                return None, None
            if not message.get("more_body", False):
                break
        given = False

        async def replay() -> Message:
            nonlocal given
            if given:
                return await receive()
            given = True
            return {"type": "http.request", "body": b"", "more_body": False}

        return replay, None

    def _refuse(self, scope: Scope, query: bytes) -> Response | None:
        """The error answer for a request refused before routing, or ``None``."""
        if len(query) > MAX_QUERY_LENGTH:
            return _error(414, "BackupService.9900", f"query longer than {MAX_QUERY_LENGTH}")
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if sum(len(k) + len(v) + 4 for k, v in headers) > MAX_HEADER_BYTES:
            return _error(431, BAD_REQUEST, f"request headers larger than {MAX_HEADER_BYTES} bytes")
        if self.token is not None:
            given = next((v for k, v in headers if k == b"x-auth-token"), b"")
            if not hmac.compare_digest(given, self.token):
                return _error(401, *BAD_TOKEN)
        return None


def _announces_body(scope: Scope) -> bool:
    """Whether the request head says a body follows (a length above 0, or chunks)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip(b"0 ")):
            return True
    return False


class _Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, answering malformed requests in JSON and timing out heads.

    A client that has not sent a complete request head ``HEADER_TIMEOUT``
    seconds after connecting (or after starting its next request) gets a
    408 and a closed connection; malformed HTTP gets the API's JSON error
    instead of uvicorn's plain text.
    """

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._stop_head_timer()  # uvicorn's keep-alive timeout covers the idle wait

    def _watch_head(self) -> None:
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        idle = self.timeout_keep_alive_task is not None
        if waiting and not idle:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(HEADER_TIMEOUT, self._head_timeout)
        else:
            self._stop_head_timer()

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            message = f"no complete request head within {HEADER_TIMEOUT:g} s"
            self._answer_and_close(408, "Request Timeout", _body(BAD_REQUEST, message))

    def send_400_response(self, msg: str) -> None:
        self._answer_and_close(
            400, "Bad Request", _body(BAD_REQUEST, f"malformed HTTP request: {msg}")
        )

    def _answer_and_close(self, status: int, reason: str, body: bytes) -> None:
        head = (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: {JSON}\r\n"
            f"content-length: {len(body)}\r\nx-request-id: {uuid.uuid4().hex}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()


def config(
    app: Any, *, host: str = "127.0.0.1", port: int = 8080, **options: Any
) -> uvicorn.Config:
    """uvicorn's configuration for ``app``: cbrq's protocol, header limits, no access log.

    Example: ``uvicorn.Server(config(create_app(inv), port=0)).run()``.
    """
    return uvicorn.Config(app, host=host, port=port, **_uvicorn_settings(), **options)


def _uvicorn_settings() -> dict[str, Any]:
    """What every cbrq server tells uvicorn, in one process or several."""
    return {
        "http": _Protocol,
        "log_level": "warning",
        "access_log": False,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
    }


def serve(app: Any, host: str, port: int) -> None:
    """Run ``app`` with uvicorn until interrupted (bounded header and request sizes).

    Example: ``serve(create_app(Inventory.open()), "127.0.0.1", 8080)``.
    """
    uvicorn.Server(config(app, host=host, port=port)).run()


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
    store: Path, host: str, port: int, workers: int, *, token: str | None, quiet: bool
) -> None:
    """Serve ``store`` from ``workers`` processes sharing one mapped copy of its records.

    Python runs one request at a time per process; several processes answer
    in parallel on several cores. The records are written once per commit
    as an uncompressed Arrow file in a temporary folder (:class:`SharedFolder`,
    removed by the last process to go, even when this one is killed) that
    every worker maps (:func:`shared_rows`); each worker keeps only its own
    orders, codes and masks. Each worker follows new commits by itself, and
    stops when this process dies.

    Raises :class:`StoreError` (naming the damaged file) when the store's
    commit cannot be loaded here or by a worker at its start: the workers
    are stopped and the port let go of, rather than started again and again.

    Example: ``serve_workers(Path("cbrq-store"), "127.0.0.1", 8080, 2, token=None, quiet=True)``.
    """
    SharedFolder.sweep()
    shared = SharedFolder.create()
    try:
        with _open(store) as inventory:
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
        }
        os.environ[WORKER_ENV] = json.dumps(spec)
        uvicorn.run(
            "engine.server.app:worker_app",
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

    Example: ``uvicorn.run("engine.server.app:worker_app", factory=True, workers=2)``.
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
        inventory = _open(Path(spec["store"]))
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


def read_token(token: str | None, token_file: str | None) -> str | None:
    """The token to require: ``--token``, else the first line of ``--token-file``, else $CBRQ_TOKEN.

    Example: ``read_token(None, "/run/secrets/cbrq-token")``.
    """
    if token:
        return token
    if token_file:
        with open(token_file, encoding="utf-8") as handle:
            text = handle.readline().strip()
        if not text:
            raise ValueError(f"{token_file}: the token file is empty")
        return text
    return os.environ.get(TOKEN_ENV) or None
