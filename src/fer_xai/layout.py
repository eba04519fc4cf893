"""Where every stage writes: each output folder and file name, for the writers and the readers.

dvc.yaml declares the same paths; ``tests/pipeline/test_layout.py`` checks each stage's ``outs`` and
``metrics`` against these functions. Folders come from ``params.yaml`` (``<stage>.out_dir``);
file names are fixed here. A leaf module: it imports only ``config`` (for types) and ``paths``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from .paths import repo_root, resolve

if TYPE_CHECKING:
    from .config import Params

# --------------------------------------------------------------------------- DVC metrics files

METRICS_DIR = "metrics"
CV_METRICS = "cv"  # evaluate's metrics file is metrics/cv.json


def metrics_file(name: str) -> Path:
    """``metrics/<name>.json``: a stage's small, uncached DVC metrics file (``cv`` for evaluate)."""
    return repo_root() / METRICS_DIR / f"{name}.json"


def fold_name(fold: int) -> str:
    """``fold<k>``: the folder of one test fold under a network's folder."""
    return f"fold{fold}"


# ------------------------------------------------------------------------------------- synth

SYNTH_MANIFEST = "manifest.csv"
SYNTH_GENERATOR = "generator.json"
SYNTH_CONTACT_SHEET = "contact_sheet.png"
SYNTH_IMAGES = "images"  # images/<id>.png: the RGB faces
SYNTH_MASKS = "masks"  # masks/<id>.png: where the expression changed the face
SYNTH_LANDMARKS = "landmarks"  # landmarks/<id>.txt: 68 lines "x y"
SYNTH_NEUTRAL = "neutral"  # neutral/<id>.png: the face's neutral twin (same subject, pose, light, noise)
SYNTH_FOLDERS = (SYNTH_IMAGES, SYNTH_LANDMARKS, SYNTH_MASKS, SYNTH_NEUTRAL)


def synth_image(image_id: str) -> str:
    """A face, relative to the synth folder (the manifest's ``path`` column)."""
    return f"{SYNTH_IMAGES}/{image_id}.png"


def synth_mask(image_id: str) -> str:
    """A face's AU-region mask, relative to the synth folder (the manifest's ``mask`` column)."""
    return f"{SYNTH_MASKS}/{image_id}.png"


def synth_neutral(image_id: str) -> str:
    """A face's neutral twin, relative to the synth folder (the manifest's ``neutral`` column)."""
    return f"{SYNTH_NEUTRAL}/{image_id}.png"


def synth_landmarks(image_id: str) -> str:
    """A face's landmarks, relative to the synth folder (the manifest's ``landmarks`` column)."""
    return f"{SYNTH_LANDMARKS}/{image_id}.txt"


def synth_dir(params: Params) -> Path:
    return resolve(params.synth.out_dir)


# ----------------------------------------------------------------------------------- prepare

PREPARED_MANIFEST = "manifest.parquet"
PREPARED_REJECTED = "rejected.csv"
PREPARED_SUMMARY = "summary.json"
PREPARED_CONTACT_SHEET = "contact_sheet.png"


def prepared_dir(params: Params) -> Path:
    return resolve(params.prepare.out_dir)


def prepared_manifest(params: Params) -> Path:
    return prepared_dir(params) / PREPARED_MANIFEST


def prepared_face_image(dataset: str, face_id: str) -> str:
    """An aligned crop, relative to the prepared folder (the manifest's ``image`` column)."""
    return f"{dataset}/{face_id}.png"


def prepared_face_mask(dataset: str, face_id: str) -> str:
    """A crop's AU-region mask, relative to the prepared folder (the manifest's ``mask`` column)."""
    return f"{dataset}/{face_id}_mask.png"


def prepared_face_neutral(dataset: str, face_id: str) -> str:
    """A crop's neutral twin aligned with the crop's own transform (the manifest's ``neutral`` column)."""
    return f"{dataset}/{face_id}_neutral.png"


# ------------------------------------------------------------------------------------- split


def folds_file(params: Params) -> Path:
    return resolve(params.split.out_file)


# ------------------------------------------------------------------------------------- train

MODEL_FILE = "model.keras"
PREDICTIONS = "predictions.csv"
HISTORY = "history.csv"
REPORT_TEXT = "report.txt"
CONFUSION = "confusion.png"
FOLD_METRICS = "metrics.json"
# What train writes into <train.out_dir>/<model>/fold<k>; DVC restores them without
# staged_dir's marker, so the output guard must know them by name.
FOLD_FILES = (MODEL_FILE, PREDICTIONS, HISTORY, REPORT_TEXT, CONFUSION, FOLD_METRICS)


def train_dir(params: Params) -> Path:
    return resolve(params.train.out_dir)


