"""`cbrq serve` under hostile and changing conditions (issue 12, items 2, 3 and 6)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import engine.server.app
import engine.server.http
from engine.cli import main
from engine.inventory import Inventory
from engine.server.http import TOKEN_ENV, read_token
from tests.conftest import SAMPLE
from tests.records import backup, page
from tests.server_fixture import get, running, running_asgi

P1 = "p1"


def raw(url: str, data: bytes, wait: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection; everything the server answers until it closes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def answer(response: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, json.loads(body)


@pytest.fixture(scope="module")
def endpoint() -> Any:
    with running(Inventory.from_dumps(str(SAMPLE / "dumps"))) as url:
        yield url


def test_huge_integers_are_400_over_http(endpoint: str) -> None:
    for query in (
        "offset=9223372036854775808&limit=1",
        "limit=" + "9" * 5000,
        "used_percent=" + "9" * 5000,
    ):
        status, headers, body = get(f"{endpoint}/v3/{P1}/backups?{query}")
        assert status == 400 and body["error_code"] == "BackupService.9900", query
        assert "x-request-id" in {k.lower() for k in headers}
    status, _, body = get(f"{endpoint}/v3/{P1}/vaults?offset=99999999999999999999999")
    assert status == 400 and "offset" in body["error_msg"]
    status, _, body = get(f"{endpoint}/v3/{P1}/vaults?limit=2&offset=1")
    assert status == 200 and len(body["vaults"]) <= 2


def test_malformed_http_gets_the_json_error(endpoint: str) -> None:
    for request in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nno colon here\r\n\r\n"):
        status, headers, body = answer(raw(endpoint, request))
        assert status == 400 and headers["content-type"] == "application/json"
        assert body["error_code"] == "APIGW.0201" and "x-request-id" in headers


def test_oversized_header_is_refused(endpoint: str) -> None:
    big = b"x" * 100_000
    request = (
        b"GET /v3/p1/backups HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Big: "
        + big
        + b"\r\n\r\n"
    )
    status, _, body = answer(raw(endpoint, request))
    assert status in (400, 431) and body["error_code"] == "APIGW.0201"


def test_slow_head_is_timed_out(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    monkeypatch.setattr(engine.server.http, "HEADER_TIMEOUT", 0.3)
    # Only the server's own timer answers an unfinished head (408, then it closes).
    status, _, body = answer(raw(endpoint, b"GET /v3/p1/backups HTTP/1.1\r\nHost: a\r\n"))
    assert status == 408 and body["error_code"] == "APIGW.0201"


def test_trailing_slash_is_the_same_resource(endpoint: str) -> None:
    plain = get(f"{endpoint}/v3/{P1}/backups?limit=3")
    slash = get(f"{endpoint}/v3/{P1}/backups/?limit=3")
    assert slash[0] == plain[0] == 200 and slash[2] == plain[2]
    assert get(f"{endpoint}/v3/{P1}/vaults/")[0] == 200


def test_a_500_has_a_request_id_and_a_log_line(capfd: pytest.CaptureFixture[str]) -> None:
    inventory = Inventory.from_dumps(str(SAMPLE / "dumps"))
    app = engine.server.app.create_app(inventory, quiet=True)

    def broken(*_: object) -> str:
        raise RuntimeError("boom")

    app.state.backend.list_backups = broken  # type: ignore[attr-defined]
    with running_asgi(app) as url:
        status, headers, body = get(f"{url}/v3/{P1}/backups?limit=1")
    assert status == 500 and body["error_code"] == "BackupService.9999"
    request_id = {k.lower(): v for k, v in headers.items()}["x-request-id"]
    log = capfd.readouterr().err
    assert f"500 on request {request_id}" in log and "RuntimeError: boom" in log
    assert f"/v3/{P1}/backups?limit=1 500" in log


def test_log_line_names_the_query(capfd: pytest.CaptureFixture[str]) -> None:
    with running(Inventory.from_dumps(str(SAMPLE / "dumps")), quiet=False) as url:
        get(f"{url}/v3/{P1}/backups?status=nope&limit=1")
    assert f"GET /v3/{P1}/backups?status=nope&limit=1 400" in capfd.readouterr().err


def test_token_from_file_or_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    assert read_token(None, str(secret)) == "s3cret"
    assert read_token("given", str(secret)) == "given"
    assert read_token(None, None) is None
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert read_token(None, None) == "from-env"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        read_token(None, str(tmp_path / "empty"))
    with running(Inventory.from_dumps(str(SAMPLE / "dumps")), token=read_token(None, None)) as url:
        assert get(f"{url}/v3/{P1}/backups?limit=1")[0] == 401
        assert get(f"{url}/v3/{P1}/backups?limit=1", {"X-Auth-Token": "from-env-"})[0] == 401
        assert get(f"{url}/v3/{P1}/backups?limit=1", {"X-Auth-Token": "from-env"})[0] == 200


def test_server_picks_up_a_new_commit(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    first = tmp_path / "first.json"
    first.write_text(page(backup("a"), backup("b")))
    assert CliRunner().invoke(main, ["ingest", str(first), "--store", str(store)]).exit_code == 0
    with Inventory.open(store) as inventory, running(inventory, watch=0.1) as url:
        assert get(f"{url}/v3/{P1}/backups")[2]["count"] == 2
        second = tmp_path / "second.json"
        second.write_text(page(backup("c"), backup("a", updated_at="2030-01-01T00:00:00Z")))
        assert (
            CliRunner().invoke(main, ["ingest", str(second), "--store", str(store)]).exit_code == 0
        )
        deadline = time.monotonic() + 30
        while get(f"{url}/v3/{P1}/backups")[2]["count"] != 3:
            assert time.monotonic() < deadline, "the server never saw the new commit"
            time.sleep(0.1)
        assert get(f"{url}/v3/{P1}/backups/c")[2]["backup"]["id"] == "c"
        shown = get(f"{url}/v3/{P1}/backups/a")[2]["backup"]
        assert shown["updated_at"] == "2030-01-01T00:00:00.000000"
        # A compaction removes the first commit's files: the server reads none of them.
        assert CliRunner().invoke(main, ["compact", "--store", str(store)]).exit_code == 0
        time.sleep(0.5)
        assert get(f"{url}/v3/{P1}/backups/b")[0] == 200
    assert "now serving generation" in capfd.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_workers_share_records_and_follow_new_commits(tmp_path: Path) -> None:
    store = tmp_path / "store"
    dump = tmp_path / "a.json"
    dump.write_text(page(backup("a"), backup("b")))
    assert CliRunner().invoke(main, ["ingest", str(dump), "--store", str(store)]).exit_code == 0
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    port = _free_port()
    command = [sys.executable, "-m", "engine.cli", "serve", "--store", str(store)]
    log_path = tmp_path / "serve.log"
    log_file = log_path.open("w")
    server = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "2", "-q"],
        stderr=log_file,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch), "CBRQ_TOKEN": "t"},
    )
    url = f"http://127.0.0.1:{port}/v3/{P1}/backups"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(url, {"X-Auth-Token": "t"})[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "no server"
            time.sleep(0.2)
        assert get(url)[0] == 401  # the token reached the workers
        assert list(scratch.glob("cbrq-serve-*/g*.arrow"))  # the shared records
        dump.write_text(page(backup("c")))
        assert CliRunner().invoke(main, ["ingest", str(dump), "--store", str(store)]).exit_code == 0
        deadline = time.monotonic() + 60
        while [get(url, {"X-Auth-Token": "t"})[2]["count"] for _ in range(8)] != [3] * 8:
            assert time.monotonic() < deadline, "the workers never saw the new commit"
            time.sleep(0.2)
        # Eight answers may all come from one worker: wait for the other's word too.
        while log_path.read_text().count("now serving generation") < 2:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=60)
        log_file.close()
    assert log_path.read_text().count("now serving generation") == 2, log_path.read_text()
    assert list(scratch.iterdir()) == []  # the shared folder went with the server


def test_workers_need_a_store() -> None:
    result = CliRunner().invoke(main, ["serve", "--from", str(SAMPLE / "dumps"), "--workers", "2"])
    assert result.exit_code == 2 and "--workers needs a store" in result.output
