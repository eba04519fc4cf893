"""One Optuna study per network over epochs and learning rate (paper 3.4's preliminary trainings).

The score is the accuracy on a **subject-grouped validation split carved from the training folds
only**: the outer test fold ``tune.test_fold`` is never used, and ``tune.val_fraction`` of the
other folds' subjects (``StratifiedGroupKFold``, seeded by ``tune.seed``) are held out. Each trial
trains with the same code and settings as ``fer-xai train`` (``fer_xai.training.fit``), reports
the validation accuracy after every epoch and can be pruned there. The sampler is a seeded TPE.

Storage: any database URL Optuna accepts (default ``sqlite:///<root>/<tune.out_dir>/optuna.db``),
so several machines can add trials to one study. A study remembers the settings it was created
with (search space, validation split, recipe, training settings); opening it with others is an
error, so trials of one study always stay comparable.

MLflow: one parent run per ``fer-xai tune`` call and one nested run per trial (params, per-epoch
curves, state); the parent holds the best params, the trials table and Optuna's plots.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, fields
from pathlib import Path

import click
import numpy as np

from ..config import NetworkTrainParams, Params, SearchSpace
from ..outputs import staged_dir
from ..paths import resolve
from ..redact import redact, redact_uri
from ..training.data import FoldData, load_split
from ..training.tuned import RECIPE_KEYS, TUNED_KEYS, best_file, display_path, write_best

log = logging.getLogger(__name__)

OBJECTIVE = "val_accuracy"  # Keras' name for the accuracy on validation_data
SETTINGS_ATTR = "fer_xai.settings"  # study user attribute: the settings it was created with


# --------------------------------------------------------------------------- settings and data

def default_storage(params: Params) -> str:
    return f"sqlite:///{resolve(params.tune.out_dir) / 'optuna.db'}"


def default_study_name(params: Params, model_id: str) -> str:
    return f"{params.tune.study_prefix}-{model_id}"


def _subset(data: FoldData, idx: np.ndarray) -> FoldData:
    return FoldData(**{f.name: getattr(data, f.name)[idx] for f in fields(data)})


def carve_validation(data: FoldData, val_fraction: float, seed: int) -> tuple[FoldData, FoldData]:
    """Split training-fold data by subject: about ``val_fraction`` of the subjects for validation.

    StratifiedGroupKFold (shuffled, seeded) with round(1 / val_fraction) parts; the first part is
    the validation set, so no subject is in both and labels are balanced as far as groups allow.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    n_parts = max(2, round(1.0 / val_fraction))
    n_subjects = len(np.unique(data.subjects))
    if n_subjects < n_parts:
        raise click.ClickException(
            f"tune.val_fraction={val_fraction} needs at least {n_parts} subjects in the training folds, "
            f"found {n_subjects}: raise tune.val_fraction or add subjects")
    sgkf = StratifiedGroupKFold(n_splits=n_parts, shuffle=True, random_state=seed)
    fit_idx, val_idx = next(sgkf.split(np.zeros(len(data)), data.labels, data.subjects))
    fit, val = _subset(data, np.sort(fit_idx)), _subset(data, np.sort(val_idx))
    assert not set(fit.subjects) & set(val.subjects)
    return fit, val


def _ids_digest(*parts: FoldData) -> str:
    h = hashlib.md5()
    for part in parts:
        for i, y in zip(part.ids, part.labels):
            h.update(f"{i}:{int(y)};".encode())
        h.update(b"|")
    return h.hexdigest()


@dataclass
class TuneSetup:
    """Everything a study's trials share: the fixed recipe, the space and the data."""

    model_id: str
    cfg: NetworkTrainParams  # train.networks[model] (epochs and learning rate are searched)
    space: SearchSpace
    fit: FoldData
    val: FoldData
    settings: dict  # what must match for two calls to add trials to the same study


