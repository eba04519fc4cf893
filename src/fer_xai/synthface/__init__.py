"""The embedded synthetic expressive-face dataset (``fer-xai synth``).

Real face photographs bundled with installed packages are warped, piecewise-affinely, by FACS
action units (paper Table 2) into many distinct subjects showing the six Ekman expressions.

Modules, in pipeline order:

- :mod:`.base_faces`   the bundled photos and their dlib landmarks (computed once per process)
- :mod:`.landmarks`    68-point index conventions and geometry helpers
- :mod:`.template`     the canonical face frame, auxiliary control points, base textures
- :mod:`.warp`         triangulation and the dense piecewise-affine map for ``cv2.remap``
- :mod:`.identity`     per-subject proportions, skin, hair, clothes, background, light, pose
- :mod:`.action_units` AU -> landmark moves + skin cues (wrinkles, folds, raised cheeks)
- :mod:`.render`       one image + its neutral twin + the AU-region mask
- :mod:`.generator`    the dataset on disk (parallel over subjects, atomic, deterministic)
"""

from .generator import MANIFEST_COLUMNS, Config, generate, image_plan, render_subject

__all__ = ["MANIFEST_COLUMNS", "Config", "generate", "image_plan", "render_subject"]
