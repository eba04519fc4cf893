"""Typed view of ``params.yaml``: the one place configuration is read.

Every stage receives a :class:`Params` object. Unknown keys are an error (``extra="forbid"``)
so a typo in ``params.yaml`` fails loudly instead of being silently ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import FerXaiError
from .outputs import OutputGuard, check_layout, place_reason
from .paths import repo_root, resolve


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
    workers: int = Field(2, ge=1)  # processes (one subject per task); the output does not depend on it

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
    def _unique_names(self) -> DataParams:
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
    # Images with more pixels (width x height, read from the header) are rejected as too_large
    # before decoding; Pillow itself refuses more than ~179 MP (2 x Image.MAX_IMAGE_PIXELS).
    max_image_pixels: int = Field(100_000_000, ge=4096)
    # The face detector runs on a copy reduced to this longer side (faces under ~80 px there
    # are missed); landmarks are then predicted on the working image in the mapped-back box.
    detect_max_side: int = Field(1024, ge=128)
    # Working image: larger images are reduced to this longer side first (a JPEG is decoded
    # straight to gray, at 1/2..1/8 scale from twice this side), bounding memory and warp time;
    # a face filling even 1/4 of it still has more pixels than the aligned crop.
    work_max_side: int = Field(4096, ge=256)
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
    # Pipeline mode (`fer-xai compare` without --heatmaps-dir): inputs and output folder.
    # heatmaps_dir holds by_cv/, by_net/ (published layout) and standardized/<model>/fold<k>.npz
    # (per-image maps: IoU/F1 CIs then resample the explained images instead of the folds).
    heatmaps_dir: str | None = None  # None: heatmaps.out_dir
    masks_dir: str | None = None  # None: masks.out_dir
    out_dir: str = "reports/compare"
    methods_out_dir: str = "reports/compare_methods"  # <methods_out_dir>/<method>/: other methods' comparisons


class NetworkTrainParams(_Strict):
    """One network's recipe (paper section 3.4: epochs from preliminary trainings)."""

    input_size: int = Field(ge=32, le=1024)
    epochs: int = Field(ge=1)
    optimizer: Literal["adam", "rmsprop", "sgd"] = "adam"
    learning_rate: float = Field(1e-4, gt=0)
    batch_size: int | None = Field(None, ge=1)  # None: train.batch_size
    pretrained: Literal["imagenet", "none"] = "none"
    augment: bool | None = None  # None: train.augment.enabled; true/false for this network only


def _paper_networks() -> dict[str, NetworkTrainParams]:
    n = NetworkTrainParams
    rms, adam = "rmsprop", "adam"
    return {
        "alexnet": n(input_size=224, epochs=10, optimizer=rms, learning_rate=1e-4),
        "weinet": n(input_size=64, epochs=10, optimizer=rms, learning_rate=1e-4),
        "songnet": n(input_size=224, epochs=25, optimizer=rms, learning_rate=1e-4),
        "silnet": n(input_size=150, epochs=10, optimizer=adam, learning_rate=1e-4),
        **{m: n(input_size=224, epochs=2, optimizer=adam, learning_rate=1e-4, pretrained="imagenet")
           for m in ("vgg16", "vgg19", "resnet50", "resnet101v2", "inceptionv3", "xception")},
        "mobilenetv3": n(input_size=224, epochs=10, optimizer=adam, learning_rate=1e-6, pretrained="imagenet"),
        "efficientnetv2": n(input_size=224, epochs=10, optimizer=adam, learning_rate=1e-6, pretrained="imagenet"),
    }


class AugmentParams(_Strict):
    """Training-time augmentation (paper 3.2): lighting (gamma) and appearance variations."""

    enabled: bool = True
    gamma: tuple[float, float] = (0.7, 1.5)
    translate: float = Field(0.06, ge=0.0, le=0.3)
    crop_min_scale: float = Field(0.85, gt=0.3, le=1.0)  # crops always keep brows, eyes, nose, mouth
    mirror: bool = True


class DvcStagesParams(_Strict):
    """How ``dvc.yaml`` turns ``train.models`` into training and explanation stages.

    Together the two lists should name every network of ``train.models`` once (a network in both
    is an error). ``dvc.yaml`` reads both from ``params.yaml``, so a params file run with
    ``dvc repro`` must set them.
    """

    # train@<model>-<fold>, explain@<model>-<fold>: one process per fold, so an interrupted
    # study loses at most one fold's work (the paper profile: hours per fold).
    per_fold: tuple[str, ...] = ()
    # train_folds@<model>, explain_folds@<model>: one process trains (explains) every fold of
    # train.folds, paying TensorFlow's start-up once per network, not per fold (demo).
    per_network: tuple[str, ...] = ()


