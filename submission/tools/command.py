"""What every command line shares: one-line usage errors, and one ending for a run.

A bad command line, a `UserError` or Ctrl-C ends in one line on stderr: `error: ...` with exit code 2,
or the interrupted message with exit code 130. Kept free of torch so that commands start fast and can
reject a bad flag before importing anything heavy. Used by `python -m submission` and `python -m local_eval`.
"""
from __future__ import annotations

import argparse
import os
import sys
import typing
from typing import Callable, Optional, Union

from ..errors import UserError

INTERRUPTED = "interrupted; rerun the same command to resume"


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (exit code 2); subparsers inherit it."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def run_command(body: Callable[[], int],
                interrupted: Union[str, Callable[[], Optional[str]]] = INTERRUPTED) -> int:
    """Run `body` and turn its `UserError` into exit 2 and Ctrl-C into exit 130, one line each.

    `interrupted` is the Ctrl-C message, or a function giving it at that moment (None: print nothing,
    e.g. on a non-main rank of a distributed run).
    """
    try:
        code = body()
        sys.stdout.flush()  # a closed pipe shows here, inside these handlers, not at interpreter exit
        return code
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        message = interrupted() if callable(interrupted) else interrupted
        if message:
            print(message, file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout left (`... | head`): stop quietly, as other command-line tools do. Later
        # writes (Python flushing stdout at exit) go to /dev/null instead of raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by a closed pipe
