"""The whole comparison: heatmaps vs. the Ekman masks (Tables 3-5) and between networks (Figure 10).

Two entry points write the same files:

* :func:`compare_published`: files in the study's published layout
  (``<Net>_CV<k>_<Expression>_heatmap.png``, ``<Net>_<Expression>_heatmap.png``,
  ``<Expression>_gt.png``),
* :func:`compare_pipeline`: the pipeline's own heatmaps (``by_cv/``, ``by_net/`` and the per-image
  ``standardized/<model>/fold<k>.npz``) and masks, plus ``metrics/compare.json``
  (:func:`dvc_metrics`); IoU/F1 intervals resample the explained images where per-image maps exist.

Both replace their output folder atomically, only where the stage's output guard allows it.
Problems with the inputs raise :class:`~fer_xai.compare.published.CompareInputError`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import layout
from ..config import CompareParams, Params
from ..outputs import OutputGuard, staged_dir
from ..paths import write_json_atomic
from .metrics import AVG, METRICS, aggregate, fold_metrics
from .pipeline import image_bootstrap
from .published import CompareInputError, PublishedData, load_published
from .similarity import SimilarityResult, TooFewHeatmaps, expression_similarity
from .standardized import StandardizedMaps, load_standardized
from .tables import best_worst, best_worst_markdown, frame_markdown, paper_table
from .threshold_free import fold_bootstrap, threshold_free_metrics

log = logging.getLogger(__name__)

# The pipeline's heatmaps in the published layout (other files under heatmaps/ are figures).
PIPELINE_SUBDIRS = (layout.BY_CV, layout.BY_NET)
DENDROGRAM_COLUMNS = ["expression", "cophenetic_correlation", "correlation", "linkage", "heatmaps",
                      "n_networks", "left_out"]


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def compare_published(
    heatmaps_dir: str | os.PathLike,
    masks_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    params: CompareParams | None = None,
    guard: OutputGuard | None = None,
) -> dict[str, Any]:
    """Run the whole comparison on published-layout files and write the results to ``out_dir``.

    ``out_dir`` is replaced atomically and only if ``guard`` allows it (default: a folder this
    function wrote, or an empty or new one).

    Files written: ``ekman_metrics.csv`` (model,fold,expression,iou,f1,precision,recall),
    ``ekman_table.csv`` (model,expression,iou,f1,precision,recall with ``Avg`` rows),
    ``ekman_plot.csv`` (its IoU and F1 for ``dvc plots``: :func:`ekman_plot_frame`),
    ``table_iou_f1.{csv,md}`` and ``table_precision_recall.{csv,md}`` (paper Tables 3 and 4),
    ``best_worst.{csv,md}`` (Table 5), ``barplot_<Expression>.png`` and ``barplot_Avg.png``,
    ``distances_<Expression>.csv``, ``linkage_<Expression>.csv``, ``dendrogram_<Expression>.png``,
    ``dendrograms.png``, ``dendrograms.csv`` (cophenetic r per tree), ``threshold_free.csv``,
    ``bootstrap_ci.csv`` and ``summary.json``.

    Returns a dict with the frames (``metrics``, ``table``, ``threshold_free``, ``bootstrap``,
    ``best_worst``, ``dendrograms``), ``similarity`` ({Expression: SimilarityResult}),
    ``networks``, ``expressions``, ``summary`` and ``files`` (list of written paths).
    """
    params = params or CompareParams()
    guard = guard or OutputGuard(owner="compare", key="out_dir")
    out = guard.check(Path(out_dir))
    data = load_published(heatmaps_dir, masks_dir)
    with staged_dir(out, guard) as tmp:
        result = run_comparison(data, tmp, params)
    result["files"] = [out / Path(f).relative_to(tmp) for f in result["files"]]
    return result


def run_comparison(
    data: PublishedData,
    out_dir: str | os.PathLike,
    params: CompareParams,
    per_image: StandardizedMaps | None = None,
) -> dict[str, Any]:
    """The comparison of loaded heatmaps and masks (both modes); see :func:`compare_published`.

    ``per_image``: per-image standardized maps; IoU/F1 CIs of the cells whose every fold has
    them resample the explained images (``unit=image`` rows of ``bootstrap_ci.csv``, with the
    extra column ``estimate_images``), the other cells resample the folds (``unit=fold``).
    """
    from . import plots  # matplotlib only when figures are drawn

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nets, exprs = data.networks, data.expressions
    log.info("comparing %d networks x %d expressions (%d per-fold heatmaps, %d pooled)",
             len(nets), len(exprs), len(data.by_cv), len(data.by_net))
    files: list[Path] = []
    per_fold, table, bw = _overlap_tables(data, params, out, files)
    for expr in [*exprs, AVG]:
        files.append(plots.plot_expression_bars(table, expr, out / layout.barplot_name(expr), per_fold))
    similarity, dendros = _similarity(data, params, out, files, plots)
    tf = _threshold_free(data, params)
    tf.to_csv(out / layout.THRESHOLD_FREE, index=False)
    boot = _bootstrap(per_fold, table, data, params, per_image)
    boot.to_csv(out / layout.BOOTSTRAP_CI, index=False)
    files += [out / layout.THRESHOLD_FREE, out / layout.BOOTSTRAP_CI]

    summary = _summary(table, dendros, tf, boot, params, data)
    files.append(_write_text(out / layout.COMPARE_SUMMARY, json.dumps(summary, indent=2, allow_nan=True) + "\n"))
    log.info("wrote %d files to %s", len(files), out)
    return {"metrics": per_fold, "table": table, "threshold_free": tf, "bootstrap": boot,
            "best_worst": bw, "dendrograms": dendros, "similarity": similarity,
            "networks": nets, "expressions": exprs, "summary": summary, "files": files}


def ekman_plot_frame(table: pd.DataFrame) -> pd.DataFrame:
    """IoU and F1 per (network, expression) with one label per bar (``network_expression``):
    DVC's bar templates draw one bar per label and would stack a network's rows on each other."""
    frame = table[["model", "expression", "iou", "f1"]].copy()
    frame.insert(0, "network_expression", frame["model"] + " · " + frame["expression"])
    return frame


def _overlap_tables(data: PublishedData, params: CompareParams, out: Path,
                    files: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Paper Tables 3-5: per-fold scores, their aggregation and the best/worst networks; appends
    the files written to ``files``. Returns (per_fold, table, best_worst)."""
    per_fold = fold_metrics(data.by_cv, data.masks, params.mask_threshold, data.networks, data.expressions)
    table = aggregate(per_fold, data.networks, data.expressions)
    per_fold.to_csv(out / layout.EKMAN_METRICS, index=False)
    table.to_csv(out / layout.EKMAN_TABLE, index=False)
    ekman_plot_frame(table).to_csv(out / layout.EKMAN_PLOT, index=False)
    files += [out / layout.EKMAN_METRICS, out / layout.EKMAN_TABLE, out / layout.EKMAN_PLOT]
    for csv, md, mets in ((layout.TABLE_IOU_F1_CSV, layout.TABLE_IOU_F1_MD, ("iou", "f1")),
                          (layout.TABLE_PRECISION_RECALL_CSV, layout.TABLE_PRECISION_RECALL_MD,
                           ("precision", "recall"))):
        wide = paper_table(table, mets)
        wide.to_csv(out / csv)
        files += [out / csv, _write_text(out / md, frame_markdown(wide))]
    bw = pd.concat([best_worst(table, m, params.top_k) for m in ("iou", "f1")], ignore_index=True)
    bw.to_csv(out / layout.BEST_WORST_CSV, index=False)
    files += [out / layout.BEST_WORST_CSV, _write_text(out / layout.BEST_WORST_MD, best_worst_markdown(bw))]
    return per_fold, table, bw


