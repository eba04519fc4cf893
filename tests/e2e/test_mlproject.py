"""`mlflow run <project> -e <entry> -P ... --env-manager local` for main, prepare, train, explain
and compare, each in a throw-away copy of the project around the tiny study (MLproject, source
tree, a reduced dvc.yaml), with the project's own MLflow store.

`mlflow run` records one run for the entry point; every stage it launches logs its own run,
linked to it (``mlflow.parentRunId`` when both are in the same experiment, e.g. with
``--experiment-name fer-xai``; else the tag ``fer_xai.launcher_run_id``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from helpers.dvc_project import BIN, make_project, run

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO.parent / "shared" / "reference"
TINY_TRAIN = {"train": {"folds": [1, 2], "networks": {
    "songnet": {"input_size": 32, "epochs": 1, "optimizer": "adam", "learning_rate": 1e-3}}}}
TINY_EXPLAIN = {"explain": {"positives_per_class": 1, "num_samples": 20, "batch_size": 20, "sheet_faces": 6}}

pytestmark = pytest.mark.slow


def entry_points() -> dict:
    return yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]


def mlflow_run(root: Path, entry: str, *params: str, experiment: str | None = None, timeout: float = 900):
    cmd = [str(BIN / "mlflow"), "run", str(root), "-e", entry, "--env-manager", "local"]
    for p in params:
        cmd += ["-P", p]
    if experiment:
        cmd += ["--experiment-name", experiment]
    return run(cmd, root, timeout=timeout)


def client_for(root: Path) -> MlflowClient:
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def all_runs(client: MlflowClient) -> list:
    exps = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(exps, max_results=1000)


def stage_runs(client: MlflowClient, stage: str) -> list:
    return [r for r in all_runs(client) if r.data.tags.get("fer_xai.stage") == stage]


def launcher(run) -> str | None:
    return run.data.tags.get("mlflow.parentRunId") or run.data.tags.get("fer_xai.launcher_run_id")


@pytest.fixture
def proj(tmp_path, tiny_study_template):
    return make_project(tmp_path / "proj", tiny_study_template, stages=[], params={**TINY_TRAIN, **TINY_EXPLAIN},
                        dvc=False)


def test_mlproject_has_the_entry_points():
    eps = entry_points()
    for name in ("main", "prepare", "train", "explain", "compare"):
        assert name in eps, f"MLproject has no '{name}' entry point"
    assert eps["main"]["command"].startswith("dvc repro")
    # mlflow shell-quotes every value itself: quoting {overrides} again would split values with spaces.
    for name, ep in eps.items():
        assert "'{overrides}'" not in ep["command"] and '"{overrides}"' not in ep["command"], name


def test_prepare_entry_point_with_overrides(proj):
    before = (proj / "params.yaml").read_text()
    n_before = json.loads((proj / "metrics" / "prepare.json").read_text())["n_prepared"]
    # As the README writes it: no --experiment-name (the entry point's run goes to the default one).
    mlflow_run(proj, "prepare", "overrides=prepare.contact_sheet_faces=4 prepare.min_face_px=30")
    assert (proj / "params.yaml").read_text() == before  # overrides are for that run only
    assert json.loads((proj / "metrics" / "prepare.json").read_text())["n_prepared"] == n_before
    client = client_for(proj)
    (stage,) = stage_runs(client, "prepare")
    assert stage.info.status == "FINISHED"
    assert stage.data.params["prepare.contact_sheet_faces"] == "4"
    assert stage.data.params["prepare.min_face_px"] == "30"
    entry = client.get_run(launcher(stage))
    assert entry.info.status == "FINISHED" and "prepare.contact_sheet_faces=4" in entry.data.params["overrides"]


def test_train_and_explain_entry_points(proj):
    client = client_for(proj)
    mlflow_run(proj, "train", "model=songnet", "fold=2", "epochs=2", "overrides=train.batch_size=8",
               experiment="fer-xai")
    out = proj / "models" / "songnet" / "fold2"
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2  # params.yaml (TINY_TRAIN) says 1
    (train,) = stage_runs(client, "train")
    assert train.info.status == "FINISHED" and train.data.params["batch_size_used"] == "8"
    # Same experiment: the training run is nested under the entry point's run.
    entry = client.get_run(train.data.tags["mlflow.parentRunId"])
    assert entry.info.status == "FINISHED" and entry.data.params["model"] == "songnet"
    mv = client.get_model_version_by_alias("fer-songnet", "fold2")
    assert mv.run_id == train.info.run_id

    mlflow_run(proj, "explain", "model=songnet", "fold=2", "overrides=explain.positives_per_class=2",
               experiment="fer-xai")
    expl = proj / "explanations" / "songnet" / "fold2"
    with np.load(expl / "explanations.npz") as z:
        n = len(z["ids"])
        assert z["maps"].shape[1:] == (32, 32) and int(z["fold"]) == 2
    summary = json.loads((expl / "summary.json").read_text())
    assert summary["run_id"] == train.info.run_id and summary["n_explained"] == n
    # positives_per_class=2 from the override (params.yaml: 1): up to 2 per predicted class.
    import pandas as pd

    predicted = pd.read_csv(out / "predictions.csv")["pred"].value_counts()
    assert summary["per_class"] == {c: min(2, int(predicted.get(c, 0))) for c in summary["per_class"]}
    assert n == sum(summary["per_class"].values()) >= 1
    arts = {a.path for a in client.list_artifacts(train.info.run_id, "explanations")}
    assert "explanations/explanations.npz" in arts


@pytest.mark.skipif(not (REFERENCE / "heatmaps" / "by_cv").is_dir(),
                    reason=f"published reference heatmaps not found in {REFERENCE}")
def test_compare_entry_point_on_the_published_heatmaps(proj):
    overrides = (f"compare.heatmaps_dir={REFERENCE / 'heatmaps'} compare.masks_dir={REFERENCE / 'ekman_masks'} "
                 "compare.out_dir=reports/compare_published compare.bootstrap_samples=100")
    mlflow_run(proj, "compare", f"overrides={overrides}", experiment="fer-xai")
    metrics = json.loads((proj / "metrics" / "compare.json").read_text())
    # Paper Table 3/4 model averages, as listed in the reference's README.
    assert metrics["SilNet"]["iou"] == pytest.approx(0.2637, abs=1e-4)
    assert metrics["VGG16"]["f1"] == pytest.approx(0.3280, abs=1e-4)
    assert (proj / "reports" / "compare_published").is_dir()
    client = client_for(proj)
    (stage,) = stage_runs(client, "compare")
    assert stage.info.status == "FINISHED" and stage.data.tags.get("mlflow.parentRunId")


def test_main_entry_point_runs_dvc_repro(tmp_path, tiny_study_template):
    stages = ["synth", "prepare", "split", "train", "evaluate", "explain"]
    root = make_project(tmp_path / "proj", tiny_study_template, stages=stages, params={**TINY_TRAIN, **TINY_EXPLAIN})
    mlflow_run(root, "main", timeout=1500)
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    assert set(lock) == {"synth", "prepare", "split", "train@songnet-1", "train@songnet-2", "evaluate",
                         "explain@songnet-1", "explain@songnet-2"}
    assert (root / "reports" / "cv" / "cv_summary.csv").is_file()
    assert (root / "explanations" / "songnet" / "fold2" / "explanations.npz").is_file()
    status = run([str(BIN / "dvc"), "status"], root).stdout
    assert "up to date" in status, status
    client = client_for(root)
    runs = all_runs(client)
    assert not [r for r in runs if r.info.status != "FINISHED"]
    by_stage = {}
    for r in runs:
        by_stage.setdefault(r.data.tags.get("fer_xai.stage"), []).append(r)
    (entry,) = by_stage.pop(None)  # the entry point's own run: `dvc repro`
    assert {s: len(v) for s, v in by_stage.items()} == {"synth": 1, "prepare": 1, "split": 1, "train": 2,
                                                         "evaluate": 1}
    assert all(launcher(r) == entry.info.run_id for v in by_stage.values() for r in v)
