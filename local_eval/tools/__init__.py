"""Measurements of the judge itself: timing (projected wall time of a preset), throughput (loader
and model images per second), augment_speed (the augmentation chains alone)."""
