"""Phase: choose a page's fields (``--fields id,name,extend_info.incremental``).

A field is a dotted path into the typed columns: a top-level column
(``status``), a field of a struct (``extend_info.incremental``), or a field
of every element of a list (``replication_records.status``: the list of
their statuses). Paths are checked against the table's schema, so an unknown
name is an error that says what that level holds. Where the records' text is
at hand (queries), a name the schema lacks, and no near miss of one, is a kept
unknown key read from ``_payload`` (``fail_code.Description``), as text (an
object or list as its JSON); ``_payload.NAME`` always reads the kept key. Records keep their nesting
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
#: The column holding each record's text (:mod:`engine.store.schema`).
PAYLOAD: Final[str] = "_payload"


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
    #: The paths read from the records' text (kept unknown keys), not from typed columns.
    kept: frozenset[tuple[str, ...]] = frozenset()

    @classmethod
    def parse(
        cls, text: str, schema: Mapping[str, PolarsDataType], *, payload: bool = False
    ) -> Fields:
        """Read ``a,b.c`` against ``schema``; raises :class:`FieldError` for a name it lacks.

        ``payload``: the records' text can be read, so a name the schema lacks
        (and that is no near miss of one) is a kept unknown key.

        Example::

            >>> Fields.parse("id,status", {"id": pl.String, "status": pl.String}).paths
            (('id',), ('status',))
        """
        names = [name.strip() for name in text.split(",") if name.strip()]
        if not names:
            raise FieldError("", "", list(schema))
        paths, kept = [], set()
        for name in dict.fromkeys(names):  # a repeated name counts once
            path = tuple(name.split(SEPARATOR))
            if payload and _is_kept(path, schema):
                path = path[1:] if path[0] == PAYLOAD else path
                kept.add(path)
            else:
                _dtype_at(path, schema)
            paths.append(path)
        return cls(tuple(paths), schema, frozenset(kept))

    @property
    def top(self) -> list[str]:
        """The top-level columns the paths need (what a query must read)."""
        return list(dict.fromkeys(PAYLOAD if p in self.kept else p[0] for p in self.paths))

    def columns(self) -> list[pl.Expr]:
        """One expression per path, named by the path (``extend_info.incremental``).

        Example: ``page.select(fields.columns())``.
        """
        return [self._value(path).alias(SEPARATOR.join(path)) for path in self.paths]

    def _value(self, path: tuple[str, ...]) -> pl.Expr:
        if path in self.kept:
            return _kept(path)
        return _get(pl.col(path[0]), self.schema[path[0]], path[1:])

    def records(self) -> list[pl.Expr]:
        """The chosen values with their nesting kept: one expression per top-level name.

        Example: ``page.select(fields.records())`` for JSON output.
        """
        return [
            (
                _pick(pl.col(name), self.schema[name], sub)
                if name in self.schema
                else _pick_kept((name,), sub)
            ).alias(name)
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


def _is_kept(path: tuple[str, ...], schema: Mapping[str, PolarsDataType]) -> bool:
    """Whether ``path`` names a kept unknown key: ``_payload.x``, or a top name the schema
    lacks that is no near miss of one of its names (``nmae`` stays an error with a hint)."""
    if path[0] == PAYLOAD:
        return len(path) > 1 and all(path[1:]) and path[1] not in schema
    if path[0] in schema or not all(path) or path[0].startswith("_"):
        return False
    return not difflib.get_close_matches(path[0], list(schema), n=1)


def _kept(path: tuple[str, ...]) -> pl.Expr:
    """The kept key at ``path`` in each record's text: a scalar as text, an object as JSON."""
    selector = "$" + "".join(f"[{_quoted(name)}]" for name in path)
    return pl.col(PAYLOAD).str.json_path_match(selector)


def _quoted(name: str) -> str:
    """``name`` as a JSONPath bracket key."""
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _pick_kept(path: tuple[str, ...], tree: Tree | None) -> pl.Expr:
    """The kept keys of ``tree`` under ``path``, nested as chosen (absent: null)."""
    if tree is None:
        return _kept(path)
    picked = [_pick_kept((*path, k), sub).alias(k) for k, sub in tree.items()]
    return pl.when(_kept(path).is_not_null()).then(pl.struct(picked))


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
