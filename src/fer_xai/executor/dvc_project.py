"""The study as DVC sees it: the stages ``dvc repro`` would evaluate, whether one is stale, and
recording one whose command ran elsewhere (``dvc commit``, DVC's documented way).

Every call opens the repository afresh and holds DVC's repository lock only for its own short
step, so the driver sees what the finished tasks wrote and a parallel ``dvc status`` still works.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from ..errors import FerXaiError

log = logging.getLogger(__name__)


class DvcProjectError(FerXaiError, RuntimeError):
    """The project's DVC files cannot be read or a stage cannot be recorded; names the stage."""


@dataclass(frozen=True)
class StageNode:
    """One stage of the plan: its DVC address, command lines, folder and the stages it needs."""

    name: str  # DVC address, e.g. ``train_folds@songnet``
    commands: tuple[str, ...]
    wdir: Path  # relative to the project root
    upstream: tuple[str, ...]  # addresses of the plan's stages whose outputs this one reads

    @property
    def base(self) -> str:
        """The stage's name in dvc.yaml (``train_folds`` of ``train_folds@songnet``)."""
        return self.name.split("@", 1)[0].rsplit(":", 1)[-1]


class Start(Enum):
    """What :meth:`DvcProject.begin` decided for a stage whose upstream stages are done."""

    UNCHANGED = "unchanged"  # up to date: nothing to run (dvc repro: "didn't change, skipping")
    RESTORED = "restored"  # DVC's run cache had its outputs: restored, to be committed
    RUN = "run"  # stale: outputs removed, the command must run


class DvcProject:
    """DVC operations on the project at ``root`` (the driver's only door to DVC)."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()

    def _repo(self):
        from dvc.exceptions import DvcException
        from dvc.repo import Repo

        try:
            return Repo(str(self.root))
        except DvcException as exc:
            raise DvcProjectError(f"{self.root}: not a DVC project ({exc})") from exc

    def plan(self, targets: Iterable[str] = ()) -> list[StageNode]:
        """The stages ``dvc repro [targets]`` evaluates, upstream first (DVC's own plan).

        Stages without a command (``.dvc`` data sources) and frozen stages never run; they are
        left out, and so are the edges to them."""
        from dvc.dvcfile import PROJECT_FILE
        from dvc.exceptions import DvcException
        from dvc.repo import lock_repo
        from dvc.repo.reproduce import collect_stages, get_active_graph, plan_repro

        with self._repo() as repo:
            try:
                with lock_repo(repo):
                    graph = get_active_graph(repo.index.graph)
                    stages = collect_stages(repo, list(targets) or [PROJECT_FILE])
                    steps = plan_repro(graph, stages)
            except DvcException as exc:
                raise DvcProjectError(f"{self.root}: cannot read the stages of {list(targets) or 'dvc.yaml'}: "
                                      f"{exc}") from exc
            runnable = {s for s in steps if s.cmd and not s.frozen}
            nodes = []
            for stage in steps:
                if stage not in runnable:
                    continue
                cmd = stage.cmd if isinstance(stage.cmd, list) else stage.cmd.splitlines()
                # DVC's edges go from a stage to the stages whose outputs it depends on.
                upstream = sorted(s.addressing for s in graph.successors(stage) if s in runnable)
                wdir = Path(stage.wdir).resolve().relative_to(self.root)
                nodes.append(StageNode(stage.addressing, tuple(c for c in cmd if c.strip()), wdir, tuple(upstream)))
            return nodes

    def _stage(self, repo, name: str):
        stages = repo.stage.collect(name)
        if len(stages) != 1:
            raise DvcProjectError(f"{self.root}: {name!r} names {len(stages)} stages, expected one")
        return stages[0]

    def begin(self, name: str) -> Start:
        """Decide as ``dvc repro`` does once the stage's upstream stages are done: unchanged, or
        restored from DVC's run cache, or stale, in which case its outputs are removed first
        (DVC's ``Stage.run``), so that a failed command never leaves old outputs that pass for new."""
        from dvc.exceptions import DvcException
        from dvc.repo import lock_repo
        from dvc.stage.cache import RunCacheNotFoundError

        with self._repo() as repo:
            try:
                with lock_repo(repo):
                    stage = self._stage(repo, name)
                    if not stage.changed():
                        return Start.UNCHANGED
                    stage.remove_outs(ignore_remove=False, force=False)
                    try:
                        repo.stage_cache.restore(stage)
                        return Start.RESTORED
                    except RunCacheNotFoundError:
                        return Start.RUN
            except DvcException as exc:
                raise DvcProjectError(f"stage {name}: DVC could not check it: {exc}") from exc

    def commit(self, name: str) -> None:
        """``dvc commit -f <name>``: hash the stage's outputs into the cache and ``dvc.lock``."""
        from dvc.exceptions import DvcException

        with self._repo() as repo:
            try:
                repo.commit(name, force=True)
            except DvcException as exc:
                raise DvcProjectError(f"stage {name}: its command succeeded but `dvc commit` failed: {exc}") from exc
        log.debug("committed %s", name)

    def stale(self, targets: Iterable[str] = ()) -> list[str]:
        """Stages ``dvc status`` reports as changed (for the summary and the tests)."""
        with self._repo() as repo:
            return sorted(repo.status(targets=list(targets) or None))
