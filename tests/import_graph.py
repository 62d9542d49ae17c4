"""What a source file imports, read with `ast` (nothing is imported): static imports anywhere in the
file (inside functions too) with relative ones resolved, and "package.x[:attr]" strings handed to
importlib. Used by the layout tests of both packages (test_architecture.py, test_local_eval_layout.py)."""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import List, Set, Tuple

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "submission"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> List[str]:
    return sorted(module_name(p) for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def is_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path, package: str) -> List[Tuple[str, List[str]]]:
    """(module of `package`, names taken from it) for each import in `path`. `from X import m`
    where X.m is a module counts as an import of X.m (taking no name from X)."""
    here = module_name(path).split(".")
    parent = here if path.name == "__init__.py" else here[:-1]
    strings = re.compile(rf"^({re.escape(package)}(?:\.\w+)+)(?::\w+)?$")
    found: List[Tuple[str, List[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(parent[:len(parent) - node.level + 1] + ([base] if base else []))
            names = [alias.name for alias in node.names]
            found += [(f"{base}.{n}", []) for n in names if is_module(f"{base}.{n}")]
            found.append((base, [n for n in names if not is_module(f"{base}.{n}")]))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = strings.match(node.value)
            if match:
                found.append((match.group(1), []))
    return [(m, names) for m, names in found if m == package or m.startswith(package + ".")]


def submission_imports(path: Path) -> Set[str]:
    """Every `submission...` module `path` imports."""
    return {module for module, _ in imports(path, "submission")}
