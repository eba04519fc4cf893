"""``fer-xai explain``: LIME explanations of a registered fold model (paper 4.1).

Pipeline mode, ``--model M --fold K``: loads ``models:/fer-<M>@fold<K>`` from the MLflow registry,
picks up to ``explain.positives_per_class`` predicted positives per class from the fold's
``predictions.csv``, explains each for its predicted class and writes
``<explain.out_dir>/<M>/fold<K>/`` (``explanations.npz``, ``selection.csv``, ``summary.json``,
``sample_sheet.png``; names in :mod:`fer_xai.layout`, the format in :mod:`fer_xai.explain.store`),
then logs that folder to the training's MLflow run under ``explanations/``. ``--method M`` (a name
of ``explain.methods``: Grad-CAM, Integrated Gradients, occlusion, LIME variants, ...; see
:mod:`fer_xai.explain.methods`) explains the same images with M into
``<explain.methods_out_dir>/<M>/<model>/fold<k>/`` (same files; MLflow: ``explanations_<M>/``).

New-images mode, ``--model-uri URI --images DIR --out OUT``: a model that ``fer-xai train`` logged
(any MLflow URI; other flavours are refused, see :func:`fer_xai.registry.load_model_uri`)
explains new images after the same face preprocessing as ``fer-xai prepare``. OUT, outside DIR,
is written atomically: ``explanations.npz``, ``predictions.csv`` (each image's path, prediction,
overlay and figure file), ``overlays/<index>-<path>.png``, ``figures/<index>-<path>.png`` (face and
explanation side by side, colour bar, top three: :mod:`fer_xai.explain.figure`), ``index.html``
(every image and the rejected ones: :mod:`fer_xai.explain.index_page`), ``rejected.csv`` (images
without a usable face) and ``summary.json``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np
import pandas as pd

from .. import layout
from ..config import Params, PrepareParams
from ..datasets.base import display_name
from ..explain.lime_fast import LimeSettings, explain_images
from ..explain.methods import get_explainer, method_names, method_settings
from ..explain.methods.base import as_explanations
from ..explain.predictor import GraphPredictor
from ..explain.select import select_positives
from ..explain.sheet import sample_sheet
from ..explain.store import save_explanations
from ..images import write_png
from ..labels import EXPRESSIONS
from ..outputs import UnsafeOutputError, staged_dir
from .options import no_mlflow_option

log = logging.getLogger(__name__)

# The registered model must reproduce the training's predictions; a few flips are float noise
# at near-ties, more means the registry and predictions.csv come from different trainings.
MAX_PRED_MISMATCH = 0.02


def _settings_summary(params: Params, method: str = layout.PAPER_METHOD) -> dict:
    if method != layout.PAPER_METHOD:
        return {"method": method, "seed": params.explain.seed, "batch_size": params.explain.batch_size,
                **method_settings(method, params.explain).model_dump()}
    skip = ("out_dir", "log_to_mlflow", "methods", "methods_enabled", "methods_out_dir")
    return {k: v for k, v in params.explain.model_dump().items() if k not in skip}


def _explain(params: Params, method: str, predictor, faces: np.ndarray, ids: list[str], labels, progress: str):
    """Explanations of ``faces`` for ``labels`` (None: the predicted classes) by ``method``."""
    if method == layout.PAPER_METHOD:  # the paper's LIME, exactly as it always ran
        return explain_images(predictor, faces, ids, LimeSettings.from_params(params.explain), labels=labels,
                              progress=progress)
    if labels is None:
        step = params.explain.batch_size
        labels = np.array([int(np.argmax(p)) for i in range(0, len(faces), step)
                           for p in predictor(faces[i:i + step, ..., None])], int)
    explainer = get_explainer(method, params.explain)
    result = explainer.explain(predictor, faces, np.asarray(labels), seed=params.explain.seed, image_ids=ids,
                               progress=progress)
    return as_explanations(result, ids)


def _check_method(params: Params, method: str) -> None:
    if method not in method_names(params.explain):
        raise click.UsageError(f"--method {method}: unknown; explain.methods has {method_names(params.explain)}")


def explain_fold(params: Params, model_id: str, fold: int, use_mlflow: bool = True,
                 method: str = layout.PAPER_METHOD) -> dict:
    """Explain one registered fold model with ``method``; returns the summary written to ``summary.json``."""
    from ..registry import fold_model_uri, load_model_uri
    from ..tracking import configure

    params = layout.method_params(params, method)  # method m writes to its own folders
    ep = params.explain
    out = layout.explain_fold_dir(params, model_id, fold)
    guard = params.output_guard("explain").with_known_names(layout.EXPLAIN_FILES)
    guard.check(out)  # before any work: a folder the stage may not replace fails fast
    configure(params.tracking.experiment)
    uri = fold_model_uri(model_id, fold)
    version = _registered_version(uri, model_id, fold)
    pred_path = layout.train_fold_dir(params, model_id, fold) / layout.PREDICTIONS
    if not pred_path.is_file():
        raise click.ClickException(f"{pred_path}: no test predictions for {model_id} fold {fold}; train it first")
    predictions = pd.read_csv(pred_path, dtype={"id": str, "subject": str})
    log.info("loading %s (version %s, run %s)", uri, version.version, version.run_id)
    model = load_model_uri(uri)
    predictor = GraphPredictor(model)
    size = predictor.input_size

    chosen = select_positives(predictions, ep.positives_per_class, ep.seed, model_id, fold)
    from ..prepared import load_prepared

    ps = load_prepared(layout.prepared_dir(params))
    faces, landmarks = ps.faces(chosen["id"], size)
    class_idx = [EXPRESSIONS.index(c) for c in chosen["pred"]]
    log.info("%s fold %d: explaining %d images (%s) at %d px with %s", model_id, fold, len(chosen),
             ", ".join(f"{c} {n}" for c, n in chosen["pred"].value_counts().sort_index().items()), size,
             method if method != layout.PAPER_METHOD else f"LIME, {ep.num_samples} samples each")
    t0 = time.perf_counter()
    expl = _explain(params, method, predictor, faces.astype(np.float32), chosen["id"].tolist(), class_idx,
                    progress=f"explain {model_id} fold {fold} {method}")
    seconds = time.perf_counter() - t0
    mismatch = int(sum(int(np.argmax(e.probs)) != e.label for e in expl))
    if expl and mismatch / len(expl) > MAX_PRED_MISMATCH:
        raise click.ClickException(
            f"{uri} predicts another class than {pred_path} for {mismatch} of {len(expl)} images: the "
            "registered model is not the one that wrote these predictions; rerun the training stage")
    summary = _fold_summary(params, model_id, fold, uri, version, size, chosen, expl, mismatch, seconds, method)
    with staged_dir(out, guard) as tmp:
        _write_fold(tmp, ep.sheet_faces, expl, faces, landmarks, chosen, model_id, fold, size, summary, method)
    log.info("%s fold %d: %d explanations in %.1f s (%.2f s/image) -> %s", model_id, fold, len(expl), seconds,
             summary["seconds_per_image"], out)
    if use_mlflow and ep.log_to_mlflow:
        _log_to_training_run(version.run_id, out, summary, method)
    import keras

    keras.backend.clear_session()  # one process may explain every fold: free this fold's model
    return summary


def _registered_version(uri: str, model_id: str, fold: int):
    """The registry's version behind ``uri``; a missing one says how to train it."""
    from ..registry import fold_model_version

    try:
        return fold_model_version(model_id, fold)
    except Exception as exc:  # MlflowException when the name or alias does not exist
        raise click.ClickException(
            f"{uri}: not in the MLflow registry ({exc.__class__.__name__}); train it first: "
            f"`fer-xai train --model {model_id} --fold {fold}` (or `dvc repro`)") from exc


