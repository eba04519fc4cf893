"""The six Ekman expressions, their action units (paper Table 2) and label normalisation."""

from __future__ import annotations

# Canonical ids are lowercase; display names match the published file names (e.g. "Anger_gt.png").
EXPRESSIONS: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
NEUTRAL = "neutral"
DISPLAY_NAMES: dict[str, str] = {e: e.capitalize() for e in (*EXPRESSIONS, NEUTRAL)}

# EMFACS action units per expression, as listed in the paper's Table 2.
EXPRESSION_AUS: dict[str, tuple[int, ...]] = {
    "anger": (4, 5, 7, 23),
    "disgust": (9, 15),
    "fear": (1, 2, 4, 5, 7, 20, 26),
    "happiness": (6, 12),
    "sadness": (1, 4, 15),
    "surprise": (1, 2, 5, 26),
}

_ALIASES: dict[str, str] = {
    # English word forms used by the public datasets' documentation and folder names.
    "angry": "anger", "anger": "anger", "an": "anger", "ang": "anger", "mad": "anger",
    "disgust": "disgust", "disgusted": "disgust", "di": "disgust", "dis": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear", "fe": "fear",
    "happiness": "happiness", "happy": "happiness", "joy": "happiness", "ha": "happiness",
    "hap": "happiness",
    "sadness": "sadness", "sad": "sadness", "sa": "sadness",
    "surprise": "surprise", "surprised": "surprise", "su": "surprise", "sur": "surprise",
    "neutral": NEUTRAL, "ne": NEUTRAL, "neu": NEUTRAL,
}


def normalize_label(raw: str) -> str | None:
    """Map a dataset's label spelling to a canonical id; ``None`` when unknown (e.g. contempt)."""
    key = str(raw).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    return _ALIASES.get(key)


def class_index(label: str) -> int:
    """Index of an expression in :data:`EXPRESSIONS` (the networks' softmax order)."""
    return EXPRESSIONS.index(label)
