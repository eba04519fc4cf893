"""The MLflow model registry: each fold model is a version of ``fer-<model>`` with alias ``fold<k>``.

Later stages load ``models:/fer-<model>@fold<k>``, never a file path. The alias is set only
after the version exists and is READY, so it never points to a half-written model.

Loading a model runs its code: MLflow's loaders unpickle objects shipped with the model and may
import modules it names. :func:`load_model_uri` therefore accepts only the flavour that
``fer-xai train`` logs (``tensorflow``, model type ``keras``: a Keras 3 ``.keras`` file) and
loads that file itself, with Keras in safe mode, ignoring any pickle the model carries.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import FerXaiError

log = logging.getLogger(__name__)

# What mlflow.tensorflow.log_model writes for a Keras 3 model (fer_xai.stages.train._log_model).
ACCEPTED_FLAVOR, ACCEPTED_MODEL_TYPE = "tensorflow", "keras"
# MLflow adds python_function to every model; fer-xai never loads through it.
GENERIC_FLAVOR = "python_function"
KERAS_FILE = "data/model.keras"


class UntrustedModelError(FerXaiError, ValueError):
    """A model that fer-xai refuses to load; the message names the URI and what it found."""


def registered_name(model_id: str) -> str:
    return f"fer-{model_id}"


def photo_registered_name(model_id: str) -> str:
    """The photo model of ``model_id`` (:mod:`fer_xai.serving.photo_model`), registered with the same aliases."""
    return f"fer-{model_id}-photo"


def fold_alias(fold: int) -> str:
    return f"fold{fold}"


def fold_model_uri(model_id: str, fold: int) -> str:
    return f"models:/{registered_name(model_id)}@{fold_alias(fold)}"


def register_fold_model(model_uri: str, model_id: str, fold: int, tags: dict[str, Any],
                        name: str | None = None) -> str:
    """Register ``model_uri`` as a new version of ``name`` (default ``fer-<model>``), tag it, then
    point ``fold<k>`` at it; returns the version."""
    import mlflow
    from mlflow.tracking import MlflowClient

    name = name or registered_name(model_id)
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


def check_flavors(uri: str, flavors: Mapping[str, Mapping]) -> None:
    """Raise :class:`UntrustedModelError` unless ``flavors`` (of the MLmodel file) are the ones
    ``fer-xai train`` logs."""
    model_type = (flavors.get(ACCEPTED_FLAVOR) or {}).get("model_type")
    if model_type == ACCEPTED_MODEL_TYPE and set(flavors) <= {ACCEPTED_FLAVOR, GENERIC_FLAVOR}:
        return
    found = ", ".join(sorted(flavors)) or "none"
    if ACCEPTED_FLAVOR in flavors:
        found += f" ({ACCEPTED_FLAVOR} model_type {model_type!r})"
    raise UntrustedModelError(
        f"{uri}: refusing to load a model with flavours {found}. Loading a model runs its code, so "
        f"fer-xai accepts only what `fer-xai train` logs: the {ACCEPTED_FLAVOR!r} flavour with model_type "
        f"{ACCEPTED_MODEL_TYPE!r} (a Keras .keras file, loaded in Keras safe mode).")


def load_model_uri(uri: str):
    """The Keras model at ``uri`` (any MLflow model URI), after :func:`check_flavors`.

    The model is downloaded once, so the MLmodel checked and the file loaded are the same
    version even if an alias moves meanwhile. Only ``data/model.keras`` is read, in Keras safe
    mode (no Python lambdas, only registered classes); pickled custom objects that MLflow's own
    loader would unpickle are ignored: the zoo's layers are registered by importing them.
    """
    import mlflow
    from mlflow.models import Model

    from .models.zoo import load_model

    with tempfile.TemporaryDirectory(prefix="fer-xai-model-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        check_flavors(uri, Model.load(str(local)).flavors)
        keras_file = local / KERAS_FILE
        if not keras_file.is_file():
            raise UntrustedModelError(f"{uri}: no {KERAS_FILE} in the model; fer-xai loads Keras 3 .keras "
                                      "files as `fer-xai train` logs them")
        return load_model(keras_file, safe_mode=True, compile=False)


def fold_run_id(model_id: str, fold: int) -> str:
    """The training run that produced the model registered as ``fer-<model>@fold<k>``."""
    return fold_model_version(model_id, fold).run_id
