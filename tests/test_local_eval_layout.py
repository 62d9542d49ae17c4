"""The shape of `local_eval/`: run/ is the base, compare/ and tools/ build on it; no import
cycles (counting imports inside functions); no private name imported across modules."""
from __future__ import annotations

from typing import Dict, List, Set

from .import_graph import REPO, imports, module_name

PACKAGE = REPO / "local_eval"


def _graph() -> Dict[str, Dict[str, List[str]]]:
    graph: Dict[str, Dict[str, List[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        edges = graph.setdefault(module_name(path), {})
        for module, names in imports(path, "local_eval"):
            edges.setdefault(module, []).extend(names)
    return graph


def test_the_graph_sees_imports_inside_functions():
    edges = _graph()["local_eval.compare.cli"]
    assert "local_eval.compare.plan" in edges  # imported in a function, after parsing
    assert "local_eval.run.arguments" in edges


def test_no_import_cycles():
    graph = {module: set(edges) - {module} for module, edges in _graph().items()}
    done: Set[str] = set()

    def visit(module: str, trail: List[str]) -> None:
        if module in trail:
            raise AssertionError("import cycle: " + " -> ".join(trail[trail.index(module):] + [module]))
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, trail + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_no_private_name_is_imported_across_modules():
    private = [f"{module} takes {name} from {target}" for module, edges in _graph().items()
               for target, names in edges.items() for name in names
               if name.startswith("_") and not name.startswith("__")]
    assert private == []


def test_run_is_the_base_and_builds_on_neither_compare_nor_tools():
    upward = [f"{module} -> {target}" for module, edges in _graph().items()
              if module.startswith("local_eval.run") for target in edges
              if target.startswith(("local_eval.compare", "local_eval.tools", "local_eval.cli"))]
    assert upward == []
