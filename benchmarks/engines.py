"""The ten benchmark queries on every backend, in process, with the answers checked across them.

Each engine opens the same store (``Inventory.open(store, engine=...)``),
is warmed with one untimed pass (Spark starts its session then), and answers
each query ``--runs`` times; medians and the ratio to polars are printed as
a Markdown table, and FAIL where an engine's count or ids differ from
polars'. ``benchmarks/run.py --engines`` runs it after its own tables.

Example::

    python -m benchmarks.engines --store /tmp/s1m --engines polars,duckdb,spark --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.run import RESPONSE, Answer, Case, cases_for  # noqa: E402
from engine.inventory import Inventory  # noqa: E402


def answer(inv: Inventory, case: Case) -> Answer:
    """(count, ids) of ``case`` from ``inv``'s engine."""
    if case.count_only:
        return inv.count(case.query, project=case.project), []
    result = inv.query(case.query, project=case.project, columns=RESPONSE)
    return result.count, result.ids


def bench(store: Path, engines: list[str], runs: int, master: str | None = None) -> list[str]:
    """Markdown lines: median ms per query and engine, ratios to the first engine, agreement."""
    base = Inventory.open(store)
    cases = cases_for(base, base.count())
    times: dict[str, list[float]] = {}
    answers: dict[str, list[Answer]] = {}
    started: dict[str, float] = {}
    for engine in engines:
        inv = base.using(engine, spark=master if engine == "spark" else None)
        begin = time.perf_counter()
        answers[engine] = [answer(inv, case) for case in cases]  # warm-up, and the answers
        started[engine] = time.perf_counter() - begin
        times[engine] = []
        for case in cases:
            seconds = []
            for _ in range(runs):
                begin = time.perf_counter()
                answer(inv, case)
                seconds.append(time.perf_counter() - begin)
            times[engine].append(statistics.median(seconds))
            print(f"{engine} {case.label}: {times[engine][-1] * 1000:,.0f} ms", file=sys.stderr)
    first = engines[0]
    rows = []
    for i, case in enumerate(cases):
        cells = " | ".join(
            f"{times[e][i] * 1000:,.0f} ({times[e][i] / times[first][i]:.1f}x)" for e in engines
        )
        same = all(answers[e][i] == answers[first][i] for e in engines)
        verdict = "yes" if same else "**FAIL**"
        rows.append(f"| {case.label} | {answers[first][i][0]:,} | {cells} | {verdict} |")
    warm = ", ".join(f"{e} {started[e]:.1f} s" for e in engines)
    return [
        f"The ten queries over {base.count():,} backups, in process: median ms of {runs} runs "
        f"(ratio to {first}); first pass over all ten, untimed: {warm}.",
        "",
        f"| query | count | {' | '.join(engines)} | same answer |",
        "|---|---|" + "---|" * len(engines) + "---|",
        *rows,
    ]


def main(argv: list[str] | None = None) -> Any:
    """Parse the options, run, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--engines", default="polars,duckdb")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--spark-master", default=None)
    args = parser.parse_args(argv)
    lines = bench(args.store, args.engines.split(","), args.runs, args.spark_master)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