def _similarity(data: PublishedData, params: CompareParams, out: Path, files: list[Path],
                plots) -> tuple[dict[str, SimilarityResult], pd.DataFrame]:
    """Figure 10: per expression the distances, linkage and dendrogram of the networks' heatmaps,
    and ``dendrograms.csv``; appends the files written to ``files``."""
    nets = data.networks
    similarity: dict[str, SimilarityResult] = {}
    dendro_rows = []
    if len(nets) >= 2:
        for expr in data.expressions:
            res = _expression_tree(data, params, expr, out, files)
            if res is None:
                continue
            similarity[expr] = res
            dendro_rows.append({"expression": expr, "cophenetic_correlation": res.cophenetic,
                                "correlation": res.method, "linkage": params.linkage,
                                "heatmaps": res.source, "n_networks": len(res.networks),
                                "left_out": " ".join(res.left_out)})
        if similarity:
            xmax = plots.distance_axis_max(list(similarity.values()))
            for expr, res in similarity.items():
                files.append(plots.plot_dendrogram(res, out / layout.dendrogram_name(expr), xmax))
            files.append(plots.plot_dendrogram_grid(list(similarity.values()), out / layout.DENDROGRAMS_PNG))
    else:
        log.warning("only one network: no distances or dendrograms")
    dendros = pd.DataFrame(dendro_rows, columns=DENDROGRAM_COLUMNS)
    dendros.to_csv(out / layout.DENDROGRAMS_CSV, index=False)
    files.append(out / layout.DENDROGRAMS_CSV)
    return similarity, dendros


