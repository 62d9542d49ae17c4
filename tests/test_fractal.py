import numpy as np
import pytest

from submission.errors import UserError
from submission.fractal import (MAX_MAPS, MIN_AXIS_VARIANCE, CategoryBank, build_bank, orbit_cloud,
                                sample_candidates, valid_candidates)


@pytest.fixture(scope="module")
def bank():
    return build_bank(6, seed=3, points=3000)


def test_bank_is_deterministic_and_prefix_stable(bank):
    again = build_bank(6, seed=3, points=3000)
    np.testing.assert_array_equal(again.candidate_ids, bank.candidate_ids)
    np.testing.assert_array_equal(again.maps, bank.maps)
    smaller = build_bank(3, seed=3, points=3000, chunk=512)  # other batching, same categories
    np.testing.assert_array_equal(smaller.candidate_ids, bank.candidate_ids[:3])
    assert not np.array_equal(build_bank(3, seed=4, points=3000).maps, bank.maps[:3])


def test_clouds_are_normalized_centred_and_pass_the_variance_filter(bank):
    for category in range(len(bank)):
        cloud = bank.point_cloud(category)
        assert cloud.shape == (3000, 3) and cloud.dtype == np.float32
        assert np.isfinite(cloud).all()
        lo, hi = cloud.min(axis=0), cloud.max(axis=0)
        np.testing.assert_allclose((lo + hi) / 2, 0, atol=1e-6)  # centred per axis
        assert np.isclose((hi - lo).max(), 2.0, atol=1e-6)  # longest axis spans exactly [-1, 1]
        assert (cloud.var(axis=0) >= MIN_AXIS_VARIANCE - 1e-6).all()


def test_cloud_is_bit_identical_alone_or_in_a_batch(bank):
    maps, probs = sample_candidates(3, bank.candidate_ids)
    np.testing.assert_array_equal(maps, bank.maps)
    np.testing.assert_array_equal(bank.point_cloud(2), bank.point_cloud(2))
    alone = valid_candidates(3, bank.candidate_ids[2:3], maps[2:3], probs[2:3], 3000)
    assert alone.all()


def test_map_count_and_probabilities(bank):
    used = (bank.maps != 0).any(axis=(2, 3)).sum(axis=1)
    assert ((used >= 2) & (used <= MAX_MAPS)).all()
    np.testing.assert_allclose(bank.probs.sum(axis=1), 1.0)
    dets = np.abs(np.linalg.det(bank.maps[..., :3]))
    np.testing.assert_allclose(bank.probs, dets / dets.sum(axis=1, keepdims=True))
    assert (np.abs(bank.maps) <= 1).all()


def test_degenerate_maps_are_rejected():
    ids = np.arange(3)
    maps = np.zeros((3, MAX_MAPS, 3, 4))
    # 0: expanding maps -> the orbit overflows to inf/NaN
    maps[0, :2, :, :3] = np.eye(3) * 5.0
    maps[0, :2, :, 3] = 1.0
    # 1: a planar IFS (z is always 0) -> zero variance along z
    maps[1, :2, :2, :2] = [[0.5, 0.1], [0.2, 0.5]]
    maps[1, :2, :2, 3] = [[0.5, 0.0], [0.0, 0.5]]
    maps[1, :2, 2, 2] = 0.0
    # 2: an accepted category, under its own candidate id
    healthy = build_bank(1, seed=0, points=2000)
    ids[2] = healthy.candidate_ids[0]
    maps[2] = healthy.maps[0]
    dets = np.abs(np.linalg.det(maps[..., :3]))
    with np.errstate(invalid="ignore", divide="ignore"):
        probs = dets / dets.sum(axis=1, keepdims=True)
    probs[1] = [0.5, 0.5, 0, 0, 0, 0, 0]  # dets are zero for the planar maps; give them weights
    valid = valid_candidates(0, ids, maps, probs, 2000)
    assert valid.tolist() == [False, False, True]
    np.testing.assert_array_equal(orbit_cloud(0, int(ids[2]), maps[2], probs[2], 2000), healthy.point_cloud(0))


def test_bank_save_load_roundtrip(tmp_path, bank):
    path = bank.save(tmp_path / "bank.npz")
    loaded = CategoryBank.load(path)
    np.testing.assert_array_equal(loaded.point_cloud(4), bank.point_cloud(4))
    assert len(loaded) == len(bank) and loaded.points == bank.points


def test_bank_errors(tmp_path, bank):
    with pytest.raises(UserError, match="cannot read category bank"):
        CategoryBank.load(tmp_path / "missing.npz")
    with pytest.raises(UserError, match="outside this bank"):
        bank.point_cloud(len(bank))
    with pytest.raises(UserError, match="at least one category"):
        build_bank(0)


@pytest.mark.parametrize("changes, fragment", [
    ({"classes": 7}, "7 classes"),
    ({"seed": 4}, "seed 4"),
    ({"points": 2000}, "2000 points"),
])
def test_bank_must_fit_the_config(bank, changes, fragment):
    from submission import GenerationConfig

    fitting = GenerationConfig(classes=6, seed=3, points=3000)
    bank.check_fits(fitting)
    bank.check_fits(fitting.replace(classes=2))  # a prefix of the bank serves fewer classes
    with pytest.raises(UserError, match="does not fit the config") as info:
        bank.check_fits(fitting.replace(**changes))
    assert fragment in str(info.value)
