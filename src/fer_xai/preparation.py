"""Building the prepared-faces store: every face of every configured dataset, detected,
landmarked, aligned and cropped (:mod:`fer_xai.faces.preprocess`), with its manifest.

Writes into ``prepare.out_dir`` (see :mod:`fer_xai.layout`): ``<dataset>/<id>.png`` aligned
grayscale crops (and ``<id>_mask.png`` where the dataset carries AU-region masks, ``<id>_neutral.png``
where it carries neutral twins: aligned with the face's own transform),
``manifest.parquet``, ``rejected.csv``, ``summary.json`` and ``contact_sheet.png``. Everything is
written to a temporary folder that replaces the old one only when the whole set succeeds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from . import layout
from .config import Params, PrepareParams
from .datasets import LayoutError, RawRecord, scan_dataset
from .datasets.base import display_name
from .errors import FerXaiError
from .faces.align import FaceError
from .faces.preprocess import prepare_image_file
from .images import ImageReadError, write_png
from .outputs import staged_dir
from .paths import resolve
from .prepared import MANIFEST_COLUMNS, REJECTED_COLUMNS
from .visual import contact_sheet

log = logging.getLogger(__name__)


class PrepareError(FerXaiError):
    """A dataset that cannot be prepared (missing folder, bad layout, no usable face)."""


_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")


def _slug(name: str) -> str:
    """A path without its extension, each run of other characters as one ``_`` (never ``__``)."""
    return _NOT_ALNUM.sub("_", os.path.splitext(name)[0]).strip("_")


def _source_key(path: Path, root: Path) -> tuple[str, str]:
    """(what the id is made of, what identifies the file): the path relative to the dataset
    folder for both; for a file outside it (an absolute path in a manifest) its name and its
    absolute path."""
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name, path.resolve().as_posix()
    return rel, rel


def assign_ids(records: list[RawRecord], raw_dir: Path) -> tuple[list[tuple[RawRecord, str]], list[dict]]:
    """A face id for every record, unique by construction; a file listed twice is rejected.

    The id is ``<dataset>__<slug>``, the slug made of the path relative to the dataset folder
    (``images/S001_happiness_100.png`` -> ``images_S001_happiness_100``). Where files share a
    slug (``x.jpg``, ``x.png``) or the slug is empty (a name of non-ASCII letters only), each gets
    ``__`` and a hash of its relative path appended: a slug never contains ``__``, so the two
    forms cannot meet, and the hash depends on the path alone (ids do not depend on listing order).
    """
    keyed, rejected, first = [], [], {}
    for rec in records:
        name, key = _source_key(Path(rec.path), raw_dir / rec.dataset)
        if (rec.dataset, key) in first:
            rejected.append({"dataset": rec.dataset, "path": str(rec.path), "stage": "scan",
                             "reason": "duplicate_row", "detail": f"same file as {first[rec.dataset, key]}"})
            continue
        first[rec.dataset, key] = str(rec.path)
        keyed.append((rec, _slug(name), key))
    owners = Counter((rec.dataset, slug) for rec, slug, _ in keyed)
    kept = []
    for rec, slug, key in keyed:
        fid = f"{rec.dataset}__{slug}"
        if not slug or owners[rec.dataset, slug] > 1:
            # surrogatepass: any str hashes, including names that are not UTF-8 on disk.
            fid += "__" + hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        kept.append((rec, fid))
    clash = [fid for fid, n in Counter(fid for _, fid in kept).items() if n > 1]
    if clash:  # only dataset names containing "__" can do this ("a" + "__b__c" = "a__b" + "__c")
        raise PrepareError(f"face ids {clash[:3]} made by two datasets: rename one so that no "
                           f"dataset name in data.datasets contains '__'")
    return kept, rejected


def _process(args: tuple[RawRecord, str, str, PrepareParams]) -> dict:
    return process_record(*args)


def process_record(rec: RawRecord, face_id: str, out_root: str | os.PathLike, p: PrepareParams) -> dict:
    """One raw record -> an aligned face written under ``out_root``, or a rejection (a dict)."""
    try:
        face = prepare_image_file(rec.path, p, dataset_landmarks=rec.landmarks, mask_path=rec.mask_path,
                                  neutral_path=rec.neutral_path)
    except (ImageReadError, FaceError) as exc:
        return {"rejected": True, "reason": exc.reason, "detail": exc.detail}
    rel_img = layout.prepared_face_image(rec.dataset, face_id)
    write_png(Path(out_root) / rel_img, face.image)
    rel_mask = ""
    if face.mask is not None:
        rel_mask = layout.prepared_face_mask(rec.dataset, face_id)
        write_png(Path(out_root) / rel_mask, ((face.mask > 127) * 255).astype(np.uint8))
    rel_neutral = ""
    if face.neutral is not None:
        rel_neutral = layout.prepared_face_neutral(rec.dataset, face_id)
        write_png(Path(out_root) / rel_neutral, face.neutral)
    return {
        "rejected": False,
        "image": rel_img,
        "mask": rel_mask,
        "neutral": rel_neutral,
        "landmarks_source": face.landmarks_source,
        "det_score": face.det_score,
        "landmarks": face.landmarks.reshape(-1).astype(float).tolist(),
    }


def _encodable(row: dict) -> dict:
    """``row`` with every text UTF-8-encodable (surrogates as ``\\xNN``/``\\uNNNN``)."""
    return {k: display_name(v) if isinstance(v, str) else v for k, v in row.items()}


def build_tables(rows: list[dict], rejected: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The manifest and the rejections as frames that parquet and CSV can always write.

    Files whose names are not UTF-8 (archives from other systems) are kept, not rejected: the
    image is fine and its id is ASCII by construction; only the text columns show such a name
    with its undecodable bytes as ``\\xNN`` (the file is at the path with those bytes)."""
    return (pd.DataFrame([_encodable(r) for r in rows], columns=MANIFEST_COLUMNS),
            pd.DataFrame([_encodable(r) for r in rejected], columns=REJECTED_COLUMNS))


