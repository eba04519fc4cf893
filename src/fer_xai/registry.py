"""The MLflow model registry: each fold model is a version of ``fer-<model>`` with alias ``fold<k>``.

Later stages load ``models:/fer-<model>@fold<k>``, never a file path. The alias is set only
after the version exists and is READY, so it never points to a half-written model.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def registered_name(model_id: str) -> str:
    return f"fer-{model_id}"


def fold_alias(fold: int) -> str:
    return f"fold{fold}"


def fold_model_uri(model_id: str, fold: int) -> str:
    return f"models:/{registered_name(model_id)}@{fold_alias(fold)}"


def register_fold_model(model_uri: str, model_id: str, fold: int, tags: dict[str, Any]) -> str:
    """Register ``model_uri`` as a new version, tag it, then point ``fold<k>`` at it; returns the version."""
    import mlflow
    from mlflow.tracking import MlflowClient

    name = registered_name(model_id)
    all_tags = {"model": model_id, "fold": str(fold), **{k: str(v) for k, v in tags.items()}}
    mv = mlflow.register_model(model_uri, name, await_registration_for=300, tags=all_tags)
    client = MlflowClient()
    mv = client.get_model_version(name, mv.version)
    if mv.status != "READY":
        raise RuntimeError(f"model version {name} v{mv.version} is {mv.status}, not READY: alias not moved")
    client.set_registered_model_alias(name, fold_alias(fold), mv.version)
    log.info("registered %s version %s as @%s", name, mv.version, fold_alias(fold))
    return str(mv.version)


def fold_model_version(model_id: str, fold: int):
    from mlflow.tracking import MlflowClient

    return MlflowClient().get_model_version_by_alias(registered_name(model_id), fold_alias(fold))


def load_fold_model(model_id: str, fold: int):
    """The Keras model registered for (model, fold)."""
    return load_model_uri(fold_model_uri(model_id, fold))


def load_model_uri(uri: str):
    import mlflow.tensorflow

    from .models import preprocess  # noqa: F401  (registers the zoo's custom layers for loading)

    return mlflow.tensorflow.load_model(uri)


def fold_run_id(model_id: str, fold: int) -> str:
    """The training run that produced the model registered as ``fer-<model>@fold<k>``."""
    return fold_model_version(model_id, fold).run_id
