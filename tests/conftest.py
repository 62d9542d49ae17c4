"""Shared fixtures: small configs and a subprocess runner for the real command line."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, module: str = "submission", timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...` from the repository root, capturing text output."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **kwargs.pop("env", {})}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=kwargs.pop("cwd", REPO), env=env,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture
def small_config():
    from submission import GenerationConfig

    return GenerationConfig(classes=4, images_per_class=6, image_size=64, points=2000, workers=1, batch_size=4)