def _fold_summary(params: Params, model_id: str, fold: int, uri: str, version, size: int, chosen: pd.DataFrame,
                  expl: list, mismatch: int, seconds: float, method: str = layout.PAPER_METHOD) -> dict:
    return {
        "method": method, "model": model_id, "fold": fold, "model_uri": uri, "model_version": str(version.version),
        "run_id": version.run_id, "input_size": size, "n_explained": len(expl),
        "n_correct": int(chosen["correct"].astype(bool).sum()) if len(chosen) else 0,
        "per_class": {c: int((chosen["pred"] == c).sum()) for c in EXPRESSIONS},
        "prediction_mismatches": mismatch, "seconds": round(seconds, 2),
        "seconds_per_image": round(seconds / max(len(expl), 1), 3),
        "mean_superpixels": float(np.mean([len(e.weights) for e in expl])) if expl else 0.0,
        "mean_surrogate_r2": float(np.mean([e.score for e in expl])) if expl else float("nan"),
        "settings": _settings_summary(params, method),
    }


def _write_fold(folder: Path, sheet_faces: int, expl: list, faces: np.ndarray, landmarks: np.ndarray,
                chosen: pd.DataFrame, model_id: str, fold: int, size: int, summary: dict,
                method: str = layout.PAPER_METHOD) -> None:
    """Every file of :data:`fer_xai.layout.EXPLAIN_FILES` into the staging ``folder``."""
    save_explanations(folder / layout.EXPLANATIONS, expl, landmarks, chosen["label"].tolist(), model_id, fold, size,
                      method=None if method == layout.PAPER_METHOD else method)
    chosen.to_csv(folder / layout.SELECTION, index=False)
    if sheet_faces:
        per_class = max(1, sheet_faces // len(EXPRESSIONS))
        maps = np.stack([e.map() for e in expl]) if expl else faces
        write_png(folder / layout.SAMPLE_SHEET,
                  sample_sheet(faces, maps, chosen["pred"].tolist(), chosen["correct"].tolist(), per_class))
    (folder / layout.EXPLAIN_SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")


def _log_to_training_run(run_id: str, out: Path, summary: dict, method: str = layout.PAPER_METHOD) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    # LIME keeps its names; another method m logs under explanations_m/ and explain_m_* metrics.
    tag = "" if method == layout.PAPER_METHOD else f"_{method}"
    client.log_artifacts(run_id, str(out), artifact_path=f"explanations{tag}")
    client.log_metric(run_id, f"explain{tag}_seconds_per_image", summary["seconds_per_image"])
    client.log_metric(run_id, f"explain{tag}_n_images", summary["n_explained"])
    log.info("logged explanations to training run %s", run_id)


# Guard owner of --out: not a params section, so every stage's output (explain.out_dir too) is
# protected from it.
NEW_IMAGES_STAGE = "explain-images"


@dataclass
class NewFaces:
    """The faces found in the new images (``ids``: display paths relative to the images folder)."""

    ids: list[str] = field(default_factory=list)
    faces: list[np.ndarray] = field(default_factory=list)
    landmarks: list[np.ndarray] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)


def _check_apart(images_dir: Path, out: Path) -> None:
    """OUT inside DIR would be read as new images on the next run; DIR inside OUT would be deleted
    when OUT is replaced."""
    images, target = images_dir.resolve(), out.resolve()
    if images.is_relative_to(target) or target.is_relative_to(images):
        raise UnsafeOutputError(
            f"--out {display_name(out)} and --images {display_name(images_dir)} overlap: overlays written into the "
            "images folder would be explained as new images on the next run, and replacing the output would "
            "delete images inside it. Choose an --out outside --images.")


def _find_faces(paths: list[Path], images_dir: Path, pp: PrepareParams, size: int) -> NewFaces:
    """Detect, landmark and align each image as ``fer-xai prepare`` does; unusable ones are rejected."""
    from ..faces.align import FaceError
    from ..faces.preprocess import prepare_image_file
    from ..images import ImageReadError
    from ..prepared import resize_face, scale_landmarks

    found = NewFaces()
    for p in paths:
        rel = display_name(p.relative_to(images_dir))
        try:
            face = prepare_image_file(p, pp)
        except (ImageReadError, FaceError) as exc:
            found.rejected.append({"path": rel, "reason": exc.reason, "detail": exc.detail})
            log.warning("%s: skipped (%s%s)", rel, exc.reason, f": {exc.detail}" if exc.detail else "")
            continue
        found.ids.append(rel)
        found.faces.append(resize_face(face.image, size))
        found.landmarks.append(scale_landmarks(face.landmarks, pp.size, size))
    return found


def _write_new_images(folder: Path, found: NewFaces, expl: list, model_uri: str, size: int, summary: dict,
                      method: str = layout.PAPER_METHOD) -> None:
    """Every output file of new-images mode, into the staging ``folder``."""
    from ..explain.figure import PANEL_PX, explanation_figure, top_classes
    from ..explain.index_page import index_html, row
    from ..explain.sheet import overlay

    save_explanations(folder / layout.EXPLANATIONS, expl, np.stack(found.landmarks), [""] * len(expl), model_uri, 0,
                      method=None if method == layout.PAPER_METHOD else method)
    overlays = [layout.overlay_name(i, len(expl), image_id) for i, image_id in enumerate(found.ids)]
    figures = [layout.overlay_name(i, len(expl), image_id, layout.NEW_FIGURES) for i, image_id in enumerate(found.ids)]
    pd.DataFrame({
        "path": found.ids, "pred": [EXPRESSIONS[e.label] for e in expl],
        "confidence": [float(e.probs[e.label]) for e in expl], "overlay": overlays, "figure": figures,
    }).to_csv(folder / layout.NEW_PREDICTIONS, index=False)
    pd.DataFrame(found.rejected, columns=["path", "reason", "detail"]).to_csv(folder / layout.NEW_REJECTED,
                                                                               index=False)
    label = "LIME" if method == layout.PAPER_METHOD else method
    for name, fig, image_id, face, e in zip(overlays, figures, found.ids, found.faces, expl):
        write_png(folder / name, overlay(face, e.map(), tile=max(size, PANEL_PX)))
        write_png(folder / fig, explanation_figure(face, e.map(), e.probs, e.label, image_id, label))
    rows = [row(i, image_id, fig, top_classes(e.probs))
            for i, (image_id, fig, e) in enumerate(zip(found.ids, figures, expl))]
    page = index_html(rows, found.rejected, images=summary["images"], model_uri=model_uri, method=label,
                      n_images=summary["n_images"])
    (folder / layout.NEW_INDEX).write_text(page, encoding="utf-8")
    (folder / layout.EXPLAIN_SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")


def explain_new_images(params: Params, model_uri: str, images_dir: Path, out: Path,
                       method: str = layout.PAPER_METHOD) -> dict:
    """Explain every face image in ``images_dir`` with the model at ``model_uri``, into ``out``.

    ``out`` is checked before any work and written atomically (:func:`fer_xai.outputs.staged_dir`):
    a failed run leaves its previous contents.
    """
    from ..images import is_image_name
    from ..registry import UntrustedModelError, load_model_uri
    from ..tracking import configure

    _check_apart(images_dir, out)
    guard = params.output_guard(NEW_IMAGES_STAGE, "--out")
    guard.check(out)
    paths = sorted(p for p in images_dir.rglob("*") if p.is_file() and is_image_name(p))
    if not paths:
        raise click.ClickException(f"{display_name(images_dir)}: no image files (png, jpg, bmp, tif, ...)")
    configure(params.tracking.experiment)
    try:
        model = load_model_uri(model_uri)
    except UntrustedModelError:
        raise  # a refusal: the CLI reports its own message
    except Exception as exc:  # no such model, a download or a Keras error
        raise click.ClickException(f"{model_uri}: cannot load the model ({exc})") from exc
    predictor = GraphPredictor(model)
    size = predictor.input_size
    # New images ship no landmarks: detect and landmark them with dlib, as prepare does.
    found = _find_faces(paths, images_dir, params.prepare.model_copy(update={"landmarks_source": "dlib"}), size)
    if not found.ids:
        reasons = ", ".join(sorted({r["reason"] for r in found.rejected}))
        raise click.ClickException(f"{display_name(images_dir)}: none of the {len(paths)} images shows a usable "
                                   f"face ({reasons}); fer-xai explains aligned frontal faces only")
    expl = _explain(params, method, predictor, np.stack(found.faces).astype(np.float32), found.ids, None,
                    progress=f"explain {method}")
    summary = {"method": method, "model_uri": model_uri, "images": display_name(images_dir), "n_images": len(paths),
               "n_explained": len(expl), "n_rejected": len(found.rejected), "input_size": size,
               "settings": _settings_summary(params, method)}
    with staged_dir(out, guard) as tmp:
        _write_new_images(tmp, found, expl, model_uri, size, summary, method)
    log.info("explained %d of %d images (%d rejected) -> %s", len(expl), len(paths), len(found.rejected),
             display_name(out))
    return summary


@click.command("explain")
@click.option("--model", "model_id", help="Network id of a registered fold model (pipeline mode; with a --method "
              "other than lime, default: every network of train.models).")
@click.option("--fold", type=int, help="Fold of that model (pipeline mode; default: every fold of train.folds).")
@click.option("--model-uri", help="MLflow URI of a model `fer-xai train` logged, e.g. models:/fer-silnet@fold3 "
              "(new-images mode). Loading a model runs its code: pass only URIs you trust.")
@click.option("--images", "images_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of new images to explain (new-images mode).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder outside --images, replaced whole on success (new-images mode).")
@click.option("--method", default=layout.PAPER_METHOD, show_default=True,
              help="Explanation method: lime (the paper's) or a name of explain.methods (e.g. gradcam, "
              "integrated_gradients, occlusion, lime_mean); pipeline mode writes other methods to "
              "explain.methods_out_dir/<method>.")
@no_mlflow_option
@click.pass_obj
def cli(obj, model_id, fold, model_uri, images_dir, out, method, no_mlflow) -> None:
    """Explain a fold model's predicted positives with LIME (or --method), or new images with any registered model."""
    params: Params = obj.params
    _check_method(params, method)
    if model_uri or images_dir or out:
        if model_id or fold:
            raise click.UsageError("use either --model/--fold or --model-uri/--images/--out, not both")
        if not (model_uri and images_dir and out):
            raise click.UsageError("new-images mode needs --model-uri, --images and --out")
        if not images_dir.is_dir():
            raise click.UsageError(f"--images {images_dir}: not a folder")
        summaries = [explain_new_images(params, model_uri, images_dir, out, method)]
    else:
        if not model_id and method == layout.PAPER_METHOD:
            raise click.UsageError("pass --model [--fold] (or --model-uri, --images and --out)")
        if model_id and model_id not in params.train.networks:
            raise click.UsageError(f"--model {model_id}: unknown; train.networks has {sorted(params.train.networks)}")
        # --method M without --model: every network of train.models (dvc.yaml's explain_method@M)
        models = [model_id] if model_id else list(params.train.models)
        try:
            folds = params.folds_to_run(fold)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        summaries = (explain_fold(params, m, k, use_mlflow=not no_mlflow, method=method) for m in models for k in folds)
    for summary in summaries:  # printed as each fold finishes
        click.echo(json.dumps({k: summary[k] for k in summary if k != "settings"}))


