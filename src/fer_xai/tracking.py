"""MLflow helper used by every stage.

Default store: ``sqlite:///<repo>/mlflow.db`` with artifacts under ``<repo>/mlartifacts``;
``MLFLOW_TRACKING_URI`` overrides it. The store is never a DVC output: runs accumulate
across ``dvc repro`` calls the way an experiment log should.

Liveness: a stage run carries its pid, host and pid namespace, and a heartbeat tag (UNIX time)
that a daemon thread refreshes every ``FER_XAI_HEARTBEAT_INTERVAL_S`` seconds (default 30). The
next stage, on any host, marks a RUNNING run FAILED when its process is gone: at once when it ran
in this host's pid namespace and the pid is dead, otherwise once its heartbeat is older than
``FER_XAI_HEARTBEAT_TIMEOUT_S`` (default 600).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from .mlflow_ui import tag_experiment
from .paths import repo_root
from .processes import pid_alive
from .redact import redact, redact_uri

log = logging.getLogger(__name__)

T = TypeVar("T")

_PID_TAG = "fer_xai.pid"
_HOST_TAG = "fer_xai.host"
_PIDNS_TAG = "fer_xai.pid_namespace"
_HEARTBEAT_TAG = "fer_xai.heartbeat"

# The timeout spans many intervals so that a slow store or a busy machine does not fail a live
# run, and minutes of clock skew between hosts (the heartbeat is the writer's clock, its age the
# reader's) do not either.
HEARTBEAT_INTERVAL_S = 30.0
HEARTBEAT_TIMEOUT_S = 600.0
_HEARTBEAT_JOIN_S = 10.0  # a beat stuck in a store's retries must not hold up the stage's end


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def artifact_root() -> Path:
    return repo_root() / "mlartifacts"


def configure(experiment: str) -> str:
    """Point MLflow at the project store and return the experiment id (created on first use)."""
    import mlflow

    uri = tracking_uri()
    if redact_uri(uri) != uri:
        # MLflow prints "View run ... at <tracking URI>" itself, credentials included.
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
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
    # The model-training view and the saved view of the trainings (fer_xai.mlflow_ui).
    tag_experiment(mlflow.MlflowClient(), exp_id, exp.tags if exp is not None else {})
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




def _pid_namespace() -> str:
    """This process's pid namespace, e.g. ``pid:[4026531836]``; "" where there is none to read.

    Containers that share the host's name (``docker run --network host``) have pids of their own."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _seconds(env_var: str, default: float) -> float:
    return float(os.environ.get(env_var) or default)


def _liveness_tags() -> dict[str, str]:
    return {_PID_TAG: str(os.getpid()), _HOST_TAG: socket.gethostname(), _PIDNS_TAG: _pid_namespace(),
            _HEARTBEAT_TAG: f"{time.time():.3f}"}


def _in_this_pid_space(tags: Mapping[str, str]) -> bool:
    # Runs without the namespace tag came from older code, which compared hosts only.
    ns = _pid_namespace()
    return tags.get(_HOST_TAG) == socket.gethostname() and tags.get(_PIDNS_TAG, ns) == ns


def _orphan_reason(tags: Mapping[str, str], now: float, timeout: float) -> str | None:
    """Why the process of a RUNNING run is gone, or None while it may still be running.

    A pid tells at once, but only in this host's pid namespace; elsewhere a stale heartbeat is the
    only evidence. A run without a heartbeat (written by older code) is never failed on age alone:
    nothing tells a long stage on another host from a dead one.
    """
    pid = tags.get(_PID_TAG, "")
    if _in_this_pid_space(tags) and pid.isdigit() and not pid_alive(int(pid)):
        return "process died while running"
    try:
        age = now - float(tags[_HEARTBEAT_TAG])
    except (KeyError, ValueError):
        return None
    if age > timeout:
        return f"no heartbeat for {age:.0f} s (timeout {timeout:.0f} s, FER_XAI_HEARTBEAT_TIMEOUT_S)"
    return None


