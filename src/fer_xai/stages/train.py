"""``fer-xai train --model M --fold K``: train one network on all folds but K, test on fold K.

Outputs ``<train.out_dir>/<model>/fold<k>/``: ``model.keras``, ``metrics.json``,
``predictions.csv`` (per test image; the explanation stage picks its positives there),
``history.csv``, ``confusion.png``, ``report.txt``. One MLflow run per training (tagged with
model and fold, grouped by network) holds params, per-epoch curves, test metrics, figures and
the model; the model is registered as a version of ``fer-<model>`` with alias ``fold<k>``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from .. import layout
from ..config import Params
from ..outputs import staged_dir
from ..provenance import data_version
from ..training import evaluation
from ..training.augment import make_dataset
from ..training.data import load_split
from ..training.fit import NetworkCache, epoch_logger, predict
from ..training.tuned import network_recipe
from .options import no_mlflow_option

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model_id: str
    fold: int
    out_dir: Path
    metrics: dict
    run_id: str | None = None
    model_version: str | None = None


def train_one(params: Params, model_id: str, fold: int, *, epochs: int | None = None,
              use_mlflow: bool = True, cache: NetworkCache | None = None) -> TrainResult:
    """Train ``model_id`` on every fold but ``fold`` and test it on ``fold``.

    ``cache``: reuse the network built for an earlier fold in this process (reset to its
    initial state) instead of building and tracing it again.
    """
    import keras

    tp = params.train
    if model_id not in tp.networks:
        raise click.ClickException(f"unknown model {model_id!r}; train.networks has {sorted(tp.networks)}")
    # params.yaml's recipe, or the tuned epochs/learning rate when train.use_tuned is true.
    cfg, tuned_source = network_recipe(params, model_id)
    if epochs:
        cfg = cfg.model_copy(update={"epochs": epochs})
    out = layout.train_fold_dir(params, model_id, fold)
    guard = params.output_guard("train").with_known_names(layout.FOLD_FILES)
    guard.check(out)  # before any work: a folder the stage may not replace fails fast
    train, test = _load_fold(params, model_id, fold, cfg.input_size)

    compiled = (cache or NetworkCache()).get(params, model_id, cfg)
    model, pretrained, batch = compiled.model, compiled.pretrained, compiled.batch_size
    aug = tp.augment_for(model_id)
    ds_train = make_dataset(train.images, train.labels, train.core_boxes(), batch_size=batch, seed=tp.seed,
                            cfg=aug, training=True)

    run_params = {
        "model": model_id, "fold": fold, **cfg.model_dump(), "batch_size_used": batch,
        "pretrained": pretrained, "weights_path": compiled.weights_path or "",
        "tuned_params_source": tuned_source,
        "seed": tp.seed, "input_norm": tp.input_norm,
        "mixed_precision": tp.mixed_precision, "op_determinism": tp.op_determinism,
        "random_init_bn_momentum": tp.random_init_bn_momentum, "augment": aug.model_dump(),
        "n_train": len(train), "n_test": len(test), "params_count": model.count_params(),
    }
    dv = data_version(params.prepare.out_dir, params.split.out_file)
    tags = {"model": model_id, "fold": str(fold), "pretrained": str(pretrained).lower(), "data_version": dv,
            "mlflow.runName": f"{model_id}-fold{fold}"}
    result = TrainResult(model_id, fold, out, {})
    with staged_dir(out, guard) as tmp:
        with _tracking(params, use_mlflow, run_params, tags, f"{model_id}-fold{fold}") as run:
            if use_mlflow:
                _log_inputs(params, train, test, fold, dv)
            hist, probs, metrics, train_seconds = _fit_and_test(
                model, ds_train, len(train), test, cfg.epochs, batch, pretrained, use_mlflow,
                f"train {model_id} fold {fold}")
            _write_fold_files(tmp, model, test, probs, hist, metrics, f"{model_id} fold {fold}")
            if use_mlflow:
                _describe_run(model_id, fold, metrics)
                _log_fold_run(tmp, run, result, model, test, probs, metrics, dv=dv, pretrained=pretrained,
                              register=tp.register_models, photo=params if tp.register_photo_model else None)
    result.metrics = metrics
    log.info("%s fold %d: test accuracy %.4f, macro F1 %.4f (%.1f s training) -> %s", model_id, fold,
             metrics["test_accuracy"], metrics["test_macro_f1"], train_seconds, out)
    if cache is None:
        keras.backend.clear_session()
    return result


def _load_fold(params: Params, model_id: str, fold: int, size: int):
    """(training, test) images of ``fold`` at ``size`` px; an empty side is an error."""
    prepared = layout.prepared_dir(params)
    folds_csv = layout.folds_file(params)
    t0 = time.perf_counter()
    train, test = load_split(prepared, folds_csv, fold, size)
    if len(train) == 0 or len(test) == 0:
        raise click.ClickException(f"fold {fold}: {len(train)} training and {len(test)} test images")
    log.info("%s fold %d: %d training, %d test images at %d px from %s and %s (loaded in %.1f s)",
             model_id, fold, len(train), len(test), size, prepared, folds_csv, time.perf_counter() - t0)
    return train, test


def _fit_and_test(model, ds_train, n_train: int, test, epochs: int, batch: int, pretrained: bool,
                  use_mlflow: bool, desc: str):
    """Fit, then predict the test fold: (history, probabilities, test metrics, training seconds)."""
    t1 = time.perf_counter()
    hist = model.fit(ds_train, epochs=epochs, verbose=0, callbacks=[epoch_logger(use_mlflow), _progress_bar(desc)])
    train_seconds = time.perf_counter() - t1
    probs = predict(model, test.images, batch)
    metrics = evaluation.test_metrics(test.labels, probs)
    metrics.update({"train_seconds": round(train_seconds, 2),
                    "train_images_per_second": round(n_train * epochs / max(train_seconds, 1e-9), 1),
                    "epochs": epochs, "pretrained": pretrained})
    return hist, probs, metrics, train_seconds


def _tracking(params: Params, use_mlflow: bool, run_params: dict, tags: dict, run_name: str):
    """The training's MLflow run, or a context that tracks nothing."""
    if not use_mlflow:
        from contextlib import nullcontext

        return nullcontext()
    from ..tracking import stage_run

    return stage_run("train", params.tracking.experiment, params=run_params, run_name=run_name, tags=tags)


