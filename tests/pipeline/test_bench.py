"""``fer-xai bench`` on the tiny study: train, explain, heatmaps, masks, compare (fold 1), then the bench."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from helpers.cli import invoke


@pytest.mark.slow
def test_bench_stage_on_the_tiny_study(tiny_study):
    root = tiny_study
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"]["folds"] = [1]
    params["explain"] = {"positives_per_class": 3, "num_samples": 60, "batch_size": 64}
    params["compare"] = {"bootstrap_samples": 100}
    params["bench"] = {"methods": ["lime", "gradcam"], "images_per_class": 2, "correct_only": False, "curve_steps": 4,
                       "sanity_images": 2, "sanity_steps": 2, "chance_repeats": 2}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    invoke(root, "train", "--model", "songnet", "--fold", "1")
    invoke(root, "explain", "--model", "songnet", "--fold", "1", "--no-mlflow")
    invoke(root, "masks")
    for stage in ("heatmaps", "compare"):
        invoke(root, stage, "--no-mlflow")
    invoke(root, "bench")

    out = root / "reports" / "bench"
    table = pd.read_csv(out / "methods_expressions.csv")
    lime = table[table["method"] == "lime"]
    assert set(lime["expression"]) <= {"anger", "disgust", "fear", "happiness", "sadness", "surprise"}
    assert lime["planted_iou"].between(0, 1).all()  # the heatmaps stage's planted truth, rescored
    causal = pd.read_csv(out / "causal.csv")
    assert set(causal["method"]) == {"lime", "gradcam"} and len(causal) > 0
    assert (causal["planted_area"] > 0).all() and causal["p_class"].between(0, 1).all()
    curves = pd.read_csv(out / "curves.csv")
    assert {"random", "lime", "gradcam"} == set(curves["method"])
    assert curves[["deletion_auc", "insertion_auc"]].stack().between(0, 1).all()
    sanity = pd.read_csv(out / "sanity.csv")
    assert (sanity.groupby("method")["randomized_layers"].max() == sanity.groupby("method")["total_layers"].max()).all()
    chance = pd.read_csv(out / "chance_random_weights.csv")
    assert set(chance["repeat"]) == {0, 1} and chance["iou"].between(0, 1).all()
    assert (out / "totals.png").stat().st_size > 0
    metrics = json.loads((root / "metrics" / "bench.json").read_text())
    assert set(metrics["methods"]) == {"lime", "gradcam", "random"}
    assert "sanity_spearman" in metrics["methods"]["gradcam"]
    from mlflow.tracking import MlflowClient

    runs = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("fer-xai").experiment_id],
        filter_string="tags.`fer_xai.stage` = 'bench'")
    assert {r.data.tags["fer_xai.method"] for r in runs} == {"lime", "gradcam"}

    nets = pd.read_csv(out / "networks.csv")
    assert set(nets["method"]) == {"lime", "gradcam", "random"} and set(nets["model"]) == {"songnet"}
    run = next(r for r in runs if r.data.tags["fer_xai.method"] == "gradcam")
    assert "deletion_auc/songnet" in run.data.metrics and "sanity_spearman/songnet" in run.data.metrics
    cost = pd.read_csv(out / "cost.csv").set_index("method")
    assert cost.loc["lime", "maps"] == "stored" and cost.loc["gradcam", "maps"] == "computed"
    # The stored LIME maps are the ones the bench would compute (same seed per image id).
    import numpy as np

    from fer_xai.bench.run import explain_functions, select_faces, stored_maps
    from fer_xai.config import load_params
    from fer_xai.registry import load_fold_model

    p = load_params(root / "params.yaml")
    model = load_fold_model("songnet", 1)
    faces = select_faces(p, "songnet", 1, 32)
    maps, _ = stored_maps(p, "lime", "songnet", 1, faces.ids)
    fresh = explain_functions(p, ["lime"])["lime"](model, faces.images, faces.classes, p.explain.seed, faces.ids)
    np.testing.assert_allclose(maps, fresh, rtol=1e-5, atol=1e-7)

    invoke(root, "report", "--no-mlflow")
    html = (root / "reports" / "report.html").read_text()
    assert "Does the answer depend on the explainer?" in html and "Kendall" in html
    assert (root / "reports" / "report_figures" / "bench_totals.png").is_file()
