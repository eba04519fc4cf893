"""The MLflow UI over the project's store (`make ui`): REST API and a headless-Chromium screenshot.

A tiny training (`fer-xai train --model songnet --fold 1` on the tiny study), and the Ekman
metrics `fer-xai compare` would log into its run, fill a store;
`mlflow server` serves it on a free loopback port, the way `make ui` does. The server starts
a process group (uvicorn workers); the fixture kills the whole group.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from helpers.http_server import free_port, serving

REPO = Path(__file__).resolve().parents[2]
MLFLOW = Path(sys.executable).with_name("mlflow")
EXPERIMENT = "fer-xai"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tiny_study_template, tmp_path_factory):
    """A project copied from the tiny study with one tracked, registered training in its store."""
    from click.testing import CliRunner

    from fer_xai import paths
    from fer_xai.cli import main

    root = tmp_path_factory.mktemp("ui") / "proj"
    shutil.copytree(tiny_study_template, root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FER_XAI_ROOT", str(root))
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        for var in ("MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID",
                    "FER_XAI_PARAMS"):
            mp.delenv(var, raising=False)
        paths.repo_root.cache_clear()
        import mlflow

        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            res = CliRunner().invoke(main, ["--params", str(root / "params.yaml"), "train", "--model", "songnet",
                                            "--fold", "1"], catch_exceptions=False)
            assert res.exit_code == 0, res.output
            _log_ekman_metrics()
        finally:
            paths.repo_root.cache_clear()
            for var in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
                os.environ.pop(var, None)
    return root, uri


EKMAN = {"iou": (0.2, 0.4), "f1": (0.3, 0.5), "precision": (0.5, 0.5), "recall": (0.25, 0.5)}


def _log_ekman_metrics() -> None:
    """What `fer-xai compare` logs into the training's run, for two expressions of songnet fold 1."""
    import pandas as pd

    from fer_xai.compare.mlflow_log import log_training_runs

    keys = {"model": ["SongNet"] * 2, "fold": [1, 1], "expression": ["Anger", "Happiness"]}
    per_fold = pd.DataFrame({**keys, **{m: list(v) for m, v in EKMAN.items()}})
    threshold_free = pd.DataFrame({**keys, "auc": [0.6, 0.7], "relevance_mass": [0.1, 0.2]})
    updated = log_training_runs({"metrics": per_fold, "threshold_free": threshold_free,
                                 "model_ids": {"SongNet": "songnet"}})
    assert list(updated) == ["SongNet/fold1"]


def _get(base: str, path: str, **query) -> dict:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def _post(base: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    """`mlflow server` over the store on 127.0.0.1:<free port>; the process group is killed after."""
    root, uri = store
    port = free_port()
    log = tmp_path_factory.mktemp("ui_log") / "mlflow_server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    cmd = [str(MLFLOW), "server", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1", "--default-artifact-root", str(root / "mlartifacts")]
    base = f"http://127.0.0.1:{port}"
    with serving(cmd, f"{base}/health", log, root, env):
        yield base, root


def test_rest_api_shows_runs_metrics_artifacts_and_aliases(server):
    base, root = server
    exp = _get(base, "/api/2.0/mlflow/experiments/get-by-name", experiment_name=EXPERIMENT)["experiment"]
    assert exp["artifact_location"].startswith("file:")  # artifacts resolve without --serve-artifacts

    runs = _post(base, "/api/2.0/mlflow/runs/search", {
        "experiment_ids": [exp["experiment_id"]], "filter": "tags.`fer_xai.stage` = 'train'"})["runs"]
    assert len(runs) == 1
    run = runs[0]
    run_id = run["info"]["run_id"]
    assert run["info"]["status"] == "FINISHED"
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["model"] == "songnet" and tags["fold"] == "1"
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    local = json.loads((root / "models" / "songnet" / "fold1" / "metrics.json").read_text())
    assert metrics["test_accuracy"] == pytest.approx(local["test_accuracy"])

    hist = _get(base, "/api/2.0/mlflow/metrics/get-history", run_id=run_id, metric_key="loss")["metrics"]
    assert sorted(m["step"] for m in hist) == [1, 2]  # one point per epoch (the tiny study: 2 epochs)

    files = {f["path"]: f for f in _get(base, "/api/2.0/mlflow/artifacts/list", run_id=run_id)["files"]}
    assert {"confusion.png", "metrics.json", "predictions.csv", "report.txt"} <= set(files)
    # The UI reads artifact contents through the server: the same bytes as the file on disk.
    with urllib.request.urlopen(f"{base}/get-artifact?path=metrics.json&run_uuid={run_id}", timeout=30) as resp:
        assert json.loads(resp.read()) == local

    mv = _get(base, "/api/2.0/mlflow/registered-models/alias", name="fer-songnet", alias="fold1")["model_version"]
    assert mv["run_id"] == run_id and mv["status"] == "READY"
    model = _get(base, "/api/2.0/mlflow/registered-models/get", name="fer-songnet")["registered_model"]
    assert {"alias": "fold1", "version": mv["version"]} in model["aliases"]


def _tags(entity: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in entity.get("tags", [])}


def _training_run(base: str) -> dict:
    exp = _get(base, "/api/2.0/mlflow/experiments/get-by-name", experiment_name=EXPERIMENT)["experiment"]
    [run] = _post(base, "/api/2.0/mlflow/runs/search", {
        "experiment_ids": [exp["experiment_id"]], "filter": "tags.`fer_xai.stage` = 'train'"})["runs"]
    return run


