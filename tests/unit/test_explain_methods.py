"""The explanation methods behind one interface: each one's correctness check on tiny models."""

from math import factorial

import numpy as np
import pytest

from fer_xai.config import (
    ExplainParams,
    GradCamMethodParams,
    IntegratedGradientsMethodParams,
    KernelShapMethodParams,
    LimeMethodParams,
    OcclusionMethodParams,
    Params,
    RiseMethodParams,
    SlicParams,
)
from fer_xai.explain import LimeSettings, explain_images
from fer_xai.explain.methods import get_explainer, method_names
from fer_xai.explain.methods.base import as_explanations
from fer_xai.explain.methods.gradients import last_conv_layer
from fer_xai.explain.methods.kernelshap import coalitions
from fer_xai.explain.methods.lime import fill_image
from fer_xai.explain.methods.occlusion import patch_masks
from fer_xai.explain.predictor import GraphPredictor
from fer_xai.explain.segmentation import segment
from fer_xai.explain.store import load_explanations, save_explanations

SIZE = 32


@pytest.fixture(scope="module")
def faces(astronaut_gray):
    """Three structured gray faces at 32 px (SLIC needs structure, not noise)."""
    import cv2

    crops = [astronaut_gray[30:260, 130:360], astronaut_gray[20:250, 120:350], astronaut_gray[40:270, 140:370]]
    return np.stack([cv2.resize(c, (SIZE, SIZE), interpolation=cv2.INTER_AREA) for c in crops]).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_net():
    from fer_xai.models.zoo import build_model

    return build_model("songnet", SIZE, pretrained="none", seed=0)


@pytest.fixture(scope="module")
def cam_net():
    """conv (same padding, stride 1) -> GAP -> softmax: Grad-CAM is then exactly CAM (Zhou et al. 2016)."""
    import keras

    keras.utils.set_random_seed(5)
    x = keras.Input((SIZE, SIZE, 1))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(keras.layers.Rescaling(1 / 255)(x))
    y = keras.layers.Dense(6, activation="softmax", name="predictions")(keras.layers.GlobalAveragePooling2D()(a))
    return keras.Model(x, y)


CLASSES = np.array([0, 3, 5])


@pytest.fixture
def no_keras_cache(tmp_path, monkeypatch):
    """An empty Keras cache: the backbones build randomly initialised, never from a cached ImageNet file."""
    (tmp_path / "keras_home" / "models").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


# ------------------------------------------------------------------------------- the interface


def test_every_method_returns_maps_probs_and_segments_of_the_interface(faces, tiny_net):
    names = method_names()
    assert names[0] == "lime" and {"lime_mean", "lime_fine", "occlusion", "gradcam", "integrated_gradients",
                                    "ig_blur", "kernelshap", "rise"} <= set(names)
    fast = ExplainParams(num_samples=40, methods={
        **ExplainParams().methods, "lime_mean": LimeMethodParams(fill="mean", num_samples=40),
        "lime_fine": LimeMethodParams(num_samples=40, slic=SlicParams(n_segments=60)),
        "lime_blur": LimeMethodParams(fill="blur", num_samples=40),
        "kernelshap": KernelShapMethodParams(num_samples=40), "rise": RiseMethodParams(num_masks=64)})
    probs_ref = GraphPredictor(tiny_net)(faces[..., None])
    for name in names:
        res = get_explainer(name, fast).explain(tiny_net, faces, CLASSES, seed=1)
        assert res.method == name
        assert res.maps.shape == faces.shape and res.maps.dtype == np.float32, name
        assert np.isfinite(res.maps).all() and np.abs(res.maps).max() > 0, name
        np.testing.assert_allclose(res.probs, probs_ref, atol=1e-5, err_msg=name)
        superpixels = fast.methods.get(name, LimeMethodParams()).kind in ("lime", "kernelshap")
        assert (res.segments is not None) == superpixels, name
        if superpixels:
            assert res.segments.shape == faces.shape and res.segments.dtype == np.int32
            # a superpixel method paints one value per superpixel
            for i in range(len(faces)):
                for z in np.unique(res.segments[i]):
                    assert np.ptp(res.maps[i][res.segments[i] == z]) == 0
        assert (res.positive_maps() >= 0).all()


