"""The model zoo: registry, builds, Table 1 parameter counts, preprocessing, weights, saving."""

from __future__ import annotations

import logging

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from click.testing import CliRunner  # noqa: E402

from fer_xai.labels import EXPRESSIONS  # noqa: E402
from fer_xai.models import (  # noqa: E402
    NETWORKS,
    BuiltModel,
    InputSizeError,
    ModelZooError,
    NetworkSpec,
    PretrainedWeightsMissing,
    UnknownNetworkError,
    build_model,
    build_network,
    load_model,
    network,
)
from fer_xai.models.preprocess import MODES, GrayscalePreprocess, reference_preprocess  # noqa: E402

PAPER_ORDER = [
    "alexnet", "weinet", "songnet", "silnet", "vgg16", "vgg19", "resnet50", "resnet101v2",
    "inceptionv3", "xception", "mobilenetv3", "efficientnetv2",
]
DISPLAY = [
    "AlexNet", "WeiNet", "SongNet", "SilNet", "VGG16", "VGG19", "ResNet50", "ResNet101V2",
    "InceptionV3", "Xception", "MobileNetV3", "EfficientNetV2",
]
SCRATCH = [i for i in PAPER_ORDER if NETWORKS[i].from_scratch]
BACKBONES = [i for i in PAPER_ORDER if not NETWORKS[i].from_scratch]


@pytest.fixture(autouse=True)
def _fresh_keras():
    yield
    keras.backend.clear_session()


@pytest.fixture
def no_keras_cache(tmp_path, monkeypatch):
    """An empty Keras cache, so no real ImageNet file on this machine can be picked up."""
    home = tmp_path / "keras_home"
    (home / "models").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def _gray_batch(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, size=(n, size, size, 1)).astype("float32")


def _within(actual: int, published: int, tol: float = 0.02) -> bool:
    return abs(actual - published) <= tol * published


def _backbone(model) -> keras.Model:
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert len(nested) == 1
    return nested[0]


# --------------------------------------------------------------------------------- registry


def test_registry_lists_the_twelve_networks_in_table1_order():
    assert list(NETWORKS) == PAPER_ORDER
    assert [s.display_name for s in NETWORKS.values()] == DISPLAY
    assert SCRATCH == ["alexnet", "weinet", "songnet", "silnet"]
    for spec in NETWORKS.values():
        assert isinstance(spec, NetworkSpec)
        assert spec.native_size >= spec.min_size
        assert spec.preprocess in MODES
        if spec.from_scratch:
            assert spec.pretrained_default is None and spec.weights_file is None
        else:
            assert spec.pretrained_default == "imagenet"
            assert spec.weights_file.endswith(".h5") and "top" in spec.weights_file


def test_network_lookup_accepts_ids_display_names_and_aliases():
    assert network("VGG16") is NETWORKS["vgg16"]
    assert network(" silnet ") is NETWORKS["silnet"]
    assert network("EfficientNetV2B0") is NETWORKS["efficientnetv2"]
    assert network("MobileNetV3Large") is NETWORKS["mobilenetv3"]


def test_unknown_id_is_a_clear_error_listing_valid_ids():
    with pytest.raises(UnknownNetworkError) as err:
        build_model("lenet5")
    message = str(err.value)
    assert "lenet5" in message
    for model_id in PAPER_ORDER:
        assert model_id in message
    assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)


# ------------------------------------------------------------------------------------ builds