def train_network_dir(params: Params, model_id: str) -> Path:
    return train_dir(params) / model_id


def train_fold_dir(params: Params, model_id: str, fold: int) -> Path:
    return train_network_dir(params, model_id) / fold_name(fold)


# ---------------------------------------------------------------------------------- evaluate

CV_FOLDS = "cv_folds.csv"
CV_SUMMARY = "cv_summary.csv"
CV_PLOT = "cv_accuracy.png"
# Per (network, fold) copies of history.csv's curves and predictions.csv's label/pred, one folder
# each: dvc.yaml's `plots:` draws a folder file by file (DVC plots take no globs, and the models
# folder also holds files that are no plots).
CV_CURVES = "curves"
CV_CONFUSION = "confusion"


def evaluate_dir(params: Params) -> Path:
    return resolve(params.evaluate.out_dir)


def cv_plot_name(model_id: str, fold: int) -> str:
    """``<model>-fold<k>.csv``: one training's file in CV_CURVES and CV_CONFUSION."""
    return f"{model_id}-{fold_name(fold)}.csv"


# ----------------------------------------------------------------------------------- explain

EXPLANATIONS = "explanations.npz"
SELECTION = "selection.csv"
EXPLAIN_SUMMARY = "summary.json"
SAMPLE_SHEET = "sample_sheet.png"
# What explain writes into <explain.out_dir>/<model>/fold<k> (known to the output guard by name).
EXPLAIN_FILES = (EXPLANATIONS, SELECTION, SAMPLE_SHEET, EXPLAIN_SUMMARY)


def explain_dir(params: Params) -> Path:
    return resolve(params.explain.out_dir)


def explain_network_dir(params: Params, model_id: str) -> Path:
    return explain_dir(params) / model_id


def explain_fold_dir(params: Params, model_id: str, fold: int) -> Path:
    return explain_network_dir(params, model_id) / fold_name(fold)


def explanations_file(params: Params, model_id: str, fold: int) -> Path:
    return explain_fold_dir(params, model_id, fold) / EXPLANATIONS


# The method as a dimension. The paper's LIME keeps the folders above; every other method m of
# explain.methods gets its own explain, heatmaps and compare folders with the same layout inside:
# <explain.methods_out_dir>/<m>/<model>/fold<k>/, <heatmaps.methods_out_dir>/<m>/,
# <compare.methods_out_dir>/<m>/ and metrics/heatmaps_<m>.json, metrics/compare_<m>.json.
PAPER_METHOD = "lime"


def method_params(params: Params, method: str) -> Params:
    """``params`` with explain.out_dir, heatmaps.out_dir and compare.out_dir/heatmaps_dir pointing at
    ``method``'s folders, so every stage and reader works on one method unchanged (``lime``: as is)."""
    if method == PAPER_METHOD:
        return params
    if method not in params.explain.methods:
        raise KeyError(f"unknown explanation method {method!r}; explain.methods has {sorted(params.explain.methods)}")
    hm = f"{params.heatmaps.methods_out_dir}/{method}"
    return params.model_copy(update={
        "explain": params.explain.model_copy(update={"out_dir": f"{params.explain.methods_out_dir}/{method}"}),
        "heatmaps": params.heatmaps.model_copy(update={"out_dir": hm}),
        "compare": params.compare.model_copy(update={"out_dir": f"{params.compare.methods_out_dir}/{method}",
                                                     "heatmaps_dir": hm}),
    })


def method_metrics_name(stage: str, method: str) -> str:
    """``heatmaps`` / ``compare`` for LIME, ``heatmaps_<method>`` for another method (metrics/<name>.json)."""
    return stage if method == PAPER_METHOD else f"{stage}_{method}"


# New-images mode writes into its --out folder: EXPLANATIONS, EXPLAIN_SUMMARY and these.
NEW_PREDICTIONS = "predictions.csv"
NEW_REJECTED = "rejected.csv"
OVERLAYS = "overlays"
NEW_FIGURES = "figures"  # per image: the face, its explanation, a colour bar and the top three classes
NEW_INDEX = "index.html"  # one page listing every image of the folder, rejected ones too
MAX_OVERLAY_NAME = 100  # last characters of the image's path kept in its overlay's name (file systems allow 255)


