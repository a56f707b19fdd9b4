"""The native reader (engine._native, the crate in native/) against the oracle.

Generated dumps of every SPEC §1 form (pretty and compact pages, arrays of
responses, NDJSON of responses and of bare records, bare records, vault and
member pages), with unknown keys at any depth, nulls, huge and non-finite
numbers, escapes and non-ASCII text, whole or cut short or with a byte
changed, go through :func:`engine.ingest.forms.split_source` and through
tests/forms_oracle.py, the pure-Python reader it replaced: both refuse the
same files at the same place, or both give the same chunks of the same
records; the unknown keys the native walk finds are those the plain
definition finds.
"""

from __future__ import annotations

import contextlib
import json
import random

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from engine import _native
from engine.errors import InputError
from engine.ingest.forms import Chunk, Records, split_source
from engine.ingest.normalize import KNOWN_KEYS
from engine.ingest.sources import Source
from tests import forms_oracle

# --- JSON with numbers written as given -------------------------------------------


class Num(str):
    """A number's JSON text, written verbatim (``1e400``, 5,000 digits, ``-0``)."""


NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70).map(lambda n: Num(str(n))),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: Num(repr(f))),
    st.sampled_from(["1e400", "-1E+2", "0.5e-3", "-0", "9" * 400, "2.50"]).map(Num),
)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
NAMES = st.sampled_from(["x_tag", "fail_code", "Code", "ünïcode", 'q"uote', "x\\y", "status", "id"])
INSTANTS = st.sampled_from(
    ["2026-11-01T06:00:00Z", "2026-11-01T06:00:00.123456+08:00", "2026-11-01T06:00:00", "bad"]
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(NAMES | TEXT, inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def backups(draw: st.DrawFn) -> dict[str, object]:
    record: dict[str, object] = {"id": draw(TEXT | st.none()), "status": draw(TEXT)}
    record["created_at"] = draw(INSTANTS)
    if draw(st.booleans()):
        record["resource_size"] = draw(NUMBERS | TEXT)
    if draw(st.booleans()):
        record["extend_info"] = draw(st.dictionaries(NAMES, VALUES, max_size=3))
    for name in draw(st.lists(NAMES | TEXT, max_size=3)):
        record[name] = draw(VALUES)
    return record


def encode(value: object, rng: random.Random, pretty: bool, depth: int = 0) -> str:
    """JSON text of ``value`` with numbers verbatim and, when ``pretty``, random blanks."""
    blank = (lambda: rng.choice(["", " ", "\n  ", "\t", "\r\n"])) if pretty else (lambda: "")
    if isinstance(value, Num):
        return str(value)
    if isinstance(value, dict):
        items = [
            f"{blank()}{json.dumps(k)}{blank()}:{blank()}{encode(v, rng, pretty, depth + 1)}"
            for k, v in value.items()
        ]
        return "{" + ",".join(items) + blank() + "}"
    if isinstance(value, list):
        items = [blank() + encode(v, rng, pretty, depth + 1) for v in value]
        return "[" + ",".join(items) + blank() + "]"
    return json.dumps(value, ensure_ascii=rng.random() < 0.5)


@st.composite
def dumps(draw: st.DrawFn) -> bytes:
    """One dump file of a random form, sometimes damaged."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    form = draw(
        st.sampled_from(
            ["page", "pretty page", "array", "ndjson pages", "ndjson records", "bare", "single",
             "vaults", "members"]
        )
    )  # fmt: skip
    records = draw(st.lists(backups(), max_size=5))
    pretty = "pretty" in form or (form in ("array", "vaults", "members") and rng.random() < 0.5)

    def page(items: list[dict[str, object]], key: str = "backups") -> dict[str, object]:
        body: dict[str, object] = {key: items}
        if rng.random() < 0.8:
            body["count"] = Num(str(len(items)))
        return body

    if form in ("page", "pretty page"):
        text = encode(page(records), rng, pretty)
    elif form == "array":
        text = encode([page(records[:2]), page(records[2:])], rng, pretty)
    elif form == "ndjson pages":
        text = "\n".join(encode(page([r]), rng, False) for r in records) or encode(
            page([]), rng, False
        )
    elif form == "ndjson records":
        text = "\n\n".join(encode(r, rng, False) for r in records) + "\n"
    elif form == "bare":
        text = encode(records[0] if records else {"id": "a"}, rng, pretty)
    elif form == "single":
        text = encode({"backup": records[0] if records else None}, rng, pretty)
    else:
        key = form
        text = encode(
            page([{"id": r.get("id"), "x": r.get("status")} for r in records], key), rng, pretty
        )
    data = text.encode()
    damage = draw(st.sampled_from(["none", "none", "none", "cut", "byte"]))
    if damage == "cut" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "byte" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = (
            data[:at] + draw(st.sampled_from([b",", b"}", b"[", b'"', b"x", b" "])) + data[at + 1 :]
        )
    return data


# --- comparing the two readers --------------------------------------------------------


def _outcome(split: object, data: bytes) -> object:
    source = Source("f.json", data, "", len(data))
    try:
        chunks = split(source)  # type: ignore[operator]
    except InputError as err:
        return ("refused", err.location)
    return [_chunk(c) for c in chunks]


def _chunk(chunk: object) -> tuple[object, ...]:
    """A chunk as comparable data: its records decoded with numbers as written and
    repeated keys kept (the oracle re-encoded a bare record, escapes decoded)."""
    assert isinstance(chunk, (Chunk, forms_oracle.Chunk))
    if isinstance(chunk, Chunk):  # the native reader keeps records compact, as written
        assert all(_native.compact(r) == r for r in chunk.records)
    texts = [_decoded(bytes(r)) for r in chunk.records]
    return (chunk.kind, chunk.where, chunk.first_row, chunk.count, texts, chunk.ndjson is not None)


def _decoded(record: bytes) -> object:
    try:
        return json.loads(record, object_pairs_hook=list, parse_float=str, parse_int=str)
    except ValueError:  # not JSON alone (never from either reader): compare the text
        return record


@given(dumps())
def test_native_splitting_agrees_with_the_oracle(data: bytes) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        assume(False)  # read_source refuses these before splitting
    assert _outcome(split_source, data) == _outcome(forms_oracle.split_source, data)


@given(st.lists(backups(), min_size=1, max_size=6), st.integers(0, 2**32))
def test_unknown_keys_are_those_of_the_definition(
    records: list[dict[str, object]], seed: int
) -> None:
    rng = random.Random(seed)
    texts = [_native.compact(encode(r, rng, True).encode()) for r in records]
    names, paths = _native.unknown_keys(b"".join(texts), sorted(KNOWN_KEYS))
    want_names, want_paths = forms_oracle.unknown_keys_of(texts, KNOWN_KEYS)
    assert set(names) == want_names
    assert {tuple(p) for p in paths} == want_paths
    assert names == sorted(names) and len(paths) == len(want_paths)


# --- fixed cases --------------------------------------------------------------------


def test_records_slice_join_and_concat() -> None:
    records = Records.of([b'{"a":1}', b"[]", b'"x"'])
    assert list(records) == [b'{"a":1}', b"[]", b'"x"']
    assert records[1:].text == b'[]"x"' and list(records[1:].offsets) == [0, 2, 5]
    assert records[1:].lines() == b'[]\n"x"'
    joined = Records.concat([records[2:], records[:1]])
    assert list(joined) == [b'"x"', b'{"a":1}']
    assert len(Records.concat([])) == 0 and records[-1] == b'"x"'


@pytest.mark.parametrize(
    ("data", "where", "words"),
    [
        (b'{"backups": [' + b"[" * 1000 + b"]" * 1000 + b"]}", "", "nested too deeply"),
        (b'{"backups": [1,]}', "", "line 1"),
        (b'{"id": "a"}\n{"id": "b",}\n', "line 2", "not valid JSON"),
        (b'{"backups": {"id": "a"}}', "", "'backups' must be a list of records (got an object)"),
        (b'{"count": 1, "backups": [{"id": "a"}]}\n[1]\n', "line 2", "got an array"),
    ],
)
def test_refusals_name_the_place(data: bytes, where: str, words: str) -> None:
    with pytest.raises(InputError) as caught:
        split_source(Source("f.json", data, "", len(data)))
    assert caught.value.location.where == where
    assert words in str(caught.value)


def test_the_native_functions_refuse_spans_outside_the_text() -> None:
    with pytest.raises(ValueError, match="not inside"):
        _native.records(b"[1]", 0, 9)
    with pytest.raises(ValueError, match="offsets must"):
        _native.join_lines(b"{}", b"\x05" + b"\x00" * 15)


@given(st.binary(max_size=40), st.integers(0, 50), st.integers(0, 50))
def test_the_native_functions_never_panic_on_any_bytes(text: bytes, start: int, end: int) -> None:
    """Rust panics must not cross into Python: bad input is a ValueError or an answer."""
    for call in (
        lambda: _native.members(text, start, end),
        lambda: _native.elements(text, start, end),
        lambda: _native.records(text, start, end),
        lambda: _native.compact(text),
        lambda: _native.lines(text),
        lambda: _native.unknown_keys(text, ["id"]),
        lambda: _native.join_lines(text, (start).to_bytes(8, "little") + end.to_bytes(8, "little")),
        lambda: _native.instants(text, text, None, start, end),
    ):
        with contextlib.suppress(ValueError):
            call()
