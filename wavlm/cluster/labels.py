"""Frame-level label files `utt_id l1 l2 ...` (keyed by utterance), the fairseq-style `dict.km.txt`,
and checks of label lengths against features or audio.

A label dir written by `wavlm.bin.dump_km_label` holds `km.txt`, `dict.km.txt` and `labels_info.json`
(`label_rate` in labels per second, `n_clusters`, the k-means model and the features it came from).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from wavlm.data.datadir import atomic_write_text, c_sorted

LABELS = "km.txt"
DICT = "dict.km.txt"
INFO = "labels_info.json"


class LabelError(ValueError):
    """Labels that are malformed or do not fit their features/audio; names the file, line or utterance."""


def format_labels(utt: str, labels: Iterable[int | str]) -> str:
    return " ".join([utt, *map(str, labels)]) + "\n"


def write_labels(path: str | os.PathLike, labels: Mapping[str, Iterable[int | str]]) -> None:
    """Write `utt l1 l2 ...` lines sorted in C locale, atomically."""
    atomic_write_text(path, "".join(format_labels(u, labels[u]) for u in c_sorted(labels)))


def read_labels(path: str | os.PathLike, *, as_int: bool = True) -> dict[str, np.ndarray | list[str]]:
    """`utt -> labels` (int64 arrays, or lists of strings with as_int=False, e.g. phones)."""
    out: dict[str, np.ndarray | list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                raise LabelError(f"{path}:{n}: empty line")
            utt, labs = parts[0], parts[1:]
            if utt in out:
                raise LabelError(f"{path}:{n}: duplicate utterance {utt!r}")
            if not labs:
                raise LabelError(f"{path}:{n}: utterance {utt} has no labels")
            if as_int:
                try:
                    out[utt] = np.asarray([int(x) for x in labs], dtype=np.int64)
                except ValueError:
                    raise LabelError(f"{path}:{n}: utterance {utt} has non-integer labels") from None
            else:
                out[utt] = labs
    return out


def label_counts(labels: Iterable[np.ndarray], n_clusters: int) -> np.ndarray:
    counts = np.zeros(n_clusters, dtype=np.int64)
    for lab in labels:
        counts += np.bincount(np.asarray(lab), minlength=n_clusters)[:n_clusters]
    return counts


def write_dict(path: str | os.PathLike, counts: np.ndarray) -> None:
    """fairseq dictionary `label count`, one line per cluster 0..K-1 (clusters never used keep count 0)."""
    atomic_write_text(path, "".join(f"{i} {int(c)}\n" for i, c in enumerate(counts)))


def read_info(label_dir: str | os.PathLike) -> dict:
    p = Path(label_dir) / INFO
    if not p.is_file():
        raise LabelError(f"{p}: missing (label dirs are written by wavlm.bin.dump_km_label)")
    return json.loads(p.read_text())


def check_num_frames(labels: Mapping[str, np.ndarray | list], num_frames: Mapping[str, int], *,
                     what: str = "labels", tol: int = 0) -> None:
    """Every utterance of `labels` has exactly (within `tol`) as many labels as it has frames."""
    for utt, lab in labels.items():
        if utt not in num_frames:
            raise LabelError(f"{what}: utterance {utt} has labels but no features")
        if abs(len(lab) - int(num_frames[utt])) > tol:
            raise LabelError(f"{what}: utterance {utt} has {len(lab)} labels but {num_frames[utt]} feature frames")


def frames_at_rate(num_samples: int, label_rate: float, sample_rate: int = 16000) -> float:
    """How many labels `num_samples` of audio span at `label_rate` labels/s (not rounded)."""
    return num_samples * label_rate / sample_rate


def verify_label_length(utt: str, num_labels: int, num_samples: int, label_rate: float, *,
                        sample_rate: int = 16000, tol_s: float = 0.1) -> None:
    """The labels of `utt` cover its audio within `tol_s` seconds (as HuBERT's dataset checks)."""
    dur_audio = num_samples / sample_rate
    dur_labels = num_labels / label_rate
    if abs(dur_audio - dur_labels) > tol_s:
        raise LabelError(
            f"utterance {utt}: {num_labels} labels at {label_rate:g}/s span {dur_labels:.3f}s but the audio is "
            f"{dur_audio:.3f}s (tolerance {tol_s}s); were the labels made for other audio or another frame rate?"
        )
