"""Comparison stage: reproduces the published Tables 3/4 cells and Figure 10 distances."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image
from pydantic import ValidationError
from scipy.cluster.hierarchy import cophenet, linkage
from scipy.spatial.distance import squareform

from fer_xai.compare import metrics as M
from fer_xai.compare.published import CompareInputError, find_heatmaps, read_map
from fer_xai.compare.run import compare_published
from fer_xai.compare.similarity import (
    average_linkage,
    cophenetic_correlation,
    correlation_distances,
)
from fer_xai.compare.threshold_free import (
    bootstrap_ci,
    iou_from_counts,
    relevance_mass,
    roc_auc,
)
from fer_xai.config import CompareParams, Params
from fer_xai.errors import FerXaiError
from fer_xai.stages.compare import cli

REF = Path(__file__).resolve().parents[3] / "shared" / "reference"
HEATMAPS = REF / "heatmaps"
MASKS = REF / "ekman_masks"
needs_ref = pytest.mark.skipif(
    not (HEATMAPS / "by_cv").is_dir() or not MASKS.is_dir(),
    reason=f"published reference data not found at {REF} (../shared/reference from the project root)",
)

EXPRS = ["Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise"]
# Paper Tables 3 and 4 (also in shared/reference/README.md): 6 expressions then the model average.
EXPECTED = {
    "iou": {
        "SilNet": [0.2062, 0.3841, 0.3367, 0.1141, 0.2629, 0.2785, 0.2637],
        "WeiNet": [0.2090, 0.3042, 0.2505, 0.0988, 0.2844, 0.1380, 0.2141],
        "InceptionV3": [0.2801, 0.5923, 0.2543, 0.2297, 0.2815, 0.2387, 0.3128],
        "VGG16": [0.1231, 0.4180, 0.1112, 0.1508, 0.1834, 0.2805, 0.2112],
    },
    "f1": {
        "SilNet": [0.3389, 0.5527, 0.5027, 0.2045, 0.4158, 0.4341, 0.4081],
        "WeiNet": [0.3439, 0.4607, 0.3992, 0.1798, 0.4426, 0.2384, 0.3441],
        "InceptionV3": [0.4315, 0.7430, 0.4033, 0.3727, 0.4377, 0.3850, 0.4622],
        "VGG16": [0.2183, 0.5621, 0.1963, 0.2615, 0.2928, 0.4369, 0.3280],
    },
    "precision": {
        "SilNet": [0.2942, 0.4919, 0.4836, 0.2146, 0.5574, 0.4093, 0.4085],
        "WeiNet": [0.3271, 0.4577, 0.4481, 0.1904, 0.6167, 0.2771, 0.3862],
        "InceptionV3": [0.4327, 0.6499, 0.4235, 0.3932, 0.4670, 0.3498, 0.4527],
        "VGG16": [0.2512, 0.5692, 0.2959, 0.3438, 0.3627, 0.5335, 0.3927],
    },
    "recall": {
        "SilNet": [0.4082, 0.6531, 0.5285, 0.2011, 0.3455, 0.4749, 0.4352],
        "WeiNet": [0.3720, 0.5513, 0.3623, 0.1708, 0.3490, 0.2565, 0.3436],
        "InceptionV3": [0.4378, 0.8744, 0.4109, 0.3556, 0.4134, 0.4288, 0.4868],
        "VGG16": [0.1968, 0.6006, 0.1480, 0.2123, 0.2597, 0.3790, 0.2994],
    },
}
NETS = list(EXPECTED["iou"])


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    if not (HEATMAPS / "by_cv").is_dir() or not MASKS.is_dir():
        pytest.skip(f"published reference data not found at {REF}")
    out = tmp_path_factory.mktemp("compare_out")
    params = CompareParams(bootstrap_samples=500)
    return compare_published(HEATMAPS, MASKS, out, params), out


# --- reproduction of the published tables ---------------------------------------------------


@needs_ref
@pytest.mark.parametrize("metric", list(EXPECTED))
def test_reproduces_published_cells(published, metric):
    result, _ = published
    table = result["table"].set_index(["model", "expression"])
    bad = []
    for net, values in EXPECTED[metric].items():
        for expr, expected in zip([*EXPRS, "Avg"], values):
            got = table.at[(net, expr), metric]
            if not abs(got - expected) <= 5e-5:
                bad.append(f"{net}/{expr}: {got:.6f} != {expected}")
    assert not bad, f"{metric}: " + "; ".join(bad)


@needs_ref
def test_aggregation_rows(published):
    result, _ = published
    per_fold, table = result["metrics"], result["table"]
    assert len(per_fold) == len(NETS) * 5 * 6
    assert result["networks"] == NETS  # paper row order
    t = table.set_index(["model", "expression"])
    for metric in M.METRICS:
        cells = per_fold.groupby(["model", "expression"])[metric].mean()
        for expr in EXPRS:
            expected = np.mean([cells[(n, expr)] for n in NETS])
            assert t.at[("Avg", expr), metric] == pytest.approx(expected, abs=1e-12)
        grand = np.mean([t.at[(n, "Avg"), metric] for n in NETS])
        assert t.at[("Avg", "Avg"), metric] == pytest.approx(grand, abs=1e-12)


@needs_ref
def test_published_inputs_are_parsed():
    index = find_heatmaps(HEATMAPS)
    assert index.networks == NETS
    assert index.expressions == EXPRS
    assert all(index.folds(n) == [1, 2, 3, 4, 5] for n in NETS)
    assert len(index.by_net) == len(NETS) * 6
    mask = read_map(MASKS / "Anger_gt.png", "mask")
    assert mask.shape == (275, 224) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 255}


# --- metrics on synthetic arrays ------------------------------------------------------------


def test_metrics_on_known_counts():
    pred = np.array([[1, 1, 0, 0]], bool)
    truth = np.array([[1, 0, 1, 0]], bool)
    c = M.confusion_counts(pred, truth)
    assert c == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}
    s = M.scores_from_counts(c["tp"], c["fp"], c["fn"])
    assert s == pytest.approx({"iou": 1 / 3, "f1": 0.5, "precision": 0.5, "recall": 0.5})


def test_otsu_foreground_is_strictly_above_threshold():
    img = np.array([[10, 10, 10, 200, 200, 200]], np.uint8)
    t = M.otsu_threshold(img)
    assert 10 <= t < 200
    assert M.binarize_heatmap(img).tolist() == [[False, False, False, True, True, True]]


def test_empty_denominators_are_nan_with_warning():
    with pytest.warns(M.UndefinedMetricWarning):
        s = M.scores_from_counts(0, 0, 5)  # empty prediction: precision undefined
    assert np.isnan(s["precision"]) and s["recall"] == 0.0 and s["iou"] == 0.0
    with pytest.warns(M.UndefinedMetricWarning):
        s = M.scores_from_counts(0, 0, 0)
    assert all(np.isnan(v) for v in s.values())
    const = np.full((4, 4), 7, np.uint8)  # Otsu on a constant map: nothing is foreground
    assert not M.binarize_heatmap(const).any()


def test_nan_propagates_into_averages():
    per_fold = pd.DataFrame({
        "model": ["A", "A", "A", "A"], "fold": [1, 2, 1, 2],
        "expression": ["Anger", "Anger", "Fear", "Fear"],
        "iou": [0.2, 0.4, np.nan, 0.5], "f1": [0.1] * 4, "precision": [0.1] * 4, "recall": [0.1] * 4,
    })
    t = M.aggregate(per_fold).set_index(["model", "expression"])
    assert t.at[("A", "Anger"), "iou"] == pytest.approx(0.3)
    assert np.isnan(t.at[("A", "Fear"), "iou"]) and np.isnan(t.at[("A", "Avg"), "iou"])
    assert t.at[("A", "Avg"), "f1"] == pytest.approx(0.1)


# --- similarity -----------------------------------------------------------------------------


def _naive_distances(maps, centred=True):
    n = len(maps)
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            a, b = maps[i].ravel().astype(float), maps[j].ravel().astype(float)
            if centred:
                r = np.corrcoef(a, b)[0, 1]
            else:
                r = a @ b / np.sqrt((a @ a) * (b @ b))
            d[i, j] = 0.0 if i == j else 1.0 - r
    return d


def test_distances_match_naive_on_random_maps():
    rng = np.random.default_rng(0)
    maps = rng.integers(0, 256, size=(5, 20, 16)).astype(np.uint8)
    for method, centred in (("pearson", True), ("uncentred", False)):
        d = correlation_distances(maps, method)
        np.testing.assert_allclose(d, _naive_distances(maps, centred), atol=1e-12)
        assert np.allclose(d, d.T) and np.all(np.diag(d) == 0)


@needs_ref
def test_reference_distances_and_linkage(published):
    result, out = published
    for expr in EXPRS:
        maps = [read_map(HEATMAPS / "by_net" / f"{n}_{expr}_heatmap.png") for n in NETS]
        naive = _naive_distances(maps)
        res = result["similarity"][expr]
        assert res.source == "files" and res.method == "pearson"
        np.testing.assert_allclose(res.distances, naive, atol=1e-10)
        on_disk = pd.read_csv(out / f"distances_{expr}.csv", index_col=0)
        assert list(on_disk.columns) == NETS and list(on_disk.index) == NETS
        np.testing.assert_allclose(on_disk.to_numpy(), naive, atol=1e-10)
        z = linkage(squareform(naive, checks=False), "average")
        np.testing.assert_allclose(res.linkage, z, atol=1e-10)
        assert res.cophenetic == pytest.approx(cophenet(z, squareform(naive, checks=False))[0], abs=1e-10)
    # Figure 10: SilNet and WeiNet (shallow, no pre-training) pair up in every expression here.
    for expr in EXPRS:
        d = result["similarity"][expr].distances
        assert d[0, 1] < min(d[0, 2], d[0, 3], d[1, 2], d[1, 3])


def test_linkage_is_scipy_average():
    rng = np.random.default_rng(3)
    maps = rng.random((6, 30))
    d = correlation_distances(maps)
    z = average_linkage(d)
    np.testing.assert_allclose(z, linkage(squareform(d, checks=False), method="average"))
    assert -1 <= cophenetic_correlation(z, d) <= 1


def test_fold_mean_fallback_for_missing_by_net():
    from fer_xai.compare.similarity import expression_similarity

    rng = np.random.default_rng(1)
    by_cv = {(n, k, "Anger"): rng.integers(0, 256, (8, 8)).astype(np.uint8)
             for n in ("A", "B", "C") for k in (1, 2)}
    res = expression_similarity("Anger", ["A", "B", "C"], {}, by_cv)
    assert res.source == "fold_mean"
    means = [np.mean([by_cv[(n, k, "Anger")].astype(float) for k in (1, 2)], axis=0) for n in "ABC"]
    np.testing.assert_allclose(res.distances, _naive_distances(means), atol=1e-12)


def test_constant_heatmaps_are_left_out_of_the_tree_not_a_crash():
    """A method can give a network an all-zero heatmap (Grad-CAM's ReLU'd map of a class it never
    attributes); its correlation is undefined, so the tree is built over the others and says so."""
    from fer_xai.compare.similarity import TooFewHeatmaps, expression_similarity

    rng = np.random.default_rng(2)
    by_net = {(n, "Fear"): rng.integers(0, 256, (8, 8)).astype(np.uint8) for n in "ABC"}
    by_net[("D", "Fear")] = np.zeros((8, 8), np.uint8)
    res = expression_similarity("Fear", ["A", "B", "D", "C"], by_net, {})
    assert res.networks == ["A", "B", "C"] and res.left_out == ("D",)
    np.testing.assert_allclose(res.distances, _naive_distances([by_net[(n, "Fear")] for n in "ABC"]), atol=1e-12)
    by_net[("B", "Fear")] = np.full((8, 8), 7, np.uint8)  # constant, not zero: undefined for pearson too
    with pytest.raises(TooFewHeatmaps, match="Fear: 1 informative heatmap"):
        expression_similarity("Fear", ["A", "B", "D"], by_net, {})


# --- threshold-free measures and bootstrap --------------------------------------------------


def test_auc_and_relevance_mass_sanity():
    mask = np.zeros((10, 10), bool)
    mask[2:6, 3:8] = True
    hm = mask.astype(np.uint8) * 255
    assert roc_auc(hm, mask) == 1.0
    mass, share = relevance_mass(hm, mask)
    assert mass == 1.0 and share == pytest.approx(0.2)
    assert roc_auc(255 - hm, mask) == 0.0
    uniform = np.full((10, 10), 9, np.uint8)
    assert roc_auc(uniform, mask) == 0.5
    assert relevance_mass(uniform, mask) == pytest.approx((0.2, 0.2))  # chance level
    with pytest.warns(RuntimeWarning):
        assert np.isnan(roc_auc(hm, np.zeros_like(mask)))


def test_bootstrap_is_seeded_and_contains_estimate():
    values = np.array([0.21, 0.35, 0.18, 0.30, 0.26])
    a = bootstrap_ci(values, n_samples=2000, seed=7)
    b = bootstrap_ci(values, n_samples=2000, seed=7)
    c = bootstrap_ci(values, n_samples=2000, seed=8)
    assert a == b and a != c
    assert a.estimate == pytest.approx(values.mean())
    assert a.low <= a.estimate <= a.high and a.low >= values.min() and a.high <= values.max()
    # per-unit contributions (e.g. per-image confusion counts) with a pooled statistic
    counts = np.array([[5, 2, 3], [8, 1, 1], [2, 4, 4], [6, 3, 1]], float)
    ci = bootstrap_ci(counts, iou_from_counts, n_samples=1000, seed=1)
    assert ci.estimate == pytest.approx(21 / (21 + 10 + 9))
    assert ci.low <= ci.estimate <= ci.high


@needs_ref
def test_threshold_free_and_bootstrap_outputs(published):
    result, out = published
    tf = pd.read_csv(out / "threshold_free.csv")
    assert list(tf.columns) == ["model", "fold", "expression", "auc", "relevance_mass",
                                "mask_area_share", "relevance_lift"]
    assert len(tf) == 120 and tf["auc"].between(0, 1).all()
    assert tf["relevance_mass"].between(0, 1).all()
    boot = pd.read_csv(out / "bootstrap_ci.csv")
    assert len(boot) == len(NETS) * 6 * 2
    assert (boot["ci_low"] <= boot["estimate"] + 1e-12).all()
    assert (boot["estimate"] <= boot["ci_high"] + 1e-12).all()
    t = result["table"].set_index(["model", "expression"])
    for r in boot.itertuples():  # the CI's estimate is the published cell, unchanged
        assert r.estimate == pytest.approx(t.at[(r.model, r.expression), r.metric], abs=1e-12)


# --- CLI ------------------------------------------------------------------------------------


@needs_ref
def test_cli_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("FER_XAI_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    from fer_xai import paths
    from fer_xai.cli import main

    paths.repo_root.cache_clear()
    (tmp_path / "params.yaml").write_text("{}\n")
    out = tmp_path / "out"
    try:
        res = CliRunner().invoke(main, ["compare", "--heatmaps-dir", str(HEATMAPS),
                                        "--masks-dir", str(MASKS), "--out", str(out)])
    finally:
        paths.repo_root.cache_clear()
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "MLflow run" in res.output
    assert list(pd.read_csv(out / "ekman_metrics.csv").columns) == [
        "model", "fold", "expression", "iou", "f1", "precision", "recall"]
    table = pd.read_csv(out / "ekman_table.csv")
    assert list(table.columns) == ["model", "expression", "iou", "f1", "precision", "recall"]
    assert len(table) == (len(NETS) + 1) * 7
    for name in ["table_iou_f1.csv", "table_iou_f1.md", "table_precision_recall.csv",
                 "table_precision_recall.md", "best_worst.csv", "best_worst.md", "dendrograms.csv",
                 "dendrograms.png", "threshold_free.csv", "bootstrap_ci.csv", "summary.json",
                 "barplot_Avg.png"]:
        assert (out / name).is_file(), name
    for expr in EXPRS:
        for name in (f"distances_{expr}.csv", f"dendrogram_{expr}.png", f"barplot_{expr}.png"):
            assert (out / name).stat().st_size > 0, name
    t3 = pd.read_csv(out / "table_iou_f1.csv", index_col=0)
    assert t3.at["InceptionV3", "Avg. (model) IoU"] == pytest.approx(0.3128, abs=5e-5)
    assert "| InceptionV3 | 0.2801 | 0.4315 | 0.5923 | 0.7430 |" in (out / "table_iou_f1.md").read_text()
    bw = pd.read_csv(out / "best_worst.csv")
    assert list(bw.columns) == ["expression", "metric", "rank", "best_model", "best_value",
                                "worst_model", "worst_value"]
    assert bw.query("expression == 'Disgust' and metric == 'iou' and rank == 1")["best_model"].item() == "InceptionV3"
    dd = pd.read_csv(out / "dendrograms.csv")
    assert list(dd["expression"]) == EXPRS and dd["cophenetic_correlation"].between(-1, 1).all()
    assert json.loads((out / "summary.json").read_text())["by_net_heatmaps"] == "files"

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["fer-xai"], output_format="list")
    assert len(runs) == 1
    assert runs[0].data.metrics["iou/InceptionV3/Avg"] == pytest.approx(0.3128, abs=5e-5)
    assert runs[0].data.params["correlation"] == "pearson"
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(runs[0].info.run_id, "compare")}
    assert "compare/ekman_table.csv" in arts


# A CLI context with the default parameters (what `fer-xai compare` gets from params.yaml).
_OBJ = SimpleNamespace(params=Params())


def test_cli_without_dirs_is_pipeline_mode_and_names_missing_inputs(project):
    from fer_xai.cli import main  # input errors become one-line command errors there

    res = CliRunner().invoke(main, ["compare", "--no-mlflow"])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert str(project / "heatmaps") in res.output and "fer-xai heatmaps" in res.output
    (project / "heatmaps" / "by_cv").mkdir(parents=True)
    res = CliRunner().invoke(main, ["compare", "--no-mlflow"])
    assert res.exit_code != 0 and str(project / "masks") in res.output and "fer-xai masks" in res.output
    res = CliRunner().invoke(cli, ["--heatmaps-dir", "x"], obj=_OBJ)
    assert res.exit_code != 0 and "--masks-dir" in res.output


# --- bad inputs -----------------------------------------------------------------------------


def _png(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _small_fixture(root: Path, mask_shape=(12, 10)) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    hm_dir, mask_dir = root / "heatmaps" / "by_cv", root / "masks"
    for net in ("NetA", "NetB"):
        for k in (1, 2):
            for expr in ("Anger", "Fear"):
                _png(hm_dir / f"{net}_CV{k}_{expr}_heatmap.png",
                     rng.integers(0, 256, (12, 10)).astype(np.uint8))
    for expr in ("Anger", "Fear"):
        m = np.zeros(mask_shape, np.uint8)
        m[3:8, 2:6] = 255
        _png(mask_dir / f"{expr}_gt.png", np.stack([m] * 3, axis=-1))  # 3 identical channels
    return root / "heatmaps", mask_dir


def test_small_fixture_runs_with_fold_mean(tmp_path):
    hm, masks = _small_fixture(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.UndefinedMetricWarning)
        res = CliRunner().invoke(cli, ["--heatmaps-dir", str(hm), "--masks-dir", str(masks),
                                       "--out", str(tmp_path / "out"), "--no-mlflow"], obj=_OBJ)
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert pd.read_csv(tmp_path / "out" / "dendrograms.csv")["heatmaps"].eq("fold_mean").all()
    assert len(pd.read_csv(tmp_path / "out" / "ekman_metrics.csv")) == 2 * 2 * 2


def test_missing_mask_is_named(tmp_path):
    hm, masks = _small_fixture(tmp_path)
    (masks / "Fear_gt.png").unlink()
    res = CliRunner().invoke(cli, ["--heatmaps-dir", str(hm), "--masks-dir", str(masks),
                                   "--out", str(tmp_path / "out"), "--no-mlflow"], obj=_OBJ)
    assert res.exit_code != 0
    # a domain error (fer_xai.cli prints it as one line), not a crash
    assert isinstance(res.exception, CompareInputError) and isinstance(res.exception, FerXaiError)
    assert "missing Ekman mask" in str(res.exception) and "Fear_gt.png" in str(res.exception)
    with pytest.raises(CompareInputError, match="Fear_gt.png"):
        compare_published(hm, masks, tmp_path / "out2")


def test_shape_mismatch_is_named(tmp_path):
    hm, masks = _small_fixture(tmp_path, mask_shape=(14, 10))
    with pytest.raises(CompareInputError, match=r"shape mismatch.*_heatmap\.png.*12x10.*_gt\.png.*14x10"):
        compare_published(hm, masks, tmp_path / "out")


def test_unreadable_heatmap_is_named(tmp_path):
    hm, masks = _small_fixture(tmp_path)
    bad = hm / "by_cv" / "NetA_CV1_Anger_heatmap.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(CompareInputError, match="NetA_CV1_Anger_heatmap.png.*unreadable"):
        compare_published(hm, masks, tmp_path / "out")


def test_no_heatmaps_is_clear(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CompareInputError, match="no per-fold heatmaps"):
        find_heatmaps(tmp_path / "empty")


def test_params_come_from_project_params_when_present():
    from types import SimpleNamespace

    from fer_xai.stages.compare import _resolve_params

    cp = CompareParams(correlation="uncentred", bootstrap_samples=100)
    obj = SimpleNamespace(params=SimpleNamespace(compare=cp, tracking=SimpleNamespace(experiment="exp")))
    assert _resolve_params(obj) == (cp, "exp")
    with pytest.raises(ValidationError):
        CompareParams(correlation="spearman")
