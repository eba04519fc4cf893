"""The bench's readers of the heatmaps and compare folders, on hand-written tables and images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fer_xai import layout
from fer_xai.bench import canonical
from fer_xai.bench.run import methods_expressions, methods_summary
from fer_xai.config import Params
from fer_xai.labels import DISPLAY_NAMES, EXPRESSIONS

NETS = ["A", "B", "C"]


def _compare(folder, ious, best, tree_points):
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"model": n, "expression": "Avg", "iou": v, "f1": v} for n, v in zip(NETS, ious)]
    pd.DataFrame(rows).to_csv(folder / layout.EKMAN_TABLE, index=False)
    pd.DataFrame([{"expression": "Anger", "metric": "iou", "rank": 1, "best_model": best, "best_value": 1,
                   "worst_model": "C", "worst_value": 0}]).to_csv(folder / layout.BEST_WORST_CSV, index=False)
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import pdist, squareform

    pts = np.asarray(tree_points, float)[:, None]
    pd.DataFrame(squareform(pdist(pts)), index=pd.Index(NETS, name="model"), columns=NETS).to_csv(
        folder / layout.distances_name("Anger"))
    pd.DataFrame(linkage(pdist(pts), "average"), columns=["left", "right", "distance", "size"]).to_csv(
        folder / layout.linkage_name("Anger"), index=False)


def test_agreement_with_lime(project):
    p = Params()
    _compare(layout.compare_dir(p), [0.3, 0.2, 0.1], "A", [0, 1, 5])
    _compare(layout.compare_dir(layout.method_params(p, "gradcam")), [0.1, 0.2, 0.3], "C", [0, 1, 5])
    _compare(layout.compare_dir(layout.method_params(p, "occlusion")), [0.35, 0.25, 0.05], "A", [0, 5, 1])
    t = canonical.agreement_table(p, ["lime", "gradcam", "occlusion"]).set_index("method")
    assert t.loc["gradcam", "kendall_tau"] == pytest.approx(-1.0) and t.loc["occlusion", "kendall_tau"] == 1.0
    assert t.loc["gradcam", "best_agreement"] == 0.0 and t.loc["occlusion", "best_agreement"] == 1.0
    assert t.loc["gradcam", "dendrogram_correlation"] == pytest.approx(1.0)
    assert t.loc["occlusion", "dendrogram_correlation"] < 0.9
    with pytest.raises(Exception, match="unknown explanation method"):
        canonical.agreement_table(p, ["lime", "nosuch"])


def test_planted_table_rescores_the_heatmaps_folder(project):
    p = Params()
    hm = layout.heatmaps_dir(p)
    (hm / layout.TOTAL).mkdir(parents=True)
    (hm / layout.PLANTED).mkdir(parents=True)
    total = np.zeros((20, 20), np.uint8)
    total[:10] = 255
    truth = np.zeros((20, 20), np.uint8)
    truth[:5] = 255
    Image.fromarray(total).save(hm / layout.TOTAL / layout.total_name(DISPLAY_NAMES["sadness"]))
    Image.fromarray(truth).save(hm / layout.PLANTED / layout.planted_name(DISPLAY_NAMES["sadness"]))
    t = canonical.planted_table(p, ["lime", "gradcam"])
    assert len(t) == 1 and t.iloc[0]["expression"] == "sadness"
    assert t.iloc[0]["precision"] == pytest.approx(0.5) and t.iloc[0]["recall"] == pytest.approx(1.0)


def test_headline_tables_and_verdicts():
    planted = pd.DataFrame([{"method": "lime", "expression": "sadness", "precision": 0.4, "recall": 0.5, "iou": 0.3,
                             "relevance_mass": 0.5, "area_share": 0.2}])
    causal = pd.DataFrame([
        {"method": "lime", "expression": "sadness", "drop_otsu": 0.01, "drop_top_fraction": 0.0, "drop_planted": 0.4,
         "drop_random": 0.0, "otsu_in_planted": 0.2},
        {"method": "gradcam", "expression": "sadness", "drop_otsu": 0.35, "drop_top_fraction": 0.3,
         "drop_planted": 0.4, "drop_random": 0.0, "otsu_in_planted": 0.9},
    ])
    table = methods_expressions(planted, {"causal": causal}).set_index("method")
    assert table.loc["lime", "verdict"] == "artefact" and table.loc["gradcam", "verdict"] == "planted"
    assert table.loc["lime", "planted_precision"] == 0.4 and np.isnan(table.loc["gradcam", "planted_precision"])
    sanity = pd.DataFrame([{"method": "lime", "randomized_layers": 3, "total_layers": 3, "spearman": 0.9,
                            "ssim": 0.9}])
    summary = methods_summary(Params(), ["lime", "gradcam"], table.reset_index(), {"sanity": sanity},
                              pd.DataFrame(), pd.DataFrame()).set_index("method")
    assert not summary.loc["lime", "sanity_pass"]  # Spearman 0.9 after randomising every layer
    assert summary.loc["gradcam", "sanity_pass"] is None
    assert set(EXPRESSIONS) >= set(table["expression"])


def test_a_missing_fold_model_is_named(project):
    from fer_xai.bench.run import BenchInputError, probe_all

    def missing(model_id, fold):
        raise RuntimeError("no such alias")

    p = Params(bench={"fold": 2, "models": ["weinet"]})
    with pytest.raises(BenchInputError, match=r"models:/fer-weinet@fold2: cannot load the fold model"):
        probe_all(p, ["lime"], load_model=missing)
