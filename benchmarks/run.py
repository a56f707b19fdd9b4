"""The benchmark harness: cbrq side by side with DuckDB, polars and plain Python.

Usage (the one command)::

    python -m pip install -e '.[bench]'
    python benchmarks/run.py --n 1000000 --runs 3
    python benchmarks/run.py --n 10000000 --runs 3 --ingest-runs 1

1. generates ``--n`` backups with ``cbrq generate`` (cached under
   ``benchmarks/.data/``), 1000 pretty-printed pages;
2. **ingest**: ``cbrq ingest`` vs DuckDB ``read_json`` -> Parquet vs polars
   ``read_json`` + unnest, as whole processes: wall time, MB/s, peak RSS;
3. **queries**: representative ListBackups calls, each answered by cbrq in
   process, cbrq as a whole CLI process, DuckDB SQL over cbrq's own Parquet
   files, DuckDB over the raw JSON dumps, and a plain-Python loop
   (:mod:`benchmarks.pyloop`) over the parsed JSON; every engine must
   return the same count and the same ids in the same order, and the harness
   says FAIL when one does not;
4. prints markdown tables of medians and ratios to cbrq, with the machine
   and the date.

It also measures an append of 1,000 backups to the store just made (whole
process), a one-shot ``cbrq query --from`` next to DuckDB over the raw JSON,
and the ten queries on a store fragmented by appends next to the same store
compacted, and the analyses of SPEC §5 (``cbrq stats`` ... ``diff``) in process
next to DuckDB SQL doing the same ``stats`` group-bys (``--analyses-only STORE``:
that table alone, on an existing store). ``--engines polars,duckdb,spark`` adds
the ten queries on each backend (:mod:`benchmarks.engines`), answers checked
across them. ``--ingest-only`` leaves out the query
tables. ``--smoke`` runs a tiny N once, checking answers only (the test suite does).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import pyloop, sql  # noqa: E402
from engine.inventory import Inventory  # noqa: E402

RESPONSE = ["id", "_payload"]


@dataclass(frozen=True)
class Case:
    """One benchmark query: a label, the query string, the project, page or count."""

    label: str
    query: str
    project: str | None = None
    count_only: bool = False


def run_rss(command: list[str]) -> tuple[float, float, str]:
    """Like timed_process, with the child's own peak RSS from wait4."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            assert child.stderr is not None
            lines = child.stderr.read().decode().strip().splitlines()
            raise RuntimeError(lines[-1] if lines else f"exit {child.returncode}")
        out.seek(0)
        return wall, usage.ru_maxrss / 1024, out.read().decode()


# --- ingest -------------------------------------------------------------------

DUCKDB_INGEST = """
import sys, duckdb
src, out = sys.argv[1], sys.argv[2]
duckdb.sql(f"COPY (SELECT unnest(backups, recursive := true) FROM read_json('{src}/backups/*.json',"
           f" maximum_object_size=1000000000)) TO '{out}' (FORMAT parquet)")
"""
POLARS_INGEST = """
import sys, glob, polars as pl
files = sorted(glob.glob(sys.argv[1] + "/backups/*.json"))
frames = [pl.read_json(f).select("backups").explode("backups").unnest("backups") for f in files]
print(pl.concat(frames, how="diagonal_relaxed").height)
"""


