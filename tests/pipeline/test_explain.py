"""LIME explanations: agreement with the lime package, reproducibility, selection, the stage."""

import json

import numpy as np
import pandas as pd
import pytest

from fer_xai.config import SlicParams
from fer_xai.explain import LimeSettings, explain_image, make_perturbation, perturbation_rng, segment
from fer_xai.explain.perturb import perturbation_matrix, perturbed_batches
from fer_xai.explain.predictor import GraphPredictor
from fer_xai.explain.select import select_positives
from fer_xai.explain.store import load_explanations
from fer_xai.labels import EXPRESSIONS
from helpers.cli import invoke


@pytest.fixture(scope="module")
def face64(astronaut_gray):
    """A real aligned face at 64 px (SLIC gives one segment on noise: use a structured image)."""
    import cv2

    return cv2.resize(astronaut_gray[30:260, 130:360], (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)


@pytest.fixture(scope="module")
def small_cnn():
    import keras

    keras.utils.set_random_seed(3)
    return keras.Sequential([
        keras.Input((64, 64, 1)), keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(8, 3, activation="relu"), keras.layers.MaxPooling2D(4),
        keras.layers.Flatten(), keras.layers.Dense(6, activation="softmax"),
    ])


def test_segments_are_sequential_and_about_the_requested_count(face64):
    seg = segment(face64, SlicParams(n_segments=30))
    labels = np.unique(seg)
    assert labels[0] == 0 and labels[-1] == len(labels) - 1
    assert 15 <= len(labels) <= 45
    assert segment(face64 / 255.0).tolist() == seg.tolist()  # compactness means the same at any range


def test_perturbed_batches_equal_lime_loop(face64):
    """The lookup ``on[segments]`` builds exactly the images of lime's per-sample loop."""
    seg = segment(face64)
    data = perturbation_matrix(int(seg.max()) + 1, 23, np.random.RandomState(0))
    ours = np.concatenate(list(perturbed_batches(face64, seg, data, hide_color=0.0, batch_size=7)))
    assert ours.shape == (23, 64, 64, 1)
    for row, img in zip(data, ours):
        ref = face64.copy()
        for z in np.where(row == 0)[0]:
            ref[seg == z] = 0.0
        np.testing.assert_array_equal(img[..., 0], ref)
    np.testing.assert_array_equal(ours[0, ..., 0], face64)  # row 0 is the unperturbed image


def test_weights_equal_lime_package_to_1e6(face64, small_cnn):
    """Same image, model, segments and on/off matrix: lime's LimeImageExplainer gives our weights."""
    from lime.lime_image import LimeImageExplainer

    settings = LimeSettings(num_samples=300, batch_size=64)
    ours = explain_image(GraphPredictor(small_cnn), face64, "astronaut", settings)
    # lime draws its matrix from explainer.random_state; random_seed is given so that it draws
    # nothing before the matrix.
    explainer = LimeImageExplainer(kernel_width=0.25, random_state=perturbation_rng(settings.seed, "astronaut"))
    ref = explainer.explain_instance(
        face64, lambda x: small_cnn.predict_on_batch(x[..., :1]), labels=(ours.label,), top_labels=None,
        hide_color=0, num_samples=300, batch_size=10, segmentation_fn=lambda _: ours.segments, random_seed=0,
    )
    ref_w = np.zeros_like(ours.weights)
    for feat, w in ref.local_exp[ours.label]:
        ref_w[feat] = w
    assert np.abs(ours.weights).max() > 1e-5  # a non-trivial explanation
    np.testing.assert_allclose(ours.weights, ref_w, rtol=0, atol=1e-6)
    assert ours.intercept == pytest.approx(ref.intercept[ours.label], abs=1e-6)


def test_same_seed_same_map_other_seed_other_map(face64, small_cnn):
    pred = GraphPredictor(small_cnn)
    s = LimeSettings(num_samples=120)
    a = explain_image(pred, face64, "img", s).map()
    b = explain_image(pred, face64, "img", s).map()
    c = explain_image(pred, face64, "img", LimeSettings(num_samples=120, seed=12)).map()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and a.shape == (64, 64) and a.min() >= 0


def test_models_explaining_one_image_share_its_perturbation(face64):
    s = LimeSettings(num_samples=50)
    p1, p2 = make_perturbation(face64, "img", s), make_perturbation(face64, "img", s)
    np.testing.assert_array_equal(p1.data, p2.data)
    np.testing.assert_array_equal(p1.segments, p2.segments)
    assert not np.array_equal(p1.data, make_perturbation(face64, "other", s).data)


def test_select_positives_by_predicted_class_seeded():
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"id": [f"i{k:03d}" for k in range(n)], "subject": "s",
                       "label": rng.choice(EXPRESSIONS, n), "pred": rng.choice(EXPRESSIONS, n),
                       "confidence": 0.5})
    df["correct"] = df["label"] == df["pred"]
    sel = select_positives(df, 5, seed=1, model_id="silnet", fold=2)
    assert (sel.groupby("pred").size() == 5).all() and len(sel) == 30
    assert set(sel["id"]) <= set(df["id"])
    merged = sel.merge(df, on="id", suffixes=("", "_src"))
    assert (merged["pred"] == merged["pred_src"]).all() and (merged["correct"] == merged["correct_src"]).all()
    assert sel.equals(select_positives(df, 5, seed=1, model_id="silnet", fold=2))
    assert not sel["id"].equals(select_positives(df, 5, seed=2, model_id="silnet", fold=2)["id"])
    few = select_positives(df.iloc[:10], 100, seed=1, model_id="silnet", fold=2)
    assert len(few) == 10  # "up to N": all positives when there are fewer


