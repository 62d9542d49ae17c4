"""The one command shell both command lines end through (submission.tools.command)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from submission.errors import UserError
from submission.tools.command import OneLineParser, run_command

from .conftest import REPO


def test_a_user_error_is_one_line_and_exit_2(capsys):
    def body() -> int:
        raise UserError("the folder X is missing; create it")

    assert run_command(body) == 2
    assert capsys.readouterr().err == "error: the folder X is missing; create it\n"


def test_ctrl_c_is_one_line_and_exit_130_and_the_message_may_be_computed_or_silent(capsys):
    def body() -> int:
        raise KeyboardInterrupt

    assert run_command(body, lambda: "interrupted; rerun to resume from R") == 130
    assert capsys.readouterr().err == "interrupted; rerun to resume from R\n"
    assert run_command(body, lambda: None) == 130  # e.g. a non-main rank of a torchrun launch
    assert capsys.readouterr().err == ""


def test_a_usage_error_is_one_line_and_exit_2_also_in_a_subcommand(capsys):
    parser = OneLineParser(prog="tool")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("go").add_argument("--count", type=int)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["go", "--count", "many"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: argument --count: invalid int value"), err


def test_a_reader_that_leaves_early_ends_the_command_quietly():
    # `python -m submission recipes | head -0`: the reader is gone before the command writes.
    child = subprocess.Popen([sys.executable, "-m", "submission", "recipes"], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()
    stderr = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141 and "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