def test_lime_is_todays_lime_bit_for_bit(faces, tiny_net):
    ep = ExplainParams(num_samples=60, batch_size=16)
    ids = ["a", "b", "c"]
    res = get_explainer("lime", ep).explain(GraphPredictor(tiny_net), faces, CLASSES, seed=ep.seed, image_ids=ids)
    ref = explain_images(GraphPredictor(tiny_net), faces, ids, LimeSettings.from_params(ep), labels=CLASSES.tolist())
    for i, e in enumerate(ref):
        np.testing.assert_array_equal(res.positive_maps()[i], e.map())
        np.testing.assert_array_equal(res.segments[i], e.segments)
        np.testing.assert_array_equal(res.weights[i][:len(e.weights)], e.weights.astype(np.float32))
        assert res.extra["score"][i] == e.score
    # and the stage's conversion keeps them
    for e, back in zip(ref, as_explanations(res, ids)):
        np.testing.assert_array_equal(back.map(), e.map())


def test_methods_are_deterministic_given_the_seed(faces, tiny_net):
    for name in ("lime", "kernelshap", "occlusion", "gradcam", "integrated_gradients"):
        settings = {"kernelshap": KernelShapMethodParams(num_samples=40)}.get(name)
        ex = get_explainer(name, settings) if settings else get_explainer(name, ExplainParams(num_samples=40))
        a = ex.explain(tiny_net, faces, CLASSES, seed=4).maps
        np.testing.assert_array_equal(a, ex.explain(tiny_net, faces, CLASSES, seed=4).maps, err_msg=name)
        if name in ("lime", "kernelshap"):  # the seeded ones: another seed, other perturbations
            assert not np.array_equal(a, ex.explain(tiny_net, faces, CLASSES, seed=5).maps), name


def test_unknown_method_and_reserved_names_are_clear_errors():
    with pytest.raises(KeyError, match="unknown explanation method 'saliency'"):
        get_explainer("saliency")
    with pytest.raises(ValueError, match="'lime' is the paper's LIME"):
        ExplainParams(methods={"lime": LimeMethodParams()})
    with pytest.raises(ValueError, match="methods_enabled .*'nope'"):
        ExplainParams(methods_enabled=("nope",))
    with pytest.raises(ValueError, match="LIME always runs"):
        ExplainParams(methods_enabled=("lime",))


# ----------------------------------------------------------------------------- LIME variants


def test_mean_and_blur_fills(faces):
    seg = segment(faces[0], SlicParams(n_segments=10))
    mean = fill_image(faces[0], seg, "mean", 0.0, 4.0)
    for z in np.unique(seg):
        np.testing.assert_allclose(mean[seg == z], faces[0][seg == z].mean(), rtol=1e-5)
    blur = fill_image(faces[0], seg, "blur", 0.0, 3.0)
    assert blur.shape == faces[0].shape and blur.std() < faces[0].std()
    assert fill_image(faces[0], seg, "color", 7.0, 4.0) == 7.0


def test_lime_fill_and_segmentation_change_the_explanation(faces, tiny_net):
    base = LimeMethodParams(num_samples=60)
    paper = get_explainer("x", base).explain(tiny_net, faces, CLASSES, seed=1)
    mean = get_explainer("x", base.model_copy(update={"fill": "mean"})).explain(tiny_net, faces, CLASSES, seed=1)
    fine = get_explainer("x", base.model_copy(update={"slic": SlicParams(n_segments=80)})).explain(
        tiny_net, faces, CLASSES, seed=1)
    np.testing.assert_array_equal(paper.segments, mean.segments)  # same superpixels, other fill
    assert not np.allclose(paper.maps, mean.maps)
    assert np.mean([len(np.unique(s)) for s in fine.segments]) > np.mean([len(np.unique(s)) for s in paper.segments])


# --------------------------------------------------------------------------------- KernelSHAP