class TrainParams(_Strict):
    seed: int = 7
    models: tuple[str, ...] = ("weinet", "songnet", "silnet", "mobilenetv3")
    folds: tuple[int, ...] = (1, 2, 3, 4, 5)
    batch_size: int = Field(128, ge=1)
    max_memory_gib: float = Field(16.0, gt=0)  # the batch is reduced (with a warning) to fit
    # (on a visible GPU the batch is fitted to the GPU's free memory instead)
    # Keras mixed precision: layers compute in 16 bits, weights and the softmax output stay
    # float32 (saved models reload as they were trained). "off": float32 throughout (the paper).
    mixed_precision: Literal["off", "mixed_float16", "mixed_bfloat16"] = "off"
    # TensorFlow's op determinism (tf.config.experimental.enable_op_determinism): seeded runs
    # then repeat on a GPU too (cuDNN otherwise picks non-deterministic kernels); slower there.
    op_determinism: bool = False
    weights_dir: str | None = None  # ImageNet weight files; also searched: the Keras cache
    allow_random_init: bool = False  # train backbones from random init when weights are absent
    # "none": the paper's input (gray, resized); "per_image": each face standardised to a fixed
    # mean and contrast inside the model (a layer, so explainers see the same model).
    input_norm: Literal["none", "per_image"] = "none"
    # Batch-norm momentum for backbones trained from random init (Keras' 0.99-0.999 suits long
    # ImageNet runs; on a few hundred steps the moving statistics lag and test outputs collapse).
    # null keeps the architecture's value; never applied to pretrained backbones.
    random_init_bn_momentum: float | None = Field(None, gt=0.0, lt=1.0)
    register_models: bool = True  # register each fold model in the MLflow registry
    # With register_models: also log and register each fold's photo model (base64 photos in, expression
    # and face box out; fer_xai.serving.photo_model) as fer-<model>-photo@fold<k>.
    register_photo_model: bool = True
    # Use the epochs and learning rate `fer-xai tune` wrote to <tune.out_dir>/best/<model>.yaml
    # instead of train.networks' values (recorded as tuned_params_source in each training run).
    use_tuned: bool = False
    out_dir: str = "models"
    augment: AugmentParams = AugmentParams()
    networks: dict[str, NetworkTrainParams] = Field(default_factory=_paper_networks)
    dvc_stages: DvcStagesParams = DvcStagesParams()

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _off_is_false_in_yaml(cls, v):
        return "off" if v is False else v  # YAML 1.1 reads an unquoted `off` as false

    def augment_for(self, model_id: str) -> AugmentParams:
        """The augmentation of one network: ``augment`` with its own on/off switch applied."""
        own = self.networks[model_id].augment if model_id in self.networks else None
        return self.augment if own is None else self.augment.model_copy(update={"enabled": own})

    @model_validator(mode="after")
    def _models_known(self) -> TrainParams:
        unknown = [m for m in self.models if m not in self.networks]
        if unknown:
            raise ValueError(f"train.models {unknown} have no entry in train.networks")
        if len(set(self.folds)) != len(self.folds) or any(f < 1 for f in self.folds):
            raise ValueError(f"train.folds must be distinct 1-based fold numbers, got {list(self.folds)}")
        # Not required to cover train.models exactly: `-S train.models=[...]` for one CLI call
        # must not need the DVC grouping too. A network missing from both lists is not trained by
        # `dvc repro` (evaluate then names its missing results).
        listed = [*self.dvc_stages.per_fold, *self.dvc_stages.per_network]
        twice = sorted({m for m in listed if listed.count(m) > 1})
        if twice:
            raise ValueError(f"train.dvc_stages: {twice} listed more than once; each network belongs in "
                             "exactly one of per_fold and per_network")
        unknown = [m for m in listed if m not in self.networks]
        if unknown:
            raise ValueError(f"train.dvc_stages {unknown} have no entry in train.networks")
        return self


class EvaluateParams(_Strict):
    out_dir: str = "reports/cv"


