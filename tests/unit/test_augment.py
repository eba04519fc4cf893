import numpy as np

from fer_xai.config import AugmentParams
from fer_xai.training.augment import make_dataset
from fer_xai.training.memory import estimate_training_bytes, fit_batch_size


def _batch(ds):
    xs, ys = [], []
    for x, y in ds:
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
    return np.concatenate(xs), np.concatenate(ys)


def _images(n=16, size=48):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8), rng.integers(0, 6, n)


def test_seeded_pipeline_is_deterministic_and_seed_matters():
    imgs, labels = _images()
    boxes = np.tile(np.array([[0.3, 0.3, 0.7, 0.7]], np.float32), (len(imgs), 1))
    a = _batch(make_dataset(imgs, labels, boxes, batch_size=5, seed=3, cfg=AugmentParams(), training=True))
    b = _batch(make_dataset(imgs, labels, boxes, batch_size=5, seed=3, cfg=AugmentParams(), training=True))
    c = _batch(make_dataset(imgs, labels, boxes, batch_size=5, seed=4, cfg=AugmentParams(), training=True))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == (16, 48, 48, 1) and a[0].dtype == np.float32
    assert a[0].min() >= 0 and a[0].max() <= 255.0 + 1e-3


def test_crop_keeps_the_core_region():
    """A bright core box must stay entirely visible after every random crop/translation."""
    size, n = 64, 40
    imgs = np.zeros((n, size, size), np.uint8)
    imgs[:, 20:44, 22:42] = 255
    box = np.array([20 / 63, 22 / 63, 43 / 63, 41 / 63], np.float32)
    cfg = AugmentParams(gamma=(1.0, 1.0), translate=0.1, crop_min_scale=0.6, mirror=False)
    out, _ = _batch(make_dataset(imgs, np.zeros(n, int), np.tile(box, (n, 1)), batch_size=8, seed=1, cfg=cfg,
                                 training=True))
    area_in = (imgs[0] > 127).sum()
    for o in out[..., 0]:
        # Zooming in only enlarges the box: its visible area never shrinks below the original,
        # and a box cut by the crop edge would change its aspect ratio (24 x 20 here).
        assert (o > 127).sum() >= 0.95 * area_in
        ys, xs = np.nonzero(o > 127)
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert abs(h / w - 24 / 20) < 0.12, (h, w)


def test_no_augmentation_at_test_time():
    imgs, labels = _images()
    x, y = _batch(make_dataset(imgs, labels, None, batch_size=4, seed=0, cfg=None, training=False))
    np.testing.assert_array_equal(x[..., 0], imgs.astype(np.float32))
    np.testing.assert_array_equal(y, labels)


def test_gamma_changes_lighting_within_range():
    imgs = np.full((8, 32, 32), 128, np.uint8)
    box = np.tile(np.array([[0.2, 0.2, 0.8, 0.8]], np.float32), (8, 1))
    cfg = AugmentParams(gamma=(0.5, 2.0), translate=0.0, crop_min_scale=1.0, mirror=False)
    out, _ = _batch(make_dataset(imgs, np.zeros(8, int), box, batch_size=8, seed=2, cfg=cfg, training=True))
    vals = out[:, 16, 16, 0]
    lo, hi = 255 * (128 / 255) ** 2.0, 255 * (128 / 255) ** 0.5
    assert (vals >= lo - 0.5).all() and (vals <= hi + 0.5).all() and vals.std() > 1


def test_memory_guard_reduces_batch_with_warning(caplog):
    import keras

    inp = keras.Input((64, 64, 1))
    x = keras.layers.Conv2D(32, 3, padding="same")(inp)
    out = keras.layers.Dense(6)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inp, out)
    per128 = estimate_training_bytes(model, 128)
    assert per128 > estimate_training_bytes(model, 64) > 0
    assert fit_batch_size(model, 128, max_gib=100) == 128
    limit = (estimate_training_bytes(model, 32) + estimate_training_bytes(model, 64)) / 2 / 2**30
    with caplog.at_level("WARNING"):
        assert fit_batch_size(model, 128, max_gib=limit) == 32
    assert "batch size reduced from 128 to 32" in caplog.text


def test_identity_settings_leave_training_images_unchanged():
    """Full-size crop, no translation, gamma 1, no mirror: training images are the test images.

    (A full-size crop once fell back to centring on the core box, shifting every training image
    relative to the test images.)"""
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (6, 48, 48), dtype=np.uint8)
    boxes = np.tile(np.array([[0.14, 0.2, 0.61, 0.81]], np.float32), (6, 1))  # off-centre, like faces
    cfg = AugmentParams(gamma=(1.0, 1.0), translate=0.0, crop_min_scale=1.0, mirror=False)
    out, ys = _batch(make_dataset(imgs, np.arange(6), boxes, batch_size=6, seed=0, cfg=cfg, training=True))
    order = np.argsort(ys)
    np.testing.assert_allclose(out[order, ..., 0], imgs.astype(np.float32), atol=1e-2)