def _exact_shapley(value, m: int) -> np.ndarray:
    """Shapley values by their definition, over every coalition (m small); ``value`` takes (K, m) 0/1 rows."""
    codes = np.arange(2**m)
    table = value(((codes[:, None] >> np.arange(m)) & 1).astype(np.int8))  # v of every coalition
    size = np.array([bin(c).count("1") for c in codes])
    phi = np.zeros(m)
    for j in range(m):
        without = codes[(codes >> j) & 1 == 0]
        w = np.array([factorial(s) * factorial(m - s - 1) / factorial(m) for s in size[without]])
        phi[j] = (w * (table[without | (1 << j)] - table[without])).sum()
    return phi


def _coalition_values(predict, img, seg):
    return lambda z: predict(np.where(z[:, seg].astype(bool), img, 0.0)[..., None])[:, 0]


def test_kernelshap_equals_exact_shapley_values_on_few_superpixels(faces):
    """A non-additive model (products of regions): enumerated KernelSHAP is the Shapley value."""
    img = faces[0]
    slic = SlicParams(n_segments=6)
    seg = segment(img, slic)
    m = int(seg.max()) + 1
    assert 3 <= m <= 8
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(SIZE, SIZE)), rng.normal(size=(SIZE, SIZE))

    def predict(batch):
        x = batch[..., 0] / 255.0
        a, b = (x * w1).mean((1, 2)), (x * w2).mean((1, 2))
        score = np.tanh(3 * a) * b + a**2  # interactions: linear attribution would not do
        return np.stack([score, *[np.zeros_like(score)] * 5], 1)

    ex = get_explainer("kernelshap", KernelShapMethodParams(num_samples=2**m, slic=slic))
    res = ex.explain(predict, img[None], np.array([0]), seed=0)
    phi = np.array([res.maps[0][seg == z][0] for z in range(m)])
    np.testing.assert_allclose(phi, _exact_shapley(_coalition_values(predict, img, seg), m), atol=1e-6)


def test_sampled_kernelshap_is_efficient_and_close_to_exact(faces):
    img = faces[1]
    slic = SlicParams(n_segments=12)
    seg = segment(img, slic)
    m = int(seg.max()) + 1
    assert m >= 8

    def predict(batch):
        s = (batch[..., 0] / 255.0).mean((1, 2))
        return np.stack([s**2, *[np.zeros_like(s)] * 5], 1)

    res = get_explainer("kernelshap", KernelShapMethodParams(num_samples=400, slic=slic)).explain(
        predict, img[None], np.array([0]), seed=3)
    phi = np.array([res.maps[0][seg == z][0] for z in range(m)])
    full = predict(img[None, ..., None])[0, 0]
    assert phi.sum() == pytest.approx(full - 0.0, abs=1e-6)  # efficiency (f(empty) = 0), to float32
    exact = _exact_shapley(_coalition_values(predict, img, seg), m)
    # a quadratic game has pairwise interactions only: paired sampling recovers it to float noise
    np.testing.assert_allclose(phi, exact, atol=1e-5 * np.abs(exact).max())
    z, w = coalitions(m, 50, np.random.default_rng(0))
    assert z.shape == (50, m) and (z.sum(1) >= 1).all() and (z.sum(1) <= m - 1).all()


# ---------------------------------------------------------------------------------- occlusion


def test_occlusion_patches_cover_the_image_and_find_the_evidence():
    masks = patch_masks(SIZE, 0.25, 0.125)
    assert masks.shape == (49, SIZE, SIZE) and masks.sum(0).min() >= 1
    region = np.zeros((SIZE, SIZE), bool)
    region[20:28, 4:12] = True  # the only pixels the class looks at

    def predict(batch):
        s = (batch[..., 0] * region).sum((1, 2)) / (255.0 * region.sum())
        return np.stack([s, 1 - s, *[np.zeros_like(s)] * 4], 1)

    img = np.full((1, SIZE, SIZE), 200.0, np.float32)
    res = get_explainer("occlusion", OcclusionMethodParams(patch=0.25, stride=0.125)).explain(
        predict, img, np.array([0]), seed=0)
    touching = (masks & region).any((1, 2))
    reach = masks[touching].any(0)  # pixels under some patch that hides part of the region
    assert (res.maps[0][region] > 0).all()
    assert np.abs(res.maps[0][~reach]).max() == 0
    assert res.maps[0][region].mean() > res.maps[0][reach & ~region].mean()


