"""The SPEC §6 page check places each backup on the page it came from.

``_placed`` finds a row's page by a binary search of packed ``(_seq, _row)``
keys; here it is held to the plain rule (the page of the row's file whose
records range holds the row) on generated layouts: several files, pages in
any order, rows outside every page (a file without counts), gaps.
"""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from engine.ingest.snapshot import Page, _placed


@st.composite
def layouts(draw: st.DrawFn) -> tuple[list[Page], list[tuple[int, int]]]:
    pages: list[Page] = []
    rows: list[tuple[int, int]] = []
    for seq in draw(st.lists(st.integers(0, 5), unique=True, max_size=4)):
        at = 0
        for _ in range(draw(st.integers(0, 3))):
            at += draw(st.integers(0, 3))  # a gap: rows there lie in no page
            size = draw(st.integers(0, 4))
            pages.append(Page("backups", seq, at, size, draw(st.integers(0, 9))))
            at += size
        rows += [(seq, row) for row in range(at + draw(st.integers(0, 3)))]
    order = draw(st.permutations(range(len(pages))))
    return [pages[i] for i in order], draw(st.permutations(rows))


@given(layouts())
def test_each_row_is_placed_on_the_page_that_holds_it(
    layout: tuple[list[Page], list[tuple[int, int]]],
) -> None:
    pages, keys = layout
    rows = pl.DataFrame(
        {
            "id": list(range(len(keys))),
            "project_id": ["p1"] * len(keys),
            "_seq": [seq for seq, _ in keys],
            "_row": [row for _, row in keys],
        },
        schema={"id": pl.UInt64, "project_id": pl.Categorical, "_seq": pl.Int32, "_row": pl.Int32},
    )
    expected = {
        i: number
        for i, (seq, row) in enumerate(keys)
        for number, page in enumerate(pages)
        if page.seq == seq and page.first_row <= row < page.first_row + page.records
    }
    placed = _placed(rows, pages)
    assert dict(zip(placed["id"].to_list(), placed["_page"].to_list(), strict=True)) == expected
