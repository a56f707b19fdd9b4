"""Paging: walking every page by marker and by offset gives the unpaged result exactly once."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from engine import spec
from engine.backends.resident import Resident
from engine.inventory import Inventory
from engine.testing.strategies import inventories


class PagingWalk(RuleBasedStateMachine):
    """Walk one sorted, filtered result page by page, by marker or by offset."""

    #: Page with engine.backends.resident (what `cbrq serve` answers from) instead of execute.
    resident = False
    #: The backend that pages (engine.backends); the unpaged answer is always polars'.
    engine = "polars"

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.inv: Inventory | None = None
        self.held: Resident | None = None
        self.query = ""
        self.expected: list[str] = []
        self.seen: list[str] = []
        self.marker: str | None = None
        self.offset = 0
        self.done = False
        self.steps = 0

    @initialize(
        generated=inventories(max_backups=15),
        sort=st.lists(st.sampled_from(spec.SORT_KEYS), unique=True, max_size=3),
        descending=st.lists(st.booleans(), min_size=3, max_size=3),
        statuses=st.lists(st.sampled_from(spec.STATUSES[:5]), max_size=3),
    )
    def load(self, generated, sort, descending, statuses) -> None:  # type: ignore[no-untyped-def]
        folder = Path(self.tmp.name)
        (folder / "b.json").write_text(json.dumps({"backups": generated.backups}))
        self.inv = Inventory.from_dumps([str(folder / "b.json")])
        keys = ",".join(
            f"{k}:{'desc' if d else 'asc'}" for k, d in zip(sort, descending, strict=False)
        )
        parts = [f"sort={keys}"] if keys else []
        parts += [f"status={s}" for s in statuses]
        self.query = "&".join(parts)
        self.expected = self.inv.query(self.query).ids
        if self.resident:
            self.held = Resident.build(self.inv)

    def _page(self, extra: str) -> list[str]:
        assert self.inv is not None
        query = "&".join(p for p in [self.query, extra] if p)
        if self.held is not None:
            return self.held.answer(self.inv.parse(query)).ids
        return self.inv.using(self.engine).query(query, columns=["id"]).ids

    @precondition(lambda self: not self.done and self.offset == 0)
    @rule(limit=st.integers(1, 6))
    def next_by_marker(self, limit: int) -> None:
        marker = f"&marker={self.marker}" if self.marker else ""
        page = self._page(f"limit={limit}{marker}")
        self._absorb(page, limit)
        if page:
            self.marker = page[-1]

    @precondition(lambda self: not self.done and self.marker is None)
    @rule(limit=st.integers(1, 6))
    def next_by_offset(self, limit: int) -> None:
        page = self._page(f"limit={limit}&offset={self.offset}")
        self._absorb(page, limit)
        self.offset += len(page)

    @precondition(lambda self: self.done)
    @rule()
    def walk_again(self) -> None:
        self.seen, self.marker, self.offset, self.done, self.steps = [], None, 0, False, 0

    def _absorb(self, page: list[str], limit: int) -> None:
        self.steps += 1
        assert len(page) <= limit
        assert not set(page) & set(self.seen), "a row came twice"
        self.seen.extend(page)
        if len(page) < limit:
            self.done = True

    @invariant()
    def prefix_of_unpaged(self) -> None:
        assert self.seen == self.expected[: len(self.seen)]
        assert self.steps <= len(self.expected) + 2, "paging does not end"

    @invariant()
    def complete_when_done(self) -> None:
        if self.done:
            assert self.seen == self.expected

    def teardown(self) -> None:
        if self.inv is not None:
            self.inv.close()
        self.tmp.cleanup()


class ResidentPagingWalk(PagingWalk):
    """The same walk through the server's executor, against the engine's unpaged answer."""

    resident = True


class DuckdbPagingWalk(PagingWalk):
    """The same walk with DuckDB paging, against the polars engine's unpaged answer."""

    engine = "duckdb"


TestPaging = PagingWalk.TestCase
TestResidentPaging = ResidentPagingWalk.TestCase
TestDuckdbPaging = DuckdbPagingWalk.TestCase
# A quarter of the profile's walks: each page is a DuckDB query (ci: 41 s at full count).
TestDuckdbPaging.settings = settings(max_examples=max(5, settings.default.max_examples // 4))
