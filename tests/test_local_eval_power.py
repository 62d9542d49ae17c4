"""Resolving power of `compare`: the paired t-test's power, the smallest detectable difference,
the seeds a difference needs, and the resolution floor that keeps quantised ties from verdicts."""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from local_eval.cli import main
from local_eval.compare.power import (
    min_detectable_effect,
    noncentral_t_cdf,
    paired_power,
    power_summary,
    resolution_of,
    score_resolution,
    seeds_needed,
)
from local_eval.compare.report import markdown, summarize
from local_eval.compare.stats import BETTER, CANT_TELL, paired_difference, t_cdf


# Reference values computed with scipy 1.17.1 (`scipy.stats.nct.cdf(t, df, nc)`), which this
# project does not depend on; our integral agrees to ~1e-11.
@pytest.mark.parametrize("t, df, nc, expected", [(2.0, 4, 1.0, 0.7645674538243243),
                                                 (-1.0, 2, 0.5, 0.10327857197969201),
                                                 (4.303, 2, 3.0, 0.6126546221102789)])
def test_noncentral_t_cdf_matches_scipy(t, df, nc, expected):
    assert noncentral_t_cdf(t, df, nc) == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize("t, df", [(1.5, 1), (-0.7, 3), (2.2, 30)])
def test_noncentral_t_without_shift_is_student_t(t, df):
    assert noncentral_t_cdf(t, df, 0.0) == pytest.approx(t_cdf(t, df), abs=1e-9)


def test_power_and_seeds_match_the_textbook():
    # Two-sided paired t-test at alpha 0.05, 80% power. G*Power ("Means: difference from
    # constant (one sample case)"), and scipy.stats.nct the same way, give: effect size d = 0.5
    # needs 34 pairs (power 0.8078; 33 give 0.7954), d = 0.8 needs 15 (0.8213; 14: 0.7901),
    # d = 1.0 needs 10 (0.8031; 9: 0.7480).
    assert paired_power(34, 0.5) == pytest.approx(0.8077775, abs=1e-6)
    assert paired_power(33, 0.5) == pytest.approx(0.7953658, abs=1e-6)
    assert paired_power(10, 1.0) == pytest.approx(0.8030969, abs=1e-6)
    assert paired_power(9, -1.0) == pytest.approx(0.7480171, abs=1e-6)  # sign does not matter
    assert (seeds_needed(0.5), seeds_needed(0.8), seeds_needed(1.0)) == (34, 15, 10)
    # The normal approximation, n = ((z(0.975) + z(0.8)) / d)^2 = (2.8016 / 0.01)^2 = 78,489,
    # is 2 short of the exact 78,491 at d = 0.01; at d = 1e-5 it is 7.8e10: over the cap.
    assert seeds_needed(0.01) == 78491
    assert seeds_needed(1e-5) is None and seeds_needed(0.0) is None


def test_min_detectable_difference():
    # Solved from scipy's power with brentq: 3 pairs detect 3.2640 sd, 5 pairs 1.6820 sd,
    # 10 pairs 0.9960 sd with 80% power (two-sided, 5%).
    for n, effect in [(3, 3.2640436), (5, 1.6819970), (10, 0.9960014)]:
        assert min_detectable_effect(n) == pytest.approx(effect, rel=1e-6)
        assert paired_power(n, min_detectable_effect(n)) == pytest.approx(0.8, abs=1e-6)
    # At sd 2, 3 seeds detect 2 * 3.2640 = 6.528: a target just above needs those 3 seeds,
    # one just below a 4th.
    summary = power_summary(3, 2.0, target=6.53)
    assert summary["min_detectable_difference"] == pytest.approx(6.528087, rel=1e-6)
    assert summary["seeds_for_target"] == 3
    assert power_summary(3, 2.0, target=6.52)["seeds_for_target"] == 4
    assert power_summary(1, None, 5.0)["min_detectable_difference"] is None


