"""A project copied from the tiny study with one tracked, registered training in its own store."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

_ISOLATED = ("MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID",
             "FER_XAI_PARAMS")


def trained_store(template: Path, root: Path, *cli_args: str) -> str:
    """Copy ``template`` to ``root`` and run ``fer-xai <cli_args>`` (default: train songnet fold 1)
    there into ``root/mlflow.db``; returns that store's tracking URI."""
    from click.testing import CliRunner

    from fer_xai import paths
    from fer_xai.cli import main

    shutil.copytree(template, root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    args = cli_args or ("train", "--model", "songnet", "--fold", "1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FER_XAI_ROOT", str(root))
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        for var in _ISOLATED:
            mp.delenv(var, raising=False)
        paths.repo_root.cache_clear()
        import mlflow

        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            res = CliRunner().invoke(main, ["--params", str(root / "params.yaml"), *args], catch_exceptions=False)
            assert res.exit_code == 0, res.output
        finally:
            paths.repo_root.cache_clear()
            for var in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
                os.environ.pop(var, None)
    return uri
