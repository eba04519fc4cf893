"""A throw-away git + DVC copy of the project around the tiny study, for tests that run the
real `dvc repro` / `mlflow run` command lines in subprocesses."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


# Two networks x two folds, one process per network, 1 epoch, 20 LIME samples: the smallest study
# with every dimension the DVC stages have.
TWO_BY_TWO = {
    "train": {
        "models": ["songnet", "weinet"], "folds": [1, 2],
        "dvc_stages": {"per_fold": [], "per_network": ["songnet", "weinet"]},
        "networks": {
            "songnet": {"input_size": 32, "epochs": 1, "optimizer": "adam", "learning_rate": 1e-3},
            "weinet": {"input_size": 32, "epochs": 1, "optimizer": "adam", "learning_rate": 1e-4},
        },
    },
    "explain": {"positives_per_class": 1, "num_samples": 20, "batch_size": 20, "sheet_faces": 6},
}


def subprocess_env(root: Path, **extra: str) -> dict[str, str]:
    """The venv's commands first on PATH, the project's own MLflow store, no inherited run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_") and k != "FER_XAI_PARAMS"}
    env.update({
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "FER_XAI_ROOT": str(root),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "DVC_NO_ANALYTICS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONHASHSEED": "0",
        "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.org",
        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.org",
        **extra,
    })
    return env


def deep_merge(base: dict, over: dict) -> dict:
    """Merge ``over`` into ``base`` in place (mappings key by key; anything else replaced)."""
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_merge(base[k], v)
        else:
            base[k] = v
    return base


def make_project(root: Path, template: Path, stages: list[str], params: dict | None = None,
                 dvc: bool = True) -> Path:
    """Copy the tiny study ``template`` (data/, metrics/, params.yaml) to ``root`` with the repo's
    source tree, MLproject and ``dvc.yaml`` reduced to ``stages``; params.yaml is the repo's with
    the template's and then ``params`` merged over it; then ``git init`` and ``dvc init``."""
    shutil.copytree(template, root, ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts"))
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("MLproject", "python_env.yaml"):
        shutil.copy2(REPO / name, root / name)
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    missing = [s for s in stages if s not in pipeline["stages"]]
    if missing:
        raise KeyError(f"stages {missing} are not in {REPO / 'dvc.yaml'}")
    pipeline["stages"] = {s: pipeline["stages"][s] for s in stages}
    (root / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    # dvc.yaml interpolates ${section.key} from params.yaml itself (not from fer_xai.config's
    # defaults): start from the repo's full params.yaml, then the tiny study's, then ``params``.
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    deep_merge(raw, yaml.safe_load((root / "params.yaml").read_text()) or {})
    deep_merge(raw, params or {})
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    (root / ".gitignore").write_text("mlflow.db\nmlartifacts/\n")
    if dvc:
        env = subprocess_env(root)
        subprocess.run(["git", "init", "-q"], cwd=root, env=env, check=True)
        subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=root, env=env, check=True)
    return root


def declared_plots(root: Path) -> dict[str, dict | None]:
    """``root``'s dvc.yaml top-level ``plots:`` with ``${...}`` resolved from its params.yaml, as DVC
    resolves them: {plot id (a file, a folder or a name): properties (``y`` may map files to fields)}."""
    import json
    import re

    params = yaml.safe_load((root / "params.yaml").read_text())

    def value(m: re.Match) -> str:
        node = params
        for part in m.group(1).split("."):
            node = node[part]
        return str(node)

    plots = {}
    for entry in yaml.safe_load((root / "dvc.yaml").read_text()).get("plots") or []:
        plot_id, props = (entry, None) if isinstance(entry, str) else next(iter(entry.items()))
        plots[re.sub(r"\$\{([^}]+)\}", value, plot_id)] = json.loads(
            re.sub(r"\$\{([^}]+)\}", value, json.dumps(props)))
    return plots


def plot_sources(plots: dict[str, dict | None]) -> set[str]:
    """The files and folders the plots read: a path id itself, else its ``y`` files."""
    return {src for plot_id, props in plots.items()
            for src in ((props or {}).get("y") if isinstance((props or {}).get("y"), dict) else [plot_id])}


def run(cmd: list[str], root: Path, timeout: float = 900, **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=root, env=subprocess_env(root, **env), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (f"{' '.join(cmd)} exited {proc.returncode}:\n"
                                  f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}")
    return proc


def group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is still running (zombies do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def kill_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group ``proc`` leads (start_new_session), SIGKILL what is left."""
    pgid = proc.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not group_alive(pgid):
            break
    proc.wait(timeout=grace)
    assert not group_alive(pgid), f"processes of group {pgid} survived SIGKILL"