def bench_ingest(data: Path, runs: int, work: Path) -> tuple[list[str], Path]:
    """Ingest timings of the three engines; the last cbrq store."""
    size = sum(p.stat().st_size for p in (data / "backups").iterdir()) / 1e6
    results: dict[str, list[tuple[float, float]]] = {"cbrq": [], "DuckDB": [], "polars": []}
    failed: dict[str, str] = {}
    store = work / "store"
    commands = {
        "DuckDB": [sys.executable, "-c", DUCKDB_INGEST, str(data), str(work / "duck.parquet")],
        "polars": [sys.executable, "-c", POLARS_INGEST, str(data)],
    }
    for _ in range(runs):
        shutil.rmtree(store, ignore_errors=True)
        wall, rss, _ = run_rss(
            [sys.executable, "-m", "engine.cli", "ingest", "-q", str(data), "--store", str(store)]
        )
        results["cbrq"].append((wall, rss))
        for name, command in commands.items():
            if name in failed:
                continue
            try:
                wall, rss, _ = run_rss(command)
            except RuntimeError as err:
                failed[name] = str(err)[:160]
                continue
            results[name].append((wall, rss))
    base = statistics.median(w for w, _ in results["cbrq"])
    lines = [
        f"Ingest of {size:,.0f} MB of pretty-printed ListBackups pages, medians of {runs} runs:",
        "",
        "| engine | what it does | wall (s) | MB/s | ratio to cbrq | peak RSS (MB) |",
        "|---|---|---|---|---|---|",
    ]
    what = {
        "cbrq": "typed, timestamps parsed, dedup, sorted Parquet + payload",
        "DuckDB": "`read_json` -> Parquet (timestamps stay strings, no dedup)",
        "polars": "`read_json` + unnest in memory (timestamps stay strings)",
    }
    for name, runs_ in results.items():
        if name in failed:
            lines.append(f"| {name} | {what[name]} | fails: {failed[name]} | | | |")
            continue
        wall = statistics.median(w for w, _ in runs_)
        rss = max(r for _, r in runs_)
        lines.append(
            f"| {name} | {what[name]} | {wall:.1f} | {size / wall:.0f} | "
            f"{wall / base:.2f} | {rss:,.0f} |"
        )
    return lines, store


# --- appends and one-shot queries ----------------------------------------------

APPEND_ROWS = 1_000
APPENDS = 7  # appends made to measure queries on a fragmented store
ONE_SHOT = Case(
    "representative",
    "status=available&status=error&start_time=2025-03-01T00:00:00Z"
    "&end_time=2026-03-01T00:00:00Z&resource_type=OS::Cinder::Volume&used_percent=50"
    "&sort=created_at:asc,name:desc&offset=100&limit=100",
)
DUCKDB_ONE_SHOT = """
import json, sys, duckdb
sys.path.insert(0, sys.argv[1])
from benchmarks import run, sql
from engine.params import QueryParams, parse_query
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
for statement in run.RAW_VIEWS.format(data=sys.argv[2]).split(";"):
    if statement.strip():
        con.execute(statement)
q = parse_query(QueryParams.parse(sys.argv[3]))
members = con.execute("SELECT count(*) FROM raw_members").fetchone()[0] > 0
rows = con.execute(sql.page(q, "raw_backups", "raw_vault_rows", "raw_members", members)).fetchall()
print(json.dumps([rows[0][1] if rows else 0, [r[0] for r in rows]]))
"""


def append_file(data: Path, work: Path, number: int) -> Path:
    """A ListBackups page of APPEND_ROWS backups: 90 % new ids, 10 % newer copies of stored ones."""
    pages = sorted((data / "backups").iterdir())
    source = json.loads(pages[(number * 37) % len(pages)].read_bytes())["backups"]
    out = []
    for i in range(APPEND_ROWS):
        record = dict(source[i % len(source)])
        if i % 10 == 0:
            record["updated_at"] = f"2030-01-{1 + number:02d}T00:00:00Z"
            record["name"] = f"renamed-{number}"
        else:
            record["id"] = f"append-{number:02d}-{i:05d}"
        out.append(record)
    path = work / "appends" / f"append-{number:02d}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"count": len(out), "backups": out}, indent=2))
    return path


def bench_append(store: Path, data: Path, runs: int, work: Path) -> tuple[list[str], Path]:
    """Whole-process appends of APPEND_ROWS backups to copies of ``store``; a fragmented copy."""
    times: list[tuple[float, float]] = []
    copy = work / "appended"
    for run in range(runs):
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(store, copy)
        path = append_file(data, work, run)
        command = [sys.executable, "-m", "engine.cli", "ingest", "-q", str(path), "--store"]
        times.append(run_rss([*command, str(copy)])[:2])
        print(f"append {run + 1}: {times[-1][0]:.2f} s", file=sys.stderr, flush=True)
    for number in range(runs, APPENDS):  # fragment the last copy further
        path = append_file(data, work, number)
        command = [sys.executable, "-m", "engine.cli", "ingest", "-q", str(path)]
        subprocess.run([*command, "--store", str(copy)], check=True)
    wall = statistics.median(w for w, _ in times)
    rss = max(r for _, r in times)
    lines = [
        f"Append of {APPEND_ROWS:,} backups ({APPEND_ROWS // 10:,} of them newer copies of "
        f"stored ones) to the store just made, as a whole `cbrq ingest` process, median of "
        f"{runs}: **{wall:.2f} s**, peak RSS {rss:,.0f} MB.",
    ]
    return lines, copy