class SlicParams(_Strict):
    """SLIC superpixels of the explained image (scikit-image ``slic``; paper: about 30 regions)."""

    n_segments: int = Field(30, ge=2)
    compactness: float = Field(10.0, gt=0)
    sigma: float = Field(1.0, ge=0)
    max_num_iter: int = Field(10, ge=1)
    enforce_connectivity: bool = True


class LimeMethodParams(_Strict):
    """A LIME variant (``explain.methods``): the paper's algorithm with another fill or segmentation.

    Every field is this variant's own (nothing is inherited from the top-level LIME keys), so
    DVC reruns a variant exactly when its own entry changes.
    """

    kind: Literal["lime"] = "lime"
    num_samples: int = Field(1000, ge=10)
    # What an "off" superpixel shows: a constant (hide_color; the paper: black), the mean of the
    # superpixel's own pixels, or the image blurred with blur_sigma (input pixels).
    fill: Literal["color", "mean", "blur"] = "color"
    hide_color: float = 0.0
    blur_sigma: float = Field(4.0, gt=0)
    kernel_width: float = Field(0.25, gt=0)
    ridge_alpha: float = Field(1.0, gt=0)
    slic: SlicParams = SlicParams()


class KernelShapMethodParams(_Strict):
    """KernelSHAP (Lundberg & Lee 2017) on LIME's SLIC superpixels, with its Shapley kernel."""

    kind: Literal["kernelshap"] = "kernelshap"
    num_samples: int = Field(1000, ge=10)  # coalitions per image (besides the empty and full one)
    fill: Literal["color", "mean", "blur"] = "color"
    hide_color: float = 0.0
    blur_sigma: float = Field(4.0, gt=0)
    slic: SlicParams = SlicParams()


class OcclusionMethodParams(_Strict):
    """Occlusion sensitivity (Zeiler & Fergus 2014): the class probability's drop under a sliding patch."""

    kind: Literal["occlusion"] = "occlusion"
    patch: float = Field(0.125, gt=0, le=1)  # patch side, as a fraction of the input size
    stride: float = Field(0.0625, gt=0, le=1)  # step, as a fraction of the input size
    fill: Literal["color", "blur"] = "color"
    hide_color: float = 0.0
    blur_sigma: float = Field(4.0, gt=0)


class GradCamMethodParams(_Strict):
    """Grad-CAM (Selvaraju et al. 2017) on the last convolutional layer, upsampled to the input."""

    kind: Literal["gradcam"] = "gradcam"
    layer: str | None = None  # null: the last layer with a 4-D output before global pooling


class IntegratedGradientsMethodParams(_Strict):
    """Integrated Gradients (Sundararajan et al. 2017): Riemann (midpoint) sum along a straight path."""

    kind: Literal["integrated_gradients"] = "integrated_gradients"
    steps: int = Field(32, ge=1)
    baseline: Literal["black", "blur"] = "black"
    blur_sigma: float = Field(8.0, gt=0)
    # IG explains the class's softmax probability (what LIME's surrogate fits), or its logit.
    target: Literal["probability", "logit"] = "probability"


class RiseMethodParams(_Strict):
    """RISE (Petsiuk et al. 2018): the class probability averaged over random smooth masks."""

    kind: Literal["rise"] = "rise"
    num_masks: int = Field(2000, ge=10)
    grid: int = Field(8, ge=2)  # on/off cells per side before upsampling
    p: float = Field(0.5, gt=0, lt=1)  # probability that a cell is kept
    hide_color: float = 0.0  # what masked-out pixels fade to


MethodParams = Annotated[
    LimeMethodParams | KernelShapMethodParams | OcclusionMethodParams | GradCamMethodParams
    | IntegratedGradientsMethodParams | RiseMethodParams,
    Field(discriminator="kind"),
]


def _default_methods() -> dict:
    """The methods beyond the paper's LIME that every profile can enable by name."""
    return {
        "lime_mean": LimeMethodParams(fill="mean"),
        "lime_blur": LimeMethodParams(fill="blur"),
        "lime_fine": LimeMethodParams(slic=SlicParams(n_segments=100)),
        "kernelshap": KernelShapMethodParams(),
        "occlusion": OcclusionMethodParams(),
        "gradcam": GradCamMethodParams(),
        "integrated_gradients": IntegratedGradientsMethodParams(),
        "ig_blur": IntegratedGradientsMethodParams(baseline="blur"),
        "rise": RiseMethodParams(),
    }


