"""The model passes one explanation needs, per method: what its cost is measured against.

A method's floor is the forward passes it must classify and the backward passes (a gradient of
the class score with respect to the input, each with its own forward) it must take; everything
else (segmentation, surrogate fits, warps) is overhead. ``benchmarks/bench_explain_methods.py``
times both and reports the ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

from .occlusion import patch_masks


@dataclass(frozen=True)
class Passes:
    """Per explained image: images classified without gradients, and images with a gradient pass."""

    forward: int
    backward: int


def passes(settings, input_size: int) -> Passes:
    """The passes one image costs under ``settings`` (a method's params model) at ``input_size``."""
    kind = settings.kind
    if kind == "lime":
        return Passes(settings.num_samples, 0)  # the unperturbed image is the first of the samples
    if kind == "kernelshap":
        return Passes(settings.num_samples + 2, 0)  # and the empty and the full coalition
    if kind == "occlusion":
        return Passes(len(patch_masks(input_size, settings.patch, settings.stride)) + 1, 0)
    if kind == "rise":
        return Passes(settings.num_masks + 1, 0)
    if kind == "gradcam":
        return Passes(0, 1)
    if kind == "integrated_gradients":
        return Passes(0, settings.steps + 2)  # the path's midpoints, then f(x) and f(baseline)
    raise ValueError(f"no pass count for method kind {kind!r}")