def _log_inputs(params: Params, train, test, fold: int, dv: str) -> None:
    """The fold's training and test faces as the run's dataset inputs (the UI's Dataset column)."""
    from ..training.inputs import log_fold_inputs

    log_fold_inputs(train, test, fold=fold, data_version=dv, manifest=layout.prepared_manifest(params))


def _describe_run(model_id: str, fold: int, metrics: dict) -> None:
    """The run's description lists its headline metrics; `fer-xai compare` adds the Ekman ones."""
    import mlflow

    from ..mlflow_ui import DESCRIPTION_TAG, headline_description

    mlflow.set_tag(DESCRIPTION_TAG, headline_description(f"{model_id} fold {fold}", metrics))


def _write_fold_files(tmp: Path, model, test, probs: np.ndarray, hist, metrics: dict, title: str) -> None:
    """Every file of :data:`fer_xai.layout.FOLD_FILES` into the staging folder ``tmp``;
    ``metrics`` gains the confusion matrix."""
    import pandas as pd

    cm = evaluation.confusion(test.labels, probs)
    metrics["confusion_matrix"] = cm.tolist()
    model.save(tmp / layout.MODEL_FILE)
    evaluation.predictions_frame(test.ids, test.subjects, test.labels, probs).to_csv(
        tmp / layout.PREDICTIONS, index=False)
    pd.DataFrame(hist.history).rename_axis("epoch").to_csv(tmp / layout.HISTORY)
    (tmp / layout.REPORT_TEXT).write_text(evaluation.report_text(test.labels, probs))
    evaluation.plot_confusion(cm, f"{title}: accuracy {metrics['test_accuracy']:.3f}", tmp / layout.CONFUSION)
    (tmp / layout.FOLD_METRICS).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def _log_fold_run(tmp: Path, run, result: TrainResult, model, test, probs: np.ndarray, metrics: dict, *,
                  dv: str, pretrained: bool, register: bool, photo: Params | None = None) -> None:
    """Test metrics, the fold's files and the model into the training's run; registered as
    ``fer-<model>@fold<k>`` when ``register`` (``result`` gains the run id and version), and with
    ``photo`` (the study's params) its photo model as ``fer-<model>-photo@fold<k>`` too."""
    import mlflow

    mlflow.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))
                        and not isinstance(v, bool)})
    for name in (layout.FOLD_METRICS, layout.PREDICTIONS, layout.HISTORY, layout.REPORT_TEXT, layout.CONFUSION):
        mlflow.log_artifact(str(tmp / name))
    info = _log_model(model, test.images[:2], probs[:2])
    result.run_id = run.info.run_id
    if register:
        from ..registry import register_fold_model

        tags = {"data_version": dv, "test_accuracy": f"{metrics['test_accuracy']:.4f}",
                "pretrained": str(pretrained).lower(), "run_id": run.info.run_id}
        result.model_version = register_fold_model(info.model_uri, result.model_id, result.fold, tags)
        mlflow.set_tag("registered_version", result.model_version)
        if photo is not None:
            _register_photo_model(tmp / layout.MODEL_FILE, photo, result,
                                  {**tags, "keras_version": result.model_version})