class ExplainParams(_Strict):
    """LIME explanations of the registered fold models (``fer-xai explain``, paper 4.1).

    The top-level LIME keys are the paper's method, ``lime``; ``methods`` configures the other
    explanation methods by name, and ``methods_enabled`` lists those the pipeline runs beside it.
    """

    seed: int = 11
    positives_per_class: int = Field(100, ge=1)  # predicted positives explained per class and fold
    num_samples: int = Field(1000, ge=10)  # LIME perturbations per image
    hide_color: float = 0.0  # black occlusion
    kernel_width: float = Field(0.25, gt=0)  # LIME's exponential kernel on cosine distance
    ridge_alpha: float = Field(1.0, gt=0)  # LIME's surrogate: Ridge(alpha=1)
    batch_size: int = Field(128, ge=1)  # perturbed images per forward pass
    # On a visible GPU the forward batch grows (up to num_samples) to fill this share of the
    # GPU's free memory; 0 keeps batch_size there too. On CPU batch_size is used as is.
    gpu_batch_memory_fraction: float = Field(0.5, ge=0.0, le=0.9)
    slic: SlicParams = SlicParams()
    out_dir: str = "explanations"
    sheet_faces: int = Field(24, ge=0)
    log_to_mlflow: bool = True
    methods: dict[str, MethodParams] = Field(default_factory=_default_methods)
    methods_enabled: tuple[str, ...] = ()  # names of `methods` the pipeline runs besides LIME
    # <methods_out_dir>/<method>/<model>/fold<k>/: the other methods' explanations (LIME's stay in out_dir)
    methods_out_dir: str = "explanations_methods"

    @model_validator(mode="after")
    def _methods_known(self) -> ExplainParams:
        if "lime" in self.methods:
            raise ValueError("explain.methods: 'lime' is the paper's LIME, set by the top-level explain keys; "
                             "name a variant otherwise (e.g. lime_mean)")
        bad = [m for m in self.methods if not m.replace("_", "").isalnum()]
        if bad:
            raise ValueError(f"explain.methods {bad}: names are letters, digits and _ (they name folders)")
        if "lime" in self.methods_enabled:
            raise ValueError("explain.methods_enabled: the paper's LIME always runs (stages explain/explain_folds); "
                             "list only the other methods")
        unknown = [m for m in self.methods_enabled if m not in self.methods]
        if unknown:
            raise ValueError(f"explain.methods_enabled {unknown} have no entry in explain.methods "
                             f"(known: {sorted(self.methods)})")
        return self


class CanonicalParams(_Strict):
    """The canonical face space every explanation is warped into (paper 4.2)."""

    width: int = Field(224, ge=32)
    height: int = Field(275, ge=32)
    face_box_height: int = Field(250, ge=16)  # the 68 template landmarks lie in (0,0)-(width, face_box_height)
    # "dlib_mean": the packaged dlib mean face (the published template); "procrustes": the
    # generalized-Procrustes mean of the prepared faces' landmarks, placed on the dlib template.
    template: Literal["dlib_mean", "procrustes"] = "dlib_mean"
    # Sampling of explanation maps; label maps (segments, AU masks) are always sampled nearest.
    interpolation: Literal["linear", "nearest"] = "linear"
    # Top-edge points 69-85: the jaw x values "sorted" into the template's left-to-right order,
    # or "copy"-ed point by point (the paper's literal rule; folds thin top-edge triangles).
    top_points: Literal["sorted", "copy"] = "sorted"
    # Faces whose warp folds by more than this many canonical pixels are rejected per image;
    # 0 rejects any flipped or collapsed triangle.
    max_fold_px: float = Field(3.0, ge=0.0)

    @model_validator(mode="after")
    def _box_fits(self) -> CanonicalParams:
        if self.face_box_height > self.height:
            raise ValueError(f"face_box_height {self.face_box_height} exceeds height {self.height}")
        return self


