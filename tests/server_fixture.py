"""Run `cbrq serve`'s application on a free loopback port inside a test, and stop it."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from engine.inventory import Inventory
from engine.server.app import create_app
from engine.server.http import config


@contextmanager
def running(
    inventory: Inventory, token: str | None = None, watch: float | None = None, quiet: bool = True
) -> Iterator[str]:
    """Yield the base URL of a live server on 127.0.0.1; shut it down afterwards."""
    with running_asgi(create_app(inventory, token=token, quiet=quiet, watch=watch)) as url:
        yield url


@contextmanager
def running_asgi(app: Any) -> Iterator[str]:
    """Serve an ASGI app made by ``create_app`` as ``cbrq serve`` would; yield its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """GET ``url``: status, headers and the JSON body, for errors too."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())
