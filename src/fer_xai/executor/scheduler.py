"""Run a DVC plan on a backend: every stage whose upstream stages are done and which DVC finds
stale becomes a task; a stage whose task succeeded is recorded with ``dvc commit`` (here, in the
driver, one at a time: DVC's lock); a failed stage is not recorded, stages downstream of it are
skipped, independent ones go on. The next run retries whatever was not recorded."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from .dvc_project import DvcProject, DvcProjectError, StageNode, Start

log = logging.getLogger(__name__)

RAN, RESTORED, UNCHANGED, FAILED, SKIPPED = "ran", "restored", "unchanged", "failed", "skipped"
DONE = (RAN, RESTORED, UNCHANGED)  # downstream stages may start


@dataclass
class StageOutcome:
    stage: str
    status: str
    detail: str = ""
    task: dict[str, Any] = field(default_factory=dict)  # where and when the task ran (task.run_stage_command)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Backend(Protocol):
    def submit(self, node: StageNode) -> Any:
        """Start the stage's task; returns a handle."""

    def wait(self, handles: Sequence[Any]) -> tuple[Any, dict[str, Any] | BaseException]:
        """Block until one of ``handles`` ends: (handle, its result or the error that ended it)."""


def _task_failure(result: dict[str, Any] | BaseException) -> str | None:
    if isinstance(result, BaseException):
        lines = str(result).strip().splitlines()
        return f"task ended with {type(result).__name__}: {lines[-1] if lines else ''}"
    if result.get("returncode") != 0:
        return f"command exited {result.get('returncode')}; see {result.get('log')}"
    return None


def execute(plan: Sequence[StageNode], project: DvcProject, backend: Backend,
            on_outcome: Callable[[StageOutcome], None] = lambda _o: None) -> list[StageOutcome]:
    """Run ``plan`` (upstream first, as :meth:`DvcProject.plan` gives it); one outcome per stage, in plan order."""
    state: dict[str, str] = {}
    outcomes: dict[str, StageOutcome] = {}
    pending = list(plan)
    running: dict[Any, StageNode] = {}

    def finish(outcome: StageOutcome) -> None:
        state[outcome.stage] = outcome.status
        outcomes[outcome.stage] = outcome
        (log.warning if outcome.status in (FAILED, SKIPPED) else log.info)(
            "%s: %s%s", outcome.stage, outcome.status, f" ({outcome.detail})" if outcome.detail else "")
        on_outcome(outcome)

    def commit(node: StageNode, status: str, task: dict[str, Any]) -> None:
        try:
            project.commit(node.name)
        except DvcProjectError as exc:
            finish(StageOutcome(node.name, FAILED, str(exc), task))
            return
        finish(StageOutcome(node.name, status, "", task))

    while pending or running:
        progressed = True
        while progressed:  # start everything that can start, in plan order
            progressed = False
            for node in list(pending):
                upstream = [state.get(u) for u in node.upstream]
                blocked = [u for u in node.upstream if state.get(u) in (FAILED, SKIPPED)]
                if blocked:
                    pending.remove(node)
                    progressed = True
                    finish(StageOutcome(node.name, SKIPPED, f"upstream {', '.join(blocked)} not done"))
                elif all(s in DONE for s in upstream):
                    pending.remove(node)
                    progressed = True
                    try:
                        start = project.begin(node.name)
                    except DvcProjectError as exc:
                        finish(StageOutcome(node.name, FAILED, str(exc)))
                        continue
                    if start is Start.UNCHANGED:
                        finish(StageOutcome(node.name, UNCHANGED))
                    elif start is Start.RESTORED:
                        commit(node, RESTORED, {})
                    else:
                        running[backend.submit(node)] = node
                        log.info("%s: submitted", node.name)
        if not running:
            break
        handle, result = backend.wait(list(running))
        node = running.pop(handle)
        failure = _task_failure(result)
        task = result if isinstance(result, dict) else {}
        if failure:
            finish(StageOutcome(node.name, FAILED, failure, task))
        else:
            commit(node, RAN, task)
    return [outcomes[n.name] for n in plan if n.name in outcomes]