def bench_fragmented(
    store: Path, fragmented: Path, runs: int, against: Path | None = None
) -> list[str]:
    """The ten queries in process on a fragmented store, next to the same store compacted.

    ``against``: a store of the same backups to compare with instead (the
    same dumps as another version of cbrq wrote them).
    """
    from engine.api import compact, store_info

    state = store_info(fragmented)["tables"]["backups"]
    compacted = fragmented.parent / "compacted"
    if against is None:
        shutil.copytree(fragmented, compacted)
        compact(compacted)
    else:
        compacted = against
    shape = ", ".join(f"{seg['rows']:,}" for seg in state["segments"])
    lines = [
        f"Queries on the store after {APPENDS} appends ({len(state['segments'])} segments of "
        f"{shape} rows, {state['superseded']:,} superseded rows) and on the same store after "
        "`cbrq compact`, in process, median ms of "
        f"{runs} after one warm-up call:",
        "",
        "| query | fragmented | compacted | ratio | same answer |",
        "|---|---|---|---|---|",
    ]
    inventories = [Inventory.open(fragmented), Inventory.open(compacted)]
    for case in cases_for(inventories[1], inventories[1].count()):
        took, got = [], []
        for inv in inventories:
            seconds = []
            for _ in range(runs + 1):
                started = time.perf_counter()
                if case.count_only:
                    answer: Answer = (inv.count(case.query, project=case.project), [])
                else:
                    result = inv.query(case.query, project=case.project, columns=RESPONSE)
                    answer = (result.count, result.ids)
                seconds.append(time.perf_counter() - started)
            took.append(statistics.median(seconds[1:]))
            got.append(answer)
        same = "yes" if got[0] == got[1] else "**FAIL**"
        lines.append(
            f"| {case.label} | {took[0] * 1000:,.0f} | {took[1] * 1000:,.0f} | "
            f"{took[0] / took[1]:.2f} | {same} |"
        )
    return lines