class HeatmapsParams(_Strict):
    """Mean standardized explanations per network/fold/expression (``fer-xai heatmaps``, paper 4.3)."""

    out_dir: str = "heatmaps"
    # Planted truth (synthetic set): the mean warped AU-region mask of an expression is
    # binarized at this fraction of its images.
    planted_threshold: float = Field(0.5, gt=0.0, le=1.0)
    colormap: str = "jet"  # matplotlib colormap of the colour PNGs and figure grids
    mean_face: bool = True  # also warp the explained faces and save their mean (figure background)
    log_to_mlflow: bool = True  # heatmaps into each fold's training run + a `heatmaps` stage run
    methods_out_dir: str = "heatmaps_methods"  # <methods_out_dir>/<method>/: heatmaps of explain.methods_enabled


class MasksParams(_Strict):
    """Ekman masks built from the AU-region spec (``fer-xai masks``, paper 4.4)."""

    out_dir: str = "masks"
    spec: str | None = None  # AU-region spec (YAML); null: the packaged fer_xai/data/ekman_masks.yaml
    overview: bool = True  # also draw the masks over the template with the point numbers


class BenchParams(_Strict):
    """The explainer bench (``fer-xai bench``): every method of the study checked against planted
    truth, neutral-face swaps, deletion/insertion, model randomisation and chance."""

    out_dir: str = "reports/bench"  # tables (CSV), figures (PNG), summary.json; metrics in metrics/bench.json
    # null: the paper's LIME and explain.methods_enabled (each needs its heatmaps and compare folders)
    methods: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None  # networks probed with their fold models; null: train.models
    fold: int = Field(1, ge=1)  # the fold whose registered models and explained test faces are probed
    images_per_class: int = Field(10, ge=1)  # faces per class among those LIME explained on bench.fold
    correct_only: bool = True  # only correctly classified faces (their planted region is the explained class's)
    seed: int = 31  # random regions, tie order, random pixel order, randomised weights
    top_fraction: float = Field(0.1, gt=0.0, le=1.0)  # causal check: the method's top-k% pixels (besides Otsu)
    curve_steps: int = Field(20, ge=1)  # deletion/insertion: pixel fractions 0, 1/steps, ..., 1
    curve_fill: Literal["black", "blur"] = "blur"  # what deleted pixels show
    sanity_images: int = Field(12, ge=0)  # faces per model explained again under randomised weights (0: no check)
    sanity_steps: int = Field(3, ge=1)  # cascade points from the top layer down to all layers
    sanity_max_spearman: float = Field(0.5, ge=-1.0, le=1.0)  # fully randomised maps correlating more fail
    chance_repeats: int = Field(5, ge=0)  # random superpixel weights: draws of the chance heatmaps
    batch_size: int = Field(128, ge=1)  # images per forward pass
    log_to_mlflow: bool = True  # one `bench` run per method (tag fer_xai.method)


class ReportParams(_Strict):
    """The HTML study report (``fer-xai report``).

    Inputs are the other stages' outputs (``evaluate.out_dir``, ``compare.heatmaps_dir``,
    ``compare.masks_dir``, ``compare.out_dir``, ``train.out_dir``); missing ones become a
    "missing: run ..." note in their section.
    """

    out_dir: str = "reports"
    html_name: str = "report.html"  # self-contained: every figure embedded as a data URI
    figures_dir: str = "report_figures"  # under out_dir: the same figures as PNG files
    title: str = "Do facial-expression networks look where humans look?"
    heatmap_colormap: str = "jet"  # matplotlib colormap of the heatmap grids
    include_params: bool = True  # the full params.yaml in the provenance block


class IntRange(_Strict):
    """An integer search range, both ends included."""

    low: int = Field(ge=1)
    high: int = Field(ge=1)

    @model_validator(mode="after")
    def _not_empty(self) -> IntRange:
        if self.low > self.high:
            raise ValueError(f"empty search range: low={self.low} > high={self.high}")
        return self


class FloatRange(_Strict):
    """A float search range, both ends included; ``log``: sample on a log scale."""

    low: float = Field(gt=0)
    high: float = Field(gt=0)
    log: bool = True

    @model_validator(mode="after")
    def _not_empty(self) -> FloatRange:
        if self.low > self.high:
            raise ValueError(f"empty search range: low={self.low} > high={self.high}")
        return self


class SearchSpace(_Strict):
    epochs: IntRange = IntRange(low=2, high=20)
    learning_rate: FloatRange = FloatRange(low=1e-5, high=1e-2)


class NetworkSearchSpace(_Strict):
    """Per-network replacement of ``tune.space`` entries (unset: ``tune.space``'s)."""

    epochs: IntRange | None = None
    learning_rate: FloatRange | None = None


