"""The bootstrap over explained images (pipeline mode).

A fold's heatmap for one expression is the mean of that fold's per-image standardized maps
(:mod:`.standardized`) explained as that expression, min-max stretched and rounded to uint8
(:func:`fold_heatmap`, the recipe of :mod:`fer_xai.heatmaps.aggregate`). Resampling those maps
with replacement gives a bootstrap distribution of IoU and F1 over the explained images:

for every (network, expression) cell and bootstrap sample, each fold's maps are resampled within
the fold, the fold heatmap is recomputed, binarized with Otsu's threshold (:func:`otsu_thresholds`,
identical to ``skimage.filters.threshold_otsu`` on the uint8 image) and scored against the Ekman
mask; the cell value is the mean over folds, as in the published tables. Seeds are per cell
(``bootstrap_seed`` and the cell's names), so a cell's interval does not depend on the others.

The bootstrap is vectorised over samples: a resample is a vector of multiplicities; one matrix
product per chunk of samples gives every pixel's resampled sum as an exact integer, already offset
into a (sample, inside/outside mask, sum) histogram bin; the stretch is applied to the possible
sums instead of to the pixels, and Otsu and the confusion counts come from the resulting
2 x 256-bin histograms (:func:`resampled_counts`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..heatmaps.aggregate import stretch, to_png
from ..scoring import binarize_mask
from .standardized import StandardizedMaps, load_standardized  # noqa: F401  (benchmarks/ import it from here)
from .threshold_free import cell_seed

log = logging.getLogger(__name__)

BOOT_METRICS: tuple[str, ...] = ("iou", "f1")
# Bootstrap samples per matrix product (measured fastest on 2 cores for 275 x 224 maps).
_CHUNK_ROWS = 64
# Score distinct pixels once (weighted) only when they are at most this share of all pixels.
_DEDUP_MAX_SHARE = 0.8


# --- the heatmap recipe, vectorised ---------------------------------------------------------


def otsu_thresholds(hist: np.ndarray) -> np.ndarray:
    """Otsu's threshold of each row of 256-bin uint8 histograms, shape (..., 256) -> (...).

    Bit-for-bit the value of ``skimage.filters.threshold_otsu`` on the image the row counts
    (histogram over the image's own range, float32 counts); a constant image returns its value.
    Foreground is ``image > threshold`` (:func:`fer_xai.scoring.binarize_heatmap`).
    """
    h = np.asarray(hist)
    if h.shape[-1] != 256:
        raise ValueError(f"expected 256-bin histograms, got shape {h.shape}")
    lead = h.shape[:-1]
    h = h.reshape(-1, 256)
    counts = h.astype(np.float32)
    centers = np.arange(256)
    w1 = np.cumsum(counts, axis=1)
    w2 = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]
    cb = counts * centers  # float64, as in scikit-image
    with np.errstate(invalid="ignore", divide="ignore"):
        m1 = np.cumsum(cb, axis=1) / w1
        m2 = (np.cumsum(cb[:, ::-1], axis=1) / w2[:, ::-1])[:, ::-1]
        var = w1[:, :-1] * w2[:, 1:] * (m1[:, :-1] - m2[:, 1:]) ** 2
    nz = h > 0
    lo = np.argmax(nz, axis=1)
    hi = 255 - np.argmax(nz[:, ::-1], axis=1)
    t = np.arange(255)
    valid = (t >= lo[:, None]) & (t < hi[:, None])
    var = np.where(valid, var, -np.inf)
    thr = np.argmax(var, axis=1)
    thr = np.where(lo == hi, lo, thr)  # constant image: its value (nothing lies above it)
    return thr.reshape(lead)


@dataclass
class Counts:
    """Confusion counts per row (TP, FP, FN) and the derived scores."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

    def score(self, metric: str) -> np.ndarray:
        tp, fp, fn = (x.astype(np.float64) for x in (self.tp, self.fp, self.fn))
        with np.errstate(invalid="ignore", divide="ignore"):
            if metric == "iou":
                return tp / (tp + fp + fn)
            if metric == "f1":
                return 2 * tp / (2 * tp + fp + fn)
            if metric == "precision":
                return tp / (tp + fp)
            if metric == "recall":
                return tp / (tp + fn)
        raise ValueError(f"unknown metric {metric!r}")


# One vectorised kernel (~75 lines): its steps share a dozen arrays sized for one chunk.
def resampled_counts(flat_maps: np.ndarray, weights: np.ndarray, inside: np.ndarray,
                     chunk: int | None = None) -> Counts:
    """Score the stretched, Otsu-binarized weighted means of ``flat_maps`` against a mask.

    ``flat_maps``: (n_images, n_pixels) uint8 maps; ``weights``: (n_rows, n_images) non-negative
    integer multiplicities (a bootstrap resample; ones for the point estimate); ``inside``:
    (n_pixels,) bool mask. Row r scores the heatmap :func:`fold_heatmap` makes of the resample
    (each map i repeated w[r, i] times), bit for bit.

    How: a pixel's weighted sum S is an integer in [0, 255 * sum(w[r])]; one matrix product gives
    every pixel's (row, inside, S) histogram bin directly (exact in float32 below 2**24), and the
    stretch is applied to the possible values of S (a lookup table per row, the same float64
    arithmetic as per pixel) instead of to every pixel. Pixels whose maps and mask flag agree are
    scored once, weighted by their number.
    """
    maps = np.asarray(flat_maps)
    w = np.asarray(weights)
    inside = np.asarray(inside, dtype=bool).ravel()
    if maps.ndim != 2 or w.ndim != 2 or maps.shape[0] != w.shape[1] or inside.size != maps.shape[1]:
        raise ValueError(f"shapes do not agree: maps {maps.shape}, weights {w.shape}, mask {inside.shape}")
    if maps.dtype != np.uint8:
        raise ValueError(f"maps must be uint8, got {maps.dtype}")
    if (w < 0).any() or not np.array_equal(w, np.round(w)) or (w.sum(axis=1) == 0).any():
        raise ValueError("weights must be non-negative integer multiplicities with a positive sum per row")
    n_rows = w.shape[0]
    n_in = int(inside.sum())
    cols, mult = _distinct_columns(maps, inside)
    if cols.shape[1] > _DEDUP_MAX_SHARE * maps.shape[1]:  # few repeats: a weighted histogram costs more
        cols, mult = np.vstack([maps, inside[None, :].astype(np.uint8)]), np.ones(maps.shape[1], np.int64)
    n_pix = cols.shape[1]
    totals = w.sum(axis=1).astype(np.int64)
    nb = 255 * int(totals.max()) + 1  # possible sums per (row, side)
    if 2 * nb >= 2**24:
        raise ValueError(f"too many maps in one fold for exact float32 sums ({int(totals.max())})")
    chunk = max(1, min(chunk or _CHUNK_ROWS, n_rows, (2**24 - 1) // (2 * nb)))
    # augmented maps: the sum, + nb * inside, + 2 * nb * row (via an all-ones row and its weight)
    x = np.vstack([cols[:-1], cols[-1:] * 0, np.zeros((1, n_pix), np.uint8)]).astype(np.float32)
    x[-2] = cols[-1].astype(np.float32) * nb
    x[-1] = 1.0
    pix_weights = np.tile(mult.astype(np.float64), chunk) if (mult > 1).any() else None
    sums = np.empty((chunk, n_pix), np.float32)
    idx = np.empty((chunk, n_pix), np.intp)
    svals = np.arange(nb, dtype=np.float64)
    tp = np.empty(n_rows, np.int64)
    fp = np.empty(n_rows, np.int64)
    for start in range(0, n_rows, chunk):
        n = min(chunk, n_rows - start)
        wa = np.empty((n, w.shape[1] + 2), np.float32)
        wa[:, :-2] = w[start:start + n]
        wa[:, -2] = 1.0
        wa[:, -1] = np.arange(n) * 2 * nb
        np.matmul(wa, x, out=sums[:n])
        np.copyto(idx[:n], sums[:n], casting="unsafe")
        hs = np.bincount(idx[:n].ravel(), minlength=n * 2 * nb,
                         weights=None if pix_weights is None else pix_weights[:n * n_pix]).reshape(n, 2, nb)
        # fold_heatmap on the possible sums: mean = S / (255 m), rint((mean - min) / (max - min) * 255)
        m = 255.0 * totals[start:start + n, None].astype(np.float64)
        present = hs.sum(axis=1) > 0
        lo = np.argmax(present, axis=1)[:, None] / m
        hi = (nb - 1 - np.argmax(present[:, ::-1], axis=1))[:, None] / m
        span = hi - lo
        lut = (svals[None, :] / m - lo) / np.where(span > 0, span, 1.0) * 255.0
        lut = np.clip(np.rint(lut), 0, 255).astype(np.intp)  # out-of-range sums have no pixels
        bins = lut[:, None, :] + ((np.arange(n)[:, None, None] * 2 + np.arange(2)[None, :, None]) * 256)
        hist = np.bincount(bins.ravel(), weights=hs.ravel(), minlength=n * 512)
        hist = np.rint(hist).astype(np.int64).reshape(n, 2, 256)
        thr = otsu_thresholds(hist.sum(axis=1))
        # pixels strictly above the threshold, outside (0) and inside (1) the mask
        above = np.cumsum(hist[:, :, ::-1], axis=2)[:, :, ::-1]  # above[..., v] = count of values >= v
        sel = np.broadcast_to(np.minimum(thr + 1, 255)[:, None, None], (n, 2, 1))
        got = np.where((thr >= 255)[:, None], 0, np.take_along_axis(above, sel, 2)[..., 0])
        tp[start:start + n] = got[:, 1]
        fp[start:start + n] = got[:, 0]
    return Counts(tp, fp, n_in - tp)


def _distinct_columns(maps: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct columns of ``maps`` stacked over the mask flag, and their multiplicities."""
    stacked = np.vstack([maps, inside[None, :].astype(maps.dtype)])
    if stacked.dtype == np.uint8:  # fast path: each column as one opaque record
        flat = np.ascontiguousarray(stacked.T).view(np.dtype((np.void, stacked.shape[0]))).ravel()
        _, first, mult = np.unique(flat, return_index=True, return_counts=True)
        return stacked[:, first], mult
    uniq, mult = np.unique(stacked, axis=1, return_counts=True)
    return uniq, mult


def fold_heatmap(maps: np.ndarray) -> np.ndarray:
    """The uint8 heatmap of one fold and expression from its standardized uint8 maps.

    The heatmaps stage's recipe (:mod:`fer_xai.heatmaps.aggregate`): mean of ``maps / 255``,
    min-max stretch to [0, 1], ``rint(* 255)``; :func:`resampled_counts` mirrors its arithmetic.
    """
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[0] == 0:
        raise ValueError(f"expected (n >= 1, H, W) maps, got {maps.shape}")
    return to_png(stretch(maps.sum(axis=0, dtype=np.float64) / (255.0 * maps.shape[0])))


# --- bootstrap over images ------------------------------------------------------------------


def _multiplicities(rng: np.random.Generator, n_samples: int, n: int) -> np.ndarray:
    """(n_samples, n) counts of each image in a resample of n with replacement."""
    idx = rng.integers(0, n, size=(n_samples, n))
    idx += (np.arange(n_samples) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=n_samples * n).reshape(n_samples, n)


def _fold_scores(maps: StandardizedMaps, net: str, expr: str, folds: Sequence[int], inside: np.ndarray,
                 rng: np.random.Generator, n_samples: int, metrics: Sequence[str],
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One cell's scores per fold: the point estimate (len(folds),) and the resamples
    (n_samples, len(folds)) of each metric; ``rng`` is drawn from fold by fold, in order."""
    boot = {m: np.empty((n_samples, len(folds))) for m in metrics}
    point = {m: np.empty(len(folds)) for m in metrics}
    for j, k in enumerate(folds):
        stack = maps.stack(net, k, expr)
        flat = stack.reshape(stack.shape[0], -1)
        c_point = resampled_counts(flat, np.ones((1, flat.shape[0])), inside)
        c_boot = resampled_counts(flat, _multiplicities(rng, n_samples, flat.shape[0]), inside)
        for m in metrics:
            point[m][j] = c_point.score(m)[0]
            boot[m][:, j] = c_boot.score(m)
    return point, boot


def _percentile_interval(boot: np.ndarray, alpha: float, n_samples: int) -> tuple[float, float]:
    """Percentile interval of the fold mean of (n_samples, n_folds) resampled scores."""
    stats = boot.mean(axis=1)  # fold mean per resample; NaN propagates
    stats = stats[np.isfinite(stats)]
    if stats.size and n_samples > 0:
        low, high = np.quantile(stats, [alpha, 1.0 - alpha])
        return low, high
    return float("nan"), float("nan")


def image_bootstrap(
    maps: StandardizedMaps,
    masks: Mapping[str, np.ndarray],
    table: pd.DataFrame,
    networks: Sequence[str],
    expressions: Sequence[str],
    folds: Mapping[str, Sequence[int]],
    mask_threshold: int = 127,
    n_samples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    metrics: Sequence[str] = BOOT_METRICS,
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Percentile CIs per (network, expression, metric) resampling the explained images.

    ``folds[net]``: the folds of the cell (those with by_cv heatmaps). A cell is bootstrapped
    only when every one of its folds has per-image maps; the others are returned in the second
    element (to be bootstrapped over folds). ``estimate`` is the table cell (from the by_cv
    heatmaps, the published numbers); ``estimate_images`` recomputes it from the per-image maps.
    """
    est_table = table.set_index(["model", "expression"])
    alpha = (1.0 - level) / 2.0
    rows, fallback, mismatched = [], [], []
    t0 = time.perf_counter()
    done = 0
    for net in networks:
        for expr in expressions:
            fl = list(folds.get(net, ()))
            sizes = [maps.n_images(net, k, expr) for k in fl]
            if not fl or min(sizes) == 0:
                if maps.model_ids.get(net) is not None:
                    empty = [f"fold {k}" for k, s in zip(fl, sizes) if s == 0]
                    log.warning("%s / %s: no per-image maps for %s; bootstrapping over folds", net, expr,
                                ", ".join(empty) or "any fold")
                fallback.append((net, expr))
                continue
            inside = binarize_mask(masks[expr], mask_threshold).ravel()
            rng = np.random.default_rng(cell_seed(seed, net, expr, "images"))
            point, boot = _fold_scores(maps, net, expr, fl, inside, rng, n_samples, metrics)
            for m in metrics:
                est_img = float(point[m].mean())
                estimate = float(est_table.at[(net, expr), m]) if (net, expr) in est_table.index else est_img
                if np.isfinite(estimate) and not np.isclose(estimate, est_img, rtol=0, atol=1e-9):
                    mismatched.append(f"{net}/{expr}/{m}: {estimate:.6f} vs {est_img:.6f}")
                low, high = _percentile_interval(boot[m], alpha, n_samples)
                rows.append({"model": net, "expression": expr, "metric": m, "estimate": estimate,
                             "ci_low": float(low), "ci_high": float(high), "level": level,
                             "unit": "image", "n_units": int(sum(sizes)), "n_samples": n_samples,
                             "seed": seed, "estimate_images": est_img})
            done += 1
            log.info("bootstrap %s / %s: %d images in %d folds (%d/%d cells, %.1fs)", net, expr,
                     sum(sizes), len(fl), done, len(networks) * len(expressions), time.perf_counter() - t0)
    if mismatched:
        log.warning("%d cell(s) differ between the by_cv heatmaps and the stretched mean of the per-image "
                    "maps (different heatmap recipe or stale files?), e.g. %s", len(mismatched), mismatched[0])
    cols = ["model", "expression", "metric", "estimate", "ci_low", "ci_high", "level", "unit",
            "n_units", "n_samples", "seed", "estimate_images"]
    return pd.DataFrame(rows, columns=cols), fallback
