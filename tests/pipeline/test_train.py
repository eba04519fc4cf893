"""Training: tiny real trainings (from scratch and a random-init backbone), tracking, registry."""

import json
import logging

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from fer_xai.cli import main
from fer_xai.config import load_params
from fer_xai.labels import EXPRESSIONS
from fer_xai.stages import evaluate, train


def _invoke(root, *args):
    res = CliRunner().invoke(main, ["--params", str(root / "params.yaml"), *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


@pytest.mark.slow
def test_from_scratch_training_outputs_tracking_and_registry(tiny_study):
    root = tiny_study
    _invoke(root, "train", "--model", "songnet", "--fold", "1")
    out = root / "models" / "songnet" / "fold1"
    for name in ("model.keras", "metrics.json", "predictions.csv", "history.csv", "report.txt", "confusion.png"):
        assert (out / name).is_file(), name
    met = json.loads((out / "metrics.json").read_text())
    folds = pd.read_csv(root / "data" / "folds.csv")
    n_test = int((folds["fold"] == 1).sum())
    assert met["n_test"] == n_test and 0.0 <= met["test_accuracy"] <= 1.0
    assert np.array(met["confusion_matrix"]).sum() == n_test
    pred = pd.read_csv(out / "predictions.csv")
    assert len(pred) == n_test and set(pred["id"]) == set(folds.loc[folds["fold"] == 1, "id"])
    probs = pred[[f"p_{e}" for e in EXPRESSIONS]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert (pred["pred"] == [EXPRESSIONS[i] for i in probs.argmax(axis=1)]).all()
    assert met["test_accuracy"] == pytest.approx(pred["correct"].mean())

    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("fer-xai").experiment_id],
                              filter_string="tags.`fer_xai.stage` = 'train'")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["model"] == "songnet" and run.data.tags["fold"] == "1"
    assert run.data.tags["pretrained"] == "false" and run.data.tags["data_version"]
    assert run.data.params["epochs"] == "2" and run.data.params["optimizer"] == "adam"
    hist = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in hist] == [1, 2]
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"confusion.png", "predictions.csv", "metrics.json", "report.txt"} <= arts

    from fer_xai.registry import fold_model_version, load_fold_model

    mv = fold_model_version("songnet", 1)
    assert mv.tags["fold"] == "1" and mv.tags["pretrained"] == "false"
    assert mv.tags["test_accuracy"] == f"{met['test_accuracy']:.4f}" and mv.run_id == run.info.run_id
    import mlflow

    sig = mlflow.models.get_model_info("models:/fer-songnet@fold1").signature
    assert sig.inputs.to_dict()[0]["tensor-spec"] == {"dtype": "float32", "shape": (-1, 32, 32, 1)}
    assert sig.outputs.to_dict()[0]["tensor-spec"] == {"dtype": "float32", "shape": (-1, 6)}
    model = load_fold_model("songnet", 1)
    from fer_xai.models import load_model

    local = load_model(out / "model.keras")
    x = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 1)).astype(np.float32)
    np.testing.assert_allclose(model.predict_on_batch(x), local.predict_on_batch(x), atol=1e-5)

    # A second training of the same fold makes a new version and moves the alias.
    _invoke(root, "train", "--model", "songnet", "--fold", "1", "--epochs", "1")
    mv2 = fold_model_version("songnet", 1)
    assert int(mv2.version) == int(mv.version) + 1
    assert client.get_run(mv2.run_id).data.params["epochs"] == "1"


@pytest.mark.slow
def test_backbone_random_init_is_reported_never_silent(tiny_study, caplog):
    root = tiny_study
    params = load_params(root / "params.yaml", ["train.allow_random_init=false"])
    with pytest.raises(Exception) as err:
        train.train_one(params, "mobilenetv3", 2, use_mlflow=False)
    assert "weights" in str(err.value) and ".h5" in str(err.value)
    params = load_params(root / "params.yaml")
    with caplog.at_level(logging.WARNING):
        res = train.train_one(params, "mobilenetv3", 2, use_mlflow=True)
    assert any("random" in r.getMessage().lower() for r in caplog.records)
    assert res.metrics["pretrained"] is False
    run = MlflowClient().get_run(res.run_id)
    assert run.data.params["pretrained"] == "False" and run.data.tags["pretrained"] == "false"