class PrunerParams(_Strict):
    """``median``: stop a trial whose validation accuracy is below the median of earlier trials at
    the same epoch; ``threshold``: below ``threshold``; ``none``: never. Both never stop a trial
    in its first ``warmup_epochs`` epochs; ``median`` waits for ``n_startup_trials`` finished trials."""

    kind: Literal["median", "threshold", "none"] = "median"
    n_startup_trials: int = Field(3, ge=0)
    warmup_epochs: int = Field(2, ge=0)
    threshold: float = 0.0


class TuneParams(_Strict):
    """Optuna tuning of epochs and learning rate (``fer-xai tune``, paper 3.4)."""

    seed: int = 13  # TPE sampler and validation split
    trials: int = Field(20, ge=1)  # default of --trials (trials run by one `fer-xai tune` call)
    startup_trials: int = Field(5, ge=1)  # random trials before TPE models the space
    # The outer test fold: never trained on nor scored. Validation: val_fraction of the other
    # folds' subjects.
    test_fold: int = Field(1, ge=1)
    val_fraction: float = Field(0.25, gt=0.0, lt=1.0)
    space: SearchSpace = SearchSpace()
    networks: dict[str, NetworkSearchSpace] = Field(default_factory=dict)
    pruner: PrunerParams = PrunerParams()
    # Optuna storage: any database URL (several machines share one study); null: <out_dir>/optuna.db.
    storage: str | None = None
    study_prefix: str = "fer-xai"  # study name: <study_prefix>-<model>
    out_dir: str = "tuning"  # best/<model>.yaml (what train.use_tuned reads), studies/<model>/ plots

    def space_for(self, model_id: str) -> SearchSpace:
        over = self.networks.get(model_id)
        if over is None:
            return self.space
        return SearchSpace(epochs=over.epochs or self.space.epochs,
                           learning_rate=over.learning_rate or self.space.learning_rate)


class TrackingParams(_Strict):
    experiment: str = "fer-xai"


class StageResources(_Strict):
    """What one stage's Ray task asks of a node (``ray.remote`` options)."""

    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0)
    memory_gib: float | None = Field(None, gt=0)  # Ray's ``memory``: the task waits for a node with this free
    resources: dict[str, float] = Field(default_factory=dict)  # custom Ray resources, e.g. {big_disk: 1}


def _default_stage_resources() -> dict[str, StageResources]:
    gpu = StageResources(num_cpus=1, num_gpus=1)
    return {"default": StageResources(), "train": gpu, "explain": gpu}


class ExecutorParams(_Strict):
    """``fer-xai repro --executor ray``: DVC's stale stages as Ray tasks, recorded with ``dvc commit``.

    A stage's resources: ``resources[<stage name before @>]``, else ``resources[<its fer-xai
    command>]`` (``train_folds@m`` runs ``fer-xai train``), else ``resources["default"]``. GPUs
    asked of a cluster without any are dropped with a warning (the stage runs on CPUs).
    """

    resources: dict[str, StageResources] = Field(default_factory=_default_stage_resources)
    out_dir: str = "logs/executor"  # <out_dir>/<run id>/: run.json (what ran where) and one log per stage
    # auto: an `mlflow server` on the driver's node when the cluster has more than one node and
    # MLFLOW_TRACKING_URI is unset (never a SQLite file written from several nodes).
    mlflow_server: Literal["auto", "always", "never"] = "auto"
    mlflow_host: str = "127.0.0.1"  # loopback: nodes of other machines need the head's address here
    mlflow_port: int = Field(0, ge=0, le=65535)  # 0: a free port


