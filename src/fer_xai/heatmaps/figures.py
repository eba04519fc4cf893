"""Colour renderings and figure grids of heatmaps (like the paper's Figures 7-9)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np


def colorize(heatmap: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 through a matplotlib colormap (NaN: gray)."""
    import matplotlib

    cm = matplotlib.colormaps[cmap]
    h = np.asarray(heatmap, np.float64)
    rgb = cm(np.clip(np.nan_to_num(h, nan=0.0), 0.0, 1.0))[..., :3]
    rgb[np.isnan(h)] = 0.5
    return np.rint(rgb * 255).astype(np.uint8)


def check_colormap(cmap: str) -> None:
    import matplotlib

    if cmap not in matplotlib.colormaps:
        raise ValueError(f"heatmaps.colormap {cmap!r} is not a matplotlib colormap")


def grid_figure(
    cells: Sequence[Sequence[np.ndarray | None]], row_labels: Sequence[str], col_labels: Sequence[str],
    path: str | os.PathLike, title: str = "", cmap: str = "jet", counts: Sequence[Sequence[int]] | None = None,
) -> None:
    """Rows x columns of heatmaps (None or NaN: an empty, labelled cell), one shared colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nr, nc = len(row_labels), len(col_labels)
    fig, axes = plt.subplots(nr, nc, figsize=(1.55 * nc + 0.9, 1.95 * nr + 0.6), dpi=130, squeeze=False)
    im = None
    for i in range(nr):
        for j in range(nc):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            cell = cells[i][j]
            if cell is None or np.isnan(cell).all():
                ax.set_facecolor("0.85")
                ax.text(0.5, 0.5, "no maps", ha="center", va="center", fontsize=7, transform=ax.transAxes)
            else:
                im = ax.imshow(cell, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="bilinear")
            if counts is not None:
                ax.text(0.03, 0.02, f"n={counts[i][j]}", color="white", fontsize=6, transform=ax.transAxes,
                        va="bottom", bbox={"facecolor": "black", "alpha": 0.4, "pad": 1, "lw": 0})
            if i == 0:
                ax.set_title(col_labels[j], fontsize=9)
            if j == 0:
                ax.set_ylabel(row_labels[i], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    if im is not None:
        cax = fig.add_axes((0.94, 0.15, 0.015, 0.7))
        fig.colorbar(im, cax=cax).ax.tick_params(labelsize=7)
    fig.savefig(path)
    plt.close(fig)
