"""One DVC stage per network (``train.dvc_stages.per_network``): every fold trained and explained
in one process, with the same per-fold outputs, runs and aliases as per-fold stages, and changing
one network's recipe reruns only that network's stages."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from helpers.dvc_project import BIN, TWO_BY_TWO, make_project, run

pytestmark = pytest.mark.slow

TINY = TWO_BY_TWO


def test_per_network_stages_train_every_fold_and_rerun_only_their_network(tmp_path, tiny_study_template):
    root = make_project(tmp_path / "proj", tiny_study_template,
                        stages=["split", "train", "train_folds", "explain", "explain_folds"], params=TINY)
    out = run([str(BIN / "dvc"), "repro"], root, timeout=1500).stdout
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    assert set(lock) == {"split", "train_folds@songnet", "train_folds@weinet", "explain_folds@songnet",
                         "explain_folds@weinet"}
    for model in ("songnet", "weinet"):
        for fold in (1, 2):
            assert (root / "models" / model / f"fold{fold}" / "model.keras").is_file()
            summary = json.loads((root / "explanations" / model / f"fold{fold}" / "summary.json").read_text())
            assert summary["fold"] == fold and summary["n_explained"] >= 1

    # Per fold, as with per-fold stages: one FINISHED run and one registry alias each.
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name("fer-xai")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`fer_xai.stage` = 'train'")
    assert sorted((r.data.tags["model"], r.data.tags["fold"], r.info.status) for r in runs) == [
        ("songnet", "1", "FINISHED"), ("songnet", "2", "FINISHED"),
        ("weinet", "1", "FINISHED"), ("weinet", "2", "FINISHED")]
    for model in ("songnet", "weinet"):
        assert set(client.get_registered_model(f"fer-{model}").aliases) == {"fold1", "fold2"}

    # A fold trained in the shared process equals that fold trained alone (same params, same result).
    shared = pd.read_csv(root / "models" / "weinet" / "fold2" / "predictions.csv")
    run([str(BIN / "fer-xai"), "train", "--model", "weinet", "--fold", "2", "--no-mlflow"], root)
    pd.testing.assert_frame_equal(shared, pd.read_csv(root / "models" / "weinet" / "fold2" / "predictions.csv"))
    run([str(BIN / "dvc"), "checkout", "-f", "train_folds@weinet"], root)

    # Changing one network's epochs: only that network's training and explanations are stale.
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["train"]["networks"]["weinet"]["epochs"] = 2
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    status = json.loads(run([str(BIN / "dvc"), "status", "--json"], root).stdout)
    assert set(status) == {"train_folds@weinet"}, status
    assert "Running stage 'train_folds@weinet'" in out
    # ...and `dvc repro` reruns that training and the explanations that follow from it, nothing else.
    again = run([str(BIN / "dvc"), "repro"], root, timeout=900).stdout
    ran = set(re.findall(r"Running stage '([^']+)'", again))
    assert ran == {"train_folds@weinet", "explain_folds@weinet"}, again
