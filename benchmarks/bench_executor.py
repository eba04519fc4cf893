"""The Ray executor (`fer-xai repro --executor ray`): its overhead per task, the tiny study on one
vs two workers, and what the paper's study would take on 1, 4 and 16 GPUs.

    .venv/bin/python benchmarks/bench_executor.py overhead [--stages 1 16 64]
    .venv/bin/python benchmarks/bench_executor.py study [--workers 1 2]
    .venv/bin/python benchmarks/bench_executor.py predict [--gpus 1 4 16] [--speedup 1] [--expensive-first]

``overhead``: a generated dvc.yaml of N independent no-op stages (``echo > out``) under one root
stage, run by the executor on a local Ray of two CPUs and by ``dvc repro``; the executor's time
per stage is the slope between the largest and the smallest N (Ray's start-up cancels out).

``study``: the tests' tiny study (6 synthetic subjects, songnet + weinet x 2 folds: stages
split, train_folds, evaluate, explain_folds, heatmaps) by ``dvc repro`` and by the executor with
``--num-cpus`` 1 and 2. Each TensorFlow process uses every core it finds, so on a 2-core machine
two workers overlap start-up and I/O more than they add compute.

``predict``: a list-scheduling simulation of the paper profile's stage graph (12 networks x 5
folds: ``train@m-k`` then ``explain@m-k``; ``evaluate`` after all trainings, ``heatmaps`` after
all explanations, then ``compare`` and ``report``) on G identical workers, each unit costing its
measured time on this CPU (the table in the README's "The paper's full study", or the JSON of
``bench_paper_cost.py --json``) divided by ``--speedup`` (a GPU's speed over this CPU's; 1
gives the figures in "hours of this CPU"). Ready units start longest-chain first, as Ray gives
free workers to pending tasks; prints the makespan next to the two lower bounds, total / G and
the critical path. ``--expensive-first`` lists the networks by cost, most expensive first, as
``train.dvc_stages.per_fold`` can (DVC's plan, and so the executor's order, follows that list).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# Hours on this CPU for the five folds of each network (README, "The paper's full study",
# measured with bench_paper_cost.py at load 4-6): trainings, explanation jobs.
PAPER_HOURS = {
    "alexnet": (2.9, 16), "weinet": (1.5, 8), "songnet": (7.4, 21), "silnet": (4.6, 25), "vgg16": (6.6, 112),
    "vgg19": (5.0, 216), "resnet50": (2.3, 54), "resnet101v2": (3.7, 57), "inceptionv3": (0.6, 64),
    "xception": (1.5, 39), "mobilenetv3": (0.9, 6), "efficientnetv2": (1.5, 6),
}
FOLDS = 5
TAIL_HOURS = {"evaluate": 0.01, "heatmaps": 0.2, "compare": 0.1, "report": 0.02}  # minutes on this CPU


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", FER_XAI_ROOT=str(root), DVC_NO_ANALYTICS="1",
               TF_CPP_MIN_LOG_LEVEL="2", TQDM_DISABLE="1", MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}",
               GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b")
    return env


def _timed(cmd: list[str], root: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, env=_env(root), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def noop_project(root: Path, n: int) -> Path:
    import yaml

    root.mkdir(parents=True)
    env = _env(root)
    subprocess.run(["git", "init", "-q"], cwd=root, env=env, check=True)
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=root, env=env, check=True)
    (root / "params.yaml").write_text("{}\n")
    stages = {"root": {"cmd": "echo root > root.txt", "outs": ["root.txt"]}}
    for i in range(n):
        stages[f"s{i}"] = {"cmd": f"echo {i} > s{i}.txt", "deps": ["root.txt"], "outs": [f"s{i}.txt"]}
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    return root


def overhead(sizes: list[int]) -> dict:
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-executor-") as tmp:
        for n in sizes:
            ray_root = noop_project(Path(tmp) / f"ray{n}", n)
            dvc_root = noop_project(Path(tmp) / f"dvc{n}", n)
            out[n] = {"executor_s": _timed([str(BIN / "fer-xai"), "repro", "--executor", "ray", "--num-cpus", "2"],
                                           ray_root),
                      "dvc_repro_s": _timed([str(BIN / "dvc"), "repro"], dvc_root)}
            print(f"{n + 1:4d} no-op stages: executor {out[n]['executor_s']:6.1f} s, dvc repro "
                  f"{out[n]['dvc_repro_s']:6.1f} s", flush=True)
    lo, hi = min(sizes), max(sizes)
    if hi > lo:
        for key in ("executor_s", "dvc_repro_s"):
            per = (out[hi][key] - out[lo][key]) / (hi - lo)
            print(f"{key.removesuffix('_s')}: {per:.2f} s per stage (slope {lo}..{hi} stages)")
            out[f"{key.removesuffix('_s')}_per_stage_s"] = per
    return out


def study(workers: list[int]) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import TINY_STUDY, build_study
    from e2e.test_ray_executor import STAGES, TINY
    from helpers.dvc_project import make_project

    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-executor-study-") as tmp:
        (Path(tmp) / "template").mkdir()
        template = build_study(Path(tmp) / "template", TINY_STUDY)
        base = make_project(Path(tmp) / "base", template, stages=STAGES, params=TINY)
        runs = [("dvc repro", [str(BIN / "dvc"), "repro"])] + [
            (f"executor, {w} worker(s)", [str(BIN / "fer-xai"), "repro", "--executor", "ray", "--num-cpus", str(w)])
            for w in workers]
        for name, cmd in runs:
            root = Path(tmp) / name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
            shutil.copytree(base, root, symlinks=True)
            out[name] = _timed(cmd, root)
            print(f"{name:24s} {out[name]:6.1f} s", flush=True)
    return out


def _units(costs: dict[str, tuple[float, float]], speedup: float, start_s: float):
    """(name, hours, upstream) of the paper profile's stage graph; ``start_s``: each stage's fixed
    cost (a process importing TensorFlow, loading the data and the model), not sped up."""
    units = []
    start_h = start_s / 3600
    for m, (train_h, explain_h) in costs.items():
        for k in range(1, FOLDS + 1):
            units.append((f"train@{m}-{k}", train_h / FOLDS / speedup + start_h, ()))
            units.append((f"explain@{m}-{k}", explain_h / FOLDS / speedup + start_h, (f"train@{m}-{k}",)))
    trains = tuple(u[0] for u in units if u[0].startswith("train@"))
    explains = tuple(u[0] for u in units if u[0].startswith("explain@"))
    # CPU stages: not sped up by a GPU.
    units += [("evaluate", TAIL_HOURS["evaluate"], trains), ("heatmaps", TAIL_HOURS["heatmaps"], explains),
              ("compare", TAIL_HOURS["compare"], ("heatmaps",)),
              ("report", TAIL_HOURS["report"], ("compare", "evaluate"))]
    return units


def simulate(units, workers: int, order: str = "longest") -> tuple[float, float, float]:
    """(makespan, total / workers, critical path) in hours. ``order``: which ready unit a free
    worker takes: ``longest`` remaining chain first, or ``fifo``, the earliest ready, then the
    first listed (what the executor does: it submits ready stages in DVC's plan order and Ray
    hands queued tasks to free workers in turn)."""
    cost = {n: h for n, h, _ in units}
    ups = {n: u for n, _, u in units}
    index = {n: i for i, (n, _, _) in enumerate(units)}
    downs: dict[str, list[str]] = {n: [] for n in cost}
    for n, u in ups.items():
        for x in u:
            downs[x].append(n)
    chain: dict[str, float] = {}
    for n in reversed([n for n, _, _ in units]):  # units are listed upstream first
        chain[n] = cost[n] + max((chain[d] for d in downs[n]), default=0.0)
    done_at: dict[str, float] = {}
    free = [0.0] * workers
    pending = set(cost)
    while pending:
        ready = [n for n in pending if all(u in done_at for u in ups[n])]
        ready_at = {x: max((done_at[u] for u in ups[x]), default=0.0) for x in ready}
        if order == "longest":
            n = max(ready, key=lambda x: (chain[x], -ready_at[x]))
        else:
            n = min(ready, key=lambda x: (ready_at[x], index[x]))
        start_w = min(range(workers), key=lambda i: free[i])
        start = max(free[start_w], max((done_at[u] for u in ups[n]), default=0.0))
        done_at[n] = free[start_w] = start + cost[n]
        pending.remove(n)
    return max(done_at.values()), sum(cost.values()) / workers, max(chain.values())


def load_costs(path: Path | None) -> dict[str, tuple[float, float]]:
    if path is None:
        return dict(PAPER_HOURS)
    data = json.loads(path.read_text())
    rows = data.get("extrapolation", data)
    return {m: (float(r["train_h"]), float(r["explain_h"])) for m, r in rows.items()}


def predict(gpus: list[int], speedup: float, costs_file: Path | None, start_s: float,
            expensive_first: bool = False) -> dict:
    costs = load_costs(costs_file)
    if expensive_first:  # the order of train.dvc_stages.per_fold, which DVC's plan follows
        costs = dict(sorted(costs.items(), key=lambda kv: -sum(kv[1])))
    units = _units(costs, speedup, start_s)
    out = {}
    label = "hours of this CPU" if speedup == 1 else f"hours at {speedup:g}x this CPU"
    print(f"paper study, {len(units)} stages ({label}, {start_s:g} s start-up per training/explanation):")
    for g in gpus:
        fifo, even, critical = simulate(units, g, "fifo")
        longest, _, _ = simulate(units, g, "longest")
        out[g] = {"makespan_fifo_h": fifo, "makespan_longest_first_h": longest, "total_over_workers_h": even,
                  "critical_path_h": critical}
        print(f"  {g:3d} worker(s): {fifo:8.1f} h in plan order, {longest:8.1f} h longest chain first "
              f"(total/G {even:7.1f} h, critical path {critical:6.1f} h)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--stages", type=int, nargs="+", default=[1, 16, 48])
    s = sub.add_parser("study")
    s.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p = sub.add_parser("predict")
    p.add_argument("--gpus", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--speedup", type=float, default=1.0, help="a worker's speed over this CPU's (a GPU: measure it)")
    p.add_argument("--costs", type=Path, default=None,
                   help="JSON {network: {train_h, explain_h}} for the five folds (default: the README's table)")
    p.add_argument("--stage-start-s", type=float, default=30.0,
                   help="fixed seconds per training/explanation stage (TensorFlow start, data, model; not sped up)")
    p.add_argument("--expensive-first", action="store_true",
                   help="list the networks most expensive first (plan order follows train.dvc_stages.per_fold)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    if args.what == "overhead":
        result = overhead(sorted(args.stages))
    elif args.what == "study":
        result = study(args.workers)
    else:
        result = predict(args.gpus, args.speedup, args.costs, args.stage_start_s, args.expensive_first)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
