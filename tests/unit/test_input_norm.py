import numpy as np
import pytest

from fer_xai.models.preprocess import PerImageStandardize, reference_standardize
from fer_xai.models.zoo import ModelZooError, build_network


def test_layer_matches_numpy_reference_and_removes_brightness_and_contrast():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (3, 16, 16, 1)).astype(np.float32)
    y = np.asarray(PerImageStandardize()(x))
    np.testing.assert_allclose(y, reference_standardize(x), atol=1e-3)
    # An affine change of lighting (gain and offset) gives the same standardised image.
    x2 = np.clip(x * 0.5 + 40, 0, 255)
    np.testing.assert_allclose(np.asarray(PerImageStandardize()(x2)), y, atol=1e-2)
    flat = np.full((1, 8, 8, 1), 77.0, np.float32)
    np.testing.assert_allclose(np.asarray(PerImageStandardize()(flat)), 128.0)


def test_model_with_input_norm_saves_and_loads(tmp_path):
    from fer_xai.models import load_model

    built = build_network("songnet", input_size=32, pretrained="none", seed=1, input_norm="per_image")
    assert built.model.get_layer("standardize") is not None
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 1)).astype(np.float32)
    path = tmp_path / "m.keras"
    built.model.save(path)
    np.testing.assert_allclose(load_model(path).predict_on_batch(x), built.model.predict_on_batch(x), atol=1e-6)
    with pytest.raises(ModelZooError, match="input_norm"):
        build_network("songnet", input_size=32, pretrained="none", input_norm="zscore")
