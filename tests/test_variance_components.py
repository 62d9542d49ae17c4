"""The variance components of a seeds x fine-tuning-repeats grid, against hand computation."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from local_eval.compare.variance import (
    Z_POWER,
    binomial_sd,
    detectable_difference,
    nested_anova,
    rows,
    seeds_for,
)
from submission.errors import UserError

REPO = Path(__file__).resolve().parents[1]
# 3 pre-training seeds x 2 fine-tunings. Seed means 11, 15, 10; grand mean 12.
# MS between = 2 (1 + 9 + 4) / 2 = 14; MS within = (1 + 1) x 3 / (3 x 1) = 2.
# pretrain var = (14 - 2) / 2 = 6, finetune var = 2.
GRID = [[10.0, 12.0], [14.0, 16.0], [9.0, 11.0]]


def test_nested_anova_by_hand():
    parts = nested_anova(GRID)
    assert (parts.seeds, parts.repeats, parts.mean) == (3, 2, 12.0)
    assert (parts.ms_between, parts.ms_within) == (pytest.approx(14.0), pytest.approx(2.0))
    assert (parts.pretrain_var, parts.finetune_var) == (pytest.approx(6.0), pytest.approx(2.0))
    assert parts.run_var(1) == pytest.approx(8.0) and parts.run_var(3) == pytest.approx(6 + 2 / 3)
    # K* = sqrt(2 x 2 / (6 x 1)) with pre-training costing 2, a fine-tuning 1.
    assert parts.best_repeats(2.0, 1.0) == pytest.approx(math.sqrt(4 / 6))


def test_a_seed_effect_below_the_within_noise_is_zero_not_negative():
    # Equal seed means: MS between 0; MS within (25 + 25) x 2 / (2 x 1) = 50.
    parts = nested_anova([[0.0, 10.0], [10.0, 0.0]])
    assert parts.pretrain_var == 0.0 and parts.finetune_var == pytest.approx(50.0)
    assert parts.best_repeats(1.0, 1.0) == math.inf


@pytest.mark.parametrize("scores", [[[1.0, 2.0]], [[1.0], [2.0]], [[1.0, 2.0], [3.0]], []])
def test_too_small_or_ragged_grids_are_refused(scores):
    with pytest.raises(UserError, match="at least 2"):
        nested_anova(scores)


def test_power_and_test_sample_by_hand():
    assert Z_POWER == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    # p = 0.8 on 1000 images over 5 scored epochs: 100 x 5 x sqrt(0.16 / 1000) = 6.3246.
    assert binomial_sd(80.0, 1000, 5) == pytest.approx(6.324555, abs=1e-5)
    # sd 5, 8 seeds per recipe: 2.8016 x 5 x sqrt(2 / 8) = 7.004.
    assert detectable_difference(5.0, 8) == pytest.approx(Z_POWER * 2.5)
    # 2 (2.8016 x 5 / 7)^2 = 8.005: 9 seeds; exactly the detectable difference needs 8.
    assert seeds_for(5.0, 7.0) == 9 and seeds_for(5.0, Z_POWER * 2.5 * 1.0001) == 8
    table = rows(nested_anova(GRID), pretrain_cost=2.0, finetune_cost=1.0, difference=4.0)
    one, three = table
    assert (one["k"], one["run_cost"], one["var_x_cost"]) == (1, 3.0, pytest.approx(24.0))
    assert (three["k"], three["run_cost"], three["var_x_cost"]) == (3, 5.0,
                                                                    pytest.approx(100 / 3))
    assert one["seeds"] == math.ceil(2 * (Z_POWER * math.sqrt(8) / 4) ** 2) == 8
    assert one["cost_to_resolve"] == 2 * 8 * 3.0


def _script():
    spec = importlib.util.spec_from_file_location("variance_components",
                                                  REPO / "scripts" / "variance_components.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_grid(root: Path, grid) -> Path:
    """A compare folder whose runs hold only what the script reads."""
    for seed, scores in enumerate(grid):
        run = root / "runs" / "fractal" / "smoke" / f"seed{seed}"
        run.mkdir(parents=True)
        top1 = [50.0, 80.0, 80.0]  # scored epochs 2-3 at 80%
        report = {"seed": seed, "score": sum(scores) / len(scores), "repeat_scores": scores,
                  "wall_seconds": {"pretrain": 120.0, "finetune": 60.0 * len(scores)},
                  "downstream": {"folder": {"finetune": {"top1": top1}, "test_images": 1000}}}
        (run / "report.json").write_text(json.dumps(report))
    return root


def test_the_script_prints_the_hand_computed_components(tmp_path, capsys):
    grid = _fake_grid(tmp_path / "grid", GRID)
    assert _script().main([str(grid), "--diff", "4"]) == 0
    out = capsys.readouterr().out
    assert "3 pre-training seeds x 2 fine-tunings, mean score 12.00" in out
    assert f"pre-training seed  sd {math.sqrt(6):6.2f}  (75%" in out
    assert f"fine-tuning seed   sd {math.sqrt(2):6.2f}  (25%" in out
    assert f"test sample        sd {binomial_sd(80.0, 1000, 2):6.2f}" in out
    assert "pre-training 2.00 min, each fine-tuning 1.00 min" in out
    assert f"1 | {math.sqrt(8):.2f} | 3.00 | 24.0 | 8 | 48" in out
    assert "seed 1: 14.00, 16.00" in out
    assert _script().main([str(grid), "--diff", "4", "--pretrain-minutes", "4",
                           "--finetune-minutes", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "pre-training 4.00 min, each fine-tuning 0.50 min (as given)" in out
    assert f"3 | {math.sqrt(6 + 2 / 3):.2f} | 5.50 | {(6 + 2 / 3) * 5.5:.1f} |" in out
    # First repeats 10, 14, 9: mean 11, sd sqrt((1 + 9 + 4) / 2) = sqrt(7).
    assert f"mean of their first 1 repeat(s) is {math.sqrt(7):.2f}" in out
    # Both repeats (K = 2 here, the most there is): seed means 11, 15, 10, sd sqrt(7) again.
    assert f"mean of their first 2 repeat(s) is {math.sqrt(7):.2f}" in out


def test_the_script_refuses_bad_input_in_one_line(tmp_path, capsys):
    script = _script()
    single = _fake_grid(tmp_path / "single", [[10.0], [12.0]])
    for argv, words in [([str(tmp_path / "nope")], "holds no dataset folders"),
                        ([str(single)], "--finetune-repeats 2 or more"),
                        ([str(single), "--diff", "0"], "--diff must be a positive number"),
                        ([str(single), "--finetune-minutes", "nan"], "--finetune-minutes must"),
                        ([str(single), "--preset", "quick"], "no preset 'quick'")]:
        assert script.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and words in err, err


def test_observed_sd_of_k_repeat_runs_by_hand():
    observed_sd = _script().observed_sd
    # First repeats 10, 14: sd sqrt(8); means of both 15, 14: sd sqrt(0.5).
    assert observed_sd([[10.0, 20.0], [14.0, 14.0]], 1) == pytest.approx(math.sqrt(8))
    assert observed_sd([[10.0, 20.0], [14.0, 14.0]], 2) == pytest.approx(math.sqrt(0.5))
