"""The splat backend against PyTorch3D's points renderer (CPU), plus its edge cases and determinism.

The splat backend repeats PyTorch3D's float32 arithmetic, so on CPU the images agree to the last
bit in practice; the tests demand the issue's tolerance (mean |diff| < 1e-3) and, tighter, a
max |diff| of 1e-5 so that a change in camera, radius, depth order or compositing shows up.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from submission.errors import UserError
from submission.families.fractal.bank import build_bank
from submission.families.fractal.config import PointAugmentConfig
from submission.families.fractal.pointcloud import augment_cloud
from submission.families.fractal.render import RenderSettings, create_renderer
from submission.families.fractal.render import splat as splat_module
from submission.families.fractal.render.splat import SplatRenderer, rasterize_points, to_dense

pytest.importorskip("pytorch3d.renderer")

MEAN_TOL = 1e-3  # the parity target, images in [0, 1]
MAX_TOL = 1e-5


def fractal_batch(n_clouds: int, seed: int, points: int = 2000, rgb: str = "white"):
    """Augmented fractal clouds padded to one N: points (B, N, 3), colors (B, N, 4), lengths (B,)."""
    bank = build_bank(n_clouds, seed=seed, points=points)
    rng = np.random.default_rng(seed)
    clouds = [augment_cloud(bank.point_cloud(i), PointAugmentConfig(), rng) for i in range(n_clouds)]
    n_max = max(len(p) for p, _ in clouds)
    pts = torch.zeros((n_clouds, n_max, 3))
    cols = torch.zeros((n_clouds, n_max, 4))
    for i, (p, c) in enumerate(clouds):
        pts[i, :len(p)] = torch.from_numpy(p)
        cols[i, :len(p)] = torch.from_numpy(c)
    if rgb == "random":
        cols[..., :3] = torch.rand(cols.shape[:2] + (3,), generator=torch.Generator().manual_seed(seed))
    lengths = torch.tensor([len(p) for p, _ in clouds])
    return pts, cols, lengths


def both(points, colors, lengths=None, **settings):
    splat = create_renderer("splat", **settings)(points, colors, lengths)
    reference = create_renderer("pytorch3d", **settings)(points, colors, lengths)
    return splat, reference


def assert_parity(splat: torch.Tensor, reference: torch.Tensor) -> None:
    assert splat.shape == reference.shape and splat.dtype == torch.float32
    diff = (splat - reference).abs()
    assert float(diff.mean()) < MEAN_TOL and float(diff.max()) <= MAX_TOL, (float(diff.mean()), float(diff.max()))
    assert float(reference.max()) > 0.1, "the reference image is empty: the test would prove nothing"


@pytest.mark.parametrize("image_size, radius, n_clouds, seed, colors, k", [
    (32, 0.05, 3, 1, "white", 4),
    (64, 0.015, 2, 2, "random", 4),
    (64, 0.03, 4, 3, "white", 1),
    (96, 0.02, 2, 4, "random", 8),
    (96, 0.015, 3, 5, "white", 4),
    (48, 0.2, 2, 6, "random", 4),  # a 10 x 10 pixel window per point
])
def test_fractal_clouds_match_pytorch3d(image_size, radius, n_clouds, seed, colors, k):
    points, cols, lengths = fractal_batch(n_clouds, seed, rgb=colors)
    assert_parity(*both(points, cols, lengths, image_size=image_size, radius=radius, points_per_pixel=k))


@pytest.mark.parametrize("image_size, radius, k, seed", [(48, 0.04, 4, 21), (64, 0.015, 8, 22), (32, 0.1, 1, 23)])
def test_fragments_match_pytorch3d_rasterizer(image_size, radius, k, seed):
    """Rasterization alone, before compositing: the same K points per pixel, depths and distances."""
    from pytorch3d.renderer import (
        FoVPerspectiveCameras,
        PointsRasterizationSettings,
        PointsRasterizer,
        look_at_view_transform,
    )
    from pytorch3d.structures import Pointclouds

    points, _, lengths = fractal_batch(3, seed, points=1500)
    settings = RenderSettings(image_size=image_size, radius=radius, points_per_pixel=k)
    idx, zbuf, dists = to_dense(rasterize_points(points, lengths, settings), 3, image_size)
    R, T = look_at_view_transform(dist=settings.camera_distance, elev=0.0, azim=0.0)
    cameras = FoVPerspectiveCameras(R=R, T=T, fov=settings.fov_degrees, znear=settings.znear, zfar=settings.zfar)
    clouds = Pointclouds(points=[p[:n] for p, n in zip(points, lengths.tolist())])
    reference = PointsRasterizer(cameras=cameras, raster_settings=PointsRasterizationSettings(
        image_size=image_size, radius=radius, points_per_pixel=k, bin_size=0))(clouds)
    offsets = torch.cumsum(lengths, 0) - lengths  # PyTorch3D indexes the packed points of all clouds
    packed = torch.where(idx >= 0, idx + offsets[:, None, None, None], -1)
    assert int((reference.idx >= 0).sum()) > 100, "nothing was rasterized: the test would prove nothing"
    assert torch.equal(packed, reference.idx)
    assert torch.equal(zbuf, reference.zbuf) and torch.equal(dists, reference.dists)


def test_rgb_random_points_and_other_camera_match_pytorch3d():
    g = torch.Generator().manual_seed(7)
    points = torch.rand((2, 1500, 3), generator=g) * 2.4 - 1.2
    colors = torch.rand((2, 1500, 3), generator=g)
    assert_parity(*both(points, colors, image_size=48, radius=0.04, camera_distance=6.0, fov_degrees=25.0))


def test_points_behind_camera_outside_view_and_near_plane():
    g = torch.Generator().manual_seed(3)
    inside = torch.rand((1, 400, 3), generator=g) - 0.5
    behind = torch.tensor([[[0.0, 0.0, 10.5], [0.01, 0.0, 12.0]]])  # view depth < 0: never drawn
    near = torch.tensor([[[0.0, 0.0, 9.5], [0.002, 0.001, 9.99]]])  # 0 <= depth < znear: PyTorch3D draws them
    outside = torch.tensor([[[5.0, 0.0, 0.0], [0.0, -3.0, 0.0], [0.9, 0.9, 0.0], [1e30, 0.0, 0.0]]])
    points = torch.cat([inside, behind, near, outside], dim=1)
    colors = torch.rand((1, points.shape[1], 3), generator=g)
    assert_parity(*both(points, colors, image_size=40, radius=0.05))
    only_behind = create_renderer("splat", image_size=40)(behind, torch.ones((1, 2, 3)))
    assert float(only_behind.abs().max()) == 0.0


def test_one_point_cloud_draws_the_expected_disc():
    points = torch.zeros((1, 1, 3))
    colors = torch.ones((1, 1, 3))
    splat, reference = both(points, colors, image_size=33, radius=0.1)
    assert_parity(splat, reference)
    # Radius 0.1 NDC = 1.65 px at 33 px: centre pixel weight 1, a plus-shaped disc of 9 pixels.
    assert float(splat[0, 16, 16, 0]) == 1.0
    assert int((splat[0, ..., 0] > 0).sum()) == int((reference[0, ..., 0] > 0).sum()) == 9


def test_depth_ties_keep_the_lower_index_like_pytorch3d():
    # Five coincident points (equal depth) with different colours: K=2 keeps indices 0 and 1.
    points = torch.zeros((1, 5, 3))
    colors = (torch.eye(5, 3) + 0.1)[None]
    splat, reference = both(points, colors, image_size=16, radius=0.2, points_per_pixel=2)
    assert_parity(splat, reference)
    assert torch.equal(splat, reference)


def test_padding_and_batch_composition_do_not_change_a_cloud_image():
    points, colors, lengths = fractal_batch(3, seed=11, points=1500)
    renderer = create_renderer("splat", image_size=48, radius=0.03)
    batch_images = renderer(points, colors, lengths)
    for i in range(3):
        n = int(lengths[i])
        alone = renderer(points[i:i + 1, :n], colors[i:i + 1, :n])
        padded = torch.cat([points[i:i + 1, :n], torch.full((1, 7, 3), float("nan"))], dim=1)
        pad_colors = torch.cat([colors[i:i + 1, :n], torch.full((1, 7, 4), 5.0)], dim=1)
        with_garbage = renderer(padded, pad_colors, torch.tensor([n]))
        assert torch.equal(alone[0], batch_images[i]) and torch.equal(with_garbage[0], batch_images[i])
    reordered = renderer(points.flip(0), colors.flip(0), lengths.flip(0))
    assert torch.equal(reordered.flip(0), batch_images)


def test_chunking_and_repeat_runs_are_bit_identical(monkeypatch):
    points, colors, lengths = fractal_batch(5, seed=12, points=1000, rgb="random")
    renderer = create_renderer("splat", image_size=40, radius=0.04)
    first = renderer(points, colors, lengths)
    assert torch.equal(first, renderer(points, colors, lengths))
    monkeypatch.setattr(splat_module, "CLOUDS_PER_CHUNK", 2)
    assert torch.equal(first, renderer(points, colors, lengths))
    monkeypatch.setattr(splat_module, "CHUNK_BUDGET_BYTES", 1)  # memory budget forces one cloud per chunk
    assert torch.equal(first, renderer(points, colors, lengths))


def test_auto_backend_is_splat_on_cpu_and_output_contract():
    renderer = create_renderer("auto", image_size=32)
    assert isinstance(renderer, SplatRenderer)
    images = renderer(torch.rand((2, 50, 3)) - 0.5, torch.ones((2, 50, 4)))
    assert images.shape == (2, 32, 32, 3) and images.dtype == torch.float32
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0


@pytest.mark.parametrize("points, colors, lengths", [
    (torch.zeros((0, 5, 3)), torch.zeros((0, 5, 3)), None),  # empty batch
    (torch.zeros((2, 0, 3)), torch.zeros((2, 0, 3)), None),  # clouds without points
    (torch.zeros((2, 5, 2)), torch.zeros((2, 5, 3)), None),  # not xyz
    (torch.zeros((2, 5, 3)), torch.zeros((2, 4, 3)), None),  # colors do not match
    (torch.zeros((2, 5, 3)), torch.zeros((2, 5, 3)), torch.tensor([5, 0])),  # a zero length
    (torch.zeros((2, 5, 3)), torch.zeros((2, 5, 3)), torch.tensor([5, 6])),  # length > N
])
def test_bad_inputs_raise_one_clear_user_error(points, colors, lengths):
    with pytest.raises(UserError):
        create_renderer("splat", image_size=16)(points, colors, lengths)


def test_memory_estimate_for_a_64_image_batch_is_bounded():
    settings = create_renderer("splat").settings
    per_chunk = splat_module.chunk_bytes(settings, n_points=10_000)
    # Chunks bound the working set whatever the batch: well under 1 GiB at the defaults.
    assert 0 < per_chunk < 2 ** 30


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:1"])
def test_auto_backend_renders_with_splat_on_every_device(monkeypatch, device):
    """"auto" means splat whatever the device (measured on an H200: splat is 2.3-4x faster than
    PyTorch3D on CUDA, README), and never needs PyTorch3D: with it unimportable, an auto worker
    still renders."""
    from submission import FractalConfig, GenerationConfig
    from submission.families import create_family
    from submission.plan import RunPlan

    monkeypatch.setitem(sys.modules, "pytorch3d", None)  # `import pytorch3d...` raises ImportError
    config = GenerationConfig(classes=1, images_per_class=2, image_size=32, workers=1,
                              fractal=FractalConfig(points=500, backend="auto"))
    family = create_family("fractal")
    plan = family.prepare(RunPlan(config=config, device=device, workers=1), categories=1)
    assert family.engine(plan) == f"splat on {device}"
    cpu_plan = plan.replace(device="cpu")  # the renderer is built on a device this machine has
    worker = family.worker(cpu_plan)
    assert isinstance(worker.renderer, SplatRenderer)
    images = worker.render(0, [0, 1], worker.class_context(0))
    assert images.shape == (2, 32, 32, 3) and images.max() > 0
    with pytest.raises(UserError, match="unknown renderer backend 'nope'"):
        family.check(config.replace(backend="nope"))
