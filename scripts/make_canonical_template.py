#!/usr/bin/env python
"""Regenerate ``src/fer_xai/data/canonical_template.json``: the canonical face template.

Provenance: dlib's 68-point shape predictor (Kazemi and Sullivan's ensemble of regression
trees, ``shape_predictor_68_face_landmarks.dat`` trained on iBUG 300-W), run on a blank
(all-zero) 275 x 224 image with the face box ``dlib.rectangle(0, 0, 224, 250)``, returns its
mean face: with no image evidence, every pixel-difference feature is zero and the cascade
returns the same shape whatever the face. This is how the published template (paper Figure 2,
``../shared/reference/figures/ekman_masks.png``) was obtained: its point positions coincide
with the vertices of the published Ekman masks.

The landmarks are dlib's integer pixel coordinates (x, y), pixel-centre convention. The file
records the model's SHA-256 and the dlib version; ``tests/unit/test_canonical.py`` (marked
``dlib``) checks that the packaged file equals a fresh run.

Usage: ``python scripts/make_canonical_template.py [--out PATH]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from fer_xai.faces.canonical import FACE_BOX_HEIGHT, HEIGHT, WIDTH, dlib_mean_landmarks
from fer_xai.faces.dlib_models import predictor_path

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "fer_xai" / "data" / "canonical_template.json"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build() -> dict:
    import dlib

    lm = dlib_mean_landmarks(WIDTH, HEIGHT, FACE_BOX_HEIGHT)
    model = predictor_path()
    return {
        "name": "dlib_mean",
        "description": "dlib's 68-point mean face in the canonical face box (paper section 4.2, Figure 2)",
        "width": WIDTH,
        "height": HEIGHT,
        "face_box": [0, 0, WIDTH, FACE_BOX_HEIGHT],
        "coordinates": "pixel centres, x then y; entry i is dlib / iBUG 300-W landmark i+1",
        "provenance": {
            "method": (
                f"dlib.shape_predictor(model)(numpy.zeros(({HEIGHT}, {WIDTH}), uint8), "
                f"dlib.rectangle(0, 0, {WIDTH}, {FACE_BOX_HEIGHT})): the predictor's mean face"
            ),
            "model": model.name,
            "model_sha256": sha256(model),
            "dlib_version": dlib.__version__,
            "generated_by": "scripts/make_canonical_template.py",
        },
        "landmarks": [[int(x), int(y)] if float(x).is_integer() and float(y).is_integer() else [float(x), float(y)]
                      for x, y in lm],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    data = build()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({k: v for k, v in data.items() if k != "landmarks"}, indent=2)[:-2]
    text += ',\n  "landmarks": [\n' + ",\n".join(f"    {json.dumps(p)}" for p in data["landmarks"]) + "\n  ]\n}\n"
    json.loads(text)  # the hand-joined layout must stay valid JSON
    args.out.write_text(text)
    print(f"wrote {args.out} ({len(data['landmarks'])} landmarks)")


if __name__ == "__main__":
    main()
