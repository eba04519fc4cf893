"""``fer-xai prepare``: detect, landmark, align and crop every face of every configured dataset.

Outputs (``prepare.out_dir``, default ``data/prepared``): ``<dataset>/<id>.png`` aligned grayscale
crops (and ``<id>_mask.png`` where the dataset carries AU-region masks), ``manifest.parquet``,
``rejected.csv``, ``summary.json`` and ``contact_sheet.png`` (see :mod:`fer_xai.preparation`),
plus ``metrics/prepare.json``. The folder is replaced only when the stage succeeds.
"""

from __future__ import annotations

import json
import logging

import click

from .. import layout
from ..config import Params
from ..paths import write_json_atomic
from ..preparation import build_prepared
from .options import no_mlflow_option

log = logging.getLogger(__name__)


def run(params: Params) -> dict:
    summary = build_prepared(params)
    metrics = layout.metrics_file("prepare")
    write_json_atomic(metrics, summary)
    log.info("prepared %d faces, rejected %d (%s) in %.1f s -> %s, %s", summary["n_prepared"],
             summary["n_rejected"], summary["rejected_by_reason"], summary["seconds"],
             layout.prepared_dir(params), metrics)
    return summary


def log_to_mlflow(params: Params, summary: dict) -> None:
    import mlflow

    from ..tracking import stage_run

    out_dir = layout.prepared_dir(params)
    with stage_run("prepare", params.tracking.experiment, params={
        "prepare": params.prepare.model_dump(), "data": params.data.model_dump()
    }):
        mlflow.log_metrics({
            "n_prepared": summary["n_prepared"], "n_rejected": summary["n_rejected"],
            "usable_rate": summary["usable_rate"], "seconds": summary["seconds"],
        })
        for ds, info in summary["datasets"].items():
            mlflow.log_metrics({f"{ds}.images": info["images"], f"{ds}.subjects": info["subjects"]})
        for reason, n in summary["rejected_by_reason"].items():
            mlflow.log_metric(f"rejected.{reason}", n)
        for name in (layout.PREPARED_REJECTED, layout.PREPARED_SUMMARY, layout.PREPARED_CONTACT_SHEET):
            mlflow.log_artifact(str(out_dir / name))


@click.command("prepare")
@no_mlflow_option
@click.pass_obj
def cli(obj, no_mlflow: bool) -> None:
    """Detect, landmark, align and crop the faces of every dataset in params.yaml."""
    summary = run(obj.params)
    if not no_mlflow:
        log_to_mlflow(obj.params, summary)
    click.echo(json.dumps({k: summary[k] for k in ("n_prepared", "n_rejected", "rejected_by_reason")}))