def overlay_name(index: int, count: int, image_id: str, folder: str = OVERLAYS) -> str:
    """``overlays/<index>-<path>.png``: the index (the image's row in predictions.csv and
    explanations.npz) makes names unique whatever the paths are (``a.png``/``a.jpg``,
    ``a/b.png``/``a__b.png``, names differing in case only); the path with its extension and
    separators turned into ``_`` says which image it is. ``folder``: :data:`NEW_FIGURES` for the figures."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", image_id)[-MAX_OVERLAY_NAME:]
    return f"{folder}/{index:0{len(str(count))}d}-{readable}.png"


# ------------------------------------------------------------------------------------- masks

MASKS_SUMMARY = "masks.json"
MASKS_OVERVIEW = "overview.png"
AU_DIR = "au"  # au/AU<n>.png, au/<Expression>/AU<n>.png and merges, au/overview.png
# ``<Expression>_gt.png``, the published masks' names (the compare stage reads either).
EXPRESSION_MASK_RE = re.compile(r"^(?P<expr>[A-Za-z]+)_gt\.png$", re.I)


def masks_dir(params: Params) -> Path:
    return resolve(params.masks.out_dir)


def expression_mask_name(expression: str) -> str:
    """``<Expression>_gt.png`` (display name, e.g. ``Anger``)."""
    return f"{expression}_gt.png"


def au_mask_name(au: int) -> str:
    return f"AU{au}.png"


def merge_mask_name(region: str) -> str:
    """A merge region's mask, e.g. ``AU1+AU2.png`` (``region`` as the mask spec names it)."""
    return f"{region}.png"


# ---------------------------------------------------------------------------------- heatmaps

STANDARDIZED = "standardized"  # standardized/<model>/fold<k>.npz: per-image warped maps
BY_CV = "by_cv"  # per (network, fold, expression), published format
BY_NET = "by_net"  # per (network, expression), published format
TOTAL = "total"  # per expression
COLOR = "color"  # color/{by_cv,by_net,total}/: the same heatmaps colour-mapped
FIGURES = "figures"
PLANTED = "planted"
HEATMAPS_NPZ = "heatmaps.npz"
COUNTS = "counts.csv"
HEATMAPS_REJECTED = "rejected.csv"
HEATMAPS_SUMMARY = "summary.json"
MEAN_FACE = "mean_face.png"
PLANTED_TRUTH = "planted_truth.csv"
FIGURE_TOTAL = "total.png"
FIGURE_BY_NET = "by_net.png"
FIGURE_BY_CV_PREFIX = "by_cv_"  # figures/by_cv_<Net>.png
HEATMAP, COLORED = "heatmap", "color"  # the ``kind`` of a heatmap file name
HEATMAP_SUFFIX = f"_{HEATMAP}.png"  # how every by_cv/ and by_net/ heatmap's name ends

# Names in by_cv/ and by_net/, ours and the published data's (network display names).
BY_CV_HEATMAP_RE = re.compile(r"^(?P<net>.+?)_CV(?P<fold>\d+)_(?P<expr>[A-Za-z]+)_heatmap\.png$", re.I)
BY_NET_HEATMAP_RE = re.compile(r"^(?P<net>.+)_(?P<expr>[A-Za-z]+)_heatmap\.png$", re.I)
STANDARDIZED_FILE_RE = re.compile(r"^fold(?P<fold>\d+)\.npz$")


def heatmaps_dir(params: Params) -> Path:
    return resolve(params.heatmaps.out_dir)


def heatmaps_standardized_dir(params: Params) -> Path:
    return heatmaps_dir(params) / STANDARDIZED


def standardized_file(standardized_dir: Path, model_id: str, fold: int) -> Path:
    """``<standardized_dir>/<model>/fold<k>.npz`` (the folder: a heatmaps folder's STANDARDIZED)."""
    return standardized_dir / model_id / f"{fold_name(fold)}.npz"


def by_cv_name(net: str, fold: int | str, expression: str, kind: str = HEATMAP) -> str:
    """``<Net>_CV<k>_<Expression>_heatmap.png`` (``kind`` COLORED: ``..._color.png``)."""
    return f"{net}_CV{fold}_{expression}_{kind}.png"


def by_net_name(net: str, expression: str, kind: str = HEATMAP) -> str:
    return f"{net}_{expression}_{kind}.png"


def total_name(expression: str, kind: str = HEATMAP) -> str:
    return f"{expression}_{kind}.png"


def figure_by_cv(net: str) -> str:
    return f"{FIGURE_BY_CV_PREFIX}{net}.png"


def planted_mean_name(expression: str) -> str:
    return f"{expression}_planted_mean.png"


def planted_name(expression: str) -> str:
    return f"{expression}_planted.png"


# ----------------------------------------------------------------------------------- compare

