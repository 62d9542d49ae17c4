"""Every command the README and docs/ quote still parses: `python -m submission ...`, `python -m
local_eval ...` (also under torchrun) and `make TARGET`. A renamed flag, a removed subcommand or a
moved module fails here, naming the page and the line.

The check parses each command line with the command's own argparse parser and stops right after
parsing (nothing runs), so it costs no training and no generation.
"""
from __future__ import annotations

import argparse
import importlib
import re
import shlex
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from .conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MODULES = ("submission", "local_eval")
SHELL_SEPARATORS = {"&&", "||", ";", "|"}


def code_lines(page: Path) -> Iterator[Tuple[int, str]]:
    """(line number, command) for each line of a ```bash block (backslash continuations joined) and
    for each inline code span that spells out a whole runnable command (it starts with the venv's
    python or a variable assignment, and has no `...` elision); prose mentions such as
    `python -m local_eval COMMAND --help` are names, not commands."""
    fenced, pending, start = False, "", 0
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced and line.strip() in ("```bash", "```sh", "```shell")
            continue
        if fenced:
            if not pending:
                start = number
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            yield start, pending + line
            pending = ""
        else:
            for span in re.findall(r"`([^`]+)`", line):
                runnable = span.startswith(".venv/bin/python ") or re.match(r"[A-Z_]+=\S+ ", span)
                if runnable and "..." not in span and "…" not in span:
                    yield number, span


def commands(text: str) -> Iterator[List[str]]:
    """The argv of each `python -m MODULE` / `-m MODULE` / `make` invocation in one shell line."""
    text = re.sub(r"\$\{?[A-Za-z_]\w*\}?", "0", text)  # shell variables: any value parses as a word
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError:
        return
    segment: List[str] = []
    for token in tokens + [";"]:
        if token in SHELL_SEPARATORS:
            if segment:
                yield segment
            segment = []
        else:
            segment.append(token)


class Parsed(Exception):
    """Raised by the patched parse_args once a command line parsed: nothing after it runs."""


def invocations() -> List[Tuple[str, str, List[str]]]:
    found = []
    for page in PAGES:
        for number, line in code_lines(page):
            for argv in commands(line):
                where = f"{page.relative_to(REPO)}:{number}"
                if "-m" in argv[:-1]:
                    module = argv[argv.index("-m") + 1]
                    if module.split(".")[0] in MODULES:
                        found.append((where, module, argv[argv.index("-m") + 2:]))
                elif argv and Path(argv[0]).name == "make" and len(argv) > 1:
                    found.append((where, "make", argv[1:]))
    return found


INVOCATIONS = invocations()
MAKE_TARGETS = set(re.findall(r"^([\w.-]+):", (REPO / "Makefile").read_text(), re.M))


def test_the_docs_quote_commands_of_both_packages():
    modules = {module.split(".")[0] for _, module, _ in INVOCATIONS}
    assert {"submission", "local_eval", "make"} <= modules, modules
    assert len(INVOCATIONS) > 30, len(INVOCATIONS)


@pytest.mark.parametrize("where, module, argv", INVOCATIONS, ids=[f"{w} {m}" for w, m, _ in INVOCATIONS])
def test_a_quoted_command_parses(where, module, argv, monkeypatch, capsys):
    if module == "make":
        unknown = [t for t in argv if not t.startswith("-") and "=" not in t and t not in MAKE_TARGETS]
        assert not unknown, f"{where}: make has no target {unknown}"
        return
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        original(self, args, namespace)
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    main_module = {"submission": "submission.tools.cli", "local_eval": "local_eval.cli"}.get(module, module)
    main = importlib.import_module(main_module).main
    shown = f"`{module} {' '.join(argv)}`"
    try:
        code = main(argv)
    except Parsed:
        return
    except SystemExit as exit_:
        code = exit_.code
    if code == 0 and "--help" in argv:
        return
    pytest.fail(f"{where}: {shown} does not parse (exit {code}): {capsys.readouterr().err.strip()}")
