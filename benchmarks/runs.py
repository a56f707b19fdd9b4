"""Queries on a store as one ingest wrote it (one segment of sorted runs) against it compacted.

An ingest of few batches writes each batch once, as a sorted Parquet run, and
keeps the runs as its segment (issue 24, item 2); queries should stay within
1.5x of the same store after ``cbrq compact`` (one sorted run). This measures
how far they are, for a given number of runs. Usage::

    python benchmarks/runs.py STORE --runs 5
    python benchmarks/runs.py --ingest DATA --max-runs 100 --runs 5
    python benchmarks/runs.py STORE --against OTHER_STORE --runs 5

``STORE`` is a store made by ``cbrq ingest`` (it is copied, never changed);
with ``--ingest``, a store of ``DATA`` is made first, keeping up to
``--max-runs`` runs (``engine.store.write.MAX_RUNS``; one run per 64 MB batch).
Prints, with the machine and the date: the ten queries of
``benchmarks/run.py`` in process (median ms after a warm-up), then
``cbrq count`` and a ``limit=100`` query as whole processes (median seconds),
on both stores, interleaved. ``--against`` compares with another store of the
same backups (say, the same dumps as an older cbrq wrote them) instead.
"""

from __future__ import annotations

import argparse
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

from benchmarks.run import _machine, bench_fragmented  # noqa: E402


def whole_processes(stores: list[Path], runs: int) -> list[str]:
    """``cbrq count`` and a ``limit=100`` query on each store, median wall seconds of ``runs``."""
    commands = {
        "`cbrq count`": ["count"],
        "`cbrq query limit=100`": ["query", "limit=100", "-f", "json"],
    }
    lines = ["", "| whole process | runs | other | ratio |", "|---|---|---|---|"]
    for label, args in commands.items():
        took: list[list[float]] = [[] for _ in stores]
        answers = []
        for _ in range(runs):
            for i, store in enumerate(stores):
                command = [sys.executable, "-m", "engine.cli", *args, "--store", str(store)]
                started = time.perf_counter()
                done = subprocess.run(command, capture_output=True, check=True)
                took[i].append(time.perf_counter() - started)
                answers.append(done.stdout)
        medians = [statistics.median(seconds) for seconds in took]
        same = len(set(answers)) == 1
        lines.append(
            f"| {label} | {medians[0]:.2f} s | {medians[1]:.2f} s | "
            f"{medians[0] / medians[1]:.2f}{'' if same else ' **answers differ**'} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", type=Path, nargs="?")
    parser.add_argument("--ingest", type=Path, help="make the store from these dumps first")
    parser.add_argument("--max-runs", type=int, default=None, help="runs an ingest may keep")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--against", type=Path, help="compare with this store of the same backups, not compacted"
    )
    args = parser.parse_args()
    if (args.store is None) == (args.ingest is None):
        parser.error("give a STORE or --ingest DATA")
    import engine.store.write
    from engine.api import ingest, store_info

    with tempfile.TemporaryDirectory(prefix="cbrq-runs-") as tmp:
        runs = Path(tmp) / "runs"
        if args.ingest is not None:
            if args.max_runs is not None:
                engine.store.write.MAX_RUNS = args.max_runs  # type: ignore[misc]
            ingest([str(args.ingest)], runs)
        else:
            shutil.copytree(args.store, runs)
        state = store_info(runs)["tables"]["backups"]
        files = sum(len(segment["files"]) for segment in state["segments"])
        print(f"{date.today().isoformat()}, {_machine()}")
        print(f"store: {state['live']:,} backups in {files} file(s)")
        print()
        lines = bench_fragmented(runs, runs, args.runs, args.against)
        count = sum(segment["runs"] for segment in state["segments"])
        other = "after `cbrq compact`" if args.against is None else f"as {args.against} holds it"
        lines[0] = (
            f"Queries on the store as its ingest wrote it ({count} sorted run(s)) and on the "
            f"same backups {other}, in process, median ms of {args.runs} after one "
            "warm-up call:"
        )
        lines[2] = "| query | runs | other | ratio | same answer |"
        lines += whole_processes([runs, args.against or runs.parent / "compacted"], args.runs)
        print("\n".join(lines))


if __name__ == "__main__":
    main()
