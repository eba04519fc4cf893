"""CK+ (Extended Cohn-Kanade, Lucey et al. 2010) as distributed in its four archives::

    cohn-kanade-images/S005/001/S005_001_00000001.png ... S005_001_00000011.png
    Emotion/S005/001/S005_001_00000011_emotion.txt        one float, e.g. "   3.0000000e+00"
    Landmarks/S005/001/S005_001_00000011_landmarks.txt    68 rows "x y" (scientific notation)

The three folders may sit directly in the given folder or up to two levels below it
(``Emotion_labels/Emotion``, ``CK+/cohn-kanade-images`` ...).

Emotion codes: 0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness,
7 surprise. Only 327 of the 593 sequences carry an emotion file; the file names the peak
frame (the last frame of the sequence). Per labelled sequence the adapter returns that peak
frame; unlabelled sequences are skipped (counted in ``info['unlabelled_sequences']``), contempt
sequences are rejected as ``excluded_label``. With ``include_neutral`` the first frame of each
labelled sequence (every CK+ sequence starts at neutral) is returned too, labelled neutral.
Landmarks come from ``Landmarks/`` when present (``bad_landmarks`` when unreadable; the image is
then kept without landmarks).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..images import is_image_name
from .base import Adapter, RawRecord, ScanResult, classify_label, find_dir, read_landmarks_txt

CODES: dict[int, str] = {
    0: "neutral", 1: "anger", 2: "contempt", 3: "disgust",
    4: "fear", 5: "happy", 6: "sadness", 7: "surprise",
}
_SUBJECT = re.compile(r"^S\d+$", re.IGNORECASE)


def _has_subjects(d: Path | None) -> bool:
    if d is None:
        return False
    try:
        return any(c.is_dir() and _SUBJECT.match(c.name) for c in d.iterdir())
    except OSError:
        return False


class CKPlusAdapter(Adapter):
    name = "ckplus"
    layout = ("cohn-kanade-images/S###/###/S###_###_########.png + Emotion/S###/###/*_emotion.txt"
              " (+ Landmarks/S###/###/*_landmarks.txt)")
    option_defaults = {
        "landmarks": (True, "read 68-point landmarks from Landmarks/ when present"),
    }

    def _dirs(self, root: Path) -> tuple[Path | None, Path | None, Path | None]:
        images = find_dir(root, "cohn-kanade-images", 2)
        emotion = find_dir(root, "Emotion", 3)
        landmarks = find_dir(root, "Landmarks", 3)
        return images, emotion, landmarks

    def matches(self, root: Path, **options: Any) -> bool:
        images, emotion, _ = self._dirs(Path(root))
        return _has_subjects(images) and _has_subjects(emotion)

    def _scan(self, root: Path, dataset: str, opts: dict[str, Any], result: ScanResult) -> None:
        images_dir, emotion_dir, landmarks_dir = self._dirs(root)
        assert images_dir is not None and emotion_dir is not None
        include_neutral = opts["include_neutral"]
        use_landmarks = opts["landmarks"] and landmarks_dir is not None
        result.info.update(unlabelled_sequences=0, labelled_sequences=0)

        for subj_dir in sorted(p for p in images_dir.iterdir() if p.is_dir()):
            if not _SUBJECT.match(subj_dir.name):
                result.reject(subj_dir, "no_subject", "not an S### subject folder")
                continue
            subject = subj_dir.name
            for seq_dir in sorted(p for p in subj_dir.iterdir() if p.is_dir()):
                seq = seq_dir.name
                frames = sorted(p for p in seq_dir.iterdir() if p.is_file() and is_image_name(p))
                if not frames:
                    result.reject(seq_dir, "empty_sequence")
                    continue
                emo_files = sorted((emotion_dir / subject / seq).glob("*_emotion.txt"))
                if not emo_files:
                    result.info["unlabelled_sequences"] += 1
                    continue
                emo_file = emo_files[-1]
                try:
                    code = int(round(float(emo_file.read_text().split()[0])))
                except (OSError, ValueError, IndexError) as exc:
                    result.reject(emo_file, "bad_label_file", str(exc)[:120])
                    continue
                result.info["labelled_sequences"] += 1
                raw = CODES.get(code)
                if raw is None:
                    result.reject(emo_file, "unknown_label", f"emotion code {code}")
                    continue
                # The peak frame is named by the emotion file; fall back to the last frame.
                stem = emo_file.name[: -len("_emotion.txt")]
                peak = next((f for f in frames if f.stem == stem), None)
                peak_source = "emotion_file"
                if peak is None:
                    peak, peak_source = frames[-1], "last_frame"
                label, reason = classify_label(raw, include_neutral)
                meta_base = {"sequence": f"{subject}_{seq}", "emotion_code": code,
                             "n_frames": len(frames)}
                if label is None:
                    result.reject(peak, reason, f"{raw} (code {code})")
                else:
                    result.records.append(self._record(
                        dataset, subject, label, peak, landmarks_dir if use_landmarks else None,
                        result, {**meta_base, "frame": _frame_no(peak), "peak": True,
                                 "peak_source": peak_source}))
                if include_neutral and len(frames) > 1:
                    first = frames[0]
                    result.records.append(self._record(
                        dataset, subject, "neutral", first,
                        landmarks_dir if use_landmarks else None, result,
                        {**meta_base, "frame": _frame_no(first), "peak": False}))

    @staticmethod
    def _record(dataset: str, subject: str, label: str, image: Path, landmarks_dir: Path | None,
                result: ScanResult, meta: dict[str, Any]) -> RawRecord:
        lm = None
        if landmarks_dir is not None:
            seq = image.parent.name
            lm_file = landmarks_dir / subject / seq / f"{image.stem}_landmarks.txt"
            if lm_file.is_file():
                try:
                    lm = read_landmarks_txt(lm_file)
                except ValueError as exc:
                    result.reject(lm_file, "bad_landmarks", str(exc)[:120])
            else:
                result.bump("missing_landmark_files")
        return RawRecord(dataset=dataset, subject=subject, label=label, path=image,
                         landmarks=lm, meta=meta)


def _frame_no(path: Path) -> int:
    nums = re.findall(r"\d+", path.stem)
    return int(nums[-1]) if nums else -1
