"""An analysis' rows as JSON text, written by polars: the bytes Python's ``json.dumps`` gives.

Analyses' ``-f json`` and ``-f ndjson`` have always been ``json.dumps(...,
ensure_ascii=False)`` of the rows as dicts (``", "`` and ``": "`` between
items, floats as ``repr`` writes them, instants in the API's form, no
infinity, the JSON text of :data:`~engine.analyses.JSON_TEXT_COLUMNS` as the
value it encodes). :func:`json_objects` writes the same text one column
expression at a time, so no row goes through Python: a key is encoded once,
a value by its type (strings by polars' JSON encoder, which escapes as
Python does; floats by polars, put in ``repr``'s form). A frame holding a type
with no rule here (dates, durations, ...) is left to Python (:func:`json_lines`).

Example::

    >>> import polars as pl
    >>> json_objects(pl.DataFrame({"id": ["a"], "size_gb": [1e-05]})).to_list()
    ['{"id": "a", "size_gb": 1e-05}']
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

import polars as pl

from engine.analyses import JSON_TEXT_COLUMNS, json_rows
from engine.instants import canonical_expr

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

#: A JSON string literal (escapes included) or a separator between items.
_TOKEN: Final[str] = r'"(?:[^"\\]|\\.)*"|[,:]'
_INTEGERS: Final = (
    pl.Int8,
    pl.Int16,
    pl.Int32,
    pl.Int64,
    pl.UInt8,
    pl.UInt16,
    pl.UInt32,
    pl.UInt64,
)


def json_objects(frame: pl.DataFrame, first: tuple[str, str] | None = None) -> pl.Series:
    """Each row of ``frame`` as ``json.dumps(row, ensure_ascii=False)`` writes it.

    ``first``: a key and its JSON text written before the row's (ndjson's
    ``"at"``); a column of that name takes its place, as ``{"at": at, **row}``
    does in Python. Raises :class:`TypeError` for a type :func:`writable`
    refuses.

    Example: ``json_objects(frame, ("at", '"2026-11-30T00:00:00.000000"'))[0]``.
    """
    parts: list[pl.Expr] = []
    names = list(frame.columns)
    if first is not None:
        key, text = first
        value = _value(pl.col(key), frame.schema[key], key) if key in names else pl.lit(text)
        parts.append(_item(key, value))
        names = [name for name in names if name != key]
    parts += [_item(name, _value(pl.col(name), frame.schema[name], name)) for name in names]
    if not parts:
        return pl.Series("json", ["{}"] * frame.height, pl.String)
    items = pl.concat_str(_separated(parts, ", "))
    return frame.select(pl.concat_str(pl.lit("{"), items, pl.lit("}")).alias("json")).to_series()


def writable(frame: pl.DataFrame) -> bool:
    """Whether :func:`json_objects` has a rule for every column type of ``frame``.

    Example: ``writable(pl.DataFrame({"d": [date(2026, 1, 1)]}))`` -> ``False``.
    """
    return all(_writable(dtype) for dtype in frame.schema.values())


def _writable(dtype: PolarsDataType) -> bool:
    if isinstance(dtype, pl.List):
        return _writable(dtype.inner)
    if isinstance(dtype, pl.Struct):
        return all(_writable(f.dtype) for f in dtype.fields)
    return isinstance(dtype, pl.Datetime) or dtype in (
        *_INTEGERS,
        pl.Float32,
        pl.Float64,
        pl.String,
        pl.Boolean,
        pl.Null,
    )


def _separated(parts: list[pl.Expr], separator: str) -> list[pl.Expr]:
    out: list[pl.Expr] = []
    for number, part in enumerate(parts):
        out += [pl.lit(separator), part] if number else [part]
    return out


def _item(key: str, value: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit(json.dumps(key, ensure_ascii=False) + ": "), value)


def _value(expr: pl.Expr, dtype: PolarsDataType, name: str = "") -> pl.Expr:
    """The JSON text of each value of ``expr`` (``null`` for a null)."""
    if name in JSON_TEXT_COLUMNS and dtype == pl.String:
        # Compact JSON text made Python's default: a space after each separator
        # outside strings (a string gets one too, then loses it).
        text = expr.str.replace_all(_TOKEN, "$0 ").str.replace_all(r'("(?:[^"\\]|\\.)*") ', "$1")
    elif dtype == pl.String:
        text = pl.struct(expr.alias("v")).struct.json_encode().str.slice(5).str.strip_suffix("}")
    elif dtype == pl.Boolean:
        text = pl.when(expr).then(pl.lit("true")).otherwise(pl.lit("false"))
    elif dtype in _INTEGERS:
        text = expr.cast(pl.String)
    elif dtype in (pl.Float32, pl.Float64):
        text = _float(expr.cast(pl.Float64))
    elif isinstance(dtype, pl.Datetime):
        text = pl.concat_str(pl.lit('"'), canonical_expr(expr), pl.lit('"'))
    elif isinstance(dtype, pl.List):
        inner = _value(pl.element(), dtype.inner)
        text = pl.concat_str(pl.lit("["), expr.list.eval(inner).list.join(", "), pl.lit("]"))
    elif isinstance(dtype, pl.Struct):
        fields = [_item(f.name, _value(expr.struct.field(f.name), f.dtype)) for f in dtype.fields]
        text = pl.concat_str([pl.lit("{"), *_separated(fields, ", "), pl.lit("}")])
    elif dtype == pl.Null:
        text = pl.lit(None, pl.String)
    else:
        raise TypeError(f"no JSON rule for {dtype}")
    return pl.when(expr.is_not_null()).then(text).otherwise(pl.lit("null"))


def _float(expr: pl.Expr) -> pl.Expr:
    """Floats as ``repr`` writes them; JSON has no infinity or NaN, so those are ``null``.

    polars writes the same shortest digits as ``repr`` but in another form
    below 1e-4: ``0.0000d...`` (``repr``: ``d.…e-05``) and ``1e-7`` (``1e-07``).
    """
    text = (
        expr.cast(pl.String)
        .str.replace(r"e-(\d)$", "e-0${1}")
        .str.replace(r"^(-?)0\.0000(\d)(\d+)$", "${1}${2}.${3}e-05")
        .str.replace(r"^(-?)0\.0000(\d)$", "${1}${2}e-05")
    )
    return pl.when(expr.is_finite()).then(text).otherwise(pl.lit("null"))


def json_lines(frame: pl.DataFrame, first: tuple[str, str] | None = None) -> pl.Series:
    """:func:`json_objects` of ``frame``, or the same text through Python for a type it lacks.

    Example: ``json_lines(inv.rpo().frame)[0]``.
    """
    if writable(frame):
        return json_objects(frame, first)
    rows = json_rows(frame)
    if first is not None:
        key, text = first
        rows = [{key: json.loads(text), **row} for row in rows]
    return pl.Series("json", [json.dumps(row, ensure_ascii=False) for row in rows], pl.String)
