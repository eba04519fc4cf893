"""Generate the synthetic dataset: subjects in parallel, files written atomically.

Layout under ``out_dir``::

    images/<id>.png      RGB face, image_size x image_size
    landmarks/<id>.txt   68 lines "x y" (output pixels, after all jitter)
    masks/<id>.png       AU region: 255 where the expression changed the subject's neutral face
    neutral/<id>.png     the image's neutral twin: same subject, pose, light and noise, no expression
    manifest.csv         path,subject,label,intensity,aus,landmarks,mask (paths relative)
    generator.json       parameters, library versions, base photos, counts, seconds
    contact_sheet.png    a few faces with landmarks (green) and mask outlines (red)

Subject ``i`` uses ``numpy.random.default_rng([seed, i])`` for its identity and then, in a fixed
order, for each image's jitter; so results do not depend on the number of worker processes.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import layout
from ..images import write_png
from ..labels import EXPRESSIONS, NEUTRAL
from ..outputs import OutputGuard, staged_dir
from .base_faces import BASE_PHOTOS, base_landmarks, set_base_landmarks
from .identity import Subject, make_subject
from .render import Rendered, draw_jitter, render
from .template import EYE_MID, IOD_FRAC, build_template

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("path", "subject", "label", "intensity", "aus", "landmarks", "mask", "neutral")


@dataclass(frozen=True)
class Config:
    """What the generator needs (a subset of :class:`fer_xai.config.SynthParams`)."""

    seed: int = 1234
    n_subjects: int = 60
    intensities: tuple[float, ...] = (0.6, 0.8, 1.0)
    include_neutral: bool = False
    image_size: int = 192

    @classmethod
    def from_params(cls, p) -> Config:
        return cls(p.seed, p.n_subjects, tuple(p.intensities), p.include_neutral, p.image_size)


def image_plan(cfg: Config) -> list[tuple[str | None, float]]:
    """(expression or None for neutral, intensity) for every image of one subject, in RNG order.

    Neutral images come last so that switching them on does not change any other image.
    """
    plan: list[tuple[str | None, float]] = [(e, float(k)) for e in EXPRESSIONS for k in cfg.intensities]
    if cfg.include_neutral:
        plan.append((None, 0.0))
    return plan


def image_id(subject: Subject, expression: str | None, intensity: float) -> str:
    return f"{subject.id}_{expression or NEUTRAL}_{int(round(intensity * 100)):03d}"


def render_subject(cfg: Config, index: int) -> Iterator[tuple[Subject, str | None, float, Rendered]]:
    """Render every image of subject ``index`` (in memory; used by tests and the writer)."""
    tpl = build_template(cfg.image_size)
    rng = np.random.default_rng([cfg.seed, index])
    subject = make_subject(tpl, rng, index)
    for expression, intensity in image_plan(cfg):
        # Same stream, same number of draws per image whatever its label: jitter carries no label.
        jit = draw_jitter(rng, cfg.image_size)
        yield subject, expression, intensity, render(tpl, subject, expression, intensity, jit)


def _write_subject(cfg: Config, index: int, out: str) -> tuple[list[dict], dict]:
    """Write one subject's files; return its manifest rows and its identity description."""
    root = Path(out)
    rows: list[dict] = []
    info: dict = {}
    for subject, expression, intensity, r in render_subject(cfg, index):
        info = subject.info
        iid = image_id(subject, expression, intensity)
        image, mask, landmarks = layout.synth_image(iid), layout.synth_mask(iid), layout.synth_landmarks(iid)
        neutral = layout.synth_neutral(iid)
        write_png(root / image, r.image)
        write_png(root / mask, r.mask)
        # Rendered anyway (the mask is its difference) and from no extra RNG draw: writing it
        # leaves every other file byte-identical. The bench swaps AU regions for it (causal check).
        write_png(root / neutral, r.neutral)
        (root / landmarks).write_text("".join(f"{x:.3f} {y:.3f}\n" for x, y in r.landmarks))
        rows.append({
            "path": image,
            "subject": subject.id,
            "label": expression or NEUTRAL,
            "intensity": f"{intensity:g}",
            "aus": "+".join(str(a) for a in r.aus),
            "landmarks": landmarks,
            "mask": mask,
            "neutral": neutral,
            "_shrink": r.scale_back,
            "_mask_frac": float((r.mask > 0).mean()),
        })
    return rows, info


def _subject_job(cfg: Config, index: int, out: str,
                 landmarks: dict[str, np.ndarray]) -> tuple[int, tuple[list[dict], dict]]:
    """Worker entry: reuse the parent's base landmarks so the worker never loads dlib."""
    import cv2

    cv2.setNumThreads(1)  # one process per core already
    set_base_landmarks(landmarks)
    return index, _write_subject(cfg, index, out)


