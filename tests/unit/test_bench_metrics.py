"""The bench's metrics on tiny arrays: each against an axiom or a hand-computed case."""

from __future__ import annotations

import numpy as np
import pytest

from fer_xai.bench import agreement, causal, chance, curves, planted, regions


def _linear_predict(weights: np.ndarray):
    """A 2-class 'model': p1 = sigmoid(sum(w * x) / 255 - 1), evidence only where w > 0."""
    def predict(batch):
        x = np.asarray(batch, np.float64)[..., 0]
        z = (x * weights).sum(axis=(1, 2)) / 255.0 - 1.0
        p1 = 1 / (1 + np.exp(-z))
        return np.stack([1 - p1, p1], axis=1).astype(np.float32)
    return predict


SIZE = 12
W = np.zeros((SIZE, SIZE))
W[2:5, 3:9] = 1.0  # the planted evidence: 18 pixels


def _images(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(100, 255, (n, SIZE, SIZE)).astype(np.float32)


def test_region_helpers():
    m = np.zeros((4, 4))
    m[0, :2] = [1.0, 0.5]
    assert regions.top_fraction_region(m, 2 / 16).sum() == 2 and regions.top_fraction_region(m, 2 / 16)[0, :2].all()
    assert not regions.otsu_region(np.zeros((4, 4))).any()
    assert regions.otsu_region(m)[0, 0]
    blob = regions.random_blob_region((20, 20), 37, np.random.default_rng(1))
    assert blob.sum() == 37
    assert np.array_equal(blob, regions.random_blob_region((20, 20), 37, np.random.default_rng(1)))


def test_causal_drop_is_zero_for_an_empty_region_or_a_neutral_equal_to_the_image():
    imgs = _images()
    predict = _linear_predict(W)
    empty = np.zeros(imgs.shape, bool)
    full = np.ones(imgs.shape, bool)
    d = causal.class_drops(predict, imgs, imgs * 0.2, np.ones(3, int), {"empty": empty})
    assert np.allclose(d["empty"], 0)
    d = causal.class_drops(predict, imgs, imgs.copy(), np.ones(3, int), {"full": full})
    assert np.allclose(d["full"], 0)


def test_causal_drop_of_the_planted_region_exceeds_a_region_off_it():
    imgs = _images()
    neutral = imgs.copy()
    neutral[:, W > 0] = 0  # the expression: bright pixels on the evidence
    planted_region = np.broadcast_to(W > 0, imgs.shape)
    off = np.zeros(imgs.shape, bool)
    off[:, 8:11, 0:6] = True  # same area, outside the evidence
    d = causal.class_drops(_linear_predict(W), imgs, neutral, np.ones(3, int),
                           {"planted": planted_region, "off": off})
    assert (d["planted"] > 0.3).all() and np.allclose(d["off"], 0)


def test_deletion_auc_of_the_true_map_is_below_random_and_insertion_above():
    imgs = _images(4)
    maps = np.broadcast_to(W, imgs.shape)
    predict = _linear_predict(W)
    good = curves.deletion_insertion(predict, imgs, maps, np.ones(4, int), steps=8, fill="black")
    rnd = curves.deletion_insertion(predict, imgs, maps, np.ones(4, int), steps=8, fill="black", random_order=True)
    assert (good["deletion"] < rnd["deletion"]).all()
    assert (good["insertion"] > rnd["insertion"]).all()
    # Step 0 of deletion is the image itself, the last step all fill (for insertion: the reverse).
    p = predict(imgs[..., None])[:, 1]
    assert np.allclose(good["deletion_curve"][:, 0], p, atol=1e-6)
    assert np.allclose(good["insertion_curve"][:, -1], p, atol=1e-6)
    assert np.allclose(good["deletion_curve"][:, -1], good["insertion_curve"][:, 0])


def test_auc_hand_computed_and_blur_fill():
    assert curves.auc(np.array([1.0, 0.0])) == pytest.approx(0.5)
    assert curves.auc(np.array([1.0, 1.0, 0.0])) == pytest.approx(0.75)
    img = np.full((10, 10), 80.0, np.float32)
    assert np.allclose(curves.fill_image(img, "blur"), 80.0, atol=1e-3)
    order = np.arange(100)
    steps = curves.curve_images(img, order, 4, np.zeros_like(img), "deletion")
    assert [int((s == 0).sum()) for s in steps] == [0, 25, 50, 75, 100]


def test_planted_scores_hand_computed():
    total = np.zeros((10, 10), np.uint8)
    total[:4, :5] = 255  # 20 px predicted
    truth = np.zeros((10, 10), bool)
    truth[:2, :] = True  # 20 px truth, 10 overlap
    s = planted.planted_scores(total, truth)
    assert s["precision"] == pytest.approx(0.5) and s["recall"] == pytest.approx(0.5)
    assert s["iou"] == pytest.approx(10 / 30)
    assert s["relevance_mass"] == pytest.approx(0.5) and s["area_share"] == pytest.approx(0.2)
    assert s["relevance_lift"] == pytest.approx(2.5)


def test_random_superpixel_chance_iou_matches_the_independence_expectation():
    # 8 x 8 superpixels of 4 x 4 px on a 32 x 32 image; the mask: a 12 x 20 box.
    seg = (np.arange(32)[:, None] // 4) * 8 + np.arange(32)[None, :] // 4
    mask = np.zeros((32, 32), bool)
    mask[4:16, 6:26] = True
    rng = np.random.default_rng(3)
    ious, expected = [], []
    for _ in range(400):
        m = chance.random_superpixel_maps(seg[None], rng)[0]
        pred = regions.otsu_region(m)
        ious.append((pred & mask).sum() / (pred | mask).sum())
        expected.append(chance.independent_iou(pred.mean(), mask.mean()))
    assert np.mean(ious) == pytest.approx(np.mean(expected), abs=0.02)


def test_prior_and_specificity():
    masks = {"a": np.zeros((10, 10), bool), "b": np.zeros((10, 10), bool)}
    masks["a"][:5] = True
    masks["b"][5:] = True
    totals = {"a": np.where(masks["a"], 255, 0).astype(np.uint8), "b": np.where(masks["b"], 255, 0).astype(np.uint8)}
    spec = chance.specificity(totals, masks).set_index("expression")
    assert spec["specific"].all() and (spec["own_iou"] == 1).all() and (spec["rank"] == 1).all()
    swapped = chance.specificity({"a": totals["b"], "b": totals["a"]}, masks).set_index("expression")
    assert not swapped["specific"].any() and (swapped["rank"] == 2).all()
    prior = chance.prior_scores(totals, masks)  # the mean is flat: Otsu selects nothing
    assert prior["iou"].fillna(0).max() == 0


def test_agreement_axioms():
    a = {"n1": 0.3, "n2": 0.2, "n3": 0.1}
    assert agreement.ranking_tau(a, a) == pytest.approx(1.0)
    assert agreement.ranking_tau(a, {k: -v for k, v in a.items()}) == pytest.approx(-1.0)
    assert np.isnan(agreement.ranking_tau({"n1": 1.0}, {"n1": 2.0}))
    assert agreement.set_agreement(["x", "y"], ["y", "z"]) == 0.5
    from scipy.cluster.hierarchy import linkage

    pts = np.array([[0.0], [1.0], [5.0], [6.5]])
    tree = linkage(pts, "average")
    assert agreement.cophenetic_agreement(tree, tree) == pytest.approx(1.0)
    other = linkage(np.array([[0.0], [5.0], [1.0], [6.5]]), "average")
    assert agreement.cophenetic_agreement(tree, other) < 0.5


def test_causal_verdicts():
    assert causal.causal_share(0.3, 0.5, 0.1) == pytest.approx(0.5)
    assert np.isnan(causal.causal_share(0.3, 0.1, 0.1))
    assert causal.verdict(0.12, 0.5, 0.1, planted_precision=0.4) == "artefact"
    assert causal.verdict(0.12, 0.5, 0.1, planted_precision=0.9) == "partial"
    assert causal.verdict(0.45, 0.5, 0.1, planted_precision=0.4) == "contrastive"
    assert causal.verdict(0.45, 0.5, 0.1, planted_precision=0.8) == "planted"
    assert causal.verdict(0.45, 0.11, 0.1, planted_precision=0.8) == "undecided"