@pytest.mark.slow
def test_explain_stage_from_registry(tiny_study):
    from mlflow.tracking import MlflowClient

    root = tiny_study
    invoke(root, "train", "--model", "songnet", "--fold", "1")
    args = ["-S", "explain.positives_per_class=2", "-S", "explain.num_samples=60", "-S", "explain.batch_size=32"]
    invoke(root, *args, "explain", "--model", "songnet", "--fold", "1")
    out = root / "explanations" / "songnet" / "fold1"
    ex = load_explanations(out / "explanations.npz")
    pred = pd.read_csv(root / "models" / "songnet" / "fold1" / "predictions.csv")
    expected = pred.groupby("pred").size().clip(upper=2).sum()
    assert len(ex) == expected and ex.input_size == 32
    assert ex.maps.shape == (len(ex), 32, 32) and (ex.maps >= 0).all()
    sel = pd.read_csv(out / "selection.csv")
    assert list(sel["id"]) == list(ex.ids) and list(sel["pred"]) == list(ex.classes)
    assert (ex.correct == (ex.classes == ex.labels)).all()
    for i in range(len(ex)):  # each map paints the positive weight of its superpixels
        n = int(ex.segments[i].max()) + 1
        np.testing.assert_allclose(ex.maps[i], np.maximum(ex.weights[i, :n], 0)[ex.segments[i]], atol=0)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model_uri"] == "models:/fer-songnet@fold1" and summary["prediction_mismatches"] == 0
    assert (out / "sample_sheet.png").stat().st_size > 0
    arts = {a.path for a in MlflowClient().list_artifacts(summary["run_id"], "explanations")}
    assert "explanations/explanations.npz" in arts and "explanations/sample_sheet.png" in arts

    first = ex.maps.copy()
    invoke(root, *args, "explain", "--model", "songnet", "--fold", "1")  # rerun: identical
    np.testing.assert_array_equal(load_explanations(out / "explanations.npz").maps, first)

    missing = invoke(root, *args, "explain", "--model", "songnet", "--fold", "2", ok=False)
    assert missing.exit_code != 0 and "models:/fer-songnet@fold2" in missing.output