@pytest.mark.parametrize("model_id", PAPER_ORDER)
def test_every_network_builds_small_with_a_six_way_softmax(model_id, no_keras_cache):
    spec = NETWORKS[model_id]
    size = max(spec.min_size, 32)
    built = build_network(model_id, size, allow_random_init=True, seed=0)
    model = built.model
    assert isinstance(built, BuiltModel) and built.input_size == size and not built.pretrained
    assert model.name == spec.display_name
    assert model.input_shape == (None, size, size, 1)
    assert model.output_shape == (None, len(EXPRESSIONS)) == (None, 6)
    head = model.get_layer("predictions")
    assert head is model.layers[-1]
    assert head.activation is keras.activations.softmax
    assert model.get_layer("preprocess").mode == spec.preprocess
    probs = model.predict(_gray_batch(2, size), verbose=0)
    assert probs.shape == (2, 6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    if not spec.from_scratch:
        # GAP head: a backbone's parameter count does not depend on the input size.
        assert _within(model.count_params(), spec.table1_params), model.count_params()


@pytest.mark.parametrize(
    "model_id",
    [pytest.param(i, marks=pytest.mark.slow) if i == "silnet" else i for i in SCRATCH],
)
def test_from_scratch_networks_match_table1_at_native_size(model_id):
    spec = NETWORKS[model_id]
    model = build_model(model_id)  # native size: the flatten size, hence the count, depends on it
    assert model.input_shape == (None, spec.native_size, spec.native_size, 1)
    assert not model.fer_pretrained
    assert _within(model.count_params(), spec.table1_params), (model.count_params(), spec.table1_params)


@pytest.mark.slow
@pytest.mark.parametrize("model_id", BACKBONES)
def test_backbones_match_table1_at_224(model_id):
    spec = NETWORKS[model_id]
    model = build_model(model_id, 224, pretrained="none")
    assert model.output_shape == (None, 6)
    assert _within(model.count_params(), spec.table1_params), (model.count_params(), spec.table1_params)


def test_from_scratch_nets_build_below_native_size_with_a_smaller_flatten():
    small = build_model("silnet", 64, seed=1)
    # ceil(64/2)^2 * 64 features into a 512-unit layer, instead of 75^2 * 64 at 150 px.
    assert small.get_layer("flatten").output.shape[-1] == 32 * 32 * 64
    assert build_model("alexnet", 96).get_layer("flatten").output.shape[-1] == 3 * 3 * 256


def test_seed_makes_initial_weights_reproducible():
    a = build_model("weinet", 32, seed=7).get_weights()
    b = build_model("weinet", 32, seed=7).get_weights()
    c = build_model("weinet", 32, seed=8).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


# ----------------------------------------------------------------------------- input sizes


@pytest.mark.parametrize("model_id", PAPER_ORDER)
def test_below_minimum_size_is_a_clear_error(model_id):
    spec = NETWORKS[model_id]
    with pytest.raises(InputSizeError, match=rf"{spec.display_name} needs an input of at least {spec.min_size}"):
        build_model(model_id, spec.min_size - 1, pretrained="none")


@pytest.mark.parametrize("model_id", BACKBONES)
def test_backbone_minimum_sizes_are_keras_own_limits(model_id):
    spec = NETWORKS[model_id]
    app = getattr(keras.applications, spec.builder.app_name)
    with pytest.raises(ValueError):
        app(include_top=False, weights=None, input_shape=(spec.min_size - 1, spec.min_size - 1, 3))


@pytest.mark.parametrize("bad", [64.5, "64", 0, -3])
def test_input_size_must_be_a_positive_integer(bad):
    with pytest.raises(InputSizeError):
        build_model("weinet", bad)


# --------------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize(
    "model_id, module",
    [("vgg16", "vgg16"), ("inceptionv3", "inception_v3"), ("efficientnetv2", "efficientnet_v2")],
)
def test_in_model_preprocessing_equals_keras_preprocess_input(model_id, module):
    spec = NETWORKS[model_id]
    model = build_model(model_id, spec.min_size, pretrained="none")
    front = keras.Model(model.input, model.get_layer("preprocess").output)
    gray = _gray_batch(3, spec.min_size, seed=3)
    expected = getattr(keras.applications, module).preprocess_input(np.repeat(gray, 3, axis=-1).copy())
    got = keras.ops.convert_to_numpy(front(gray))
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "mode, module",
    [("caffe", "resnet50"), ("tf", "xception"), ("torch", "densenet"), ("identity", "mobilenet_v3")],
)
def test_preprocess_layer_modes_match_keras(mode, module):
    gray = _gray_batch(2, 8, seed=5)
    expected = getattr(keras.applications, module).preprocess_input(np.repeat(gray, 3, axis=-1).copy())
    got = keras.ops.convert_to_numpy(GrayscalePreprocess(mode)(gray))
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(reference_preprocess(gray, mode), expected, atol=1e-4, rtol=0)


def test_from_scratch_input_is_gray_repeated_and_scaled_to_unit_range():
    model = build_model("songnet", 32)
    front = keras.Model(model.input, model.get_layer("preprocess").output)
    gray = _gray_batch(1, 32)
    got = keras.ops.convert_to_numpy(front(gray))
    np.testing.assert_allclose(got, np.repeat(gray / 255.0, 3, axis=-1), atol=1e-6)


def test_paper_preprocessing_feeds_backbones_x_over_255():
    built = build_network("vgg16", 32, pretrained="none", preprocessing="paper")
    assert built.model.get_layer("preprocess").mode == "unit"
    with pytest.raises(ModelZooError, match="preprocessing"):
        build_network("vgg16", 32, pretrained="none", preprocessing="imagenet")


