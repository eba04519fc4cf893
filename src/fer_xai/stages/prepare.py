"""``fer-xai prepare``: detect, landmark, align and crop every face of every configured dataset.

Outputs (``prepare.out_dir``, default ``data/prepared``): ``<dataset>/<id>.png`` aligned grayscale
crops (and ``<id>_mask.png`` where the dataset carries AU-region masks), ``manifest.parquet``,
``rejected.csv``, ``summary.json`` and ``contact_sheet.png``. Everything is written to a temporary
folder that replaces the old one only when the stage succeeds.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import click
import numpy as np
import pandas as pd
from tqdm import tqdm

from ..config import Params, PrepareParams
from ..datasets import LayoutError, RawRecord, scan_dataset
from ..faces.align import AlignedFace, CropGeometry, FaceError, align_face
from ..images import ImageReadError, read_gray, write_png
from ..paths import metrics_path, resolve, staged_dir, write_json_atomic
from ..prepared import CONTACT_SHEET, MANIFEST, MANIFEST_COLUMNS, REJECTED, REJECTED_COLUMNS, SUMMARY
from ..visual import contact_sheet

log = logging.getLogger(__name__)


class PrepareError(click.ClickException):
    pass


def _safe_id(dataset: str, rel: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "_", os.path.splitext(rel)[0]).strip("_")
    return f"{dataset}__{stem}"


def prepare_face(gray: np.ndarray, p: PrepareParams, dataset_landmarks: np.ndarray | None = None,
                 mask: np.ndarray | None = None) -> AlignedFace:
    """One image through the preprocessing of ``params.prepare``: size check, detection or the
    dataset's landmarks, alignment and crop. Raises :class:`FaceError` with the reason."""
    if min(gray.shape) < p.min_image_px:
        raise FaceError("too_small", f"{gray.shape[1]}x{gray.shape[0]} px < {p.min_image_px}")
    return align_face(
        gray,
        CropGeometry(p.size, p.crop_width_iod, p.crop_top_iod),
        dataset_landmarks=dataset_landmarks,
        landmarks_source=p.landmarks_source,
        upsample=p.detector_upsample,
        min_face_px=p.min_face_px,
        multiple=p.multiple_faces,
        mask=mask,
    )


def _process(args: tuple[RawRecord, str, str, PrepareParams]) -> dict:
    """Worker: one raw record -> an aligned face written to disk, or a rejection."""
    rec, face_id, out_root, p = args
    try:
        gray = read_gray(rec.path)
        mask = read_gray(rec.mask_path) if rec.mask_path is not None else None
        face = prepare_face(gray, p, dataset_landmarks=rec.landmarks, mask=mask)
    except ImageReadError as exc:
        return {"rejected": True, "reason": exc.reason, "detail": exc.detail}
    except FaceError as exc:
        return {"rejected": True, "reason": exc.reason, "detail": exc.detail}
    rel_img = f"{rec.dataset}/{face_id}.png"
    write_png(Path(out_root) / rel_img, face.image)
    rel_mask = ""
    if face.mask is not None:
        rel_mask = f"{rec.dataset}/{face_id}_mask.png"
        write_png(Path(out_root) / rel_mask, ((face.mask > 127) * 255).astype(np.uint8))
    return {
        "rejected": False,
        "image": rel_img,
        "mask": rel_mask,
        "landmarks_source": face.landmarks_source,
        "det_score": face.det_score,
        "landmarks": face.landmarks.reshape(-1).astype(float).tolist(),
    }


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


