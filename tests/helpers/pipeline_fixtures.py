"""Fabricated outputs of the masks and heatmaps stages (the formats those stages write), for the compare
and report tests: ``masks/<Expression>_gt.png``, ``heatmaps/standardized/<model>/fold<k>.npz``
and the published-layout ``heatmaps/by_cv`` and ``heatmaps/by_net`` PNGs built from them with
the heatmap recipe (stretched mean of the standardized maps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from fer_xai.heatmaps.aggregate import HeatmapSums, to_png
from fer_xai.labels import DISPLAY_NAMES, EXPRESSIONS

SHAPE = (44, 36)  # small stand-in for the 275 x 224 canonical space
MODELS = ("silnet", "weinet")
FOLDS = (1, 2, 3)


def _png(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def mask_boxes(shape=SHAPE) -> dict[str, tuple[slice, slice]]:
    h, w = shape
    return {  # brows / eyes / nose / mouth-ish rectangles, one per expression
        "anger": (slice(h // 8, h // 3), slice(w // 6, 5 * w // 6)),
        "disgust": (slice(h // 3, 2 * h // 3), slice(w // 3, 2 * w // 3)),
        "fear": (slice(h // 8, h // 2), slice(w // 8, 7 * w // 8)),
        "happiness": (slice(5 * h // 8, 7 * h // 8), slice(w // 6, 5 * w // 6)),
        "sadness": (slice(h // 6, h // 3), slice(w // 4, 3 * w // 4)),
        "surprise": (slice(h // 10, h // 4), slice(w // 8, 7 * w // 8)),
    }


def write_masks(root: Path, shape=SHAPE) -> Path:
    out = root / "masks"
    for e, (ys, xs) in mask_boxes(shape).items():
        m = np.zeros(shape, np.uint8)
        m[ys, xs] = 255
        _png(out / f"{DISPLAY_NAMES[e]}_gt.png", np.stack([m] * 3, axis=-1))
    return out


def _image_map(rng, expr: str, shape, skill: float) -> np.ndarray:
    """A positive LIME-like map: a blob on the expression's mask box (weight ``skill``) plus
    blobs elsewhere, normalized to max 255 (contracts: standardized = map / max * 255)."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    ys, xs = mask_boxes(shape)[expr]
    cy = rng.uniform(ys.start, ys.stop)
    cx = rng.uniform(xs.start, xs.stop)
    m = skill * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (0.12 * h) ** 2))
    for _ in range(2):
        oy, ox = rng.uniform(0, h), rng.uniform(0, w)
        m += rng.uniform(0.1, 0.6) * np.exp(-((yy - oy) ** 2 + (xx - ox) ** 2) / (2 * (0.1 * h) ** 2))
    m[m < 0.05 * m.max()] = 0.0  # LIME keeps positive weights only
    return np.rint(m / m.max() * 255).astype(np.uint8)


def write_heatmaps(root: Path, models=MODELS, folds=FOLDS, per_class: int = 4, shape=SHAPE,
                   seed: int = 0, standardized: bool = True) -> Path:
    """Per-image maps and the by_cv / by_net / total PNGs of the heatmaps stage (made with its
    own aggregation, :class:`fer_xai.heatmaps.aggregate.HeatmapSums`)."""
    from fer_xai.models import network

    rng = np.random.default_rng(seed)
    hm = root / "heatmaps"
    sums = HeatmapSums(shape)
    for mi, model in enumerate(models):
        skill = 2.0 if mi == 0 else 0.3  # the first network looks inside the masks, the others less
        for k in folds:
            classes, maps = [], []
            for e in EXPRESSIONS:
                n = per_class + int(rng.integers(0, 3))
                classes += [e] * n
                maps += [_image_map(rng, e, shape, skill) for _ in range(n)]
            classes.append("neutral")  # not one of the six: ignored with a warning
            maps.append(_image_map(rng, "anger", shape, skill))
            maps_arr, classes_arr = np.stack(maps), np.array(classes)
            if standardized:
                path = hm / "standardized" / model / f"fold{k}.npz"
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez_compressed(path, ids=np.array([f"{model}-{k}-{i}" for i in range(len(classes))]),
                                    classes=classes_arr, maps=maps_arr)
            sums.add(model, k, classes_arr, maps_arr)
    for (m, k, e), h in sums.by_cv().items():
        _png(hm / "by_cv" / f"{network(m).display_name}_CV{k}_{DISPLAY_NAMES[e]}_heatmap.png", to_png(h.values))
    for (m, e), h in sums.by_net().items():
        _png(hm / "by_net" / f"{network(m).display_name}_{DISPLAY_NAMES[e]}_heatmap.png", to_png(h.values))
    for e, h in sums.total().items():
        _png(hm / "total" / f"{DISPLAY_NAMES[e]}_heatmap.png", to_png(h.values))
    # colour renderings and figures (as the heatmaps stage writes them) must not be read as heatmaps
    colour = np.stack([to_png(rng.random(shape))] * 3, axis=-1)
    _png(hm / "color" / "by_cv" / f"{network(models[0]).display_name}_CV1_Anger_color.png", colour)
    _png(hm / "color" / "by_cv" / f"{network(models[0]).display_name}_CV1_Anger_heatmap.png", colour)
    _png(hm / "figures" / "by_net.png", colour)
    return hm


def write_planted_truth(root: Path) -> Path:
    path = root / "heatmaps" / "planted_truth.csv"
    rows = ["expression,precision,recall,iou"] + [f"{e},0.6,0.5,0.4" for e in EXPRESSIONS]
    path.write_text("\n".join(rows) + "\n")
    return path


def register_fold_runs(models, folds, experiment: str = "fer-xai") -> dict[tuple[str, int], str]:
    """A training run and a registry version ``fer-<model>@fold<k>`` per (model, fold)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from fer_xai.registry import fold_alias, registered_name
    from fer_xai.tracking import configure

    configure(experiment)
    client = MlflowClient()
    runs = {}
    for model in models:
        name = registered_name(model)
        client.create_registered_model(name)
        for k in folds:
            with mlflow.start_run(run_name=f"train {model} fold{k}") as run:
                mlflow.log_metric("test_accuracy", 0.5)
            mv = client.create_model_version(name, source=f"runs:/{run.info.run_id}/model",
                                             run_id=run.info.run_id)
            client.set_registered_model_alias(name, fold_alias(k), mv.version)
            runs[(model, k)] = run.info.run_id
    return runs


def write_cv(root: Path, models=MODELS, folds=FOLDS, pretrained=False) -> None:
    """reports/cv (what `fer-xai evaluate` writes) and models/<m>/fold<k>/metrics.json."""
    import json

    import pandas as pd
    from PIL import Image as _Image

    cv = root / "reports" / "cv"
    cv.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"model": list(models), "accuracy_mean": [0.61, 0.42][: len(models)],
                  "accuracy_std": [0.05, 0.07][: len(models)], "macro_f1_mean": [0.6, 0.4][: len(models)],
                  "n_folds": [len(folds)] * len(models), "pretrained": [pretrained] * len(models)}
                 ).to_csv(cv / "cv_summary.csv", index=False)
    _Image.fromarray(np.full((30, 40, 3), 200, np.uint8)).save(cv / "cv_accuracy.png")
    for m in models:
        for k in folds:
            d = root / "models" / m / f"fold{k}"
            d.mkdir(parents=True, exist_ok=True)
            (d / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5, "pretrained": pretrained}))
