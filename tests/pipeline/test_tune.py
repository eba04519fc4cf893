"""Tuning: Optuna studies on the tiny study (1-3 epochs), nested MLflow runs, the tuned-values file."""

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from fer_xai import layout
from fer_xai.config import load_params
from fer_xai.errors import FerXaiError
from fer_xai.training.data import FoldData
from fer_xai.training.tuned import TunedFileError, network_recipe, write_best
from fer_xai.tuning.study import TuneError, carve_validation, settings_diff
from helpers.cli import invoke

# Tiny search space so that each trial takes a few seconds.
SMALL = ["-S", "tune.space.epochs.low=1", "-S", "tune.space.epochs.high=2", "-S", "tune.startup_trials=2"]


def _runs(client, stage):
    exp = client.get_experiment_by_name("fer-xai")
    return client.search_runs([exp.experiment_id], filter_string=f"tags.`fer_xai.stage` = '{stage}'") if exp else []


def test_three_trial_study_nested_runs_best_file_and_no_overwrite(tiny_study):
    root = tiny_study
    res = invoke(root, *SMALL, "tune", "--model", "songnet", "--trials", "3")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["study"] == "fer-xai-songnet" and out["trials"] == {"complete": 3, "pruned": 0, "failed": 0, "total": 3}

    # The study: in the default SQLite storage in the project, with its settings recorded.
    db = root / "tuning" / "optuna.db"
    study = optuna.load_study(study_name="fer-xai-songnet", storage=f"sqlite:///{db}")
    assert len(study.trials) == 3
    settings = study.user_attrs["fer_xai.settings"]
    assert settings["test_fold"] == 1 and settings["space"]["epochs"] == {"low": 1, "high": 2}
    for t in study.trials:
        assert 1 <= t.params["epochs"] <= 2 and 1e-5 <= t.params["learning_rate"] <= 1e-2
        assert sorted(t.intermediate_values) == list(range(1, t.params["epochs"] + 1))  # one report per epoch

    # The best params file, for training.
    best = yaml.safe_load((root / "tuning" / "best" / "songnet.yaml").read_text())
    assert best["model"] == "songnet" and best["best_trial"] == study.best_trial.number
    assert best["params"] == {"epochs": study.best_params["epochs"],
                              "learning_rate": study.best_params["learning_rate"]}
    assert out["best_params"] == best["params"]

    # MLflow: one parent run holding best params, plots and trials; one nested run per trial.
    client = MlflowClient()
    (parent,) = _runs(client, "tune")
    assert parent.info.status == "FINISHED" and parent.info.run_id == out["run_id"]
    assert parent.data.params["best.epochs"] == str(best["params"]["epochs"])
    assert parent.data.params["tune.test_fold"] == "1" and parent.data.metrics["n_complete"] == 3
    arts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"trials.csv", "songnet.yaml", "plots"} <= arts
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/optimization_history.png", "plots/param_importances.png"} <= plots
    children = _runs(client, "tune_trial")
    assert len(children) == 3
    by_number = {int(r.data.tags["optuna.trial_number"]): r for r in children}
    for t in study.trials:
        run = by_number[t.number]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id and run.info.status == "FINISHED"
        assert run.data.params["epochs"] == str(t.params["epochs"])
        assert float(run.data.params["learning_rate"]) == pytest.approx(t.params["learning_rate"])
        curve = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [m.step for m in sorted(curve, key=lambda m: m.step)] == list(range(1, t.params["epochs"] + 1))

    # Same study name, other ranges: a clear error, nothing overwritten, no trial added.
    before = (root / "tuning" / "best" / "songnet.yaml").read_bytes()
    res = invoke(root, *SMALL, "-S", "tune.space.epochs.high=3", "tune", "--model", "songnet", "--trials", "1",
                  ok=False)
    assert res.exit_code != 0 and "created with other settings" in res.output
    assert "space.epochs.high: study has 2, now 3" in res.output and "--study-name" in res.output
    assert (root / "tuning" / "best" / "songnet.yaml").read_bytes() == before
    assert len(optuna.load_study(study_name="fer-xai-songnet", storage=f"sqlite:///{db}").trials) == 3
    assert len(_runs(client, "tune")) == 1