def _scan_all(params: Params) -> tuple[list[RawRecord], list[dict]]:
    raw_dir = resolve(params.data.raw_dir)
    records: list[RawRecord] = []
    rejected: list[dict] = []
    for entry in params.data.datasets:
        root = raw_dir / entry.name
        if not root.is_dir():
            raise PrepareError(
                f"{root}: dataset folder '{entry.name}' listed in params.yaml data.datasets does not exist "
                f"(run `fer-xai synth` for the embedded default or `fer-xai data add {entry.name} PATH`)"
            )
        options = {"include_neutral": params.data.include_neutral, **entry.options}
        try:
            scan = scan_dataset(root, entry.name, adapter=entry.adapter, options=options)
        except LayoutError as exc:
            raise PrepareError(str(exc)) from exc
        log.info("%s: %d images listed, %d rejected while scanning (adapter %s, reading %s)",
                 entry.name, len(scan.records), len(scan.rejections), entry.adapter, root)
        records.extend(scan.records)
        rejected.extend(
            {"dataset": entry.name, "path": r.path, "stage": "scan", "reason": r.reason, "detail": r.detail}
            for r in scan.rejections
        )
    return records, rejected


def _prepare_faces(kept: list[tuple[RawRecord, str]], tmp_dir: Path, p: PrepareParams,
                   rejected: list[dict]) -> list[dict]:
    """Manifest rows of the faces written under ``tmp_dir``; their rejections go to ``rejected``."""
    jobs = [(rec, fid, str(tmp_dir), p) for rec, fid in kept]
    rows: list[dict] = []
    results = _map(jobs, p.workers)
    for (rec, fid), res in zip(kept, results):
        if res["rejected"]:
            rejected.append({"dataset": rec.dataset, "path": str(rec.path), "stage": "prepare",
                             "reason": res["reason"], "detail": res["detail"]})
            continue
        rows.append({
            "id": fid, "dataset": rec.dataset, "subject": str(rec.subject), "label": rec.label,
            "image": res["image"], "mask": res["mask"], "source_path": str(rec.path),
            "landmarks_source": res["landmarks_source"], "det_score": res["det_score"],
            "size": p.size, "landmarks": res["landmarks"], "neutral": res["neutral"],
        })
    return rows