def test_experiment_is_model_training_with_a_view_of_the_trainings(server):
    from fer_xai.mlflow_ui import HEADLINE_METRICS, VIEW_KEY, training_view

    base, _ = server
    tags = _tags(_get(base, "/api/2.0/mlflow/experiments/get-by-name", experiment_name=EXPERIMENT)["experiment"])
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(tags[f"mlflow.sharedViewState.{VIEW_KEY}"])
    assert view == training_view()
    assert view["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": "model"}]
    assert [f"metrics.`{m}`" for m in HEADLINE_METRICS] == [c for c in view["selectedColumns"]
                                                            if c.startswith("metrics.")]
    # The metrics the view shows are the ones the training logs under those names.
    metrics = {m["key"] for m in _training_run(base)["data"]["metrics"]}
    assert {"test_accuracy", "test_macro_f1"} <= metrics


def test_training_run_shows_its_data_its_network_and_its_headline_metrics(server):
    import pandas as pd

    base, root = server
    run = _training_run(base)
    tags, params = _tags(run["data"]), {p["key"]: p["value"] for p in run["data"]["params"]}
    assert tags["model"] == "songnet"  # the "Group by" tag of the saved view
    inputs = {_tags(i)["mlflow.data.context"]: i for i in run["inputs"]["dataset_inputs"]}
    assert set(inputs) == {"training", "testing"}
    manifest = pd.read_parquet(root / "data" / "prepared" / "manifest.parquet")
    for context, n_key in (("training", "n_train"), ("testing", "n_test")):
        dataset, itags = inputs[context]["dataset"], _tags(inputs[context])
        assert dataset["name"] == f"prepared@{tags['data_version'].removeprefix('local:')[:8]}"
        assert json.loads(dataset["profile"])["num_rows"] == int(params[n_key])
        assert itags["fer_xai.data_version"] == tags["data_version"] and itags["fer_xai.fold"] == "1"
        counts = json.loads(itags["fer_xai.counts"])
        assert sum(counts.values()) == int(params[n_key])
        assert set(counts) <= set(manifest["label"])
    assert inputs["training"]["dataset"]["digest"] != inputs["testing"]["dataset"]["digest"]
    note = tags["mlflow.note.content"]
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert "songnet fold 1" in note and f"{metrics['test_accuracy']:.4f}" in note and "`test_macro_f1`" in note
    # `fer-xai compare` added the Ekman metrics to the run and to its description.
    assert metrics["ekman/iou/Avg"] == pytest.approx(0.3) and "| `ekman/iou/Avg` | 0.3000 |" in note
    assert "| `ekman/f1/Avg` | 0.4000 |" in note


def test_makefile_ui_serves_the_project_store_on_loopback():
    out = subprocess.run(["make", "-n", "-s", "ui"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "--host 127.0.0.1" in out
    assert f'--backend-store-uri "sqlite:///{REPO}/mlflow.db"' in out


# What MLflow 3.17's GenAI "Overview" shows (the landing page of an experiment without the
# model-training switch): not on the page of the trainings.
GENAI_OVERVIEW_MARKERS = ("Token Usage", "Tokens per Trace")


def _chromium(chromium: str, profile: Path, size: str, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={size}",
             "--virtual-time-budget=15000", f"--user-data-dir={profile}", "--no-first-run"]
    return subprocess.run([chromium, *flags, *args], capture_output=True, text=True, timeout=180,
                          start_new_session=True)


def _keep(path: Path) -> None:
    """Copy a screenshot or DOM into $FER_XAI_TEST_ARTIFACTS (e.g. a CI's artifact folder) when set."""
    dest = os.environ.get("FER_XAI_TEST_ARTIFACTS")
    if dest:
        Path(dest).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(dest) / path.name)


@pytest.mark.browser
def test_landing_page_is_the_trainings_view_in_headless_chromium(server, tmp_path):
    """The address `make ui` prints opens the runs table in the model-training view, trainings
    grouped per network with the headline metrics and the dataset, not the GenAI overview."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (`make test` installs it when run as root with apt-get)")
    import numpy as np
    from PIL import Image

    from fer_xai.mlflow_ui import landing_url

    base, root = server
    url = landing_url(base, f"sqlite:///{root / 'mlflow.db'}", EXPERIMENT)
    assert "/runs?workflowType=machine_learning&viewStateShareKey=" in url
    shot = tmp_path / "mlflow_trainings_view.png"
    proc = _chromium(chromium, tmp_path / "profile-shot", "1280,900", f"--screenshot={shot}", url)
    assert shot.is_file(), f"no screenshot (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
    _keep(shot)
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (900, 1280)
    gray = img.mean(axis=2)
    assert gray.std() > 10, "blank screenshot"
    assert (gray < 200).mean() > 0.01, "screenshot has almost no content"
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50, "screenshot has too few colours to be the UI"
    # The rendered page (the DOM after the UI's JavaScript ran; wide, so that no column is scrolled away).
    dom_file = tmp_path / "mlflow_trainings_view.html"
    dom_file.write_text(_chromium(chromium, tmp_path / "profile-dom", "1920,1000", "--dump-dom", url).stdout)
    _keep(dom_file)
    dom = dom_file.read_text()
    assert "songnet-fold1" in dom, "the runs table does not list the training run"
    assert "Group: songnet" in dom, "the trainings are not grouped per network"
    for metric in ("test_accuracy", "test_macro_f1", "ekman/iou/Avg", "ekman/f1/Avg"):
        assert metric in dom, f"no {metric} column"
    assert "prepared@" in dom, "the Dataset column does not show the prepared data"
    assert not [m for m in GENAI_OVERVIEW_MARKERS if m in dom], "landed on the GenAI overview"
    print(f"screenshot: {shot}")
