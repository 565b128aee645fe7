"""The corpus package's modules import each other without a circle (issue 26.6): the sources
(``sources``, ``synth``, ``physical``) take their shared types from ``stems`` and their
oscillators from ``oscillators``, not from one another."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import training.corpus

PACKAGE = Path(training.corpus.__file__).parent


def _sibling_imports() -> dict[str, set[str]]:
    """Module -> the sibling modules it imports anywhere (at the top or inside a function)."""
    graph: dict[str, set[str]] = {}
    for f in PACKAGE.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        graph[f.stem] = found
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    circles = []

    def walk(path: list[str]) -> None:
        for nxt in sorted(graph.get(path[-1], ())):
            if nxt in path:
                circles.append(path[path.index(nxt):] + [nxt])
            elif nxt in graph:
                walk(path + [nxt])

    for start in sorted(graph):
        walk([start])
    return circles


def test_no_corpus_module_imports_itself_back():
    graph = _sibling_imports()
    assert {"sources", "synth", "physical", "stems"} <= set(graph)
    assert _circles(graph) == []


def test_each_source_module_imports_on_its_own():
    """Any of them first, in a fresh interpreter (an import circle breaks one of these orders)."""
    for module in ("physical", "synth", "sources", "stems", "oscillators"):
        proc = subprocess.run([sys.executable, "-c", f"import training.corpus.{module}"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
