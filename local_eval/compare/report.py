"""compare.json, compare.md and compare.png of a comparison (finished or not).

Per dataset x preset: the scores of the finished seeds, their mean and standard deviation, and
the paired difference to the baseline dataset over the seeds both have finished, with a 95%
Student-t interval and a verdict (lower scores are better).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

from submission.fileio import write_atomic

from ..core.outputs import figure_png, write_json
from .power import MAX_SEEDS_REPORTED, power_summary, resolution_of
from .stats import mean_std, paired_difference, spearman, t_quantile

METRIC = ("score = mean over the downstream sets of the sum over fine-tuning epochs "
          "ceil(E/2)..E of (100 - top-1 %); lower is better")
DEFAULT_TARGET_FRACTION = 0.05  # --target-diff unset: 5% of the baseline's mean score


def _row(plan, reports: Dict[tuple, Dict[str, Any]], dataset: str, preset: str
         ) -> Dict[str, Any]:
    seeds = [s for s in plan.seeds if (dataset, preset, s) in reports]
    scores = [reports[(dataset, preset, s)]["score"] for s in seeds]
    row: Dict[str, Any] = {"dataset": dataset, "preset": preset, "seeds": seeds,
                           "scores": scores, "n": len(scores), "mean": None, "std": None,
                           "downstream_means": {}, "vs_baseline": None}
    if not scores:
        return row
    row["mean"], row["std"] = mean_std(scores)
    sets = reports[(dataset, preset, seeds[0])]["downstream_scores"]
    row["downstream_means"] = {name: mean_std([reports[(dataset, preset, s)]
                                               ["downstream_scores"][name] for s in seeds])[0]
                               for name in sets}
    if dataset == plan.baseline:
        return row
    paired = [s for s in seeds if (plan.baseline, preset, s) in reports]
    if paired:
        base = [reports[(plan.baseline, preset, s)]["score"] for s in paired]
        mine = [reports[(dataset, preset, s)]["score"] for s in paired]
        resolution = resolution_of(reports[(d, preset, s)] for s in paired
                                   for d in (dataset, plan.baseline))
        result = paired_difference(mine, base, std_floor=resolution or 0.0)
        row["vs_baseline"] = {
            "baseline": plan.baseline, "seeds": paired, "n": result.n,
            "mean_difference": result.mean, "std_difference": result.observed_std,
            "score_resolution": resolution, "paired_std": result.std,
            "ci95": None if result.low is None else [result.low, result.high],
            "t_quantile": result.t, "verdict": result.verdict,
            **power_summary(result.n, result.std, target_difference(plan, reports, preset))}
    return row


def target_difference(plan, reports: Dict[tuple, Dict[str, Any]], preset: str
                      ) -> Optional[float]:
    """--target-diff, else 5% of the baseline's mean score under `preset` (None: no seed of
    the baseline has finished)."""
    if plan.target_diff is not None:
        return plan.target_diff
    scores = [reports[(plan.baseline, preset, s)]["score"] for s in plan.seeds
              if (plan.baseline, preset, s) in reports]
    return DEFAULT_TARGET_FRACTION * sum(scores) / len(scores) if scores else None


def summarize(plan, reports: Dict[tuple, Dict[str, Any]]) -> Dict[str, Any]:
    """compare.json's content."""
    runs = []
    for key in plan.keys():
        report = reports.get(key)
        runs.append({"dataset": key[0], "preset": key[1], "seed": key[2],
                     "run_dir": str(plan.run_dir(key).relative_to(plan.out)),
                     "status": "finished" if report else "pending",
                     "score": None if report is None else report["score"],
                     "downstream_scores": None if report is None
                     else report["downstream_scores"]})
    rows = [_row(plan, reports, d.name, p) for p in plan.presets for d in plan.datasets]
    return {"metric": METRIC, "baseline": plan.baseline, "seeds": list(plan.seeds),
            "target_diff": plan.target_diff,
            "calibration": calibration(plan, rows),
            "complete": all(r["status"] == "finished" for r in runs),
            "finished_runs": sum(r["status"] == "finished" for r in runs),
            "total_runs": len(runs), "summary": rows, "runs": runs, "plan": plan.identity()}


