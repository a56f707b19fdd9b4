"""Load benchmark for `cbrq serve`: concurrent clients, limit=100 queries, mixed filters.

Usage::

    python benchmarks/serve_load.py --store big-store --clients 8 --seconds 60

Starts ``cbrq serve`` on a free loopback port as a separate process, runs
``--clients`` threads that each keep one HTTP/1.1 connection and send
ListBackups queries (limit=100, a rotating mix of filters and sorts) until
``--seconds`` pass, then stops the server. Prints throughput, p50/p99/max
latency and the number of errors (non-200 answers or transport failures), as
a markdown table row. Every loop is bounded by time; nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import http.client
import json
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
    port: int, project: str, until: float, latencies: list[float], errors: list[str], offset: int
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    n = offset
    while time.perf_counter() < until:
        path = f"/v3/{project}/backups?{QUERIES[n % len(QUERIES)]}"
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
    args = parser.parse_args()
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
        latencies: list[float] = []
        errors: list[str] = []
        until = time.perf_counter() + args.seconds
        threads = [
            threading.Thread(target=client, args=(port, project, until, latencies, errors, i))
            for i in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    print(f"store {Path(args.store).resolve()}, {args.clients} clients, {args.seconds:.0f} s\n")
    print("| requests | req/s | p50 ms | p99 ms | max ms | mean ms | errors |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {len(latencies)} | {len(latencies) / args.seconds:.0f} | {p(0.50):.1f} | "
        f"{p(0.99):.1f} | {latencies[-1] * 1000:.1f} | "
        f"{statistics.fmean(latencies) * 1000:.1f} | {len(errors)} |"
    )
    for error in errors[:5]:
        print("error:", error)


if __name__ == "__main__":
    main()
