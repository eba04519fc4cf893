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

from .. import layout
from ..config import Params
from .options import no_mlflow_option

log = logging.getLogger(__name__)


def run(params: Params, progress: bool = True) -> dict:
    """Generate the dataset into ``synth.out_dir`` (atomically replaced); return the summary."""
    from ..synthface.generator import Config, generate

    p = params.synth
    out_dir = layout.synth_dir(params)
    log.info("generating %d subjects x %d expressions x %d intensities at %d px -> %s",
             p.n_subjects, 6, len(p.intensities), p.image_size, out_dir)
    return generate(Config.from_params(p), out_dir, workers=p.workers, progress=progress,
                    guard=params.output_guard("synth"))


def log_to_mlflow(params: Params, summary: dict) -> None:
    import mlflow

    from ..tracking import stage_run

    out_dir = layout.synth_dir(params)
    with stage_run("synth", experiment=params.tracking.experiment, params=params.synth.model_dump()):
        mlflow.log_metrics({
            "n_images": summary["n_images"],
            "n_subjects": summary["n_subjects"],
            "seconds": summary["seconds"],
            "mean_mask_fraction": summary["mean_mask_fraction"],
            "shrunk_expressions": summary["shrunk_expressions"],
            **{f"images.{k}": v for k, v in summary["counts"].items()},
        })
        for name in (layout.SYNTH_CONTACT_SHEET, layout.SYNTH_GENERATOR):
            if (out_dir / name).is_file():
                mlflow.log_artifact(str(out_dir / name))


@click.command("synth")
@no_mlflow_option
@click.pass_obj
def cli(obj, no_mlflow: bool) -> None:
    """Generate the embedded synthetic expressive-face dataset (params: synth)."""
    params = obj.params
    summary = run(params)
    if not no_mlflow:
        log_to_mlflow(params, summary)
    click.echo(json.dumps({k: summary[k] for k in ("n_images", "n_subjects", "seconds", "out_dir")}))