def _register_photo_model(keras_file: Path, params: Params, result: TrainResult, tags: dict) -> None:
    """The fold's photo model (:mod:`fer_xai.serving.photo_model`: base64 photos in, expression and
    face box out) into the run, registered as ``fer-<model>-photo@fold<k>``."""
    from importlib.metadata import version

    import mlflow

    from ..registry import photo_registered_name, register_fold_model
    from ..serving.photo_model import log_photo_model

    t0 = time.perf_counter()
    info = log_photo_model(keras_file, params, result.model_id, result.fold,
                           [*model_requirements(), f"fer-xai=={version('fer-xai')}"])
    name = photo_registered_name(result.model_id)
    photo_version = register_fold_model(info.model_uri, result.model_id, result.fold, tags, name=name)
    mlflow.set_tag("registered_photo_version", photo_version)
    log.info("%s fold %d: photo model %s version %s (%.1f s)", result.model_id, result.fold, name, photo_version,
             time.perf_counter() - t0)


def _progress_bar(desc: str):
    """A tqdm bar over all training batches (epochs x steps); TQDM_DISABLE=1 hides it."""
    import keras
    from tqdm.auto import tqdm

    class Progress(keras.callbacks.Callback):
        bar = None

        def on_train_begin(self, logs=None):
            epochs, steps = self.params.get("epochs") or 0, self.params.get("steps") or 0
            self.bar = tqdm(total=epochs * steps or None, desc=desc, unit="batch", leave=False)

        def on_train_batch_end(self, batch, logs=None):
            self.bar.update(1)

        def on_epoch_end(self, epoch, logs=None):
            self.bar.set_postfix(epoch=epoch + 1, loss=f"{(logs or {}).get('loss', float('nan')):.3f}")

        def on_train_end(self, logs=None):
            self.bar.close()

    return Progress()


def _log_model(model, example: np.ndarray, example_probs: np.ndarray):
    """Log the model with its signature (input: (-1, S, S, 1) float32 gray faces in [0, 255];
    output: (-1, 6) class probabilities), inferred from test images and the probabilities the
    model gave them. Not passing an input example spares MLflow's reload-and-predict check of it
    (3-4 s per fold for MobileNetV3; the model was just evaluated on the whole test fold)."""
    import mlflow.tensorflow
    from mlflow.models import infer_signature

    signature = infer_signature(example[..., None].astype(np.float32), example_probs.astype(np.float32))
    return mlflow.tensorflow.log_model(model, name="model", signature=signature,
                                       pip_requirements=model_requirements())


def model_requirements() -> list[str]:
    """What a registered model needs to load: pinned here, because MLflow's inference re-imports
    the model in a subprocess (10-20 s per training on 2 cores)."""
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for dist in ("tensorflow-cpu", "tensorflow", "keras", "mlflow", "numpy"):
        try:
            reqs.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            continue
    return reqs


@click.command("train")
@click.option("--model", "model_id", required=True, help="Network id, e.g. weinet (see `fer-xai models`).")
@click.option("--fold", type=int, default=None,
              help="Held-out test fold (1-based); default: every fold of train.folds, one after another.")
@click.option("--epochs", type=int, default=None, help="Override the network's epochs for this run only.")
@no_mlflow_option
@click.pass_obj
def cli(obj, model_id: str, fold: int | None, epochs: int | None, no_mlflow: bool) -> None:
    """Train one network on all folds but FOLD and test it on FOLD (default: each fold in turn)."""
    params: Params = obj.params
    try:
        folds = params.folds_to_run(fold)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    cache = NetworkCache()  # the network is built and traced once for all these folds
    for k in folds:
        res = train_one(params, model_id, k, epochs=epochs or None, use_mlflow=not no_mlflow, cache=cache)
        click.echo(json.dumps({"model": model_id, "fold": k, "test_accuracy": res.metrics["test_accuracy"],
                               "run_id": res.run_id, "version": res.model_version}))