# ---------------------------------------------------------------------------------------- RISE


def test_rise_masks_are_smooth_shifted_and_find_the_evidence():
    from fer_xai.explain.methods.rise import rise_masks

    rng = np.random.default_rng(0)
    masks = rise_masks(rng.random((5, 4, 4)) < 0.5, rng.integers(0, 8, (5, 2)), SIZE)
    assert masks.shape == (5, SIZE, SIZE) and masks.min() >= 0 and masks.max() <= 1
    assert len(np.unique(masks)) > 10  # bilinear: soft, not 0/1
    region = np.zeros((SIZE, SIZE), bool)
    region[4:12, 18:28] = True

    def predict(batch):
        s = (batch[..., 0] * region).sum((1, 2)) / (255.0 * region.sum())
        return np.stack([s, 1 - s, *[np.zeros_like(s)] * 4], 1)

    img = np.full((1, SIZE, SIZE), 255.0, np.float32)
    ex = get_explainer("rise", RiseMethodParams(num_masks=600, grid=4), batch_size=128)
    res = ex.explain(predict, img, np.array([0]), seed=2)
    far = np.zeros((SIZE, SIZE), bool)
    far[20:, :10] = True
    # the evidence scores high, pixels far from it (Monte Carlo noise and mask smoothness aside) near 0
    assert res.maps[0][region].min() > 0.05 and abs(res.maps[0][far].mean()) < res.maps[0][region].mean() / 3
    np.testing.assert_array_equal(res.maps, ex.explain(predict, img, np.array([0]), seed=2).maps)
    assert not np.array_equal(res.maps, ex.explain(predict, img, np.array([0]), seed=3).maps)


# ----------------------------------------------------------------------------------- Grad-CAM


def test_gradcam_is_cam_on_a_conv_gap_softmax_net(faces, cam_net):
    res = get_explainer("gradcam", GradCamMethodParams()).explain(cam_net, faces, CLASSES, seed=0)
    feats = __import__("keras").Model(cam_net.inputs, cam_net.get_layer("conv").output)(faces[..., None]).numpy()
    w = cam_net.get_layer("predictions").kernel.numpy()  # (4, 6)
    cam = np.maximum(np.einsum("nhwk,kn->nhw", feats, w[:, CLASSES]) / (SIZE * SIZE), 0)
    np.testing.assert_allclose(res.maps, cam, rtol=1e-4, atol=1e-7)
    assert str(res.extra["layer"][0]) == "conv"


def _zoo_ids():
    from fer_xai.models.zoo import NETWORKS

    heavy = {"resnet101v2", "inceptionv3", "xception", "efficientnetv2", "resnet50", "mobilenetv3"}  # > 15 s each
    return [pytest.param(i, marks=pytest.mark.slow) if i in heavy else i for i in NETWORKS]


@pytest.mark.parametrize("model_id", _zoo_ids())
def test_gradcam_finds_the_last_conv_layer_of_every_zoo_network(model_id, no_keras_cache):
    import keras

    from fer_xai.models.zoo import NETWORKS, build_network

    spec = NETWORKS[model_id]
    size = max(spec.min_size, SIZE)
    model = build_network(model_id, size, allow_random_init=True, seed=0).model
    layer = last_conv_layer(model)
    if spec.from_scratch:
        convs = [ly for ly in model.layers if isinstance(ly, keras.layers.Conv2D)]
        assert layer is convs[-1]
    else:
        assert isinstance(layer, keras.Model)  # the backbone: its output is the last conv block's map
    x = np.random.default_rng(0).uniform(0, 255, (2, size, size)).astype(np.float32)
    res = get_explainer("gradcam").explain(model, x, np.array([1, 4]), seed=0)
    assert res.maps.shape == (2, size, size) and np.isfinite(res.maps).all() and (res.maps >= 0).all()


def test_gradcam_needs_a_keras_model():
    with pytest.raises(TypeError, match="needs a Keras model"):
        get_explainer("gradcam").explain(lambda b: np.ones((len(b), 6)) / 6, np.zeros((1, 8, 8)), [0], seed=0)


# ------------------------------------------------------------------------ Integrated Gradients


