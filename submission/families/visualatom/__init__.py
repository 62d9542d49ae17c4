"""The VisualAtom family: sinusoidal-wave contours drawn with OpenCV."""
