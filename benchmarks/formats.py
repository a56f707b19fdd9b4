"""Output formats side by side: one query to every format, as whole processes, interleaved.

Each round runs ``cbrq query QUERY --store STORE -f FMT -o /dev/null`` once per
format in turn (so a noisy machine slows all of them alike), then the medians
and the ratio to ``-f json`` are printed as a Markdown table.

Example::

    python -m benchmarks.formats --store /tmp/s1m --query status=error --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

FORMATS = ("json", "ndjson", "csv", "tsv", "parquet")


def run_once(store: str, query: str, fmt: str) -> float:
    """Seconds of one whole ``cbrq query`` process."""
    command = [sys.executable, "-m", "engine.cli", "query", query, "--store", store]
    start = time.perf_counter()
    subprocess.run([*command, "-f", fmt, "-o", "/dev/null"], check=True)
    return time.perf_counter() - start


def main() -> None:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--query", default="status=error")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {f: [] for f in FORMATS}
    for _ in range(args.rounds):
        for fmt in FORMATS:
            seconds[fmt].append(run_once(args.store, args.query, fmt))
    base = statistics.median(seconds["json"])
    print(f"query {args.query!r}, {args.rounds} rounds, whole processes")
    print("| format | median s | runs | x json |")
    print("|---|---|---|---|")
    for fmt in FORMATS:
        median = statistics.median(seconds[fmt])
        runs = ", ".join(f"{s:.2f}" for s in seconds[fmt])
        print(f"| {fmt} | {median:.2f} | {runs} | {median / base:.2f} |")


if __name__ == "__main__":
    main()
