"""No function in ``engine/`` is over 60 lines (issue 21, item 3).

A function's length runs from its ``def`` line to its last line, docstring
included (``ast``'s ``end_lineno - lineno + 1``), so a long docstring counts:
it is still a function to be read in one screen.
"""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"
LIMIT = 60


def long_functions(root: Path) -> dict[str, int]:
    """Every function under ``root`` over ``LIMIT`` lines, as ``engine/x.py:name`` -> lines.

    Methods and nested functions count too, named by their path inside the
    module (``Class.method``, ``outer.inner``).
    """
    found: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(root.parent).as_posix()
        for name, lines in _lengths(tree, ""):
            if lines > LIMIT:
                found[f"{where}:{name}"] = lines
    return found


def _lengths(node: ast.AST, prefix: str) -> list[tuple[str, int]]:
    """(qualified name, lines) of every function defined anywhere under ``node``."""
    out: list[tuple[str, int]] = []
    for child in ast.iter_child_nodes(node):
        inner = prefix
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            inner = f"{prefix}{child.name}."
            if not isinstance(child, ast.ClassDef):
                assert child.end_lineno is not None
                out.append((prefix + child.name, child.end_lineno - child.lineno + 1))
        out.extend(_lengths(child, inner))
    return out


def test_no_function_over_60_lines() -> None:
    over = long_functions(ENGINE)
    assert not over, "functions over 60 lines (split them): " + ", ".join(
        f"{name} ({lines})" for name, lines in sorted(over.items())
    )


def test_the_walk_sees_a_long_function(tmp_path: Path) -> None:
    # The check itself can fail: a 61-line function in a package is named.
    package = tmp_path / "engine"
    (package / "sub").mkdir(parents=True)
    body = "".join(f"    x{i} = {i}\n" for i in range(LIMIT - 1))
    (package / "sub" / "m.py").write_text(f"def big() -> None:\n{body}    pass\n")
    (package / "ok.py").write_text("def small() -> None:\n    pass\n")
    assert long_functions(package) == {"engine/sub/m.py:big": LIMIT + 1}