def _check_every_dataset_has_faces(params: Params, manifest: pd.DataFrame, rej: pd.DataFrame) -> None:
    empty = [e.name for e in params.data.datasets if not (manifest["dataset"] == e.name).any()]
    if empty:
        reasons = rej[rej["dataset"].isin(empty)]["reason"].value_counts().to_dict()
        raise PrepareError(
            f"dataset(s) {empty} yielded no usable face image (rejections by reason: {reasons}); "
            f"see the log above"
        )


def build_prepared(params: Params) -> dict:
    """Prepare every face of ``data.datasets`` into ``prepare.out_dir``; returns the summary
    (also written as ``summary.json``)."""
    p = params.prepare
    t0 = time.perf_counter()
    with staged_dir(layout.prepared_dir(params), params.output_guard("prepare")) as tmp_dir:
        records, rejected = _scan_all(params)
        kept, duplicates = assign_ids(records, resolve(params.data.raw_dir))
        rejected.extend(duplicates)
        rows = _prepare_faces(kept, tmp_dir, p, rejected)
        manifest, rej = build_tables(rows, rejected)
        _check_every_dataset_has_faces(params, manifest, rej)
        manifest.to_parquet(tmp_dir / layout.PREPARED_MANIFEST, index=False)
        rej.to_csv(tmp_dir / layout.PREPARED_REJECTED, index=False)
        summary = _summary(manifest, rej, len(records), time.perf_counter() - t0)
        (tmp_dir / layout.PREPARED_SUMMARY).write_text(json.dumps(summary, indent=2, sort_keys=True))
        write_png(tmp_dir / layout.PREPARED_CONTACT_SHEET, contact_sheet(
            [tmp_dir / r for r in manifest["image"]],
            [np.asarray(v).reshape(68, 2) for v in manifest["landmarks"]],
            [f"{a}/{b}" for a, b in zip(manifest["subject"], manifest["label"])],
            [tmp_dir / m if m else None for m in manifest["mask"]],
            n=p.contact_sheet_faces,
        ))
    return summary


# Below this many images a process pool costs more than it saves.
MIN_PARALLEL_JOBS = 64


def _map(jobs: list, workers: int) -> list[dict]:
    desc = "prepare faces"
    if workers <= 1 or len(jobs) < MIN_PARALLEL_JOBS:
        return [_process(j) for j in tqdm(jobs, desc=desc, unit="img")]
    chunk = max(1, min(32, math.ceil(len(jobs) / (workers * 8))))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(_process, jobs, chunksize=chunk), total=len(jobs), desc=desc, unit="img"))


def _summary(manifest: pd.DataFrame, rej: pd.DataFrame, n_listed: int, seconds: float) -> dict:
    per_ds = {}
    for ds, g in manifest.groupby("dataset"):
        per_ds[str(ds)] = {
            "images": int(len(g)),
            "subjects": int(g["subject"].nunique()),
            "labels": {str(k): int(v) for k, v in g["label"].value_counts().sort_index().items()},
            "landmarks_source": {str(k): int(v) for k, v in g["landmarks_source"].value_counts().items()},
        }
    n_detectable = int(len(manifest) + (rej["stage"] == "prepare").sum())
    return {
        "n_listed": int(n_listed),
        "n_prepared": int(len(manifest)),
        "n_rejected": int(len(rej)),
        "rejected_by_reason": {str(k): int(v) for k, v in rej["reason"].value_counts().items()},
        "usable_rate": float(len(manifest) / n_detectable) if n_detectable else 0.0,
        "datasets": per_ds,
        "seconds": round(seconds, 2),
    }
