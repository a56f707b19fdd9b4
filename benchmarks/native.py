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
import sys
import tempfile
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.run import (  # noqa: E402
    DUCKDB_INGEST,
    DUCKDB_ONE_SHOT,
    ONE_SHOT,
    _machine,
    run_rss,
)

Timing = tuple[float, float]


def _cbrq(checkout: Path, *args: str) -> list[str]:
    """A whole cbrq process importing ``engine`` from ``checkout``."""
    code = f"import sys; sys.path.insert(0, {str(checkout)!r}); from engine.cli import main; main()"
    return [sys.executable, "-c", code, *args]


def _median(runs: list[Timing]) -> Timing:
    return statistics.median(w for w, _ in runs), max(r for _, r in runs)


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
                wall, rss, _ = run_rss(
                    _cbrq(checkout, "ingest", "-q", str(data), "--store", str(store))
                )
                found.setdefault(f"ingest {name}", []).append((wall, rss))
                wall, rss, out = run_rss(
                    _cbrq(checkout, "query", "--from", str(data), ONE_SHOT.query)
                )
                body = json.loads(out)
                answers[name] = (body["count"], [b["id"] for b in body["backups"]])
                found.setdefault(f"one-shot {name}", []).append((wall, rss))
            duck = [sys.executable, "-c", DUCKDB_INGEST, str(data), str(work / "duck.parquet")]
            found.setdefault("ingest DuckDB", []).append(run_rss(duck)[:2])
            query = [
                sys.executable,
                "-c",
                DUCKDB_ONE_SHOT,
                str(HERE.parent),
                str(data),
                ONE_SHOT.query,
            ]
            wall, rss, out = run_rss(query)
            count, ids = json.loads(out)
            answers["DuckDB"] = (count, ids)
            found.setdefault("one-shot DuckDB", []).append((wall, rss))
            line = ", ".join(f"{k} {v[-1][0]:.1f} s" for k, v in found.items())
            print(f"run {run + 1}: {line}", file=sys.stderr, flush=True)
    same = "yes" if answers["now"] == answers["before"] == answers["DuckDB"] else "**FAIL**"
    print(f"Machine: {_machine()}; date {date.today()}; {size:,.0f} MB of pretty pages; "
          f"medians of {args.runs} interleaved runs.\n")  # fmt: skip
    head = "| work | cbrq now | cbrq before | DuckDB | now / DuckDB | now / before | RSS now (MB) |"
    print(head)
    print("|---|---|---|---|---|---|---|")
    for work_name in ("ingest", "one-shot"):
        now, rss = _median(found[f"{work_name} now"])
        before, _ = _median(found[f"{work_name} before"])
        duck, _ = _median(found[f"{work_name} DuckDB"])
        print(
            f"| {work_name} | {now:.1f} s | {before:.1f} s | {duck:.1f} s | {now / duck:.2f}x "
            f"| {now / before:.2f}x | {rss:,.0f} |"
        )
    print(f"\nOne-shot answers the same in all three: {same}.")
    if same != "yes":
        raise SystemExit(1)


if __name__ == "__main__":
    os.environ.setdefault("POLARS_MAX_THREADS", str(os.cpu_count() or 2))
    main()
