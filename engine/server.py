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
(with the traceback of a 500). Malformed HTTP, oversized headers and clients
that do not finish their headers in time get a JSON error and a closed
connection.

The inventory is held in memory (:class:`~engine.resident.Resident`: every
record; 2.9 GB for the 1M benchmark store, whose payloads alone take 1.4 GB;
worker processes share one mapped copy): a page is a walk along a
precomputed order and a gather of rows, never a disk read. A store-backed server looks at the
store's manifest every few seconds and, when an ingest has committed, loads
the new commit beside the old one and switches to it between requests
(saying so in its log); answers never mix two commits.

Example::

    app = create_app(Inventory.open("cbrq-store"))
    serve(app, "127.0.0.1", 8080)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import hmac
import json
import os
import shutil
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

from engine.compile import RID
from engine.errors import CbrqError, NotFoundError, QueryError
from engine.inventory import Inventory
from engine.manifest import MANIFEST, PAYLOAD
from engine.params import QueryParams, parse_paging
from engine.payload import canonical_payloads
from engine.resident import Resident

MAX_QUERY_LENGTH: Final[int] = 8192
#: Largest request head (request line and headers) accepted.
MAX_HEADER_BYTES: Final[int] = 16 * 1024
#: Seconds a client has to send a complete request head.
HEADER_TIMEOUT: Final[float] = 10.0
#: Seconds between looks at the store's manifest for a new commit.
WATCH_SECONDS: Final[float] = 2.0
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
        vaults = inventory.raw("vaults").select("id", "project_id", PAYLOAD).collect()
        vaults = vaults.with_columns(canonical_payloads(vaults[PAYLOAD]))
        generation = inventory.manifest.generation
        rows = None if live is None else live(inventory)
        return cls(Resident.build(inventory, rows), vaults, generation, stamp)


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
                # Streamed from Parquet to the file: the writer never holds every record.
                inventory.live(numbered).drop(RID).sink_ipc(staged, compression="uncompressed")
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