def test_unknown_preprocess_mode_is_rejected():
    with pytest.raises(ValueError, match="caffe"):
        GrayscalePreprocess("bgr")


# ------------------------------------------------------------------------------- weights


def test_missing_imagenet_weights_error_names_the_file_and_folders(tmp_path, no_keras_cache):
    weights_dir = tmp_path / "weights"
    with pytest.raises(PretrainedWeightsMissing) as err:
        build_model("vgg16", 32, weights_dir=weights_dir)
    message = str(err.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(weights_dir) in message and str(no_keras_cache / "models") in message
    assert "allow_random_init" in message
    assert err.value.file_name == NETWORKS["vgg16"].weights_file
    with pytest.raises(PretrainedWeightsMissing, match="efficientnetv2-b0_notop.h5"):
        build_model("efficientnetv2", 32)
    with pytest.raises(PretrainedWeightsMissing, match="weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5"):
        build_model("mobilenetv3", 32, pretrained="imagenet")


def test_allow_random_init_warns_and_reports_not_pretrained(caplog, no_keras_cache):
    with caplog.at_level(logging.WARNING, logger="fer_xai"):
        built = build_network("mobilenetv3", 32, allow_random_init=True)
    assert built.pretrained is False and built.weights_path is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("RANDOM" in r.getMessage() and "MobileNetV3" in r.getMessage() for r in warnings)
    assert built.notes and "weights_mobilenet_v3_large" in built.notes[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fer_xai"):
        model = build_model("mobilenetv3", 32, allow_random_init=True)
    assert model.fer_pretrained is False
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_explicit_random_init_is_silent(caplog, no_keras_cache):
    with caplog.at_level(logging.WARNING, logger="fer_xai"):
        built = build_network("mobilenetv3", 32, pretrained="none")
    assert not built.pretrained
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_imagenet_weights_found_in_keras_home_or_weights_dir_are_loaded(tmp_path, no_keras_cache):
    spec = NETWORKS["mobilenetv3"]
    source = _backbone(build_model("mobilenetv3", 32, pretrained="none", seed=11))
    # A stand-in for Keras' notop file: same architecture, legacy HDF5 layout, known values.
    cached = no_keras_cache / "models" / spec.weights_file
    source.save(cached)
    expected = source.get_weights()
    keras.backend.clear_session()

    built = build_network("mobilenetv3", 48, seed=12)  # default pretrained="imagenet", found in cache
    assert built.pretrained and built.weights_path == str(cached)
    got = _backbone(built.model).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))

    own = tmp_path / "mine"
    own.mkdir()
    (own / spec.weights_file).write_bytes(cached.read_bytes())
    assert build_network("mobilenetv3", 32, weights_dir=own).weights_path == str(own / spec.weights_file)
    # An explicit weight file path is used as is.
    assert build_network("mobilenetv3", 32, pretrained=str(cached)).weights_path == str(cached)
    with pytest.raises(ModelZooError, match="'imagenet', 'none' or the path"):
        build_network("mobilenetv3", 32, pretrained=str(tmp_path / "nope.h5"))


def test_from_scratch_networks_refuse_imagenet_weights():
    with pytest.raises(ModelZooError, match="from scratch"):
        build_model("silnet", 64, pretrained="imagenet")


# --------------------------------------------------------------------------------- saving


@pytest.mark.parametrize("model_id", ["weinet", "mobilenetv3"])
def test_keras_save_load_round_trip_gives_identical_predictions(model_id, tmp_path):
    model = build_model(model_id, 32, pretrained="none", seed=3)
    x = _gray_batch(4, 32, seed=9)
    before = model.predict(x, verbose=0)
    path = tmp_path / f"{model_id}.keras"
    model.save(path)
    for loaded in (load_model(path), keras.saving.load_model(path)):
        assert loaded.get_layer("preprocess").mode == NETWORKS[model_id].preprocess
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), before)


# ------------------------------------------------------------------------------------ CLI


def test_models_cli_prints_csv_and_table():
    from fer_xai.stages.models import cli

    result = CliRunner().invoke(cli, ["--format", "csv", "--only", "weinet", "--only", "SongNet"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "name,input_size,pretrained,params"
    assert lines[1:] == ["WeiNet,64,no,1728230", "SongNet,224,no,172678"]

    result = CliRunner().invoke(cli, ["--only", "weinet"])
    assert result.exit_code == 0
    assert "WeiNet" in result.output and "1,728,230" in result.output

    from fer_xai.cli import main  # domain errors become one-line CLI errors in the group

    result = CliRunner().invoke(main, ["models", "--only", "lenet"])
    assert result.exit_code != 0 and "valid ids" in result.output
