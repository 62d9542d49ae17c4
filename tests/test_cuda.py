"""CUDA checks: skipped on machines without a GPU (CI never has one); run them where one is lent:
`python -m pytest -m cuda`."""
import pytest
import torch

from submission import GenerationConfig, generate
from submission.config import PointAugmentConfig
from submission.fractal import build_bank
from submission.pointcloud import augment_cloud
from submission.render import create_renderer, pytorch3d_available
from submission.seeding import rng_for
from submission.verify import verify_dataset

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def fractal_batch(n_images=6, points=3000):
    bank = build_bank(2, seed=1, points=points)
    views = [augment_cloud(bank.point_cloud(j % 2), PointAugmentConfig(), rng_for(1, 2, j % 2, j)) for j in range(n_images)]
    lengths = torch.tensor([len(p) for p, _ in views])
    pts = torch.zeros(n_images, int(lengths.max()), 3)
    cols = torch.zeros(n_images, int(lengths.max()), 4)
    for i, (p, c) in enumerate(views):
        pts[i, :len(p)], cols[i, :len(c)] = torch.from_numpy(p), torch.from_numpy(c)
    return pts, cols, lengths


def test_splat_on_cuda_matches_splat_on_cpu():
    pts, cols, lengths = fractal_batch()
    cpu = create_renderer("splat", image_size=96, device="cpu")(pts, cols, lengths)
    cuda = create_renderer("splat", image_size=96, device="cuda")(pts, cols, lengths).cpu()
    assert (cuda - cpu).abs().mean() < 1e-3


@pytest.mark.skipif(not pytorch3d_available(), reason="needs PyTorch3D")
def test_splat_matches_pytorch3d_on_cuda():
    pts, cols, lengths = fractal_batch()
    splat = create_renderer("splat", image_size=96, device="cuda")(pts, cols, lengths)
    reference = create_renderer("pytorch3d", image_size=96, device="cuda")(pts, cols, lengths)
    assert (splat - reference).abs().mean() < 1e-3


def test_generate_on_cuda(tmp_path):
    config = GenerationConfig(classes=2, images_per_class=4, image_size=64, points=2000, device="cuda", workers=1)
    out = generate(tmp_path / "cuda", config, progress=False)
    report = verify_dataset(out, classes=2, images_per_class=4)
    assert report.image_size == (64, 64) and report.mode == "RGB"
    assert report.images == 8
