"""``fer-xai report``: the study as one self-contained HTML page (plus its figures as PNGs).

Reads what the other stages wrote (``reports/cv``, ``masks/``, ``heatmaps/``, ``reports/compare``,
``models/<m>/fold<k>/metrics.json``, ``dvc.lock``) and writes ``<report.out_dir>/<report.html_name>``
with every figure embedded, and the same figures under ``<report.out_dir>/<report.figures_dir>/``.
A section whose inputs are absent says which stage to run. The page and figures are logged as
artifacts of an MLflow run of stage ``report``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from .. import layout
from ..config import Params
from ..outputs import staged_dir
from .options import no_mlflow_option

log = logging.getLogger(__name__)


def run(params: Params) -> dict:
    """Build the report; the figures folder is replaced only when the whole page was built."""
    from ..report import build_report

    html, figures = layout.report_html(params), layout.report_figures_dir(params)
    if Path(params.report.figures_dir).is_absolute() or ".." in Path(params.report.figures_dir).parts:
        raise click.ClickException(f"report.figures_dir must be a folder name under report.out_dir, "
                                   f"got {params.report.figures_dir!r}")
    with staged_dir(figures, params.output_guard("report", "report.figures_dir")) as tmp:
        result = build_report(params, html, tmp, params.report.figures_dir)
    result["figures"] = [figures / p.name for p in result["figures"]]
    return result


def log_run(params: Params, result: dict) -> str:
    import mlflow

    from ..tracking import stage_run

    html, figures = layout.report_html(params), layout.report_figures_dir(params)
    sections = result["sections"]
    run_params = {"html": str(html), "figures_dir": str(figures), **{f"section.{k}": v for k, v in sections.items()}}
    missing = ",".join(k for k, v in sections.items() if v != "ok")
    with stage_run("report", params.tracking.experiment, params=run_params,
                   tags={"fer_xai.report.missing": missing}) as run:
        mlflow.log_metric("report_figures", len(result["figures"]))
        mlflow.log_artifact(str(html), artifact_path="report")
        if figures.is_dir():
            mlflow.log_artifacts(str(figures), artifact_path=f"report/{figures.name}")
        return run.info.run_id


@click.command("report")
@no_mlflow_option
@click.pass_obj
def cli(obj, no_mlflow: bool) -> None:
    """Write the self-contained HTML report of the study (report.out_dir/report.html_name)."""
    params: Params = obj.params
    result = run(params)
    missing = [k for k, v in result["sections"].items() if v != "ok"]
    if missing:
        click.echo(f"sections with missing inputs: {', '.join(missing)} (see the notes in the report)")
    if not no_mlflow:
        click.echo(f"MLflow run {log_run(params, result)}")
    click.echo(f"report: {result['html']} ({len(result['figures'])} figures in {layout.report_figures_dir(params)})")
