"""Pipeline-mode `fer-xai compare` at the study's size: image bootstrap of IoU/F1.

Fabricates, in a temporary project, 4 networks x 5 folds x 6 expressions with about 20
standardized 275 x 224 maps per (fold, expression) (the formats of the heatmaps stage), then times

* the bootstrap alone (``image_bootstrap``, the vectorised resample -> stretch -> Otsu -> IoU/F1),
* the whole stage (``compare_pipeline``: tables, figures, dendrograms, threshold-free measures),

and checks a handful of resamples against the direct recipe (``fold_heatmap`` + Otsu + counts).

    .venv/bin/python benchmarks/bench_compare_bootstrap.py [--samples 500] [--per-class 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--networks", type=int, default=4)
    a = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench_compare_"))
    (root / "params.yaml").write_text("{}\n")
    (root / "dvc.yaml").write_text("stages: {}\n")
    os.environ["FER_XAI_ROOT"] = str(root)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    warnings.simplefilter("ignore")

    import numpy as np
    from pipeline_fixtures import write_heatmaps, write_masks

    from fer_xai.compare import metrics as M
    from fer_xai.compare.metrics import aggregate, fold_metrics
    from fer_xai.compare.pipeline import (
        _multiplicities,
        fold_heatmap,
        image_bootstrap,
        load_standardized,
        resampled_counts,
    )
    from fer_xai.compare.published import load_published
    from fer_xai.config import Params
    from fer_xai.stages.compare import compare_pipeline

    shape = (275, 224)
    models = ("silnet", "weinet", "songnet", "mobilenetv3")[: a.networks]
    t = time.perf_counter()
    write_masks(root, shape)
    write_heatmaps(root, models=models, folds=(1, 2, 3, 4, 5), per_class=a.per_class - 1, shape=shape)
    print(f"fabricated {len(models)} networks x 5 folds x 6 expressions in {time.perf_counter() - t:.1f}s")

    data = load_published(root / "heatmaps", root / "masks", ("by_cv", "by_net"))
    maps = load_standardized(root / "heatmaps" / "standardized", shape, data.networks)
    n_img = sum(maps.counts.values())
    table = aggregate(fold_metrics(data.by_cv, data.masks), data.networks, data.expressions)
    folds = {n: [1, 2, 3, 4, 5] for n in data.networks}

    # exactness on a few resamples of one fold
    stack = maps.stack(data.networks[0], 1, "Fear")
    inside = M.binarize_mask(data.masks["Fear"])
    w = _multiplicities(np.random.default_rng(0), 5, stack.shape[0])
    got = resampled_counts(stack.reshape(stack.shape[0], -1), w, inside.ravel())
    for r in range(5):
        c = M.confusion_counts(M.binarize_heatmap(fold_heatmap(np.repeat(stack, w[r], axis=0))), inside)
        assert (got.tp[r], got.fp[r], got.fn[r]) == (c["tp"], c["fp"], c["fn"])

    t = time.perf_counter()
    boot, _ = image_bootstrap(maps, data.masks, table, data.networks, data.expressions, folds,
                              n_samples=a.samples, seed=1)
    dt = time.perf_counter() - t
    cells = len(data.networks) * 6
    print(f"image bootstrap: {cells} cells, {n_img} images, {a.samples} samples: {dt:.1f}s "
          f"({dt / (cells * 5 * a.samples) * 1e3:.3f} ms per fold resample)")

    params = Params.model_validate({"compare": {"bootstrap_samples": a.samples}})
    t = time.perf_counter()
    compare_pipeline(params)
    print(f"compare_pipeline (whole stage, {a.samples} samples): {time.perf_counter() - t:.1f}s")
    print(boot.head(4).to_string(index=False))


if __name__ == "__main__":
    main()
