"""Does the verdict depend on the explainer? Agreement of methods on the paper's conclusions.

- Kendall's tau (``scipy.stats.kendalltau``, tau-b) between two methods' rankings of the networks
  by average IoU against the Ekman masks (Table 3);
- agreement of Table 5: the share of the best (worst) k networks per expression two methods share;
- the cophenetic correlation of two methods' dendrograms over the same networks: Pearson
  correlation of their cophenetic distances (``scipy.cluster.hierarchy.cophenet``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.cluster.hierarchy import cophenet
from scipy.stats import kendalltau, pearsonr


def ranking_tau(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Kendall's tau-b of two scores over the networks both have (NaN below two networks)."""
    nets = [n for n in a if n in b and np.isfinite(a[n]) and np.isfinite(b[n])]
    if len(nets) < 2:
        return float("nan")
    x, y = [a[n] for n in nets], [b[n] for n in nets]
    if len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan")
    return float(kendalltau(x, y).statistic)


def set_agreement(a: Sequence[str], b: Sequence[str]) -> float:
    """Share of ``a``'s networks also in ``b`` (both lists of the same k; NaN when empty)."""
    a, b = list(a), list(b)
    if not a:
        return float("nan")
    return len(set(a) & set(b)) / len(set(a))


def cophenetic_agreement(tree_a: np.ndarray, tree_b: np.ndarray) -> float:
    """Pearson correlation of two linkage matrices' cophenetic distances (same leaves, same order)."""
    ca, cb = cophenet(np.asarray(tree_a, np.float64)), cophenet(np.asarray(tree_b, np.float64))
    if len(ca) != len(cb):
        raise ValueError(f"trees over different numbers of leaves: {len(ca)} vs {len(cb)} distances")
    if len(ca) < 2 or np.std(ca) == 0 or np.std(cb) == 0:
        return float("nan")
    return float(pearsonr(ca, cb).statistic)
