"""Figures of the comparison stage: per-expression bar charts and dendrograms (paper Figure 10)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless; must come before pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.cluster.hierarchy import dendrogram  # noqa: E402

from .metrics import AVG, METRIC_LABELS, METRICS  # noqa: E402
from .similarity import SimilarityResult  # noqa: E402

_COLORS = {"iou": "#4C72B0", "f1": "#DD8452", "precision": "#55A868", "recall": "#C44E52"}


def plot_expression_bars(
    table: pd.DataFrame,
    expression: str,
    path: str | os.PathLike,
    per_fold: pd.DataFrame | None = None,
    metrics: Sequence[str] = METRICS,
) -> Path:
    """Grouped bars, one group per network, one bar per metric, for one expression (or ``Avg``).

    Error bars: the standard deviation over folds when ``per_fold`` is given (not for ``Avg``).
    """
    cells = table[(table["expression"] == expression) & (table["model"] != AVG)]
    nets = list(cells["model"])
    x = np.arange(len(nets))
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(nets) + 2), 4.2))
    for i, m in enumerate(metrics):
        yerr = None
        if per_fold is not None and expression != AVG:
            sd = per_fold[per_fold["expression"] == expression].groupby("model")[m].std(ddof=1)
            yerr = sd.reindex(nets).to_numpy()
        ax.bar(x + (i - (len(metrics) - 1) / 2) * width, cells[m].to_numpy(), width,
               yerr=yerr, capsize=2, label=METRIC_LABELS[m], color=_COLORS.get(m),
               error_kw={"elinewidth": 0.8, "alpha": 0.7})
    ax.set_xticks(x, nets, rotation=30, ha="right")
    ax.set_ylim(0, 1.15)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("score vs. Ekman mask")
    title = "Average over expressions" if expression == AVG else expression
    ax.set_title(title + (" (error bars: SD over folds)" if yerr is not None else ""))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(ncol=len(metrics), fontsize=8, loc="upper center", frameon=False)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _draw_dendrogram(ax, res: SimilarityResult, xmax: float) -> None:
    dendrogram(res.linkage, labels=res.networks, orientation="right", ax=ax,
               leaf_font_size=10, color_threshold=0.7 * float(res.linkage[:, 2].max()))
    ax.set_xlim(0, xmax)
    ax.set_title(res.expression, fontsize=13)
    ax.set_xlabel(f"1 - NCC ({res.method})   cophenetic r = {res.cophenetic:.3f}", fontsize=8)
    for lab in ax.get_yticklabels():
        lab.set_rotation(45)
        lab.set_va("center")


def distance_axis_max(results: Sequence[SimilarityResult]) -> float:
    top = max(float(r.linkage[:, 2].max()) for r in results)
    return 1.0 if top <= 1.0 else float(np.ceil(top * 10) / 10)


def plot_dendrogram(res: SimilarityResult, path: str | os.PathLike, xmax: float | None = None) -> Path:
    """One horizontal UPGMA dendrogram (root right, leaves left) like a panel of Figure 10."""
    n = len(res.networks)
    fig, ax = plt.subplots(figsize=(5.0, max(3.0, 0.38 * n + 1.5)))
    _draw_dendrogram(ax, res, xmax if xmax is not None else distance_axis_max([res]))
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_dendrogram_grid(results: Sequence[SimilarityResult], path: str | os.PathLike) -> Path:
    """All expressions' dendrograms on a shared distance axis (2 x 3 grid, paper Figure 10)."""
    ncols = min(3, len(results))
    nrows = int(np.ceil(len(results) / ncols))
    n = max(len(r.networks) for r in results)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, max(3.0, 0.38 * n + 1.5) * nrows),
                             squeeze=False)
    xmax = distance_axis_max(results)
    for ax, res in zip(axes.flat, results):
        _draw_dendrogram(ax, res, xmax)
    for ax in list(axes.flat)[len(results):]:
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
