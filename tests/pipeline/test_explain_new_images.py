"""``fer-xai explain --model-uri URI --images DIR --out OUT``: output safety, names, trusted models."""

import os
import pickle

import mlflow.pyfunc
import pandas as pd
import pytest
from click.testing import CliRunner

from fer_xai.cli import main

FAST = ["-S", "explain.num_samples=20", "-S", "explain.batch_size=20"]


def _explain(root, uri, images, out, ok=True):
    res = CliRunner().invoke(main, ["--params", str(root / "params.yaml"), *FAST, "explain", "--model-uri", str(uri),
                                    "--images", str(images), "--out", str(out)])
    if ok:
        assert res.exit_code == 0, res.output + repr(res.exception)
    return res


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny 32 px network with the zoo's custom layers, saved in the flavour training logs."""
    import keras
    import mlflow.tensorflow

    from fer_xai.models.preprocess import GrayscalePreprocess, PerImageStandardize

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((32, 32, 1)), PerImageStandardize(), GrayscalePreprocess("unit"),
        keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(6, activation="softmax"),
    ])
    path = tmp_path_factory.mktemp("models") / "fer-tiny"
    mlflow.tensorflow.save_model(model, str(path), pip_requirements=[])
    return path


@pytest.fixture
def face_png(astronaut_gray):
    import cv2

    return cv2.imencode(".png", astronaut_gray)[1].tobytes()


def _images(folder, face_png, *names):
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(face_png)
    return folder


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_overlay_names_are_unique_and_listed_per_input(project, model_dir, face_png, tmp_path):
    names = ("a.png", "a.jpg", "a/b.png", "a__b.png")
    out = tmp_path / "out"
    _explain(project, model_dir, _images(tmp_path / "imgs", face_png, *names), out)
    pred = pd.read_csv(out / "predictions.csv")
    assert sorted(pred["path"]) == sorted(names)
    assert pred["overlay"].nunique() == len(names)
    assert all((out / o).is_file() for o in pred["overlay"])
    assert len(list((out / "overlays").iterdir())) == len(names)


def test_failure_midway_keeps_the_previous_output(project, model_dir, face_png, tmp_path, monkeypatch):
    from fer_xai.stages import explain

    out = tmp_path / "out"
    _explain(project, model_dir, _images(tmp_path / "one", face_png, "face.png"), out)
    before = _tree(out)
    real_write = explain.write_png
    calls = []

    def write_then_fail(path, arr):  # the disk fills up after the first overlay
        calls.append(path)
        if len(calls) > 1:
            raise OSError("No space left on device")
        real_write(path, arr)

    monkeypatch.setattr(explain, "write_png", write_then_fail)
    res = _explain(project, model_dir, _images(tmp_path / "two", face_png, "x.png", "y.png"), out, ok=False)
    assert res.exit_code != 0 and len(calls) == 2
    assert _tree(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []  # no staging left


@pytest.mark.parametrize("layout", ["out_in_images", "images_in_out", "same"])
def test_out_overlapping_images_refused_before_any_work(project, face_png, tmp_path, layout):
    images = {"out_in_images": tmp_path / "imgs", "images_in_out": tmp_path / "out" / "imgs",
              "same": tmp_path / "imgs"}[layout]
    out = {"out_in_images": tmp_path / "imgs" / "out", "images_in_out": tmp_path / "out",
           "same": tmp_path / "imgs"}[layout]
    _images(images, face_png, "face.png")
    before = _tree(images), _tree(out)
    # no such model: the paths are refused before the model is loaded
    res = _explain(project, tmp_path / "no-model", images, out, ok=False)
    assert res.exit_code != 0
    assert "overlap" in res.output and str(images) in res.output and str(out) in res.output
    assert (_tree(images), _tree(out)) == before


def test_non_utf8_file_name_is_explained(project, model_dir, face_png, tmp_path):
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes in a file name
    out = tmp_path / "out"
    _explain(project, model_dir, _images(tmp_path / "imgs", face_png, name, "plain.png"), out)
    pred = pd.read_csv(out / "predictions.csv", encoding="utf-8")
    assert sorted(pred["path"]) == ["caf\\xe9.png", "plain.png"]
    assert all((out / o).is_file() for o in pred["overlay"])


def test_non_utf8_unreadable_file_is_rejected(project, model_dir, face_png, tmp_path):
    imgs = _images(tmp_path / "imgs", face_png, "plain.png")
    (imgs / os.fsdecode(b"bad\xff.jpg")).write_bytes(b"not an image")
    out = tmp_path / "out"
    _explain(project, model_dir, imgs, out)
    rej = pd.read_csv(out / "rejected.csv", encoding="utf-8")
    assert list(rej["path"]) == ["bad\\xff.jpg"] and list(rej["reason"]) == ["not_an_image"]


@pytest.mark.parametrize("target", ["user_folder", "explain_out_dir"])
def test_folder_not_written_by_fer_xai_refused_and_intact(project, model_dir, face_png, tmp_path, target):
    out = tmp_path / "notes" if target == "user_folder" else project / "explanations"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    res = _explain(project, model_dir, _images(tmp_path / "imgs", face_png, "face.png"), out, ok=False)
    assert res.exit_code != 0 and "--out" in res.output and "refusing" in res.output
    assert _tree(out) == {"notes.txt": b"mine\n"}


def test_rerun_replaces_its_own_output(project, model_dir, face_png, tmp_path):
    out = tmp_path / "out"
    _explain(project, model_dir, _images(tmp_path / "one", face_png, "face.png"), out)
    _explain(project, model_dir, _images(tmp_path / "two", face_png, "x.png", "y.png"), out)
    assert sorted(pd.read_csv(out / "predictions.csv")["path"]) == ["x.png", "y.png"]
    assert len(list((out / "overlays").iterdir())) == 2


class _Echo(mlflow.pyfunc.PythonModel):  # MLflow pickles it and unpickles it on load
    def predict(self, context, model_input: list[str]) -> list[str]:
        return model_input


def test_model_of_another_flavour_refused(project, face_png, tmp_path):
    from fer_xai.tracking import configure

    configure("fer-xai")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=_Echo(),
                                       pip_requirements=[])
    out = tmp_path / "out"
    res = _explain(project, info.model_uri, _images(tmp_path / "imgs", face_png, "face.png"), out, ok=False)
    assert res.exit_code != 0
    msg = " ".join(res.output.split())
    assert info.model_uri in msg and "python_function" in msg and "tensorflow" in msg
    assert "runs its code" in msg and not out.exists()


