"""What each stage asks of a Ray node, from ``executor.resources`` in params.yaml."""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping
from typing import Any

from ..config import ExecutorParams, StageResources
from ..errors import FerXaiError
from .dvc_project import StageNode

log = logging.getLogger(__name__)

_GIB = 1024**3


class InfeasibleStageError(FerXaiError, RuntimeError):
    """No node of the cluster can ever run the stage; names it, its demand and the nodes."""


# fer-xai's own options that take a value (fer_xai.cli.main): their value is not the command.
_VALUE_OPTIONS = ("--params", "-S", "--set")


def fer_xai_command(node: StageNode) -> str | None:
    """``train`` for ``fer-xai [-S k=v] train --model m``; None when the stage runs something else."""
    for line in node.commands:
        words = shlex.split(line)
        for i, word in enumerate(words):
            if word.rsplit("/", 1)[-1] != "fer-xai":
                continue
            rest = iter(words[i + 1:])
            for arg in rest:
                if arg in _VALUE_OPTIONS:
                    next(rest, None)
                elif not arg.startswith("-"):
                    return arg
            return None
    return None


def stage_resources(node: StageNode, params: ExecutorParams) -> StageResources:
    """``resources[<base name>]``, else ``resources[<fer-xai command>]``, else ``resources["default"]``."""
    table = params.resources
    for key in (node.base, fer_xai_command(node), "default"):
        if key is not None and key in table:
            return table[key]
    return StageResources()


def ray_options(spec: StageResources, cluster_gpus: float) -> dict[str, Any]:
    """``ray.remote(...).options`` for ``spec``; GPUs are dropped when the cluster has none."""
    opts: dict[str, Any] = {"num_cpus": spec.num_cpus, "num_gpus": spec.num_gpus}
    if spec.num_gpus and not cluster_gpus:
        opts["num_gpus"] = 0
    if spec.memory_gib:
        opts["memory"] = int(spec.memory_gib * _GIB)
    if spec.resources:
        opts["resources"] = dict(spec.resources)
    return opts


def check_feasible(name: str, opts: Mapping[str, Any], nodes: list[Mapping[str, float]]) -> None:
    """Raise :class:`InfeasibleStageError` unless some node's total resources cover ``opts``
    (Ray would otherwise keep the task pending forever)."""
    demand = {"CPU": opts.get("num_cpus", 0), "GPU": opts.get("num_gpus", 0), "memory": opts.get("memory", 0),
              **opts.get("resources", {})}
    demand = {k: v for k, v in demand.items() if v}
    if any(all(node.get(k, 0) >= v for k, v in demand.items()) for node in nodes):
        return
    have = "; ".join(", ".join(f"{k}={v:g}" for k, v in sorted(n.items()) if k in demand) or "nothing asked"
                     for n in nodes) or "no nodes"
    raise InfeasibleStageError(
        f"stage {name} asks for {', '.join(f'{k}={v:g}' for k, v in demand.items())} but no node of the "
        f"cluster has that (nodes: {have}); lower executor.resources in params.yaml or add a node")
