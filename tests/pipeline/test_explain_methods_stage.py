"""The explanation method as a dimension: explain, heatmaps and compare of a method other than LIME."""

import json

import numpy as np
import pandas as pd
import pytest

from fer_xai.explain.store import load_explanations
from helpers.cli import invoke


@pytest.mark.slow
def test_gradcam_explains_the_lime_selection_into_its_own_folders(tiny_study, astronaut_gray, tmp_path):
    import cv2
    from mlflow.tracking import MlflowClient

    root = tiny_study
    invoke(root, "train", "--model", "songnet", "--fold", "1", "--epochs", "1")
    args = ["-S", "explain.positives_per_class=2", "-S", "explain.num_samples=40", "-S", "train.folds=[1]"]
    invoke(root, *args, "explain", "--model", "songnet", "--fold", "1")
    invoke(root, *args, "explain", "--method", "gradcam")  # no --model: every network of train.models
    lime = load_explanations(root / "explanations" / "songnet" / "fold1" / "explanations.npz")
    out = root / "explanations_methods" / "gradcam" / "songnet" / "fold1"
    cam = load_explanations(out / "explanations.npz")
    assert str(cam.extra["method"]) == "gradcam"
    assert list(cam.ids) == list(lime.ids) and list(cam.classes) == list(lime.classes)  # same images
    assert cam.maps.shape == lime.maps.shape and (cam.maps >= 0).all() and cam.maps.max() > 0
    np.testing.assert_array_equal(cam.maps, np.maximum(cam.extra["signed_maps"], 0))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "gradcam" and summary["settings"]["kind"] == "gradcam"
    assert summary["prediction_mismatches"] == 0
    arts = {a.path for a in MlflowClient().list_artifacts(summary["run_id"], "explanations_gradcam")}
    assert "explanations_gradcam/explanations.npz" in arts

    # Heatmaps and the comparison of gradcam, beside LIME's and in the same layout.
    invoke(root, *args, "heatmaps", "--method", "gradcam", "--no-mlflow")
    hm = root / "heatmaps_methods" / "gradcam"
    assert (hm / "heatmaps.npz").is_file() and (hm / "total").is_dir()
    assert (root / "metrics" / "heatmaps_gradcam.json").is_file() and not (root / "heatmaps").exists()
    assert invoke(root, *args, "heatmaps", "--method", "nope", ok=False).exit_code == 2
    invoke(root, "masks", "--out", "masks")
    invoke(root, *args, "compare", "--method", "gradcam", "--no-mlflow")
    cmp_out = root / "reports" / "compare_methods" / "gradcam"
    assert cmp_out.is_dir() and any(cmp_out.glob("*.csv"))
    assert (root / "metrics" / "compare_gradcam.json").is_file() and not (root / "reports" / "compare").exists()

    # New images with --method
    imgs = tmp_path / "new"
    imgs.mkdir()
    cv2.imwrite(str(imgs / "face.png"), astronaut_gray)
    new_out = tmp_path / "out"
    invoke(root, "explain", "--model-uri", "models:/fer-songnet@fold1", "--images", str(imgs), "--out",
            str(new_out), "--method", "integrated_gradients")
    ex = load_explanations(new_out / "explanations.npz")
    assert list(ex.ids) == ["face.png"] and str(ex.extra["method"]) == "integrated_gradients"
    pred = pd.read_csv(new_out / "predictions.csv")
    assert (new_out / pred["overlay"][0]).is_file()
    bad = invoke(root, "explain", "--model", "songnet", "--method", "saliency", ok=False)
    assert bad.exit_code == 2 and "saliency" in bad.output
