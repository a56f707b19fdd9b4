"""Bad dumps: a message naming file, record and field; exit 1; the store untouched."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.api import ingest
from engine.cli import main
from tests.conftest import snapshot
from tests.records import backup, page

Write = Callable[[str, str | bytes], Path]

GOOD = page(backup("a"), backup("b"))

CASES: list[tuple[str, str | bytes, list[str]]] = [
    ("malformed.json", '{"count": 1, "backups": [ {"id": "x",, } ]}', ["not valid JSON", "line 1"]),
    ("truncated.json.gz", gzip.compress(GOOD.encode())[:-30], ["truncated gzip"]),
    ("nobackups.json", '{"count": 3}', ["'count' but no 'backups'"]),
    ("notcbr.json", '{"foo": 1}', ["not a CBR response", "foo"]),
    ("noid.json", page(backup("a"), {"name": "x"}), ["record 2", "'id'", "required"]),
    (
        "wrongtype.json",
        page(backup("a"), backup("b", resource_size="40GB")),
        ["record 2", "'resource_size'", '"40GB"', "expected an integer"],
    ),
    (
        "badtime.json",
        page(backup("a", created_at="21/02/2020 07:00")),
        ["record 1", "'created_at'", "21/02/2020 07:00", "expected a timestamp"],
    ),
    (
        "nested.json",
        page(backup("a", children=[backup("c", updated_at="2020-13-01T00:00:00")])),
        ["record 1", "children[0].updated_at", "2020-13-01T00:00:00"],
    ),
    (
        "badutf8.json",
        page(backup("a", name="cafe")).encode().replace(b"cafe", b"caf\xff\xfe"),
        ["invalid UTF-8", "line"],
    ),
    (
        "lines.ndjson",
        json.dumps(backup("a")) + "\n\n" + json.dumps(backup("b", incremental="yes")) + "\n",
        ["lines.ndjson: line 3", "'incremental'", "expected true or false"],
    ),
    ("dupkey.json", '{"backups": [{"id": "a", "id": "b"}]}', ["record 1", "'id'", "twice"]),
    ("empty.json", "", ["the file is empty"]),
]


@pytest.mark.parametrize(("name", "content", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_file_is_refused_and_store_unchanged(
    write: Write, store: Path, name: str, content: str | bytes, expected: list[str]
) -> None:
    ingest([str(write("good.json", GOOD))], store)
    before = snapshot(store)
    bad = write(name, content)
    later = write("zz-later.json", page(backup("z")))
    result = CliRunner().invoke(main, ["ingest", str(bad), str(later), "--store", str(store)])
    assert result.exit_code == 1, result.output
    message = result.stderr
    assert message.startswith(f"cbrq: error: {bad}")
    for part in expected:
        assert part in message
    assert snapshot(store) == before


def test_error_after_staged_batches_leaves_store_unchanged(
    write: Write, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.ingest.pipeline

    monkeypatch.setattr(engine.ingest.pipeline, "BATCH_BYTES", 1)  # stage a part per file
    ingest([str(write("good.json", GOOD))], store)
    before = snapshot(store)
    files = [write(f"ok{i}.json", page(backup(f"n{i}"))) for i in range(3)]
    bad = write("zbad.json", page(backup("q", status=7)))
    result = CliRunner().invoke(main, ["ingest", *map(str, [*files, bad]), "--store", str(store)])
    assert result.exit_code == 1
    assert "zbad.json: record 1: field 'status' = 7: expected a string" in result.stderr
    assert snapshot(store) == before


def test_failure_at_the_switch_leaves_store_unchanged(
    write: Write, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.store.write

    ingest([str(write("good.json", GOOD))], store)
    before = snapshot(store)

    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(engine.store.write.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        ingest([str(write("more.json", page(backup("c"))))], store)
    monkeypatch.undo()
    assert snapshot(store) == before


def test_lenient_quarantines_bad_records_and_keeps_good_ones(write: Write, store: Path) -> None:
    content = page(backup("a"), backup("b", resource_size="40GB"), {"name": "no id"}, backup("c"))
    bad_file = write("mixed.json", content)
    broken = write("broken.json", "{nope")
    result = CliRunner().invoke(
        main, ["ingest", "--lenient", str(bad_file), str(broken), "--store", str(store)]
    )
    assert result.exit_code == 0, result.output
    assert "quarantined: 3" in result.stderr
    from engine.store.manifest import read_manifest
    from engine.store.read import scan

    manifest = read_manifest(store)
    assert sorted(scan(store, "backups").collect()["id"].to_list()) == ["a", "c"]
    rows = scan(store, "backups").collect().sort("id")["_row"].to_list()
    assert rows == [0, 3]  # good records keep their place in the file
    assert manifest.quarantine is not None
    lines = [json.loads(x) for x in (store / manifest.quarantine).read_text().splitlines()]
    found = {(Path(q["source"]).name, q["where"]): q for q in lines}
    assert sorted(found) == [
        ("broken.json", ""),
        ("mixed.json", "record 2"),
        ("mixed.json", "record 3"),
    ]
    assert found["broken.json", ""]["record"] is None
    assert "not valid JSON" in found["broken.json", ""]["reason"]
    assert "resource_size" in found["mixed.json", "record 2"]["reason"]
    assert json.loads(found["mixed.json", "record 3"]["record"]) == {"name": "no id"}