def fail_orphaned_runs(experiment_id: str) -> int:
    """Mark RUNNING runs whose process is gone FAILED (an interrupted stage left them)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    now, timeout = time.time(), _seconds("FER_XAI_HEARTBEAT_TIMEOUT_S", HEARTBEAT_TIMEOUT_S)
    count = 0
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'"):
        reason = _orphan_reason(run.data.tags, now, timeout)
        if reason:
            client.set_terminated(run.info.run_id, status="FAILED")
            client.set_tag(run.info.run_id, "fer_xai.failure", reason)
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
        log.warning("MLFLOW_RUN_ID=%s: not found in %s (%s); not linked", launcher, redact_uri(tracking_uri()), exc)
        return {}
    if launcher_exp == exp_id:
        log.info("stage run nested under the mlflow run entry point's run %s", launcher)
        return {"mlflow.parentRunId": launcher}
    log.info("mlflow run entry point's run %s is in experiment %s, the stage's in %s: linked by tag "
             "fer_xai.launcher_run_id (pass --experiment-name to nest it)", launcher, launcher_exp, exp_id)
    return {"fer_xai.launcher_run_id": launcher}


def _beat(client: Any, run_id: str, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            client.set_tag(run_id, _HEARTBEAT_TAG, f"{time.time():.3f}")
        except Exception as exc:  # noqa: BLE001 - a store briefly away must not stop the stage
            log.warning("run %s: heartbeat not written (%s); next try in %g s", run_id, exc, interval)


@contextlib.contextmanager
def heartbeat(run_id: str) -> Iterator[None]:
    """Refresh the run's heartbeat tag from a daemon thread while the block runs."""
    from mlflow.tracking import MlflowClient

    stop = threading.Event()
    interval = _seconds("FER_XAI_HEARTBEAT_INTERVAL_S", HEARTBEAT_INTERVAL_S)
    thread = threading.Thread(target=_beat, args=(MlflowClient(), run_id, interval, stop),
                              name=f"fer_xai-heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(_HEARTBEAT_JOIN_S)


@contextlib.contextmanager
def live_run(run_name: str, tags: Mapping[str, str], nested: bool = False) -> Iterator[Any]:
    """``mlflow.start_run`` with the liveness tags and a heartbeat while the block runs, so that
    the run is marked FAILED by a later stage if its process dies (tags redacted)."""
    import mlflow

    all_tags = redact({**_liveness_tags(), **tags})
    with mlflow.start_run(run_name=run_name, nested=nested, tags=all_tags) as run, heartbeat(run.info.run_id):
        yield run


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
    Params and tags are logged with credentials in URIs hidden (``fer_xai.redact``).
    """
    import mlflow

    exp_id = configure(experiment)
    fail_orphaned_runs(exp_id)
    all_tags = {
        "fer_xai.stage": stage,
        "mlflow.source.git.commit": git_commit(),
        **launcher_tags(exp_id),
        **(tags or {}),
    }
    with live_run(run_name or stage, all_tags) as run:
        if params:
            # Redacted before flattening: a truncated list must not cut a URI short of its '@'.
            mlflow.log_params(flatten(redact(params)))
        yield run


# How a write that lost a race with a concurrent one fails (SQLite, MySQL, PostgreSQL), from a
# local store or through a server: e.g. two trainings logging the same new dataset input at once
# (MLflow looks the dataset up, then inserts it). The failed write's transaction is rolled back;
# written again, it finds the other's row.
_CONFLICTS = ("UNIQUE constraint failed", "database is locked", "Duplicate entry", "duplicate key value")
STORE_RETRIES = 5


def retry_store_conflicts(write: Callable[[], T], what: str) -> T:
    """``write()``, repeated (up to ``STORE_RETRIES`` times, backing off) while it collides with a
    concurrent writer of the tracking store; only for writes that are whole or not at all."""
    for attempt in range(STORE_RETRIES):
        try:
            return write()
        except Exception as exc:  # noqa: BLE001 - MLflow wraps the database's errors in several types
            message = str(exc)
            if attempt == STORE_RETRIES - 1 or not any(c in message for c in _CONFLICTS):
                raise
            # Writers that collided once must not collide again in step: the delay depends on the pid.
            delay = 0.2 * 2**attempt * (1 + (os.getpid() % 8) / 8)
            log.info("%s collided with a concurrent write (%s); again in %.1f s", what,
                     message.splitlines()[0][:120], delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
