"""The VisualAtom family (Takashima et al., "Visual Atoms: Pre-training Vision Transformers with
Sinusoidal Waves", CVPR 2023): concentric closed contours ("orbits") that each grow outward from
the last by two sinusoidal waves plus gradient noise, drawn as thin gray polylines on black.

A class is one set of parameters drawn from (seed, class): vertices per orbit q, orbits K, the
frequencies n1 != n2 (except that n1 = 0 allows any n2, as the public renderer does), the noise
coefficient eta, an extra radial step, the first orbit's radius and its x/y stretch. An image
draws from (seed, class, image) its centre, each orbit's gray level and every vertex's noise.

Orbit k of an image (k = 1..K), vertex i at angle t_i = 2 pi i / q, with x and y independent:

    x_k(i) = cx + cos(t_i) * (r0 * ox + sum_{j<=k} s_j(i)),   y likewise with sin, oy
    s_j(i) = eta * (1 - e_j(i)) + lambda * (sin(n1 t_i) + sin(n2 t_i)) + w

where e_j(i) is a fresh draw of 1D gradient noise at a uniformly random point: the public
renderer calls Perlin's pnoise1 at uniform(0, 10000) for every vertex of every orbit, which is
the distribution sampled here directly (no lattice, no table): with t ~ U(0, 1) and fade
f = 6t^5 - 15t^4 + 10t^3, e = 0.4 ((1 - f) g0 t + f g1 (t - 1)), where the two gradients are
1..8 with probability 1/16 each and -1 with probability 1/2 (the `noise` package's gradient).

All points of all orbits are computed at once (numpy, a cumulative sum over orbits); each orbit
is one closed `cv2.polylines` call. Needs no asset file: the family's default hooks do nothing.
"""
from __future__ import annotations

import math
import time
from typing import Any, Dict, NamedTuple, Optional, Sequence

import cv2
import numpy as np

from ...config import GenerationConfig
from ...errors import UserError
from ...plan import RunPlan
from ...seeding import STREAM_VISUALATOM_CLASS, STREAM_VISUALATOM_IMAGE, rng_for
from ..base import Family, FamilyWorker
from .config import VisualAtomConfig

PAPER_CANVAS = 512  # the public renderer's image side: lengths in VisualAtomConfig are its pixels
SUBPIXEL_BITS = 4  # cv2 fixed-point fraction bits for the vertex coordinates
COORD_LIMIT = float(2 ** 20)  # canvas px; farther vertices are clamped (cv2 clips lines to the canvas anyway)
NOISE_SCALE = 0.4  # pnoise1's output scale


class AtomParams(NamedTuple):
    """One class's parameters (see the module docstring)."""

    vertices: int  # q
    orbits: int  # K
    n1: int
    n2: int
    noise: float  # eta
    step: float  # w, the renderer's `line_width`
    radius: int  # r0
    oval_x: float
    oval_y: float


def _randint(u: float, low: int, high: int) -> int:
    """An integer uniform in [low, high] from one uniform draw u in [0, 1)."""
    return low + min(int(u * (high - low + 1)), high - low)


def class_params(config: GenerationConfig, category: int) -> AtomParams:
    """The parameters of `category`: a function of (seed, visualatom config, category) alone."""
    va = config.visualatom
    u = rng_for(config.seed, STREAM_VISUALATOM_CLASS, category).random(9)
    n1 = _randint(u[2], va.freq_min, va.freq_max)
    if n1 == 0:  # the renderer redraws n2 until it differs from n1, but accepts any n2 when n1 is 0
        n2 = _randint(u[3], va.freq_min, va.freq_max)
    else:
        n2 = _randint(u[3], va.freq_min, va.freq_max - 1)
        n2 += n2 >= n1
    return AtomParams(
        vertices=_randint(u[0], va.vertices_min, va.vertices_max),
        orbits=_randint(u[1], va.orbits_min, va.orbits_max),
        n1=n1, n2=n2,
        noise=va.noise_min + (va.noise_max - va.noise_min) * float(u[4]),
        step=va.radial_step_max * float(u[5]),
        radius=_randint(u[6], va.radius_min, va.radius_max),
        oval_x=1.0 + (va.oval_max - 1.0) * float(u[7]),
        oval_y=1.0 + (va.oval_max - 1.0) * float(u[8]),
    )


def gradient_noise(u: np.ndarray) -> np.ndarray:
    """1D gradient noise at uniformly random points: u is (3, ...) uniforms in [0, 1) (position,
    left gradient, right gradient); returns (...) float64 values in about [-1.6, 1.6], mean 0."""
    t = u[0]
    fade = t * t * t * (t * (t * 6.0 - 15.0) + 10.0)
    g = np.floor(u[1:] * 16.0)  # a 4-bit hash: 0..7 -> gradient 1..8, 8..15 -> -1
    g = np.where(g < 8.0, g + 1.0, -1.0)
    return NOISE_SCALE * ((1.0 - fade) * g[0] * t + fade * g[1] * (t - 1.0))


