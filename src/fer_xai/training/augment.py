"""Training-time augmentation (paper 3.2): gamma, translation, a crop that keeps brows, eyes,
nose and mouth, and horizontal mirroring, as a seeded, parallel ``tf.data`` pipeline.

Randomness is stateless: each element's seed is (seed, epoch-local position after a seeded
shuffle), so the same params give the same batches whatever the number of parallel calls.
"""

from __future__ import annotations

import numpy as np

from ..config import AugmentParams


def _augment_one(image, box, seed, cfg: AugmentParams, size: int):
    """image: (S, S, 1) float32 in [0, 255]; box: [y0, x0, y1, x1] core region (normalized)."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, num=5)
    # Crop: side s in [crop_min_scale, 1]; position chosen so the core box stays inside, then
    # shifted by up to `translate` (the part outside the image is edge-extended by the resampler).
    s = tf.random.stateless_uniform([], seeds[0], cfg.crop_min_scale, 1.0)
    lo_y = tf.maximum(box[2] - s, 0.0 - cfg.translate)
    hi_y = tf.minimum(box[0], 1.0 - s + cfg.translate)
    lo_x = tf.maximum(box[3] - s, 0.0 - cfg.translate)
    hi_x = tf.minimum(box[1], 1.0 - s + cfg.translate)
    # Only when the core box is wider than the crop, centre on it instead (keeps as much as
    # possible). An empty range (hi == lo, e.g. a full-size crop) is a valid position, not a reason
    # to re-centre: that shifted every full-size crop relative to the test images.
    y0 = tf.where(hi_y >= lo_y, tf.random.stateless_uniform([], seeds[1], 0.0, 1.0) * (hi_y - lo_y) + lo_y,
                  (box[0] + box[2] - s) / 2.0)
    x0 = tf.where(hi_x >= lo_x, tf.random.stateless_uniform([], seeds[2], 0.0, 1.0) * (hi_x - lo_x) + lo_x,
                  (box[1] + box[3] - s) / 2.0)
    crop_box = tf.stack([y0, x0, y0 + s, x0 + s])[None, :]
    # Mirror-pad so translated crops see edge-like content, not black (LIME's occlusion colour).
    pad = size // 4
    padded = tf.pad(image[None], [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="SYMMETRIC")
    # crop_and_resize maps a normalized coordinate c to pixel c * (side - 1).
    scale = (size - 1) / (size + 2 * pad - 1)
    off = pad / (size + 2 * pad - 1)
    out = tf.image.crop_and_resize(padded, crop_box * scale + off, [0], [size, size], method="bilinear")[0]
    g = tf.random.stateless_uniform([], seeds[3], cfg.gamma[0], cfg.gamma[1])
    out = 255.0 * tf.pow(tf.clip_by_value(out / 255.0, 0.0, 1.0), g)
    if cfg.mirror:
        out = tf.image.stateless_random_flip_left_right(out, seeds[4])
    return out


def make_dataset(images: np.ndarray, labels: np.ndarray, boxes: np.ndarray | None, *, batch_size: int,
                 seed: int, cfg: AugmentParams | None, training: bool, n_classes: int = 6):
    """A ``tf.data`` pipeline: in-memory cache, seeded shuffle, parallel augmentation, prefetch."""
    import tensorflow as tf

    size = int(images.shape[1])
    x = images[..., None] if images.ndim == 3 else images
    ds = tf.data.Dataset.from_tensor_slices((x, labels.astype(np.int32)))
    if boxes is not None:
        ds = tf.data.Dataset.from_tensor_slices((x, labels.astype(np.int32), boxes.astype(np.float32)))
    ds = ds.map(lambda img, *rest: (tf.cast(img, tf.float32), *rest), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.cache()
    if training:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        if cfg is not None and cfg.enabled and boxes is not None:
            ds = ds.enumerate().map(
                lambda i, item: (
                    _augment_one(item[0], item[2], tf.stack([tf.cast(seed, tf.int64), i]), cfg, size),
                    item[1],
                ),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        else:
            ds = ds.map(lambda img, y, *rest: (img, y))
    else:
        ds = ds.map(lambda img, y, *rest: (img, y))
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