@pytest.mark.slow
def test_same_seed_same_model(tiny_study):
    params = load_params(tiny_study / "params.yaml", ["train.networks.songnet.epochs=1"])
    a = train.train_one(params, "songnet", 3, use_mlflow=False)
    pa = pd.read_csv(a.out_dir / "predictions.csv")
    b = train.train_one(params, "songnet", 3, use_mlflow=False)
    pb = pd.read_csv(b.out_dir / "predictions.csv")
    pd.testing.assert_frame_equal(pa, pb)


@pytest.mark.slow
@pytest.mark.parametrize("model_id", ["songnet", "mobilenetv3"])
def test_fold_trained_after_another_in_one_process_equals_fold_trained_alone(tiny_study, model_id):
    """The network cache (one build and trace per process) restores weights, dropout seed states,
    batch-norm statistics and optimizer slots: fold 2 after fold 1 equals fold 2 alone."""
    from fer_xai.training.fit import NetworkCache

    params = load_params(tiny_study / "params.yaml", ["train.networks.songnet.epochs=2"])
    cache = NetworkCache()
    train.train_one(params, model_id, 1, use_mlflow=False, cache=cache)
    shared = train.train_one(params, model_id, 2, use_mlflow=False, cache=cache)
    assert cache._net is not None and shared.metrics["epochs"] >= 1
    p_shared = pd.read_csv(shared.out_dir / "predictions.csv")
    alone = train.train_one(params, model_id, 2, use_mlflow=False)
    pd.testing.assert_frame_equal(p_shared, pd.read_csv(alone.out_dir / "predictions.csv"))


@pytest.mark.slow
def test_evaluate_summarizes_all_folds(tiny_study):
    params = load_params(tiny_study / "params.yaml", ["train.networks.songnet.epochs=1"])
    for k in (1, 2, 3):
        train.train_one(params, "songnet", k, use_mlflow=False)
    summary = evaluate.run(params)
    folds = pd.read_csv(tiny_study / "reports" / "cv" / "cv_folds.csv")
    assert len(folds) == 3
    assert summary.loc[0, "accuracy_mean"] == pytest.approx(folds["test_accuracy"].mean())
    assert summary.loc[0, "accuracy_std"] == pytest.approx(folds["test_accuracy"].std(ddof=1))
    assert (tiny_study / "reports" / "cv" / "cv_accuracy.png").is_file()
    assert json.loads((tiny_study / "metrics" / "cv.json").read_text())["songnet"]["accuracy_mean"] == \
        pytest.approx(summary.loc[0, "accuracy_mean"], abs=1e-4)


def test_evaluate_names_missing_results(tiny_study):
    import click

    params = load_params(tiny_study / "params.yaml")
    with pytest.raises(click.ClickException, match="songnet/fold1/metrics.json"):
        evaluate.run(params)


def test_bad_fold_and_model_are_clear_errors(tiny_study):
    res = CliRunner().invoke(main, ["--params", str(tiny_study / "params.yaml"), "train", "--model", "songnet",
                                    "--fold", "9"])
    assert res.exit_code != 0 and "folds are 1..3" in res.output
    res = CliRunner().invoke(main, ["--params", str(tiny_study / "params.yaml"), "train", "--model", "nonet",
                                    "--fold", "1"])
    assert res.exit_code != 0 and "unknown model" in res.output


@pytest.mark.slow
def test_mlflow_run_train_entry_point_overrides_for_that_run_only(tiny_study):
    """`mlflow run . -e train -P model=... -P fold=... -P epochs=...` with the local env manager."""
    import subprocess
    import sys

    from conftest import REPO, mlflow_run_env

    before = (tiny_study / "params.yaml").read_text()
    env = mlflow_run_env()
    out = subprocess.run(
        [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", "train", "--env-manager", "local",
         "-P", "model=songnet", "-P", "fold=2", "-P", "epochs=1",
         "-P", f"params_file={tiny_study / 'params.yaml'}", "--experiment-name", "fer-xai"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert (tiny_study / "params.yaml").read_text() == before
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("fer-xai").experiment_id],
                              filter_string="tags.model = 'songnet'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.params["epochs"] == "1"  # params.yaml says 2
    assert json.loads((tiny_study / "models" / "songnet" / "fold2" / "metrics.json").read_text())["epochs"] == 1

