"""``fer-xai compare``: compare heatmaps with the Ekman masks and with each other.

Pipeline mode (no options; what ``dvc repro`` runs) reads the pipeline's own heatmaps
(``compare.heatmaps_dir``: ``by_cv/``, ``by_net/`` and ``standardized/<model>/fold<k>.npz``) and
masks (``compare.masks_dir``), writes to ``compare.out_dir`` and ``metrics/compare.json``, bootstraps
IoU/F1 over the explained images and logs the metrics into each training's MLflow run; see
:func:`compare_pipeline`.

Published-layout mode (``--heatmaps-dir``, ``--masks-dir``, ``--out``) reads the study's files
(``<Net>_CV<k>_<Expression>_heatmap.png``, ``<Net>_<Expression>_heatmap.png``,
``<Expression>_gt.png``) and reproduces paper Tables 3-5 and Figure 10; see
:func:`compare_published` for the files written. Both modes write the same files.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from ..compare.metrics import AVG, METRICS, aggregate, fold_metrics
from ..compare.pipeline import StandardizedMaps, image_bootstrap, load_standardized
from ..compare.published import CompareInputError, PublishedData, load_published
from ..compare.similarity import expression_similarity
from ..compare.tables import best_worst, best_worst_markdown, frame_markdown, paper_table
from ..compare.threshold_free import fold_bootstrap, threshold_free_metrics
from ..config import CompareParams, Params
from ..outputs import OutputGuard, staged_dir
from ..paths import metrics_path, resolve, write_json_atomic

log = logging.getLogger(__name__)

# The pipeline's heatmaps in the published layout (other files under heatmaps/ are figures).
PIPELINE_SUBDIRS = ("by_cv", "by_net")
STANDARDIZED_SUBDIR = "standardized"


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
    from ..compare import plots  # matplotlib only when figures are drawn

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nets, exprs = data.networks, data.expressions
    log.info("comparing %d networks x %d expressions (%d per-fold heatmaps, %d pooled)",
             len(nets), len(exprs), len(data.by_cv), len(data.by_net))
    files: list[Path] = []

    # --- Tables 3 and 4 ------------------------------------------------------------------
    per_fold = fold_metrics(data.by_cv, data.masks, params.mask_threshold, nets, exprs)
    table = aggregate(per_fold, nets, exprs)
    per_fold.to_csv(out / "ekman_metrics.csv", index=False)
    table.to_csv(out / "ekman_table.csv", index=False)
    files += [out / "ekman_metrics.csv", out / "ekman_table.csv"]
    for name, mets in (("table_iou_f1", ("iou", "f1")), ("table_precision_recall", ("precision", "recall"))):
        wide = paper_table(table, mets)
        wide.to_csv(out / f"{name}.csv")
        files += [out / f"{name}.csv", _write_text(out / f"{name}.md", frame_markdown(wide))]

    # --- Table 5 -------------------------------------------------------------------------
    bw = pd.concat([best_worst(table, m, params.top_k) for m in ("iou", "f1")], ignore_index=True)
    bw.to_csv(out / "best_worst.csv", index=False)
    files += [out / "best_worst.csv", _write_text(out / "best_worst.md", best_worst_markdown(bw))]

    for expr in [*exprs, AVG]:
        files.append(plots.plot_expression_bars(table, expr, out / f"barplot_{expr}.png", per_fold))

    # --- Figure 10 -----------------------------------------------------------------------
    similarity = {}
    dendro_rows = []
    if len(nets) >= 2:
        for expr in exprs:
            # A network that never predicted this expression has no heatmap for it: leave it out
            # of this expression's tree rather than fail the comparison.
            avail = [n for n in nets if (n, expr) in data.by_net
                     or any(k[0] == n and k[2] == expr for k in data.by_cv)]
            if len(avail) < 2:
                log.warning("%s: heatmaps of %d network(s) only (%s): no distances or dendrogram", expr,
                            len(avail), ", ".join(avail) or "none")
                continue
            if len(avail) < len(nets):
                log.warning("%s: no heatmaps for %s; tree over the other networks", expr,
                            ", ".join(n for n in nets if n not in avail))
            res = expression_similarity(expr, avail, data.by_net, data.by_cv,
                                        params.correlation, params.by_net_source)
            similarity[expr] = res
            pd.DataFrame(res.distances, index=pd.Index(avail, name="model"), columns=avail).to_csv(
                out / f"distances_{expr}.csv")
            pd.DataFrame(res.linkage, columns=["left", "right", "distance", "size"]).astype(
                {"left": int, "right": int, "size": int}).to_csv(out / f"linkage_{expr}.csv", index=False)
            files += [out / f"distances_{expr}.csv", out / f"linkage_{expr}.csv"]
            dendro_rows.append({"expression": expr, "cophenetic_correlation": res.cophenetic,
                                "correlation": res.method, "linkage": params.linkage,
                                "heatmaps": res.source, "n_networks": len(avail)})
        if similarity:
            xmax = plots.distance_axis_max(list(similarity.values()))
            for expr, res in similarity.items():
                files.append(plots.plot_dendrogram(res, out / f"dendrogram_{expr}.png", xmax))
            files.append(plots.plot_dendrogram_grid(list(similarity.values()), out / "dendrograms.png"))
    else:
        log.warning("only one network: no distances or dendrograms")
    dendros = pd.DataFrame(dendro_rows, columns=["expression", "cophenetic_correlation", "correlation",
                                                 "linkage", "heatmaps", "n_networks"])
    dendros.to_csv(out / "dendrograms.csv", index=False)
    files.append(out / "dendrograms.csv")

    # --- beyond the paper ----------------------------------------------------------------
    tf = threshold_free_metrics(data.by_cv, data.masks, params.mask_threshold)
    order = {n: i for i, n in enumerate(nets)}
    eorder = {e: i for i, e in enumerate(exprs)}
    tf = tf.sort_values(["model", "fold", "expression"],
                        key=lambda s: s.map(order) if s.name == "model"
                        else s.map(eorder) if s.name == "expression" else s).reset_index(drop=True)
    tf.to_csv(out / "threshold_free.csv", index=False)
    boot = _bootstrap(per_fold, table, data, params, per_image)
    boot.to_csv(out / "bootstrap_ci.csv", index=False)
    files += [out / "threshold_free.csv", out / "bootstrap_ci.csv"]

    summary = _summary(table, dendros, tf, boot, params, data)
    files.append(_write_text(out / "summary.json", json.dumps(summary, indent=2, allow_nan=True) + "\n"))
    log.info("wrote %d files to %s", len(files), out)
    return {"metrics": per_fold, "table": table, "threshold_free": tf, "bootstrap": boot,
            "best_worst": bw, "dendrograms": dendros, "similarity": similarity,
            "networks": nets, "expressions": exprs, "summary": summary, "files": files}


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


def pipeline_dirs(params: Params) -> tuple[Path, Path, Path]:
    """Heatmaps, masks and output folders of pipeline mode (``compare.*_dir``, by default the
    heatmaps and masks stages' ``out_dir``)."""
    cp = params.compare
    return (resolve(cp.heatmaps_dir or params.heatmaps.out_dir),
            resolve(cp.masks_dir or params.masks.out_dir), resolve(cp.out_dir))


def compare_pipeline(params: Params) -> dict[str, Any]:
    """Pipeline mode: the pipeline's heatmaps and masks (paths from ``params.compare``).

    Reads ``<heatmaps_dir>/by_cv`` and ``by_net`` (published layout), the per-image maps
    ``<heatmaps_dir>/standardized/<model>/fold<k>.npz`` and ``<masks_dir>/<Expression>_gt.png``;
    writes the files of :func:`compare_published` to ``compare.out_dir`` (atomically: a failure
    leaves the previous results) and ``metrics/compare.json``. Returns the result dict of
    :func:`run_comparison` plus ``model_ids`` ({network display name: model id}).
    """
    cp = params.compare
    hm_dir, masks_dir, out = pipeline_dirs(params)
    guard = params.output_guard("compare")
    guard.check(out)
    if not hm_dir.is_dir():
        raise CompareInputError(f"{hm_dir}: heatmaps folder not found; run `fer-xai heatmaps` "
                                "(or `dvc repro heatmaps`) first, or set compare.heatmaps_dir")
    if not any((hm_dir / d).is_dir() for d in PIPELINE_SUBDIRS):
        raise CompareInputError(f"{hm_dir}: has no {'/ or '.join(PIPELINE_SUBDIRS)}/ folder of "
                                "<Net>_CV<k>_<Expression>_heatmap.png files; rerun `fer-xai heatmaps`")
    if not masks_dir.is_dir():
        raise CompareInputError(f"{masks_dir}: Ekman masks folder not found; run `fer-xai masks` "
                                "(or `dvc repro masks`) first, or set compare.masks_dir")
    data = load_published(hm_dir, masks_dir, PIPELINE_SUBDIRS)
    shape = next(iter(data.masks.values())).shape
    std_dir = hm_dir / STANDARDIZED_SUBDIR
    per_image = load_standardized(std_dir, shape, data.networks)
    if not per_image.counts:
        log.warning("%s: no per-image maps; IoU/F1 intervals resample the folds instead of the images",
                    std_dir)
    with staged_dir(out, guard) as tmp:
        result = run_comparison(data, tmp, cp, per_image)
    result["files"] = [out / Path(f).relative_to(tmp) for f in result["files"]]
    result["model_ids"] = _model_ids(data.networks, per_image)
    write_json_atomic(metrics_path("compare"), dvc_metrics(result))
    log.info("wrote %s and %s", out, metrics_path("compare"))
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
    """``metrics/compare.json``: per network the averages over expressions (the four overlap
    metrics, ROC AUC, relevance mass) and per expression IoU and F1 with their CIs; the
    expression averages over networks under ``Avg``."""
    table = result["table"].set_index(["model", "expression"])
    tf = result["threshold_free"]
    boot = result["bootstrap"].set_index(["model", "expression", "metric"])
    out: dict[str, Any] = {}
    for net in [*result["networks"], AVG]:
        entry: dict[str, Any] = {m: _r4(table.at[(net, AVG), m]) for m in METRICS}
        sub = tf if net == AVG else tf[tf["model"] == net]
        entry["auc"] = _r4(sub["auc"].mean()) if len(sub) else None
        entry["relevance_mass"] = _r4(sub["relevance_mass"].mean()) if len(sub) else None
        for expr in result["expressions"]:
            cell = {m: _r4(table.at[(net, expr), m]) for m in ("iou", "f1")}
            for m in ("iou", "f1"):
                if (net, expr, m) in boot.index:
                    cell[f"{m}_ci_low"] = _r4(boot.at[(net, expr, m), "ci_low"])
                    cell[f"{m}_ci_high"] = _r4(boot.at[(net, expr, m), "ci_high"])
            entry[expr] = cell
        out[net] = entry
    return out


def log_compare_run(result: dict[str, Any], params: CompareParams, experiment: str,
                    inputs: dict[str, str], out_dir: Path, mode: str = "published") -> str:
    """Log metrics (per model/expression and averages) and the output files to one MLflow run."""
    import mlflow

    from ..tracking import stage_run

    metrics: dict[str, float] = {}
    for row in result["table"].itertuples(index=False):
        for m in METRICS:
            v = float(getattr(row, m))
            if np.isfinite(v):
                metrics[f"{m}/{row.model}/{row.expression}"] = v
    for row in result["dendrograms"].itertuples(index=False):
        if np.isfinite(row.cophenetic_correlation):
            metrics[f"cophenetic/{row.expression}"] = float(row.cophenetic_correlation)
    tf = result["threshold_free"]
    for (net, expr), grp in tf.groupby(["model", "expression"], sort=False):
        for col in ("auc", "relevance_mass"):
            v = float(grp[col].mean())
            if np.isfinite(v):
                metrics[f"{col}/{net}/{expr}"] = v
    for row in result["bootstrap"].itertuples(index=False):
        for bound in ("ci_low", "ci_high"):
            v = float(getattr(row, bound))
            if np.isfinite(v):
                metrics[f"{row.metric}_{bound}/{row.model}/{row.expression}"] = v
    run_params = {**params.model_dump(), **inputs,
                  "by_net_heatmaps": str(result["summary"]["by_net_heatmaps"])}
    with stage_run("compare", experiment=experiment, params=run_params,
                   tags={"fer_xai.compare.mode": mode}) as run:
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(out_dir), artifact_path="compare")
        return run.info.run_id


