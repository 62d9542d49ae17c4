"""What the command lines share: one-line argparse errors (output folders: `submission.fileio`).

Kept free of torch so that `python -m local_eval.noise` starts fast.
"""
from __future__ import annotations

import argparse
import typing


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (exit code 2)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")
