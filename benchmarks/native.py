"""The native ingest core (issue 24): cbrq against DuckDB and an earlier checkout, side by side.

Usage::

    python benchmarks/native.py DATA --before /path/to/older/checkout --runs 3

``DATA`` is a folder made by ``cbrq generate`` (``benchmarks/.data/n200000``:
``python -m engine.cli generate benchmarks/.data/n200000 -n 200000 --seed 7``).
Interleaved run by run, as whole processes (wall seconds, peak RSS from
``wait4``):

- **ingest**: ``cbrq ingest -q DATA`` with this checkout and with ``--before``,
  next to DuckDB's ``read_json`` -> Parquet of the same pages (the peer of
  ``benchmarks/run.py``: timestamps stay strings, no dedup, no payload);
- **one-shot**: ``cbrq query --from DATA`` of run.py's representative query
  (both checkouts) next to DuckDB answering it over the raw JSON; the answers
  must agree.

Prints a markdown table of medians and ratios with the machine and the date.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.run import (  # noqa: E402
    DUCKDB_INGEST,
    DUCKDB_ONE_SHOT,
    ONE_SHOT,
    _machine,
)

#: Wall seconds, CPU seconds (user + system), peak RSS in MB.
Timing = tuple[float, float, float]


def run_rss(command: list[str]) -> tuple[float, float, float, str]:
    """Run ``command``; its wall and CPU seconds, peak RSS (MB) and standard output.

    CPU seconds come from ``wait4``: on a shared, loaded machine they move far
    less than wall time, so both are reported.
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            assert child.stderr is not None
            lines = child.stderr.read().decode().strip().splitlines()
            raise RuntimeError(lines[-1] if lines else f"exit {status}")
        out.seek(0)
        cpu = usage.ru_utime + usage.ru_stime
        return wall, cpu, usage.ru_maxrss / 1024, out.read().decode()


def _cbrq(checkout: Path, *args: str) -> list[str]:
    """A whole cbrq process importing ``engine`` from ``checkout``."""
    code = f"import sys; sys.path.insert(0, {str(checkout)!r}); from engine.cli import main; main()"
    return [sys.executable, "-c", code, *args]


def _median(runs: list[Timing]) -> Timing:
    """Median wall and CPU seconds, the largest peak RSS."""
    return (
        statistics.median(w for w, _, _ in runs),
        statistics.median(c for _, c, _ in runs),
        max(r for _, _, r in runs),
    )


def main() -> None:
    """Run both tables and print them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help="a folder made by cbrq generate")
    parser.add_argument("--before", type=Path, required=True, help="an older checkout")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    data = args.data.resolve()
    size = sum(p.stat().st_size for p in (data / "backups").iterdir()) / 1e6
    checkouts = {"now": HERE.parent, "before": args.before.resolve()}
    found: dict[str, list[Timing]] = {}
    answers: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for run in range(args.runs):
            for name, checkout in checkouts.items():
                store = work / f"store-{name}"
                shutil.rmtree(store, ignore_errors=True)
                ingest = _cbrq(checkout, "ingest", "-q", str(data), "--store", str(store))
                found.setdefault(f"ingest {name}", []).append(run_rss(ingest)[:3])
                query = _cbrq(checkout, "query", "--from", str(data), ONE_SHOT.query)
                wall, cpu, rss, out = run_rss(query)
                body = json.loads(out)
                answers[name] = (body["count"], [b["id"] for b in body["backups"]])
                found.setdefault(f"one-shot {name}", []).append((wall, cpu, rss))
            duck = [sys.executable, "-c", DUCKDB_INGEST, str(data), str(work / "duck.parquet")]
            found.setdefault("ingest DuckDB", []).append(run_rss(duck)[:3])
            raw = [sys.executable, "-c", DUCKDB_ONE_SHOT, str(HERE.parent), str(data)]
            wall, cpu, rss, out = run_rss([*raw, ONE_SHOT.query])
            count, ids = json.loads(out)
            answers["DuckDB"] = (count, ids)
            found.setdefault("one-shot DuckDB", []).append((wall, cpu, rss))
            line = ", ".join(
                f"{k} {v[-1][0]:.1f} s ({v[-1][1]:.1f} CPU-s)" for k, v in found.items()
            )
            print(f"run {run + 1}: {line}", file=sys.stderr, flush=True)
    same = "yes" if answers["now"] == answers["before"] == answers["DuckDB"] else "**FAIL**"
    print(f"Machine: {_machine()}; date {date.today()}; {size:,.0f} MB of pretty pages; "
          f"medians of {args.runs} interleaved runs.\n")  # fmt: skip
    print("Wall seconds, with CPU seconds (user + system) in brackets.\n")
    print("| work | cbrq now | cbrq before | DuckDB | now / DuckDB | now / before | RSS now, MB |")
    print("|---|---|---|---|---|---|---|")
    for work_name in ("ingest", "one-shot"):
        now, now_cpu, rss = _median(found[f"{work_name} now"])
        before, before_cpu, _ = _median(found[f"{work_name} before"])
        peer, peer_cpu, _ = _median(found[f"{work_name} DuckDB"])
        print(
            f"| {work_name} | {now:.1f} ({now_cpu:.1f}) | {before:.1f} ({before_cpu:.1f}) "
            f"| {peer:.1f} ({peer_cpu:.1f}) | {now / peer:.2f}x ({now_cpu / peer_cpu:.2f}x) "
            f"| {now / before:.2f}x ({now_cpu / before_cpu:.2f}x) | {rss:,.0f} |"
        )
    print(f"\nOne-shot answers the same in all three: {same}.")
    if same != "yes":
        raise SystemExit(1)


if __name__ == "__main__":
    os.environ.setdefault("POLARS_MAX_THREADS", str(os.cpu_count() or 2))
    main()
