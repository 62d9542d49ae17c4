"""The package runs on the Signate server: Python 3.10, torch 2.0.1, numpy 1.24.4, Pillow 10.0.

Cheap static checks here (the 3.10 grammar, a deny-list of newer APIs); the slow test runs the
package under a real 3.10 / torch 2.0.1 interpreter when `.venv-server` exists (`make venv-server`).
"""
from __future__ import annotations

import ast
import os
import subprocess
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from .import_graph import module_name, submission_imports

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "submission"
SERVER_PYTHON = REPO / ".venv-server" / "bin" / "python"

# Dotted names (after resolving import aliases) that do not exist on the server, with the first
# version that has them. Not exhaustive: the APIs this kind of code is most likely to reach for.
NEWER_THAN_SERVER: Dict[str, str] = {
    # Python 3.11+
    "tomllib": "Python 3.11", "typing.Self": "Python 3.11", "typing.LiteralString": "Python 3.11",
    "typing.Never": "Python 3.11", "typing.assert_never": "Python 3.11", "typing.assert_type": "Python 3.11",
    "typing.reveal_type": "Python 3.11", "typing.Required": "Python 3.11", "typing.NotRequired": "Python 3.11",
    "typing.dataclass_transform": "Python 3.11", "typing.override": "Python 3.12", "typing.TypeAliasType": "Python 3.12",
    "enum.StrEnum": "Python 3.11", "datetime.UTC": "Python 3.11", "contextlib.chdir": "Python 3.11",
    "hashlib.file_digest": "Python 3.11", "math.cbrt": "Python 3.11", "math.exp2": "Python 3.11",
    "operator.call": "Python 3.11", "asyncio.TaskGroup": "Python 3.11", "asyncio.timeout": "Python 3.11",
    "itertools.batched": "Python 3.12", "ExceptionGroup": "Python 3.11", "BaseExceptionGroup": "Python 3.11",
    # torch 2.1+
    "torch.export": "torch 2.1", "torch.compiler": "torch 2.1", "torch.float8_e4m3fn": "torch 2.1",
    "torch.float8_e5m2": "torch 2.1", "torch.Tensor.nonzero_static": "torch 2.1", "torch.nn.attention": "torch 2.2",
    "torch.get_default_device": "torch 2.3", "torch.uint16": "torch 2.3", "torch.uint32": "torch 2.3",
    "torch.uint64": "torch 2.3", "torch.library.custom_op": "torch 2.4", "torch.nn.Buffer": "torch 2.5",
    "torch.accelerator": "torch 2.6", "torch.serialization.add_safe_globals": "torch 2.4",
    "torch.amp.GradScaler": "torch 2.3", "torch.cond": "torch 2.3",
    # numpy 1.25+ (numpy.bool was removed in 1.24 and only came back in 2.0)
    "numpy.exceptions": "numpy 1.25", "numpy.dtypes": "numpy 1.25", "numpy.bool": "numpy 2.0 (use numpy.bool_)",
    "numpy.trapezoid": "numpy 2.0", "numpy.concat": "numpy 2.0", "numpy.isdtype": "numpy 2.0",
    "numpy.permute_dims": "numpy 2.0", "numpy.matrix_transpose": "numpy 2.0", "numpy.vecdot": "numpy 2.0",
    "numpy.strings": "numpy 2.0", "numpy.unstack": "numpy 2.1", "numpy.cumulative_sum": "numpy 2.1",
    "numpy.cumulative_prod": "numpy 2.1", "numpy.astype": "numpy 2.1", "numpy.lib.array_utils": "numpy 2.0",
    "numpy.random.Generator.spawn": "numpy 1.25",
    # Pillow 10.1+
    "PIL.Image.fromarrow": "Pillow 11.2", "PIL.Image.Image.__arrow_c_array__": "Pillow 11.2",
}


