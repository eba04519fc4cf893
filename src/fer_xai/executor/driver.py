"""``fer-xai repro --executor ray``: plan with DVC, run on Ray, record with ``dvc commit``, report.

MLflow: tasks get the driver's ``MLFLOW_TRACKING_URI``. When the store is a file (SQLite, the
default ``<repo>/mlflow.db``) and the cluster has more than one node (``executor.mlflow_server:
auto``; ``always``/``never`` force it), the driver fronts it with an ``mlflow server`` and the
tasks track through that instead. Before anything runs, RUNNING runs whose process is gone (a
killed earlier driver's stages) are marked FAILED (``tracking.fail_orphaned_runs``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .. import layout, tracking
from ..config import Params
from ..errors import FerXaiError
from ..redact import redact_uri
from .dvc_project import DvcProject
from .record import write_record
from .scheduler import StageOutcome, execute

log = logging.getLogger(__name__)

# What the driver passes on to every task besides its tracking URI: the driver's software (the
# project folder and the venv are on a filesystem every node sees) and the knobs of the stages.
_PASSED_VARS = ("PATH", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHASHSEED", "HOME")
_PASSED_PREFIXES = ("FER_XAI_", "MLFLOW_", "TF_", "KERAS_", "DVC_", "GIT_", "TQDM_", "OMP_")


def driver_env(root: Path, tracking_uri: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _PASSED_VARS or k.startswith(_PASSED_PREFIXES)}
    # The stages must find this venv's `fer-xai` first, as under `dvc repro` from it.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["FER_XAI_ROOT"] = str(root)
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    for var in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"):  # a stage starts runs of its own
        env.pop(var, None)
    return env


def _file_store(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def _close_orphans(params: Params) -> None:
    try:
        exp_id = tracking.configure(params.tracking.experiment)
        tracking.fail_orphaned_runs(exp_id)
    except Exception as exc:  # noqa: BLE001 - tracking trouble is each stage's to report
        log.warning("MLflow store %s: orphaned runs not checked (%s)", redact_uri(tracking.tracking_uri()), exc)


@contextlib.contextmanager
def _tracking_for_tasks(params: Params, n_nodes: int, run_dir: Path) -> Iterator[str]:
    from .tracking_server import mlflow_server

    uri = tracking.tracking_uri()
    mode = params.executor.mlflow_server
    if mode == "always" or (mode == "auto" and n_nodes > 1 and _file_store(uri)):
        with mlflow_server(uri, params.executor.mlflow_host, params.executor.mlflow_port,
                           run_dir / "mlflow-server.log") as url:
            yield url
    else:
        if n_nodes > 1 and _file_store(uri):
            log.warning("%d nodes write the MLflow file store %s (executor.mlflow_server: never)", n_nodes,
                        redact_uri(uri))
        yield uri


def run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}"


def repro(params: Params, root: Path, targets: Sequence[str] = (), address: str | None = None,
          num_cpus: int | None = None) -> tuple[list[StageOutcome], Path]:
    """Run the stale stages of ``targets`` (default: all of dvc.yaml) on Ray; returns the
    outcomes (plan order) and the record's path."""
    try:
        import ray
    except ImportError as exc:
        raise FerXaiError("--executor ray needs Ray: pip install -e '.[ray]'") from exc

    from .ray_backend import RayBackend, alive_nodes, start_ray

    project = DvcProject(root)
    plan = project.plan(targets)
    run_dir = layout.executor_run_dir(params, run_id())
    run_dir.mkdir(parents=True, exist_ok=True)
    _close_orphans(params)
    start_ray(address, num_cpus)
    outcomes: list[StageOutcome] = []
    try:
        nodes = alive_nodes()
        header: dict[str, Any] = {
            "run_id": run_dir.name, "root": str(root), "targets": list(targets), "address": address or "local",
            "driver": {"hostname": socket.gethostname(), "pid": os.getpid()}, "started": time.time(),
            "nodes": [{"node_id": n["NodeID"], "ip": n.get("NodeManagerAddress"),
                       "resources": {k: v for k, v in n["Resources"].items() if not k.startswith("node:")}}
                      for n in nodes],
        }
        log.info("Ray: %d node(s), %g CPU, %g GPU; %d stage(s) to check; logs in %s", len(nodes),
                 sum(n["Resources"].get("CPU", 0) for n in nodes), sum(n["Resources"].get("GPU", 0) for n in nodes),
                 len(plan), run_dir)
        with _tracking_for_tasks(params, len(nodes), run_dir) as uri:
            header["mlflow_tracking_uri"] = redact_uri(uri)
            backend = RayBackend(params.executor, root, run_dir, driver_env(root, uri))
            for node in plan:  # before anything runs: a stage no node can take would wait forever
                backend.options(node)
            with tqdm(total=len(plan), desc="stages", unit="stage") as bar:
                def on_outcome(outcome: StageOutcome) -> None:
                    outcomes.append(outcome)
                    bar.update(1)
                    write_record(run_dir, header, outcomes)

                outcomes = execute(plan, project, backend, on_outcome)
        header["ended"] = time.time()
        return outcomes, write_record(run_dir, header, outcomes)
    finally:
        ray.shutdown()