def prepare(params: Params, model_id: str) -> TuneSetup:
    """Check the request and load the data; touches no storage and writes nothing."""
    tp = params.tune
    if model_id not in params.train.networks:
        raise click.ClickException(f"unknown model {model_id!r}; train.networks has {sorted(params.train.networks)}")
    unknown = sorted(set(tp.networks) - set(params.train.networks))
    if unknown:
        raise click.ClickException(f"tune.networks {unknown} have no entry in train.networks")
    if not 1 <= tp.test_fold <= params.split.n_folds:
        raise click.ClickException(f"tune.test_fold={tp.test_fold}: folds are 1..{params.split.n_folds}")
    cfg = params.train.networks[model_id]
    space = tp.space_for(model_id)
    t0 = time.perf_counter()
    # load_split returns the test fold too; it is dropped here, never trained on nor scored.
    train, _ = load_split(resolve(params.prepare.out_dir), resolve(params.split.out_file), tp.test_fold,
                          cfg.input_size)
    fit, val = carve_validation(train, tp.val_fraction, tp.seed)
    if len(fit) == 0 or len(val) == 0:
        raise click.ClickException(f"validation split: {len(fit)} training and {len(val)} validation images")
    log.info("%s: tuning on %d images of %d subjects, validating on %d images of %d subjects "
             "(folds other than test fold %d; loaded in %.1f s)", model_id, len(fit), len(set(fit.subjects)),
             len(val), len(set(val.subjects)), tp.test_fold, time.perf_counter() - t0)
    tr = params.train
    settings = {
        "model": model_id,
        "objective": OBJECTIVE,
        "space": space.model_dump(),
        "test_fold": tp.test_fold,
        "val_fraction": tp.val_fraction,
        "data": {"n_fit": len(fit), "n_val": len(val), "ids_md5": _ids_digest(fit, val)},
        "recipe": {k: getattr(cfg, k) for k in RECIPE_KEYS},
        "training": {"seed": tr.seed, "batch_size": tr.batch_size, "input_norm": tr.input_norm,
                     "allow_random_init": tr.allow_random_init,
                     "random_init_bn_momentum": tr.random_init_bn_momentum,
                     "augment": tr.augment_for(model_id).model_dump()},
    }
    # JSON round trip: what Optuna stores (tuples become lists) is what we compare with.
    settings = json.loads(json.dumps(settings))
    return TuneSetup(model_id, cfg, space, fit, val, settings)


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def settings_diff(stored: dict, now: dict) -> list[str]:
    a, b = _flat(stored), _flat(now)
    return [f"{k}: study has {a.get(k)!r}, now {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


# --------------------------------------------------------------------------- Optuna objects

def make_pruner(params: Params):
    import optuna

    pp = params.tune.pruner
    # Steps are 1-based epochs and Optuna prunes from step == n_warmup_steps on: +1 keeps the
    # first warmup_epochs epochs unpruned.
    warmup = pp.warmup_epochs + 1
    if pp.kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=pp.n_startup_trials, n_warmup_steps=warmup)
    if pp.kind == "threshold":
        return optuna.pruners.ThresholdPruner(lower=pp.threshold, n_warmup_steps=warmup)
    return optuna.pruners.NopPruner()


