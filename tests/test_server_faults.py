"""`cbrq serve` fails loudly and cleans up (issue 20, item 4).

Damaged store files at start and on a reload, a serve process killed with
SIGKILL under its workers, and clients that never send the body they
announce. Real processes, real sockets on 127.0.0.1, bounded waits; every
process a test starts is killed by it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import engine.server.http
from engine.cli import main
from engine.inventory import Inventory
from engine.server.app import RETRY_CAP, Backend, create_app
from engine.server.workers import SharedFolder
from engine.store.manifest import read_manifest
from tests.conftest import SAMPLE
from tests.server_fixture import get, running, running_asgi

P1 = "3cbb7daa64c184fa48a7c8252abc5619"
VAULT = {
    "id": "vx",
    "name": "vx",
    "project_id": P1,
    "billing": {"size": 100, "used": 10, "allocated": 100},
    "resources": [],
}


def _ingest(path: Path, store: Path) -> None:
    result = CliRunner().invoke(main, ["ingest", str(path), "--store", str(store)])
    assert result.exit_code == 0, result.output


def _file(store: Path, kind: str) -> Path:
    """The one Parquet file of ``kind`` the store's newest commit lists."""
    names = read_manifest(store).tables[kind]
    assert len(names) == 1, names
    return store / names[0]