class Params(_Strict):
    synth: SynthParams = SynthParams()
    data: DataParams = DataParams()
    prepare: PrepareParams = PrepareParams()
    split: SplitParams = SplitParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    explain: ExplainParams = ExplainParams()
    canonical: CanonicalParams = CanonicalParams()
    heatmaps: HeatmapsParams = HeatmapsParams()
    masks: MasksParams = MasksParams()
    compare: CompareParams = CompareParams()
    report: ReportParams = ReportParams()
    bench: BenchParams = BenchParams()
    tune: TuneParams = TuneParams()
    tracking: TrackingParams = TrackingParams()
    executor: ExecutorParams = ExecutorParams()

    @model_validator(mode="after")
    def _folds_exist(self) -> Params:
        bad = [f for f in self.train.folds if f > self.split.n_folds]
        if bad:
            raise ValueError(f"train.folds {bad} exceed split.n_folds={self.split.n_folds}")
        return self

    @model_validator(mode="after")
    def _outputs_safe(self) -> Params:
        # Caught here so `-S key=value` overrides fail before any stage starts; the stages check
        # the folder's state (marker, contents) again at run time.
        for key in ("report.html_name", "report.figures_dir"):
            name = self.report.html_name if key == "report.html_name" else self.report.figures_dir
            if not name or Path(name).name != name or name in (".", ".."):
                raise ValueError(f"{key} must be a plain name under report.out_dir, got {name!r}")
        raw = resolve(self.data.raw_dir)
        problems = check_layout(self.output_claims(), raw, "synth.out_dir")
        # report.out_dir holds other stages' folders (reports/cv, reports/compare): only its place
        # is checked; its own outputs are html_name and figures_dir.
        reason = place_reason(resolve(self.report.out_dir), raw, allow_in_raw=False)
        if reason is not None:
            problems.append(f"report.out_dir = {resolve(self.report.out_dir)}: {reason}")
        if problems:
            raise ValueError("unsafe output paths:\n    " + "\n    ".join(problems))
        return self

    def output_claims(self) -> dict[str, Path]:
        """Every path a stage writes (or a store the project keeps), by the key that names it."""
        root = repo_root()
        report = resolve(self.report.out_dir)
        return {
            "synth.out_dir": resolve(self.synth.out_dir),
            "prepare.out_dir": resolve(self.prepare.out_dir),
            "split.out_file": resolve(self.split.out_file),
            "train.out_dir": resolve(self.train.out_dir),
            "evaluate.out_dir": resolve(self.evaluate.out_dir),
            "explain.out_dir": resolve(self.explain.out_dir),
            "explain.methods_out_dir": resolve(self.explain.methods_out_dir),
            "masks.out_dir": resolve(self.masks.out_dir),
            "heatmaps.out_dir": resolve(self.heatmaps.out_dir),
            "heatmaps.methods_out_dir": resolve(self.heatmaps.methods_out_dir),
            "compare.out_dir": resolve(self.compare.out_dir),
            "compare.methods_out_dir": resolve(self.compare.methods_out_dir),
            "report.html_name": report / self.report.html_name,
            "report.figures_dir": report / self.report.figures_dir,
            "tune.out_dir": resolve(self.tune.out_dir),
            "bench.out_dir": resolve(self.bench.out_dir),
            "executor.out_dir": resolve(self.executor.out_dir),
            "metrics (DVC metrics files)": root / "metrics",
            "mlflow (tracking store)": root / "mlflow.db",
            "mlflow (artifact store)": root / "mlartifacts",
        }

    def output_guard(self, stage: str, key: str | None = None) -> OutputGuard:
        """The guard of ``stage``'s output folders; ``key`` names where the path came from
        (default ``<stage>.out_dir``). Every other stage's output is protected from it."""
        claims = self.output_claims()
        others = {k: p for k, p in claims.items() if k.split(".", 1)[0] != stage}
        return OutputGuard(owner=stage, key=key or f"{stage}.out_dir", others=others,
                           raw_dir=resolve(self.data.raw_dir), allow_in_raw=stage == "synth")

    def folds_to_run(self, fold: int | None) -> list[int]:
        """The test folds a per-fold command runs: ``[fold]`` when one is given, else
        ``train.folds``. ValueError (``--fold K: folds are 1..N``) for a fold that does not exist."""
        if fold is None:
            return list(self.train.folds)
        if fold not in range(1, self.split.n_folds + 1):
            raise ValueError(f"--fold {fold}: folds are 1..{self.split.n_folds}")
        return [fold]


class ParamsError(FerXaiError, ValueError):
    pass


def read_yaml_mapping(path: Path, what: str, error: type[Exception] = ParamsError) -> dict:
    """A YAML file whose top level is a mapping (empty: ``{}``); problems name the file."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise error(f"{path}: {what} not found") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise error(f"{path}: top level must be a mapping, got {type(raw).__name__}")
    return raw


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
    raw = apply_overrides(read_yaml_mapping(path, "params file"), overrides)
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: invalid parameters:"]
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "params"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  {loc}: {msg}")
        raise ParamsError("\n".join(lines)) from exc
