"""One local evaluation (`python -m local_eval run`): its arguments, what it is (spec: identity
and every check before training), what it reads (inputs), the runner (pre-train, fine-tune,
score), its record (run.json) and its report. The top of the evaluation stack; compare/ and
tools/ build on it."""
