"""The MLflow UI over the project's store (`make ui`): REST API and a headless-Chromium screenshot.

A tiny training (`fer-xai train --model songnet --fold 1` on the tiny study) fills a store;
`mlflow server` serves it on a free loopback port, the way `make ui` does. The server starts
a process group (uvicorn workers); the fixture kills the whole group.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from helpers.dvc_project import kill_group

REPO = Path(__file__).resolve().parents[2]
MLFLOW = Path(sys.executable).with_name("mlflow")
EXPERIMENT = "fer-xai"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        finally:
            paths.repo_root.cache_clear()
            for var in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
                os.environ.pop(var, None)
    return root, uri


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
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not come up (exit {proc.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, root
    finally:
        kill_group(proc)


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


def test_makefile_ui_serves_the_project_store_on_loopback():
    out = subprocess.run(["make", "-n", "-s", "ui"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "--host 127.0.0.1" in out
    assert f'--backend-store-uri "sqlite:///{REPO}/mlflow.db"' in out


@pytest.mark.browser
def test_runs_page_renders_in_headless_chromium(server, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (`make test` installs it when run as root with apt-get)")
    import numpy as np
    from PIL import Image

    base, _ = server
    exp = _get(base, "/api/2.0/mlflow/experiments/get-by-name", experiment_name=EXPERIMENT)["experiment"]
    url = f"{base}/#/experiments/{exp['experiment_id']}/runs"  # the runs table
    shot = tmp_path / "mlflow_runs_page.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,900",
             "--virtual-time-budget=15000", f"--user-data-dir={tmp_path / 'profile'}", "--no-first-run"]
    proc = subprocess.run([chromium, *flags, f"--screenshot={shot}", url], capture_output=True, text=True,
                          timeout=180, start_new_session=True)
    assert shot.is_file(), f"no screenshot (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (900, 1280)
    gray = img.mean(axis=2)
    assert gray.std() > 10, "blank screenshot"
    assert (gray < 200).mean() > 0.01, "screenshot has almost no content"
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50, "screenshot has too few colours to be the UI"
    # The rendered page lists the run (the DOM after the UI's JavaScript ran).
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=180,
                         start_new_session=True).stdout
    assert "songnet-fold1" in dom, "the runs page does not list the training run"
    print(f"screenshot: {shot}")
