"""GPU-related options, checked on CPU: mixed precision, op determinism, the GPU memory budget of
the batch estimate and LIME's device-sized batch (a GPU's free memory mocked)."""

import numpy as np
import pytest

from fer_xai.config import ExplainParams, NetworkTrainParams, Params, TrainParams
from fer_xai.training import memory


@pytest.fixture
def float32_afterwards():
    import keras
    from tensorflow.python.framework import config as tf_config

    yield
    keras.mixed_precision.set_global_policy("float32")
    tf_config.disable_op_determinism()


def _tiny_model():
    import keras

    inp = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    out = keras.layers.Dense(6, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inp, out)


def test_mixed_bfloat16_trains_and_the_saved_model_reloads_predicting_float32(project, tmp_path,
                                                                            float32_afterwards):
    import keras

    from fer_xai.training.fit import apply_numerics, compile_network

    params = Params(train=TrainParams(mixed_precision="mixed_bfloat16", batch_size=8))
    cfg = NetworkTrainParams(input_size=32, epochs=1)
    keras.utils.set_random_seed(3)
    model = compile_network(params, "weinet", cfg).model
    conv = next(lay for lay in model._flatten_layers() if isinstance(lay, keras.layers.Conv2D))
    assert conv.compute_dtype == "bfloat16" and conv.kernel.dtype == "float32"
    assert model.get_layer("predictions").compute_dtype == "float32"
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (16, 32, 32, 1)).astype(np.float32)
    hist = model.fit(x, rng.integers(0, 6, 16), batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()
    before = np.asarray(model.predict_on_batch(x))
    assert before.dtype == np.float32
    model.save(tmp_path / "m.keras")

    apply_numerics(TrainParams())  # a later process / stage with the default policy
    assert keras.mixed_precision.global_policy().name == "float32"
    again = keras.saving.load_model(tmp_path / "m.keras")
    after = np.asarray(again.predict_on_batch(x))
    assert after.dtype == np.float32
    np.testing.assert_allclose(after, before, atol=1e-6)
    assert np.allclose(after.sum(axis=1), 1.0, atol=1e-5)


def test_mixed_precision_off_is_read_from_unquoted_yaml():
    from tests.conftest import REPO

    from fer_xai.config import load_params

    assert load_params(REPO / "params.yaml", ["train.mixed_precision=off"]).train.mixed_precision == "off"
    assert TrainParams().mixed_precision == "off" and TrainParams().op_determinism is False


def test_op_determinism_option_switches_tensorflow_determinism(float32_afterwards):
    from tensorflow.python.framework import config as tf_config

    from fer_xai.training.fit import apply_numerics

    assert not tf_config.is_op_determinism_enabled()
    apply_numerics(TrainParams(op_determinism=True))
    assert tf_config.is_op_determinism_enabled()
    apply_numerics(TrainParams())
    assert not tf_config.is_op_determinism_enabled()


def test_cpu_has_no_gpu_budget_and_keeps_max_memory_gib():
    assert memory.gpu_free_bytes() is None  # this machine: no GPU
    assert memory.memory_budget(16.0) == (16 * 2**30, "train.max_memory_gib=16.0")


def test_batch_estimate_uses_the_gpu_memory_when_a_gpu_reports_it(monkeypatch, caplog):
    model = _tiny_model()
    assert memory.fit_batch_size(model, 128, max_gib=0.001) < 128  # CPU: max_memory_gib binds
    gpu = (memory.estimate_training_bytes(model, 32) + memory.estimate_training_bytes(model, 64)) // 2
    monkeypatch.setattr(memory, "gpu_free_bytes", lambda: gpu)
    with caplog.at_level("WARNING"):
        # max_memory_gib (host memory) no longer binds: the GPU's free memory does
        assert memory.fit_batch_size(model, 128, max_gib=0.001) == 32
        assert memory.fit_batch_size(model, 128, max_gib=1000) == 32
    assert "GPU's free memory" in caplog.text
    monkeypatch.setattr(memory, "gpu_free_bytes", lambda: 10**12)
    assert memory.fit_batch_size(model, 128, max_gib=0.001) == 128


def test_lime_batch_grows_on_a_gpu_only_and_the_numbers_stay(monkeypatch):
    import keras

    from fer_xai.explain.lime_fast import LimeSettings, explain_images
    from fer_xai.explain.predictor import GraphPredictor

    keras.utils.set_random_seed(1)
    predictor = GraphPredictor(_tiny_model())
    settings = LimeSettings.from_params(ExplainParams(num_samples=60, batch_size=16))
    assert settings.for_device(predictor) is settings  # CPU: the demo's batch, the demo's numbers
    img = np.random.default_rng(2).uniform(0, 255, (32, 32)).astype(np.float32)
    cpu = explain_images(predictor, img[None], ["a"], settings)[0]

    per_image = memory.forward_bytes_per_image(predictor.model)
    monkeypatch.setattr(memory, "gpu_free_bytes", lambda: 40 * per_image)
    assert predictor.device_batch(0.5) == 16  # 20 images fit: the power of two below
    monkeypatch.setattr(memory, "gpu_free_bytes", lambda: 10**12)
    grown = settings.for_device(predictor)
    assert grown.batch_size == 60  # capped at num_samples: one forward pass per image
    off = LimeSettings.from_params(ExplainParams(num_samples=60, batch_size=16, gpu_batch_memory_fraction=0))
    assert off.for_device(predictor).batch_size == 16
    gpu = explain_images(predictor, img[None], ["a"], settings)[0]
    np.testing.assert_allclose(gpu.weights, cpu.weights, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gpu.probs, cpu.probs, rtol=1e-5, atol=1e-7)
