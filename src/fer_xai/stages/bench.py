"""``fer-xai bench``: does the study's answer depend on the explainer?

Every method of the study (the paper's LIME and ``explain.methods_enabled``, or ``bench.methods``)
checked against planted truth, a neutral-face swap of its top region (synthetic set), deletion and
insertion curves, cascading model randomisation and the chance levels of the paper's metric; and the
methods against LIME (Kendall's tau of the networks' ranking, Table 5, dendrograms). Writes
``bench.out_dir`` (:mod:`fer_xai.bench.run`) and ``metrics/bench.json``; one MLflow run per method.
"""

from __future__ import annotations

import json
import logging

import click

from ..config import Params
from .options import no_mlflow_option

log = logging.getLogger(__name__)


def run(params: Params, probe: bool = True, load_model=None) -> dict:
    from ..bench.run import run_bench
    from ..tracking import configure

    if probe and load_model is None:
        configure(params.tracking.experiment)  # the registry the fold models are loaded from
    return run_bench(params, load_model=load_model, probe=probe)


@click.command("bench")
@click.option("--no-probe", is_flag=True, help="Only the heatmap-based checks (no model is loaded).")
@no_mlflow_option
@click.pass_obj
def cli(obj, no_probe: bool, no_mlflow: bool) -> None:
    """Check every explanation method against planted truth, neutral swaps, deletion, randomisation and chance."""
    params: Params = obj.params
    result = run(params, probe=not no_probe)
    if not no_mlflow and params.bench.log_to_mlflow:
        from ..bench.run import log_to_mlflow

        log_to_mlflow(params, result)
    click.echo(json.dumps({"methods": result["methods"], "seconds": result["seconds"]}))