def _put(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` in one rename: a server watching it never reads half of it."""
    staged = path.with_name(path.name + ".part")
    staged.write_bytes(data)
    staged.replace(path)


def _damage(path: Path) -> bytes:
    """Flip every bit of a stretch in the middle of ``path``; the bytes it had."""
    data = path.read_bytes()
    low, high = len(data) // 4, len(data) // 2
    _put(path, data[:low] + bytes(b ^ 0xFF for b in data[low:high]) + data[high:])
    return data


def _damaged_commit(store: Path, dump: Path, kind: str, work: Path) -> tuple[Path, bytes]:
    """Commit ``dump`` to ``store`` with its new ``kind`` file damaged; that file and its bytes.

    The ingest runs on a copy of ``store`` (in ``work``), the file is damaged
    there, and the commit is put in place by two renames, its directory and
    then ``manifest.json``: a server watching ``store`` never sees the commit
    whole (damaging it after a plain ingest raced a worker's next look).
    """
    copy = work / f"copy-of-{store.name}"
    shutil.copytree(store, copy)
    _ingest(dump, copy)
    name = read_manifest(copy).tables[kind][-1]
    good = _damage(copy / name)
    generation = name.split("/", 1)[0]
    os.rename(copy / generation, store / generation)
    os.replace(copy / "manifest.json", store / "manifest.json")
    shutil.rmtree(copy)
    return store / name, good


@pytest.fixture
def sample_store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    _ingest(SAMPLE / "dumps", store)
    return store


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    """Whether a new server could listen on ``port`` (connections in TIME_WAIT aside)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@contextmanager
def _serve(
    store: Path, scratch: Path, *options: str, log: Any = subprocess.PIPE
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``cbrq serve --store store OPTIONS`` on a free port, temporary files in ``scratch``."""
    port = _free_port()
    command = [sys.executable, "-m", "engine.cli", "serve", "--store", str(store), "-q"]
    server = subprocess.Popen(
        [*command, "--port", str(port), *options],
        stderr=log,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    try:
        yield server, port
    finally:
        if server.poll() is None:
            server.kill()
        server.communicate(timeout=60)


def _until(what: str, done: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


# --- a damaged store at start ------------------------------------------------------


@pytest.mark.parametrize("kind", ["vaults", "members", "backups"])
def test_workers_stop_with_the_reason_when_the_commit_cannot_be_loaded(
    sample_store: Path, tmp_path: Path, kind: str
) -> None:
    # vaults and members are read by each worker (the records by the serve
    # process first): either way the server stops, names the file, and lets
    # go of its port, instead of starting crashing workers again and again.
    damaged = _file(sample_store, kind)
    _damage(damaged)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with _serve(sample_store, scratch, "--workers", "2") as (server, port):
        _, log = server.communicate(timeout=120)
        assert server.returncode == 1, log
        assert f"cbrq: error: {damaged}: damaged (" in log, log
        assert "Traceback" not in log and "run `cbrq check" in log
        assert _port_is_free(port)
    assert list(scratch.iterdir()) == []  # the shared copy went too


def test_a_single_process_server_names_the_damaged_file(sample_store: Path) -> None:
    damaged = _file(sample_store, "vaults")
    _damage(damaged)
    command = [sys.executable, "-m", "engine.cli", "serve", "--store", str(sample_store)]
    result = subprocess.run(
        [*command, "--port", str(_free_port())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"cbrq: error: {damaged}: damaged (")
    assert "Traceback" not in result.stderr


# --- a damaged commit while serving -----------------------------------------------


def _damaged_second_commit(store: Path, tmp_path: Path) -> tuple[Path, bytes]:
    """Ingest a vault (a new vaults file), then damage that file; it and its bytes."""
    dump = tmp_path / "vault.json"
    dump.write_text(json.dumps({"vaults": [VAULT]}))
    damaged, good = _damaged_commit(store, dump, "vaults", tmp_path)
    assert damaged == _file(store, "vaults")
    return damaged, good


def test_a_commit_that_cannot_be_loaded_is_tried_again_less_and_less_often(
    sample_store: Path, tmp_path: Path
) -> None:
    lines: list[str] = []
    now = [0.0]
    with Inventory.open(sample_store) as inventory:
        backend = Backend(inventory, log=lines.append, retry=1.0, clock=lambda: now[0])
        before = backend.list_backups(P1, [("limit", "5")])
        damaged, good = _damaged_second_commit(sample_store, tmp_path)

        tries = []
        for step in range(400):  # 100 s of looks every 0.25 s
            now[0] = step * 0.25
            assert backend.refresh() is False
            assert backend.failure is not None
            if not tries or backend.failure.tries != tries[-1][1]:
                tries.append((now[0], backend.failure.tries))
        # Tried at 0, then 1, 2, 4, 8, 16, 32 s apart, then every RETRY_CAP.
        assert [at for at, _ in tries] == [0, 1, 3, 7, 15, 31, 63]
        assert backend.failure.delay == min(64, RETRY_CAP)
        assert len(lines) == 1, lines  # logged once, in one line
        assert f"{damaged}: damaged (" in lines[0] and "still serving generation 1" in lines[0]
        assert backend.snapshot.generation == 1
        assert backend.list_backups(P1, [("limit", "5")]) == before

        _put(damaged, good)  # the file is restored: the next try loads it
        now[0] = backend.failure.due
        assert backend.refresh() is True
        assert backend.failure is None and backend.snapshot.generation == 2
        assert "now serving generation 2" in lines[-1] and "after 7 failed tries" in lines[-1]
        backend.close()


def test_a_newer_commit_is_tried_at_once(sample_store: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    with Inventory.open(sample_store) as inventory:
        backend = Backend(inventory, log=lines.append, retry=1000.0, clock=lambda: 0.0)
        damaged, good = _damaged_second_commit(sample_store, tmp_path)
        assert backend.refresh() is False and backend.failure is not None
        _put(damaged, good)
        assert backend.refresh() is False  # the same commit waits out its backoff
        more = tmp_path / "more.json"
        more.write_text(json.dumps({"vaults": [{**VAULT, "id": "vy"}]}))
        _ingest(more, sample_store)  # but a new commit is no reason to wait
        assert backend.refresh() is True and backend.snapshot.generation == 3
        backend.close()
    assert len(lines) == 2, lines


def test_a_running_server_logs_a_damaged_commit_once_and_keeps_answering(
    sample_store: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with Inventory.open(sample_store) as inventory, running(inventory, watch=0.05) as url:
        before = get(f"{url}/v3/{P1}/backups?limit=3")[::2]  # status and body
        damaged, good = _damaged_second_commit(sample_store, tmp_path)
        seen: list[str] = []

        def logged() -> bool:
            seen.append(capfd.readouterr().err)
            return "cannot be loaded" in "".join(seen)

        _until("the failed load was never logged", logged)
        for _ in range(10):  # the server keeps looking (and answering) meanwhile
            assert get(f"{url}/v3/{P1}/backups?limit=3")[::2] == before
            time.sleep(0.1)
        _put(damaged, good)
        _until(
            "the server never loaded the repaired commit",
            lambda: get(f"{url}/v3/{P1}/vaults/vx")[0] == 200,
        )
    log = "".join(seen) + capfd.readouterr().err
    assert log.count("cannot be loaded") == 1, log
    assert f"{damaged}: damaged (" in log and "Traceback" not in log
    assert "now serving generation 2" in log and "failed tries" in log


def test_workers_keep_answering_from_the_old_commit_and_leave_no_half_copy(
    sample_store: Path, tmp_path: Path
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    logged = tmp_path / "serve.log"
    url = ""
    with (
        logged.open("w") as log,
        _serve(sample_store, scratch, "--workers", "2", log=log) as (
            server,
            port,
        ),
    ):
        url = f"http://127.0.0.1:{port}/v3/{P1}/backups?limit=1"

        def answering() -> bool:
            assert server.poll() is None, logged.read_text()
            try:
                return get(url)[0] == 200
            except OSError:
                return False

        _until("no server", answering)
        count = get(url)[2]["count"]
        dump = tmp_path / "more.json"
        dump.write_text(json.dumps({"backups": [{"id": "new", "project_id": P1}], "count": 1}))
        # Each worker's copy of the new commit fails to be written.
        damaged, _ = _damaged_commit(sample_store, dump, "backups", tmp_path)
        assert damaged.parent.name == "g000002"
        _until("no failed load logged", lambda: "cannot be loaded" in logged.read_text())
        assert [get(url)[2]["count"] for _ in range(8)] == [count] * 8
        (folder,) = scratch.glob("cbrq-serve-*")
        with (folder / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # no worker is writing a copy meanwhile
            assert sorted(p.name for p in folder.glob("g*")) == ["g000001.arrow"]
        server.terminate()
        server.wait(timeout=60)
    text = logged.read_text()
    assert f"{damaged}: damaged (" in text and "Traceback" not in text, text
    assert 1 <= text.count("cannot be loaded") <= 2, text  # once per worker at most
    assert list(scratch.iterdir()) == []


# --- the serve process killed under its workers ------------------------------------


def _children(parent: int) -> list[int]:
    """The processes whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_and_remove_the_shared_copy_when_the_parent_is_killed(
    sample_store: Path, tmp_path: Path
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    workers: list[int] = []
    try:
        with _serve(sample_store, scratch, "--workers", "2") as (server, port):
            url = f"http://127.0.0.1:{port}/v3/{P1}/backups?limit=1"

            def answering() -> bool:
                assert server.poll() is None, "the server stopped"
                try:
                    return get(url)[0] == 200
                except OSError:
                    return False

            _until("no server", answering)
            assert list(scratch.glob("cbrq-serve-*/g*.arrow"))
            workers = _children(server.pid)
            assert len(workers) >= 2
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=30)
            _until("workers outlived their parent", lambda: not any(map(_alive, workers)))
            _until("the shared copy stayed", lambda: list(scratch.iterdir()) == [])
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


_MIDDLE = """
import os, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid())])
print(child.pid, flush=True)
child.wait()
"""
_FOLLOWER = """
import sys, time
from engine.server.workers import _follow_parent
_follow_parent(int(sys.argv[1]), kernel=False)
print("following", flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_without_the_kernel_s_signal_a_worker_still_sees_its_parent_die() -> None:
    middle = subprocess.Popen(
        [sys.executable, "-c", _MIDDLE, _FOLLOWER], stdout=subprocess.PIPE, text=True
    )
    follower = 0
    try:
        assert middle.stdout is not None
        follower = int(middle.stdout.readline())
        assert middle.stdout.readline() == "following\n" and _alive(follower)
        middle.kill()
        middle.wait(timeout=30)
        _until("the follower outlived its parent", lambda: not _alive(follower), 30)
    finally:
        if follower and _alive(follower):
            os.kill(follower, signal.SIGKILL)
        if middle.poll() is None:
            middle.kill()
        middle.communicate(timeout=30)


_HOLD = """
import sys, time
from engine.server.workers import SharedFolder
shared = SharedFolder.create(sys.argv[1])
print(shared.path, flush=True)
time.sleep(120)
"""


def test_a_sweep_removes_the_folders_no_living_process_holds(tmp_path: Path) -> None:
    mine = SharedFolder.create(str(tmp_path))
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        theirs = Path(holder.stdout.readline().strip())
        assert theirs.is_dir()
        assert SharedFolder.sweep(str(tmp_path)) == []  # both are held
        holder.kill()  # as a serve process killed before any worker started
        holder.wait(timeout=30)
        assert SharedFolder.sweep(str(tmp_path)) == [theirs]
        assert not theirs.exists() and mine.path.is_dir()
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.communicate(timeout=30)
    assert mine.leave() and not mine.path.exists()


# --- clients that do not send what they announce ------------------------------------


def _exchange(url: str, chunks: list[bytes], every: float = 0.0) -> tuple[bytes, bool]:
    """Send ``chunks`` (``every`` seconds apart, until the server closes); its answer, closed?"""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        answer: list[bytes] = []
        closed = threading.Event()

        def read() -> None:
            while True:
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                answer.append(chunk)
            closed.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        for chunk in chunks:
            if closed.is_set():
                break
            try:
                sock.sendall(chunk)
            except OSError:
                break
            time.sleep(every)
        reader.join(timeout=30)
        return b"".join(answer), closed.is_set()


def _answer(response: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, json.loads(body)


@pytest.fixture(scope="module")
def patient() -> Iterator[str]:
    """A server giving request bodies 0.5 s."""
    app = create_app(Inventory.from_dumps(str(SAMPLE / "dumps")), quiet=True, body_timeout=0.5)
    with running_asgi(app) as url:
        yield url


HEAD = b"GET /v3/p1/backups?limit=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"


@pytest.mark.parametrize(
    ("chunks", "every"),
    [([HEAD + b"abc"], 0.0), ([HEAD, *[b"x"] * 200], 0.05)],
    ids=["never-sent", "dripped"],
)
def test_a_body_that_does_not_arrive_in_time_is_408_and_closed(
    patient: str, chunks: list[bytes], every: float
) -> None:
    response, closed = _exchange(patient, chunks, every)
    assert closed, "the server held the connection"
    status, headers, body = _answer(response)
    assert status == 408 and headers["connection"] == "close" and "x-request-id" in headers
    assert body == {
        "error_code": "APIGW.0201",
        "error_msg": "request body not complete within 0.5 s",
    }


def test_a_refused_request_waits_for_its_body_too() -> None:
    # Answered at once, the client dripping a body would keep the connection open.
    inventory = Inventory.from_dumps(str(SAMPLE / "dumps"))
    app = create_app(inventory, token="t", quiet=True, body_timeout=0.5)
    with running_asgi(app) as url:
        response, closed = _exchange(url, [HEAD, *[b"x"] * 200], 0.05)
        assert closed and _answer(response)[0] == 408
        ok = HEAD.replace(b"Content-Length: 100", b"Content-Length: 1\r\nConnection: close")
        response, closed = _exchange(url, [ok + b"x"])
        assert closed and _answer(response)[0] == 401


def test_a_body_that_arrives_is_read_and_the_request_answered(patient: str) -> None:
    head = HEAD.replace(b"Content-Length: 100", b"Content-Length: 3\r\nConnection: close")
    response, closed = _exchange(patient, [head, b"a", b"bc"], 0.05)
    status, _, body = _answer(response)
    assert status == 200 and "backups" in body and closed
    chunked = (
        b"GET /v3/p1/backups?limit=1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    assert _answer(_exchange(patient, [chunked])[0])[0] == 200


def test_a_dripped_head_is_timed_out(monkeypatch: pytest.MonkeyPatch, patient: str) -> None:
    monkeypatch.setattr(engine.server.http, "HEADER_TIMEOUT", 0.5)
    head = b"GET /v3/p1/backups HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"y" * 400
    response, closed = _exchange(patient, [bytes([b]) for b in head], 0.02)
    assert closed
    status, _, body = _answer(response)
    assert status == 408 and body["error_code"] == "APIGW.0201"
