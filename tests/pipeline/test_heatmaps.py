"""Heatmaps: standardization, aggregation, the stage on fabricated explanations, planted truth."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from fer_xai.faces.canonical import canonical_space
from fer_xai.heatmaps import GridCache, HeatmapSums, normalize_map, stretch, to_png
from fer_xai.heatmaps.planted import MaskMeans, planted_truth_table
from fer_xai.labels import DISPLAY_NAMES, EXPRESSIONS

MODELS = {"silnet": 48, "weinet": 32}  # model -> input size (two resolutions of the same faces)
FOLDS = (1, 2)
DISPLAY_NAMES_NET = {"silnet": "SilNet", "weinet": "WeiNet"}


# ----------------------------------------------------------------------------- unit level


@pytest.fixture(scope="module")
def space():
    return canonical_space()


def test_normalize_map_by_its_max():
    m, empty = normalize_map(np.array([[0.0, 0.2], [0.4, -1.0]]))
    assert not empty and m.dtype == np.float32 and np.allclose(m, [[0, 0.5], [1, 0]])
    z, empty = normalize_map(np.zeros((3, 3)))
    assert empty and not z.any()


def test_stretch_and_png():
    h = stretch(np.array([[2.0, 3.0], [4.0, 6.0]]))
    assert h.min() == 0 and h.max() == 1 and np.isclose(h[0, 1], 0.25)
    assert to_png(h).tolist() == [[0, 64], [128, 255]]
    assert not stretch(np.full((2, 2), 5.0)).any()


def test_heatmap_sums_pool_maps_not_fold_means():
    sums = HeatmapSums((2, 2))
    a = np.full((3, 2, 2), 30, np.uint8)
    a[:, 0, 0] = 90
    b = np.full((1, 2, 2), 200, np.uint8)
    b[:, 1, 1] = 0
    sums.add("silnet", 1, ["anger"] * 3, a)
    sums.add("silnet", 2, ["angry", "neutral"], np.concatenate([b, b]))  # aliases; neutral ignored
    assert sums.counts[("silnet", 1, "anger")] == 3 and sums.counts[("silnet", 2, "anger")] == 1
    assert sums.ignored == {"neutral": 1}
    net = sums.by_net()[("silnet", "anger")]
    pooled = (3 * a[0].astype(float) + b[0]) / 4 / 255
    assert net.n == 4 and np.allclose(net.values, stretch(pooled))
    assert np.isclose(net.lo, pooled.min()) and np.isclose(net.hi, pooled.max())
    empty = sums.by_cv()[("silnet", 1, "fear")]
    assert empty.n == 0 and np.isnan(empty.values).all()
    rows = pd.DataFrame(sums.count_rows())
    assert len(rows) == 2 * 6 and rows["n"].sum() == 4


def test_grid_cache_reuses_one_grid_per_face(space):
    lm = space.landmarks * 0.2 + 4  # a face in a 64 px image
    cache = GridCache(space, max_items=4)
    g64 = cache.get("a", lm, (64, 64))
    lm32 = (lm + 0.5) * 0.5 - 0.5
    g32 = cache.get("a", lm32, (32, 32))
    assert cache.built == 1 and cache.reused == 1
    fresh = space.grid(lm32, (32, 32))
    assert np.abs(g32.map_x - fresh.map_x).max() < 1e-3 and g64.src_shape == (64, 64)
    cache.get("a", lm + 1.0, (64, 64))  # other landmarks under the same id: rebuilt
    assert cache.built == 2
    bad = lm.copy()
    bad[:, 0] = 63 - bad[:, 0]
    from fer_xai.faces.canonical import WarpRejected

    for _ in range(2):
        with pytest.raises(WarpRejected):
            cache.get("bad", bad, (64, 64))
    assert cache.built == 3  # the rejection is cached too
    for i in range(5):
        cache.get(f"x{i}", lm, (64, 64))
    assert len(cache._items) == 4


def test_planted_truth_table():
    masks = MaskMeans((10, 10))
    m = np.zeros((10, 10), bool)
    m[2:6, 2:6] = True
    for _ in range(3):
        masks.add("anger", m)
    masks.add("anger", np.zeros_like(m))  # 3 of 4 images changed there: >= 0.5
    heat = np.zeros((10, 10), np.uint8)
    heat[2:6, 2:4] = 255
    t = planted_truth_table({"anger": heat}, masks, 0.5).set_index("expression")
    assert t.loc["anger", "precision"] == 1.0 and t.loc["anger", "recall"] == 0.5
    assert t.loc["anger", "n_images"] == 4 and np.isnan(t.loc["fear", "iou"])


# ------------------------------------------------------------------------- the stage


def fabricate_explanations(root: Path, placement: str, seed: int = 0, reject: str | None = None) -> dict:
    """Explanations of the tiny study's prepared faces for MODELS x FOLDS (the format `fer-xai explain` writes).

    ``placement``: "inside": positive weights only inside the image's AU-region mask;
    "outside": only on the face outside it. Every map is explained as its true label.
    """
    from fer_xai.prepared import load_prepared

    rng = np.random.default_rng(seed)
    ps = load_prepared(root / "data" / "prepared")
    folds = pd.read_csv(root / "data" / "folds.csv", dtype={"id": str})
    expected = {}
    for model, size in MODELS.items():
        for fold in FOLDS:
            ids = folds.loc[folds["fold"] == fold, "id"].tolist()
            rows = ps.rows(ids)
            faces, lms = ps.faces(ids, size)
            maps = np.zeros((len(ids), size, size), np.float32)
            for i, r in enumerate(rows.itertuples()):
                mask = cv2.resize(np.asarray(Image.open(ps.root / r.mask)), (size, size),
                                  interpolation=cv2.INTER_AREA) > 127
                face = faces[i] > 20  # the face, not the black border of the crop
                region = mask if placement == "inside" else (~mask & face)
                maps[i] = region * rng.uniform(0.2, 1.0)
            labels = rows["label"].to_numpy().astype(str)
            if reject == model:
                lms[0, :, 0] = size - 1 - lms[0, :, 0]  # mirrored landmarks: a flipped face
            out = root / "explanations" / model / f"fold{fold}"
            out.mkdir(parents=True, exist_ok=True)
            n = len(ids)
            np.savez_compressed(
                out / "explanations.npz", ids=np.array(ids, dtype=str), classes=labels, labels=labels,
                correct=np.ones(n, bool), maps=maps, segments=np.zeros((n, size, size), np.int32),
                weights=np.full((n, 3), np.nan, np.float32), landmarks=lms.astype(np.float32),
                input_size=np.int32(size), model=np.array(model), fold=np.int32(fold))
            (out / "summary.json").write_text(json.dumps({"model": model, "fold": fold, "n_explained": n}))
            expected[(model, fold)] = labels
    return expected


def study_params(root: Path, **heatmaps) -> Path:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"]["models"] = list(MODELS)
    for model, size in MODELS.items():
        params["train"].setdefault("networks", {})[model] = {"input_size": size, "epochs": 1}
    params["train"]["folds"] = list(FOLDS)
    params["heatmaps"] = {"log_to_mlflow": False, **heatmaps}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root / "params.yaml"


def invoke(root: Path, *args):
    from fer_xai.cli import main

    return CliRunner().invoke(main, ["--params", str(root / "params.yaml"), *args])


def test_heatmaps_stage_outputs_counts_and_planted_truth(tiny_study):
    root = tiny_study
    expected = fabricate_explanations(root, "inside", reject="weinet")
    study_params(root)
    res = invoke(root, "heatmaps")
    assert res.exit_code == 0, res.output + repr(res.exception)
    hm = root / "heatmaps"

    # Per-image standardized maps  and counts.
    counts = pd.read_csv(hm / "counts.csv")
    assert list(counts.columns) == ["model", "fold", "expression", "n"] and len(counts) == 2 * 2 * 6
    rejected = pd.read_csv(hm / "rejected.csv")
    assert len(rejected) == 2 and set(rejected["reason"]) == {"flipped_triangle"}  # weinet, both folds
    for (model, fold), labels in expected.items():
        with np.load(hm / "standardized" / model / f"fold{fold}.npz") as z:
            assert z["maps"].dtype == np.uint8 and z["maps"].shape[1:] == (275, 224)
            n_rej = int(((rejected["model"] == model) & (rejected["fold"] == fold)).sum())
            assert len(z["ids"]) == len(labels) - n_rej and z["maps"].max() == 255
            classes, maps = z["classes"].astype(str), z["maps"]
        for e in EXPRESSIONS:
            n = int(counts.query("model == @model and fold == @fold and expression == @e")["n"].iloc[0])
            assert n == int((classes == e).sum())
            if n:
                # The published-format heatmap is the stretched mean of those uint8 maps.
                png = np.asarray(Image.open(hm / "by_cv" / f"{DISPLAY_NAMES_NET[model]}_CV{fold}_"
                                            f"{DISPLAY_NAMES[e]}_heatmap.png"))
                mean = maps[classes == e].astype(np.float64).mean(axis=0)
                assert png.shape == (275, 224) and png.dtype == np.uint8 and png.min() == 0 and png.max() == 255
                assert np.array_equal(png, to_png(stretch(mean)))
    with np.load(hm / "heatmaps.npz") as z:
        assert z["by_cv"].shape == (2, 2, 6, 275, 224) and z["by_net"].shape == (2, 6, 275, 224)
        assert z["total"].shape == (6, 275, 224) and z["by_cv"].dtype == np.float32
        assert z["by_cv_n"].sum() == counts["n"].sum() == z["total_n"].sum()
        assert list(z["models"]) == list(MODELS) and list(z["folds"]) == list(FOLDS)
        total = z["total"]
    for e in EXPRESSIONS:
        assert (hm / "total" / f"{DISPLAY_NAMES[e]}_heatmap.png").is_file()
        assert (hm / "color" / "total" / f"{DISPLAY_NAMES[e]}_color.png").is_file()
        for net in DISPLAY_NAMES_NET.values():
            assert (hm / "by_net" / f"{net}_{DISPLAY_NAMES[e]}_heatmap.png").is_file()
        png = np.asarray(Image.open(hm / "total" / f"{DISPLAY_NAMES[e]}_heatmap.png")).astype(int)
        # heatmaps.npz holds float32: its rint may differ by one level at exact halves.
        assert np.abs(png - to_png(total[list(EXPRESSIONS).index(e)])).max() <= 1
    for fig in ("total.png", "by_net.png", "by_cv_SilNet.png", "by_cv_WeiNet.png"):
        assert (hm / "figures" / fig).is_file()
    assert (hm / "mean_face.png").is_file()

    # One grid per face: the 32 px maps reuse the 48 px maps' grids.
    metrics = json.loads((hm / "summary.json").read_text())
    n_faces = sum(len(expected[("silnet", k)]) for k in FOLDS)
    # weinet's mirrored face shares its id with silnet's normal one: per fold, its grid is rebuilt
    # (and rejected) for weinet, then rebuilt again for the face's mask with silnet's landmarks.
    assert metrics["grids_built"] == n_faces + 4
    assert metrics["grids_reused"] >= metrics["n_explanations"] - metrics["grids_built"]
    assert metrics["n_rejected"] == 2 and metrics["n_explanations"] == 2 * n_faces

    # Planted truth: maps inside the AU regions -> the total heatmap sits in the mean mask.
    planted = pd.read_csv(hm / "planted_truth.csv").set_index("expression")
    assert list(planted.index) == list(EXPRESSIONS)
    assert (planted["precision"] >= 0.8).all(), planted
    assert metrics["planted_truth"]["mean"]["precision"] >= 0.8
    assert (hm / "planted" / "Anger_planted.png").is_file()
    # DVC's headline metrics: the counts and the planted-truth means (`dvc exp show` stays narrow).
    headline = json.loads((root / "metrics" / "heatmaps.json").read_text())
    assert headline == {"n_explanations": metrics["n_explanations"], "n_standardized": metrics["n_standardized"],
                        "n_rejected": 2, "planted_truth": metrics["planted_truth"]["mean"]}


def test_planted_truth_precision_is_low_when_maps_miss_the_regions(tiny_study):
    root = tiny_study
    fabricate_explanations(root, "outside")
    study_params(root)
    res = invoke(root, "heatmaps")
    assert res.exit_code == 0, res.output + repr(res.exception)
    planted = pd.read_csv(root / "heatmaps" / "planted_truth.csv").set_index("expression")
    assert (planted["precision"] <= 0.3).all(), planted


def test_heatmaps_logged_into_training_runs(tiny_study):
    import mlflow
    from mlflow.tracking import MlflowClient

    from fer_xai.registry import fold_alias, registered_name
    from fer_xai.tracking import configure

    root = tiny_study
    fabricate_explanations(root, "inside")
    study_params(root, log_to_mlflow=True)
    configure("fer-xai")
    client = MlflowClient()
    runs = {}
    for model in MODELS:  # registry versions for silnet only: weinet falls back to summary.json or warns
        if model == "silnet":
            client.create_registered_model(registered_name(model))
        for fold in FOLDS:
            with mlflow.start_run(run_name=f"train {model} fold{fold}") as run:
                pass
            runs[(model, fold)] = run.info.run_id
            if model == "silnet":
                mv = client.create_model_version(registered_name(model), source=f"runs:/{run.info.run_id}/model",
                                                 run_id=run.info.run_id)
                client.set_registered_model_alias(registered_name(model), fold_alias(fold), mv.version)
    summary = root / "explanations" / "weinet" / "fold1" / "summary.json"
    summary.write_text(json.dumps({"run_id": runs[("weinet", 1)]}))
    res = invoke(root, "heatmaps")
    assert res.exit_code == 0, res.output + repr(res.exception)
    for (model, fold), run_id in runs.items():
        names = {a.path for a in client.list_artifacts(run_id, "heatmaps/by_cv")}
        if model == "weinet" and fold == 2:
            assert not names  # neither registered nor recorded: a warning, not a failure
            continue
        net = DISPLAY_NAMES_NET[model]
        assert f"heatmaps/by_cv/{net}_CV{fold}_Anger_heatmap.png" in names, names
        assert not any(f"_CV{3 - fold}_" in n for n in names)
        assert client.list_artifacts(run_id, "heatmaps/by_net")
    stage_runs = client.search_runs([mlflow.get_experiment_by_name("fer-xai").experiment_id],
                                    filter_string="tags.`fer_xai.stage` = 'heatmaps'")
    assert len(stage_runs) == 1 and "planted.mean.iou" in stage_runs[0].data.metrics


def test_heatmaps_without_registry_or_prepared_set(project):
    """Fabricated faces with no prepared set: heatmaps still come out; MLflow only warns."""
    space = canonical_space()
    rng = np.random.default_rng(0)
    for model, size in MODELS.items():
        for fold in FOLDS:
            n = 12
            lms = np.stack([(space.landmarks + rng.normal(0, 1.0, (68, 2))) * (size - 8) / 275 + 4
                            for _ in range(n)])
            out = project / "explanations" / model / f"fold{fold}"
            out.mkdir(parents=True)
            classes = np.array([EXPRESSIONS[i % 6] for i in range(n)])
            np.savez_compressed(
                out / "explanations.npz", ids=np.array([f"f{i}" for i in range(n)]), classes=classes,
                labels=classes, correct=np.ones(n, bool), maps=rng.random((n, size, size)).astype(np.float32),
                segments=np.zeros((n, size, size), np.int32), weights=np.zeros((n, 1), np.float32),
                landmarks=lms.astype(np.float32), input_size=np.int32(size), model=np.array(model),
                fold=np.int32(fold))
    (project / "params.yaml").write_text(yaml.safe_dump(
        {"train": {"models": list(MODELS), "folds": list(FOLDS)}, "heatmaps": {"log_to_mlflow": True}}))
    res = invoke(project, "heatmaps")
    assert res.exit_code == 0, res.output + repr(res.exception)
    hm = project / "heatmaps"
    assert len(list((hm / "by_cv").glob("*.png"))) == 2 * 2 * 6
    assert not (hm / "planted_truth.csv").exists()
    assert json.loads((project / "metrics" / "heatmaps.json").read_text())["planted_truth"] is None


def test_missing_explanations_are_named(project):
    (project / "params.yaml").write_text(yaml.safe_dump({"train": {"models": ["silnet"], "folds": [1, 2]}}))
    res = invoke(project, "heatmaps")
    assert res.exit_code != 0
    assert str(project / "explanations" / "silnet" / "fold1" / "explanations.npz") in res.output
    assert not (project / "heatmaps").exists()


def test_heatmap_recipe_matches_the_compare_stage():
    """Our by_cv PNG equals the compare stage's fold_heatmap of the same standardized maps."""
    pipeline = pytest.importorskip("fer_xai.compare.pipeline")
    rng = np.random.default_rng(1)
    maps = rng.integers(0, 256, (7, 11, 9)).astype(np.uint8)
    sums = HeatmapSums((11, 9))
    sums.add("silnet", 1, ["fear"] * 7, maps)
    ours = to_png(sums.by_cv()[("silnet", 1, "fear")].values)
    assert np.array_equal(ours, pipeline.fold_heatmap(maps))