EKMAN_METRICS = "ekman_metrics.csv"
EKMAN_TABLE = "ekman_table.csv"
EKMAN_PLOT = "ekman_plot.csv"  # IoU and F1 per (network, expression), one bar label each, for `dvc plots`
TABLE_IOU_F1_CSV, TABLE_IOU_F1_MD = "table_iou_f1.csv", "table_iou_f1.md"
TABLE_PRECISION_RECALL_CSV, TABLE_PRECISION_RECALL_MD = "table_precision_recall.csv", "table_precision_recall.md"
BEST_WORST_CSV, BEST_WORST_MD = "best_worst.csv", "best_worst.md"
DENDROGRAMS_CSV, DENDROGRAMS_PNG = "dendrograms.csv", "dendrograms.png"
THRESHOLD_FREE = "threshold_free.csv"
BOOTSTRAP_CI = "bootstrap_ci.csv"
COMPARE_SUMMARY = "summary.json"


def compare_dir(params: Params) -> Path:
    return resolve(params.compare.out_dir)


def compare_input_dirs(params: Params) -> tuple[Path, Path, Path]:
    """(heatmaps, masks, output) folders of pipeline mode: ``compare.heatmaps_dir`` and
    ``compare.masks_dir``, by default the heatmaps and masks stages' folders."""
    cp = params.compare
    return (resolve(cp.heatmaps_dir or params.heatmaps.out_dir),
            resolve(cp.masks_dir or params.masks.out_dir), compare_dir(params))


def barplot_name(expression: str) -> str:
    return f"barplot_{expression}.png"


def distances_name(expression: str) -> str:
    return f"distances_{expression}.csv"


def linkage_name(expression: str) -> str:
    return f"linkage_{expression}.csv"


def dendrogram_name(expression: str) -> str:
    return f"dendrogram_{expression}.png"


# ------------------------------------------------------------------------------------ report


def report_dir(params: Params) -> Path:
    """``report.out_dir``: holds the page and its figures (and other stages' folders)."""
    return resolve(params.report.out_dir)


def report_html(params: Params) -> Path:
    return report_dir(params) / params.report.html_name


def report_figures_dir(params: Params) -> Path:
    return report_dir(params) / params.report.figures_dir


def report_figure_name(name: str) -> str:
    """A figure of the page in the figures folder, e.g. ``cv_accuracy.png``."""
    return f"{name}.png"


# ------------------------------------------------------------------------------------- bench

BENCH_METRICS = "bench"  # metrics/bench.json
BENCH_TABLE = "methods_expressions.csv"  # the headline table: method x expression
BENCH_PLANTED = "planted.csv"
BENCH_CAUSAL = "causal.csv"  # per probed face
BENCH_CURVES = "curves.csv"  # per probed face
BENCH_SANITY = "sanity.csv"
BENCH_COST = "cost.csv"
BENCH_CHANCE_PRIOR = "chance_prior.csv"
BENCH_CHANCE_RANDOM = "chance_random_weights.csv"
BENCH_SPECIFICITY = "specificity.csv"
BENCH_AGREEMENT = "agreement.csv"
BENCH_METHODS_SUMMARY = "methods.csv"  # one row per method: every headline number
BENCH_NETWORKS = "networks.csv"  # per method and network: causal drops, curves, sanity, cost
BENCH_FIGURE_TOTALS = "totals.png"  # each method's total heatmaps side by side
BENCH_SUMMARY = "summary.json"


def bench_dir(params: Params) -> Path:
    return resolve(params.bench.out_dir)


# -------------------------------------------------------------------------------------- tune

TUNE_BEST = "best"  # best/<model>.yaml: what train.use_tuned reads
TUNE_STUDIES = "studies"  # studies/<study>/: trials.csv and Optuna's plots
TUNE_STORAGE = "optuna.db"  # the default Optuna storage
TRIALS = "trials.csv"


def tune_dir(params: Params) -> Path:
    return resolve(params.tune.out_dir)


def tuned_file(params: Params, model_id: str) -> Path:
    return tune_dir(params) / TUNE_BEST / f"{model_id}.yaml"


def tune_study_dir(params: Params, study_name: str) -> Path:
    return tune_dir(params) / TUNE_STUDIES / study_name


def default_tune_storage(params: Params) -> str:
    return f"sqlite:///{tune_dir(params) / TUNE_STORAGE}"


def tune_plot_name(plot: str) -> str:
    """One of Optuna's plots in a study's folder, e.g. ``optimization_history.png``."""
    return f"{plot}.png"


# ---------------------------------------------------------------------------------- executor

EXECUTOR_RECORD = "run.json"  # what ran where: one entry per stage (node, times, exit status)


def executor_dir(params: Params) -> Path:
    return resolve(params.executor.out_dir)


def executor_run_dir(params: Params, run_id: str) -> Path:
    """``<executor.out_dir>/<run id>/``: one ``fer-xai repro --executor ray`` call."""
    return executor_dir(params) / run_id


def executor_stage_log(run_dir: Path, stage: str) -> Path:
    """A stage's stdout and stderr; ``@`` and ``/`` of DVC addresses become ``_``."""
    return run_dir / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', stage)}.log"
