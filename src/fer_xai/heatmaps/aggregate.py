"""Importance heatmaps (paper section 4.3, Eqs. 1-2): means of standardized maps, stretched.

* by_cv: per (network, fold, expression): the mean of that training's standardized maps of the
  images it classified as the expression,
* by_net: per (network, expression): the mean over all its folds' maps,
* total: per expression: the mean over every network's maps.

Means are taken over the stored uint8 standardized maps (divided by 255), so anyone holding
``standardized/<model>/fold<k>.npz`` recomputes the same heatmaps; each mean is then
histogram-stretched (min-max) to [0, 1] as the published heatmaps are (their PNGs span 0..255).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..labels import EXPRESSIONS, normalize_label


def stretch(mean: np.ndarray) -> np.ndarray:
    """Min-max stretch to [0, 1] (float64); a constant image gives zeros."""
    v = np.asarray(mean, dtype=np.float64)
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return np.zeros_like(v)
    return (v - lo) / (hi - lo)


def to_png(heatmap: np.ndarray) -> np.ndarray:
    """A stretched [0, 1] heatmap as the published 8-bit image: ``rint(h * 255)``."""
    return np.rint(np.asarray(heatmap, np.float64) * 255.0).astype(np.uint8)


@dataclass
class Heatmap:
    values: np.ndarray  # (H, W) float64 stretched to [0, 1]; NaN when n == 0
    n: int  # explanations averaged
    lo: float  # min and max of the mean before stretching (fraction of 255)
    hi: float


@dataclass
class HeatmapSums:
    """Running sums of standardized maps per (model, fold, expression)."""

    shape: tuple[int, int]
    models: list[str] = field(default_factory=list)
    folds: list[int] = field(default_factory=list)
    sums: dict[tuple[str, int, str], np.ndarray] = field(default_factory=dict)
    counts: dict[tuple[str, int, str], int] = field(default_factory=dict)
    ignored: dict[str, int] = field(default_factory=dict)  # class -> maps not of the six expressions

    def add(self, model: str, fold: int, classes, maps_uint8: np.ndarray) -> None:
        if model not in self.models:
            self.models.append(model)
        if fold not in self.folds:
            self.folds.append(fold)
        names = np.asarray(classes).astype(str)
        canon = np.array([normalize_label(c) or "" for c in names], dtype=object)
        for c, k in zip(names, canon):
            if k not in EXPRESSIONS:  # e.g. neutral: not one of the six expressions
                self.ignored[c] = self.ignored.get(c, 0) + 1
        for e in EXPRESSIONS:
            key = (model, fold, e)
            self.sums.setdefault(key, np.zeros(self.shape, np.float64))
            self.counts.setdefault(key, 0)
            sel = canon == e
            if sel.any():
                self.sums[key] += maps_uint8[sel].sum(axis=0, dtype=np.float64)
                self.counts[key] += int(sel.sum())

    def _heatmap(self, keys) -> Heatmap:
        n = sum(self.counts.get(k, 0) for k in keys)
        if n == 0:
            return Heatmap(np.full(self.shape, np.nan), 0, float("nan"), float("nan"))
        total = np.zeros(self.shape, np.float64)
        for k in keys:
            if k in self.sums:
                total += self.sums[k]
        mean = total / (255.0 * n)
        return Heatmap(stretch(mean), n, float(mean.min()), float(mean.max()))

    def by_cv(self) -> dict[tuple[str, int, str], Heatmap]:
        return {(m, f, e): self._heatmap([(m, f, e)]) for m in self.models for f in self.folds for e in EXPRESSIONS}

    def by_net(self) -> dict[tuple[str, str], Heatmap]:
        return {(m, e): self._heatmap([(m, f, e) for f in self.folds]) for m in self.models for e in EXPRESSIONS}

    def total(self) -> dict[str, Heatmap]:
        return {e: self._heatmap([(m, f, e) for m in self.models for f in self.folds]) for e in EXPRESSIONS}

    def count_rows(self) -> list[dict]:
        return [{"model": m, "fold": f, "expression": e, "n": self.counts.get((m, f, e), 0)}
                for m in self.models for f in self.folds for e in EXPRESSIONS]


def stack_arrays(sums: HeatmapSums) -> dict[str, np.ndarray]:
    """The float arrays of ``heatmaps.npz`` (the source of truth), with their axes' labels."""
    models, folds, exprs = sums.models, sums.folds, list(EXPRESSIONS)
    h, w = sums.shape
    cv, net, tot = sums.by_cv(), sums.by_net(), sums.total()
    out = {
        "models": np.array(models, dtype=str), "folds": np.array(folds, dtype=np.int32),
        "expressions": np.array(exprs, dtype=str),
        "by_cv": np.stack([[[cv[(m, f, e)].values for e in exprs] for f in folds] for m in models]).astype(np.float32)
        if models else np.zeros((0, len(folds), len(exprs), h, w), np.float32),
        "by_cv_n": np.array([[[cv[(m, f, e)].n for e in exprs] for f in folds] for m in models], np.int64).reshape(
            len(models), len(folds), len(exprs)),
        "by_cv_range": np.array([[[(cv[(m, f, e)].lo, cv[(m, f, e)].hi) for e in exprs] for f in folds]
                                 for m in models], np.float64).reshape(len(models), len(folds), len(exprs), 2),
        "by_net": np.stack([[net[(m, e)].values for e in exprs] for m in models]).astype(np.float32)
        if models else np.zeros((0, len(exprs), h, w), np.float32),
        "by_net_n": np.array([[net[(m, e)].n for e in exprs] for m in models], np.int64).reshape(
            len(models), len(exprs)),
        "by_net_range": np.array([[(net[(m, e)].lo, net[(m, e)].hi) for e in exprs] for m in models],
                                 np.float64).reshape(len(models), len(exprs), 2),
        "total": np.stack([tot[e].values for e in exprs]).astype(np.float32),
        "total_n": np.array([tot[e].n for e in exprs], np.int64),
        "total_range": np.array([(tot[e].lo, tot[e].hi) for e in exprs], np.float64),
    }
    return out