def training_run_metrics(result: dict[str, Any], net: str, fold: int) -> dict[str, float]:
    """The metrics of one training (network, fold): per expression and averaged over them.

    Keys ``ekman/<metric>/<Expression>`` and ``ekman/<metric>/Avg`` for IoU, F1, precision,
    recall (Otsu vs. Ekman mask), ROC AUC and relevance mass; NaN values are left out.
    """
    pf = result["metrics"]
    pf = pf[(pf["model"] == net) & (pf["fold"] == fold)].set_index("expression")
    tf = result["threshold_free"]
    tf = tf[(tf["model"] == net) & (tf["fold"] == fold)].set_index("expression")
    out: dict[str, float] = {}
    for frame, cols in ((pf, METRICS), (tf, ("auc", "relevance_mass"))):
        if not len(frame):
            continue
        for col in cols:
            values = frame[col].astype(float)
            for expr, v in values.items():
                if np.isfinite(v):
                    out[f"ekman/{col}/{expr}"] = float(v)
            avg = float(values.mean(skipna=False))
            if np.isfinite(avg):
                out[f"ekman/{col}/{AVG}"] = avg
    return out


def log_training_runs(result: dict[str, Any], compare_run_id: str | None = None) -> dict[str, str]:
    """Log each (network, fold)'s metrics into the MLflow run of that fold's training.

    The run is found through the registry (``fer-<model>@fold<k>``); a network or fold without a
    registry entry is skipped with a warning. Returns {"<Net>/fold<k>": run id} of the runs updated.
    """
    import time

    from mlflow.entities import Metric, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from ..registry import fold_run_id, fold_model_uri

    client = MlflowClient()
    updated: dict[str, str] = {}
    skipped: list[str] = []
    ts = int(time.time() * 1000)
    folds = result["metrics"][["model", "fold"]].drop_duplicates()
    for net, fold in folds.itertuples(index=False):
        model_id = result.get("model_ids", {}).get(net)
        if model_id is None:
            skipped.append(f"{net} fold {fold} (no model id)")
            continue
        try:
            run_id = fold_run_id(model_id, int(fold))
        except MlflowException as exc:
            skipped.append(f"{fold_model_uri(model_id, int(fold))} ({str(exc).splitlines()[0][:120]})")
            continue
        mets = training_run_metrics(result, net, int(fold))
        tags = [RunTag("fer_xai.compare_run", compare_run_id)] if compare_run_id else []
        try:
            client.log_batch(run_id, metrics=[Metric(k, v, ts, 0) for k, v in mets.items()], tags=tags)
        except MlflowException as exc:
            skipped.append(f"run {run_id} of {model_id} fold {fold} ({str(exc).splitlines()[0][:120]})")
            continue
        updated[f"{net}/fold{fold}"] = run_id
    if skipped:
        log.warning("metrics not logged to %d training run(s) without a registry entry: %s",
                    len(skipped), "; ".join(skipped))
    log.info("logged Ekman metrics into %d training run(s)", len(updated))
    return updated