def run(params: Params) -> dict:
    p = params.prepare
    t0 = time.perf_counter()
    out_dir = resolve(p.out_dir)
    with staged_dir(out_dir) as tmp_dir:
        records, rejected = _scan_all(params)
        raw_dir = resolve(params.data.raw_dir)
        ids = []
        seen: Counter[str] = Counter()
        for rec in records:
            try:
                rel = str(Path(rec.path).resolve().relative_to((raw_dir / rec.dataset).resolve()))
            except ValueError:
                rel = Path(rec.path).name
            fid = _safe_id(rec.dataset, rel)
            seen[fid] += 1
            ids.append(fid if seen[fid] == 1 else f"{fid}_{seen[fid]}")
        jobs = [(rec, fid, str(tmp_dir), p) for rec, fid in zip(records, ids)]
        rows: list[dict] = []
        results = _map(jobs, p.workers)
        for rec, fid, res in zip(records, ids, results):
            if res["rejected"]:
                rejected.append({"dataset": rec.dataset, "path": str(rec.path), "stage": "prepare",
                                 "reason": res["reason"], "detail": res["detail"]})
                continue
            rows.append({
                "id": fid, "dataset": rec.dataset, "subject": str(rec.subject), "label": rec.label,
                "image": res["image"], "mask": res["mask"], "source_path": str(rec.path),
                "landmarks_source": res["landmarks_source"], "det_score": res["det_score"],
                "size": p.size, "landmarks": res["landmarks"],
            })
        manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
        rej = pd.DataFrame(rejected, columns=REJECTED_COLUMNS)
        empty = [e.name for e in params.data.datasets if not (manifest["dataset"] == e.name).any()]
        if empty:
            reasons = rej[rej["dataset"].isin(empty)]["reason"].value_counts().to_dict()
            raise PrepareError(
                f"dataset(s) {empty} yielded no usable face image (rejections by reason: {reasons}); "
                f"see the log above"
            )
        manifest.to_parquet(tmp_dir / MANIFEST, index=False)
        rej.to_csv(tmp_dir / REJECTED, index=False)
        summary = _summary(manifest, rej, len(records), time.perf_counter() - t0)
        (tmp_dir / SUMMARY).write_text(json.dumps(summary, indent=2, sort_keys=True))
        write_png(tmp_dir / CONTACT_SHEET, contact_sheet(
            [tmp_dir / r for r in manifest["image"]],
            [np.asarray(v).reshape(68, 2) for v in manifest["landmarks"]],
            [f"{a}/{b}" for a, b in zip(manifest["subject"], manifest["label"])],
            [tmp_dir / m if m else None for m in manifest["mask"]],
            n=p.contact_sheet_faces,
        ))
    write_json_atomic(metrics_path("prepare"), summary)
    log.info("prepared %d faces, rejected %d (%s) in %.1f s -> %s, %s", summary["n_prepared"],
             summary["n_rejected"], summary["rejected_by_reason"], summary["seconds"], out_dir,
             metrics_path("prepare"))
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


def log_to_mlflow(params: Params, summary: dict) -> None:
    import mlflow

    from ..tracking import stage_run

    out_dir = resolve(params.prepare.out_dir)
    with stage_run("prepare", params.tracking.experiment, params={
        "prepare": params.prepare.model_dump(), "data": params.data.model_dump()
    }):
        mlflow.log_metrics({
            "n_prepared": summary["n_prepared"], "n_rejected": summary["n_rejected"],
            "usable_rate": summary["usable_rate"], "seconds": summary["seconds"],
        })
        for ds, info in summary["datasets"].items():
            mlflow.log_metrics({f"{ds}.images": info["images"], f"{ds}.subjects": info["subjects"]})
        for reason, n in summary["rejected_by_reason"].items():
            mlflow.log_metric(f"rejected.{reason}", n)
        for name in (REJECTED, SUMMARY, CONTACT_SHEET):
            mlflow.log_artifact(str(out_dir / name))


@click.command("prepare")
@click.option("--no-mlflow", is_flag=True, help="Do not log an MLflow run.")
@click.pass_obj
def cli(obj, no_mlflow: bool) -> None:
    """Detect, landmark, align and crop the faces of every dataset in params.yaml."""
    summary = run(obj.params)
    if not no_mlflow:
        log_to_mlflow(obj.params, summary)
    click.echo(json.dumps({k: summary[k] for k in ("n_prepared", "n_rejected", "rejected_by_reason")}))
