"""Load benchmark for `cbrq serve`: concurrent clients, limit=100 queries, mixed filters.

Usage::

    python benchmarks/serve_load.py --store big-store --clients 8 --seconds 60 --workers 2

Starts ``cbrq serve`` on a free loopback port as a separate process, runs
``--clients`` threads that each keep one HTTP/1.1 connection and send
ListBackups queries (limit=100, a rotating mix of filters and sorts, or with
``--mix fresh`` the same shapes with random values) until ``--seconds`` pass
(after ``--warmup`` seconds of the same load, not counted), then stops the
server. Prints throughput, p50/p99/max latency, the number of errors
(non-200 answers or transport failures) and the memory of the server's
processes, as a markdown table row. Every loop is bounded by time; nothing
leaves loopback.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

QUERIES = [
    "limit=100",
    "status=available&status=error&limit=100",
    "status=error&sort=created_at:asc&limit=100",
    "resource_type=OS::Cinder::Volume&sort=name:asc,created_at:desc&limit=100",
    "start_time=2025-06-01T00:00:00Z&end_time=2025-09-01T00:00:00Z&limit=100",
    "used_percent=80&limit=100",
    "name=manualbk&limit=100",
    "status=available&used_percent=50&sort=updated_at:desc&offset=500&limit=100",
    "own_type=all_granted&limit=100",
    "incremental=true&resource_type=OS::Nova::Server&limit=100",
]


def fresh_query(rng: random.Random) -> str:
    """One of the ten mixes with values drawn at random, so that no filter repeats.

    A server that keeps filter masks (engine.backends.resident) answers the fixed mix
    from them after the first round; this mix measures the work of a filter
    it has not seen.
    """
    day = rng.randrange(0, 700)
    start = f"2024-{1 + day // 60 % 12:02d}-{1 + day % 28:02d}T{rng.randrange(24):02d}:00:00Z"
    end = f"2026-{1 + day // 50 % 12:02d}-{1 + day % 27:02d}T{rng.randrange(24):02d}:00:00Z"
    name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_0123456789") for _ in range(2))
    choices = [
        f"start_time={start}&limit=100",
        f"status=available&end_time={end}&limit=100",
        f"status=error&sort=created_at:asc&start_time={start}&limit=100",
        f"resource_type=OS::Cinder::Volume&sort=name:asc,created_at:desc&end_time={end}&limit=100",
        f"start_time={start}&end_time={end}&limit=100",
        f"used_percent={rng.randrange(1, 101)}&start_time={start}&limit=100",
        f"name={name}&limit=100",
        f"status=available&used_percent={rng.randrange(1, 101)}&sort=updated_at:desc"
        f"&offset={rng.randrange(1000)}&limit=100",
        f"own_type=all_granted&end_time={end}&limit=100",
        f"incremental=true&resource_type=OS::Nova::Server&start_time={start}&limit=100",
    ]
    return rng.choice(choices)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def project_of(store: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "engine.cli", "query", "limit=1", "--store", store, "-f", "json"],
        capture_output=True,
        check=True,
        text=True,
    )
    return str(json.loads(out.stdout)["backups"][0]["project_id"])


def client(
    port: int,
    project: str,
    until: float,
    latencies: list[float],
    errors: list[str],
    offset: int,
    fresh: bool = False,
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    n = offset
    rng = random.Random(offset)
    while time.perf_counter() < until:
        query = fresh_query(rng) if fresh else QUERIES[n % len(QUERIES)]
        path = f"/v3/{project}/backups?{query}"
        n += 1
        started = time.perf_counter()
        try:
            connection.request("GET", path, headers={"X-Auth-Token": "load"})
            response = connection.getresponse()
            body = response.read()
            if response.status != 200 or not body.startswith(b'{"count":'):
                errors.append(f"{response.status} {path}")
        except (OSError, http.client.HTTPException) as err:
            errors.append(f"{type(err).__name__} {path}")
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        latencies.append(time.perf_counter() - started)
    connection.close()


def main() -> None:
    """Run the load and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=1, help="cbrq serve --workers")
    parser.add_argument(
        "--warmup",
        type=float,
        default=0,
        help="seconds of the same load before measuring (first uses of each sort and filter)",
    )
    parser.add_argument(
        "--mix",
        choices=["fixed", "fresh"],
        default="fixed",
        help="fixed: the ten queries in turn; fresh: the same shapes with random values",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    port = free_port()
    project = project_of(args.store)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "serve",
            "--store",
            args.store,
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "-q",
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/v3/{project}/backups?limit=1", timeout=5
                ).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("server did not start") from None
                time.sleep(0.2)
        ready = time.perf_counter() - started
        fresh = args.mix == "fresh"
        if args.warmup > 0:
            _load(port, project, args.clients, args.warmup, fresh, [], [], seed=1000)
        latencies: list[float] = []
        errors: list[str] = []
        _load(port, project, args.clients, args.seconds, fresh, latencies, errors, seed=0)
        memory = _memory(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    print(
        f"store {Path(args.store).resolve()}, {args.clients} clients, {args.seconds:.0f} s, "
        f"{args.mix} mix, {args.workers} worker(s), {args.warmup:.0f} s warm-up; "
        f"server ready in {ready:.1f} s\n"
    )
    print("| requests | req/s | p50 ms | p99 ms | max ms | mean ms | errors | RSS MB | PSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {len(latencies)} | {len(latencies) / args.seconds:.0f} | {p(0.50):.1f} | "
        f"{p(0.99):.1f} | {latencies[-1] * 1000:.1f} | "
        f"{statistics.fmean(latencies) * 1000:.1f} | {len(errors)} | "
        f"{memory[0]:.0f} | {memory[1]:.0f} |"
    )
    for error in errors[:5]:
        print("error:", error)


def _load(
    port: int,
    project: str,
    clients: int,
    seconds: float,
    fresh: bool,
    latencies: list[float],
    errors: list[str],
    seed: int,
) -> None:
    """``clients`` threads sending queries for ``seconds``; their latencies and errors."""
    until = time.perf_counter() + seconds
    threads = [
        threading.Thread(
            target=client, args=(port, project, until, latencies, errors, seed + i, fresh)
        )
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _memory(pid: int) -> tuple[float, float]:
    """The server's memory in MB (Linux /proc): RSS and PSS summed over it and its workers.

    PSS counts a page shared by several processes (the workers' mapped
    records) once in all, split between them; RSS counts it in each.
    """
    rss = pss = 0.0
    for process in _tree(pid):
        try:
            for line in Path(f"/proc/{process}/smaps_rollup").read_text().splitlines():
                key, _, value = line.partition(":")
                if key == "Rss":
                    rss += int(value.split()[0]) / 1024
                elif key == "Pss":
                    pss += int(value.split()[0]) / 1024
        except OSError:
            pass
    return rss, pss


def _tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found.extend(_tree(int(child)))
    return found


if __name__ == "__main__":
    main()