def _expression_tree(data: PublishedData, params: CompareParams, expr: str, out: Path,
                     files: list[Path]) -> SimilarityResult | None:
    """One expression's distances and linkage CSVs; None when fewer than two networks have it."""
    nets = data.networks
    # A network that never predicted this expression has no heatmap for it: leave it out
    # of this expression's tree rather than fail the comparison.
    avail = [n for n in nets if (n, expr) in data.by_net
             or any(k[0] == n and k[2] == expr for k in data.by_cv)]
    if len(avail) < 2:
        log.warning("%s: heatmaps of %d network(s) only (%s): no distances or dendrogram", expr,
                    len(avail), ", ".join(avail) or "none")
        return None
    if len(avail) < len(nets):
        log.warning("%s: no heatmaps for %s; tree over the other networks", expr,
                    ", ".join(n for n in nets if n not in avail))
    try:
        res = expression_similarity(expr, avail, data.by_net, data.by_cv, params.correlation, params.by_net_source)
    except TooFewHeatmaps as exc:
        log.warning("%s: no distances or dendrogram", exc)
        return None
    if res.left_out:
        log.warning("%s: constant heatmap(s) of %s have no correlation; tree over the other networks", expr,
                    ", ".join(res.left_out))
    pd.DataFrame(res.distances, index=pd.Index(res.networks, name="model"), columns=res.networks).to_csv(
        out / layout.distances_name(expr))
    pd.DataFrame(res.linkage, columns=["left", "right", "distance", "size"]).astype(
        {"left": int, "right": int, "size": int}).to_csv(out / layout.linkage_name(expr), index=False)
    files += [out / layout.distances_name(expr), out / layout.linkage_name(expr)]
    return res


def _threshold_free(data: PublishedData, params: CompareParams) -> pd.DataFrame:
    """ROC AUC and relevance mass per network, fold and expression, in the tables' order."""
    tf = threshold_free_metrics(data.by_cv, data.masks, params.mask_threshold)
    order = {n: i for i, n in enumerate(data.networks)}
    eorder = {e: i for i, e in enumerate(data.expressions)}
    return tf.sort_values(["model", "fold", "expression"],
                          key=lambda s: s.map(order) if s.name == "model"
                          else s.map(eorder) if s.name == "expression" else s).reset_index(drop=True)


def _bootstrap(per_fold: pd.DataFrame, table: pd.DataFrame, data: PublishedData, params: CompareParams,
               per_image: StandardizedMaps | None) -> pd.DataFrame:
    """IoU/F1 CIs: over the explained images where per-image maps exist, else over the folds."""
    args = (params.bootstrap_samples, params.bootstrap_seed, params.ci_level)
    if per_image is None or not per_image.counts:
        log.info("bootstrap over folds (%d samples per cell)", params.bootstrap_samples)
        return fold_bootstrap(per_fold, ("iou", "f1"), *args)
    nets, exprs = data.networks, data.expressions
    folds = {n: sorted({f for nn, f, _ in data.by_cv if nn == n}) for n in nets}
    log.info("bootstrap over explained images (%d samples per cell)", params.bootstrap_samples)
    img, fallback = image_bootstrap(per_image, data.masks, table, nets, exprs, folds,
                                    params.mask_threshold, *args)
    if fallback:
        keep = pd.Series(list(zip(per_fold["model"], per_fold["expression"]))).isin(set(fallback)).to_numpy()
        fold = fold_bootstrap(per_fold[keep], ("iou", "f1"), *args)
        img = pd.concat([img, fold.assign(estimate_images=np.nan)], ignore_index=True)
    order = {n: i for i, n in enumerate(nets)}
    eorder = {e: i for i, e in enumerate(exprs)}
    morder = {"iou": 0, "f1": 1}
    return img.sort_values(["model", "expression", "metric"],
                           key=lambda s: s.map({"model": order, "expression": eorder, "metric": morder}[s.name])
                           ).reset_index(drop=True)