@pytest.mark.parametrize("baseline", ["black", "blur"])
def test_integrated_gradients_completeness(faces, tiny_net, baseline):
    """sum of attributions = f(x) - f(baseline), up to the Riemann error, with enough steps."""
    from fer_xai.explain.methods.integrated_gradients import baselines

    settings = IntegratedGradientsMethodParams(steps=128, baseline=baseline, blur_sigma=3.0)
    res = get_explainer("ig", settings, batch_size=64).explain(tiny_net, faces, CLASSES, seed=0)
    f = GraphPredictor(tiny_net)
    fx = f(faces[..., None])[np.arange(3), CLASSES]
    fb = f(baselines(faces, baseline, 3.0)[..., None])[np.arange(3), CLASSES]
    gap = fx - fb
    assert np.abs(gap).max() > 1e-3  # a real difference to account for
    np.testing.assert_allclose(res.maps.sum((1, 2)), gap, atol=2e-3 + 0.02 * np.abs(gap).max())
    np.testing.assert_allclose(res.extra["score_input"] - res.extra["score_baseline"], gap, atol=1e-5)


# -------------------------------------------------------------------------- files and folders


def test_method_explanations_round_trip_through_the_store(faces, cam_net, tmp_path):
    res = get_explainer("gradcam").explain(cam_net, faces, CLASSES, seed=0)
    ids = ["x1", "x2", "x3"]
    path = save_explanations(tmp_path / "e.npz", as_explanations(res, ids), np.zeros((3, 68, 2)), ["", "", ""],
                             "net", 1, SIZE, method="gradcam")
    back = load_explanations(path)
    np.testing.assert_array_equal(back.maps, res.positive_maps())
    np.testing.assert_array_equal(back.extra["signed_maps"], res.maps)
    assert str(back.extra["method"]) == "gradcam" and back.weights.shape == (3, 0)
    assert back.ids.tolist() == ids and back.classes.tolist() == ["anger", "happiness", "surprise"]


def test_each_method_has_its_own_folders():
    from fer_xai import layout

    p = Params()
    q = layout.method_params(p, "gradcam")
    assert layout.method_params(p, "lime") is p
    assert layout.explanations_file(q, "weinet", 2).parts[-5:] == (
        "explanations_methods", "gradcam", "weinet", "fold2", "explanations.npz")
    assert layout.heatmaps_dir(q).parts[-2:] == ("heatmaps_methods", "gradcam")
    assert layout.compare_input_dirs(q)[0] == layout.heatmaps_dir(q)
    assert layout.method_metrics_name("compare", "gradcam") == "compare_gradcam"
    with pytest.raises(KeyError):
        layout.method_params(p, "nope")


class CountingPredictor:
    """A batch-probabilities callable that counts the images it classifies."""

    def __init__(self, model):
        self.predict, self.images = GraphPredictor(model), 0

    def __call__(self, batch):
        self.images += len(batch)
        return self.predict(batch)


@pytest.mark.parametrize("settings", [
    LimeMethodParams(num_samples=40), LimeMethodParams(num_samples=40, fill="mean"),
    KernelShapMethodParams(num_samples=40), OcclusionMethodParams(patch=0.25, stride=0.125),
    RiseMethodParams(num_masks=30, grid=4),
], ids=lambda s: f"{s.kind}-{getattr(s, 'fill', '')}")
def test_pass_count_is_what_the_method_classifies(settings, faces, tiny_net):
    """``cost.passes`` (the benchmark's floor) equals the images each perturbation method classifies."""
    from fer_xai.explain.methods.cost import passes

    counter = CountingPredictor(tiny_net)
    get_explainer("m", settings, batch_size=16).explain(counter, faces, np.array([0, 3, 5]), seed=1)
    assert counter.images == passes(settings, SIZE).forward * len(faces)
    assert passes(settings, SIZE).backward == 0


def test_gradient_methods_need_backward_passes():
    from fer_xai.explain.methods.cost import Passes, passes

    assert passes(GradCamMethodParams(), SIZE) == Passes(0, 1)
    assert passes(IntegratedGradientsMethodParams(steps=7), SIZE) == Passes(0, 9)
