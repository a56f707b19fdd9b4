"""Records as JSON text: put their timestamps into the API's form on the way out.

The store keeps each record's text as dumped (compact, every key and number
verbatim) in ``_payload``, so ingest never rewrites text. What cbrq prints
(query pages, ``cbrq export``, the emulator's responses) goes through
:func:`canonical_payloads`, which rewrites every timestamp value to the
API's form (SPEC §1: ``YYYY-MM-DDTHH:MM:SS.ffffff``, UTC). Pages are small,
and records already in that form cost one regex count. Imports only polars.
"""

from __future__ import annotations

import functools
import re
from typing import Final

import polars as pl

from engine.instants import canonical, canonical_expr, instant_expr
from engine.spec import TIMESTAMP_KEYS

#: A timestamp key and the opening quote of its value.
_TS_KEY: Final[str] = r'"(?:' + "|".join(TIMESTAMP_KEYS) + r')"\s*:\s*"'
#: A value in the API's form, with its closing quote.
_API_FORM: Final[str] = r'[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}"'
#: A ``"timestamp_key": "value"`` pair, whatever the value's form.
TS_PAIR: Final[str] = _TS_KEY + r'[^"\\]*"'
#: The same pair with its value already in the API's form.
CANONICAL_TS_PAIR: Final[str] = _TS_KEY + _API_FORM


#: Up to this many records (a page), the texts are rewritten by Python's ``re``
#: in one pass over the joined page: polars' first string pass after a query's
#: page fetch cost 13-30 ms at 1M (measured 2026-12-01), the Python pass about
#: 1 ms a page.
SMALL: Final[int] = 5_000

#: A pair whose value is not in the API's form: (key part, value).
_OTHER_PAIR: Final = re.compile("(" + _TS_KEY + ")(?!" + _API_FORM + r')([^"\\]*)"')


def canonical_payloads(payload: pl.Series) -> pl.Series:
    """``payload`` (records as JSON text) with every timestamp in the API's form.

    Only records holding a timestamp pair not already in that form are
    looked at; among those the work is on distinct ``"key": "value"``
    pairs, replaced in one multi-pattern pass. Everything else in the text
    stays byte for byte.

    Example::

        canonical_payloads(pl.Series(['{"id":"a","created_at":"2020-01-01T08:00:00+08:00"}']))
        # -> ['{"id":"a","created_at":"2020-01-01T00:00:00.000000"}']
    """
    if payload.len() == 0:
        return payload
    if payload.len() <= SMALL:
        return pl.Series(payload.name, _canonical_texts(payload.to_list()), pl.String)
    counts = payload.to_frame("p").select(
        pl.col("p").str.count_matches(TS_PAIR).alias("pairs"),
        pl.col("p").str.count_matches(CANONICAL_TS_PAIR).alias("canonical"),
    )
    rewrite = counts["pairs"] != counts["canonical"]
    if not rewrite.any():
        return payload
    rows = payload.filter(rewrite)
    pairs = rows.str.extract_all(TS_PAIR).explode().drop_nulls().unique().to_frame("pair")
    value = pl.col("pair").str.extract(r'"([^"\\]*)"$')
    fixes = (
        pairs.with_columns(
            prefix=pl.col("pair").str.extract(r'^(.*:\s*)"[^"\\]*"$'),
            new=canonical_expr(instant_expr(value)),
        )
        .filter(pl.col("new").is_not_null() & (pl.col("new") != value))
        .select("pair", pl.concat_str(pl.col("prefix"), pl.lit('"'), "new", pl.lit('"')))
    )
    if fixes.height == 0:
        return payload
    fixed = rows.str.replace_many(fixes["pair"].to_list(), fixes.to_series(1).to_list())
    return payload.scatter(rewrite.arg_true(), fixed)


def _canonical_texts(texts: list[str | None]) -> list[str | None]:
    """Records' texts with their timestamps in the API's form (same rule as the column path).

    The page is rewritten as one text, joined with NUL (which JSON text
    never holds raw), in one pass of the regex: one call instead of two per
    record, and a Python call only for a pair whose value is not in the
    API's form.
    """
    if any(text is None for text in texts):
        return [None if text is None else _canonical_texts([text])[0] for text in texts]
    joined = "\x00".join(texts)  # type: ignore[arg-type]
    if _OTHER_PAIR.search(joined) is None:
        return texts
    fixed: list[str | None] = list(_OTHER_PAIR.sub(_fix_pair, joined).split("\x00"))
    return fixed


def _fix_pair(match: re.Match[str]) -> str:
    new = _canonical_value(match[2])
    return match[0] if new is None else f'{match[1]}{new}"'


@functools.lru_cache(maxsize=65_536)
def _canonical_value(value: str) -> str | None:
    return canonical(value)