def open_study(storage: str, name: str, settings: dict, pruner):
    """Create the study, or load it when it exists and was created with the same settings.

    An existing study with other settings (or not made by fer-xai tune) is an error that
    changes nothing in the storage.
    """
    import optuna

    where = redact_uri(storage)  # what goes into logs, MLflow and the best file
    try:
        exists = name in optuna.get_all_study_names(storage)
    except Exception as exc:  # noqa: BLE001 - bad URL, missing driver, unreachable server
        raise click.ClickException(f"cannot open Optuna storage {where}: {redact(str(exc))}") from exc

    def check(study) -> None:
        stored = study.user_attrs.get(SETTINGS_ATTR)
        if stored is None:
            raise click.ClickException(
                f"study {name!r} in {where} was not created by `fer-xai tune` (no {SETTINGS_ATTR!r} attribute): "
                "choose another --study-name")
        diff = settings_diff(stored, settings)
        if diff:
            raise click.ClickException(
                f"study {name!r} in {where} was created with other settings; nothing was changed:\n  "
                + "\n  ".join(diff)
                + "\nRestore those settings to add trials to it, or start a new study with --study-name NAME.")

    if exists:
        study = optuna.load_study(study_name=name, storage=storage, pruner=pruner)
        check(study)
        return study
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize", pruner=pruner,
                                load_if_exists=True)  # another machine may have created it meanwhile
    if SETTINGS_ATTR in study.user_attrs:
        check(study)
    else:
        study.set_user_attr(SETTINGS_ATTR, settings)
    return study


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
        import optuna

        from ..training.augment import make_dataset
        from ..training.fit import compile_network, epoch_logger

        self.calls += 1
        s, tr = self.setup, self.params.train
        epochs = trial.suggest_int("epochs", s.space.epochs.low, s.space.epochs.high)
        lr = trial.suggest_float("learning_rate", s.space.learning_rate.low, s.space.learning_rate.high,
                                 log=s.space.learning_rate.log)
        cfg = s.cfg.model_copy(update={"epochs": epochs, "learning_rate": lr})
        log.info("trial %d (%d/%d of this call): epochs=%d, learning_rate=%.3g", trial.number, self.calls,
                 self.n_trials, epochs, lr)
        keras.utils.set_random_seed(tr.seed)  # every trial starts from the same initial weights
        compiled = compile_network(self.params, s.model_id, cfg)
        batch = compiled.batch_size
        ds_fit = make_dataset(s.fit.images, s.fit.labels, s.fit.core_boxes(), batch_size=batch, seed=tr.seed,
                              cfg=tr.augment_for(s.model_id), training=True)
        ds_val = make_dataset(s.val.images, s.val.labels, None, batch_size=batch, seed=tr.seed, cfg=None,
                              training=False)
        reporter = _pruning_reporter(trial)
        run_id = None
        if self.use_mlflow:
            import mlflow

            from ..tracking import live_run

            ctx = live_run(f"{self.study_name}-trial{trial.number}", nested=True, tags={
                "fer_xai.stage": "tune_trial", "tune.model": s.model_id, "optuna.study_name": self.study_name,
                "optuna.trial_number": str(trial.number),
            })
        else:
            ctx = nullcontext()
        t0 = time.perf_counter()
        with ctx as run:
            if self.use_mlflow:
                run_id = run.info.run_id
                mlflow.log_params({"epochs": epochs, "learning_rate": lr, "model": s.model_id,
                                   **{k: getattr(cfg, k) for k in RECIPE_KEYS}, "batch_size_used": batch,
                                   "pretrained_used": compiled.pretrained, "n_fit": len(s.fit), "n_val": len(s.val),
                                   "trial_number": trial.number})
            hist = compiled.model.fit(ds_fit, validation_data=ds_val, epochs=epochs, verbose=0,
                                      callbacks=[epoch_logger(self.use_mlflow), reporter])
            seconds = time.perf_counter() - t0
            curve = [float(v) for v in hist.history[OBJECTIVE]]
            state = "PRUNED" if reporter.pruned_at else "COMPLETE"
            if self.use_mlflow:
                mlflow.set_tag("optuna.trial_state", state)
                mlflow.log_metrics({"objective": curve[-1], "epochs_run": len(curve), "train_seconds": seconds})
        keras.backend.clear_session()
        trial.set_user_attr("epochs_run", len(curve))
        if run_id:
            trial.set_user_attr("mlflow_run_id", run_id)
        if reporter.pruned_at:
            log.info("trial %d pruned after epoch %d of %d: val accuracy %.4f (%.1f s)", trial.number,
                     reporter.pruned_at, epochs, curve[-1], seconds)
            raise optuna.TrialPruned(f"val accuracy {curve[-1]:.4f} at epoch {reporter.pruned_at}")
        log.info("trial %d: val accuracy %.4f after %d epochs (%.1f s)", trial.number, curve[-1], epochs, seconds)
        return curve[-1]


# --------------------------------------------------------------------------- outputs

