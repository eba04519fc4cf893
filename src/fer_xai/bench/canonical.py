"""The bench's canonical-space part: what the heatmaps and compare folders of each method say.

No model runs here. Per method it reads the heatmaps stage's total heatmaps and planted-truth
masks (planted truth), the Ekman masks (chance: face-shape prior, specificity) and the compare
stage's tables and trees (between methods); and, once, LIME's explanations to draw random
superpixel weights on their own segmentations (chance of the paper's metric).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .. import layout
from ..config import Params
from ..images import read_gray
from ..labels import DISPLAY_NAMES, EXPRESSIONS
from . import agreement, chance
from .planted import planted_scores

log = logging.getLogger(__name__)

PAPER = "lime"


def method_params(params: Params, method: str) -> Params:
    """``params`` with method ``method``'s folders (the paper's LIME: as is); an unknown method is
    an error naming the configured ones."""
    try:
        return layout.method_params(params, method)
    except KeyError as exc:
        from .run import BenchInputError

        raise BenchInputError(f"bench.methods: {exc.args[0]}") from exc


def _read(path: Path) -> np.ndarray | None:
    return read_gray(path) if path.is_file() else None


def _per_expression(params: Params, method: str, folder: str, name) -> dict[str, np.ndarray]:
    """``{expression: image}`` of one method's heatmaps ``folder`` (missing expressions left out)."""
    hm = layout.heatmaps_dir(method_params(params, method)) / folder
    found = {e: _read(hm / name(DISPLAY_NAMES[e])) for e in EXPRESSIONS}
    return {e: im for e, im in found.items() if im is not None}


def totals(params: Params, method: str) -> dict[str, np.ndarray]:
    """``{expression: total heatmap (uint8)}`` of one method (missing expressions left out)."""
    return _per_expression(params, method, layout.TOTAL, layout.total_name)


def planted_masks(params: Params, method: str) -> dict[str, np.ndarray]:
    """``{expression: bool}`` planted AU regions the heatmaps stage wrote (synthetic set only)."""
    return {e: m > 127 for e, m in _per_expression(params, method, layout.PLANTED, layout.planted_name).items()}


def ekman_masks(params: Params) -> dict[str, np.ndarray]:
    """``{expression: bool}`` Ekman masks of ``masks.out_dir`` (empty when absent)."""
    root = layout.masks_dir(params)
    out = {}
    for e in EXPRESSIONS:
        m = _read(root / layout.expression_mask_name(DISPLAY_NAMES[e]))
        if m is not None:
            out[e] = m > params.compare.mask_threshold
    return out


def planted_table(params: Params, methods: list[str]) -> pd.DataFrame:
    rows = []
    for m in methods:
        tot, truth = totals(params, m), planted_masks(params, m)
        for e in EXPRESSIONS:
            if e in tot and e in truth:
                rows.append({"method": m, "expression": e, **planted_scores(tot[e], truth[e], f"{m} {e}")})
    return pd.DataFrame(rows, columns=["method", "expression", "precision", "recall", "iou", "f1",
                                       "relevance_mass", "area_share", "relevance_lift"])


