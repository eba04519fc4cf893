import os
import subprocess
import sys

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from fer_xai import tracking


def test_default_uri_is_sqlite_in_repo(project, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking.tracking_uri() == f"sqlite:///{project / 'mlflow.db'}"
    assert tracking.artifact_root() == project / "mlartifacts"


def test_stage_run_logs_and_puts_artifacts_under_repo(project, monkeypatch):
    with tracking.stage_run("unit", "exp-a", params={"a": {"b": 1, "c": [1, 2]}}) as run:
        (project / "f.txt").write_text("x")
        mlflow.log_artifact(str(project / "f.txt"))
    r = MlflowClient().get_run(run.info.run_id)
    assert r.info.status == "FINISHED"
    assert r.data.params == {"a.b": "1", "a.c": "[1, 2]"}
    assert r.data.tags["fer_xai.stage"] == "unit"
    assert (project / "mlartifacts").is_dir()
    assert list((project / "mlartifacts").rglob("f.txt"))


def test_exception_marks_run_failed(project):
    with pytest.raises(RuntimeError):
        with tracking.stage_run("unit", "exp-b") as run:
            raise RuntimeError("boom")
    assert MlflowClient().get_run(run.info.run_id).info.status == "FAILED"


def test_orphaned_running_run_of_dead_process_is_failed(project):
    code = (
        "import os, mlflow\n"
        "from fer_xai import tracking\n"
        "ctx = tracking.stage_run('unit', 'exp-c')\n"
        "run = ctx.__enter__()\n"
        "print(run.info.run_id, flush=True)\n"
        "os._exit(9)\n"  # dies without ending the run, like a killed stage
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    run_id = out.stdout.strip().splitlines()[-1]
    client = MlflowClient()
    assert client.get_run(run_id).info.status == "RUNNING"
    with tracking.stage_run("unit", "exp-c"):
        pass
    assert client.get_run(run_id).info.status == "FAILED"
