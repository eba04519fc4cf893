"""Ekman masks in canonical face space, built from a versioned AU-region spec (paper 4.4)."""

from .build import au_masks, draw_region, expression_masks, iou, resolve_vertex, to_published
from .spec import MaskSpec, SpecError, default_spec_path, load_spec

__all__ = [
    "MaskSpec", "SpecError", "au_masks", "default_spec_path", "draw_region", "expression_masks", "iou",
    "load_spec", "resolve_vertex", "to_published",
]
