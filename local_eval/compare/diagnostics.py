"""compare.md's data diagnostics: `python -m local_eval stats` of every pre-training dataset of a
comparison, computed once per dataset content and kept in COMPARE_DIR/cache/stats/.

The cache key is the dataset's content (a folder's fingerprint, a generation config's hash, the
noise shape and seed: what `DatasetSpec.content()` says), the crop sizes and the sample, so a
dataset changed in place is measured again, like its runs are redone.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List

from submission.errors import UserError

from ..core.outputs import write_json
from ..stats.images import dataset_stats
from ..stats.table import stats_table

SAMPLE = {"classes": 20, "per_class": 10, "seed": 0}
VERSION = 1  # bump when a statistic's definition changes: old cache entries are not reused


def dataset_diagnostics(plan) -> Dict[str, Dict[str, Any]]:
    """dataset name -> its statistics (or {"error": why}) for every dataset with images;
    crop sizes: the presets' img_size values."""
    crops = sorted({config.img_size for config in plan.configs.values()})
    result: Dict[str, Dict[str, Any]] = {}
    for dataset in plan.datasets:
        folder = dataset.path(plan.cache)
        if folder is None or not folder.is_dir():
            continue
        key = json.dumps({"content": dataset.content(), "crops": crops, "version": VERSION,
                          **SAMPLE}, sort_keys=True)
        cached = plan.cache / "stats" / (f"{dataset.name}-"
                                         f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json")
        if cached.is_file():
            result[dataset.name] = json.loads(cached.read_text())
            continue
        try:
            stats = dataset_stats(folder, crops=crops, **SAMPLE)
        except UserError as error:  # e.g. mixed image sizes: training takes them, stats not
            stats = {"error": str(error)}
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_json(stats, cached)
        result[dataset.name] = stats
    return result


def stats_lines(stats: Dict[str, Dict[str, Any]]) -> List[str]:
    """The data diagnostics table (python -m local_eval stats) of the pre-training datasets."""
    if not stats:
        return []
    measured = {name: entry for name, entry in stats.items() if "error" not in entry}
    lines = ["", "Pre-training data, measured without training (`python -m local_eval stats` "
             "on a seeded sample of up to 20 classes x 10 images; blank: crops with pixel std "
             "< 4 at each preset's crop size; edges: Sobel magnitude > 100; centroid acc.: "
             "two-fold nearest-centroid accuracy on 16 x 16 pixels):", ""]
    if measured:
        lines += stats_table(measured).rstrip("\n").split("\n")
    lines += [f"- {name}: not measured ({entry['error']})" for name, entry in stats.items()
              if "error" in entry]
    return lines
