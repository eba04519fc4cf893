"""Cascading randomisation on a tiny Keras model: seeded, leaves the trained model alone, and fails a
method whose maps do not depend on the weights."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from fer_xai.bench import sanity  # noqa: E402


def _tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)  # MobileNet's: no kernel_initializer
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(6, activation="softmax")(x)
    return keras.Model(inp, out)


def _edge_maps(model, images, classes):  # looks at the image only
    return np.abs(np.gradient(np.asarray(images, np.float64), axis=2))


def _gradient_maps(model, images, classes):
    import tensorflow as tf

    x = tf.convert_to_tensor(np.asarray(images, np.float32)[..., None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        p = model(x, training=False)
        picked = tf.gather(p, np.asarray(classes), axis=1, batch_dims=1)
    return np.abs(tape.gradient(picked, x).numpy()[..., 0])


def test_cascade_is_seeded_cumulative_and_leaves_the_model_alone():
    model = _tiny_model()
    before = [w.copy() for w in model.get_weights()]
    assert len(sanity.weighted_layers(model)) == 4
    assert sanity.cascade_points(3, 3) == [1, 2, 3] and sanity.cascade_points(10, 3) == [3, 7, 10]
    kernels = []
    for upto, total, m in sanity.cascading_randomization(model, seed=4, steps=4):
        layers = sanity.weighted_layers(m)[::-1]
        changed = [not np.allclose(layer.get_weights()[0], orig.get_weights()[0])
                   for layer, orig in zip(layers, sanity.weighted_layers(model)[::-1])]
        assert changed == [i < upto for i in range(total)]
        kernels.append(layers[0].get_weights()[0].copy())
    again = [sanity.weighted_layers(m)[::-1][0].get_weights()[0].copy()
             for _, _, m in sanity.cascading_randomization(model, seed=4, steps=4)]
    assert np.allclose(kernels[-1], again[-1])
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_model_independent_maps_fail_and_gradients_change():
    model = _tiny_model()
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (4, 16, 16)).astype(np.float32)
    classes = np.array([0, 1, 2, 3])
    fixed = sanity.sanity_check(_edge_maps, model, images, classes, seed=1, steps=2)
    assert fixed[-1]["spearman"] == pytest.approx(1.0) and fixed[-1]["ssim"] == pytest.approx(1.0)
    assert not sanity.passes(fixed)
    grads = sanity.sanity_check(_gradient_maps, model, images, classes, seed=1, steps=2)
    assert grads[-1]["spearman"] < 0.9 and grads[-1]["ssim"] < 0.9


def test_map_similarity_hand_cases():
    a = np.arange(64, dtype=float).reshape(8, 8)
    rho, ssim = sanity.map_similarity(a, 2 * a)
    assert rho == pytest.approx(1.0) and ssim == pytest.approx(1.0)
    rho, _ = sanity.map_similarity(a, a.max() - a)
    assert rho == pytest.approx(-1.0)
    assert np.isnan(sanity.map_similarity(np.ones((8, 8)), a)[0])
    assert sanity.passes([{"spearman": float("nan"), "ssim": 0.2}])
    assert not sanity.passes([{"spearman": float("nan"), "ssim": 1.0}])
