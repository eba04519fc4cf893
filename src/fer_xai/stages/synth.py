"""``fer-xai synth``: generate the embedded synthetic expressive-face dataset.

Real FER datasets cannot be downloaded here, so the project ships a generator: real face
photographs bundled with scikit-image and matplotlib, warped by FACS action units (paper
Table 2) into many subjects x six expressions x several intensities, each image with its
68 landmarks and an AU-region mask (see :mod:`fer_xai.synthface`).
"""

from __future__ import annotations

import json
import logging

import click

from ..config import Params, SynthParams
from ..paths import resolve

log = logging.getLogger(__name__)


def run(params: Params, progress: bool = True) -> dict:
    """Generate the dataset into ``synth.out_dir`` (atomically replaced); return the summary."""
    from ..synthface.generator import Config, generate

    p = params.synth
    out_dir = resolve(p.out_dir)
    log.info("generating %d subjects x %d expressions x %d intensities at %d px -> %s",
             p.n_subjects, 6, len(p.intensities), p.image_size, out_dir)
    return generate(Config.from_params(p), out_dir, workers=p.workers, progress=progress,
                    guard=params.output_guard("synth"))


def log_to_mlflow(p: SynthParams, experiment: str, summary: dict) -> None:
    import mlflow

    from ..tracking import stage_run

    out_dir = resolve(p.out_dir)
    with stage_run("synth", experiment=experiment, params=p.model_dump()):
        mlflow.log_metrics({
            "n_images": summary["n_images"],
            "n_subjects": summary["n_subjects"],
            "seconds": summary["seconds"],
            "mean_mask_fraction": summary["mean_mask_fraction"],
            "shrunk_expressions": summary["shrunk_expressions"],
            **{f"images.{k}": v for k, v in summary["counts"].items()},
        })
        for name in ("contact_sheet.png", "generator.json"):
            if (out_dir / name).is_file():
                mlflow.log_artifact(str(out_dir / name))


@click.command("synth")
@click.option("--no-mlflow", is_flag=True, help="Do not log an MLflow run.")
@click.pass_obj
def cli(obj, no_mlflow: bool) -> None:
    """Generate the embedded synthetic expressive-face dataset (params: synth)."""
    params = obj.params
    summary = run(params)
    if not no_mlflow:
        log_to_mlflow(params.synth, params.tracking.experiment, summary)
    click.echo(json.dumps({k: summary[k] for k in ("n_images", "n_subjects", "seconds", "out_dir")}))