def _library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for dist in ("numpy", "opencv-python-headless", "scipy", "scikit-image", "matplotlib", "Pillow", "dlib-bin"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _run_jobs(cfg: Config, out: Path, workers: int, progress: bool) -> tuple[list[dict], dict[str, dict]]:
    from tqdm import tqdm

    indices = list(range(cfg.n_subjects))
    results: dict[int, tuple[list[dict], dict]] = {}
    # Without an explicit ``disable`` tqdm honours TQDM_DISABLE (set by the test-suite).
    bar = tqdm(total=len(indices), desc="synth subjects", unit="subject", **({} if progress else {"disable": True}))
    try:
        if workers <= 1:
            for i in indices:
                results[i] = _write_subject(cfg, i, str(out))
                bar.update()
        else:
            # joblib's loky workers are fresh processes (no fork of a parent that may hold
            # TensorFlow threads) and, unlike multiprocessing's spawn, need no __main__ guard.
            from joblib import Parallel, delayed

            marks = base_landmarks()
            jobs = (delayed(_subject_job)(cfg, i, str(out), marks) for i in indices)
            for i, res in Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered")(jobs):
                results[i] = res
                bar.update()
    finally:
        bar.close()
    rows = [row for i in indices for row in results[i][0]]
    return rows, {results[i][0][0]["subject"]: results[i][1] for i in indices}


def _write_manifest(path: Path, rows: Iterable[dict]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def generate(cfg: Config, out_dir: str | os.PathLike, workers: int = 2, progress: bool = True,
             contact_sheet: bool = True, guard: OutputGuard | None = None) -> dict:
    """Write the dataset to ``out_dir`` (replaced only once everything succeeded); return a summary.

    ``guard``: what ``out_dir`` must not be (default: only a folder this function wrote, or an
    empty or new one, outside the project root's ancestors and the home folder).
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    with staged_dir(out_dir, guard or OutputGuard(owner="synth", key="out_dir")) as tmp:
        for sub in layout.SYNTH_FOLDERS:
            (tmp / sub).mkdir(parents=True)
        base_landmarks()  # run dlib on the base photos once, here, before any worker starts
        rows, subjects = _run_jobs(cfg, tmp, max(1, min(workers, cfg.n_subjects)), progress)
        _write_manifest(tmp / layout.SYNTH_MANIFEST, rows)
        counts = {lab: sum(r["label"] == lab for r in rows) for lab in (*EXPRESSIONS, NEUTRAL)}
        shrunk = sum(r["_shrink"] < 1.0 for r in rows)
        if shrunk:
            log.warning("%d image(s) had their expression scaled down to avoid folding the mesh", shrunk)
        if contact_sheet:
            write_png(tmp / layout.SYNTH_CONTACT_SHEET, _contact_sheet(tmp, rows))
        elapsed = time.perf_counter() - t0
        summary = {
            "out_dir": str(out_dir),
            "n_images": len(rows),
            "n_subjects": cfg.n_subjects,
            "counts": counts,
            "seconds": round(elapsed, 2),
            "mean_mask_fraction": round(float(np.mean([r["_mask_frac"] for r in rows if r["aus"]] or [0.0])), 4),
            "shrunk_expressions": shrunk,
        }
        meta = {
            "params": {**cfg.__dict__, "intensities": list(cfg.intensities)},
            "libraries": _library_versions(),
            "base_photos": list(BASE_PHOTOS),
            "layout": {"eye_midpoint_frac": list(EYE_MID), "iod_frac": IOD_FRAC},
            "counts": counts,
            "n_images": len(rows),
            "elapsed_seconds": round(elapsed, 2),
            "subjects": subjects,  # identity draws, for audits (none depends on a label)
        }
        (tmp / layout.SYNTH_GENERATOR).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    log.info("synthetic dataset: %d images of %d subjects in %.1f s -> %s", len(rows), cfg.n_subjects, elapsed, out_dir)
    return summary


def _contact_sheet(root: Path, rows: list[dict], n_subjects: int = 4) -> np.ndarray:
    """First subjects x six expressions at the top intensity, landmarks and mask outlines drawn."""
    from ..visual import contact_sheet

    top = max(float(r["intensity"]) for r in rows)
    subjects = sorted({r["subject"] for r in rows})[:n_subjects]
    pick = [r for r in rows if r["subject"] in subjects and r["aus"] and float(r["intensity"]) == top]
    return contact_sheet(
        [root / r["path"] for r in pick],
        landmarks=[np.loadtxt(root / r["landmarks"]) for r in pick],
        captions=[f'{r["subject"]} {r["label"]}' for r in pick],
        masks=[root / r["mask"] for r in pick],
        n=len(pick),
        cols=len(EXPRESSIONS),
    )


