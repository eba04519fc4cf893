"""The photo model's request checks and per-photo answers, without MLflow serving or a network."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fer_xai.serving.photo_input import IMAGE_COLUMN, PhotoInputError, decode_image, decode_images


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("encode", [
    lambda b: base64.b64encode(b).decode(),
    lambda b: base64.encodebytes(b).decode(),  # wrapped at 76 columns, as `base64` prints it
    lambda b: "data:image/png;base64," + base64.b64encode(b).decode(),
    lambda b: "  " + base64.b64encode(b).decode() + "\n",
])
def test_decode_image_accepts_plain_wrapped_and_data_url_base64(encode):
    data = _png(np.zeros((4, 4), np.uint8))
    assert decode_image(encode(data)) == data


@pytest.mark.parametrize("value, message", [
    ("not base64!", "not base64"),
    ("abc", "not base64"),  # bad padding
    ("", "empty"),
    ("data:image/png;base64,", "empty"),
    (12, "got int"),
    (None, "got NoneType"),
])
def test_decode_image_says_what_is_wrong(value, message):
    with pytest.raises(ValueError, match=message):
        decode_image(value)


def test_decode_images_names_the_column_it_expects():
    with pytest.raises(PhotoInputError, match=r"columns \['photo'\]; expected one column 'image'"):
        decode_images(pd.DataFrame({"photo": ["aGk="]}))
    with pytest.raises(PhotoInputError, match="no rows"):
        decode_images(pd.DataFrame({IMAGE_COLUMN: []}))


def test_decode_images_names_every_bad_row_up_to_five():
    good = base64.b64encode(b"x").decode()
    values = [good, "??", good, *["!!"] * 6]
    with pytest.raises(PhotoInputError) as err:
        decode_images(pd.DataFrame({IMAGE_COLUMN: values}))
    msg = str(err.value)
    assert "7 of 9 values" in msg and "row 1: not base64" in msg and "row 3:" in msg and "row 8" not in msg
    assert msg.endswith("; ...")
    assert decode_images(pd.DataFrame({IMAGE_COLUMN: [good, good]})) == [b"x", b"x"]


def test_explain_param_defaults_off_and_rejects_unknown_methods():
    from fer_xai.serving.photo_model import explain_method

    assert explain_method(None) == explain_method({}) == "none"
    assert explain_method({"explain": "LIME"}) == "lime"
    with pytest.raises(PhotoInputError, match="expected one of none, lime"):
        explain_method({"explain": "gradcam"})
    assert explain_method({"explain": "gradcam"}, ("none", "lime", "gradcam")) == "gradcam"


def test_classifier_offers_the_trainings_methods():
    from fer_xai.config import ExplainParams, PrepareParams
    from fer_xai.serving.photo_model import PhotoClassifier

    prepare = PrepareParams(size=64, min_face_px=32, min_image_px=64)
    assert PhotoClassifier(None, 32, prepare, {}).methods == ("none", "lime")  # a model logged without them
    trained = ExplainParams().model_dump(mode="json")
    assert PhotoClassifier(None, 32, prepare, {}, trained).methods == ("none", "lime", *ExplainParams().methods)


def test_box_is_mapped_back_from_the_reduced_working_image_and_clipped():
    from fer_xai.serving.photo_model import _box_on_photo

    assert _box_on_photo((10, 20, 30, 40), (1.0, 1.0), 100, 100) == {
        "box_left": 10, "box_top": 20, "box_right": 30, "box_bottom": 40}
    # A photo reduced to half its size: working pixel x is file pixel (x + 0.5) * 2 - 0.5.
    assert _box_on_photo((10, 20, 30, 40), (0.5, 0.5), 100, 100) == {
        "box_left": 20, "box_top": 40, "box_right": 60, "box_bottom": 80}
    assert _box_on_photo((-5, -3, 120, 90), (1.0, 1.0), 100, 80) == {
        "box_left": 0, "box_top": 0, "box_right": 99, "box_bottom": 79}


def test_signature_is_declared_with_the_image_column_and_the_explain_param():
    from fer_xai.serving.photo_model import OUTPUT_COLUMNS, photo_signature

    sig = photo_signature()
    assert sig.inputs.input_names() == [IMAGE_COLUMN]
    assert sig.outputs.input_names() == OUTPUT_COLUMNS
    assert [(p.name, p.default) for p in sig.params.params] == [("explain", "none")]


@pytest.fixture
def classifier():
    """The photo pipeline with a fake network that records what it is fed (no TensorFlow)."""
    from fer_xai.config import PrepareParams
    from fer_xai.serving.photo_model import PhotoClassifier

    seen = []

    def predict(batch):
        seen.append(batch)
        return np.tile(np.array([0.1, 0.1, 0.1, 0.5, 0.1, 0.1]), (len(batch), 1))

    return PhotoClassifier(predict, 32, PrepareParams(size=64, min_face_px=32, min_image_px=64), {}), seen


@pytest.mark.dlib
def test_classifier_answers_per_photo_in_order(classifier, astronaut_rgb):
    model, seen = classifier
    tiny = _png(np.zeros((40, 40), np.uint8))
    flat = _png(np.full((200, 300), 128, np.uint8))
    out = model([tiny, _png(astronaut_rgb), flat])
    assert list(out["status"]) == ["rejected", "ok", "rejected"]
    assert list(out["reason"]) == ["too_small", "", "no_face"]
    assert len(seen) == 1 and seen[0].shape == (1, 32, 32, 1)  # one batch of the usable faces only
    face = out.iloc[1]
    assert face["expression"] == "happiness" and face["confidence"] == pytest.approx(0.5)
    assert (face["image_width"], face["image_height"]) == (512, 512)
    assert 0 < face["box_left"] < face["box_right"] < 512 and face["explanation"] is None
    assert out.iloc[2]["p_happiness"] is None and out.iloc[2]["image_width"] == 300


def test_classifier_refuses_bytes_that_are_not_an_image(classifier):
    model, seen = classifier
    with pytest.raises(PhotoInputError, match=r"1 of 2 values are not readable images: row 1: not_an_image"):
        model([_png(np.zeros((80, 80), np.uint8)), b"GIF89a but not really"])
    assert not seen
