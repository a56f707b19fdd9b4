"""The cost of keeping history (SPEC §6, issue 22 item 6), side by side in one run.

Usage::

    cbrq generate /data/series -n 1000000 --days 30 --gzip
    python benchmarks/history.py /data/series --work /data/work --runs 3

Feeds every day of the series to one store with ``--snapshot`` (whole
processes: wall time and peak RSS of each), then measures against a store of
the newest export alone (and, for the as-of query, a store of that day's
export alone):

- a snapshot ingest of the newest day onto the store of all earlier days, next to a plain
  ingest of the same export into an empty store (medians of the daily snapshot ingests too);
- the size on disk of both stores;
- ten queries (counts and pages) in process on the latest state, as of an earlier snapshot,
  and on the single-export stores; medians of ``--runs``, answers checked equal;
- ``cbrq trend --every day`` and ``cbrq history ID`` as whole processes.

Prints markdown tables with the machine and the date.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.run import _machine, run_rss  # noqa: E402
from engine.inventory import Inventory  # noqa: E402

CLI = [sys.executable, "-m", "engine.cli"]
QUERIES = [
    "",
    "status=available",
    "status=error",
    "resource_type=OS::Cinder::Volume",
    "image_type=replication",
    "sort=created_at:desc&limit=100",
    "status=available&sort=name:asc&limit=100",
    "start_time=2026-01-01T00:00:00Z&end_time=2026-01-03T00:00:00Z&limit=100",
    "used_percent=80",
    "name=backup-1&limit=100",
]


def size_of(folder: Path) -> int:
    """Bytes of every file under ``folder``."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def ingest(day: Path, store: Path, *options: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one ``cbrq ingest`` process."""
    wall, rss, _ = run_rss([*CLI, "ingest", "-q", str(day), "--store", str(store), *options])
    return wall, rss


def timed(function: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median seconds of ``runs`` calls of ``function`` (after one warm-up) and its answer."""
    answer = function()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), answer


def answer(inv: Inventory, query: str) -> tuple[int, list[str]]:
    """The count and page ids of ``query`` (count only when it has no limit)."""
    if "limit" not in query:
        return inv.count(query), []
    result = inv.query(query, columns=["id", "_payload"])
    return result.count, result.ids


def feed(days: list[Path], store: Path, resume: bool) -> list[tuple[float, float]]:
    """Ingest every day with --snapshot (``resume``: those after the store's last); wall, RSS."""
    if resume and store.exists():
        with Inventory.open(store) as inv:
            days = days[len(inv.manifest.ingests) :]
    else:
        shutil.rmtree(store, ignore_errors=True)
    out = []
    for day in days:
        out.append(ingest(day, store, "--snapshot"))
        print(f"  snapshot {day.name}: {out[-1][0]:.1f} s, {out[-1][1]:,.0f} MB", flush=True)
    return out


def compare_queries(
    pairs: list[tuple[str, Inventory, Inventory]], runs: int
) -> tuple[list[str], list[float]]:
    """Rows of the query table for (label, history view, single store) pairs; the ratios."""
    lines = [
        "| view | query | history store ms | single export ms | ratio |",
        "|---|---|---|---|---|",
    ]
    ratios = []
    for label, history, single in pairs:
        for query in QUERIES:
            t_h, a_h = timed(lambda q=query, i=history: answer(i, q), runs)
            t_s, a_s = timed(lambda q=query, i=single: answer(i, q), runs)
            same = "" if a_h == a_s else " FAIL: answers differ"
            ratios.append(t_h / t_s)
            shown = query or "(all)"
            lines.append(
                f"| {label} | `{shown}` | {t_h * 1e3:.1f} | {t_s * 1e3:.1f} | "
                f"{t_h / t_s:.2f}{same} |"
            )
    return lines, ratios


def main() -> None:
    """Run the measurements and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("series", type=Path, help="a folder of `cbrq generate --days` output")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/.work-history"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--days", type=int, default=None, help="only the first N days")
    parser.add_argument(
        "--resume", action="store_true", help="feed on from the history store's last ingest"
    )
    args = parser.parse_args()
    days = sorted(p for p in args.series.iterdir() if p.is_dir())[: args.days]
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    history, newest, middle = work / "history", work / "newest", work / "middle"
    print(f"feeding {len(days)} snapshots", flush=True)
    fed = feed(days[:-1], history, args.resume)
    plain = []
    for _ in range(args.runs):
        shutil.rmtree(newest, ignore_errors=True)
        plain.append(ingest(days[-1], newest))
    snap = ingest(days[-1], history, "--snapshot")
    fed.append(snap)
    half = days[len(days) // 2]
    shutil.rmtree(middle, ignore_errors=True)
    ingest(half, middle)
    p_wall, p_rss = statistics.median(w for w, _ in plain), max(r for _, r in plain)
    daily = statistics.median(w for w, _ in fed[1:]) if len(fed) > 1 else fed[0][0]
    h_size, n_size = size_of(history), size_of(newest)
    lines = [
        f"History cost, {len(days)} daily snapshots of {days[0].name}..{days[-1].name} "
        f"({_machine()}, {date.today()}):",
        "",
        "| measure | history | single export | ratio | goal |",
        "|---|---|---|---|---|",
        f"| ingest of the newest day, s | {snap[0]:.1f} (snapshot onto {len(days) - 1} days) "
        f"| {p_wall:.1f} (plain, empty store, median of {len(plain)}) | {snap[0] / p_wall:.2f} "
        "| ≤ 1.3 |",
        f"| median daily snapshot ingest, s | {daily:.1f} | {p_wall:.1f} | {daily / p_wall:.2f} "
        "| |",
        f"| peak RSS of an ingest, MB | {max(r for _, r in fed):,.0f} (max over days) "
        f"| {p_rss:,.0f} | {max(r for _, r in fed) / p_rss:.2f} | ≤ 1,536 MB |",
        f"| store size, MB | {h_size / 1e6:,.0f} | {n_size / 1e6:,.0f} | {h_size / n_size:.2f} "
        "| ≤ 1.5 |",
    ]
    with Inventory.open(history) as h, Inventory.open(newest) as n, Inventory.open(middle) as m:
        taken = [r.taken_at for r in h.manifest.ingests]
        then = h.as_of(taken[len(days) // 2])
        query_lines, ratios = compare_queries(
            [("latest", h, n), (f"as of {half.name}", then, m)], args.runs
        )
        some = n.query("limit=1").ids[0]
    latest = statistics.median(ratios[: len(QUERIES)])
    earlier = statistics.median(ratios[len(QUERIES) :])
    lines += [
        f"| query on the latest state, median ratio of {len(QUERIES)} | | | {latest:.2f} | ≤ 1.2 |",
        f"| query as of {half.name}, median ratio | | | {earlier:.2f} | ≤ 1.5 |",
    ]
    for label, command, goal in [
        ("`trend --every day`, s", ["trend", "--every", "day"], "≤ 10"),
        ("`history ID`, s", ["history", some], "≤ 0.5"),
    ]:
        try:
            wall, _, _ = run_rss([*CLI, *command, "--store", str(history), "-f", "json"])
            lines.append(f"| {label} whole process | {wall:.2f} | | | {goal} |")
        except (RuntimeError, subprocess.SubprocessError) as err:
            lines.append(f"| {label} | failed: {err} | | | {goal} |")
    print("\n".join([*lines, "", *query_lines]))


if __name__ == "__main__":
    main()
