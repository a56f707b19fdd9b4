"""Streamed output (issue 23 item 1): cbrq against an earlier checkout, side by side.

Usage::

    python benchmarks/streaming.py STORE --before /path/to/older/checkout --runs 5

For each checkout (this one and ``--before``), as whole processes on ``STORE``
(a 1M store for the issue's figures), alternating run by run:

- ``cbrq query -f ndjson`` of every backup into a pipe: seconds until its
  first line arrives, and until the process has ended once the reader
  closed the pipe (what ``| head -1`` waits for);
- ``cbrq query QUERY -f csv -o FILE`` (``--csv-query``, default
  ``status=error``: about 80k rows at 1M): seconds, CPU seconds, peak RSS;
- ``cbrq hygiene -f ndjson -o FILE`` (an analysis' JSON, written by columns):
  the same;
- ``cbrq query -f ndjson -o FILE`` of every backup: the same (``--no-full``
  skips it).

Prints a markdown table of medians (peak RSS: the largest) with the machine,
the date and the load average, which on a shared machine says how far wall
times are inflated; CPU seconds are less sensitive to it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.run import _machine  # noqa: E402

#: One run of one measure: wall seconds, CPU seconds (user + system), peak RSS in MB.
Sample = tuple[float, float, float]


def _cbrq(checkout: Path, *arguments: str) -> list[str]:
    """The command running ``cbrq ARGUMENTS`` from ``checkout`` (not the installed one)."""
    boot = f"import sys; sys.path.insert(0, {str(checkout)!r}); from engine.cli import main; main()"
    return [sys.executable, "-c", boot, *arguments]


def first_line(checkout: Path, store: Path) -> tuple[Sample, Sample]:
    """Seconds until the first ndjson line arrives; and until the process ends after the
    reader has closed the pipe (both with the CPU seconds and peak RSS of the whole run)."""
    command = _cbrq(checkout, "query", "--store", str(store), "-f", "ndjson")
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd="/")
    assert child.stdout is not None
    line = child.stdout.readline()
    arrived = time.perf_counter() - started
    child.stdout.close()  # as `head -1` does once it has its line
    _, _, usage = os.wait4(child.pid, 0)
    ended = time.perf_counter() - started
    if not line.startswith(b"{"):
        raise RuntimeError(f"{checkout}: no ndjson line ({line[:80]!r})")
    cpu = usage.ru_utime + usage.ru_stime
    rss = usage.ru_maxrss / 1024
    return (arrived, cpu, rss), (ended, cpu, rss)


def whole(checkout: Path, *arguments: str) -> Sample:
    """Wall seconds, CPU seconds and peak RSS (MB) of ``cbrq ARGUMENTS -o FILE``."""
    with tempfile.TemporaryDirectory() as scratch:
        command = _cbrq(checkout, *arguments, "-o", str(Path(scratch) / "out"))
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            assert child.stderr is not None
            raise RuntimeError(child.stderr.read().decode().strip()[-300:])
        return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


MEASURES: dict[str, str] = {
    "first": "first line of `query -f ndjson` (1M) arrives, s",
    "ended": "... the process ends once the pipe is closed (`\\| head -1`), s",
    "csv": "`query {csv} -f csv -o FILE`, s",
    "hygiene": "`hygiene -f ndjson -o FILE`, s",
    "full": "every backup `query -f ndjson -o FILE`, s",
}


def run_once(checkout: Path, store: Path, csv_query: str, full: bool) -> dict[str, Sample]:
    """Every measure once for ``checkout``."""
    found: dict[str, Sample] = {}
    found["first"], found["ended"] = first_line(checkout, store)
    found["csv"] = whole(checkout, "query", csv_query, "--store", str(store), "-f", "csv")
    found["hygiene"] = whole(checkout, "hygiene", "--store", str(store), "-f", "ndjson")
    if full:
        found["full"] = whole(checkout, "query", "--store", str(store), "-f", "ndjson")
    return found


def table(found: dict[tuple[str, str], list[Sample]], csv_query: str) -> list[str]:
    """The markdown rows: medians of wall and CPU seconds, the largest peak RSS."""
    lines = [
        "| measure | before | now | now/before | CPU s before | CPU s now | peak RSS MB before "
        "| peak RSS MB now |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, what in MEASURES.items():
        if ("now", key) not in found:
            continue
        old, new = found[("before", key)], found[("now", key)]
        wall = [statistics.median(s[0] for s in runs) for runs in (old, new)]
        cpu = [statistics.median(s[1] for s in runs) for runs in (old, new)]
        rss = [max(s[2] for s in runs) for runs in (old, new)]
        spread = f" ({min(s[0] for s in new):.2f} to {max(s[0] for s in new):.2f})"
        lines.append(
            f"| {what.format(csv=csv_query)} | {wall[0]:.2f} | {wall[1]:.2f}{spread} | "
            f"{wall[1] / wall[0]:.2f} | {cpu[0]:.2f} | {cpu[1]:.2f} | "
            f"{rss[0]:,.0f} | {rss[1]:,.0f} |"
        )
    return lines


def main() -> None:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--before", type=Path, required=True, help="an older checkout")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--csv-query", default="status=error")
    parser.add_argument("--no-full", action="store_true", help="skip the full ndjson export")
    args = parser.parse_args()
    checkouts = {"before": args.before.resolve(), "now": HERE.parent}
    found: dict[tuple[str, str], list[Sample]] = {}
    loads = [os.getloadavg()[0]]
    for number in range(args.runs):
        # Alternate which goes first, so that neither always runs on a warmer cache.
        order = list(checkouts.items())
        for label, checkout in order if number % 2 == 0 else order[::-1]:
            for key, sample in run_once(
                checkout, args.store, args.csv_query, not args.no_full
            ).items():
                found.setdefault((label, key), []).append(sample)
        loads.append(os.getloadavg()[0])
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"Streamed output on {args.store} ({_machine()}, {when}; 1-minute load average "
        f"{min(loads):.1f} to {max(loads):.1f}), medians of {args.runs} runs:\n"
    )
    print("\n".join(table(found, args.csv_query)))


if __name__ == "__main__":
    main()
