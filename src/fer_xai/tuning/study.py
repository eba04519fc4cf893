"""One Optuna study per network over epochs and learning rate (paper 3.4's preliminary trainings).

The score is the accuracy on a **subject-grouped validation split carved from the training folds
only**: the outer test fold ``tune.test_fold`` is never used, and ``tune.val_fraction`` of the
other folds' subjects (``StratifiedGroupKFold``, seeded by ``tune.seed``) are held out. Each trial
(``fer_xai.tuning.trial``) trains like ``fer-xai train`` and can be pruned after any epoch. The
sampler is a seeded TPE.

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
from contextlib import nullcontext
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from .. import layout
from ..config import NetworkTrainParams, Params, SearchSpace
from ..errors import FerXaiError
from ..outputs import OutputGuard, staged_dir
from ..redact import redact, redact_uri
from ..training.data import FoldData, load_split
from ..training.tuned import RECIPE_KEYS, TUNED_KEYS, display_path, write_best
from .plots import save_plots, trials_frame
from .trial import OBJECTIVE, Objective

log = logging.getLogger(__name__)

SETTINGS_ATTR = "fer_xai.settings"  # study user attribute: the settings it was created with


class TuneError(FerXaiError):
    """A tuning request that cannot run (unknown network, too few subjects, a mismatched study)
    or that ran without a result (every trial pruned)."""


# --------------------------------------------------------------------------- settings and data

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
        raise TuneError(
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
        raise TuneError(f"unknown model {model_id!r}; train.networks has {sorted(params.train.networks)}")
    unknown = sorted(set(tp.networks) - set(params.train.networks))
    if unknown:
        raise TuneError(f"tune.networks {unknown} have no entry in train.networks")
    if not 1 <= tp.test_fold <= params.split.n_folds:
        raise TuneError(f"tune.test_fold={tp.test_fold}: folds are 1..{params.split.n_folds}")
    cfg = params.train.networks[model_id]
    space = tp.space_for(model_id)
    t0 = time.perf_counter()
    # load_split returns the test fold too; it is dropped here, never trained on nor scored.
    train, _ = load_split(layout.prepared_dir(params), layout.folds_file(params), tp.test_fold,
                          cfg.input_size)
    fit, val = carve_validation(train, tp.val_fraction, tp.seed)
    if len(fit) == 0 or len(val) == 0:
        raise TuneError(f"validation split: {len(fit)} training and {len(val)} validation images")
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
        raise TuneError(f"cannot open Optuna storage {where}: {redact(str(exc))}") from exc

    def check(study) -> None:
        stored = study.user_attrs.get(SETTINGS_ATTR)
        if stored is None:
            raise TuneError(
                f"study {name!r} in {where} was not created by `fer-xai tune` (no {SETTINGS_ATTR!r} attribute): "
                "choose another --study-name")
        diff = settings_diff(stored, settings)
        if diff:
            raise TuneError(
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


# --------------------------------------------------------------------------- one call: trials, best params, files

def _counts(study) -> dict[str, int]:
    from optuna.trial import TrialState

    states = [t.state for t in study.trials]
    return {"complete": states.count(TrialState.COMPLETE), "pruned": states.count(TrialState.PRUNED),
            "failed": states.count(TrialState.FAIL), "total": len(states)}


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
    tp = params.tune
    n_trials = n_trials or tp.trials
    setup = prepare(params, model_id)  # every check on the request before the storage is touched
    storage = _storage(params, storage)
    name = study_name or default_study_name(params, model_id)
    out = layout.tune_study_dir(params, name)
    guard = params.output_guard("tune")
    guard.check(out)  # before any trial: a folder the stage may not replace fails fast
    where = redact_uri(storage)  # what goes into logs, MLflow and the best file
    study = open_study(storage, name, setup.settings, make_pruner(params))
    n_before = len(study.trials)
    sampler_seed = _seed_sampler(study, params, n_before)
    log.info("study %s in %s: %d earlier trial(s); running %d more (sampler seed %d, pruner %s)", name, where,
             n_before, n_trials, sampler_seed, tp.pruner.kind)

    result = TuneResult(model_id, name, where, {}, None, None, None, None, out)
    with _tune_run(params, setup, result, n_trials, n_before, sampler_seed, use_mlflow) as run:
        study.optimize(Objective(params, setup, n_trials=n_trials, use_mlflow=use_mlflow, study_name=name),
                       n_trials=n_trials)
        _take_best(study, result)
        plots = _write_study_files(study, out, guard, tp.seed)
        if result.best_params:
            result.best_file = write_best(layout.tuned_file(params, model_id), _best_doc(params, setup, result))
            log.info("best of %d completed trial(s): trial %d, val accuracy %.4f, %s -> %s",
                     result.counts["complete"], result.best_trial, result.best_value, result.best_params,
                     display_path(result.best_file))
        if run is not None:
            result.run_id = run.info.run_id
            _log_outcome(result, plots)
    if not result.best_params:
        counts = result.counts
        raise TuneError(
            f"study {name!r}: no trial completed ({counts['pruned']} pruned, {counts['failed']} failed of "
            f"{counts['total']}); {display_path(layout.tuned_file(params, model_id))} was not written. "
            "Relax tune.pruner or change the search space (and --study-name).")
    return result


def _storage(params: Params, storage: str | None) -> str:
    """``storage``, else ``tune.storage``, else the default SQLite file (its folder created)."""
    if storage:
        return storage
    storage = params.tune.storage or layout.default_tune_storage(params)
    if storage == layout.default_tune_storage(params):
        layout.tune_dir(params).mkdir(parents=True, exist_ok=True)
    return storage


def _seed_sampler(study, params: Params, n_before: int) -> int:
    """Give the study a seeded TPE sampler; returns the seed.

    The seed is offset by the trials already there: a fresh study is reproducible, and a second
    machine joining a shared study does not propose the same points as the first.
    """
    import optuna

    seed = params.tune.seed + n_before
    study.sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=params.tune.startup_trials)
    return seed


def _tune_run(params: Params, setup: TuneSetup, result: TuneResult, n_trials: int, n_before: int,
              sampler_seed: int, use_mlflow: bool):
    """The call's MLflow run (yields the run), or a no-op context yielding None."""
    if not use_mlflow:
        return nullcontext()
    from ..tracking import stage_run

    tp = params.tune
    run_params = {"tune": {
        "model": setup.model_id, "study": result.study_name, "storage": result.storage, "n_trials": n_trials,
        "n_trials_before": n_before, "seed": tp.seed, "sampler_seed": sampler_seed,
        "startup_trials": tp.startup_trials, "test_fold": tp.test_fold, "val_fraction": tp.val_fraction,
        "space": setup.space.model_dump(), "pruner": tp.pruner.model_dump(), "n_fit": len(setup.fit),
        "n_val": len(setup.val), "n_val_subjects": len(set(setup.val.subjects)), "recipe": setup.settings["recipe"],
    }}
    return stage_run("tune", params.tracking.experiment, params=run_params, run_name=f"tune-{result.study_name}",
                     tags={"tune.model": setup.model_id, "optuna.study_name": result.study_name})


