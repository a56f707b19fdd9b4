"""What an ingest call was, by SPEC §6: its pages checked, its ``taken_at``, its record.

An ingest reads pages (responses with a ``count``) and bare records. This
module, given the pages' places and the narrow typed rows that came of them,

- checks the completeness of the call (:func:`page_problems`): per project
  (the records' ``project_id``) and per kind, the pages whose records belong
  to it carry one ``count`` and together hold exactly ``count`` distinct ids;
  a page whose records span two projects is a problem of its own; an empty
  page belongs to no project; records without a ``project_id`` are the
  project ``(no project_id)``; records without a page are taken as declared;
- finds the call's ``taken_at`` (:func:`taken_at`): the one given, else the
  newest ``updated_at`` of its backups, else the newest ``taken_at`` the store
  had so far;
- builds the commit's :class:`~engine.store.manifest.IngestRecord` (:func:`record`).

Everything is columnar: the rows are matched to their pages by a join, never
one by one.

Example::

    problems = page_problems(rows, pages, "backups")
    if snapshot and problems:
        raise engine.errors.IncompleteExport(problems)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import numpy as np
import polars as pl

from engine.store.history import NO_PROJECT
from engine.store.layout import ROW, SEQ
from engine.store.manifest import IngestRecord, Manifest
from engine.store.read import dead_key

#: The columns of an ingest's rows this module reads.
NARROW: Final[tuple[str, ...]] = ("id", "project_id", "vault_id", "updated_at", SEQ, ROW)
#: ``taken_at`` as the manifest keeps it.
TAKEN_FORMAT: Final[str] = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class Page:
    """Where one response with a ``count`` lies: its file (``seq``) and records.

    Example: ``Page("backups", seq=3, first_row=0, records=1000, count=25_000)``.
    """

    kind: str
    seq: int
    first_row: int
    records: int
    count: int


@dataclass(frozen=True)
class Seen:
    """What an ingest call's manifest record keeps of the backups it read.

    Example: ``seen(rows).projects`` -> ``("p1", "p2")``.
    """

    projects: tuple[str, ...]
    vaults: tuple[str, ...]
    backups: int


def seen(rows: pl.DataFrame) -> Seen:
    """The projects (a missing one as :data:`NO_PROJECT`) and vaults of ``rows``, and their number.

    ``rows``: narrow backup rows with categorical ``project_id`` and ``vault_id``;
    each is made distinct before it becomes a string.
    """
    named = rows["project_id"].unique().cast(pl.String).fill_null(NO_PROJECT)
    vaults = rows["vault_id"].unique().cast(pl.String).drop_nulls().sort().to_list()
    return Seen(tuple(named.unique().sort().to_list()), tuple(vaults), rows.height)


def page_problems(rows: pl.DataFrame, pages: Sequence[Page], kind: str) -> list[str]:
    """The completeness problems of the pages of ``kind`` (module docstring), sorted.

    ``rows``: the call's typed records of ``kind`` (``id``, ``project_id``,
    ``_seq``, ``_row``). The wording is that of the reference model
    (:func:`engine.testing.reference.snapshot_problems`).

    Example: ``page_problems(rows, [Page("backups", 0, 0, 1, 3)], "backups")`` ->
    ``["project p1: the backups pages give count 3 but hold 1 distinct record(s)"]``.
    """
    mine = [page for page in pages if page.kind == kind]
    if not mine or rows.height == 0:
        return []
    placed = _placed(rows, mine)
    counts = pl.DataFrame(
        {"_page": range(len(mine)), "_count": [page.count for page in mine]},
        schema={"_page": pl.Int32, "_count": pl.Int64},
    )
    per_page = (
        placed.group_by("_page")
        .agg(pl.col("_project").unique().cast(pl.String).alias("projects"))
        .join(counts, on="_page")
    )
    mixed = per_page.filter(pl.col("projects").list.len() > 1)
    problems = [
        f"a {kind} page holds records of projects {', '.join(sorted(names))}: "
        "each page of a snapshot belongs to one project"
        for names in mixed["projects"].to_list()
    ]
    single = per_page.filter(pl.col("projects").list.len() == 1).select(
        "_page", pl.col("projects").list.first().alias("_project"), "_count"
    )
    groups = (
        placed.join(single.select("_page"), on="_page", how="semi")
        .group_by("_project")
        .agg(pl.col("id").n_unique().alias("found"))
        .with_columns(pl.col("_project").cast(pl.String))
        .join(
            single.group_by("_project").agg(pl.col("_count").unique().sort().alias("counts")),
            on="_project",
        )
        .sort("_project")
    )
    for project, found, counts in groups.select("_project", "found", "counts").iter_rows():
        if len(counts) != 1 or counts[0] != found:
            given = " and ".join(str(c) for c in counts)
            problems.append(
                f"project {project}: the {kind} pages give count {given} "
                f"but hold {found} distinct record(s)"
            )
    return problems


def collapsed(problems: Sequence[str]) -> list[str]:
    """``problems`` with each said once, followed by how many pages said it if more than one.

    A page mixing projects is a problem of its own, and an export of several
    projects in mixed pages would otherwise repeat it once per page.

    Example: ``collapsed(["a page ...", "a page ...", "project p1: ..."])`` ->
    ``["a page ... (2 pages)", "project p1: ..."]``.
    """
    counts = Counter(problems)
    return [f"{text} ({n} pages)" if n > 1 else text for text, n in counts.items()]


def _placed(rows: pl.DataFrame, pages: Sequence[Page]) -> pl.DataFrame:
    """``rows`` that lie in one of ``pages``: each row's ``id``, project and page number.

    Each row's page is found by a binary search of its ``(_seq, _row)``
    (packed as the store packs them, :func:`~engine.store.read.dead_key`)
    among the pages' first rows, with no sort or join of the rows: at ten
    million backups these frames are the biggest an ingest holds. The project
    stays categorical (4 bytes a row, where a string is about 48).
    """
    # An empty page holds no row (and may start where the next page of its file does).
    held = [i for i, page in enumerate(pages) if page.records]
    ordered = sorted(held, key=lambda i: (pages[i].seq, pages[i].first_row))
    placed = rows.select("id", pl.col("project_id").fill_null(NO_PROJECT).alias("_project"))
    if not ordered:
        return placed.clear().with_columns(pl.lit(None, pl.Int32).alias("_page"))
    bounds = pl.DataFrame(
        {
            SEQ: [pages[i].seq for i in ordered] * 2,
            ROW: [pages[i].first_row for i in ordered]
            + [pages[i].first_row + pages[i].records for i in ordered],
        },
        schema={SEQ: pl.Int64, ROW: pl.Int64},
    )
    edges = bounds.select(dead_key()).to_series().to_numpy()
    firsts, ends = edges[: len(ordered)], edges[len(ordered) :]
    packed = rows.select(dead_key()).to_series().to_numpy()
    at = np.searchsorted(firsts, packed, side="right") - 1
    inside = (at >= 0) & (packed < ends[np.maximum(at, 0)])
    number = np.array(ordered, dtype=np.int32)[np.maximum(at, 0)]
    placed = placed.with_columns(pl.Series("_page", number))
    return placed if inside.all() else placed.filter(pl.Series(inside))


def taken_at(given: datetime | None, rows: pl.DataFrame, previous: Manifest) -> str:
    """The call's ``taken_at`` as the manifest keeps it (``""``: nothing to take it from).

    Example: ``taken_at(None, rows, manifest)`` -> the newest ``updated_at`` of ``rows``.
    """
    if given is not None:
        return given.astimezone(UTC).strftime(TAKEN_FORMAT)
    newest = rows["updated_at"].max() if rows.height else None
    if isinstance(newest, datetime):
        return newest.astimezone(UTC).strftime(TAKEN_FORMAT)
    earlier = [r.taken_at for r in previous.ingests if r.taken_at]
    return max(earlier, default="")


def record(
    previous: Manifest,
    *,
    when: str,
    snapshot: bool,
    scope: str,
    seen: Seen,
    seqs: tuple[int, int],
    problems: Sequence[str],
    paged: bool,
    sightings: str | None,
) -> IngestRecord:
    """This call's record for the manifest's ``ingests``.

    Example: ``record(previous, when="2026-11-02T00:00:00.000000Z", snapshot=True, ...)``.
    """
    return IngestRecord(
        n=1 + max((r.n for r in previous.ingests), default=0),
        taken_at=when,
        snapshot=snapshot,
        scope=scope if snapshot else None,
        projects=seen.projects,
        vaults=seen.vaults,
        seqs=seqs,
        sightings=sightings,
        backups=seen.backups,
        complete=(not problems) if paged else None,
        why="; ".join(problems),
    )