def _f(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else round(x, 6)


def _summary(table, dendros, tf, boot, params, data) -> dict[str, Any]:
    avg = table[table["expression"] == AVG].set_index("model")
    by_expr = table[(table["model"] == AVG) & (table["expression"] != AVG)].set_index("expression")
    sources = sorted(set(dendros["heatmaps"])) if len(dendros) else []
    return {
        "networks": data.networks,
        "expressions": data.expressions,
        "n_by_cv": len(data.by_cv),
        "by_net_heatmaps": sources[0] if len(sources) == 1 else sources,
        "model_average": {m: {k: _f(avg.at[m, k]) for k in METRICS} for m in avg.index},
        "expression_average": {e: {k: _f(by_expr.at[e, k]) for k in METRICS} for e in by_expr.index},
        "cophenetic_correlation": {r.expression: _f(r.cophenetic_correlation) for r in dendros.itertuples()},
        "auc_mean": _f(tf["auc"].mean()) if len(tf) else None,
        "bootstrap_units": sorted(set(boot["unit"])) if len(boot) else [],
        "params": params.model_dump(),
    }


# --- pipeline mode --------------------------------------------------------------------------


def _check_pipeline_inputs(hm_dir: Path, masks_dir: Path) -> None:
    """CompareInputError naming the stage to run when the heatmaps or masks are missing."""
    if not hm_dir.is_dir():
        raise CompareInputError(f"{hm_dir}: heatmaps folder not found; run `fer-xai heatmaps` "
                                "(or `dvc repro heatmaps`) first, or set compare.heatmaps_dir")
    if not any((hm_dir / d).is_dir() for d in PIPELINE_SUBDIRS):
        raise CompareInputError(f"{hm_dir}: has no {'/ or '.join(PIPELINE_SUBDIRS)}/ folder of "
                                "<Net>_CV<k>_<Expression>_heatmap.png files; rerun `fer-xai heatmaps`")
    if not masks_dir.is_dir():
        raise CompareInputError(f"{masks_dir}: Ekman masks folder not found; run `fer-xai masks` "
                                "(or `dvc repro masks`) first, or set compare.masks_dir")


def compare_pipeline(params: Params, metrics_name: str = "compare") -> dict[str, Any]:
    """Pipeline mode: the pipeline's heatmaps and masks (paths from ``params.compare``).

    Reads ``<heatmaps_dir>/by_cv`` and ``by_net`` (published layout), the per-image maps
    ``<heatmaps_dir>/standardized/<model>/fold<k>.npz`` and ``<masks_dir>/<Expression>_gt.png``;
    writes the files of :func:`compare_published` to ``compare.out_dir`` (atomically: a failure
    leaves the previous results) and ``metrics/<metrics_name>.json``. Returns the result dict of
    :func:`run_comparison` plus ``model_ids`` ({network display name: model id}).
    """
    cp = params.compare
    hm_dir, masks_dir, out = layout.compare_input_dirs(params)
    guard = params.output_guard("compare")
    guard.check(out)
    _check_pipeline_inputs(hm_dir, masks_dir)
    data = load_published(hm_dir, masks_dir, PIPELINE_SUBDIRS)
    shape = next(iter(data.masks.values())).shape
    std_dir = hm_dir / layout.STANDARDIZED
    per_image = load_standardized(std_dir, shape, data.networks)
    if not per_image.counts:
        log.warning("%s: no per-image maps; IoU/F1 intervals resample the folds instead of the images",
                    std_dir)
    with staged_dir(out, guard) as tmp:
        result = run_comparison(data, tmp, cp, per_image)
    result["files"] = [out / Path(f).relative_to(tmp) for f in result["files"]]
    result["model_ids"] = _model_ids(data.networks, per_image)
    write_json_atomic(layout.metrics_file(metrics_name), dvc_metrics(result))
    log.info("wrote %s and %s", out, layout.metrics_file(metrics_name))
    return result


def _model_ids(networks, per_image: StandardizedMaps | None) -> dict[str, str]:
    """Network display name -> model id (folder of the per-image maps, else the zoo's id)."""
    from ..models.zoo import UnknownNetworkError, network

    ids = {}
    for net in networks:
        if per_image is not None and net in per_image.model_ids:
            ids[net] = per_image.model_ids[net]
            continue
        try:
            ids[net] = network(net).id
        except UnknownNetworkError:
            log.warning("%s is not a network of the zoo: its metrics are not logged to a training run", net)
    return ids


def _r4(x) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else round(x, 4)


def dvc_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """``metrics/compare.json``, the headline `dvc metrics show` and `dvc exp show` list: per
    network, and under ``Avg`` over networks, the IoU and F1 averaged over expressions. The
    per-expression scores and their CIs are plots and tables (``ekman_plot.csv``,
    ``ekman_table.csv``, ``bootstrap_ci.csv``); every average in ``summary.json``."""
    table = result["table"].set_index(["model", "expression"])
    return {net: {m: _r4(table.at[(net, AVG), m]) for m in ("iou", "f1")} for net in [*result["networks"], AVG]}
