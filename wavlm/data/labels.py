"""Frame label files `utt_id l1 l2 ...` (k-means units, phones), keyed by utterance."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class LabelError(ValueError):
    """A malformed or mismatched label file; names the file, line and utterance."""


def read_labels(path: str | os.PathLike, num_classes: int | None = None) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise LabelError(f"{path}: label file not found")
    out: dict[str, np.ndarray] = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                raise LabelError(f"{path}:{n}: empty line")
            utt = parts[0]
            if utt in out:
                raise LabelError(f"{path}:{n}: duplicate utterance {utt}")
            try:
                labels = np.array([int(x) for x in parts[1:]], dtype=np.int64)
            except ValueError:
                raise LabelError(f"{path}:{n}: labels of {utt} are not integers") from None
            if len(labels) == 0:
                raise LabelError(f"{path}:{n}: utterance {utt} has no labels")
            if num_classes is not None and (labels.min() < 0 or labels.max() >= num_classes):
                raise LabelError(f"{path}:{n}: labels of {utt} outside 0..{num_classes - 1}")
            out[utt] = labels
    return out


def expected_frames(num_samples: int, label_rate: float, sample_rate: int = 16000) -> int:
    """Frames of a 25 ms window / (1/label_rate) shift analysis (MFCC at 100 Hz, WavLM at 50 Hz)."""
    hop = int(round(sample_rate / label_rate))
    win = 400
    return max(0, (num_samples - win) // hop + 1)


def check_label_length(utt: str, labels: np.ndarray, num_samples: int, label_rate: float, where: str,
                       tolerance: int = 2) -> None:
    want = expected_frames(num_samples, label_rate)
    if abs(len(labels) - want) > tolerance:
        raise LabelError(
            f"{where}: utterance {utt} has {len(labels)} labels but its {num_samples} samples give {want} "
            f"frames at {label_rate:g} Hz (tolerance {tolerance}); were the labels made from other audio "
            "or another label rate?")
