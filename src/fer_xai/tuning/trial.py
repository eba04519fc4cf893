"""One Optuna trial: train the suggested recipe on the fit part, score it on the validation part.

Each trial trains with the same code and settings as ``fer-xai train`` (``fer_xai.training.fit``),
reports the validation accuracy after every epoch and stops when the pruner says so. With MLflow
each trial is a nested run (params, per-epoch curves, state) under the ``fer-xai tune`` run.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from typing import TYPE_CHECKING

from ..config import NetworkTrainParams, Params
from ..training.tuned import RECIPE_KEYS

if TYPE_CHECKING:
    from .study import TuneSetup

log = logging.getLogger(__name__)

OBJECTIVE = "val_accuracy"  # Keras' name for the accuracy on validation_data


def _pruning_reporter(trial):
    """Reports the validation accuracy after every epoch; stops training when the pruner says so."""
    import keras

    class PruningReporter(keras.callbacks.Callback):
        pruned_at: int | None = None

        def on_epoch_end(self, epoch, logs=None):
            value = float((logs or {})[OBJECTIVE])
            trial.report(value, step=epoch + 1)
            if trial.should_prune():
                self.pruned_at = epoch + 1
                self.model.stop_training = True

    return PruningReporter()


class Objective:
    """Train one trial's recipe on the fit part, score it on the validation part."""

    def __init__(self, params: Params, setup: TuneSetup, *, n_trials: int, use_mlflow: bool, study_name: str):
        self.params, self.setup, self.n_trials = params, setup, n_trials
        self.use_mlflow, self.study_name = use_mlflow, study_name
        self.calls = 0

    def __call__(self, trial) -> float:
        import keras

        from ..training.fit import compile_network, epoch_logger

        self.calls += 1
        cfg = self._suggest(trial)
        keras.utils.set_random_seed(self.params.train.seed)  # every trial starts from the same initial weights
        compiled = compile_network(self.params, self.setup.model_id, cfg)
        ds_fit, ds_val = self._datasets(compiled.batch_size)
        reporter = _pruning_reporter(trial)
        run_id = None
        t0 = time.perf_counter()
        with self._trial_run(trial) as run:
            if run is not None:
                run_id = run.info.run_id
                self._log_params(trial, cfg, compiled)
            hist = compiled.model.fit(ds_fit, validation_data=ds_val, epochs=cfg.epochs, verbose=0,
                                      callbacks=[epoch_logger(self.use_mlflow), reporter])
            seconds = time.perf_counter() - t0
            curve = [float(v) for v in hist.history[OBJECTIVE]]
            if run is not None:
                import mlflow

                mlflow.set_tag("optuna.trial_state", "PRUNED" if reporter.pruned_at else "COMPLETE")
                mlflow.log_metrics({"objective": curve[-1], "epochs_run": len(curve), "train_seconds": seconds})
        keras.backend.clear_session()
        return self._finish(trial, cfg.epochs, curve, reporter.pruned_at, seconds, run_id)

    def _suggest(self, trial) -> NetworkTrainParams:
        """The trial's recipe: the network's, with the suggested epochs and learning rate."""
        space = self.setup.space
        epochs = trial.suggest_int("epochs", space.epochs.low, space.epochs.high)
        lr = trial.suggest_float("learning_rate", space.learning_rate.low, space.learning_rate.high,
                                 log=space.learning_rate.log)
        log.info("trial %d (%d/%d of this call): epochs=%d, learning_rate=%.3g", trial.number, self.calls,
                 self.n_trials, epochs, lr)
        return self.setup.cfg.model_copy(update={"epochs": epochs, "learning_rate": lr})

    def _datasets(self, batch: int):
        from ..training.augment import make_dataset

        s, tr = self.setup, self.params.train
        ds_fit = make_dataset(s.fit.images, s.fit.labels, s.fit.core_boxes(), batch_size=batch, seed=tr.seed,
                              cfg=tr.augment_for(s.model_id), training=True)
        ds_val = make_dataset(s.val.images, s.val.labels, None, batch_size=batch, seed=tr.seed, cfg=None,
                              training=False)
        return ds_fit, ds_val

    def _trial_run(self, trial):
        """The trial's nested MLflow run (yields the run), or a no-op context yielding None."""
        if not self.use_mlflow:
            return nullcontext()
        from ..tracking import live_run

        return live_run(f"{self.study_name}-trial{trial.number}", nested=True, tags={
            "fer_xai.stage": "tune_trial", "tune.model": self.setup.model_id, "optuna.study_name": self.study_name,
            "optuna.trial_number": str(trial.number),
        })

    def _log_params(self, trial, cfg: NetworkTrainParams, compiled) -> None:
        import mlflow

        s = self.setup
        mlflow.log_params({"epochs": cfg.epochs, "learning_rate": cfg.learning_rate, "model": s.model_id,
                           **{k: getattr(cfg, k) for k in RECIPE_KEYS}, "batch_size_used": compiled.batch_size,
                           "pretrained_used": compiled.pretrained, "n_fit": len(s.fit), "n_val": len(s.val),
                           "trial_number": trial.number})

    @staticmethod
    def _finish(trial, epochs: int, curve: list[float], pruned_at: int | None, seconds: float,
                run_id: str | None) -> float:
        """Record the trial's outcome in Optuna: its score, or ``TrialPruned``."""
        import optuna

        trial.set_user_attr("epochs_run", len(curve))
        if run_id:
            trial.set_user_attr("mlflow_run_id", run_id)
        if pruned_at:
            log.info("trial %d pruned after epoch %d of %d: val accuracy %.4f (%.1f s)", trial.number,
                     pruned_at, epochs, curve[-1], seconds)
            raise optuna.TrialPruned(f"val accuracy {curve[-1]:.4f} at epoch {pruned_at}")
        log.info("trial %d: val accuracy %.4f after %d epochs (%.1f s)", trial.number, curve[-1], epochs, seconds)
        return curve[-1]