def test_forced_pruning_stops_trials_early_and_writes_no_best_file(tiny_study):
    root = tiny_study
    # Validation accuracy can never reach 1.01: every trial is pruned at its first report.
    res = invoke(root, "-S", "tune.space.epochs.low=2", "-S", "tune.space.epochs.high=3",
                  "-S", "tune.pruner.kind=threshold", "-S", "tune.pruner.threshold=1.01",
                  "-S", "tune.pruner.warmup_epochs=0", "tune", "--model", "songnet", "--trials", "3", ok=False)
    assert res.exit_code != 0 and "no trial completed (3 pruned" in res.output
    assert not (root / "tuning" / "best" / "songnet.yaml").exists()
    study = optuna.load_study(study_name="fer-xai-songnet", storage=f"sqlite:///{root / 'tuning' / 'optuna.db'}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 3
    assert all(t.params["epochs"] >= 2 and sorted(t.intermediate_values) == [1] for t in study.trials)
    client = MlflowClient()
    children = _runs(client, "tune_trial")
    assert len(children) == 3 and {r.data.tags["optuna.trial_state"] for r in children} == {"PRUNED"}
    assert all(r.data.metrics["epochs_run"] == 1 for r in children)
    (parent,) = _runs(client, "tune")
    assert parent.data.tags["tune.outcome"] == "no completed trial"


def test_tuned_file_changes_training_only_when_enabled(tiny_study):
    from fer_xai.stages import train

    root = tiny_study
    off = load_params(root / "params.yaml", ["train.register_models=false"])
    on = load_params(root / "params.yaml", ["train.register_models=false", "train.use_tuned=true"])
    assert off.train.use_tuned is False  # the default
    path = layout.tuned_file(off, "songnet")
    with pytest.raises(TunedFileError, match=r"songnet.yaml does not exist.*fer-xai tune --model songnet"):
        network_recipe(on, "songnet")
    # The CLI turns the domain error into a one-line error, before any training.
    res = invoke(root, "-S", "train.use_tuned=true", "train", "--model", "songnet", "--fold", "1", ok=False)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.startswith("Error: train.use_tuned is true but ") and "does not exist" in res.output
    write_best(path, {"model": "songnet", "study": "by-hand", "params": {"epochs": 1, "learning_rate": 0.005}})

    cfg, source = network_recipe(off, "songnet")
    assert (cfg.epochs, cfg.learning_rate, source) == (2, 1e-3, "params.yaml")
    a = train.train_one(off, "songnet", 1, use_mlflow=False)
    assert a.metrics["epochs"] == 2

    b = train.train_one(on, "songnet", 1, use_mlflow=True)
    assert b.metrics["epochs"] == 1
    run = MlflowClient().get_run(b.run_id)
    assert run.data.params["tuned_params_source"] == "tuning/best/songnet.yaml"
    assert run.data.params["epochs"] == "1" and float(run.data.params["learning_rate"]) == 0.005

    path.write_text(yaml.safe_dump({"model": "weinet", "params": {"epochs": 1}}))
    with pytest.raises(TunedFileError, match="tuned for model 'weinet'"):
        network_recipe(on, "songnet")
    path.write_text(yaml.safe_dump({"model": "songnet", "params": {"epochs": 0}}))
    with pytest.raises(TunedFileError, match="invalid tuned params"):
        network_recipe(on, "songnet")


def test_bad_requests_are_clear_errors_and_touch_no_storage(project):
    (project / "params.yaml").write_text(yaml.safe_dump({"tune": {"space": {"learning_rate": {"low": 1e-2,
                                                                                              "high": 1e-4}}}}))
    res = invoke(project, "tune", "--model", "songnet", ok=False)
    assert res.exit_code != 0 and "tune.space.learning_rate" in res.output and "empty search range" in res.output
    (project / "params.yaml").write_text("{}\n")
    res = invoke(project, "tune", "--model", "nonet", ok=False)
    assert res.exit_code == 1 and res.output.startswith("Error: unknown model 'nonet'; train.networks has [")
    assert issubclass(TuneError, FerXaiError) and issubclass(TunedFileError, FerXaiError)
    res = invoke(project, "-S", "tune.test_fold=9", "tune", "--model", "songnet", ok=False)
    assert res.exit_code != 0 and "tune.test_fold=9: folds are 1..5" in res.output
    assert not (project / "tuning").exists()


def _fold_data(n_subjects=8, per_subject=6):
    subjects = np.repeat([f"ds/s{i}" for i in range(n_subjects)], per_subject)
    n = len(subjects)
    return FoldData(ids=np.array([f"id{i:03d}" for i in range(n)]), images=np.zeros((n, 4, 4), np.uint8),
                    labels=np.tile(np.arange(per_subject), n_subjects), landmarks=np.zeros((n, 68, 2), np.float32),
                    subjects=subjects)


def test_validation_split_is_subject_grouped_and_seeded():
    data = _fold_data()
    fit, val = carve_validation(data, 0.25, seed=3)
    assert not set(fit.subjects) & set(val.subjects) and len(fit) + len(val) == len(data)
    assert len(set(val.subjects)) == 2  # a quarter of 8 subjects
    fit2, val2 = carve_validation(data, 0.25, seed=3)
    assert list(val2.ids) == list(val.ids)
    with pytest.raises(TuneError, match="val_fraction=0.1 needs at least 10 subjects"):
        carve_validation(data, 0.1, seed=3)
    assert settings_diff({"a": {"b": 1}, "c": 2}, {"a": {"b": 1}, "c": 3}) == ["c: study has 2, now 3"]


@pytest.mark.slow
def test_mlflow_run_tune_entry_point(tiny_study):
    """`mlflow run . -e tune -P model=... -P trials=...` runs the study under the project's run."""
    import subprocess
    import sys

    from conftest import mlflow_run_env

    repo = Path(__file__).resolve().parents[2]
    env = mlflow_run_env()
    out = subprocess.run(
        [sys.executable, "-m", "mlflow", "run", str(repo), "-e", "tune", "--env-manager", "local",
         "-P", "model=songnet", "-P", "trials=2", "-P", f"params_file={tiny_study / 'params.yaml'}",
         "-P", "overrides=tune.space.epochs.low=1 tune.space.epochs.high=1 tune.startup_trials=2",
         "--experiment-name", "fer-xai"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    client = MlflowClient()
    (parent,) = _runs(client, "tune")
    children = _runs(client, "tune_trial")
    assert len(children) == 2 and all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
    assert (tiny_study / "tuning" / "best" / "songnet.yaml").is_file()