class Backend:
    """The inventory as the server sees it: queries, shows and vault lists, over one snapshot.

    :meth:`refresh` switches to a newer commit of a store-backed inventory;
    a request reads ``self.snapshot`` once, so it never sees two commits.

    Example: ``Backend(Inventory.open()).list_backups("p1", [("status", "error")])``.
    """

    def __init__(
        self,
        inventory: Inventory,
        *,
        log: Callable[[str], None] = _log,
        live: LiveRows | None = None,
    ) -> None:
        self.snapshot = Snapshot.load(inventory, live)
        self._live = live
        self._log = log
        self._refreshing = threading.Lock()
        self._owned = False  # the first inventory is the caller's to close

    def list_backups(self, project: str, pairs: list[tuple[str, str]]) -> str:
        """The ListBackups response text; raises QueryError."""
        resident = self.snapshot.resident
        params = QueryParams(pairs).with_api_defaults()
        query = resident.inventory.parse(params, project=project)
        return resident.run(query, RESPONSE_COLUMNS).to_json()

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

        The new commit is loaded while the old one keeps answering; a store
        that cannot be read is logged and the old commit stays.

        Example: ``backend.refresh()`` after ``cbrq ingest`` into the served store.
        """
        old = self.snapshot
        root = old.resident.inventory.root
        stamp = None if root is None else _stamp(root)
        if root is None or stamp == old.stamp:
            return False
        with self._refreshing:
            if self.snapshot is not old:
                return False
            started = time.perf_counter()
            # The stamp is read before the store is opened: a commit in between
            # changes the stamp again, and the next look loads that commit too.
            inventory = None
            try:
                inventory = Inventory.open(root)
                if inventory.manifest.generation == old.generation:
                    inventory.close()
                    self.snapshot = dataclasses.replace(old, stamp=stamp)
                    return False
                fresh = Snapshot.load(inventory, self._live, stamp=stamp)
            except (CbrqError, OSError) as err:
                if inventory is not None:
                    inventory.close()
                self._log(f"cbrq: kept generation {old.generation}: cannot load the new one: {err}")
                return False
            self.snapshot = fresh
            if self._owned:
                old.resident.inventory.close()
            self._owned = True
        seconds = time.perf_counter() - started
        counts = fresh.resident.inventory.manifest.counts
        self._log(
            f"cbrq: now serving generation {fresh.generation} of {root} "
            f"({counts.get('backups', 0):,} backups; was {old.generation}; "
            f"loaded in {seconds:.1f} s)"
        )
        return True


def create_app(
    inventory: Inventory,
    *,
    token: str | None = None,
    quiet: bool = False,
    watch: float | None = WATCH_SECONDS,
    live: LiveRows | None = None,
) -> ASGIApp:
    """The ASGI application serving ``inventory``.

    ``watch``: seconds between looks for a new commit of a store-backed
    inventory (``None``: never look). Log lines go to stderr unless ``quiet``
    (a reload and a 500 are logged always). ``live``: see :meth:`Snapshot.load`.

    Example::

        uvicorn.run(create_app(Inventory.open("cbrq-store"), token="t"), port=8080)
    """
    backend = Backend(inventory, live=live)

    def handle(work: Callable[[Request], str]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                text = await run_in_threadpool(work, request)
            except (QueryError, NotFoundError) as err:
                return _error(err.http_status, err.error_code, str(err))
            return Response(text, media_type=JSON)

        return endpoint

    def pairs(request: Request) -> list[tuple[str, str]]:
        return list(request.query_params.multi_items())

    routes = [
        Route(
            "/v3/{project_id}/backups",
            handle(lambda r: backend.list_backups(r.path_params["project_id"], pairs(r))),
        ),
        Route(
            "/v3/{project_id}/backups/{backup_id}",
            handle(lambda r: backend.show_backup(r.path_params["backup_id"])),
        ),
        Route(
            "/v3/{project_id}/vaults",
            handle(lambda r: backend.list_vaults(r.path_params["project_id"], pairs(r))),
        ),
        Route(
            "/v3/{project_id}/vaults/{vault_id}",
            handle(lambda r: backend.show_vault(r.path_params["vault_id"])),
        ),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 404:
            return _error(404, *NO_SUCH_API)
        if status == 405:
            return _error(405, "APIGW.0102", f"method {request.method} is not allowed here")
        return _error(status, "BackupService.9999", "internal error")

    async def watcher() -> None:
        assert watch is not None
        while True:
            await asyncio.sleep(watch)
            try:
                await run_in_threadpool(backend.refresh)
            except Exception:  # a bug in reloading must not stop the server
                _log("cbrq: reload failed:\n" + traceback.format_exc().rstrip())

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = None
        if watch is not None and inventory.root is not None:
            task = asyncio.get_running_loop().create_task(watcher())
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
            backend.close()

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: http_error},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.backend = backend
    return _Frame(app, token=token, quiet=quiet)


class _Frame:
    """What every request passes through: request id, log line, limits, token, 500s.

    A plain ASGI wrapper (not Starlette's BaseHTTPMiddleware), outside the
    application's own error handling, so that even an exception that escapes
    it is answered in JSON with an ``X-Request-Id`` and logged with its
    traceback under that id.
    """

    def __init__(self, app: Starlette, *, token: str | None, quiet: bool) -> None:
        self.app = app
        self.state = app.state
        self.token = None if token is None else token.encode()
        self.quiet = quiet

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
            refused = self._refuse(scope, query)
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


def serve_workers(
    store: Path, host: str, port: int, workers: int, *, token: str | None, quiet: bool
) -> None:
    """Serve ``store`` from ``workers`` processes sharing one mapped copy of its records.

    Python runs one request at a time per process; several processes answer
    in parallel on several cores. The records are written once per commit
    as an uncompressed Arrow file in a temporary folder (removed on exit)
    that every worker maps (:func:`shared_rows`); each worker keeps only its
    own orders, codes and masks. Each worker follows new commits by itself.

    Example: ``serve_workers(Path("cbrq-store"), "127.0.0.1", 8080, 2, token=None, quiet=True)``.
    """
    folder = Path(tempfile.mkdtemp(prefix="cbrq-serve-"))
    try:
        with Inventory.open(store) as inventory:
            shared_rows(folder)(inventory)  # written once, before the workers map it
        spec = {"store": str(store), "folder": str(folder), "token": token, "quiet": quiet}
        os.environ[WORKER_ENV] = json.dumps(spec)
        uvicorn.run(
            "engine.server:worker_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            **_uvicorn_settings(),
        )
    finally:
        os.environ.pop(WORKER_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)


def worker_app() -> ASGIApp:
    """The application of one worker process of :func:`serve_workers` (set up by its environment).

    Example: ``uvicorn.run("engine.server:worker_app", factory=True, workers=2)``.
    """
    spec = json.loads(os.environ[WORKER_ENV])
    inventory = Inventory.open(spec["store"])
    live = shared_rows(Path(spec["folder"]))
    return create_app(inventory, token=spec["token"], quiet=spec["quiet"], live=live)


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
