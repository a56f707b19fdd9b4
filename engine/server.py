"""Phase: HTTP. A local CBR endpoint serving an inventory with the full SPEC semantics.

Routes (SPEC §3 and §4)::

    GET /v3/{project_id}/backups               ListBackups (every parameter, limit default 1000)
    GET /v3/{project_id}/backups/{backup_id}   ShowBackup   (unknown: 404 BackupService.6200)
    GET /v3/{project_id}/vaults                ListVaults   (the project's vaults; limit/offset)
    GET /v3/{project_id}/vaults/{vault_id}     ShowVault    (unknown: 404 BackupService.6105)

Requests signed by the official SDK (AK/SK headers) are accepted without
checking the signature, and so are ``X-Auth-Token`` requests; with a token
configured, ``X-Auth-Token`` must equal it (401 otherwise). Every response is
JSON and carries ``X-Request-Id``. The inventory is read once, at start, into
memory (about 1.3 GB per million backups): a page is a gather of rows, never
a disk read.

Example::

    app = create_app(Inventory.open("cbrq-store"))
    uvicorn.run(app, host="127.0.0.1", port=8080)
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Final

import polars as pl
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.errors import NotFoundError, QueryError
from engine.inventory import Inventory
from engine.manifest import PAYLOAD
from engine.params import QueryParams, parse_paging
from engine.payload import canonical_payloads

MAX_QUERY_LENGTH: Final[int] = 8192
#: All that a ListBackups response needs of each record.
RESPONSE_COLUMNS: Final[tuple[str, ...]] = ("id", PAYLOAD)
JSON: Final[str] = "application/json"
#: What Huawei Cloud's API gateway answers for a path it does not know.
NO_SUCH_API: Final[tuple[str, str]] = (
    "APIGW.0101",
    "The API does not exist or has not been published",
)
BAD_TOKEN: Final[tuple[str, str]] = ("APIGW.0301", "Incorrect IAM authentication information")


def _error(status: int, code: str, message: str) -> Response:
    body = json.dumps({"error_code": code, "error_msg": message})
    return Response(body, status_code=status, media_type=JSON)


class Backend:
    """The inventory as the server sees it: queries, shows and vault lists.

    Example: ``Backend(Inventory.open()).list_backups("p1", [("status", "error")])``.
    """

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory.in_memory(records=True)
        vaults = inventory.raw("vaults").select("id", "project_id", PAYLOAD).collect()
        self.vaults = vaults.with_columns(canonical_payloads(vaults[PAYLOAD]))

    def list_backups(self, project: str, pairs: list[tuple[str, str]]) -> str:
        """The ListBackups response text; raises QueryError."""
        params = QueryParams(pairs).with_api_defaults()
        return self.inventory.query(params, project=project, columns=RESPONSE_COLUMNS).to_json()

    def show_backup(self, backup_id: str) -> str:
        """The ShowBackup response text; raises NotFoundError."""
        found = self.inventory.record(backup_id)
        if found is None:
            raise NotFoundError("BackupService.6200", f"backup {backup_id} not found")
        return f'{{"backup":{found}}}'

    def list_vaults(self, project: str, pairs: list[tuple[str, str]]) -> str:
        """The ListVaults response text: the project's vaults, limit/offset honoured."""
        offset, limit = parse_paging(QueryParams(pairs))
        mine = self.vaults.filter(
            pl.col("project_id").is_null() | (pl.col("project_id") == project)
        )
        page = mine[PAYLOAD].slice(min(offset, mine.height), limit).to_list()
        return f'{{"count":{mine.height},"vaults":[{",".join(page)}]}}'

    def show_vault(self, vault_id: str) -> str:
        """The ShowVault response text; raises NotFoundError."""
        found = self.vaults.filter(pl.col("id") == vault_id)
        if found.height == 0:
            raise NotFoundError("BackupService.6105", f"vault {vault_id} not found")
        return f'{{"vault":{found[PAYLOAD][0]}}}'


def create_app(inventory: Inventory, *, token: str | None = None, quiet: bool = False) -> Starlette:
    """The ASGI application serving ``inventory``.

    Example::

        uvicorn.run(create_app(Inventory.open("cbrq-store"), token="t"), port=8080)
    """
    backend = Backend(inventory)

    def handle(work: Callable[[Request], str]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            from starlette.concurrency import run_in_threadpool

            try:
                text = await run_in_threadpool(work, request)
            except QueryError as err:
                return _error(err.http_status, err.error_code, str(err))
            except NotFoundError as err:
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

    async def frame(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        if len(request.url.query) > MAX_QUERY_LENGTH:
            response = _error(414, "BackupService.9900", f"query longer than {MAX_QUERY_LENGTH}")
        elif token is not None and request.headers.get("x-auth-token") != token:
            response = _error(401, *BAD_TOKEN)
        else:
            response = await call_next(request)
        response.headers["X-Request-Id"] = uuid.uuid4().hex
        if not quiet:
            ms = (time.perf_counter() - started) * 1000
            line = f"{request.method} {request.url.path} {response.status_code} {ms:.1f} ms"
            print(line, file=sys.stderr, flush=True)
        return response

    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: http_error},
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=frame)],
    )


def serve(app: Starlette, host: str, port: int) -> None:
    """Run ``app`` with uvicorn until interrupted (bounded header and request sizes).

    Example: ``serve(create_app(Inventory.open()), "127.0.0.1", 8080)``.
    """
    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        h11_max_incomplete_event_size=16 * 1024,
    )