class _Tripwire:
    """Unpickling it creates a file: proof that loading ran code shipped with the model."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickles_shipped_with_a_model_are_not_loaded(project, model_dir, face_png, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(model_dir, model)
    tripwire = tmp_path / "pickle-ran"
    for name in ("global_custom_objects.cloudpickle", "custom_objects.cloudpickle"):
        (model / "data" / name).write_bytes(pickle.dumps(_Tripwire(tripwire)))
    _explain(project, model, _images(tmp_path / "imgs", face_png, "face.png"), tmp_path / "out")
    assert not tripwire.exists()


def test_lambda_layers_refused_by_keras_safe_mode(project, face_png, tmp_path):
    import keras
    import mlflow.tensorflow

    model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Lambda(lambda x: x / 255.0),
                              keras.layers.Flatten(), keras.layers.Dense(6, activation="softmax")])
    path = tmp_path / "lambda-model"
    mlflow.tensorflow.save_model(model, str(path), pip_requirements=[])
    res = _explain(project, path, _images(tmp_path / "imgs", face_png, "face.png"), tmp_path / "out", ok=False)
    assert res.exit_code != 0 and "safe" in res.output.lower() and str(path) in res.output


@pytest.mark.parametrize("flavors, found", [
    ({"python_function": {"loader_module": "mlflow.sklearn"}, "sklearn": {}}, "python_function, sklearn"),
    ({"python_function": {}, "tensorflow": {"model_type": "tf2-module"}}, "tf2-module"),
    ({"python_function": {}, "tensorflow": {"model_type": "keras"}, "keras": {}}, "keras, python_function"),
])
def test_check_flavors_names_what_it_found_and_accepts(flavors, found):
    from fer_xai.registry import UntrustedModelError, check_flavors

    with pytest.raises(UntrustedModelError) as err:
        check_flavors("models:/x@fold1", flavors)
    msg = str(err.value)
    assert "models:/x@fold1" in msg and found in msg and "tensorflow" in msg and "runs its code" in msg


def test_check_flavors_accepts_what_training_logs(model_dir):
    from mlflow.models import Model

    from fer_xai.registry import check_flavors

    check_flavors(str(model_dir), Model.load(str(model_dir)).flavors)


def test_each_image_gets_a_readable_figure_and_the_folder_one_page(project, model_dir, face_png, tmp_path):
    """Figures of the aligned face beside its explanation (>= 256 px each, colour bar, top three)
    and index.html listing every image, the rejected ones with their reasons."""
    import html
    import re

    import cv2
    import numpy as np
    from PIL import Image

    from fer_xai.explain.figure import FIGURE_PX, PANEL_PX
    from fer_xai.labels import DISPLAY_NAMES, EXPRESSIONS

    imgs = _images(tmp_path / "imgs", face_png, "smile.png", "sub/again.jpg")
    (imgs / "wall.png").write_bytes(cv2.imencode(".png", np.full((200, 200), 128, np.uint8))[1].tobytes())
    (imgs / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    _explain(project, model_dir, imgs, out)

    pred = pd.read_csv(out / "predictions.csv")
    assert list(pred.columns[:4]) == ["path", "pred", "confidence", "overlay"]  # as before; figure added
    assert sorted(pred["path"]) == ["smile.png", "sub/again.jpg"]
    assert PANEL_PX >= 256 and FIGURE_PX[0] >= 2 * PANEL_PX
    for name in pred["figure"]:
        assert name.startswith("figures/")
        with Image.open(out / name) as fig:
            assert fig.size == FIGURE_PX
            rgb = np.asarray(fig.convert("RGB"))
        assert rgb.std() > 20 and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 100  # a picture, not a blank
    for name in pred["overlay"]:
        with Image.open(out / name) as ov:
            assert min(ov.size) >= PANEL_PX  # the 32 px network input, upscaled

    page = (out / "index.html").read_text(encoding="utf-8")
    assert "<script" not in page and "http://" not in page and "https://" not in page  # self-contained
    for src in re.findall(r'src="([^"]+)"', page):
        assert (out / html.unescape(src)).is_file()
    rejected = pd.read_csv(out / "rejected.csv")
    assert sorted(rejected["path"]) == ["broken.jpg", "wall.png"]
    images_part, rejected_part = page.split('id="rejected"')
    for r in rejected.itertuples():
        assert r.path in rejected_part and r.reason in rejected_part
    probs = np.load(out / "explanations.npz")["probs"]
    for i, r in enumerate(pred.itertuples()):
        assert r.path in images_part and r.figure in images_part
        top = np.argsort(-probs[i], kind="stable")[:3]
        assert f"<b>{DISPLAY_NAMES[r.pred]}</b>" in images_part
        items = "".join(f"<li>{DISPLAY_NAMES[EXPRESSIONS[k]]} {probs[i][k]:.3f}</li>" for k in top)
        assert items in images_part
