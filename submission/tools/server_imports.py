"""What the packed code imports, checked against what the Signate server will have: Python 3.10's
standard library, the image's preinstalled packages and the zip's own requirements.txt.

A rehearsal runs under whatever `--python` has installed (by default the developer's full venv), so
without this check a zip that lacks requirements.txt passes `rehearse` and then fails on the server
at its first `import albumentations`. The check reads the packed .py files with `ast`; nothing is
imported or run.
"""
from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from typing import Dict, List, Mapping, Set, Tuple

from ..errors import UserError

# The server image (docs/submitting.md, Makefile's venv-server): Python 3.10 with torch 2.0.1,
# torchvision 0.15.2, numpy 1.24.4, Pillow 10.0 and opencv-python 4.8, by their import names.
SERVER_PACKAGES = frozenset({"torch", "torchvision", "numpy", "PIL", "cv2"})
# Python 3.10's standard library from the running interpreter's list (3.10+): less what later versions
# added, plus what they removed.
ADDED_AFTER_310 = frozenset({"tomllib"})
REMOVED_AFTER_310 = frozenset({"asynchat", "asyncore", "distutils", "imp", "smtpd",  # 3.12
                               "aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "lib2to3", "mailcap",
                               "msilib", "nis", "nntplib", "ossaudiodev", "pipes", "sndhdr", "spwd", "sunau",
                               "telnetlib", "uu", "xdrlib"})  # 3.13
STDLIB_310 = (frozenset(sys.stdlib_module_names) - ADDED_AFTER_310) | REMOVED_AFTER_310
# Imports the packed code treats as optional: without them it runs another way, or refuses in one line
# from `get_params` (which rehearse shows). PyTorch3D: the fractal family's optional renderer; the
# adapter falls back to splat, or refuses an explicit `backend: pytorch3d`.
OPTIONAL_IMPORTS = frozenset({"pytorch3d"})
# Distribution names (PEP 503-normalized) whose import name is not the name itself, for what the
# running interpreter does not have installed (installed ones are read from their metadata).
KNOWN_IMPORT_NAMES = {"pillow": "PIL", "opencv-python": "cv2", "opencv-python-headless": "cv2",
                      "opencv-contrib-python": "cv2", "opencv-contrib-python-headless": "cv2", "pyyaml": "yaml",
                      "scikit-learn": "sklearn", "scikit-image": "skimage", "easypytorch3d": "pytorch3d"}
REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def required_distributions(requirements: str) -> Set[str]:
    """The normalized distribution names a requirements.txt installs (options and comments skipped)."""
    names = set()
    for line in requirements.splitlines():
        line = line.split("#", 1)[0].strip()
        match = REQUIREMENT_NAME.match(line)
        if match and not line.startswith("-"):
            names.add(normalize(match.group(0)))
    return names


def provided_modules(requirements: str) -> Set[str]:
    """Top-level import names that the listed distributions provide (as far as this machine knows)."""
    wanted = required_distributions(requirements)
    modules = {KNOWN_IMPORT_NAMES.get(name, name.replace("-", "_")) for name in wanted}
    for module, distributions in metadata.packages_distributions().items():
        if any(normalize(d) in wanted for d in distributions):
            modules.add(module)
    return modules


def imported_modules(path: str, source: bytes) -> List[Tuple[str, int]]:
    """(top-level module, line) of every absolute import in one .py file."""
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError) as exc:
        raise UserError(f"{path} in the zip is not valid Python ({exc}); fix it and re-pack") from None
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], node.lineno))
    return found


def missing_on_server(files: Mapping[str, bytes]) -> Dict[str, str]:
    """Module -> where it is first imported ("src/x.py:12"), for each module the packed code imports
    that the server would lack. `files` maps zip entries to bytes (src/*.py, requirements.txt)."""
    sources = {name: data for name, data in files.items() if name.startswith("src/") and name.endswith(".py")}
    # What the zip ships itself: src/ is appended to sys.path, so its top-level modules and packages.
    local = {name[len("src/"):].split("/")[0].removesuffix(".py") for name in sources}
    requirements = files.get("requirements.txt", b"").decode("utf-8", "replace")
    available = STDLIB_310 | SERVER_PACKAGES | OPTIONAL_IMPORTS | local | provided_modules(requirements)
    missing: Dict[str, str] = {}
    for name in sorted(sources):
        for module, line in imported_modules(name, sources[name]):
            if module not in available and module not in missing:
                missing[module] = f"{name}:{line}"
    return missing


def check_server_imports(files: Mapping[str, bytes], zip_label: str) -> None:
    """Raise a one-line `UserError` naming what the packed code imports that the server would lack."""
    missing = missing_on_server(files)
    if not missing:
        return
    listed = ", ".join(f"{module} ({where})" for module, where in list(missing.items())[:3])
    more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
    has_requirements = "requirements.txt" in files
    raise UserError(f"{zip_label}'s code imports {listed}{more}, which the server image (Python 3.10, torch, "
                    f"torchvision, numpy, Pillow, opencv) lacks and {'its requirements.txt does not list' if has_requirements else 'it has no requirements.txt to install'}; "
                    "re-pack it with `python -m submission pack` (which writes requirements.txt), or add them there")
