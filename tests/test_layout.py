"""The shape of ``engine/`` (LAYOUT.md): few top-level modules, no import cycle between parts.

A part is a subpackage of ``engine`` or a top-level module. Every import counts, at
module level, inside a function or under ``TYPE_CHECKING``: a cycle any of them
closes is a phase that talks back to the one before it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

ENGINE = REPO / "engine"
#: LAYOUT.md: the contract modules and the façade stay at the top, at most this many.
MAX_TOP_LEVEL = 14


def part_of(module: str) -> str:
    """The part a dotted ``engine`` module belongs to: ``engine.store.write`` -> ``store``.

    Example: ``part_of("engine.spec")`` -> ``"spec"``.
    """
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "engine"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(path: Path) -> set[str]:
    """Every ``engine`` module ``path`` imports, wherever the import statement sits."""
    own = _module_name(path)
    package = own if path.name == "__init__.py" else own.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("engine.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module == "engine":
                found |= {f"engine.{a.name}" for a in node.names}
            elif module.startswith("engine."):
                found.add(module)
    return found


def part_graph() -> dict[str, set[str]]:
    """Which parts import which (a part's imports of itself left out).

    Example: ``"backends" in part_graph()["inventory"]``.
    """
    graph: dict[str, set[str]] = {}
    for path in ENGINE.rglob("*.py"):
        source = part_of(_module_name(path))
        targets = {part_of(m) for m in _imported(path)} - {source, "engine"}
        graph.setdefault(source, set()).update(targets)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one part (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                item = stack.pop()
                group.append(item)
                if item == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_checker_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_parts() -> None:
    assert cycles(part_graph()) == []


def module_graph() -> dict[str, set[str]]:
    """Which ``engine`` modules import which (every import statement, wherever it sits).

    Example: ``"engine.store.manifest" in module_graph()["engine.store.read"]``.
    """
    paths = {_module_name(path): path for path in ENGINE.rglob("*.py")}
    return {name: (_imported(path) & set(paths)) - {name} for name, path in paths.items()}


def test_no_import_cycle_between_modules() -> None:
    # Inside a part too: store.read asks store.integrity, which reads store.manifest.
    assert cycles(module_graph()) == []


def test_few_top_level_modules() -> None:
    top = sorted(p.name for p in ENGINE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, top
