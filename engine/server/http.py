"""Phase: HTTP, the protocol side: framing, limits, timeouts and JSON errors, under the app.

A trailing slash names the same resource. Requests signed by the official
SDK (AK/SK headers) are accepted without checking the signature, and so are
``X-Auth-Token`` requests; with a token configured, ``X-Auth-Token`` must
equal it (compared in constant time; 401 otherwise). Every response is JSON
and carries ``X-Request-Id``, which the log line of the request repeats
(with the traceback of a 500). Malformed HTTP, oversized headers, clients
that do not finish their headers in time and clients that do not send the
body they announce in time get a JSON error and a closed connection. Errors
outside a query carry the API gateway's codes (:data:`NO_SUCH_API`,
:data:`BAD_TOKEN`, :data:`BAD_REQUEST`).

This module knows nothing of the inventory: :mod:`engine.server.app` builds
the application that :class:`_Frame` wraps and :func:`serve` runs.

Example::

    serve(create_app(Inventory.open("cbrq-store")), "127.0.0.1", 8080)
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import sys
import time
import traceback
import uuid
from typing import Any, Final

import h11
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_QUERY_LENGTH: Final[int] = 8192
#: Largest request head (request line and headers) accepted.
MAX_HEADER_BYTES: Final[int] = 16 * 1024
#: Seconds a client has to send a complete request head.
HEADER_TIMEOUT: Final[float] = 10.0
#: Seconds a client has, once its request head is in, to send the whole body it announced.
BODY_TIMEOUT: Final[float] = 5.0
JSON: Final[str] = "application/json"
TOKEN_ENV: Final[str] = "CBRQ_TOKEN"
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


async def _http_error(request: Request, exc: Exception) -> Response:
    """The CBR-shaped body of a failure outside a query: 404, 405, or a 500."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return _error(404, *NO_SUCH_API)
    if status == 405:
        return _error(405, "APIGW.0102", f"method {request.method} is not allowed here")
    return _error(status, "BackupService.9999", "internal error")


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
