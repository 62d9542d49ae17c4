"""What every layer of the judge shares: the run's configuration (EvalConfig, the OFDB recipe's
choices, named presets), the contest metric, the process group (world, distributed), the one-
process-per-run-folder lock, JSON and figure outputs, and torch's private compile-cache folder.
Imports nothing else of local_eval."""
