"""Ingest benchmark: `cbrq ingest` vs polars `read_json` + unnest, same files, same run.

Usage::

    python benchmarks/ingest_vs_polars.py --pages 100 --runs 3

Writes ``--pages`` ListBackups pages of 1000 pretty-printed backups each
(deterministic: built from the seed example with a seeded RNG; 1 in 5
``created_at`` values carries a ``+08:00`` offset; every third backup has a
child) into a temporary folder, then times each engine as a whole process,
``--runs`` times, interleaved, and prints medians (wall and CPU), the ratio
and peak RSS.
The polars peer stops at unnested columns with timestamps still strings (it
cannot parse the mixed forms); cbrq types everything and writes Parquet.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = Path(__file__).resolve().parent.parent / "sample_data" / "api-example.json"
POLARS_PEER = """
import sys, polars as pl
frames = [pl.read_json(p).select("backups").explode("backups").unnest("backups")
          for p in sys.argv[1:]]
print(pl.concat(frames, how="diagonal_relaxed").height)
"""


def make_pages(folder: Path, pages: int) -> int:
    """Write the input pages; their total size in bytes."""
    template = json.loads(SEED.read_text())["backups"]
    rng = random.Random(7)
    number = 0
    for page in range(pages):
        records = []
        for i in range(1000):
            number += 1
            record = copy.deepcopy(template[i % 2])
            record["id"] = f"{number:012d}-{rng.getrandbits(64):016x}"
            second = rng.randrange(86400 * 365)
            day, rest = divmod(second, 86400)
            clock = f"{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"
            stamp = f"2025-{1 + day // 31 % 12:02d}-{1 + day % 28:02d}T{clock}"
            record["created_at"] = stamp + (
                ".123+08:00" if i % 5 == 0 else f".{rng.randrange(10**6):06d}"
            )
            record["status"] = rng.choice(["available", "error", "protecting"])
            record["children"] = [copy.deepcopy(template[1])] if i % 3 == 0 else []
            records.append(record)
        body = json.dumps({"count": pages * 1000, "backups": records}, indent=2)
        (folder / f"page-{page:05d}.json").write_text(body)
    return sum(p.stat().st_size for p in folder.iterdir())


def timed(command: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one child process (its own rusage)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{command[:4]} failed with {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    """Run the comparison and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        size = make_pages(folder, args.pages)
        files = sorted(str(p) for p in folder.iterdir())
        results: dict[str, list[tuple[float, float, float]]] = {"cbrq": [], "polars": []}
        for _ in range(args.runs):
            store = Path(tmp) / "store"
            shutil.rmtree(store, ignore_errors=True)
            cbrq = [
                sys.executable,
                "-m",
                "engine.cli",
                "ingest",
                "-q",
                str(folder),
                "--store",
                str(store),
            ]
            results["cbrq"].append(timed(cbrq))
            results["polars"].append(timed([sys.executable, "-c", POLARS_PEER, *files]))
    base = statistics.median(w for w, _, _ in results["cbrq"])
    print(f"{args.pages * 1000:,} backups, {size / 1e6:.0f} MB, {args.runs} runs\n")
    print("| engine | median wall (s) | median CPU (s) | MB/s | ratio to cbrq | peak RSS (MB) |")
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():
        wall = statistics.median(w for w, _, _ in runs)
        cpu = statistics.median(c for _, c, _ in runs)
        rss = max(r for _, _, r in runs)
        print(
            f"| {name} | {wall:.2f} | {cpu:.2f} | {size / 1e6 / wall:.0f} | {wall / base:.2f} "
            f"| {rss:.0f} |"
        )


if __name__ == "__main__":
    main()
