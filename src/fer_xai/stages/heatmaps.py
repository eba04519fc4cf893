"""``fer-xai heatmaps``: standardized explanations and importance heatmaps (paper 4.2-4.3).

Warps every explanation of ``train.models`` x ``train.folds`` into the canonical face space and
averages the maps per (network, fold, expression), per (network, expression) and per expression
into ``heatmaps.out_dir`` (the files: :mod:`fer_xai.heatmaps.build`); ``metrics/heatmaps.json``
holds the headline counts and planted-truth scores (:func:`dvc_metrics`). Each network's heatmaps are logged
into its fold models' training runs (``heatmaps.log_to_mlflow``). ``--method M`` does the same
for another explanation method's maps (``<explain.methods_out_dir>/<M>``) into
``<heatmaps.methods_out_dir>/<M>`` and ``metrics/heatmaps_<M>.json`` (MLflow: ``heatmaps_<M>/``).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

import click

from .. import layout
from ..config import Params
from ..heatmaps.build import build_heatmaps
from ..heatmaps.figures import check_colormap
from ..models.zoo import display_name
from ..paths import write_json_atomic
from .options import no_mlflow_option

log = logging.getLogger(__name__)


def run(params: Params, metrics_name: str = "heatmaps") -> dict:
    try:
        check_colormap(params.heatmaps.colormap)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    summary, planted = build_heatmaps(params)
    write_json_atomic(layout.metrics_file(metrics_name), dvc_metrics(summary))
    log.info("%d maps -> %d standardized (%d rejected faces, %d grids built, %d reused) -> %s",
             summary["n_explanations"], summary["n_standardized"], summary["n_rejected"], summary["grids_built"],
             summary["grids_reused"], layout.heatmaps_dir(params))
    if planted is not None:
        for r in planted.itertuples():
            log.info("planted truth %-9s precision %.3f recall %.3f IoU %.3f (%d images)", r.expression,
                     r.precision, r.recall, r.iou, r.n_images)
    return summary


def dvc_metrics(summary: dict) -> dict:
    """``metrics/heatmaps.json``, the headline `dvc metrics show` and `dvc exp show` list: the
    counts of maps and the planted-truth scores averaged over expressions (None without AU-region
    masks). Everything else, per expression too, is in the heatmaps folder's ``summary.json``."""
    planted = summary["planted_truth"]
    return {**{k: summary[k] for k in ("n_explanations", "n_standardized", "n_rejected")},
            "planted_truth": planted["mean"] if planted else None}


# ------------------------------------------------------------------------------------- MLflow


def _training_run_id(params: Params, model: str, fold: int) -> str:
    """The fold model's training run: the registry's, else the one its explanations recorded."""
    from ..registry import fold_run_id

    try:
        return fold_run_id(model, fold)
    except Exception as exc:  # MlflowException / RestException when the name or alias is unknown
        summary = layout.explain_fold_dir(params, model, fold) / layout.EXPLAIN_SUMMARY
        if summary.is_file():
            run_id = json.loads(summary.read_text()).get("run_id")
            if run_id:
                return str(run_id)
        raise LookupError(f"no registered model fer-{model}@fold{fold} ({type(exc).__name__})") from exc


def log_to_training_runs(params: Params, artifact_path: str = "heatmaps") -> dict[str, str]:
    """Log each fold's heatmaps (and its network's pooled ones) into its training run."""
    from mlflow.tracking import MlflowClient

    from ..tracking import configure

    out = layout.heatmaps_dir(params)
    configure(params.tracking.experiment)
    client = MlflowClient()
    logged: dict[str, str] = {}
    for model in params.train.models:
        net = display_name(model)
        for fold in params.train.folds:
            try:
                run_id = _training_run_id(params, model, fold)
            except LookupError as exc:
                log.warning("%s fold %d: heatmaps not logged to a training run: %s", model, fold, exc)
                continue
            with tempfile.TemporaryDirectory() as td:
                stage = Path(td)
                picks = [
                    *(out / layout.BY_CV).glob(layout.by_cv_name(net, fold, "*")),
                    *(out / layout.COLOR / layout.BY_CV).glob(layout.by_cv_name(net, fold, "*", layout.COLORED)),
                    *(out / layout.BY_NET).glob(layout.by_net_name(net, "*")),
                    *(out / layout.COLOR / layout.BY_NET).glob(layout.by_net_name(net, "*", layout.COLORED)),
                    *[p for p in (out / layout.FIGURES / layout.figure_by_cv(net),) if p.is_file()],
                ]
                for p in picks:
                    dest = stage / p.parent.relative_to(out) / p.name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(p, dest)
                try:
                    client.log_artifacts(run_id, str(stage), artifact_path=artifact_path)
                except Exception as exc:  # a deleted run, an unreachable store
                    log.warning("%s fold %d: could not log heatmaps to run %s: %s", model, fold, run_id, exc)
                    continue
            logged[f"{model}/fold{fold}"] = run_id
            log.info("logged %d heatmap files of %s fold %d to training run %s", len(picks), model, fold, run_id)
    return logged


def log_stage_run(params: Params, summary: dict, method: str = layout.PAPER_METHOD) -> None:
    import mlflow

    from ..tracking import flatten, stage_run

    out = layout.heatmaps_dir(params)
    with stage_run(layout.method_metrics_name("heatmaps", method), params.tracking.experiment,
                   params={"canonical": params.canonical.model_dump(), "heatmaps": params.heatmaps.model_dump(),
                           "models": list(params.train.models), "folds": list(params.train.folds),
                           "method": method},
                   tags={"fer_xai.method": method}):
        metrics = {k: v for k, v in flatten(summary).items() if isinstance(v, (int, float)) and v is not None}
        mlflow.log_metrics({k.replace("planted_truth.", "planted."): float(v) for k, v in metrics.items()})
        for name in (layout.COUNTS, layout.HEATMAPS_REJECTED, layout.PLANTED_TRUTH, layout.HEATMAPS_SUMMARY,
                     layout.MEAN_FACE):
            if (out / name).is_file():
                mlflow.log_artifact(str(out / name), artifact_path="heatmaps")
        for sub in (layout.FIGURES, layout.TOTAL, layout.PLANTED):
            if (out / sub).is_dir():
                mlflow.log_artifacts(str(out / sub), artifact_path=f"heatmaps/{sub}")


@click.command("heatmaps")
@click.option("--method", default=layout.PAPER_METHOD, show_default=True,
              help="Whose explanations: lime (the paper's) or a name of explain.methods.")
@no_mlflow_option
@click.pass_obj
def cli(obj, method: str, no_mlflow: bool) -> None:
    """Warp explanations into canonical space and average them into heatmaps (by fold, network, total)."""
    try:
        params: Params = layout.method_params(obj.params, method)
    except KeyError as exc:
        raise click.UsageError(f"--method {method}: {exc.args[0]}") from exc
    metrics_name = layout.method_metrics_name("heatmaps", method)
    summary = run(params, metrics_name)
    if params.heatmaps.log_to_mlflow and not no_mlflow:
        try:
            log_to_training_runs(params, artifact_path=metrics_name)
            log_stage_run(params, summary, method)
        except Exception as exc:  # tracking is a record, not a result: never lose the heatmaps over it
            log.warning("MLflow logging failed: %s", exc)
    click.echo(json.dumps({k: v for k, v in summary.items() if k != "per_model"}, indent=1))
