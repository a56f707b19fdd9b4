"""Phase: choose a page's fields (``--fields id,name,extend_info.incremental``).

A field is a dotted path into the typed columns: a top-level column
(``status``), a field of a struct (``extend_info.incremental``), or a field
of every element of a list (``replication_records.status``: the list of
their statuses). Paths are checked against the table's schema, so an unknown
name is an error that says what that level holds. Records keep their nesting
in JSON (``{"id": ..., "extend_info": {"incremental": true}}``); the other
formats get one column per path, named by the path. Imports only polars.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import polars as pl

from engine.errors import CbrqError

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

#: A tree of chosen paths: each name maps to the names chosen under it, or to
#: ``None`` when the whole value is chosen.
Tree = dict[str, "Tree | None"]

SEPARATOR: Final[str] = "."


class FieldError(CbrqError):
    """A ``--fields`` list naming a field the records do not have (CLI exit 2).

    Example::

        >>> err = FieldError("extend_info.incremntal", "extend_info", ["incremental"])
        >>> str(err).endswith("did you mean 'extend_info.incremental'?")
        True
    """

    exit_status = 2

    def __init__(self, path: str, parent: str, allowed: Sequence[str]) -> None:
        if not path:
            super().__init__(f"--fields: name at least one field (fields: {', '.join(allowed)})")
            return
        if not allowed:
            super().__init__(f"--fields: unknown field {path!r} ({parent} has no fields)")
            return
        name = path.rsplit(SEPARATOR, 1)[-1]
        near = difflib.get_close_matches(name, allowed, n=1)
        hint = ""
        if near:
            hint = f"; did you mean {SEPARATOR.join([*path.split(SEPARATOR)[:-1], near[0]])!r}?"
        where = f"fields of {parent}" if parent else "fields"
        super().__init__(f"--fields: unknown field {path!r} ({where}: {', '.join(allowed)}){hint}")


@dataclass(frozen=True)
class Fields:
    """A checked list of field paths, in the order given.

    Example::

        chosen = Fields.parse("id,extend_info.incremental", inv.lazy().collect_schema())
        page.select(chosen.columns())      # id | extend_info.incremental
    """

    paths: tuple[tuple[str, ...], ...]
    schema: Mapping[str, PolarsDataType]

    @classmethod
    def parse(cls, text: str, schema: Mapping[str, PolarsDataType]) -> Fields:
        """Read ``a,b.c`` against ``schema``; raises :class:`FieldError` for a name it lacks.

        Example::

            >>> Fields.parse("id,status", {"id": pl.String, "status": pl.String}).paths
            (('id',), ('status',))
        """
        names = [name.strip() for name in text.split(",") if name.strip()]
        if not names:
            raise FieldError("", "", list(schema))
        paths = []
        for name in dict.fromkeys(names):  # a repeated name counts once
            path = tuple(name.split(SEPARATOR))
            _dtype_at(path, schema)
            paths.append(path)
        return cls(tuple(paths), schema)

    @property
    def top(self) -> list[str]:
        """The top-level columns the paths need (what a query must read)."""
        return list(dict.fromkeys(path[0] for path in self.paths))

    def columns(self) -> list[pl.Expr]:
        """One expression per path, named by the path (``extend_info.incremental``).

        Example: ``page.select(fields.columns())``.
        """
        out = []
        for path in self.paths:
            expr = _get(pl.col(path[0]), self.schema[path[0]], path[1:])
            out.append(expr.alias(SEPARATOR.join(path)))
        return out

    def records(self) -> list[pl.Expr]:
        """The chosen values with their nesting kept: one expression per top-level name.

        Example: ``page.select(fields.records())`` for JSON output.
        """
        return [
            _pick(pl.col(name), self.schema[name], sub).alias(name)
            for name, sub in self._tree().items()
        ]

    def _tree(self) -> Tree:
        tree: Tree = {}
        for path in self.paths:
            level: Tree | None = tree
            for depth, name in enumerate(path):
                assert level is not None
                last = depth == len(path) - 1
                if last:
                    level[name] = None  # the whole value, whatever was chosen under it
                    break
                if name in level and level[name] is None:
                    break  # the whole value is chosen already
                level = level.setdefault(name, {})
        return tree


def _fields_of(dtype: PolarsDataType) -> dict[str, PolarsDataType] | None:
    """The named fields under a value of ``dtype`` (through lists), or ``None``."""
    while isinstance(dtype, pl.List | pl.Array):
        dtype = dtype.inner
    if isinstance(dtype, pl.Struct):
        return {field.name: field.dtype for field in dtype.fields}
    return None


def _dtype_at(path: tuple[str, ...], schema: Mapping[str, PolarsDataType]) -> PolarsDataType:
    level: Mapping[str, PolarsDataType] | None = schema
    dtype: PolarsDataType | None = None
    for depth, name in enumerate(path):
        parent = SEPARATOR.join(path[:depth])
        if level is None or name not in level:
            if level is None:  # under a plain value
                raise FieldError(SEPARATOR.join(path), parent, [])
            raise FieldError(SEPARATOR.join(path), parent, list(level))
        dtype = level[name]
        level = _fields_of(dtype)
    assert dtype is not None
    return dtype


def _get(expr: pl.Expr, dtype: PolarsDataType, rest: tuple[str, ...]) -> pl.Expr:
    """The value at ``rest`` under ``expr``; through a list, the list of those values."""
    if not rest:
        return expr
    if isinstance(dtype, pl.List):
        return expr.list.eval(_get(pl.element(), dtype.inner, rest))
    assert isinstance(dtype, pl.Struct)
    inner = {field.name: field.dtype for field in dtype.fields}[rest[0]]
    return _get(expr.struct.field(rest[0]), inner, rest[1:])


def _pick(expr: pl.Expr, dtype: PolarsDataType, tree: Tree | None) -> pl.Expr:
    """``expr`` keeping only the fields of ``tree`` (nesting and lists kept)."""
    if tree is None:
        return expr
    if isinstance(dtype, pl.List):
        return expr.list.eval(_pick(pl.element(), dtype.inner, tree))
    assert isinstance(dtype, pl.Struct)
    inner = {field.name: field.dtype for field in dtype.fields}
    picked = [_pick(expr.struct.field(k), inner[k], sub).alias(k) for k, sub in tree.items()]
    return pl.when(expr.is_not_null()).then(pl.struct(picked))  # a null stays null