def save_plots(study, out_dir: Path, seed: int) -> list[Path]:
    """Optuna's matplotlib plots: optimization history, parameter importances, per-epoch values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    plots = {
        "optimization_history": lambda: ovm.plot_optimization_history(study, target_name=OBJECTIVE),
        # fANOVA with a fixed seed: the same trials give the same importances.
        "param_importances": lambda: ovm.plot_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed), target_name=OBJECTIVE),
        "intermediate_values": lambda: ovm.plot_intermediate_values(study),
    }
    written = []
    for name, make in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                fig = np.asarray(make()).flat[0].figure
            except Exception as exc:  # noqa: BLE001 - e.g. importances need 2+ trials that differ in score
                log.warning("%s plot: %s (the PNG says so instead)", name, exc)
                fig, ax = plt.subplots(figsize=(6, 1.6))
                ax.axis("off")
                ax.text(0.5, 0.5, f"{name.replace('_', ' ')} unavailable:\n{exc}", ha="center", va="center",
                        wrap=True, fontsize=9)
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def _counts(study) -> dict[str, int]:
    from optuna.trial import TrialState

    states = [t.state for t in study.trials]
    return {"complete": states.count(TrialState.COMPLETE), "pruned": states.count(TrialState.PRUNED),
            "failed": states.count(TrialState.FAIL), "total": len(states)}


def _trials_frame(study):
    df = study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs", "duration"))
    if "duration" in df:
        df["duration"] = df["duration"].dt.total_seconds().round(2)
    return df.rename(columns={"value": OBJECTIVE})


@dataclass
class TuneResult:
    model_id: str
    study_name: str
    storage: str  # redacted
    counts: dict
    best_params: dict | None
    best_value: float | None
    best_trial: int | None
    best_file: Path | None
    out_dir: Path
    run_id: str | None = None


def tune(params: Params, model_id: str, n_trials: int | None = None, *, storage: str | None = None,
         study_name: str | None = None, use_mlflow: bool = True) -> TuneResult:
    """Run ``n_trials`` more trials of the network's study; write its best params and plots."""
    import optuna

    tp = params.tune
    n_trials = n_trials or tp.trials
    setup = prepare(params, model_id)  # every check on the request before the storage is touched
    if not storage:
        storage = tp.storage or default_storage(params)
        if storage == default_storage(params):
            resolve(tp.out_dir).mkdir(parents=True, exist_ok=True)
    name = study_name or default_study_name(params, model_id)
    out = resolve(tp.out_dir) / "studies" / name
    guard = params.output_guard("tune")
    guard.check(out)  # before any trial: a folder the stage may not replace fails fast
    where = redact_uri(storage)  # what goes into logs, MLflow and the best file
    study = open_study(storage, name, setup.settings, make_pruner(params))
    n_before = len(study.trials)
    # Seed offset by the trials already there: a fresh study is reproducible, and a second machine
    # joining a shared study does not propose the same points as the first.
    sampler_seed = tp.seed + n_before
    study.sampler = optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=tp.startup_trials)
    log.info("study %s in %s: %d earlier trial(s); running %d more (sampler seed %d, pruner %s)", name, where,
             n_before, n_trials, sampler_seed, tp.pruner.kind)

    run_params = {"tune": {
        "model": model_id, "study": name, "storage": where, "n_trials": n_trials, "n_trials_before": n_before,
        "seed": tp.seed, "sampler_seed": sampler_seed, "startup_trials": tp.startup_trials,
        "test_fold": tp.test_fold, "val_fraction": tp.val_fraction, "space": setup.space.model_dump(),
        "pruner": tp.pruner.model_dump(), "n_fit": len(setup.fit), "n_val": len(setup.val),
        "n_val_subjects": len(set(setup.val.subjects)), "recipe": setup.settings["recipe"],
    }}
    if use_mlflow:
        from ..tracking import stage_run

        ctx = stage_run("tune", params.tracking.experiment, params=run_params, run_name=f"tune-{name}",
                        tags={"tune.model": model_id, "optuna.study_name": name})
    else:
        ctx = nullcontext()
    result = TuneResult(model_id, name, where, {}, None, None, None, None, out)
    with ctx as run:
        objective = Objective(params, setup, n_trials=n_trials, use_mlflow=use_mlflow, study_name=name)
        study.optimize(objective, n_trials=n_trials)
        result.counts = counts = _counts(study)
        if counts["complete"]:
            best = study.best_trial
            result.best_trial, result.best_value = best.number, float(best.value)
            result.best_params = {"epochs": int(best.params["epochs"]),
                                  "learning_rate": float(best.params["learning_rate"])}
        with staged_dir(out, guard) as tmp:
            _trials_frame(study).to_csv(tmp / "trials.csv", index=False)
            plots = save_plots(study, tmp, tp.seed)
        if result.best_params:
            doc = {
                "model": model_id, "study": name, "storage": where,
                "objective": f"{OBJECTIVE} on {tp.val_fraction:g} of the subjects of the folds other than "
                             f"test fold {tp.test_fold}",
                "best_trial": result.best_trial, "best_value": round(result.best_value, 6),
                "params": {k: result.best_params[k] for k in TUNED_KEYS},
                "trials": counts, "search_space": setup.space.model_dump(),
                "recipe": {k: getattr(setup.cfg, k) for k in RECIPE_KEYS},
            }
            result.best_file = write_best(best_file(params, model_id), doc)
            log.info("best of %d completed trial(s): trial %d, val accuracy %.4f, %s -> %s", counts["complete"],
                     result.best_trial, result.best_value, result.best_params, display_path(result.best_file))
        if use_mlflow:
            import mlflow

            result.run_id = run.info.run_id
            mlflow.log_metrics({f"n_{k}": v for k, v in counts.items()})
            if result.best_params:
                mlflow.log_metric("best_value", result.best_value)
                mlflow.log_params({"best.trial": result.best_trial,
                                   **{f"best.{k}": v for k, v in result.best_params.items()}})
                mlflow.log_artifact(str(result.best_file))
            mlflow.set_tag("tune.outcome", "best written" if result.best_params else "no completed trial")
            mlflow.log_artifact(str(out / "trials.csv"))
            for p in plots:
                mlflow.log_artifact(str(out / p.name), artifact_path="plots")
    if not result.best_params:
        raise click.ClickException(
            f"study {name!r}: no trial completed ({counts['pruned']} pruned, {counts['failed']} failed of "
            f"{counts['total']}); {display_path(best_file(params, model_id))} was not written. "
            "Relax tune.pruner or change the search space (and --study-name).")
    return result