def _resolve_params(obj) -> tuple[CompareParams, str]:
    """The ``compare:`` block and experiment name of the project's params.yaml."""
    p = obj.params
    return p.compare, p.tracking.experiment


def _echo_averages(result: dict[str, Any]) -> None:
    avg = result["table"][result["table"]["expression"] == AVG]
    for row in avg.itertuples(index=False):
        click.echo(f"{row.model:>16}  IoU {row.iou:.4f}  F1 {row.f1:.4f}  "
                   f"P {row.precision:.4f}  R {row.recall:.4f}")


@click.command("compare")
@click.option("--heatmaps-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Published-layout heatmaps (<Net>_CV<k>_<Expression>_heatmap.png, searched recursively).")
@click.option("--masks-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Ekman masks <Expression>_gt.png.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder for tables, figures and CSVs.")
@click.option("--no-mlflow", is_flag=True, help="Do not log to MLflow.")
@click.pass_obj
def cli(obj, heatmaps_dir: Path | None, masks_dir: Path | None, out_dir: Path | None,
        no_mlflow: bool) -> None:
    """Compare heatmaps with the Ekman masks (Tables 3-5) and with each other (Figure 10).

    Without options: the pipeline's own heatmaps and masks (compare.heatmaps_dir, compare.masks_dir
    in params.yaml) into compare.out_dir, metrics/compare.json and the training runs in MLflow.
    With --heatmaps-dir, --masks-dir and --out: files in the published layout.
    """
    given = {"--heatmaps-dir": heatmaps_dir, "--masks-dir": masks_dir, "--out": out_dir}
    if all(v is None for v in given.values()):
        _pipeline_cli(obj, no_mlflow)
        return
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise click.UsageError(
            f"published-layout mode needs --heatmaps-dir, --masks-dir and --out; missing {', '.join(missing)} "
            "(or give none of them for pipeline mode)"
        )
    params, experiment = _resolve_params(obj)
    try:
        result = compare_published(heatmaps_dir, masks_dir, resolve(out_dir), params,
                                   obj.params.output_guard("compare", "--out"))
    except CompareInputError as exc:
        raise click.ClickException(str(exc)) from exc
    _echo_averages(result)
    if not no_mlflow:
        run_id = log_compare_run(result, params, experiment,
                                 {"heatmaps_dir": str(heatmaps_dir), "masks_dir": str(masks_dir),
                                  "out_dir": str(out_dir)}, Path(out_dir))
        click.echo(f"MLflow run {run_id}")
    click.echo(f"results in {out_dir}")


def _pipeline_cli(obj, no_mlflow: bool) -> None:
    params: Params = obj.params
    cp = params.compare
    try:
        result = compare_pipeline(params)
    except CompareInputError as exc:
        raise click.ClickException(str(exc)) from exc
    _echo_averages(result)
    hm_dir, masks_dir, out = pipeline_dirs(params)
    if not no_mlflow:
        run_id = log_compare_run(result, cp, params.tracking.experiment,
                                 {"heatmaps_dir": str(hm_dir), "masks_dir": str(masks_dir),
                                  "out_dir": str(out)}, out, mode="pipeline")
        click.echo(f"MLflow run {run_id}")
        updated = log_training_runs(result, run_id)
        click.echo(f"metrics logged into {len(updated)} training run(s)")
    click.echo(f"results in {out}; metrics in {metrics_path('compare')}")
