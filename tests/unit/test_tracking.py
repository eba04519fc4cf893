import logging
import os
import socket
import subprocess
import sys
import threading
import time

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


def test_stage_run_logs_params_and_tags_without_credentials(project):
    params = {"tune": {"storage": "postgresql://u:secret@h/db"}, "uris": ["mysql://a:secret@b/c"]}
    with tracking.stage_run("unit", "exp-d", params=params, tags={"db": "http://u:secret@h:5000"}) as run:
        pass
    data = MlflowClient().get_run(run.info.run_id).data
    assert data.params["tune.storage"] == "postgresql://u:***@h/db"
    assert data.params["uris"] == '["mysql://a:***@b/c"]'
    assert data.tags["db"] == "http://u:***@h:5000"


# --- liveness across hosts: heartbeats -----------------------------------------------------------


def _running_run(exp_id: str, **tags: str) -> str:
    """A RUNNING run as another process left it (tags only, no thread keeps it alive)."""
    return MlflowClient().create_run(exp_id, tags=tags).info.run_id


def test_stale_heartbeat_from_another_host_is_failed(project, monkeypatch):
    monkeypatch.setenv("FER_XAI_HEARTBEAT_TIMEOUT_S", "600")
    exp_id = tracking.configure("exp-e")
    stale = _running_run(exp_id, **{"fer_xai.host": "container-1a2b", "fer_xai.pid": "7",
                                     "fer_xai.heartbeat": str(time.time() - 3600)})
    # Written by older code (no heartbeat) on another host: nothing tells whether it is alive.
    old = _running_run(exp_id, **{"fer_xai.host": "container-3c4d", "fer_xai.pid": "7"})
    with tracking.stage_run("unit", "exp-e"):
        pass
    client = MlflowClient()
    assert client.get_run(stale).info.status == "FAILED"
    assert "heartbeat" in client.get_run(stale).data.tags["fer_xai.failure"]
    assert client.get_run(old).info.status == "RUNNING"


def test_fresh_heartbeat_from_another_host_or_container_is_left_running(project):
    exp_id = tracking.configure("exp-f")
    now = str(time.time())
    other_host = _running_run(exp_id, **{"fer_xai.host": "container-1a2b", "fer_xai.pid": "7",
                                          "fer_xai.heartbeat": now})
    # A container sharing this host's name (docker run --network host) but not its pids: that pid
    # is not alive here, yet the process is.
    other_pids = _running_run(exp_id, **{"fer_xai.host": socket.gethostname(), "fer_xai.pid": str(2**30),
                                          "fer_xai.pid_namespace": "pid:[1]", "fer_xai.heartbeat": now})
    with tracking.stage_run("unit", "exp-f"):
        pass
    client = MlflowClient()
    assert client.get_run(other_host).info.status == "RUNNING"
    assert client.get_run(other_pids).info.status == "RUNNING"


def _heartbeat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fer_xai-heartbeat")]


def _wait_for(predicate, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_live_stage_refreshes_its_heartbeat_until_the_run_ends(project, monkeypatch):
    monkeypatch.setenv("FER_XAI_HEARTBEAT_INTERVAL_S", "0.05")
    client = MlflowClient()
    with tracking.stage_run("unit", "exp-g") as run:
        first = float(client.get_run(run.info.run_id).data.tags["fer_xai.heartbeat"])
        assert _wait_for(lambda: float(client.get_run(run.info.run_id).data.tags["fer_xai.heartbeat"]) > first)
        assert len(_heartbeat_threads()) == 1
    assert _heartbeat_threads() == []
    last = client.get_run(run.info.run_id).data.tags["fer_xai.heartbeat"]
    time.sleep(0.3)
    assert client.get_run(run.info.run_id).data.tags["fer_xai.heartbeat"] == last


def test_heartbeat_thread_stops_when_the_stage_raises(project, monkeypatch):
    monkeypatch.setenv("FER_XAI_HEARTBEAT_INTERVAL_S", "0.05")
    with pytest.raises(RuntimeError):
        with tracking.stage_run("unit", "exp-h") as run:
            assert len(_heartbeat_threads()) == 1
            raise RuntimeError("boom")
    assert _heartbeat_threads() == []
    assert MlflowClient().get_run(run.info.run_id).info.status == "FAILED"


def test_unavailable_store_does_not_stop_the_heartbeat_nor_the_stage(project, monkeypatch, caplog):
    monkeypatch.setenv("FER_XAI_HEARTBEAT_INTERVAL_S", "0.05")
    real_set_tag = MlflowClient.set_tag
    failures = []

    def flaky_set_tag(self, run_id, key, value, *args, **kwargs):
        if key == "fer_xai.heartbeat" and len(failures) < 2:
            failures.append(key)
            raise ConnectionError("tracking server briefly unreachable")
        return real_set_tag(self, run_id, key, value, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "set_tag", flaky_set_tag)
    client = MlflowClient()
    with caplog.at_level(logging.WARNING, logger="fer_xai.tracking"):
        with tracking.stage_run("unit", "exp-i") as run:
            first = float(client.get_run(run.info.run_id).data.tags["fer_xai.heartbeat"])
            assert _wait_for(lambda: float(client.get_run(run.info.run_id).data.tags["fer_xai.heartbeat"]) > first)
    assert len(failures) == 2
    assert "briefly unreachable" in caplog.text
    assert client.get_run(run.info.run_id).info.status == "FINISHED"


def test_nested_runs_such_as_tune_trials_carry_the_liveness_tags(project):
    tracking.configure("exp-n")
    with tracking.stage_run("unit", "exp-n"):
        with tracking.live_run("trial-0", {"fer_xai.stage": "tune_trial"}, nested=True) as child:
            pass
    tags = MlflowClient().get_run(child.info.run_id).data.tags
    assert {"fer_xai.heartbeat", "fer_xai.pid", "fer_xai.host"} <= set(tags)
    assert tags["mlflow.parentRunId"]


def test_mlflow_prints_no_run_url_for_a_store_with_credentials(project, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "false")  # restored after the test
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'c.db'}?password=secret")
    tracking.configure("exp-p")
    assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"
