"""Shared fixtures: an isolated project root per test, real faces from installed packages."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TQDM_DISABLE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = REPO.parent / "shared" / "reference"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A throw-away project root: params.yaml + dvc.yaml, its own MLflow store."""
    from fer_xai import paths

    root = tmp_path / "proj"
    root.mkdir()
    (root / "dvc.yaml").write_text("stages: {}\n")
    (root / "params.yaml").write_text("{}\n")
    monkeypatch.setenv("FER_XAI_ROOT", str(root))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for var in ("MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("FER_XAI_PARAMS", raising=False)
    paths.repo_root.cache_clear()
    import mlflow

    # mlflow keeps the last URI in a module global; each test gets its own store.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield root
    paths.repo_root.cache_clear()
    # mlflow.set_experiment exports MLFLOW_EXPERIMENT_ID; do not let it leak into later tests.
    for var in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        os.environ.pop(var, None)


def write_params(root: Path, data: dict) -> Path:
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def astronaut_gray() -> np.ndarray:
    """A real frontal face photograph shipped with scikit-image (512x512)."""
    import cv2
    import skimage.data

    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


# A tiny study, built once per session: synthetic faces -> prepare -> split.
TINY_STUDY = {
    "synth": {"seed": 5, "n_subjects": 6, "intensities": [0.8, 1.0], "image_size": 128, "workers": 1},
    "prepare": {"size": 64, "workers": 1, "min_face_px": 32, "min_image_px": 32},
    "split": {"n_folds": 3, "seed": 1},
    "train": {
        "models": ["songnet"], "folds": [1, 2, 3], "batch_size": 16, "allow_random_init": True,
        "dvc_stages": {"per_fold": ["songnet"], "per_network": []},
        "networks": {
            "songnet": {"input_size": 32, "epochs": 2, "optimizer": "adam", "learning_rate": 1e-3},
            "mobilenetv3": {"input_size": 32, "epochs": 1, "optimizer": "adam", "learning_rate": 1e-3,
                            "pretrained": "imagenet"},
        },
    },
}


@pytest.fixture(scope="session")
def tiny_study_template(tmp_path_factory):
    """Prepared faces and folds of a 6-subject synthetic set (session-wide, read-only)."""
    return build_study(tmp_path_factory.mktemp("tiny_study"), TINY_STUDY, split_folds=True)


def build_study(root: Path, params: dict, split_folds: bool = True) -> Path:
    """Run synth -> prepare (-> split) with ``params`` in the project root ``root``."""
    from fer_xai import paths
    from fer_xai.config import load_params
    from fer_xai.stages import prepare, split
    from fer_xai.stages import synth as synth_stage

    (root / "dvc.yaml").write_text("stages: {}\n")
    params_file = write_params(root, params)
    old = os.environ.get("FER_XAI_ROOT")
    os.environ["FER_XAI_ROOT"] = str(root)
    paths.repo_root.cache_clear()
    try:
        loaded = load_params(params_file)
        synth_stage.run(loaded, progress=False)
        prepare.run(loaded)
        if split_folds:
            split.run(loaded)
    finally:
        if old is None:
            os.environ.pop("FER_XAI_ROOT", None)
        else:
            os.environ["FER_XAI_ROOT"] = old
        paths.repo_root.cache_clear()
    return root


@pytest.fixture
def tiny_study(tiny_study_template, project):
    """A private copy of the tiny study as the current project root."""
    import shutil

    for name in ("data", "metrics", "params.yaml"):
        src = tiny_study_template / name
        if src.is_dir():
            shutil.copytree(src, project / name, dirs_exist_ok=True)
        elif src.exists():
            shutil.copy2(src, project / name)
    return project


def mlflow_run_env(experiment: str = "fer-xai") -> dict:
    """Environment for an ``mlflow run`` subprocess against the test's store.

    The project's experiment is created first (by fer_xai.tracking, with its artifact location
    under the project): ``mlflow run --experiment-name`` would otherwise create it with artifacts
    in ``./mlruns`` of the repository it runs.
    """
    import sys

    from fer_xai.tracking import configure

    configure(experiment)
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")}
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"
    return env
