"""Comparison: heatmaps vs. Ekman masks (paper Tables 3-5) and between networks (Figure 10).

Modules: :mod:`.run` (the whole comparison in both modes, ``metrics/compare.json``),
:mod:`.published` (find/read published-layout files), :mod:`.metrics` (per-fold scores and their
aggregation; the scores themselves are :mod:`fer_xai.scoring`'s), :mod:`.similarity` (1 - NCC
distances, UPGMA, cophenetic r), :mod:`.threshold_free` (ROC AUC, relevance mass, bootstrap CIs),
:mod:`.standardized` (the pipeline's per-image maps), :mod:`.pipeline` (bootstrap over explained
images), :mod:`.tables` (paper layouts), :mod:`.plots` (bar charts, dendrograms),
:mod:`.mlflow_log` (MLflow runs). The command is :mod:`fer_xai.stages.compare`.
"""

from __future__ import annotations

from ..config import CompareParams
from ..scoring import (
    METRICS,
    binarize_heatmap,
    binarize_mask,
    confusion_counts,
    otsu_threshold,
    score_heatmap,
    scores_from_counts,
)
from .metrics import aggregate, fold_metrics
from .pipeline import fold_heatmap, image_bootstrap, otsu_thresholds, resampled_counts
from .published import CompareInputError, find_heatmaps, find_masks, load_published, read_map
from .similarity import (
    average_linkage,
    cophenetic_correlation,
    correlation_distances,
    correlation_matrix,
    expression_similarity,
)
from .standardized import load_standardized
from .threshold_free import bootstrap_ci, fold_bootstrap, relevance_mass, roc_auc, threshold_free_metrics

__all__ = [
    "METRICS", "CompareInputError", "CompareParams", "aggregate", "average_linkage",
    "binarize_heatmap", "binarize_mask", "bootstrap_ci", "confusion_counts",
    "cophenetic_correlation", "correlation_distances", "correlation_matrix",
    "expression_similarity", "find_heatmaps", "find_masks", "fold_bootstrap", "fold_heatmap",
    "fold_metrics", "image_bootstrap", "load_published", "load_standardized", "otsu_threshold",
    "otsu_thresholds", "read_map", "relevance_mass", "resampled_counts", "roc_auc",
    "score_heatmap", "scores_from_counts", "threshold_free_metrics",
]
