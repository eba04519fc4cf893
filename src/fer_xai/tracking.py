"""MLflow helper used by every stage.

Default store: ``sqlite:///<repo>/mlflow.db`` with artifacts under ``<repo>/mlartifacts``;
``MLFLOW_TRACKING_URI`` overrides it. The store is never a DVC output: runs accumulate
across ``dvc repro`` calls the way an experiment log should.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .paths import repo_root

log = logging.getLogger(__name__)

_PID_TAG = "fer_xai.pid"
_HOST_TAG = "fer_xai.host"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def artifact_root() -> Path:
    return repo_root() / "mlartifacts"


def configure(experiment: str) -> str:
    """Point MLflow at the project store and return the experiment id (created on first use)."""
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(os.environ.get("MLFLOW_REGISTRY_URI") or uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        location = None
        if uri.startswith("sqlite:") or uri.startswith("file:"):
            # Without an explicit location MLflow would write ./mlruns relative to the cwd.
            location = (artifact_root() / experiment).as_uri()
        exp_id = mlflow.create_experiment(experiment, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_orphaned_runs(experiment_id: str) -> int:
    """Mark RUNNING runs of dead processes on this host FAILED (an interrupted stage left them)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    host = socket.gethostname()
    count = 0
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'"):
        tags = run.data.tags
        if tags.get(_HOST_TAG) != host or not tags.get(_PID_TAG, "").isdigit():
            continue
        if not _pid_alive(int(tags[_PID_TAG])):
            client.set_terminated(run.info.run_id, status="FAILED")
            client.set_tag(run.info.run_id, "fer_xai.failure", "process died while running")
            count += 1
    if count:
        log.warning("marked %d orphaned RUNNING run(s) as FAILED", count)
    return count


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{key}."))
        elif isinstance(v, (list, tuple)):
            out[key] = json.dumps(v, default=str)[:6000]
        else:
            out[key] = v
    return out


def launcher_tags(exp_id: str) -> dict[str, str]:
    """Tags linking a stage run to the ``mlflow run`` entry-point run that launched it.

    Removes ``MLFLOW_RUN_ID`` from this process's environment (``mlflow.start_run`` would resume
    that run otherwise). Same experiment: ``mlflow.parentRunId`` (nested in the UI); another
    experiment: ``fer_xai.launcher_run_id``."""
    launcher = os.environ.pop("MLFLOW_RUN_ID", None)
    if not launcher:
        return {}
    from mlflow.tracking import MlflowClient

    try:
        launcher_exp = MlflowClient().get_run(launcher).info.experiment_id
    except Exception as exc:  # noqa: BLE001 - a missing/foreign run must not stop the stage
        log.warning("MLFLOW_RUN_ID=%s: not found in %s (%s); not linked", launcher, tracking_uri(), exc)
        return {}
    if launcher_exp == exp_id:
        log.info("stage run nested under the mlflow run entry point's run %s", launcher)
        return {"mlflow.parentRunId": launcher}
    log.info("mlflow run entry point's run %s is in experiment %s, the stage's in %s: linked by tag "
             "fer_xai.launcher_run_id (pass --experiment-name to nest it)", launcher, launcher_exp, exp_id)
    return {"fer_xai.launcher_run_id": launcher}


@contextlib.contextmanager
def stage_run(
    stage: str,
    experiment: str,
    params: Mapping[str, Any] | None = None,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Iterator[Any]:
    """Start an MLflow run for one stage; an exception ends it FAILED, never RUNNING.

    Under ``mlflow run`` (``MLFLOW_RUN_ID`` set for the entry point's command) the stage run is a
    child of the entry point's run instead of resuming it: the ``main`` entry point runs many
    stages (``dvc repro``), each with its own params, and the entry point's run may live in
    another experiment (``mlflow run`` without ``--experiment-name`` uses the default one).
    """
    import mlflow

    exp_id = configure(experiment)
    fail_orphaned_runs(exp_id)
    all_tags = {
        "fer_xai.stage": stage,
        "mlflow.source.git.commit": git_commit(),
        _PID_TAG: str(os.getpid()),
        _HOST_TAG: socket.gethostname(),
        **launcher_tags(exp_id),
        **(tags or {}),
    }
    with mlflow.start_run(run_name=run_name or stage, tags=all_tags) as run:
        if params:
            mlflow.log_params(flatten(params))
        yield run
