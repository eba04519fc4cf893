"""``fer-xai tune --model M --trials N``: an Optuna study of one network's epochs and learning rate.

Not part of ``dvc repro``: run it by hand (or ``mlflow run . -e tune``). Outputs
``<tune.out_dir>/best/<model>.yaml`` (used by ``fer-xai train`` only when ``train.use_tuned``)
and ``<tune.out_dir>/studies/<study>/`` (trials.csv, Optuna's plots); the study itself lives in
the Optuna storage (default ``<tune.out_dir>/optuna.db``, or any database URL). See
``fer_xai.tuning.study``.
"""

from __future__ import annotations

import json
import logging

import click

from ..config import Params
from .options import no_mlflow_option


@click.command("tune")
@click.option("--model", "model_id", required=True, help="Network id, e.g. songnet (see `fer-xai models`).")
@click.option("--trials", type=click.IntRange(min=0), default=0, show_default=False,
              help="Trials to run in this call (default: tune.trials). A resumed study keeps its earlier trials.")
@click.option("--storage", default=None,
              help="Optuna storage URL, e.g. postgresql://user@host/db (default: tune.storage, else "
                   "sqlite:///<root>/tuning/optuna.db). Machines sharing one URL share the study.")
@click.option("--study-name", default=None, help="Study name (default: <tune.study_prefix>-<model>).")
@no_mlflow_option
@click.pass_obj
def cli(obj, model_id: str, trials: int, storage: str | None, study_name: str | None, no_mlflow: bool) -> None:
    """Search a network's epochs and learning rate on a subject-grouped validation split."""
    import optuna

    from ..training.tuned import display_path
    from ..tuning.study import tune

    params: Params = obj.params
    # Our own progress lines (and Optuna's warnings) go through the CLI's log format.
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    optuna.logging.set_verbosity(logging.WARNING)
    res = tune(params, model_id, trials or None, storage=storage or None, study_name=study_name or None,
               use_mlflow=not no_mlflow)
    click.echo(json.dumps({
        "model": model_id, "study": res.study_name, "storage": res.storage, "trials": res.counts,
        "best_trial": res.best_trial, "best_value": res.best_value, "best_params": res.best_params,
        "best_file": display_path(res.best_file) if res.best_file else None, "run_id": res.run_id,
    }))
