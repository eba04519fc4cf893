"""Time and peak memory of preparing one very large photograph (8000 x 8000 RGB by default).

    .venv/bin/python benchmarks/bench_prepare_large.py [--side 8000] [--formats png jpg]

The image is scikit-image's astronaut, head and shoulders upscaled to ``--side`` px, saved as
PNG and as JPEG (quality 90). Each case runs ``prepare.process_record`` (read, detect, landmark,
align, write the 160 px crop) in a fresh process, and reports its wall time and its peak resident
memory above the process's resident memory after imports and model loading (Linux: the peak mark
VmHWM is reset through /proc/self/clear_refs first):

* ``params.yaml`` defaults: detection on a copy reduced to ``detect_max_side`` (1024 px), landmarks
  and alignment on a working image of at most ``work_max_side`` (4096 px; a JPEG is decoded
  straight to gray, and at 1/2..1/8 scale when the image is at least twice that side);
* full resolution: both limits lifted, i.e. the whole image decoded, searched and warped, as
  ``prepare`` did before the limits existed.

Last lines: ``<format> <case>: <seconds> s, peak +<MiB> MiB``, and the landmark distance of the
defaults from the full-resolution run, in pixels of the aligned crop.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path


def _make_image(side: int, path: Path) -> None:
    import cv2
    import skimage.data
    from PIL import Image

    head = skimage.data.astronaut()[:400, 30:430]
    Image.fromarray(cv2.resize(head, (side, side), interpolation=cv2.INTER_CUBIC)).save(path, quality=90)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))


def _reset_peak() -> int:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS and return it, in KiB: imports
    and model loading may have peaked higher than the case itself."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return _status_kib("VmRSS")


def _case(path: str, limits: dict, queue) -> None:
    """In a fresh process: prepare ``path`` once and report seconds, peak RSS growth, landmarks."""
    import numpy as np

    from fer_xai import preparation
    from fer_xai.config import PrepareParams
    from fer_xai.datasets import RawRecord
    from fer_xai.faces import dlib_models

    dlib_models.detector(), dlib_models.predictor()  # model loading is not part of the cost
    before = _reset_peak()
    rec = RawRecord(dataset="bench", subject="s", label="happiness", path=Path(path))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        res = preparation.process_record(rec, "face", out, PrepareParams(**limits))
    seconds = time.perf_counter() - t0
    peak = _status_kib("VmHWM")
    if res["rejected"]:
        raise SystemExit(f"{path}: rejected ({res['reason']}: {res['detail']})")
    queue.put((seconds, (peak - before) / 1024, before / 1024, np.asarray(res["landmarks"])))


def _run(path: Path, limits: dict) -> tuple:
    ctx = mp.get_context("spawn")  # a clean process: its peak RSS is this case's alone
    queue = ctx.Queue()
    proc = ctx.Process(target=_case, args=(str(path), limits, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=8000)
    ap.add_argument("--formats", nargs="+", default=["png", "jpg"])
    a = ap.parse_args()
    import numpy as np

    lifted = {"detect_max_side": 10 * a.side, "work_max_side": 10 * a.side}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in a.formats:
            path = Path(tmp) / f"face.{fmt}"
            _make_image(a.side, path)
            mb = path.stat().st_size / 2**20
            rows = {name: _run(path, limits) for name, limits in (("defaults", {}), ("full resolution", lifted))}
            a_lm, b_lm = (rows[k][3].reshape(-1, 2) for k in ("defaults", "full resolution"))
            dist = np.linalg.norm(a_lm - b_lm, axis=1)
            for name, (seconds, peak, base, _) in rows.items():
                print(f"{fmt} ({a.side}x{a.side} RGB, {mb:.1f} MiB) {name}: {seconds:.2f} s, "
                      f"peak +{peak:.0f} MiB (RSS before: {base:.0f} MiB)")
            print(f"{fmt}: landmarks of the defaults vs full resolution in the 160 px crop (IOD 50 px): "
                  f"mean {dist.mean():.2f} px, max {dist.max():.2f} px")

if __name__ == "__main__":
    main()
