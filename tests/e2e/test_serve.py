"""The photo model, served: `mlflow models serve -m models:/fer-songnet-photo@fold1 --env-manager local`.

A tiny training (`fer-xai train --model songnet --fold 1` on the tiny study) registers the Keras
model and, beside it, the photo model. The scoring server runs on a free loopback port in its own
process group (killed at the end); two real face photos (a PNG and a JPEG) and one photo without
a face are posted, then malformed requests. The same URI loaded in-process must give the answers
of the Keras model on the face aligned by the project's own preprocessing.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from helpers.http_server import free_port, serving
from helpers.mlflow_store import trained_store

MLFLOW = Path(sys.executable).with_name("mlflow")
PHOTO_URI, KERAS_URI = "models:/fer-songnet-photo@fold1", "models:/fer-songnet@fold1"
PROB_COLUMNS = ["p_anger", "p_disgust", "p_fear", "p_happiness", "p_sadness", "p_surprise"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tiny_study_template, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve") / "proj"
    return root, trained_store(tiny_study_template, root)


@pytest.fixture(scope="module")
def photos(astronaut_rgb) -> dict[str, bytes]:
    """Two real faces (skimage's astronaut as PNG, matplotlib's Grace Hopper as JPEG) and a coffee cup."""
    import io

    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    def png(arr) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        return buf.getvalue()

    hopper = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes()
    return {"astronaut.png": png(astronaut_rgb), "grace_hopper.jpg": hopper, "coffee.png": png(skimage.data.coffee())}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _body(images: list[str], columns=("image",), **params) -> dict:
    body = {"dataframe_split": {"columns": list(columns), "data": [[v] for v in images]}}
    return {**body, "params": params} if params else body


def _post(base: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(f"{base}/invocations", data=data, headers={"Content-Type": "application/json"},
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    """`mlflow models serve` of the photo model on 127.0.0.1:<free port>, its process group killed after."""
    root, uri = store
    port = free_port()
    log = tmp_path_factory.mktemp("serve_log") / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update({"MLFLOW_TRACKING_URI": uri, "PATH": f"{MLFLOW.parent}{os.pathsep}{env.get('PATH', '')}"})
    cmd = [str(MLFLOW), "models", "serve", "-m", PHOTO_URI, "--env-manager", "local", "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]
    base = f"http://127.0.0.1:{port}"
    with serving(cmd, f"{base}/ping", log, root, env, timeout=240) as proc:
        yield base, proc, log


@pytest.fixture(scope="module")
def served(server, photos):
    """The server's answer to the three photos, in order."""
    base = server[0]
    status, answer = _post(base, _body([_b64(v) for v in photos.values()]))
    assert status == 200, answer
    print("served answer:", json.dumps(answer, indent=1))
    return answer["predictions"]


def test_faces_get_probabilities_expression_and_box(served, photos):
    import io

    from PIL import Image

    assert len(served) == 3
    for row, (name, data) in zip(served[:2], list(photos.items())[:2], strict=True):
        assert row["status"] == "ok" and row["reason"] == "", (name, row)
        probs = np.array([row[c] for c in PROB_COLUMNS])
        assert probs.sum() == pytest.approx(1.0, abs=1e-5) and (probs >= 0).all()
        assert row["expression"] == PROB_COLUMNS[int(np.argmax(probs))][2:]
        assert row["confidence"] == pytest.approx(probs.max())
        width, height = Image.open(io.BytesIO(data)).size
        assert (row["image_width"], row["image_height"]) == (width, height)
        assert 0 <= row["box_left"] < row["box_right"] < width and 0 <= row["box_top"] < row["box_bottom"] < height
        assert row["box_right"] - row["box_left"] >= 32, "a face box, not a speck"  # the tiny study's min_face_px
        assert row["explanation"] is None  # off by default
    # Where the faces are (skimage's astronaut: her face spans about x 170-280, y 70-190).
    astro = served[0]
    assert 150 < (astro["box_left"] + astro["box_right"]) / 2 < 300
    assert 60 < (astro["box_top"] + astro["box_bottom"]) / 2 < 200


def test_photo_without_a_face_gets_a_row_with_the_reason(served):
    row = served[2]
    assert row["status"] == "rejected" and row["reason"] == "no_face" and "no face" in row["detail"]
    assert row["expression"] is None and all(row[c] is None for c in PROB_COLUMNS) and row["box_left"] is None
    assert (row["image_width"], row["image_height"]) == (600, 400)


