"""Killing `dvc repro` in the middle of a training, then running it again, finishes the study.

In a git + DVC copy of the tiny study (stages split -> train (songnet, folds 1-2) -> evaluate):
start `dvc repro` in its own process group, wait until the second training is fitting (its
MLflow run RUNNING with at least one epoch logged), SIGKILL the whole group. Then no registry
alias may point to a model version that is not READY or whose files are missing; a second
`dvc repro` finishes; no run is left RUNNING (the killed one is FAILED, marked by the next stage
that starts); every output exists and `dvc status` is clean.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from helpers.dvc_project import BIN, group_alive, make_project, run, subprocess_env

pytestmark = pytest.mark.slow

OUTPUTS = ("model.keras", "metrics.json", "predictions.csv", "history.csv", "report.txt", "confusion.png")


def _client(root: Path) -> MlflowClient:
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _train_runs(client: MlflowClient) -> list:
    exp = client.get_experiment_by_name("fer-xai")
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], filter_string="tags.`fer_xai.stage` = 'train'")


def _check_aliases(client: MlflowClient) -> dict[str, str]:
    """Every alias names a READY version whose model files (MLmodel, the saved Keras model) are
    all on disk."""
    from urllib.parse import unquote, urlparse

    seen = {}
    for rm in client.search_registered_models():
        for alias, version in rm.aliases.items():
            mv = client.get_model_version(rm.name, version)
            assert mv.status == "READY", f"{rm.name}@{alias} -> v{version} is {mv.status}"
            # MLflow 3 registers the logged model (source models:/m-<id>); its files live under
            # the logged model's artifact location.
            model_id = mv.model_id or mv.source.removeprefix("models:/")
            location = client.get_logged_model(model_id).artifact_location
            assert location.startswith("file:"), location
            path = Path(unquote(urlparse(location).path))
            assert (path / "MLmodel").is_file(), f"{rm.name}@{alias}: no MLmodel in {path}"
            keras_files = [p for p in path.rglob("*.keras") if p.stat().st_size > 0]
            assert keras_files, f"{rm.name}@{alias}: no saved Keras model under {path}"
            seen[alias] = version
    return seen


def test_killed_repro_resumes_and_leaves_nothing_half_done(tmp_path, tiny_study_template):
    root = make_project(tmp_path / "proj", tiny_study_template, stages=["split", "train", "evaluate"], params={
        "train": {"folds": [1, 2], "networks": {
            # Enough epochs that the kill lands inside model.fit (each epoch is a fraction of a second).
            "songnet": {"input_size": 32, "epochs": 40, "optimizer": "adam", "learning_rate": 1e-3}}}})
    client = _client(root)
    log = (tmp_path / "repro1.log").open("w")
    proc = subprocess.Popen([str(BIN / "dvc"), "repro"], cwd=root, env=subprocess_env(root), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    killed_run = None
    try:
        deadline = time.monotonic() + 900
        while killed_run is None:
            assert proc.poll() is None, f"dvc repro ended (exit {proc.returncode}) before fold 2 trained:\n" \
                                        f"{(tmp_path / 'repro1.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, "fold 2 never started training"
            for r in _train_runs(client):
                if r.data.tags.get("fold") == "2" and r.info.status == "RUNNING" \
                        and client.get_metric_history(r.info.run_id, "loss"):
                    killed_run = r.info.run_id
            time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()
    deadline = time.monotonic() + 30
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not group_alive(proc.pid)

    # Right after the kill: the run is still RUNNING (its process is dead); fold 1 is registered and
    # whole; fold 2, killed while fitting, has neither an alias nor an output folder.
    assert client.get_run(killed_run).info.status == "RUNNING"
    aliases = _check_aliases(client)
    assert set(aliases) == {"fold1"}
    assert not (root / "models" / "songnet" / "fold2").exists()

    # Again: finishes.
    out = run([str(BIN / "dvc"), "repro"], root, timeout=1200)
    assert "Running stage 'train@songnet-1'" not in out.stdout  # fold 1 was complete: not redone
    assert client.get_run(killed_run).info.status == "FAILED"
    assert client.get_run(killed_run).data.tags["fer_xai.failure"] == "process died while running"
    for exp in client.search_experiments():
        running = client.search_runs([exp.experiment_id], filter_string="attributes.status = 'RUNNING'")
        assert not running, [r.info.run_name for r in running]
    finished = {r.data.tags["fold"] for r in _train_runs(client) if r.info.status == "FINISHED"}
    assert finished == {"1", "2"}
    for fold in (1, 2):
        for name in OUTPUTS:
            assert (root / "models" / "songnet" / f"fold{fold}" / name).is_file(), (fold, name)
    assert not list((root / "models" / "songnet").glob(".*"))  # no temporary folder left
    assert (root / "reports" / "cv" / "cv_summary.csv").is_file()
    aliases = _check_aliases(client)
    assert set(aliases) == {"fold1", "fold2"}
    for fold in ("1", "2"):
        mv = client.get_model_version("fer-songnet", aliases[f"fold{fold}"])
        assert client.get_run(mv.run_id).info.status == "FINISHED" and mv.tags["fold"] == fold
    status = subprocess.run([str(BIN / "dvc"), "status"], cwd=root, env=subprocess_env(root), capture_output=True,
                            text=True, timeout=120)
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout + status.stderr
