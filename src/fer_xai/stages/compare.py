"""``fer-xai compare``: compare heatmaps with the Ekman masks and with each other.

Published-layout mode (``--heatmaps-dir``, ``--masks-dir``, ``--out``) reads the study's files
(``<Net>_CV<k>_<Expression>_heatmap.png``, ``<Net>_<Expression>_heatmap.png``,
``<Expression>_gt.png``) and reproduces paper Tables 3-5 and Figure 10; see
:func:`compare_published` for the files written.
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
from ..compare.published import CompareInputError, load_published
from ..compare.similarity import expression_similarity
from ..compare.tables import best_worst, best_worst_markdown, frame_markdown, paper_table
from ..compare.threshold_free import fold_bootstrap, threshold_free_metrics
from ..config import CompareParams

log = logging.getLogger(__name__)

PIPELINE_MODE_ERROR = (
    "pipeline mode needs the heatmaps stage, which is not available yet; "
    "to compare published-layout heatmaps pass --heatmaps-dir, --masks-dir and --out"
)


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def compare_published(
    heatmaps_dir: str | os.PathLike,
    masks_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    params: CompareParams | None = None,
) -> dict[str, Any]:
    """Run the whole comparison on published-layout files and write the results to ``out_dir``.

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
    from ..compare import plots  # matplotlib only when figures are drawn

    params = params or CompareParams()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = load_published(heatmaps_dir, masks_dir)
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
            res = expression_similarity(expr, nets, data.by_net, data.by_cv,
                                        params.correlation, params.by_net_source)
            similarity[expr] = res
            pd.DataFrame(res.distances, index=pd.Index(nets, name="model"), columns=nets).to_csv(
                out / f"distances_{expr}.csv")
            pd.DataFrame(res.linkage, columns=["left", "right", "distance", "size"]).astype(
                {"left": int, "right": int, "size": int}).to_csv(out / f"linkage_{expr}.csv", index=False)
            files += [out / f"distances_{expr}.csv", out / f"linkage_{expr}.csv"]
            dendro_rows.append({"expression": expr, "cophenetic_correlation": res.cophenetic,
                                "correlation": res.method, "linkage": params.linkage,
                                "heatmaps": res.source, "n_networks": len(nets)})
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
    boot = fold_bootstrap(per_fold, ("iou", "f1"), params.bootstrap_samples,
                          params.bootstrap_seed, params.ci_level)
    boot.to_csv(out / "bootstrap_ci.csv", index=False)
    files += [out / "threshold_free.csv", out / "bootstrap_ci.csv"]

    summary = _summary(table, dendros, tf, params, data)
    files.append(_write_text(out / "summary.json", json.dumps(summary, indent=2, allow_nan=True) + "\n"))
    log.info("wrote %d files to %s", len(files), out)
    return {"metrics": per_fold, "table": table, "threshold_free": tf, "bootstrap": boot,
            "best_worst": bw, "dendrograms": dendros, "similarity": similarity,
            "networks": nets, "expressions": exprs, "summary": summary, "files": files}


def _f(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else round(x, 6)


def _summary(table, dendros, tf, params, data) -> dict[str, Any]:
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
        "params": params.model_dump(),
    }


def log_compare_run(result: dict[str, Any], params: CompareParams, experiment: str,
                    inputs: dict[str, str], out_dir: Path) -> str:
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
    run_params = {**params.model_dump(), **inputs,
                  "by_net_heatmaps": str(result["summary"]["by_net_heatmaps"])}
    with stage_run("compare", experiment=experiment, params=run_params,
                   tags={"fer_xai.compare.mode": "published"}) as run:
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(out_dir), artifact_path="compare")
        return run.info.run_id


def _resolve_params(obj) -> tuple[CompareParams, str]:
    """The ``compare:`` block and experiment name of the project's params.yaml."""
    p = obj.params
    return p.compare, p.tracking.experiment


@click.command("compare")
@click.option("--heatmaps-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Published-layout heatmaps (<Net>_CV<k>_<Expression>_heatmap.png, searched recursively).")
@click.option("--masks-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Ekman masks <Expression>_gt.png.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder for tables, figures and CSVs.")
@click.option("--no-mlflow", is_flag=True, help="Do not log the run to MLflow.")
@click.pass_obj
def cli(obj, heatmaps_dir: Path | None, masks_dir: Path | None, out_dir: Path | None,
        no_mlflow: bool) -> None:
    """Compare heatmaps with the Ekman masks (Tables 3-5) and with each other (Figure 10)."""
    given = {"--heatmaps-dir": heatmaps_dir, "--masks-dir": masks_dir, "--out": out_dir}
    if all(v is None for v in given.values()):
        raise click.UsageError(PIPELINE_MODE_ERROR)
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise click.UsageError(
            f"published-layout mode needs --heatmaps-dir, --masks-dir and --out; missing {', '.join(missing)}"
        )
    params, experiment = _resolve_params(obj)
    try:
        result = compare_published(heatmaps_dir, masks_dir, out_dir, params)
    except CompareInputError as exc:
        raise click.ClickException(str(exc)) from exc
    table = result["table"]
    avg = table[table["expression"] == AVG]
    for row in avg.itertuples(index=False):
        click.echo(f"{row.model:>16}  IoU {row.iou:.4f}  F1 {row.f1:.4f}  "
                   f"P {row.precision:.4f}  R {row.recall:.4f}")
    if not no_mlflow:
        run_id = log_compare_run(result, params, experiment,
                                 {"heatmaps_dir": str(heatmaps_dir), "masks_dir": str(masks_dir),
                                  "out_dir": str(out_dir)}, Path(out_dir))
        click.echo(f"MLflow run {run_id}")
    click.echo(f"results in {out_dir}")
