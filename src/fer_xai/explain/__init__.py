"""LIME explanations of face images (paper 4.1), fast and reproducible.

The pieces follow LIME's own algorithm (``lime.lime_image.LimeImageExplainer``) step by step:
SLIC superpixels (:mod:`.segmentation`), a seeded binary on/off matrix and batched occluded images
(:mod:`.perturb`), graph-mode forward passes (:mod:`.predictor`), and LIME's kernel and ridge
surrogate from the ``lime`` package itself (:mod:`.lime_fast`).
"""

from .lime_fast import Explanation, LimeSettings, Perturbation, explain_image, explain_images, make_perturbation
from .perturb import perturbation_matrix, perturbation_rng
from .segmentation import segment

__all__ = [
    "Explanation", "LimeSettings", "Perturbation", "explain_image", "explain_images", "make_perturbation",
    "perturbation_matrix", "perturbation_rng", "segment",
]
