"""MLflow logging of a comparison: one ``compare`` run with every metric and the output files,
and each training's Ekman metrics logged into that fold's own training run."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import CompareParams
from .metrics import AVG, METRICS

log = logging.getLogger(__name__)


def log_compare_run(result: dict[str, Any], params: CompareParams, experiment: str,
                    inputs: dict[str, str], out_dir: Path, mode: str = "published") -> str:
    """Log metrics (per model/expression and averages) and the output files to one MLflow run."""
    import mlflow  # imported only when a run is logged: --no-mlflow does not pay for it

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
    from mlflow.entities import Metric, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from ..mlflow_ui import DESCRIPTION_TAG, headline_description
    from ..registry import fold_model_uri, fold_run_id

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
            # The run's description lists the headline metrics, test and Ekman ones (fer_xai.mlflow_ui).
            known = client.get_run(run_id).data.metrics
            tags.append(RunTag(DESCRIPTION_TAG, headline_description(f"{model_id} fold {fold}", {**known, **mets})))
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
