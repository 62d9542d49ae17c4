"""Several datasets x presets x seeds, with paired statistics and calibration."""
