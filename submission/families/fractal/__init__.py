"""The 3D fractal family: the IFS category bank, per-image point-cloud augmentation, backgrounds
and the point renderers (render/)."""