def chance_tables(params: Params, methods: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(face-shape prior vs Ekman masks per method and expression, specificity per method and
    expression); empty without masks."""
    masks = ekman_masks(params)
    prior, spec = [], []
    for m in methods:
        tot = totals(params, m)
        if not tot or not masks:
            continue
        prior.append(chance.prior_scores(tot, masks).assign(method=m))
        spec.append(chance.specificity(tot, masks).assign(method=m))
    cat = lambda fs: pd.concat(fs, ignore_index=True) if fs else pd.DataFrame()  # noqa: E731
    return cat(prior), cat(spec)


def random_weight_chance(params: Params, repeats: int, seed: int) -> pd.DataFrame:
    """IoU/F1 vs the Ekman masks of heatmaps made of random superpixel weights on LIME's own
    segmentations, warped and averaged like the real maps; ``repeat`` per draw."""
    from ..explain.store import load_explanations
    from ..faces.canonical import WarpRejected, for_study
    from ..heatmaps.standardize import GridCache, normalize_map

    masks = ekman_masks(params)
    if not masks or repeats < 1:
        return pd.DataFrame(columns=["repeat", "expression", "iou", "f1"])
    space = for_study(params)
    cache = GridCache(space)
    sums = [{e: np.zeros(space.shape) for e in EXPRESSIONS} for _ in range(repeats)]
    counts = {e: 0 for e in EXPRESSIONS}
    rng = np.random.default_rng(seed)
    for k in params.train.folds:
        for model in params.train.models:
            path = layout.explanations_file(params, model, k)
            if not path.is_file():
                continue
            exp = load_explanations(path)
            for i in range(len(exp)):
                e = str(exp.classes[i])
                try:
                    grid = cache.get(str(exp.ids[i]), exp.landmarks[i], exp.segments[i].shape)
                except WarpRejected:
                    continue
                counts[e] += 1
                for r in range(repeats):
                    rnd = chance.random_superpixel_maps(exp.segments[i][None], rng)[0]
                    sums[r][e] += grid.apply(normalize_map(rnd)[0], params.canonical.interpolation)
    rows = []
    for r in range(repeats):
        means = {e: sums[r][e] / counts[e] for e in EXPRESSIONS if counts[e]}
        rows.append(chance.random_weight_scores(means, masks).assign(repeat=r))
    return pd.concat(rows, ignore_index=True)[["repeat", "expression", "iou", "f1"]] if rows else pd.DataFrame()


def _compare_dir(params: Params, method: str) -> Path:
    return layout.compare_dir(method_params(params, method))


def _network_iou(params: Params, method: str) -> dict[str, float]:
    """Average IoU per network (Table 3's network averages) of a method's compare folder."""
    path = _compare_dir(params, method) / layout.EKMAN_TABLE
    if not path.is_file():
        return {}
    from ..compare.metrics import AVG

    t = pd.read_csv(path)
    rows = t[(t["expression"] == AVG) & (t["model"] != AVG)]
    return dict(zip(rows["model"], rows["iou"].astype(float)))


def _best_worst(params: Params, method: str) -> pd.DataFrame:
    path = _compare_dir(params, method) / layout.BEST_WORST_CSV
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def _tree(params: Params, method: str, expr: str) -> tuple[list[str], np.ndarray] | None:
    d = _compare_dir(params, method)
    lk, dist = d / layout.linkage_name(expr), d / layout.distances_name(expr)
    if not (lk.is_file() and dist.is_file()):
        return None
    leaves = pd.read_csv(dist, index_col=0).index.astype(str).tolist()
    return leaves, pd.read_csv(lk)[["left", "right", "distance", "size"]].to_numpy(np.float64)


def agreement_table(params: Params, methods: list[str]) -> pd.DataFrame:
    """Per method against LIME: Kendall's tau of the networks' ranking by average IoU, agreement
    of the best and worst networks per expression (IoU, Table 5), and the cophenetic correlation
    of each expression's dendrogram with LIME's (mean over expressions)."""
    ref_iou, ref_bw = _network_iou(params, PAPER), _best_worst(params, PAPER)
    rows = []
    for m in methods:
        if m == PAPER:
            continue
        bw = _best_worst(params, m)
        best, worst = [], []
        if len(bw) and len(ref_bw):
            for expr in ref_bw["expression"].unique():
                a = ref_bw[(ref_bw["expression"] == expr) & (ref_bw["metric"] == "iou")]
                b = bw[(bw["expression"] == expr) & (bw["metric"] == "iou")]
                if len(a) and len(b):
                    best.append(agreement.set_agreement(a["best_model"], b["best_model"]))
                    worst.append(agreement.set_agreement(a["worst_model"], b["worst_model"]))
        coph = []
        for e in EXPRESSIONS:
            ta, tb = _tree(params, PAPER, DISPLAY_NAMES[e]), _tree(params, m, DISPLAY_NAMES[e])
            if ta and tb and ta[0] == tb[0]:
                coph.append(agreement.cophenetic_agreement(ta[1], tb[1]))
        rows.append({"method": m, "kendall_tau": agreement.ranking_tau(ref_iou, _network_iou(params, m)),
                     "best_agreement": float(np.nanmean(best)) if best else float("nan"),
                     "worst_agreement": float(np.nanmean(worst)) if worst else float("nan"),
                     "dendrogram_correlation": float(np.nanmean(coph)) if coph else float("nan"),
                     "n_networks": len(_network_iou(params, m))})
    return pd.DataFrame(rows, columns=["method", "kendall_tau", "best_agreement", "worst_agreement",
                                       "dendrogram_correlation", "n_networks"])