def test_lime_explanation_on_request(server, photos):
    status, answer = _post(server[0], _body([_b64(photos["astronaut.png"])], explain="lime"))
    assert status == 200, answer
    (row,) = answer["predictions"]
    emap = np.array(row["explanation"])
    assert emap.shape == (32, 32) and (emap >= 0).all() and emap.max() > 0  # songnet's input grid, positive weights


@pytest.mark.parametrize("method", ["gradcam", "integrated_gradients"])
def test_other_methods_explain_on_request(server, photos, method):
    status, answer = _post(server[0], _body([_b64(photos["astronaut.png"])], explain=method))
    assert status == 200, answer
    (row,) = answer["predictions"]
    emap = np.array(row["explanation"])
    assert emap.shape == (32, 32) and (emap >= 0).all() and emap.max() > 0


@pytest.mark.parametrize("body, expected", [
    (_body(["aGVsbG8="], columns=("photo",)), "missing inputs ['image']"),
    (_body(["this is not base64!"]), "not base64"),
    (_body([_b64(b"hello, not an image")]), "not_an_image"),
    (_body(["aGVsbG8="], explain="shap"), "expected one of none, lime"),
    (b"{not json", "valid JSON"),
    ({"rows": [["x"]]}, "dataframe_split"),
])
def test_malformed_requests_get_a_4xx_with_a_message(server, body, expected):
    base, proc, log = server
    status, answer = _post(base, body)
    print(f"{status} {answer.get('error_code')}: {answer.get('message', '')[-160:]!r}")
    assert 400 <= status < 500, (status, answer)
    assert expected in answer.get("message", ""), answer
    assert answer.get("error_code") in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST")
    with urllib.request.urlopen(f"{base}/ping", timeout=5) as resp:  # the server lives on
        assert resp.status == 200 and proc.poll() is None


def test_in_process_pyfunc_matches_the_keras_model_on_the_aligned_face(store, served, photos, tmp_path):
    import mlflow.pyfunc
    import pandas as pd

    from fer_xai.config import load_params
    from fer_xai.faces.preprocess import prepare_image_file
    from fer_xai.prepared import resize_face
    from fer_xai.registry import UntrustedModelError, load_model_uri

    root, uri = store
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model(PHOTO_URI)
    local = model.predict(pd.DataFrame({"image": [_b64(v) for v in photos.values()]}))
    assert list(local["status"]) == [r["status"] for r in served]
    np.testing.assert_allclose(local.loc[:1, PROB_COLUMNS].to_numpy(float),
                               [[r[c] for c in PROB_COLUMNS] for r in served[:2]], atol=1e-6)

    keras_model = load_model_uri(KERAS_URI)  # the fold's Keras model, as the project loads it
    prepare = load_params(root / "params.yaml").prepare
    for i, name in enumerate(list(photos)[:2]):
        path = tmp_path / name
        path.write_bytes(photos[name])
        face = resize_face(prepare_image_file(path, prepare).image, keras_model.input_shape[1])
        expected = keras_model.predict_on_batch(face[None, ..., None].astype(np.float32))[0]
        np.testing.assert_allclose(local.loc[i, PROB_COLUMNS].to_numpy(float), expected, atol=1e-5)

    with pytest.raises(UntrustedModelError):  # the Keras-only loader still refuses anything else
        load_model_uri(PHOTO_URI)


def test_photo_model_registered_beside_the_keras_model(store):
    from mlflow.tracking import MlflowClient

    _, uri = store
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    keras_mv = client.get_model_version_by_alias("fer-songnet", "fold1")
    photo_mv = client.get_model_version_by_alias("fer-songnet-photo", "fold1")
    assert photo_mv.status == "READY" and photo_mv.run_id == keras_mv.run_id
    assert photo_mv.tags["keras_version"] == str(keras_mv.version) and photo_mv.tags["fold"] == "1"
    assert client.get_run(keras_mv.run_id).data.tags["registered_photo_version"] == str(photo_mv.version)
    import mlflow

    info = mlflow.models.get_model_info(f"models:/fer-songnet-photo/{photo_mv.version}")
    assert [c["name"] for c in info.signature.inputs.to_dict()] == ["image"]
    assert info.signature.params.to_dict() == [{"name": "explain", "type": "string", "default": "none",
                                                "shape": None}]
