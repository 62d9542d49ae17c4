"""REQUIRE_FULL_STACK=1 (set by .ci/run): a skipped test fails the run, unless it skipped for a reason CI
cannot remove (no CUDA device or PyTorch3D on a CPU machine, a permission case that root cannot play).
CI installs the fonts, the server stack and Docker, so a skip there means a path went unchecked.

Used as hooks by tests/conftest.py; a pytest plugin of its own (`-p tests.full_stack`) for its test."""
from __future__ import annotations

import os
import re
from typing import List

# Only reasons that name a missing GPU or a permission case root cannot play; "(as root: make
# docker-engine)" in a Docker skip is an instruction, not such a case, so "root" alone does not pass.
ALLOWED_SKIP = re.compile(r"CUDA|PyTorch3D|^root (ignores|may write)", re.IGNORECASE)
_UNEXPECTED_SKIPS: List[str] = []


def required() -> bool:
    return os.environ.get("REQUIRE_FULL_STACK") == "1"


def pytest_runtest_logreport(report) -> None:
    if not (required() and report.skipped) or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    reason = reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason
    if not ALLOWED_SKIP.search(reason):
        _UNEXPECTED_SKIPS.append(f"{report.nodeid}: {reason}")


def pytest_terminal_summary(terminalreporter) -> None:
    if _UNEXPECTED_SKIPS:
        terminalreporter.section("REQUIRE_FULL_STACK=1: skips that fail this run", red=True)
        for line in _UNEXPECTED_SKIPS:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session, exitstatus) -> None:
    if _UNEXPECTED_SKIPS and exitstatus == 0:
        session.exitstatus = 1
