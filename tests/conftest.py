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
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("FER_XAI_PARAMS", raising=False)
    paths.repo_root.cache_clear()
    import mlflow

    # mlflow keeps the last URI in a module global; each test gets its own store.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield root
    paths.repo_root.cache_clear()


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
