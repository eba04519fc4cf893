"""Typed view of ``params.yaml``: the one place configuration is read.

Every stage receives a :class:`Params` object. Unknown keys are an error (``extra="forbid"``)
so a typo in ``params.yaml`` fails loudly instead of being silently ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .paths import repo_root


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SynthParams(_Strict):
    """The embedded synthetic expressive-face dataset (``fer-xai synth``)."""

    seed: int = 1234
    n_subjects: int = Field(60, ge=2)
    intensities: tuple[float, ...] = (0.6, 0.8, 1.0)
    include_neutral: bool = False
    image_size: int = Field(192, ge=96, le=512)
    out_dir: str = "data/raw/synthetic"

    @field_validator("intensities")
    @classmethod
    def _intensities_in_range(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(not 0.0 < x <= 1.5 for x in v):
            raise ValueError("intensities must be a non-empty list of values in (0, 1.5]")
        return v


class DatasetEntry(_Strict):
    """One dataset folder under ``data.raw_dir`` and the adapter that reads its layout."""

    name: str
    adapter: str = "auto"
    options: dict[str, str | int | float | bool | list[str]] = Field(default_factory=dict)


class DataParams(_Strict):
    raw_dir: str = "data/raw"
    datasets: tuple[DatasetEntry, ...] = (DatasetEntry(name="synthetic", adapter="csv"),)
    include_neutral: bool = False

    @model_validator(mode="after")
    def _unique_names(self) -> "DataParams":
        names = [d.name for d in self.datasets]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate dataset names in data.datasets: {names}")
        if not names:
            raise ValueError("data.datasets is empty: add at least one dataset")
        return self


class PrepareParams(_Strict):
    """Face detection, landmarks, eye-line alignment and crop (paper section 3.2)."""

    out_dir: str = "data/prepared"
    size: int = Field(160, ge=48, le=1024)  # working resolution of the square aligned crop
    # Crop box in units of the inter-ocular distance (IOD), relative to the eye midpoint.
    crop_width_iod: float = Field(3.2, gt=0.5)
    crop_top_iod: float = Field(0.7, ge=0.0)  # how far above the eye line the crop starts
    detector_upsample: int = Field(0, ge=0, le=2)
    min_face_px: int = Field(48, ge=8)  # faces whose detection box is smaller are rejected
    min_image_px: int = Field(64, ge=8)  # images with a shorter side are rejected as tiny
    landmarks_source: Literal["dlib", "dataset", "auto"] = "dlib"
    multiple_faces: Literal["reject", "largest"] = "reject"
    contact_sheet_faces: int = Field(36, ge=1)
    workers: int = Field(2, ge=1)


class SplitParams(_Strict):
    n_folds: int = Field(5, ge=2)
    seed: int = 2024
    out_file: str = "data/folds.csv"


class CompareParams(_Strict):
    """How heatmaps are compared with the Ekman masks and with each other.

    None of the fields besides ``mask_threshold`` affects the published-table numbers
    (IoU, F1, precision, recall); ``mask_threshold`` is 127 in the paper.
    """

    # Network-to-network distance = 1 - normalized correlation coefficient.
    # "pearson": mean-subtracted images (what reproduces the published dendrograms);
    # "uncentred": the paper's Eq. 7 taken literally, <a, b> / (|a| |b|) on raw pixel values.
    correlation: Literal["pearson", "uncentred"] = "pearson"
    # Linkage used for the dendrograms; the paper uses average linkage (UPGMA).
    linkage: Literal["average"] = "average"
    # by_net heatmaps: use the published pooled files when present, else the mean of the folds.
    by_net_source: Literal["auto", "files", "fold_mean"] = "auto"
    # Masks are binarized with ``mask > mask_threshold`` (0/255 masks: any value in 0..254 works).
    mask_threshold: int = Field(127, ge=0, le=254)
    # Seeded percentile bootstrap of IoU/F1 over the folds (the published data has no per-image maps).
    bootstrap_samples: int = Field(2000, ge=100)
    bootstrap_seed: int = 20240
    ci_level: float = Field(0.95, gt=0.5, lt=1.0)
    # Table 5: how many best / worst networks per expression.
    top_k: int = Field(3, ge=1)


class TrackingParams(_Strict):
    experiment: str = "fer-xai"


class Params(_Strict):
    synth: SynthParams = SynthParams()
    data: DataParams = DataParams()
    prepare: PrepareParams = PrepareParams()
    split: SplitParams = SplitParams()
    compare: CompareParams = CompareParams()
    tracking: TrackingParams = TrackingParams()


class ParamsError(ValueError):
    pass


def params_path() -> Path:
    return Path(os.environ.get("FER_XAI_PARAMS", repo_root() / "params.yaml"))


def apply_overrides(raw: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Apply ``dotted.key=value`` overrides (values parsed as YAML), like ``dvc exp run -S``."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParamsError(f"override {item!r}: expected dotted.key=value")
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ParamsError(f"override {item!r}: {part} is not a mapping")
            node = child
        node[parts[-1]] = yaml.safe_load(value)
    return raw


def load_params(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Params:
    """Load and validate ``params.yaml``; errors name the file and the offending key."""
    path = Path(path) if path is not None else params_path()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise ParamsError(f"{path}: params file not found") from exc
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: top level must be a mapping, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides)
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: invalid parameters:"]
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {loc}: {err['msg']}")
        raise ParamsError("\n".join(lines)) from exc
