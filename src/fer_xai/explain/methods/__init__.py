"""Explanation methods behind one interface: the paper's LIME and the methods it is checked against.

Usage::

    from fer_xai.explain.methods import get_explainer, method_names
    ex = get_explainer("gradcam", params.explain)      # a configured method of params.yaml
    res = ex.explain(model, faces, classes, seed=params.explain.seed, image_ids=ids)
    res.maps        # (N, H, W) float32 signed relevance for classes[i] (positive = evidence for it)
    res.probs       # (N, 6) float32 probabilities on the unperturbed faces
    res.segments    # (N, H, W) int32 for superpixel methods (lime*, kernelshap), else None

Names: ``"lime"`` is the paper's LIME, configured by the top-level ``explain`` keys (num_samples,
hide_color, kernel_width, ridge_alpha, slic) and giving exactly the numbers of
:mod:`fer_xai.explain.lime_fast`. Every other name is an entry of ``explain.methods`` whose
``kind`` picks the implementation in :data:`METHODS`:

- ``lime``: LIME with another ``fill`` (``mean`` of each superpixel, ``blur``-red image) or
  segmentation (``slic.n_segments``), e.g. ``lime_mean``, ``lime_blur``, ``lime_fine``;
- ``kernelshap``: KernelSHAP on the same SLIC superpixels (Shapley kernel, exact weighted least
  squares with the efficiency constraint, as the ``shap`` package solves it);
- ``occlusion``: a sliding patch, the probability drop averaged over the patches covering a pixel;
- ``gradcam``: Grad-CAM on the last 4-D (convolutional) layer, found automatically;
- ``integrated_gradients``: black or blurred baseline; attributions sum to f(x) - f(baseline);
- ``rise``: the class probability averaged over random smooth masks (seeded, shared by all images).

Images are (N, H, W) floats in [0, 255], the models' input range, as LIME gets them. ``model``
is a Keras model; the perturbation methods also take a batch-probabilities callable. Every method
runs its forward (and backward) passes batched in one traced ``tf.function``; ``seed`` (with the
image ids) seeds every random choice.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ...config import ExplainParams
from ...layout import PAPER_METHOD
from .base import Explainer, MethodResult

Factory = Callable[[str, object, int], Explainer]

# kind -> (module, class), imported on first use so that listing methods needs no TensorFlow.
_IMPLEMENTATIONS = {
    "lime": ("lime", "LimeExplainer"),
    "kernelshap": ("kernelshap", "KernelShapExplainer"),
    "occlusion": ("occlusion", "OcclusionExplainer"),
    "gradcam": ("gradcam", "GradCamExplainer"),
    "integrated_gradients": ("integrated_gradients", "IntegratedGradientsExplainer"),
    "rise": ("rise", "RiseExplainer"),
}


def _factory(module: str, cls: str) -> Factory:
    def make(name, settings, batch_size):
        return getattr(importlib.import_module(f"{__name__}.{module}"), cls)(name, settings, batch_size)

    return make


# kind -> factory(name, settings, batch_size); ``settings`` is the kind's params model of config.py.
METHODS: dict[str, Factory] = {kind: _factory(*where) for kind, where in _IMPLEMENTATIONS.items()}


def method_names(explain: ExplainParams | None = None) -> list[str]:
    """Every method name ``get_explainer`` accepts: ``lime`` and the entries of ``explain.methods``."""
    return [PAPER_METHOD, *(explain or ExplainParams()).methods]


def method_settings(name: str, explain: ExplainParams | None = None):
    """The params model of method ``name`` (``lime``: a :class:`LimeMethodParams` from the top-level keys)."""
    from ...config import LimeMethodParams

    ep = explain or ExplainParams()
    if name == PAPER_METHOD:
        return LimeMethodParams(num_samples=ep.num_samples, hide_color=ep.hide_color, kernel_width=ep.kernel_width,
                                ridge_alpha=ep.ridge_alpha, slic=ep.slic)
    if name not in ep.methods:
        raise KeyError(f"unknown explanation method {name!r}; known: {method_names(ep)}")
    return ep.methods[name]


def get_explainer(name: str, settings=None, batch_size: int | None = None) -> Explainer:
    """The configured explainer ``name``.

    ``settings``: the ``explain`` section (:class:`ExplainParams`; default: its defaults), whose
    ``methods[name]`` (or top-level keys for ``lime``) configure it, or directly one method's
    params model (``GradCamMethodParams()``, ...). ``batch_size`` (default ``explain.batch_size``)
    bounds the images per forward pass.
    """
    if settings is None or isinstance(settings, ExplainParams):
        ep = settings or ExplainParams()
        method = method_settings(name, ep)
        batch = batch_size or ep.batch_size
    else:
        method, batch = settings, batch_size or ExplainParams().batch_size
    return METHODS[method.kind](name, method, batch)


__all__ = ["METHODS", "PAPER_METHOD", "Explainer", "MethodResult", "get_explainer", "method_names",
           "method_settings"]