class ClassGeometry(NamedTuple):
    """What every image of a class shares: its parameters and per-vertex directions and waves."""

    params: AtomParams
    directions: np.ndarray  # (q, 2) float64: (cos t_i, sin t_i)
    base: np.ndarray  # (q, 2) float64: the deterministic outward step per orbit, canvas px
    start: np.ndarray  # (2,) float64: the first orbit's radii r0 * (ox, oy), canvas px


def class_geometry(config: GenerationConfig, category: int) -> ClassGeometry:
    va = config.visualatom
    p = class_params(config, category)
    scale = va.canvas_size / PAPER_CANVAS
    angles = np.arange(p.vertices, dtype=np.float64) * (2.0 * math.pi / p.vertices)
    wave = va.amplitude * (np.sin(p.n1 * angles) + np.sin(p.n2 * angles))
    base = (p.noise + p.step + wave) * scale  # eta * 1 + w + waves; eta * e is added per image
    return ClassGeometry(params=p, directions=np.stack([np.cos(angles), np.sin(angles)], axis=1),
                         base=np.repeat(base[:, None], 2, axis=1),
                         start=np.array([p.radius * p.oval_x, p.radius * p.oval_y]) * scale)


def atom_orbits(config: GenerationConfig, geometry: ClassGeometry, category: int, index: int):
    """((K, q, 2) float64 vertex coordinates in canvas px, (K,) gray levels) of image `index`."""
    va = config.visualatom
    p = geometry.params
    rng = rng_for(config.seed, STREAM_VISUALATOM_IMAGE, category, index)
    half = va.canvas_size / 2.0
    center = half + va.center_range * half * (2.0 * rng.random(2) - 1.0)
    grays = va.gray_min + np.minimum((rng.random(p.orbits) * (va.gray_max - va.gray_min + 1)).astype(np.int64),
                                     va.gray_max - va.gray_min)
    noise = gradient_noise(rng.random((3, p.orbits, p.vertices, 2)))  # (K, q, 2): x and y apart
    scale = va.canvas_size / PAPER_CANVAS
    steps = geometry.base[None] - (p.noise * scale) * noise  # (K, q, 2) outward steps
    radii = np.cumsum(steps, axis=0) + geometry.start  # orbit k is the start moved by steps 1..k
    return center + radii * geometry.directions[None], grays


def draw_atom(orbits: np.ndarray, grays: np.ndarray, va: VisualAtomConfig, image_size: int) -> np.ndarray:
    """(image_size, image_size) uint8: the orbits drawn in order (later over earlier) as closed
    polylines on a black canvas_size canvas, area-resized to image_size."""
    canvas = np.zeros((va.canvas_size, va.canvas_size), np.uint8)
    fixed = np.rint(np.clip(orbits, -COORD_LIMIT, COORD_LIMIT) * (1 << SUBPIXEL_BITS)).astype(np.int32)
    line_type = cv2.LINE_AA if va.antialias else cv2.LINE_8
    for points, gray in zip(fixed, grays.tolist()):
        cv2.polylines(canvas, [points], True, gray, va.line_thickness, line_type, SUBPIXEL_BITS)
    if va.canvas_size != image_size:
        canvas = cv2.resize(canvas, (image_size, image_size), interpolation=cv2.INTER_AREA)
    return canvas


class VisualAtomFamily(Family):
    name = "visualatom"

    def check(self, config: GenerationConfig) -> None:
        if config.fractal.bank_path is not None:  # a file the user named must not be silently ignored
            raise UserError("bank_path (--bank) is the fractal family's category bank; the visualatom family "
                            "draws its classes from --seed: drop --bank")

    def worker(self, plan: RunPlan) -> "VisualAtomWorker":
        self.check(plan.config)
        return VisualAtomWorker(plan.config)


class VisualAtomWorker(FamilyWorker):
    """Draws the images of a class one by one (each fully vectorised over its orbits and vertices)."""

    def __init__(self, config: GenerationConfig):
        self.config = config

    def class_context(self, category: int) -> ClassGeometry:
        return class_geometry(self.config, category)

    def render(self, category: int, indices: Sequence[int], context: Any,
               seconds: Optional[Dict[str, float]] = None) -> np.ndarray:
        cfg = self.config
        size = cfg.image_size
        images = np.empty((len(indices), size, size, 3), np.uint8)
        sampling = drawing = 0.0
        for b, j in enumerate(indices):
            t0 = time.perf_counter()
            orbits, grays = atom_orbits(cfg, context, category, j)
            t1 = time.perf_counter()
            images[b] = draw_atom(orbits, grays, cfg.visualatom, size)[:, :, None]
            drawing += time.perf_counter() - t1
            sampling += t1 - t0
        if seconds is not None:
            seconds["sampling"] += sampling
            seconds["rendering"] += drawing
        return images
