"""Beyond the paper: threshold-free agreement and bootstrap confidence intervals.

Nothing here changes the published-table numbers (those come from :mod:`.metrics` only).

* ROC AUC of the heatmap's pixel values as a score for "inside the mask" (0.5 = chance),
* relevance mass: share of the heatmap's total value that falls inside the mask; its chance
  level is the mask's area share (a uniform heatmap scores exactly that),
* seeded percentile bootstrap CIs over resampling units (the folds for the published heatmaps;
  per-image maps later): any array of per-unit contributions plus a vectorised statistic.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from ..scoring import binarize_mask


def roc_auc(heatmap: np.ndarray, truth: np.ndarray) -> float:
    """ROC AUC of pixel values against the binary mask; NaN (with a warning) if the mask is one class."""
    truth = np.asarray(truth, dtype=bool).ravel()
    score = np.asarray(heatmap, dtype=np.float64).ravel()
    if score.shape != truth.shape:
        raise ValueError(f"shape mismatch: heatmap {np.shape(heatmap)} vs mask {np.shape(truth)}")
    if truth.all() or not truth.any():
        warnings.warn("ROC AUC undefined: the mask has a single class; NaN", RuntimeWarning, stacklevel=2)
        return float("nan")
    return float(roc_auc_score(truth, score))


def relevance_mass(heatmap: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(sum of heatmap inside the mask / total heatmap sum, mask area share = chance level).

    Heatmaps are used as stored (uint8, non-negative); an all-zero heatmap gives NaN mass.
    """
    truth = np.asarray(truth, dtype=bool)
    h = np.asarray(heatmap, dtype=np.float64)
    if h.shape != truth.shape:
        raise ValueError(f"shape mismatch: heatmap {h.shape} vs mask {truth.shape}")
    if (h < 0).any():
        raise ValueError("relevance mass needs a non-negative heatmap")
    total = h.sum()
    share = float(truth.mean())
    if total == 0:
        warnings.warn("relevance mass undefined: heatmap sums to 0; NaN", RuntimeWarning, stacklevel=2)
        return float("nan"), share
    return float(h[truth].sum() / total), share


def threshold_free_metrics(
    by_cv: Mapping[tuple[str, int, str], np.ndarray],
    masks: Mapping[str, np.ndarray],
    mask_threshold: int = 127,
) -> pd.DataFrame:
    """``model,fold,expression,auc,relevance_mass,mask_area_share,relevance_lift`` per heatmap.

    ``relevance_lift`` = relevance mass / mask area share (1 = chance).
    """
    truth = {e: binarize_mask(m, mask_threshold) for e, m in masks.items()}
    rows = []
    for (net, fold, expr), hm in by_cv.items():
        auc = roc_auc(hm, truth[expr])
        mass, share = relevance_mass(hm, truth[expr])
        lift = mass / share if share > 0 else float("nan")
        rows.append({"model": net, "fold": fold, "expression": expr, "auc": auc,
                     "relevance_mass": mass, "mask_area_share": share, "relevance_lift": lift})
    return pd.DataFrame(rows, columns=["model", "fold", "expression", "auc", "relevance_mass",
                                       "mask_area_share", "relevance_lift"])


# --- bootstrap -----------------------------------------------------------------------------

Statistic = Callable[[np.ndarray], np.ndarray]


def mean_statistic(samples: np.ndarray) -> np.ndarray:
    """Mean over units: ``samples`` is (..., n_units) -> (...). The fold-level default."""
    return samples.mean(axis=-1)


def iou_from_counts(samples: np.ndarray) -> np.ndarray:
    """Pooled IoU from per-unit counts (..., n_units, 3) = (TP, FP, FN): sum TP / sum (TP+FP+FN)."""
    s = samples.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s[..., 0] / (s[..., 0] + s[..., 1] + s[..., 2])


def f1_from_counts(samples: np.ndarray) -> np.ndarray:
    """Pooled F1 from per-unit counts (..., n_units, 3) = (TP, FP, FN)."""
    s = samples.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2 * s[..., 0] / (2 * s[..., 0] + s[..., 1] + s[..., 2])


@dataclass(frozen=True)
class BootstrapCI:
    estimate: float
    low: float
    high: float
    n_units: int
    n_samples: int
    level: float


def bootstrap_ci(
    units: np.ndarray,
    statistic: Statistic = mean_statistic,
    n_samples: int = 2000,
    seed: int | np.random.SeedSequence = 0,
    level: float = 0.95,
) -> BootstrapCI:
    """Seeded percentile bootstrap CI of ``statistic`` over resampled units.

    ``units`` has the resampling units on axis 0: shape (n_units,) for per-fold metric values
    (statistic = mean), or (n_units, k) for per-unit contributions such as per-image confusion
    counts (statistic e.g. :func:`iou_from_counts`). ``statistic`` receives the resampled array
    with a leading bootstrap axis, (n_samples, n_units, ...), and returns (n_samples,); it is
    called with a leading axis of 1 for the point estimate. Resamples with a NaN statistic are
    dropped. With fewer than 2 units the bounds are NaN.
    """
    x = np.asarray(units, dtype=np.float64)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError("bootstrap needs at least one unit")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n = x.shape[0]
    estimate = float(np.asarray(statistic(x[None, ...])).reshape(-1)[0])
    if n < 2 or not np.isfinite(estimate):
        return BootstrapCI(estimate, float("nan"), float("nan"), n, n_samples, level)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_samples, n))
    stats = np.asarray(statistic(x[idx]), dtype=np.float64).reshape(n_samples)
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return BootstrapCI(estimate, float("nan"), float("nan"), n, n_samples, level)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return BootstrapCI(estimate, float(low), float(high), n, n_samples, level)


def cell_seed(seed: int, *key: str) -> np.random.SeedSequence:
    """A per-cell seed that depends only on ``seed`` and the cell's names (not on loop order)."""
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32("/".join(key).encode())])


def fold_bootstrap(
    per_fold: pd.DataFrame,
    metrics=("iou", "f1"),
    n_samples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """CI per (model, expression, metric), resampling the folds; the estimate is the fold mean,
    i.e. the published cell."""
    rows = []
    for (net, expr), grp in per_fold.groupby(["model", "expression"], sort=False):
        for metric in metrics:
            values = grp.sort_values("fold")[metric].to_numpy(dtype=np.float64)
            ci = bootstrap_ci(values, mean_statistic, n_samples, cell_seed(seed, net, expr, metric), level)
            rows.append({"model": net, "expression": expr, "metric": metric, "estimate": ci.estimate,
                         "ci_low": ci.low, "ci_high": ci.high, "level": level, "unit": "fold",
                         "n_units": ci.n_units, "n_samples": n_samples, "seed": seed})
    return pd.DataFrame(rows, columns=["model", "expression", "metric", "estimate", "ci_low",
                                       "ci_high", "level", "unit", "n_units", "n_samples", "seed"])
