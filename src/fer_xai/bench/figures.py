"""The bench's figure: every method's total heatmaps side by side (methods x expressions)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from ..heatmaps.figures import grid_figure
from ..labels import DISPLAY_NAMES, EXPRESSIONS


def totals_figure(totals: Mapping[str, Mapping[str, np.ndarray]], path: str | os.PathLike, cmap: str = "jet") -> None:
    """One row per method, one column per expression (missing heatmaps: an empty cell)."""
    methods = list(totals)
    cells = [[(totals[m][e].astype(np.float64) / 255.0) if e in totals[m] else None for e in EXPRESSIONS]
             for m in methods]
    grid_figure(cells, methods, [DISPLAY_NAMES[e] for e in EXPRESSIONS], path,
                title="Total heatmaps per explanation method", cmap=cmap)
