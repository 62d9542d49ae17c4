"""The `submission` modules a source file imports, read with `ast` (nothing is imported): static
imports with relative ones resolved, and "submission.x[:attr]" strings given to importlib."""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import List, Set

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "submission"
MODULE_STRING = re.compile(r"^(submission(?:\.\w+)+)(?::\w+)?$")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> List[str]:
    return sorted(module_name(p) for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def submission_imports(path: Path) -> Set[str]:
    """Every `submission...` module `path` imports (a `from X import name` counts X.name when that is
    a module of the package, else X)."""
    modules = set(package_modules())
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = MODULE_STRING.match(node.value)
            if match:
                found.add(match.group(1))
    return {name for name in found if name == "submission" or name.startswith("submission.")}