@pytest.mark.slow
def test_explain_new_images_with_a_registered_model(tiny_study, astronaut_gray, tmp_path):
    import cv2

    root = tiny_study
    invoke(root, "train", "--model", "songnet", "--fold", "1", "--epochs", "1")
    imgs = tmp_path / "new"
    imgs.mkdir()
    cv2.imwrite(str(imgs / "face.png"), astronaut_gray)
    cv2.imwrite(str(imgs / "noise.png"), np.random.default_rng(0).integers(0, 255, (200, 200), np.uint8))
    (imgs / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    invoke(root, "-S", "explain.num_samples=40", "explain", "--model-uri", "models:/fer-songnet@fold1",
            "--images", str(imgs), "--out", str(out))
    ex = load_explanations(out / "explanations.npz")
    assert list(ex.ids) == ["face.png"] and ex.classes[0] in EXPRESSIONS
    rej = pd.read_csv(out / "rejected.csv")
    assert set(rej["path"]) == {"noise.png", "broken.jpg"}
    pred = pd.read_csv(out / "predictions.csv")
    assert list(pred["path"]) == ["face.png"] and (out / pred["overlay"][0]).is_file()

    only_noise = tmp_path / "noise_only"
    only_noise.mkdir()
    cv2.imwrite(str(only_noise / "noise.png"), np.random.default_rng(1).integers(0, 255, (200, 200), np.uint8))
    res = invoke(root, "explain", "--model-uri", "models:/fer-songnet@fold1", "--images", str(only_noise),
                  "--out", str(tmp_path / "o2"), ok=False)
    assert res.exit_code != 0 and "usable face" in res.output


def test_explain_usage_errors(project):
    res = invoke(project, "explain", ok=False)
    assert res.exit_code == 2 and "pass --model [--fold]" in res.output
    res = invoke(project, "explain", "--model", "nope", "--fold", "1", ok=False)
    assert res.exit_code == 2 and "unknown" in res.output
    res = invoke(project, "explain", "--model-uri", "models:/x@fold1", ok=False)
    assert res.exit_code == 2 and "--images" in res.output


@pytest.fixture(scope="module")
def held_out_study(tmp_path_factory):
    """24 synthetic subjects, aligned with the generator's landmarks (no detector: faster)."""
    from conftest import build_study

    root = build_study(tmp_path_factory.mktemp("held_out_study"), {
        "synth": {"seed": 21, "n_subjects": 24, "intensities": [0.8, 1.0], "image_size": 128, "workers": 2},
        "prepare": {"size": 64, "workers": 2, "landmarks_source": "dataset", "min_image_px": 32},
    }, split_folds=False)
    return root / "data" / "prepared"


@pytest.mark.slow
def test_hot_superpixels_lie_in_the_planted_au_regions(held_out_study):
    """A small CNN that learned the synthetic task looks at the generator's AU regions.

    Only the AU regions change between a subject's expressions; a model that recognises the
    expressions of subjects it never saw must use them. The top superpixels of its explanations
    on those subjects must fall in the AU-region mask far above the mask's area share (chance).
    """
    import cv2
    import keras

    from fer_xai.images import read_gray
    from fer_xai.prepared import load_prepared

    ps = load_prepared(held_out_study)
    m = ps.manifest.sort_values("id").reset_index(drop=True)
    faces, _ = ps.faces(m["id"], 64)
    y = np.array([EXPRESSIONS.index(v) for v in m["label"]])
    test = m["subject"].isin(sorted(m["subject"].unique())[-6:]).to_numpy()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((64, 64, 1)), keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(16, 3, activation="relu", padding="same"), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(32, 3, activation="relu", padding="same"), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(32, 3, activation="relu", padding="same"), keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(), keras.layers.Dropout(0.3), keras.layers.Dense(6, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(faces[~test][..., None].astype(np.float32), y[~test], epochs=30, batch_size=16, verbose=0)
    pred = GraphPredictor(model)
    acc = (pred(faces[test][..., None]).argmax(1) == y[test]).mean()
    assert acc > 0.6, acc  # it learned the task: chance is 1/6

    idx = np.where(test)[0]
    pick = np.concatenate([idx[y[idx] == k][:2] for k in range(6)])
    settings = LimeSettings(num_samples=300, batch_size=100)
    precisions, shares = [], []
    for i in pick:
        e = explain_image(pred, faces[i].astype(np.float32), m.at[i, "id"], settings, label=int(y[i]))
        mask = cv2.resize(read_gray(ps.mask_path(m.iloc[i])), (64, 64), interpolation=cv2.INTER_NEAREST) > 127
        hot = e.segments == int(np.argmax(e.weights))
        precisions.append((hot & mask).sum() / hot.sum())
        shares.append(mask.mean())
    print(f"held-out accuracy {acc:.3f}; top superpixel precision {np.mean(precisions):.3f}, "
          f"AU-mask share {np.mean(shares):.3f}")
    assert np.mean(precisions) >= 2 * np.mean(shares), (np.mean(precisions), np.mean(shares))