def bench_one_shot(data: Path, runs: int) -> list[str]:
    """`cbrq query --from` against DuckDB over the raw JSON, both as whole processes."""
    size = sum(p.stat().st_size for p in (data / "backups").iterdir()) / 1e6
    cbrq = [sys.executable, "-m", "engine.cli", "query", "--from", str(data), ONE_SHOT.query]
    duck = [sys.executable, "-c", DUCKDB_ONE_SHOT, str(HERE.parent), str(data), ONE_SHOT.query]
    results: dict[str, list[tuple[float, float]]] = {"cbrq --from": [], "DuckDB raw JSON": []}
    answers: dict[str, Answer] = {}
    for _ in range(runs):
        wall, rss, out = run_rss(cbrq)
        body = json.loads(out)
        answers["cbrq --from"] = (body["count"], [b["id"] for b in body["backups"]])
        results["cbrq --from"].append((wall, rss))
        wall, rss, out = run_rss(duck)
        count, ids = json.loads(out)
        answers["DuckDB raw JSON"] = (count, ids)
        results["DuckDB raw JSON"].append((wall, rss))
        print(
            f"one-shot: {results['cbrq --from'][-1][0]:.1f} s, DuckDB {wall:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    base = statistics.median(w for w, _ in results["cbrq --from"])
    same = "yes" if answers["cbrq --from"] == answers["DuckDB raw JSON"] else "**FAIL**"
    lines = [
        f"One-shot query over {size:,.0f} MB of dumps, no store (`{ONE_SHOT.label}` query, "
        f"count {answers['cbrq --from'][0]:,}), whole processes, medians of {runs}:",
        "",
        "| engine | wall (s) | ratio to cbrq | peak RSS (MB) | same answer |",
        "|---|---|---|---|---|",
    ]
    for name, runs_ in results.items():
        wall = statistics.median(w for w, _ in runs_)
        rss = max(r for _, r in runs_)
        lines.append(f"| {name} | {wall:.1f} | {wall / base:.2f} | {rss:,.0f} | {same} |")
    return lines


# --- queries ------------------------------------------------------------------

RAW_VIEWS = """
CREATE VIEW pages AS SELECT filename, unnest(backups) AS b
  FROM read_json('{data}/backups/*.json', maximum_object_size=1000000000, filename=true);
CREATE MACRO ts(s) AS CASE WHEN s IS NULL THEN NULL
  WHEN regexp_matches(s, '(Z|[+-][0-9][0-9]:[0-9][0-9])$') THEN s::TIMESTAMPTZ
  ELSE (s || '+00')::TIMESTAMPTZ END;
CREATE VIEW raw_backups AS SELECT b.id::VARCHAR AS id, b.name AS name, b.status AS status,
  ts(b.created_at) AS created_at, ts(b.updated_at) AS updated_at,
  ts(b.protected_at) AS protected_at, b.vault_id::VARCHAR AS vault_id,
  b.project_id::VARCHAR AS project_id,
  b.resource_type AS resource_type, b.resource_name AS resource_name,
  b.resource_id::VARCHAR AS resource_id, b.resource_az AS resource_az,
  b.checkpoint_id::VARCHAR AS checkpoint_id,
  b.image_type AS image_type,
  b.enterprise_project_id AS enterprise_project_id, b.incremental AS incremental,
  b.extend_info AS extend_info
  FROM pages
  QUALIFY row_number() OVER (PARTITION BY b.id::VARCHAR ORDER BY ts(b.updated_at) DESC NULLS LAST,
                                          filename DESC) = 1;
CREATE VIEW raw_vaults AS
  SELECT unnest(vaults, recursive := true) FROM read_json('{data}/vaults.json');
CREATE VIEW raw_vault_rows AS
  SELECT id::VARCHAR AS id, {{'size': size, 'used': used}} AS billing FROM raw_vaults;
CREATE VIEW raw_member_rows AS
  SELECT unnest(members, recursive := true) FROM read_json('{data}/members.json');
CREATE VIEW raw_members AS SELECT backup_id::VARCHAR AS backup_id,
  dest_project_id::VARCHAR AS dest_project_id, status FROM raw_member_rows;
"""


def cases_for(inv: Inventory, n: int) -> list[Case]:
    """The benchmark queries, with a project and a marker taken from the data."""
    project = inv.lazy("members").select("dest_project_id").collect()["dest_project_id"][0]
    marker = inv.query("limit=1&offset=1000" if n > 1000 else "limit=1", columns=["id"]).ids[0]
    deep = max(0, n // 2)
    return [
        Case("single filter", "status=error&limit=100"),
        Case("multi-status", "status=available&status=error&limit=100"),
        Case(
            "time range", "start_time=2025-06-01T00:00:00Z&end_time=2025-07-01T00:00:00Z&limit=100"
        ),
        Case("used_percent", "used_percent=80&limit=100"),
        Case("own_type=shared", "own_type=shared&limit=100", project),
        Case("two-key sort", "sort=name:asc,created_at:desc&limit=100"),
        Case("deep offset", f"offset={deep}&limit=100"),
        Case("marker page", f"marker={marker}&limit=100"),
        Case("count only", "status=available&resource_type=OS::Cinder::Volume", count_only=True),
        Case(
            "representative",
            "status=available&status=error&start_time=2025-03-01T00:00:00Z"
            "&end_time=2026-03-01T00:00:00Z&resource_type=OS::Cinder::Volume&used_percent=50"
            "&sort=created_at:asc,name:desc&offset=100&limit=100",
        ),
    ]


Answer = tuple[int, list[str]]


def _engines(
    case: Case, inv: Inventory, store: Path, parquet: Any, raw: Any
) -> dict[str, Callable[[], Answer]]:
    """One function per engine (but plain Python) answering ``case`` as (count, ids)."""
    parsed = inv.parse(case.query, project=case.project)

    def cbrq() -> Answer:
        if case.count_only:
            return inv.count(case.query, project=case.project), []
        result = inv.query(case.query, project=case.project, columns=RESPONSE)
        return result.count, result.ids

    def cli() -> Answer:
        verb = "count" if case.count_only else "query"
        command = [sys.executable, "-m", "engine.cli", verb, case.query, "--store", str(store)]
        command += ["--project", case.project] if case.project else []
        command += [] if case.count_only else ["-f", "json"]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        if case.count_only:
            return int(out), []
        body = json.loads(out)
        return body["count"], [b["id"] for b in body["backups"]]

    # The raw JSON views and cbrq's store hold the same members (the same dumps).
    has_members = inv.manifest.counts.get("members", 0) > 0

    def duck(con: Any, b: str, v: str, m: str) -> Callable[[], Answer]:
        def run() -> Answer:
            if not case.count_only:
                rows = con.execute(sql.page(parsed, b, v, m, has_members)).fetchall()
                if rows:
                    return rows[0][1], [r[0] for r in rows]
            total = con.execute(sql.count(parsed, b, v, m, has_members)).fetchone()[0]
            return total, []

        return run

    engines = {
        "cbrq": cbrq,
        "cbrq CLI": cli,
        "DuckDB on cbrq Parquet": duck(parquet, "b", "v", "m"),
    }
    if raw is not None:
        engines["DuckDB on raw JSON"] = duck(raw, "raw_backups", "raw_vault_rows", "raw_members")
    return engines


def plain_python(data: Path, queries: list[Any]) -> tuple[float, list[tuple[float, Answer]]]:
    """The plain-Python peer: one parse + dedup pass (its seconds), then each query's own.

    A script answering one query parses the dumps once and runs one loop, so
    each query's figure in the table is the shared pass plus its own loop.
    """
    started = time.perf_counter()
    rows = pyloop.load(data, pyloop.fields_for(queries))
    vaults = json.loads((data / "vaults.json").read_bytes())["vaults"]
    members = json.loads((data / "members.json").read_bytes())["members"]
    load = time.perf_counter() - started
    out = []
    for q in queries:
        started = time.perf_counter()
        got = pyloop.answer(rows, q, vaults, members)
        out.append((time.perf_counter() - started, got))
    return load, out


def bench_queries(store: Path, data: Path, runs: int, raw_runs: int, with_raw: bool) -> list[str]:
    import duckdb

    from engine.store.manifest import read_manifest
    from engine.store.read import duckdb_sql

    inv = Inventory.open(store)
    manifest = read_manifest(store)
    parquet = duckdb.connect()
    for view, kind in (("b", "backups"), ("v", "vaults"), ("m", "members")):
        # The live rows, as `cbrq info --sql` prints them for users.
        parquet.execute(f"CREATE VIEW {view} AS {duckdb_sql(store, manifest, kind)}")
    raw = duckdb.connect()
    if with_raw:
        for statement in RAW_VIEWS.format(data=data).split(";"):
            if statement.strip():
                raw.execute(statement)
    n = inv.count()
    cases = cases_for(inv, n)
    answers: list[dict[str, Answer]] = []
    times: list[dict[str, float]] = []
    for case in cases:
        engines = _engines(case, inv, store, parquet, raw if with_raw else None)
        answers.append({})
        times.append({})
        for name, fn in engines.items():
            repeat = {"cbrq": runs + 1, "DuckDB on raw JSON": raw_runs}
            seconds = []
            for _ in range(repeat.get(name, runs)):
                started = time.perf_counter()
                answers[-1][name] = fn()
                seconds.append(time.perf_counter() - started)
            times[-1][name] = statistics.median(seconds)  # the first cbrq call warms caches
        # Progress on stderr as each query is measured: a long run that fails late keeps these.
        measured = ", ".join(f"{k} {v * 1000:,.0f} ms" for k, v in times[-1].items())
        print(f"{case.label}: {measured}", file=sys.stderr, flush=True)
    parquet.close()
    raw.close()
    # Plain Python last, once every other engine has let go of its memory.
    queries = [inv.parse(case.query, project=case.project) for case in cases]
    load, python = plain_python(data, queries)
    rows: list[str] = []
    failures: list[str] = []
    for case, got, took, (own, mine) in zip(cases, answers, times, python, strict=True):
        got["plain Python"] = (mine[0], []) if case.count_only else mine
        took["plain Python"] = load + own
        if not all(a == got["cbrq"] for a in got.values()):
            failures.append(case.label)
        base = took["cbrq"]
        cells = " | ".join(f"{took[k] * 1000:,.0f} ({took[k] / base:.1f}x)" for k in took)
        verdict = "yes" if case.label not in failures else "**FAIL**"
        rows.append(f"| {case.label} | {got['cbrq'][0]:,} | {cells} | {verdict} |")
    header = " | ".join(times[0])  # the engines, in measuring order
    lines = [
        f"Queries over {n:,} backups: median ms (ratio to cbrq in-process). Plain Python parses "
        f"and deduplicates the JSON once ({load:.1f} s), and each of its figures is that pass "
        "plus the query's own loop and sort, which is what a one-query script costs:",
        "",
        f"| query | count | {header} | same answer |",
        "|---|---|" + "---|" * len(times[0]) + "---|",
        *rows,
    ]
    if failures:
        lines += ["", f"**FAIL**: engines disagree on {', '.join(failures)}"]
    return lines


#: The analyses of SPEC §5 as the benchmark runs them (in process, on the store).
ANALYSES: list[tuple[str, Callable[[Inventory], Any]]] = [
    ("stats --by status", lambda inv: inv.stats(by="status")),
    ("stats --by status,resource_type,day", lambda inv: inv.stats(by="status,resource_type,day")),
    ("rpo --max-age 24h", lambda inv: inv.rpo(max_age="24h")),
    ("rpo 'resource_type=OS::Nova::Server'", lambda inv: inv.rpo("resource_type=OS::Nova::Server")),
    ("retention --min-days 35", lambda inv: inv.retention(min_days=35)),
    ("capacity", lambda inv: inv.capacity()),
    ("hygiene --stuck-hours 24", lambda inv: inv.hygiene(stuck_hours=24)),
    ("diff (the store with itself)", lambda inv: inv.diff(inv)),
]
#: DuckDB doing what ``cbrq stats`` does, over the store's Parquet (view ``b``).
STATS_SQL = {
    "stats --by status": (
        "SELECT status, count(*) AS backups, coalesce(sum(resource_size), 0) AS size_gb "
        "FROM b GROUP BY status ORDER BY backups DESC, status NULLS LAST"
    ),
    "stats --by status,resource_type,day": (
        "SELECT status, resource_type, date_trunc('day', created_at) AS day, count(*) AS backups, "
        "coalesce(sum(resource_size), 0) AS size_gb FROM b GROUP BY ALL "
        "ORDER BY backups DESC, status NULLS LAST, resource_type NULLS LAST, day NULLS LAST"
    ),
}


def bench_analyses(store: Path, runs: int) -> list[str]:
    """Each analysis in process (median of ``runs``), and DuckDB's SQL for the stats group-bys."""
    import duckdb

    from engine.store.manifest import read_manifest
    from engine.store.read import duckdb_sql

    inv = Inventory.open(store)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE VIEW b AS {duckdb_sql(store, read_manifest(store), 'backups')}")
    rows = []
    for label, analyse in ANALYSES:
        seconds, result = [], None
        for _ in range(runs + 1):  # the first call warms the file cache
            started = time.perf_counter()
            result = analyse(inv)
            seconds.append(time.perf_counter() - started)
        mine = statistics.median(seconds[1:])
        peer, same = "", ""
        if label in STATS_SQL:
            took, answer = [], []
            for _ in range(runs + 1):
                started = time.perf_counter()
                answer = con.execute(STATS_SQL[label]).fetchall()
                took.append(time.perf_counter() - started)
            same = "yes" if _same_groups(result.frame, answer) else "**FAIL**"
            peer = f"{statistics.median(took[1:]) * 1000:,.0f}"
        print(f"{label}: {mine * 1000:,.0f} ms", file=sys.stderr, flush=True)
        rows.append(f"| {label} | {result.frame.height:,} | {mine * 1000:,.0f} | {peer} | {same} |")
    con.close()
    inv.close()
    return [
        f"Analyses over {inv.manifest.counts['backups']:,} backups, in process: median ms of "
        f"{runs} runs after a warm-up. DuckDB runs the same group-by as `cbrq stats` over the "
        "store's Parquet files (`cbrq info --sql`):",
        "",
        "| analysis | rows | cbrq | DuckDB SQL | same groups |",
        "|---|---|---|---|---|",
        *rows,
    ]


def _same_groups(frame: Any, answer: list[tuple[Any, ...]]) -> bool:
    """Whether DuckDB's (keys..., backups, size_gb) rows are cbrq's, in the same order."""
    keys = [c for c in frame.columns if c not in ("backups", "size_gb", "first", "last")]
    ours = [_naive(row) for row in frame.select(*keys, "backups", "size_gb").rows()]
    return ours == [_naive(row) for row in answer]


def _naive(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row with its instants zone-less (both sides are UTC)."""
    return tuple(v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in row)


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    """Run the harness and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--raw-runs", type=int, default=1, help="runs of DuckDB on raw JSON")
    parser.add_argument("--ingest-runs", type=int, default=None, help="ingest runs (--runs)")
    parser.add_argument("--no-raw", action="store_true", help="skip DuckDB on raw JSON")
    parser.add_argument(
        "--ingest-only", action="store_true", help="only the ingest table (after store changes)"
    )
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="tiny N, one run")
    parser.add_argument(
        "--engines",
        default=None,
        metavar="A,B",
        help="also the ten queries on these backends (polars,duckdb,spark), answers checked",
    )
    parser.add_argument(
        "--analyses-only",
        type=Path,
        metavar="STORE",
        help="only the analyses table, on this existing store (read, never written)",
    )
    args = parser.parse_args()
    if args.analyses_only:
        lines = bench_analyses(args.analyses_only, args.runs)
        print(f"Machine: {_machine()}; date {date.today()}.\n")
        print("\n".join(lines))
        raise SystemExit(1 if any("FAIL" in line for line in lines) else 0)
    if args.smoke:
        args.n, args.runs, args.ingest_runs = min(args.n, 3000), 1, 1
    data = args.data or HERE / ".data" / f"n{args.n}"
    if not (data / "vaults.json").exists():
        shutil.rmtree(data, ignore_errors=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "generate",
                str(data),
                "-n",
                str(args.n),
                "--seed",
                "7",
            ],
            check=True,
        )
    more: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ingest_lines, store = bench_ingest(data, args.ingest_runs or args.runs, Path(tmp))
        print("\n".join(ingest_lines), file=sys.stderr, flush=True)
        append_lines, fragmented = bench_append(store, data, args.runs, Path(tmp))
        more.append(append_lines)
        more.append(bench_one_shot(data, args.ingest_runs or args.runs))
        for lines in more:
            print("\n".join(lines), file=sys.stderr, flush=True)
        query_lines = []
        if not args.ingest_only:
            query_lines = bench_queries(store, data, args.runs, args.raw_runs, not args.no_raw)
            more.append(bench_fragmented(store, fragmented, args.runs))
            more.append(bench_analyses(store, args.runs))
            if args.engines:
                from benchmarks.engines import bench as bench_engines

                more.append(bench_engines(store, args.engines.split(","), args.runs))
    print(f"# cbrq benchmarks, {args.n:,} backups\n")
    print(f"Machine: {_machine()}; date {date.today()}.\n")
    print("\n".join(ingest_lines))
    for lines in [more[0], more[1], query_lines, *more[2:]]:
        if lines:
            print()
            print("\n".join(lines))
    if any("FAIL" in line for lines in [query_lines, *more] for line in lines):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
