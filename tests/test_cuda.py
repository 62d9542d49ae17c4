"""CUDA checks: skipped on machines without a GPU (CI never has one); run them where one is lent:
`python -m pytest -m cuda`."""
import pytest
import torch

from submission import FractalConfig, GenerationConfig, generate
from submission.families.fractal.render import create_renderer, pytorch3d_available
from submission.tools.bench import bench_clouds
from submission.tools.verify import verify_dataset

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def fractal_batch():
    return bench_clouds(n_images=6, n_points=3000, seed=1)


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
    config = GenerationConfig(classes=2, images_per_class=4, image_size=64, device="cuda", workers=1, fractal=FractalConfig(points=2000))
    out = generate(tmp_path / "cuda", config, progress=False)
    report = verify_dataset(out, classes=2, images_per_class=4)
    assert report.image_size == (64, 64) and report.mode == "RGB"
    assert report.images == 8
