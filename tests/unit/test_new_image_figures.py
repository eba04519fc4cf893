"""The figure and the page of `fer-xai explain --images`: sizes, top three, escaping."""

import numpy as np

from fer_xai.explain.figure import FIGURE_PX, PANEL_PX, explanation_figure, top_classes
from fer_xai.explain.index_page import index_html, row


def test_top_classes_most_probable_first():
    probs = np.array([0.1, 0.05, 0.3, 0.4, 0.1, 0.05])
    assert top_classes(probs) == [("happiness", 0.4), ("fear", 0.3), ("anger", 0.1)]


def test_figure_has_its_size_and_shows_face_and_map():
    rng = np.random.default_rng(0)
    face = rng.integers(0, 255, (32, 32), dtype=np.uint8)
    emap = np.zeros((32, 32), np.float32)
    emap[8:16, 8:24] = 0.02
    img = explanation_figure(face, emap, np.full(6, 1 / 6), 2, "a.png", "LIME")
    assert img.shape == (FIGURE_PX[1], FIGURE_PX[0], 3) and img.dtype == np.uint8
    assert PANEL_PX >= 256
    # An all-zero map (no evidence) still gives a figure.
    assert explanation_figure(face, np.zeros_like(emap), np.full(6, 1 / 6), 0, "b.png", "LIME").shape == img.shape


def test_page_escapes_file_names_and_lists_rejections():
    rows = [row(0, "<script>x</script>.png", "figures/0-_script_x_script_.png.png",
                top_classes(np.array([0.1, 0.6, 0.1, 0.1, 0.05, 0.05])))]
    page = index_html(rows, [{"path": "b&w.jpg", "reason": "no_face", "detail": None}], images="imgs",
                      model_uri="models:/fer-silnet@fold3", method="LIME", n_images=2)
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;.png" in page
    assert "<b>Disgust</b>" in page and "<li>Disgust 0.600</li>" in page
    assert "b&amp;w.jpg" in page and "no_face" in page
    assert "1 of 2 images" in page and "1 rejected" in page
