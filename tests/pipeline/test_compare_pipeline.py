"""Pipeline mode of `fer-xai compare`: the pipeline's own heatmaps, image bootstrap, MLflow, DVC metrics."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fer_xai import layout
from fer_xai.compare import metrics as M
from fer_xai.compare.pipeline import (
    _multiplicities,
    fold_heatmap,
    otsu_thresholds,
    resampled_counts,
)
from fer_xai.compare.published import CompareInputError
from fer_xai.compare.run import compare_pipeline
from fer_xai.compare.standardized import load_standardized
from fer_xai.config import Params, load_params
from helpers.pipeline_fixtures import FOLDS, MODELS, SHAPE, register_fold_runs, write_heatmaps, write_masks

EXPRS = ["Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise"]
OUT_FILES = ["ekman_metrics.csv", "ekman_table.csv", "ekman_plot.csv", "table_iou_f1.csv", "table_iou_f1.md",
             "table_precision_recall.csv", "table_precision_recall.md", "best_worst.csv", "best_worst.md",
             "dendrograms.csv", "dendrograms.png", "threshold_free.csv", "bootstrap_ci.csv", "summary.json",
             "barplot_Avg.png", *[f"barplot_{e}.png" for e in EXPRS], *[f"dendrogram_{e}.png" for e in EXPRS],
             *[f"distances_{e}.csv" for e in EXPRS]]


def _params(**compare) -> Params:
    return Params.model_validate({"compare": {"bootstrap_samples": 200, **compare}})


@pytest.fixture
def pipeline_project(project):
    write_masks(project)
    write_heatmaps(project)
    return project


@pytest.fixture(autouse=True)
def _quiet_undefined_metrics():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.UndefinedMetricWarning)
        yield


# --- the vectorised heatmap recipe ----------------------------------------------------------


def test_otsu_thresholds_equal_skimage():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20, 16)).astype(np.uint8),
              rng.integers(40, 90, (20, 16)).astype(np.uint8),
              fold_heatmap((rng.random((2, 20, 16)) ** 3 * 255).astype(np.uint8)),
              np.array([[3, 3, 200, 200]], np.uint8)]
    hists = np.stack([np.bincount(im.ravel(), minlength=256) for im in images])
    assert otsu_thresholds(hists).tolist() == [int(M.otsu_threshold(im)) for im in images]
    assert otsu_thresholds(np.bincount([9, 9, 9], minlength=256)) == 9  # constant: its value


def test_fold_heatmap_is_the_heatmaps_stage_recipe():
    from fer_xai.heatmaps.aggregate import HeatmapSums, to_png

    rng = np.random.default_rng(2)
    maps = rng.integers(0, 256, (5, *SHAPE)).astype(np.uint8)
    sums = HeatmapSums(SHAPE)
    sums.add("silnet", 1, ["fear"] * 5, maps)
    np.testing.assert_array_equal(fold_heatmap(maps), to_png(sums.by_cv()[("silnet", 1, "fear")].values))
    assert fold_heatmap(maps).min() == 0 and fold_heatmap(maps).max() == 255
    assert not fold_heatmap(np.full((2, 3, 3), 9, np.uint8)).any()  # constant: zeros


def test_resampled_counts_equal_direct_recipe():
    """Every resample scores exactly what heatmap recipe + Otsu + confusion counts give."""
    rng = np.random.default_rng(5)
    maps = (rng.random((7, *SHAPE)) ** 3 * 255).astype(np.uint8)
    maps[:, :5] = 0  # shared constant region (exercises the distinct-columns path)
    mask = np.zeros(SHAPE, bool)
    mask[10:25, 8:30] = True
    w = _multiplicities(rng, 40, 7)
    got = resampled_counts(maps.reshape(7, -1), w, mask.ravel(), chunk=16)
    for r in range(40):
        hm = fold_heatmap(np.repeat(maps, w[r], axis=0))
        c = M.confusion_counts(M.binarize_heatmap(hm), mask)
        assert (got.tp[r], got.fp[r], got.fn[r]) == (c["tp"], c["fp"], c["fn"]), r
    assert (w.sum(axis=1) == 7).all()


# --- the stage ------------------------------------------------------------------------------


def test_pipeline_outputs_and_image_bootstrap(pipeline_project):
    params = _params()
    result = compare_pipeline(params)
    out = pipeline_project / "reports" / "compare"
    for name in OUT_FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not (pipeline_project / "reports" / ".compare.tmp").exists()
    assert result["networks"] == ["SilNet", "WeiNet"] and result["expressions"] == EXPRS
    per_fold = pd.read_csv(out / "ekman_metrics.csv")
    assert list(per_fold.columns) == ["model", "fold", "expression", "iou", "f1", "precision", "recall"]
    assert len(per_fold) == len(MODELS) * len(FOLDS) * 6  # the colour PNG under color/ is not read
    table = pd.read_csv(out / "ekman_table.csv").set_index(["model", "expression"])
    # the planted skill shows: SilNet's maps sit inside the masks more often than WeiNet's
    assert table.at[("SilNet", "Avg"), "iou"] > table.at[("WeiNet", "Avg"), "iou"]

    boot = pd.read_csv(out / "bootstrap_ci.csv")
    assert list(boot.columns) == ["model", "expression", "metric", "estimate", "ci_low", "ci_high", "level",
                                  "unit", "n_units", "n_samples", "seed", "estimate_images"]
    assert len(boot) == 2 * 6 * 2 and (boot["unit"] == "image").all()
    assert (boot["n_samples"] == 200).all() and (boot["seed"] == params.compare.bootstrap_seed).all()
    assert (boot["ci_low"] <= boot["estimate"] + 1e-12).all()
    assert (boot["estimate"] <= boot["ci_high"] + 1e-12).all()
    assert (boot["ci_low"] < boot["ci_high"]).any()
    # the by_cv PNGs were made with the same recipe: the image-level estimate is the table cell
    np.testing.assert_allclose(boot["estimate"], boot["estimate_images"], atol=1e-12)
    for r in boot.itertuples():
        assert r.estimate == pytest.approx(table.at[(r.model, r.expression), r.metric], abs=1e-12)
    # n_units = explained images of that class over the folds
    maps = load_standardized(pipeline_project / "heatmaps" / "standardized", SHAPE)
    r = boot.query("model == 'WeiNet' and expression == 'Fear'").iloc[0]
    assert r.n_units == sum(maps.n_images("WeiNet", k, "Fear") for k in FOLDS)

    # DVC's headline metrics: the expression averages only (`dvc exp show` stays a few columns wide).
    metrics = json.loads((pipeline_project / "metrics" / "compare.json").read_text())
    assert set(metrics) == {"SilNet", "WeiNet", "Avg"} and all(set(v) == {"iou", "f1"} for v in metrics.values())
    assert metrics["SilNet"]["iou"] == pytest.approx(table.at[("SilNet", "Avg"), "iou"], abs=5e-5)
    assert metrics["Avg"]["f1"] == pytest.approx(table.at[("Avg", "Avg"), "f1"], abs=5e-5)
    # ...and the per-expression scores as bars for `dvc plots`: one label per (network, expression).
    bars = pd.read_csv(out / "ekman_plot.csv")
    assert list(bars.columns) == ["network_expression", "model", "expression", "iou", "f1"]
    assert bars["network_expression"].is_unique and "WeiNet · Fear" in set(bars["network_expression"])
    row = bars.set_index("network_expression").loc["WeiNet · Fear"]
    assert (row["iou"], row["f1"]) == (table.at[("WeiNet", "Fear"), "iou"], table.at[("WeiNet", "Fear"), "f1"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bootstrap_units"] == ["image"] and summary["by_net_heatmaps"] == "files"


def test_image_bootstrap_is_seeded(pipeline_project):
    from fer_xai.compare.metrics import aggregate, fold_metrics
    from fer_xai.compare.pipeline import image_bootstrap
    from fer_xai.compare.published import load_published

    data = load_published(pipeline_project / "heatmaps", pipeline_project / "masks", ("by_cv", "by_net"))
    maps = load_standardized(pipeline_project / "heatmaps" / "standardized", SHAPE, data.networks)
    table = aggregate(fold_metrics(data.by_cv, data.masks), data.networks, data.expressions)
    folds = {n: list(FOLDS) for n in data.networks}

    def run(seed):
        boot, fallback = image_bootstrap(maps, data.masks, table, data.networks, ["Anger", "Fear"], folds,
                                         n_samples=150, seed=seed)
        assert fallback == []
        return boot

    a, b, c = run(3), run(3), run(4)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_series_equal(a["estimate"], c["estimate"])  # the cells never change
    assert not np.allclose(a[["ci_low", "ci_high"]], c[["ci_low", "ci_high"]])
    # a cell's interval does not depend on which other cells are computed (per-cell seeds)
    only = image_bootstrap(maps, data.masks, table, ["WeiNet"], ["Fear"], folds, n_samples=150, seed=3)[0]
    pd.testing.assert_frame_equal(only.reset_index(drop=True),
                                  a.query("model == 'WeiNet' and expression == 'Fear'").reset_index(drop=True))


def test_networks_without_per_image_maps_fall_back_to_folds(pipeline_project, caplog):
    import shutil

    shutil.rmtree(pipeline_project / "heatmaps" / "standardized" / "weinet")
    with caplog.at_level(logging.WARNING):
        compare_pipeline(_params())
    boot = pd.read_csv(pipeline_project / "reports" / "compare" / "bootstrap_ci.csv")
    units = boot.groupby("model")["unit"].agg(set).to_dict()
    assert units == {"SilNet": {"image"}, "WeiNet": {"fold"}}
    assert list(boot["model"].drop_duplicates()) == ["SilNet", "WeiNet"]
    assert (boot["ci_low"] <= boot["estimate"] + 1e-12).all() and (boot["estimate"] <= boot["ci_high"] + 1e-12).all()
    assert "neutral" in caplog.text  # the non-Ekman class in the npz is reported, not used


def test_bad_standardized_file_is_named(pipeline_project):
    path = pipeline_project / "heatmaps" / "standardized" / "silnet" / "fold2.npz"
    np.savez_compressed(path, classes=np.array(["anger"]), maps=np.zeros((1, 10, 10), np.uint8))
    with pytest.raises(CompareInputError, match=r"fold2\.npz.*10x10.*44x36"):
        compare_pipeline(_params())
    np.savez_compressed(path, classes=np.array(["anger"]), maps=np.zeros((1, *SHAPE), np.float32))
    with pytest.raises(CompareInputError, match=r"fold2\.npz: maps must be uint8"):
        compare_pipeline(_params())
    np.savez_compressed(path, maps=np.zeros((1, *SHAPE), np.uint8))
    with pytest.raises(CompareInputError, match=r"fold2\.npz: missing array\(s\) classes"):
        compare_pipeline(_params())


def test_cli_pipeline_mode_logs_training_runs(pipeline_project, caplog):
    from fer_xai.cli import main

    runs = register_fold_runs(["silnet"], FOLDS)  # weinet has no registry entry: skipped, warned
    with caplog.at_level(logging.WARNING):
        res = CliRunner().invoke(main, ["-S", "compare.bootstrap_samples=100", "compare"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "metrics logged into 3 training run(s)" in res.output
    assert "fer-weinet@fold1" in caplog.text
    import mlflow

    client = mlflow.MlflowClient()
    per_fold = pd.read_csv(pipeline_project / "reports" / "compare" / "ekman_metrics.csv")
    for k in FOLDS:
        got = client.get_run(runs[("silnet", k)]).data
        row = per_fold.query("model == 'SilNet' and fold == @k").set_index("expression")
        assert got.metrics["ekman/iou/Anger"] == pytest.approx(row.at["Anger", "iou"])
        assert got.metrics["ekman/f1/Avg"] == pytest.approx(row["f1"].mean())
        assert {"ekman/auc/Avg", "ekman/relevance_mass/Surprise", "ekman/precision/Fear"} <= set(got.metrics)
        assert got.metrics["test_accuracy"] == 0.5  # the training's own metrics stay
        assert "fer_xai.compare_run" in got.tags
    compare_runs = mlflow.search_runs(experiment_names=["fer-xai"], output_format="list",
                                      filter_string="tags.`fer_xai.stage` = 'compare'")
    assert len(compare_runs) == 1 and compare_runs[0].data.tags["fer_xai.compare.mode"] == "pipeline"
    assert "iou_ci_low/SilNet/Anger" in compare_runs[0].data.metrics
    assert (pipeline_project / "metrics" / "compare.json").is_file()


def test_compare_input_dirs_default_to_the_stages_outputs(project):
    params = load_params(Path(__file__).resolve().parents[2] / "params.yaml")  # the shipped profile loads
    assert params.compare.out_dir
    hm, masks, out = layout.compare_input_dirs(Params())
    assert (hm, masks, out) == (project / "heatmaps", project / "masks", project / "reports" / "compare")
    p = Params.model_validate({"heatmaps": {"out_dir": "hm"}, "compare": {"masks_dir": "/elsewhere/m"}})
    assert layout.compare_input_dirs(p)[:2] == (project / "hm", Path("/elsewhere/m"))


REF = Path(__file__).resolve().parents[3] / "shared" / "reference"


@pytest.mark.skipif(not (REF / "heatmaps" / "by_cv").is_dir(),
                    reason=f"published reference data not found at {REF} (../shared/reference from the project root)")
def test_pipeline_mode_on_published_layout_reproduces_the_tables(project):
    """Pointed at the published files, pipeline mode gives the published cells (no per-image
    maps there: intervals over folds)."""
    params = _params(heatmaps_dir=str(REF / "heatmaps"), masks_dir=str(REF / "ekman_masks"))
    result = compare_pipeline(params)
    t = result["table"].set_index(["model", "expression"])
    assert t.at[("InceptionV3", "Avg"), "iou"] == pytest.approx(0.3128, abs=5e-5)
    assert t.at[("SilNet", "Disgust"), "f1"] == pytest.approx(0.5527, abs=5e-5)
    assert t.at[("VGG16", "Fear"), "recall"] == pytest.approx(0.1480, abs=5e-5)
    assert set(result["bootstrap"]["unit"]) == {"fold"}
    assert json.loads((project / "metrics" / "compare.json").read_text())["InceptionV3"]["iou"] == pytest.approx(0.3128)
