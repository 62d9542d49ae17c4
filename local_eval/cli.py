"""`python -m local_eval COMMAND ...`: the evaluator's one command shell.

Each command lives in its own module and is imported only when named, so that the shell and a
bad flag cost no torch import. `python -m local_eval --data ...` (no command) is `run`.
"""
from __future__ import annotations

import importlib
import sys
from typing import List, Optional

# command -> (module with main(argv), one line for --help)
COMMANDS = {
    "run": ("local_eval.run.cli", "pre-train on a generated dataset, fine-tune, report the "
                                  "contest score (also: python -m local_eval --data ...)"),
    "compare": ("local_eval.compare.cli", "several datasets x presets x seeds, with paired "
                                          "statistics and calibration"),
    "noise": ("local_eval.datasets.noise", "write a random-noise ImageFolder (the bad-data "
                                        "baseline)"),
    "digits": ("local_eval.datasets.digits", "write scikit-learn's handwritten digits as an "
                                          "ImageFolder pair (a downstream set, no download)"),
    "timing": ("local_eval.tools.timing", "time a preset's training steps on this CPU"),
    "throughput": ("local_eval.tools.throughput", "time the model and the data loader apart "
                                                  "(GPU sizing)"),
    "stats": ("local_eval.stats.table", "measure datasets without training: intensity, "
                                             "colour, blank crops, edges, separability"),
    "store": ("local_eval.store.cli", "decode a generated ImageFolder once into an image store "
                                      "(pre-training reads it; runs build it when needed)"),
    "gpu-campaign": ("local_eval.tools.campaign", "run what fits a time budget of a committed "
                                                  "comparison (scripts/gpu_campaign.sh)"),
}
PROG = "python -m local_eval"


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: {PROG} COMMAND [options]   ({PROG} COMMAND --help for its options)", "",
             "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", f"{PROG} --data GEN_DIR --out RUN_DIR ... is the same as {PROG} run ..."]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    first = arguments[0] if arguments else None
    if first in COMMANDS:
        return importlib.import_module(COMMANDS[first][0]).main(arguments[1:])
    if first in ("-h", "--help"):
        print(usage())
        return 0
    if first is None or not first.startswith("-"):
        what = "no command" if first is None else f"unknown command {first!r}"
        print(f"error: {what}; pick one of {', '.join(COMMANDS)} (see {PROG} --help)",
              file=sys.stderr)
        return 2
    return importlib.import_module(COMMANDS["run"][0]).main(arguments)  # --data ...: run
