"""Streamed query output (issue 23 item 1): cbrq against an earlier checkout, side by side.

Usage::

    python benchmarks/streaming.py STORE --before /path/to/older/checkout --runs 3

For each checkout (this one and ``--before``), as whole processes on ``STORE``
(a 1M store for the issue's figures), interleaved run by run:

- seconds until the first line of ``cbrq query -f ndjson | head -1``;
- ``cbrq query 'status=error' -f csv -o FILE`` (about 80k rows at 1M): seconds and peak RSS;
- ``cbrq query -f ndjson -o FILE`` of every backup: seconds and peak RSS.

Prints a markdown table of medians with the machine and the date.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.run import _machine, run_rss  # noqa: E402


def first_line(checkout: Path, store: Path) -> float:
    """Seconds until ``head -1`` has the first ndjson line (the pipeline's wall time)."""
    environment = {**os.environ, "PYTHONPATH": str(checkout)}
    command = f"{sys.executable} -m engine.cli query --store {store} -f ndjson | head -1"
    started = time.perf_counter()
    # Run from elsewhere: `-m` puts the working directory ahead of PYTHONPATH.
    subprocess.run(
        command, shell=True, env=environment, capture_output=True, check=True, cwd="/"
    )
    return time.perf_counter() - started


def whole(checkout: Path, store: Path, query: str, fmt: str) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of writing ``query`` in ``fmt`` to a file."""
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / f"out.{fmt}"
        command = [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(checkout)!r}); "
            "from engine.cli import main; main()",
            "query",
            query,
            "--store",
            str(store),
            "-f",
            fmt,
            "-o",
            str(target),
        ]
        wall, rss, _ = run_rss(command)
        return wall, rss


def main() -> None:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--before", type=Path, required=True, help="an older checkout")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    checkouts = {"before": args.before.resolve(), "now": HERE.parent}
    found: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(args.runs):
        for label, checkout in checkouts.items():
            found.setdefault((label, "first"), []).append((first_line(checkout, args.store), 0))
            csv = whole(checkout, args.store, "status=error", "csv")
            found.setdefault((label, "csv"), []).append(csv)
            every = whole(checkout, args.store, "", "ndjson")
            found.setdefault((label, "ndjson"), []).append(every)
    lines = [
        f"Streamed output on {args.store} ({_machine()}, {date.today()}), medians of {args.runs}:",
        "",
        "| measure | before | now | ratio |",
        "|---|---|---|---|",
    ]
    for key, what in [
        ("first", "first line of `-f ndjson | head -1`, s"),
        ("csv", "`status=error -f csv -o FILE`, s"),
        ("ndjson", "every backup `-f ndjson -o FILE`, s"),
    ]:
        old = statistics.median(w for w, _ in found[("before", key)])
        new = statistics.median(w for w, _ in found[("now", key)])
        lines.append(f"| {what} | {old:.2f} | {new:.2f} | {new / old:.2f} |")
        if key != "first":
            old_rss = max(r for _, r in found[("before", key)])
            new_rss = max(r for _, r in found[("now", key)])
            lines.append(
                f"| ... its peak RSS, MB | {old_rss:,.0f} | {new_rss:,.0f} | "
                f"{new_rss / old_rss:.2f} |"
            )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
