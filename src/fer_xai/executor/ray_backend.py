"""The scheduler's backend on Ray: one task per stage, with the stage's resources."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import layout
from ..config import ExecutorParams
from .dvc_project import StageNode
from .resources import check_feasible, ray_options, stage_resources
from .task import run_stage_command

log = logging.getLogger(__name__)


def start_ray(address: str | None, num_cpus: int | None) -> None:
    """Connect to the cluster at ``address``, or start a local Ray (``num_cpus``: its CPUs)."""
    import ray

    if address:
        ray.init(address=address, log_to_driver=False, include_dashboard=False)
    else:
        ray.init(num_cpus=num_cpus, log_to_driver=False, include_dashboard=False)


def alive_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


class RayBackend:
    """Submits stages as Ray tasks (no retries: a failed stage is retried by the next run)."""

    def __init__(self, params: ExecutorParams, root: Path, run_dir: Path, driver_env: dict[str, str]):
        import ray

        self.params, self.root, self.run_dir, self.driver_env = params, root, run_dir, driver_env
        self.node_resources = [dict(n["Resources"]) for n in alive_nodes()]
        self.cluster_gpus = sum(r.get("GPU", 0) for r in self.node_resources)
        self._remote = ray.remote(max_retries=0)(run_stage_command)
        self._warned_gpu = False

    def options(self, node: StageNode) -> dict[str, Any]:
        """The stage's task options; ``resources.InfeasibleStageError`` when no node can ever run it."""
        spec = stage_resources(node, self.params)
        opts = ray_options(spec, self.cluster_gpus)
        if spec.num_gpus and not opts["num_gpus"] and not self._warned_gpu:
            log.warning("no GPU in the Ray cluster: stages that ask for GPUs run on CPUs")
            self._warned_gpu = True
        check_feasible(node.name, opts, self.node_resources)
        return opts

    def submit(self, node: StageNode) -> Any:
        opts = self.options(node)
        log_path = layout.executor_stage_log(self.run_dir, node.name)
        return self._remote.options(name=node.name, **opts).remote(
            node.name, list(node.commands), str(self.root / node.wdir), str(self.root), self.driver_env,
            str(log_path))

    def wait(self, handles: Sequence[Any]) -> tuple[Any, dict[str, Any] | BaseException]:
        import ray

        ready, _ = ray.wait(list(handles), num_returns=1)
        try:
            return ready[0], ray.get(ready[0])
        except Exception as exc:  # noqa: BLE001 - a crashed worker or node is one stage's failure
            return ready[0], exc
