"""The twin's modules import each other without cycles through the chip:
the analog core and its event path (twin.core, twin.events, twin.analog)
never import twin.chip, at module level or inside a function (a static
reading of every import statement, TYPE_CHECKING blocks included)."""
from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _module(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph(package: str = "twin") -> dict[str, set[str]]:
    """Module -> the project modules it imports (any import statement)."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        name = _module(path)
        is_pkg = path.name == "__init__.py"
        here = name.split(".") if is_pkg else name.split(".")[:-1]
        out = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = here[:len(here) - node.level + 1] if node.level else []
                mod = ".".join(base + ([node.module] if node.module else []))
                out.add(mod)
                out |= {f"{mod}.{a.name}" for a in node.names}      # `from . import kernel`
        graph[name] = {m for m in out if m.split(".")[0] == package}
    known = set(graph)
    return {k: {m for m in v if m in known} for k, v in graph.items()}


def reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        for n in graph.get(m, ()):
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


def test_the_core_does_not_import_the_chip():
    g = import_graph()
    assert "twin.chip" in g and "twin.core" in g and "twin.events.routing" in g
    for m in g:
        if m == "twin.core" or m.startswith(("twin.events", "twin.analog")) or m == "twin.activity":
            assert "twin.chip" not in reaches(g, m), m
    assert "twin.core" in g["twin.chip"]


def test_the_graph_reading_sees_imports():
    """The static reading is not vacuous: it finds the chip's imports, relative ones included."""
    g = import_graph()
    assert {"twin.core", "twin.activity", "twin.regbus"} <= g["twin.chip"]
    assert "twin.analog.kernel" in g["twin.analog.steps"]
