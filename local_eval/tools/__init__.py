"""Helpers around the evaluator: baseline datasets (noise, digits) and timings."""
