"""Speaker diarization: frame targets from turns, posteriors to turns, and the diarization error rate.

Frames: frame t covers [t * shift, (t + 1) * shift) seconds. `frame_labels` marks a speaker active in frame t
when the frame's centre (t + 0.5) * shift lies in a turn [start, end) of that speaker; `posteriors_to_turns`
turns a run of active frames s..e-1 into the turn [s * shift, e * shift). The two are inverse to each other.

Post-processing follows EEND's make_rttm.py (which s3prl's SUPERB SD scoring runs): a speaker is active where
its posterior is strictly above the threshold; the binary decisions are then median-filtered over time per
speaker (scipy.signal.medfilt with kernel (median, 1), zero-padded at both ends).

DER = (missed + false alarm + confusion) / reference speech, with the optimal one-to-one mapping of
hypothesis to reference speakers per recording (Hungarian), computed by pyannote.metrics'
DiarizationErrorRate. Times are speaker time: where two reference speakers overlap, both count.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

from wavlm.data.rttm import Turn

_EPS = 1e-9  # frames; a turn boundary within this of a frame centre counts as on it (float rounding)


def frame_labels(turns: Sequence[Turn], speakers: Sequence[str], num_frames: int, frame_shift: float) -> np.ndarray:
    """Frame-level targets [num_frames, len(speakers)] float32: 1 where the speaker is active in the frame.

    A frame is active for a speaker when its centre falls inside one of the speaker's turns (see the module
    docstring). Turns reaching past the last frame are cut there. A turn of a speaker not in `speakers`
    is an error."""
    index = {spk: k for k, spk in enumerate(speakers)}
    labels = np.zeros((num_frames, len(speakers)), dtype=np.float32)
    for turn in turns:
        if turn.speaker not in index:
            raise ValueError(f"{turn.reco}: speaker {turn.speaker!r} of the turn at {turn.start:g} s is not one of "
                             f"{list(speakers)}")
        # first frame with centre >= start, first frame with centre >= end
        t0 = max(0, math.ceil(turn.start / frame_shift - 0.5 - _EPS))
        t1 = min(num_frames, math.ceil(turn.end / frame_shift - 0.5 - _EPS))
        labels[t0:t1, index[turn.speaker]] = 1.0
    return labels


def median_filter(active: np.ndarray, median: int) -> np.ndarray:
    """Median filter of odd length `median` over axis 0 of a binary [T, S] array, zero-padded at both ends."""
    if median < 1 or median % 2 == 0:
        raise ValueError(f"median filter length must be a positive odd number, got {median}")
    half = median // 2
    padded = np.pad(active.astype(np.int64), ((half + 1, half), (0, 0)))
    counts = np.cumsum(padded, axis=0)
    window = counts[median:] - counts[:-median]  # active frames in [t - half, t + half]
    return window > half


def posteriors_to_turns(reco: str, post: np.ndarray, frame_shift: float, threshold: float, median: int,
                        speakers: Sequence[str] | None = None) -> list[Turn]:
    """Turn speaker posteriors [T, S] (probabilities) of one recording into turns sorted by (start, speaker).

    Active = posterior > threshold, then the median filter of odd length `median` (1 = none), then each run of
    active frames s..e-1 becomes the turn [s * frame_shift, e * frame_shift). Speakers are named `spk0`,
    `spk1`, ... unless `speakers` names them (a hypothesis' names are arbitrary: the DER maps them)."""
    post = np.asarray(post)
    if post.ndim != 2:
        raise ValueError(f"{reco}: posteriors must be [frames, speakers], got shape {post.shape}")
    names = list(speakers) if speakers is not None else [f"spk{k}" for k in range(post.shape[1])]
    if len(names) != post.shape[1]:
        raise ValueError(f"{reco}: {post.shape[1]} speaker columns but {len(names)} speaker names")
    active = median_filter(post > threshold, median)
    edges = np.diff(np.pad(active.astype(np.int8), ((1, 1), (0, 0))), axis=0)  # +1 at run starts, -1 after ends
    turns = []
    for k, name in enumerate(names):
        starts, ends = np.flatnonzero(edges[:, k] == 1).tolist(), np.flatnonzero(edges[:, k] == -1).tolist()
        turns += [Turn(reco, s * frame_shift, (e - s) * frame_shift, name) for s, e in zip(starts, ends, strict=True)]
    return sorted(turns, key=lambda t: (t.start, t.speaker))


def frame_der_counts(pred: torch.Tensor, ref: torch.Tensor, valid: torch.Tensor) -> dict[str, float]:
    """Frame-level DER counts of binary decisions `pred` against `ref` (both bool [B, T, S], speaker k of pred
    compared with speaker k of ref, e.g. labels already permuted by pit_bce) over the frames where `valid`
    [B, T] is true, as s3prl's SUPERB SD validation counts them (calc_diarization_error): per frame with n_ref
    and n_sys active speakers, missed max(n_ref - n_sys, 0), false alarm max(n_sys - n_ref, 0), confusion
    min(n_ref, n_sys) - speakers active in both, speech n_ref. Sums in frames, to add up over batches."""
    pred, ref = pred & valid[..., None], ref & valid[..., None]
    n_ref, n_sys = ref.sum(-1), pred.sum(-1)
    counts = {"missed": (n_ref - n_sys).clamp(min=0), "false_alarm": (n_sys - n_ref).clamp(min=0),
              "confusion": torch.minimum(n_ref, n_sys) - (pred & ref).sum(-1), "speech": n_ref}
    return {k: float(v.sum()) for k, v in counts.items()}


@dataclass
class DerResult:
    """Diarization error rate and its parts, in percent of the reference speech `total` (seconds).

    `per_reco` holds one DerResult per reference recording (their own `per_reco` empty); the overall numbers
    weight recordings by their reference speech."""

    der: float
    missed: float
    false_alarm: float
    confusion: float
    total: float
    per_reco: dict[str, DerResult] = field(default_factory=dict)

    @classmethod
    def from_seconds(cls, missed: float, false_alarm: float, confusion: float, total: float,
                     per_reco: dict[str, DerResult] | None = None) -> DerResult:
        def pct(x: float) -> float:
            # no reference speech: 0 % without errors, else infinite (pyannote reports 100 % for the DER)
            return 100.0 * x / total if total > 0 else (0.0 if x == 0 else math.inf)

        return cls(pct(missed + false_alarm + confusion), pct(missed), pct(false_alarm), pct(confusion), total,
                   per_reco or {})


def _annotation(reco: str, turns: Sequence[Turn]) -> Annotation:
    ann = Annotation(uri=reco)
    for i, turn in enumerate(turns):
        ann[Segment(turn.start, turn.end), i] = turn.speaker
    return ann


def diarization_error_rate(ref: Mapping[str, Sequence[Turn]], hyp: Mapping[str, Sequence[Turn]],
                           collar: float = 0.0, skip_overlap: bool = False,
                           uem: Mapping[str, Sequence[tuple[float, float]]] | None = None) -> DerResult:
    """DER of hypothesis turns against reference turns, both {reco: turns} (as read_rttm returns).

    `collar`: seconds on EACH side of every reference boundary left unscored, as md-eval's and dscore's
    `--collar` (pyannote's `collar` is the total width, so it gets 2 * collar). `skip_overlap`: leave regions
    where reference speakers overlap unscored. `uem`: {reco: [(start, end), ...]} scored regions, one entry
    per reference recording; without it each recording is scored from the first to the last turn of either
    side (which scores all speech). A reference recording missing from `hyp` is scored against an empty
    hypothesis (all its speech missed); a hypothesis recording absent from the reference is an error."""
    extra = [reco for reco in hyp if reco not in ref]
    if extra:
        raise ValueError(f"hypothesis recordings not in the reference: {' '.join(extra[:10])}"
                         + (f" (and {len(extra) - 10} more)" if len(extra) > 10 else ""))
    if uem is not None:
        missing = [reco for reco in ref if reco not in uem]
        if missing:
            raise ValueError(f"the uem has no scored regions for recordings {' '.join(missing[:10])}")
    metric = DiarizationErrorRate(collar=2 * collar, skip_overlap=skip_overlap)
    per_reco = {}
    sums = np.zeros(4)  # seconds: missed, false alarm, confusion, reference speech
    for reco, ref_turns in ref.items():
        reference, hypothesis = _annotation(reco, ref_turns), _annotation(reco, hyp.get(reco, []))
        if uem is not None:
            scored = Timeline([Segment(s, e) for s, e in uem[reco]], uri=reco)
        else:
            extent = reference.get_timeline().extent() | hypothesis.get_timeline().extent()
            scored = Timeline([extent] if extent else [], uri=reco)
        d = metric(reference, hypothesis, uem=scored, detailed=True)
        seconds = [d["missed detection"], d["false alarm"], d["confusion"], d["total"]]
        per_reco[reco] = DerResult.from_seconds(*seconds)
        sums += seconds
    return DerResult.from_seconds(*sums.tolist(), per_reco=per_reco)


def format_der_table(result: DerResult) -> str:
    """Markdown table: one row per recording, then the overall row (percent of reference speech)."""
    rows = ["| recording | DER % | missed % | false alarm % | confusion % | reference speech s |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, r in [*result.per_reco.items(), ("**overall**", result)]:
        rows.append(f"| {name} | {r.der:.2f} | {r.missed:.2f} | {r.false_alarm:.2f} | {r.confusion:.2f} "
                    f"| {r.total:.2f} |")
    return "\n".join(rows) + "\n"
