"""`fer-xai repro --executor ray` runs the tiny study (2 networks x 2 folds) as Ray tasks and
leaves exactly what a sequential `dvc repro` leaves: the same predictions, explanations, heatmaps
and metrics, a clean `dvc status`, a `dvc repro` with nothing to do, and every MLflow run ended.

One git + DVC project (stages split, train_folds, evaluate, explain_folds, heatmaps) is built per
module and copied: once for the sequential reference, once for a local Ray of two CPUs in which
one training is killed (its stage is not recorded, the other network's stages finish, the next
run retries it), once for a two-node `ray.cluster_utils.Cluster` (one CPU each; MLflow through
the `mlflow server` the executor starts) whose driver is SIGKILLed mid-run and started again.

Ignored when comparing: the timing fields of each fold's ``metrics.json`` (``train_seconds``,
``train_images_per_second``); ``.npz`` files are compared array by array (their zip headers
carry write times), every other file byte for byte.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from helpers.dvc_project import BIN, TWO_BY_TWO, deep_merge, group_alive, make_project, run, subprocess_env

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray")

STAGES = ["split", "train_folds", "evaluate", "explain_folds", "heatmaps"]
TINY = deep_merge(copy.deepcopy(TWO_BY_TWO), {"heatmaps": {"mean_face": False}})
TIMING_FIELDS = {"train_seconds", "train_images_per_second"}
COMPARED = ("models/*/fold*/predictions.csv", "models/*/fold*/metrics.json", "explanations/**/*.npz",
            "heatmaps/**/*.*", "metrics/*.json")
ALL_STAGES = {"split", "train_folds@songnet", "train_folds@weinet", "evaluate", "explain_folds@songnet",
              "explain_folds@weinet", "heatmaps"}


def _digest(path: Path) -> str:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            h = hashlib.sha256()
            for key in sorted(z.files):
                buf = io.BytesIO()
                np.save(buf, z[key], allow_pickle=False)
                h.update(key.encode() + buf.getvalue())
            return h.hexdigest()
    if path.name == "metrics.json" and path.parent.name.startswith("fold"):
        data = {k: v for k, v in json.loads(path.read_text()).items() if k not in TIMING_FIELDS}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprint(root: Path) -> dict[str, str]:
    files = {p for pattern in COMPARED for p in root.glob(pattern) if p.is_file() and not p.name.startswith(".")}
    return {str(p.relative_to(root)): _digest(p) for p in sorted(files)}


def _client(root: Path) -> MlflowClient:
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _runs(client: MlflowClient, stage: str | None = None) -> list:
    exp = client.get_experiment_by_name("fer-xai")
    if exp is None:
        return []
    where = f"tags.`fer_xai.stage` = '{stage}'" if stage else ""
    return client.search_runs([exp.experiment_id], filter_string=where)


def _record(root: Path) -> dict:
    """The newest run.json of the executor."""
    records = sorted((root / "logs" / "executor").glob("*/run.json"), key=lambda p: p.stat().st_mtime)
    assert records, "the executor wrote no record"
    return json.loads(records[-1].read_text())


def _repro_cmd(*args: str) -> list[str]:
    return [str(BIN / "fer-xai"), "repro", "--executor", "ray", *args]


def _check_finished_like(root: Path, reference: dict[str, str]) -> None:
    """Same files as the sequential run, DVC clean, nothing for `dvc repro` to do, no run RUNNING."""
    got = fingerprint(root)
    assert got.keys() == reference.keys(), sorted(set(got) ^ set(reference))
    differ = sorted(k for k in got if got[k] != reference[k])
    assert not differ, differ
    status = json.loads(run([str(BIN / "dvc"), "status", "--json"], root).stdout)
    assert status == {}, status
    again = run([str(BIN / "dvc"), "repro"], root).stdout
    assert "Running stage" not in again, again
    assert set(yaml.safe_load((root / "dvc.lock").read_text())["stages"]) == ALL_STAGES
    client = _client(root)
    assert not [r.info.run_name for r in _runs(client) if r.info.status == "RUNNING"]
    # A retried per-network stage trains all its folds again: a fold may have two FINISHED runs.
    finished = {(r.data.tags["model"], r.data.tags["fold"]) for r in _runs(client, "train")
                if r.info.status == "FINISHED"}
    assert finished == {("songnet", "1"), ("songnet", "2"), ("weinet", "1"), ("weinet", "2")}
    for model in ("songnet", "weinet"):
        assert set(client.get_registered_model(f"fer-{model}").aliases) == {"fold1", "fold2"}


def _wait_for_training(root: Path, proc: subprocess.Popen, model: str | None, log: Path, timeout: float = 600):
    """The first RUNNING training run (of ``model``, when given) once its process has logged one epoch."""
    client = _client(root)
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"the executor ended (exit {proc.returncode}) first:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "no training started"
        if (root / "mlflow.db").exists():
            for r in _runs(client, "train"):
                if r.info.status == "RUNNING" and model in (None, r.data.tags.get("model")):
                    return r
        time.sleep(0.2)


@pytest.fixture(scope="module")
def base_project(tiny_study_template, tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("ray_base") / "proj", tiny_study_template, stages=STAGES, params=TINY)


@pytest.fixture(scope="module")
def reference(base_project, tmp_path_factory):
    """Fingerprint of a sequential `dvc repro` of the project."""
    root = tmp_path_factory.mktemp("ray_ref") / "proj"
    shutil.copytree(base_project, root, symlinks=True)
    run([str(BIN / "dvc"), "repro"], root, timeout=1500)
    prints = fingerprint(root)
    assert any(k.startswith("heatmaps/") for k in prints) and "metrics/cv.json" in prints
    return prints


def test_local_ray_killed_task_spares_independent_stages_and_is_retried(base_project, reference, tmp_path):
    root = tmp_path / "proj"
    shutil.copytree(base_project, root, symlinks=True)
    log = tmp_path / "repro1.log"
    with log.open("w") as out:
        proc = subprocess.Popen(_repro_cmd("--num-cpus", "2"), cwd=root, env=subprocess_env(root), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        victim = _wait_for_training(root, proc, "weinet", log)
        os.kill(int(victim.data.tags["fer_xai.pid"]), signal.SIGKILL)
        proc.wait(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    first = log.read_text()
    assert proc.returncode == 1, first[-3000:]
    assert "1 stage(s) failed and were not recorded: train_folds@weinet" in first, first[-3000:]
    status = {s["stage"]: s for s in _record(root)["stages"]}
    assert status["train_folds@weinet"]["status"] == "failed" and "exited" in status["train_folds@weinet"]["detail"]
    # The other network's stages ran; everything that needs weinet's models waited.
    assert {k for k, s in status.items() if s["status"] == "ran"} == {"split", "train_folds@songnet",
                                                                        "explain_folds@songnet"}
    assert {k for k, s in status.items() if s["status"] == "skipped"} == {"evaluate", "explain_folds@weinet",
                                                                            "heatmaps"}
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    assert set(lock) == {"split", "train_folds@songnet", "explain_folds@songnet"}
    songnet, weinet = status["train_folds@songnet"]["task"], status["train_folds@weinet"]["task"]
    assert songnet["started"] < weinet["ended"] and weinet["started"] < songnet["ended"]  # side by side

    second = run(_repro_cmd("--num-cpus", "2"), root, timeout=1500).stdout
    status = {s["stage"]: s["status"] for s in _record(root)["stages"]}
    assert status == {"split": "unchanged", "train_folds@songnet": "unchanged", "explain_folds@songnet": "unchanged",
                      "train_folds@weinet": "ran", "explain_folds@weinet": "ran", "evaluate": "ran",
                      "heatmaps": "ran"}, second
    assert _client(root).get_run(victim.info.run_id).info.status == "FAILED"
    _check_finished_like(root, reference)


def test_two_node_cluster_finishes_after_the_driver_is_killed(base_project, reference, tmp_path):
    from ray.cluster_utils import Cluster

    root = tmp_path / "proj"
    shutil.copytree(base_project, root, symlinks=True)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        log = tmp_path / "repro1.log"
        with log.open("w") as out:
            proc = subprocess.Popen(_repro_cmd("--address", cluster.address), cwd=root, env=subprocess_env(root),
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            victim = _wait_for_training(root, proc, None, log)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        # The driver's group is gone, and so is the stage it was running (its reaper killed it).
        deadline = time.monotonic() + 60
        pid = int(victim.data.tags["fer_xai.pid"])
        while (group_alive(proc.pid) or Path(f"/proc/{pid}").exists()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not group_alive(proc.pid) and not Path(f"/proc/{pid}").exists()
        assert _client(root).get_run(victim.info.run_id).info.status == "RUNNING"  # nobody ended it yet

        out = run(_repro_cmd("--address", cluster.address), root, timeout=1500).stdout
        record = _record(root)
        assert record["mlflow_tracking_uri"].startswith("http://127.0.0.1:"), record["mlflow_tracking_uri"]
        assert len(record["nodes"]) == 2
        ran = [s for s in record["stages"] if s["status"] == "ran"]
        assert "train_folds@" + victim.data.tags["model"] in {s["stage"] for s in ran}, out
        assert "where" in out and all(s["task"]["node_id"] for s in ran)
        assert len({s["task"]["node_id"] for s in ran}) == 2  # one CPU each: the trainings ran on both nodes
    finally:
        cluster.shutdown()
    assert _client(root).get_run(victim.info.run_id).info.status == "FAILED"
    _check_finished_like(root, reference)