def package_files() -> List[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def dotted_names(tree: ast.AST) -> Iterator[Tuple[str, int]]:
    """(fully qualified name, line) for every import and attribute chain, import aliases resolved."""
    aliases: Dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                yield f"{node.module}.{alias.name}", node.lineno
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            parts, inner = [node.attr], node.value
            while isinstance(inner, ast.Attribute):
                parts.append(inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name):
                head = aliases.get(inner.id, inner.id)
                yield ".".join([head, *reversed(parts)]), node.lineno
        elif isinstance(node, ast.Name):
            yield aliases.get(node.id, node.id), node.lineno


def newer_api_uses(source: str) -> List[str]:
    found = set()
    for name, line in dotted_names(ast.parse(source)):
        for newer, since in NEWER_THAN_SERVER.items():
            if name == newer or name.startswith(newer + "."):
                found.add(f"line {line}: {name} ({since})")
    return sorted(found)


def test_the_packed_code_imports_only_modules_the_zip_ships():
    """src/ is self-contained: every `submission` module that the shipped modules and the server
    adapter import (statically, or by name through importlib as the registries do) is a module
    the zip ships, so the server never meets a missing module (e.g. one under tools/)."""
    from submission.tools.pack import GENERATOR_TEMPLATE, NOT_SHIPPED

    shipped = [p for p in package_files() if p.relative_to(PACKAGE).parts[0] not in NOT_SHIPPED]
    shipped_modules = {module_name(p) for p in shipped}
    assert {"submission.pipeline", "submission.families.fractal.render.splat"} <= shipped_modules
    missing = {f"{module_name(p)} -> {m}" for p in [*shipped, GENERATOR_TEMPLATE] for m in submission_imports(p)
               if m not in shipped_modules}
    assert missing == set()
    # and the check is not vacuous: a tools import from shipped code is caught
    assert "submission.tools.options" in submission_imports(PACKAGE / "tools" / "pack.py")


@pytest.mark.parametrize("path", package_files(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_parses_with_python_310_grammar(path):
    ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 10))


@pytest.mark.parametrize("path", package_files(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_uses_no_api_newer_than_the_server(path):
    assert newer_api_uses(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("source, expected", [
    ("import tomllib", "tomllib"),
    ("from typing import Self", "typing.Self"),
    ("import numpy as np\nx = np.exceptions.AxisError", "numpy.exceptions"),
    ("import numpy as np\nmask = np.zeros(3, dtype=np.bool)", "numpy.bool"),
    ("import torch\ny = torch.compiler.disable", "torch.compiler"),
    ("from torch import nn\nb = nn.Buffer", "torch.nn.Buffer"),
    ("x = [1]\nraise ExceptionGroup('x', [])", "ExceptionGroup"),
])
def test_deny_list_catches_newer_apis(source, expected):
    uses = newer_api_uses(source)
    assert any(expected in use for use in uses), uses


def test_deny_list_leaves_server_apis_alone():
    source = ("import numpy as np\nimport torch\nfrom typing import Optional\n"
              "m = np.zeros(3, dtype=np.bool_)\nt = torch.compile\nd = torch.float16\n")
    assert newer_api_uses(source) == []


def test_python_310_grammar_check_rejects_newer_syntax():
    with pytest.raises(SyntaxError):
        ast.parse("try:\n    pass\nexcept* ValueError:\n    pass\n", feature_version=(3, 10))
    with pytest.raises(SyntaxError):
        ast.parse("type Alias = int\n", feature_version=(3, 10))


@pytest.mark.slow
@pytest.mark.skipif(not SERVER_PYTHON.exists(), reason="no .venv-server (make venv-server) with Python 3.10 + torch 2.0.1")
def test_every_module_imports_under_the_server_versions():
    """Compile and import every module with Python 3.10, torch 2.0.1, numpy 1.24.4, Pillow 10.0."""
    modules = [".".join(("submission", *p.relative_to(PACKAGE).with_suffix("").parts)).replace(".__init__", "")
               for p in package_files()]
    # __main__ would run the CLI; the PyTorch3D backend needs PyTorch3D, which the server lacks.
    modules = [m for m in modules if m not in ("submission.__main__", "submission.families.fractal.render.pytorch3d_backend")]
    script = ("import importlib, sys, torch, numpy, PIL\n"
              "assert sys.version_info[:2] == (3, 10), sys.version\n"
              "assert torch.__version__.startswith('2.0.1') and numpy.__version__ == '1.24.4', (torch.__version__, numpy.__version__)\n"
              "for name in sys.argv[1:]:\n    importlib.import_module(name)\n"
              "print('imported', len(sys.argv) - 1)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([str(SERVER_PYTHON), "-B", "-c", script, *modules], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"imported {len(modules)}" in result.stdout