def test_score_resolution_is_one_test_image_in_one_scored_epoch():
    one = {"downstream": {"cifar100": {"test_images": 16}}}
    assert score_resolution(one) == 100 / 16
    # The score is the mean over sets: one image of the 32-image set moves it 100 / 32 / 2.
    two = {"downstream": {"a": {"test_images": 16}, "b": {"test_images": 32}}}
    assert score_resolution(two) == pytest.approx(100 / 32 / 2)
    assert score_resolution({"downstream": {"a": {}}}) is None
    # A run of K fine-tuning repeats scores their mean: one image in one repeat moves it 1/K as far.
    repeated = {"downstream": {"cifar100": {"test_images": 16}}, "finetune_repeats": 3}
    assert score_resolution(repeated) == pytest.approx(100 / 16 / 3)
    assert resolution_of([one, two, {}]) == 100 / 16


def test_identical_quantised_differences_give_no_verdict():
    # The smoke preset's 16 test images: every seed 6.25 better (one image in one scored epoch).
    unfloored = paired_difference([93.75] * 3, [100.0] * 3)
    assert (unfloored.low, unfloored.high, unfloored.verdict) == (-6.25, -6.25, BETTER)
    floored = paired_difference([93.75] * 3, [100.0] * 3, std_floor=6.25)
    half = 4.302653 * 6.25 / math.sqrt(3)  # t(0.975, 2) * floor / sqrt(n) = 15.526
    assert (floored.std, floored.observed_std) == (6.25, 0.0)
    assert (floored.low, floored.high) == (pytest.approx(-6.25 - half), pytest.approx(-6.25 + half))
    assert floored.verdict == CANT_TELL
    # The floor does not touch a spread above it.
    wide = paired_difference([90.0, 80.0, 70.0], [100.0] * 3, std_floor=6.25)
    assert wide.std == wide.observed_std == pytest.approx(10.0)


def _report(score: float, test_images: int = 16) -> dict:
    return {"score": score, "downstream_scores": {"cifar100": score},
            "downstream": {"cifar100": {"test_images": test_images}}}


def _plan(tmp_path: Path, target_diff=None) -> SimpleNamespace:
    names, seeds = ("fractal", "noise"), (0, 1, 2)
    keys = [(d, "smoke", s) for s in seeds for d in names]
    return SimpleNamespace(
        out=tmp_path, baseline="fractal", seeds=seeds, presets=("smoke",), calibrate=(),
        target_diff=target_diff, datasets=[SimpleNamespace(name=n) for n in names],
        keys=lambda: keys, run_dir=lambda key: tmp_path / "runs" / key[0] / key[1] / str(key[2]),
        identity=lambda: {})


def test_the_report_floors_the_spread_and_gives_the_power(tmp_path):
    plan = _plan(tmp_path)
    reports = {("fractal", "smoke", s): _report(100.0) for s in plan.seeds}
    reports.update({("noise", "smoke", s): _report(93.75) for s in plan.seeds})
    summary = summarize(plan, reports)
    row = next(r for r in summary["summary"] if r["dataset"] == "noise")["vs_baseline"]
    assert row["verdict"] == CANT_TELL  # the old report said "better" for [-6.25, -6.25]
    assert (row["std_difference"], row["score_resolution"], row["paired_std"]) == (0.0, 6.25, 6.25)
    assert row["min_detectable_difference"] == pytest.approx(3.2640436 * 6.25, rel=1e-6)
    # Default target: 5% of the baseline's mean 100 = 5 points = 0.8 sd -> 15 seeds (above).
    assert (row["target_difference"], row["seeds_for_target"]) == (pytest.approx(5.0), 15)
    table = markdown(summary)
    assert "| 6.25 | 20.40 | 15 (X = 5.00) |" in table
    assert "5% of the baseline's mean score per preset" in table
    # --target-diff 6.25: 1 sd -> 10 seeds.
    summary = summarize(_plan(tmp_path, target_diff=6.25), reports)
    row = next(r for r in summary["summary"] if r["dataset"] == "noise")["vs_baseline"]
    assert (row["target_difference"], row["seeds_for_target"]) == (6.25, 10)
    assert "--target-diff 6.25" in markdown(summary)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_target_diff_must_be_positive(value, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "scratch", "--out", str(out), "--presets", "smoke",
                 "--target-diff", value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --target-diff must be a positive") and "\n" not in err, err
    assert not out.exists()
