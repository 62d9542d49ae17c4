"""The shape of `local_eval/`: run/ is the base, compare/ and tools/ build on it; no import
cycles (counting imports inside functions); no private name imported across modules."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set, Tuple

PACKAGE = Path(__file__).resolve().parents[1] / "local_eval"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").is_file()


def _imports(path: Path) -> List[Tuple[str, List[str]]]:
    """(imported local_eval module, names taken from it) for every import in the file."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names if alias.name.startswith("local_eval")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("local_eval"):
                continue
            names = [alias.name for alias in node.names]
            if _is_package(module):  # `from .run import cli`: the submodules are what is used
                subs = [f"{module}.{n}" for n in names
                        if (PACKAGE.parent / module.replace(".", "/") / f"{n}.py").is_file()]
                found += [(sub, []) for sub in subs]
                names = [n for n in names if f"{module}.{n}" not in subs]
            found.append((module, names))
    return found


def _graph() -> Dict[str, Dict[str, List[str]]]:
    graph: Dict[str, Dict[str, List[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        edges = graph.setdefault(_module_name(path), {})
        for module, names in _imports(path):
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
