"""Importance heatmaps: standardized explanations averaged per network, fold and expression."""

from .aggregate import HeatmapSums, stack_arrays, stretch, to_png
from .standardize import GridCache, Standardized, normalize_map, standardize

__all__ = ["GridCache", "HeatmapSums", "Standardized", "normalize_map", "stack_arrays", "standardize", "stretch",
           "to_png"]
