"""JAFFE (Japanese Female Facial Expression, Lyons et al. 1998): 213 TIFF images of 10 subjects,
flat in one folder (``jaffedbase/`` in the distribution) next to a README::

    KA.AN1.39.tiff   subject KA, expression AN, repetition 1, running index 39

Expression codes: AN anger, DI disgust, FE fear, HA happiness, SA sadness, SU surprise,
NE neutral (dropped unless ``include_neutral``). Extensions ``.tiff``/``.tif`` in any case;
the images may sit in a subfolder. Non-image files (README ...) are ignored quietly; image
files that do not follow the pattern are rejected as ``bad_name``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..images import is_image_name
from .base import Adapter, RawRecord, ScanResult, classify_label, walk_files

PATTERN = re.compile(
    r"^(?P<subject>[A-Za-z]{2})\.(?P<code>[A-Za-z]{2})(?P<rep>\d*)\.(?P<index>\d+)\.(?P<ext>tiff?)$",
    re.IGNORECASE,
)
CODES = {"AN": "anger", "DI": "disgust", "FE": "fear", "HA": "happiness", "SA": "sadness",
         "SU": "surprise", "NE": "neutral"}


class JaffeAdapter(Adapter):
    name = "jaffe"
    layout = "flat TIFF files named SS.EEn.idx.tiff (e.g. KA.AN1.39.tiff), possibly in a subfolder"

    def matches(self, root: Path, **options: Any) -> bool:
        images = [p for p in walk_files(Path(root)) if is_image_name(p)]
        hits = sum(1 for p in images if PATTERN.match(p.name))
        return hits > 0 and hits * 2 >= len(images)

    def _scan(self, root: Path, dataset: str, opts: dict[str, Any], result: ScanResult) -> None:
        for path in walk_files(root, result):
            if not is_image_name(path):
                result.bump("ignored_files")
                continue
            m = PATTERN.match(path.name)
            if m is None:
                result.reject(path, "bad_name", "expected SS.EEn.idx.tiff")
                continue
            code = m["code"].upper()
            raw = CODES.get(code, code)
            label, reason = classify_label(raw, opts["include_neutral"])
            if label is None:
                result.reject(path, reason, f"expression code {code}")
                continue
            result.records.append(RawRecord(
                dataset=dataset, subject=m["subject"].upper(), label=label, path=path,
                meta={"code": code, "repetition": int(m["rep"]) if m["rep"] else None,
                      "index": int(m["index"])},
            ))
