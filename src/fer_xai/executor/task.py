"""The body of one Ray task: run a stage's command lines on the node Ray chose, as ``dvc repro``
would (shell, the stage's folder, ``DVC_ROOT`` and ``DVC_STAGE`` set), and say where it ran.

Each command runs under :func:`.reaper.start_guarded`: when the task's worker ends in any way
(a killed driver, Ray ending its tasks), no stage process is left writing on."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .reaper import start_guarded

# Environment that Ray sets for its own worker and that a stage run by `dvc repro` would not see
# (Ray pins OMP_NUM_THREADS to the task's CPUs when the driver had not set it).
_RAY_ONLY = ("OMP_NUM_THREADS",)


def stage_env(worker_env: Mapping[str, str], driver_env: Mapping[str, str], root: Path, stage: str) -> dict[str, str]:
    """The worker's environment (it carries the devices Ray gave the task, CUDA_VISIBLE_DEVICES),
    with what the driver passes on, and DVC's two stage variables."""
    env = {k: v for k, v in worker_env.items() if k not in _RAY_ONLY}
    env.update(driver_env)
    env["DVC_ROOT"] = str(root)
    env["DVC_STAGE"] = stage
    return env


def _run_guarded(line: str, cwd: str, env: Mapping[str, str], log) -> int:
    guarded = start_guarded(["/bin/sh", "-c", line], cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        return guarded.wait()
    finally:
        guarded.stop()  # what the command left running in its group (none expected) goes too


def run_stage_command(stage: str, commands: list[str], cwd: str, root: str, driver_env: dict[str, str],
                      log_path: str) -> dict[str, Any]:
    """Run ``commands`` one after another in ``cwd`` (stopping at the first failure), output to
    ``log_path``; return where and how it ran."""
    import ray

    started = time.time()
    env = stage_env(os.environ, driver_env, Path(root), stage)
    returncode = 0
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        for line in commands:
            log.write(f"> {line}\n".encode())
            log.flush()
            returncode = _run_guarded(line, cwd, env, log)
            if returncode != 0:
                break
    ctx = ray.get_runtime_context()
    return {
        "stage": stage,
        "returncode": returncode,
        "node_id": ctx.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
        "started": started,
        "ended": time.time(),
        "log": log_path,
    }
