"""``fer-xai compare``: compare heatmaps with the Ekman masks and with each other.

Pipeline mode (no options; what ``dvc repro`` runs) reads the pipeline's own heatmaps and masks,
writes to ``compare.out_dir`` and ``metrics/compare.json`` and logs the metrics into each
training's MLflow run (:func:`fer_xai.compare.run.compare_pipeline`); ``--method M`` compares
another explanation method's heatmaps (``<heatmaps.methods_out_dir>/<M>``) into
``<compare.methods_out_dir>/<M>`` and ``metrics/compare_<M>.json`` (MLflow: a compare run tagged
``pipeline:<M>``; the training runs keep LIME's metrics). Published-layout mode
(``--heatmaps-dir``, ``--masks-dir``, ``--out``) reads the study's files and reproduces paper
Tables 3-5 and Figure 10 (:func:`fer_xai.compare.run.compare_published`). Both modes write the
same files; input problems (:class:`~fer_xai.compare.published.CompareInputError`) reach the
user as one-line errors through :mod:`fer_xai.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .. import layout
from ..compare.metrics import AVG
from ..compare.mlflow_log import log_compare_run, log_training_runs
from ..compare.run import compare_pipeline, compare_published
from ..config import CompareParams, Params
from ..paths import resolve
from .options import no_mlflow_option

__all__ = ["cli", "compare_pipeline", "compare_published"]


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
@click.option("--method", default=layout.PAPER_METHOD, show_default=True,
              help="Pipeline mode: whose heatmaps, lime (the paper's) or a name of explain.methods.")
@no_mlflow_option
@click.pass_obj
def cli(obj, heatmaps_dir: Path | None, masks_dir: Path | None, out_dir: Path | None,
        method: str, no_mlflow: bool) -> None:
    """Compare heatmaps with the Ekman masks (Tables 3-5) and with each other (Figure 10).

    Without options: the pipeline's own heatmaps and masks (compare.heatmaps_dir, compare.masks_dir
    in params.yaml) into compare.out_dir, metrics/compare.json and the training runs in MLflow.
    With --heatmaps-dir, --masks-dir and --out: files in the published layout.
    """
    given = {"--heatmaps-dir": heatmaps_dir, "--masks-dir": masks_dir, "--out": out_dir}
    if all(v is None for v in given.values()):
        _pipeline_cli(obj, no_mlflow, method)
        return
    if method != layout.PAPER_METHOD:
        raise click.UsageError("--method is for pipeline mode; published-layout mode compares the files it is given")
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise click.UsageError(
            f"published-layout mode needs --heatmaps-dir, --masks-dir and --out; missing {', '.join(missing)} "
            "(or give none of them for pipeline mode)"
        )
    params, experiment = _resolve_params(obj)
    result = compare_published(heatmaps_dir, masks_dir, resolve(out_dir), params,
                               obj.params.output_guard("compare", "--out"))
    _echo_averages(result)
    if not no_mlflow:
        run_id = log_compare_run(result, params, experiment,
                                 {"heatmaps_dir": str(heatmaps_dir), "masks_dir": str(masks_dir),
                                  "out_dir": str(out_dir)}, Path(out_dir))
        click.echo(f"MLflow run {run_id}")
    click.echo(f"results in {out_dir}")


def _pipeline_cli(obj, no_mlflow: bool, method: str = layout.PAPER_METHOD) -> None:
    try:
        params: Params = layout.method_params(obj.params, method)
    except KeyError as exc:
        raise click.UsageError(f"--method {method}: {exc.args[0]}") from exc
    cp = params.compare
    metrics_name = layout.method_metrics_name("compare", method)
    paper = method == layout.PAPER_METHOD
    result = compare_pipeline(params, metrics_name)
    _echo_averages(result)
    hm_dir, masks_dir, out = layout.compare_input_dirs(params)
    if not no_mlflow:
        run_id = log_compare_run(result, cp, params.tracking.experiment,
                                 {"heatmaps_dir": str(hm_dir), "masks_dir": str(masks_dir),
                                  "out_dir": str(out), "method": method}, out,
                                 mode="pipeline" if paper else f"pipeline:{method}")
        click.echo(f"MLflow run {run_id}")
        if paper:  # the training runs' ekman/* metrics are the paper's (LIME's)
            updated = log_training_runs(result, run_id)
            click.echo(f"metrics logged into {len(updated)} training run(s)")
    click.echo(f"results in {out}; metrics in {layout.metrics_file(metrics_name)}")
