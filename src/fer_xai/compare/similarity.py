"""Network-to-network heatmap similarity (paper section 4.5, Eq. 7, and Figure 10).

distance(a, b) = 1 - NCC(a, b), with NCC the normalized correlation coefficient of the pixel
values. ``method="pearson"`` subtracts each image's mean first (the Pearson correlation, which
is what the published dendrograms used); ``method="uncentred"`` is Eq. 7 on the raw values,
<a, b> / (|a| |b|). Trees use average linkage (UPGMA).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import cophenet, linkage
from scipy.spatial.distance import squareform

CORRELATIONS = ("pearson", "uncentred")


class TooFewHeatmaps(ValueError):
    """Fewer than two informative (non-constant) heatmaps: no tree can be built."""


def _rows(maps: np.ndarray, method: str) -> np.ndarray:
    """(n, P) float64 pixel rows, centred for ``pearson``."""
    if method not in CORRELATIONS:
        raise ValueError(f"correlation must be one of {CORRELATIONS}, got {method!r}")
    x = np.asarray(maps, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"expected a stack of images (n, H, W) or (n, P), got shape {x.shape}")
    x = x.reshape(x.shape[0], -1)
    return x - x.mean(axis=1, keepdims=True) if method == "pearson" else x


def undefined_images(maps: np.ndarray, method: str = "pearson") -> np.ndarray:
    """(n,) bool: images whose correlation with anything is undefined (zero norm after centring
    for ``pearson``: a constant image; zero norm for ``uncentred``: an all-zero image)."""
    return np.linalg.norm(_rows(maps, method), axis=1) == 0


def correlation_matrix(maps: np.ndarray, method: str = "pearson") -> np.ndarray:
    """(n, n) normalized correlation of n images given as (n, H, W) or (n, P), in one matrix product.

    A constant image (zero norm after centring) has an undefined correlation: its row and
    column are NaN (with a warning) except the diagonal, which is always 1.
    """
    x = _rows(maps, method)
    norms = np.linalg.norm(x, axis=1)
    bad = norms == 0
    if bad.any():
        warnings.warn(
            f"{int(bad.sum())} constant image(s): their correlations are undefined (NaN)",
            RuntimeWarning,
            stacklevel=2,
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        xn = x / norms[:, None]
    c = np.clip(xn @ xn.T, -1.0, 1.0)
    c = (c + c.T) / 2.0
    np.fill_diagonal(c, 1.0)
    return c


def correlation_distances(maps: np.ndarray, method: str = "pearson") -> np.ndarray:
    """Square, symmetric distance matrix ``1 - NCC`` with a zero diagonal."""
    d = 1.0 - correlation_matrix(maps, method)
    np.fill_diagonal(d, 0.0)
    return d


def average_linkage(distances: np.ndarray) -> np.ndarray:
    """UPGMA linkage matrix: ``scipy.cluster.hierarchy.linkage(squareform(D), 'average')``."""
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distance matrix must be square, got {d.shape}")
    if d.shape[0] < 2:
        raise ValueError("need at least two networks to build a tree")
    if not np.all(np.isfinite(d)):
        raise ValueError("distance matrix has NaN/inf entries (constant heatmaps?)")
    return linkage(squareform(d, checks=False), method="average")


def cophenetic_correlation(tree: np.ndarray, distances: np.ndarray) -> float:
    """Correlation between the tree's cophenetic distances and the input distances."""
    if np.asarray(distances).shape[0] < 3:
        return float("nan")  # two leaves: one distance, the correlation is undefined
    c, _ = cophenet(tree, squareform(np.asarray(distances, dtype=np.float64), checks=False))
    return float(c)


@dataclass
class SimilarityResult:
    expression: str
    networks: list[str]
    distances: np.ndarray  # (n, n)
    linkage: np.ndarray  # (n - 1, 4)
    cophenetic: float
    method: str
    source: str  # "files" (published by_net heatmaps) or "fold_mean"
    left_out: tuple[str, ...] = ()  # networks whose heatmap is constant: no correlation, not in the tree


def pooled_heatmaps(
    networks: Sequence[str],
    expression: str,
    by_net: Mapping[tuple[str, str], np.ndarray],
    by_cv: Mapping[tuple[str, int, str], np.ndarray],
    source: str = "auto",
) -> tuple[np.ndarray, str]:
    """Stack one heatmap per network for ``expression``.

    ``source="files"`` uses the published by_net heatmaps, ``"fold_mean"`` the pixel mean of the
    network's by_cv heatmaps, ``"auto"`` the files when every network has one, else fold means.
    """
    have_files = all((n, expression) in by_net for n in networks)
    if source == "files" and not have_files:
        missing = [n for n in networks if (n, expression) not in by_net]
        raise ValueError(f"no by_net heatmap for {expression}: {', '.join(missing)}")
    use_files = source == "files" or (source == "auto" and have_files)
    if use_files:
        return np.stack([np.asarray(by_net[(n, expression)], np.float64) for n in networks]), "files"
    stack = []
    for n in networks:
        folds = [np.asarray(v, np.float64) for (nn, _, e), v in sorted(by_cv.items()) if nn == n and e == expression]
        if not folds:
            raise ValueError(f"no heatmaps for {n} / {expression}")
        stack.append(np.mean(folds, axis=0))
    return np.stack(stack), "fold_mean"


def expression_similarity(
    expression: str,
    networks: Sequence[str],
    by_net: Mapping[tuple[str, str], np.ndarray],
    by_cv: Mapping[tuple[str, int, str], np.ndarray],
    method: str = "pearson",
    source: str = "auto",
) -> SimilarityResult:
    """The tree of ``networks``' heatmaps of ``expression``. A constant heatmap (e.g. a method whose
    maps are all zero for that class) has no correlation with anything: it is left out of the tree
    and named in ``left_out``; :class:`TooFewHeatmaps` when fewer than two remain."""
    maps, used = pooled_heatmaps(networks, expression, by_net, by_cv, source)
    bad = undefined_images(maps, method)
    kept = [n for n, b in zip(networks, bad, strict=True) if not b]
    left_out = tuple(n for n, b in zip(networks, bad, strict=True) if b)
    if len(kept) < 2:
        raise TooFewHeatmaps(f"{expression}: {len(kept)} informative heatmap(s); constant: {', '.join(left_out)}")
    d = correlation_distances(maps[~bad], method)
    z = average_linkage(d)
    return SimilarityResult(expression, kept, d, z, cophenetic_correlation(z, d), method, used, left_out)
