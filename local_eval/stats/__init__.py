"""`python -m local_eval stats`: what a dataset looks like to a crop, without training
(images: per-image measures; table: the command and its table; plot: its figure)."""