def calibration(plan, rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Per calibration table and preset: Spearman's rank correlation between our mean scores and
    the 4th-place entry's published numbers (submission.calibration), oriented so that +1 means
    our evaluator orders the recipes exactly as the published results do (our score: lower is
    better). Only datasets named like the table's recipes with every seed finished count."""
    from .calibration import TABLES, published

    result: Dict[str, Any] = {}
    for table in plan.calibrate:
        values, lower_is_better = published(table), TABLES[table].lower_is_better
        result[table] = {}
        for preset in plan.presets:
            ours = {r["dataset"]: r["mean"] for r in rows if r["preset"] == preset
                    and r["dataset"] in values and r["n"] == len(plan.seeds)}
            names = sorted(ours)
            rho = spearman([ours[n] for n in names],
                           [values[n] if lower_is_better else -values[n] for n in names])
            result[table][preset] = {"spearman": rho, "n": len(names), "metric": TABLES[table].metric,
                                     "ours": ours, "published": {n: values[n] for n in names}}
    return result


def _target_source(summary: Dict[str, Any]) -> str:
    target = summary.get("target_diff")
    return "5% of the baseline's mean score per preset" if target is None else \
        f"--target-diff {target:g}"


def _power_cells(comparison: Dict[str, Any]) -> str:
    """The paired sd, MDD and seeds-for-X cells (with the row's closing bar)."""
    seeds = comparison["seeds_for_target"]
    target = comparison["target_difference"]
    needed = "–" if target is None or not comparison["paired_std"] else \
        f"{'> ' + format(MAX_SEEDS_REPORTED, ',') if seeds is None else seeds} (X = {target:.2f})"
    return (f"| {_number(comparison['paired_std'])} "
            f"| {_number(comparison['min_detectable_difference'])} | {needed} |")


def _number(value: Optional[float], signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def markdown(summary: Dict[str, Any]) -> str:
    """The table of compare.md."""
    baseline = summary["baseline"]
    lines = [f"# local_eval compare ({summary['finished_runs']}/{summary['total_runs']} runs "
             f"finished)", "",
             f"{METRIC}. Seeds {', '.join(map(str, summary['seeds']))}; Δ is the paired "
             f"difference to `{baseline}` (same seeds) with its 95% Student-t interval; "
             f"better / worse when the interval excludes 0. Paired sd: the spread of the "
             f"differences, at least the score's resolution (one test image in one scored "
             f"epoch). MDD: the smallest true difference that n seeds detect with 80% power "
             f"(two-sided paired t-test at the 5% level); seeds for ±X: how many would detect "
             f"a difference of X ({_target_source(summary)}).", "",
             f"| preset | dataset | score mean ± std | n | Δ vs {baseline} [95% CI] | verdict "
             f"| paired sd | MDD (80%) | seeds for ±X |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in summary["summary"]:
        spread = "" if row["std"] is None else f" ± {row['std']:.2f}"
        score = "–" if row["mean"] is None else f"{row['mean']:.2f}{spread}"
        versus, verdict, power = "–", "", "| | | |"
        if row["dataset"] == baseline:
            versus, verdict = "baseline", ""
        elif row["vs_baseline"] is not None:
            comparison = row["vs_baseline"]
            interval = comparison["ci95"]
            versus = _number(comparison["mean_difference"], signed=True) + (
                "" if interval is None else
                f" [{_number(interval[0], True)}, {_number(interval[1], True)}]")
            verdict = comparison["verdict"]
            power = _power_cells(comparison)
        lines.append(f"| {row['preset']} | {row['dataset']} | {score} | {row['n']} | {versus} "
                     f"| {verdict} {power}")
    for table, presets in summary.get("calibration", {}).items():
        lines += ["", f"Calibration against the 4th-place table `{table}` (Spearman rank correlation "
                  "of our mean scores with the published values; +1: the same order, -1: reversed):", "",
                  "| preset | recipes | Spearman |", "|---|---|---|"]
        for preset, entry in presets.items():
            rho = "–" if entry["spearman"] is None else f"{entry['spearman']:+.2f}"
            lines.append(f"| {preset} | {entry['n']} | {rho} |")
    from .diagnostics import stats_lines

    return "\n".join(lines + stats_lines(summary.get("data_stats") or {})) + "\n"


def plot(summary: Dict[str, Any]) -> bytes:
    """compare.png: one panel per preset; every seed a point, the mean with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    presets = list(dict.fromkeys(row["preset"] for row in summary["summary"]))
    figure, axes_list = plt.subplots(1, len(presets), figsize=(4.2 * len(presets), 4.2),
                                     dpi=110, squeeze=False)
    for axes, preset in zip(axes_list[0], presets):
        rows = [row for row in summary["summary"] if row["preset"] == preset]
        for x, row in enumerate(rows):
            count = len(row["scores"])
            if count == 0:
                continue
            offsets = [0.0] if count < 2 else [-0.15 + 0.3 * i / (count - 1) for i in range(count)]
            axes.scatter([x + o for o in offsets], row["scores"], s=18, color=f"C{x % 10}",
                         alpha=0.6, zorder=2)
            if row["mean"] is not None:
                half = 0.0 if row["std"] is None else \
                    t_quantile(0.975, count - 1) * row["std"] / math.sqrt(count)
                axes.errorbar([x + 0.3], [row["mean"]], yerr=[half], fmt="D", color="black",
                              capsize=4, zorder=3)
        labels: List[str] = []
        for row in rows:
            verdict = "baseline" if row["dataset"] == summary["baseline"] else \
                (row["vs_baseline"] or {}).get("verdict", "")
            labels.append(f"{row['dataset']}\n{verdict}")
        axes.set_xticks(range(len(rows)))
        axes.set_xticklabels(labels, fontsize=8)
        axes.set_title(preset, fontsize=10)
        axes.set_ylabel("score (lower is better)")
        axes.grid(alpha=0.3, axis="y")
    figure.suptitle("seeds (dots), mean and 95% t-interval (black)", fontsize=9)
    figure.tight_layout()
    return figure_png(figure)


def write_outputs(plan, reports: Dict[tuple, Dict[str, Any]]) -> Dict[str, Any]:
    """Write compare.json, compare.md and compare.png; returns compare.json's content."""
    from .diagnostics import dataset_diagnostics

    summary = summarize(plan, reports)
    summary["data_stats"] = dataset_diagnostics(plan)
    write_json(summary, plan.out / "compare.json")
    write_atomic(plan.out / "compare.md", markdown(summary).encode())
    write_atomic(plan.out / "compare.png", plot(summary))
    return summary