def _take_best(study, result: TuneResult) -> None:
    """The trial counts, and the best completed trial when there is one, into ``result``."""
    result.counts = _counts(study)
    if result.counts["complete"]:
        best = study.best_trial
        result.best_trial, result.best_value = best.number, float(best.value)
        result.best_params = {"epochs": int(best.params["epochs"]),
                              "learning_rate": float(best.params["learning_rate"])}


def _write_study_files(study, out: Path, guard: OutputGuard, seed: int) -> list[Path]:
    """``trials.csv`` and the plots into ``out`` (replaced as a whole); returns the plots' paths."""
    with staged_dir(out, guard) as tmp:
        trials_frame(study).to_csv(tmp / layout.TRIALS, index=False)
        plots = save_plots(study, tmp, seed)
    return [out / p.name for p in plots]


def _best_doc(params: Params, setup: TuneSetup, result: TuneResult) -> dict:
    tp = params.tune
    return {
        "model": setup.model_id, "study": result.study_name, "storage": result.storage,
        "objective": f"{OBJECTIVE} on {tp.val_fraction:g} of the subjects of the folds other than "
                     f"test fold {tp.test_fold}",
        "best_trial": result.best_trial, "best_value": round(result.best_value, 6),
        "params": {k: result.best_params[k] for k in TUNED_KEYS},
        "trials": result.counts, "search_space": setup.space.model_dump(),
        "recipe": {k: getattr(setup.cfg, k) for k in RECIPE_KEYS},
    }


def _log_outcome(result: TuneResult, plots: list[Path]) -> None:
    """Counts, best params, the best file, trials and plots into the active MLflow run."""
    import mlflow

    mlflow.log_metrics({f"n_{k}": v for k, v in result.counts.items()})
    if result.best_params:
        mlflow.log_metric("best_value", result.best_value)
        mlflow.log_params({"best.trial": result.best_trial,
                           **{f"best.{k}": v for k, v in result.best_params.items()}})
        mlflow.log_artifact(str(result.best_file))
    mlflow.set_tag("tune.outcome", "best written" if result.best_params else "no completed trial")
    mlflow.log_artifact(str(result.out_dir / layout.TRIALS))
    for p in plots:
        mlflow.log_artifact(str(p), artifact_path="plots")
