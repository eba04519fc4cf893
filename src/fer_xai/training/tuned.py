"""The tuned values of one network, ``<tune.out_dir>/best/<model>.yaml``, and how training uses them.

``fer-xai tune`` writes the file; ``fer-xai train`` reads it only when ``train.use_tuned`` is
true, and records where its epochs and learning rate came from (``tuned_params_source``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml
from pydantic import ValidationError

from .. import layout
from ..config import NetworkTrainParams, Params
from ..errors import FerXaiError
from ..paths import repo_root, write_text_atomic

log = logging.getLogger(__name__)

TUNED_KEYS = ("epochs", "learning_rate")  # what a study searches and training takes from the file
RECIPE_KEYS = ("input_size", "optimizer", "batch_size", "pretrained")  # fixed during the study
PARAMS_SOURCE = "params.yaml"


class TunedFileError(FerXaiError):
    """The tuned-values file ``train.use_tuned`` asks for is missing, unreadable, for another network or invalid."""


def display_path(path: Path) -> str:
    """``path`` relative to the project root when inside it (what runs record)."""
    try:
        return str(path.resolve().relative_to(repo_root()))
    except ValueError:
        return str(path)


def write_best(path: Path, doc: dict) -> Path:
    """Write the tuned-values file atomically (a failure leaves the previous file intact)."""
    header = (f"# Tuned by `fer-xai tune --model {doc['model']}` (study {doc['study']}).\n"
              "# `fer-xai train` uses `params` only when params.yaml sets train.use_tuned: true.\n")
    return write_text_atomic(path, header + yaml.safe_dump(doc, sort_keys=False))


def read_best(path: Path, model_id: str) -> dict:
    """The tuned file's content, checked: the right network and valid ``params``."""
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise TunedFileError(
            f"train.use_tuned is true but {path} does not exist: run `fer-xai tune --model {model_id}` "
            "first, or set train.use_tuned: false") from None
    except yaml.YAMLError as exc:
        raise TunedFileError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("params"), dict):
        raise TunedFileError(f"{path}: expected a mapping with a 'params' section (written by fer-xai tune)")
    if doc.get("model") != model_id:
        raise TunedFileError(f"{path}: tuned for model {doc.get('model')!r}, not {model_id!r}")
    unknown = sorted(set(doc["params"]) - set(TUNED_KEYS))
    if unknown:
        raise TunedFileError(f"{path}: params {unknown} cannot be tuned (allowed: {list(TUNED_KEYS)})")
    return doc


def network_recipe(params: Params, model_id: str) -> tuple[NetworkTrainParams, str]:
    """``train.networks[model_id]``, with the tuned epochs/learning rate when ``train.use_tuned``.

    Returns the recipe and its source: ``"params.yaml"`` or the tuned file's path.
    """
    cfg = params.train.networks[model_id]
    if not params.train.use_tuned:
        return cfg, PARAMS_SOURCE
    path = layout.tuned_file(params, model_id)
    doc = read_best(path, model_id)
    try:
        tuned = NetworkTrainParams.model_validate({**cfg.model_dump(), **doc["params"]})
    except ValidationError as exc:
        raise TunedFileError(f"{path}: invalid tuned params: {exc.errors()[0]['msg']}") from exc
    recipe = doc.get("recipe") or {}
    changed = {k: (recipe[k], getattr(cfg, k)) for k in RECIPE_KEYS if k in recipe and recipe[k] != getattr(cfg, k)}
    if changed:
        log.warning("%s was tuned with another recipe than train.networks.%s now has (%s): consider re-tuning",
                    path, model_id, ", ".join(f"{k}: tuned {a!r}, now {b!r}" for k, (a, b) in changed.items()))
    source = display_path(path)
    log.info("%s: tuned %s from %s (train.use_tuned)", model_id,
             ", ".join(f"{k}={getattr(tuned, k)}" for k in TUNED_KEYS), source)
    return tuned, source
