"""The Ray executor's parts that need neither Ray nor a study: scheduling over a stage graph with
a fake backend, resources per stage kind, the stage environment, the reaper, the record."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_xai.config import ExecutorParams, StageResources
from fer_xai.executor import scheduler
from fer_xai.executor.dvc_project import DvcProjectError, StageNode, Start
from fer_xai.executor.reaper import start_guarded
from fer_xai.executor.record import format_table
from fer_xai.executor.resources import InfeasibleStageError, check_feasible, ray_options, stage_resources
from fer_xai.executor.task import stage_env


def node(name: str, *upstream: str, cmd: str = "true") -> StageNode:
    return StageNode(name, (cmd,), Path("."), tuple(upstream))


# a -> b1, b2 -> c ; a -> d (d independent of b*)
PLAN = [node("a"), node("b@1", "a"), node("b@2", "a"), node("d", "a"), node("c", "b@1", "b@2")]


class FakeProject:
    def __init__(self, unchanged=(), restored=(), commit_fails=()):
        self.unchanged, self.restored, self.commit_fails = set(unchanged), set(restored), set(commit_fails)
        self.begun: list[str] = []
        self.committed: list[str] = []

    def begin(self, name):
        self.begun.append(name)
        if name in self.unchanged:
            return Start.UNCHANGED
        return Start.RESTORED if name in self.restored else Start.RUN

    def commit(self, name):
        if name in self.commit_fails:
            raise DvcProjectError(f"stage {name}: commit failed")
        self.committed.append(name)


class FakeBackend:
    """Tasks end in submission order; ``fail`` names stages whose command exits 1, ``crash``
    those whose task raises (a dead worker)."""

    def __init__(self, fail=(), crash=()):
        self.fail, self.crash = set(fail), set(crash)
        self.submitted: list[str] = []
        self.running_at_submit: list[int] = []
        self._live: list[str] = []

    def submit(self, n):
        self.running_at_submit.append(len(self._live))
        self.submitted.append(n.name)
        self._live.append(n.name)
        return n.name

    def wait(self, handles):
        assert set(handles) == set(self._live)
        name = self._live.pop(0)
        if name in self.crash:
            return name, RuntimeError("worker died\nray.exceptions.WorkerCrashedError: boom")
        return name, {"stage": name, "returncode": 1 if name in self.fail else 0, "log": f"{name}.log"}


def _statuses(outcomes):
    return {o.stage: o.status for o in outcomes}


def test_every_stage_runs_after_its_upstream_and_is_committed_once():
    project, backend = FakeProject(), FakeBackend()
    outcomes = scheduler.execute(PLAN, project, backend)
    assert _statuses(outcomes) == dict.fromkeys(["a", "b@1", "b@2", "d", "c"], "ran")
    assert sorted(project.committed) == sorted(n.name for n in PLAN)
    order = backend.submitted
    for n in PLAN:
        for up in n.upstream:  # submitted only once the upstream stage was committed
            assert project.committed.index(up) < order.index(n.name)
    # b@1, b@2 and d were all running together.
    assert max(backend.running_at_submit) == 2


def test_a_failed_stage_skips_only_what_needs_it_and_is_not_committed():
    project, backend = FakeProject(), FakeBackend(fail={"b@1"})
    outcomes = scheduler.execute(PLAN, project, backend)
    assert _statuses(outcomes) == {"a": "ran", "b@1": "failed", "b@2": "ran", "d": "ran", "c": "skipped"}
    assert "b@1" not in project.committed and "c" not in project.begun
    detail = {o.stage: o.detail for o in outcomes}
    assert "exited 1" in detail["b@1"] and "b@1" in detail["c"]


def test_a_crashed_task_and_a_failed_commit_are_failures():
    project, backend = FakeProject(commit_fails={"d"}), FakeBackend(crash={"b@2"})
    outcomes = {o.stage: o for o in scheduler.execute(PLAN, project, backend)}
    assert outcomes["b@2"].status == "failed" and "WorkerCrashedError" in outcomes["b@2"].detail
    assert outcomes["d"].status == "failed" and "commit failed" in outcomes["d"].detail
    assert outcomes["c"].status == "skipped"


def test_unchanged_and_restored_stages_run_nothing():
    project, backend = FakeProject(unchanged={"a", "d"}, restored={"b@1"}), FakeBackend()
    outcomes = scheduler.execute(PLAN, project, backend)
    assert _statuses(outcomes) == {"a": "unchanged", "b@1": "restored", "b@2": "ran", "d": "unchanged", "c": "ran"}
    assert backend.submitted == ["b@2", "c"]
    assert "a" not in project.committed and "b@1" in project.committed


def test_resources_by_stage_name_then_command_then_default():
    params = ExecutorParams(resources={"default": StageResources(num_cpus=2), "train": StageResources(num_gpus=1),
                                       "explain_folds": StageResources(num_cpus=3)})
    assert stage_resources(node("train_folds@m", cmd="fer-xai train --model m"), params).num_gpus == 1
    assert stage_resources(node("explain_folds@m", cmd="fer-xai explain --model m"), params).num_cpus == 3
    assert stage_resources(node("heatmaps", cmd="fer-xai heatmaps"), params).num_cpus == 2
    assert stage_resources(node("x", cmd="fer-xai -v -S a=1 train"), params).num_gpus == 1


def test_gpus_are_dropped_without_gpus_and_infeasible_demands_are_named():
    spec = StageResources(num_cpus=1, num_gpus=1, memory_gib=1, resources={"disk": 1})
    assert ray_options(spec, cluster_gpus=0)["num_gpus"] == 0
    opts = ray_options(spec, cluster_gpus=2)
    assert opts == {"num_cpus": 1, "num_gpus": 1, "memory": 1024**3, "resources": {"disk": 1}}
    nodes = [{"CPU": 4, "GPU": 0, "memory": 8e9, "disk": 1}, {"CPU": 1, "GPU": 1, "memory": 8e9}]
    with pytest.raises(InfeasibleStageError, match="stage train@m asks for CPU=1, GPU=1"):
        check_feasible("train@m", opts, nodes)
    check_feasible("train@m", opts, [*nodes, {"CPU": 1, "GPU": 1, "memory": 2e9, "disk": 2}])


def test_stage_env_keeps_the_workers_devices_and_drops_rays_thread_pin():
    worker = {"CUDA_VISIBLE_DEVICES": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin", "RAY_X": "y"}
    env = stage_env(worker, {"PATH": "/venv/bin:/usr/bin", "MLFLOW_TRACKING_URI": "http://h:1"}, Path("/p"), "s@1")
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and "OMP_NUM_THREADS" not in env
    assert env["PATH"] == "/venv/bin:/usr/bin" and env["MLFLOW_TRACKING_URI"] == "http://h:1"
    assert env["DVC_ROOT"] == "/p" and env["DVC_STAGE"] == "s@1"


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("children_too", [False, True], ids=["starter", "starter_and_its_children"])
def test_a_guarded_command_and_its_children_die_when_their_starter_is_killed(tmp_path, children_too):
    # A starter process runs a guarded shell that starts a grandchild; SIGKILL the starter (after,
    # as Ray does when a worker ends, every direct child of it).
    pidfile = tmp_path / "pids"
    starter = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        "from fer_xai.executor.reaper import start_guarded\n"
        f"g = start_guarded(['/bin/sh', '-c', 'sleep 300 & echo $$ $! > {pidfile}; wait'])\n"
        "time.sleep(300)\n")])
    deadline = time.monotonic() + 60
    while not (pidfile.exists() and len(pidfile.read_text().split()) == 2):
        assert time.monotonic() < deadline, "the guarded command never started"
        time.sleep(0.1)
    shell, grandchild = map(int, pidfile.read_text().split())
    assert _alive(shell) and _alive(grandchild)
    children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(int(p.name)) == starter.pid]
    if children_too:  # first, as Ray may: the children, then the worker
        assert shell in children
        for pid in children:
            os.kill(pid, 9)
    starter.kill()
    starter.wait()
    deadline = time.monotonic() + 20
    while (_alive(shell) or _alive(grandchild)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(shell) and not _alive(grandchild)


def test_a_guarded_command_returns_its_exit_status():
    g = start_guarded(["/bin/sh", "-c", "exit 3"])
    assert g.wait() == 3
    g.stop()
    assert g.proc.returncode == 3


def test_the_table_says_where_each_stage_ran():
    outcomes = [scheduler.StageOutcome("train@m-1", "ran", "", {"hostname": "gpu7", "node_ip": "10.0.0.7",
                                                                 "node_id": "abcdef123456", "gpu_ids": ["0"],
                                                                 "started": 10.0, "ended": 12.5}),
                scheduler.StageOutcome("c", "skipped", "upstream train@m-1 not done")]
    table = format_table(outcomes)
    assert "gpu7 10.0.0.7 node abcdef12 gpu 0" in table and "2.5" in table
    assert "c: upstream train@m-1 not done" in table


def test_the_executors_params_have_defaults_and_reject_typos():
    from fer_xai.config import Params

    params = Params()
    assert params.executor.resources["train"].num_gpus == 1 and params.executor.mlflow_host == "127.0.0.1"
    with pytest.raises(ValueError, match="num_gpu"):
        Params.model_validate({"executor": {"resources": {"train": {"num_gpu": 1}}}})
    assert os.fspath(params.output_claims()["executor.out_dir"]).endswith("logs/executor")
