"""FLOPs counted from a model's layers, and the GPU / throughput benchmarks run at tiny sizes on CPU."""

import json
import sys

import pytest
from tests.conftest import REPO

from fer_xai.models.flops import forward_flops, train_flops_per_image


def test_flops_count_every_conv_and_dense_multiply_add_twice():
    import keras

    inp = keras.Input((16, 16, 2))
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)  # 16*16*4 outputs x 3*3*2 MACs = 18,432
    x = keras.layers.Conv2D(4, 3, strides=2, padding="valid")(x)  # 7*7*4 x 3*3*4 = 7,056
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)  # 7*7*4 x 9 = 1,764
    x = keras.layers.SeparableConv2D(8, 3, padding="same")(x)  # 7*7*(4*9 + 4*8) = 3,332
    x = keras.layers.BatchNormalization()(keras.layers.GlobalAveragePooling2D()(x))  # not counted
    out = keras.layers.Dense(6)(x)  # 8*6 = 48
    inner = keras.Model(inp, out)
    outer_in = keras.Input((16, 16, 2))
    model = keras.Model(outer_in, inner(outer_in))  # nested models are counted inside
    macs = 18_432 + 7_056 + 1_764 + 3_332 + 48
    assert forward_flops(model) == 2 * macs
    assert train_flops_per_image(model) == 3 * 2 * macs


def test_resnet50_flops_match_the_published_figure():
    from fer_xai.models.zoo import build_network

    model = build_network("resnet50", input_size=224, pretrained="none", allow_random_init=True, seed=1,
                          input_norm="none").model
    # He et al. 2016, Table 1: 3.8e9 multiply-adds at 224 px (their count; the 6-way head is tiny)
    assert forward_flops(model) / 2 == pytest.approx(3.86e9, rel=0.03)


@pytest.fixture
def benchmarks_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    yield
    for name in ("gpu_check", "bench_paper_cost", "bench_train_throughput"):
        sys.modules.pop(name, None)


def test_train_throughput_reports_rates_flops_and_the_peak_fraction(benchmarks_on_path, tmp_path):
    import bench_train_throughput

    out = tmp_path / "t.json"
    res = bench_train_throughput.main(["--params", str(REPO / "params.yaml"), "--models", "weinet", "--images", "32",
                                       "--matmul", "128", "--conv", "2", "8", "8", "--reps", "1",
                                       "--json", str(out)])
    assert json.loads(out.read_text())["networks"][0]["model"] == "weinet"
    (row,) = res["networks"]
    assert row["input_size"] == 32 and row["batch"] == 16  # the demo's weinet: 32 px, train.batch_size
    assert row["images_per_second"] > 0 and row["train_gflops_per_image"] == pytest.approx(
        3 * row["forward_gflops_per_image"])
    assert row["achieved_gflops"] == pytest.approx(row["images_per_second"] * row["train_gflops_per_image"])
    assert row["fraction_of_conv_peak"] == pytest.approx(row["achieved_gflops"] / res["peak"]["conv"]["gflops"])
    assert res["peak"]["matmul"]["gflops"] > 0


@pytest.mark.slow
def test_gpu_check_runs_small_on_cpu_and_extrapolates_the_study(benchmarks_on_path, tmp_path, capsys):
    import gpu_check

    out = tmp_path / "g.json"
    res = gpu_check.main(["--networks", "resnet50", "vgg16", "weinet", "--json", str(out)])
    assert res["mode"] == "small" and json.loads(out.read_text())["study_wall_hours"] == res["study_wall_hours"]
    for m in ("resnet50", "vgg16"):
        assert res["epoch"][m]["seconds"] > 0 and res["lime"][m]["num_samples"] == 100
        assert res["lime"][m]["batch"] == 128  # CPU: explain.batch_size as configured
    assert res["sweep"]["weinet"]["flops_scaled"] and set(res["sweep"]) == {"resnet50", "vgg16", "weinet"}
    ex = res["extrapolation"]["wall"]
    assert res["study_wall_hours"] == pytest.approx(ex["train_hours"] + ex["lime_hours"]) and ex["lime_hours"] > 0
    printed = capsys.readouterr().out
    assert "epoch: resnet50" in printed and "lime: vgg16" in printed and "whole study on this device" in printed
