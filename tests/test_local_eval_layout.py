"""The shape of `local_eval/`: subpackages in layers, each importing only its own and lower ones
(core < augment < datasets < stats < store < train < run < compare < tools, then the command
shell); no import cycles (counting imports inside functions); no private name imported across
modules."""
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


# Bottom to top. The package's own __init__ (the public names), __main__ and cli sit above all.
LAYERS = ["core", "augment", "datasets", "stats", "store", "train", "run", "compare", "tools"]
TOP = {"local_eval", "local_eval.__main__", "local_eval.cli"}


def layer(module: str) -> int:
    if module in TOP:
        return len(LAYERS)
    return LAYERS.index(module.split(".")[1])


def test_every_module_is_in_a_layer():
    unplaced = [module for module in _graph() if module not in TOP
                and (module.count(".") < 1 or module.split(".")[1] not in LAYERS)]
    assert unplaced == [], "put these in a subpackage of LAYERS"


def upward_arrows(graph: Dict[str, Dict[str, List[str]]]) -> List[str]:
    return [f"{module} -> {target}" for module, edges in graph.items() for target in edges
            if target.startswith("local_eval") and layer(target) > layer(module)]


def test_imports_run_down_the_layers_never_up():
    assert upward_arrows(_graph()) == []


def test_the_layer_check_sees_an_arrow_back_up():
    # Before the split, the generated-set loader built a store's dataset (store sits above
    # datasets) and tools and compare imported each other: both are arrows back up.
    graph = {"local_eval.datasets.common": {"local_eval.store.loader": ["StoreDataset"],
                                            "local_eval.core.config": ["EvalConfig"]},
             "local_eval.compare.diagnostics": {"local_eval.tools.data_stats": []}}
    assert upward_arrows(graph) == ["local_eval.datasets.common -> local_eval.store.loader",
                                    "local_eval.compare.diagnostics -> local_eval.tools.data_stats"]


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
