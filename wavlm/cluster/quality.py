"""Quality of frame labels against frame-level reference labels (e.g. phone alignments), as in HuBERT:

with y the reference (phone) and z the cluster of a frame, and p(y, z) their joint frequency,
  * PNMI = I(y; z) / H(y): the fraction of phone uncertainty the clusters remove (1 = clusters determine phones);
  * phone purity = sum_z max_y p(y, z) = E_z[max_y p(y|z)]: frame accuracy when each cluster is read as its
    most frequent phone;
  * cluster purity = sum_y max_z p(y, z) = E_y[max_z p(z|y)]: the counterpart, averaged over phones.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from wavlm.cluster.labels import LabelError

logger = logging.getLogger(__name__)


@dataclass
class Quality:
    pnmi: float
    phone_purity: float
    cluster_purity: float
    h_ref: float  # H(y) in nats
    mutual_info: float  # I(y; z) in nats
    num_frames: int
    num_utts: int
    num_ref_classes: int
    num_clusters_used: int

    def to_dict(self) -> dict:
        return asdict(self)


def contingency(ref: np.ndarray, hyp: np.ndarray) -> np.ndarray:
    """Counts [num ref classes, num hyp classes] of co-occurring (ref, hyp) integer ids."""
    ref, hyp = np.asarray(ref, dtype=np.int64), np.asarray(hyp, dtype=np.int64)
    if ref.shape != hyp.shape:
        raise ValueError(f"ref and hyp have different lengths {ref.shape} / {hyp.shape}")
    nr, nh = int(ref.max(initial=-1)) + 1, int(hyp.max(initial=-1)) + 1
    return np.bincount(ref * nh + hyp, minlength=nr * nh).reshape(nr, nh)


def quality_from_counts(counts: np.ndarray, *, num_utts: int = 0) -> Quality:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        raise ValueError("no frames to score")
    p = counts / total
    py, pz = p.sum(1), p.sum(0)
    nz = p > 0
    outer = np.outer(py, pz)
    mi = float(np.sum(p[nz] * np.log(p[nz] / outer[nz])))
    hy = float(-np.sum(py[py > 0] * np.log(py[py > 0])))
    pnmi = mi / hy if hy > 0 else 1.0  # one reference class: nothing left to explain
    return Quality(pnmi=max(0.0, pnmi), phone_purity=float(p.max(0).sum()), cluster_purity=float(p.max(1).sum()),
                   h_ref=hy, mutual_info=max(0.0, mi), num_frames=int(total), num_utts=num_utts,
                   num_ref_classes=int((py > 0).sum()), num_clusters_used=int((pz > 0).sum()))


def pair_frames(hyp: Mapping[str, Sequence], ref: Mapping[str, Sequence], *, tol: int = 2,
                what: str = "labels") -> tuple[list, list, int]:
    """Concatenate the frames of utterances in both, trimming length differences up to `tol` frames.

    Returns (hyp frames, ref frames, number of utterances). A larger difference is an error naming the
    utterance; utterances missing from the reference are skipped with a warning.
    """
    hs: list = []
    rs: list = []
    n = 0
    missing = [u for u in hyp if u not in ref]
    if missing:
        logger.warning("%d of %d utterances have no reference labels (e.g. %s); skipping them",
                       len(missing), len(hyp), missing[0])
    for utt, h in hyp.items():
        if utt not in ref:
            continue
        r = ref[utt]
        if abs(len(h) - len(r)) > tol:
            raise LabelError(f"{what}: utterance {utt} has {len(h)} labels but {len(r)} reference labels "
                             f"(more than the tolerated {tol} frames apart; same frame rate?)")
        m = min(len(h), len(r))
        hs.extend(h[:m])
        rs.extend(r[:m])
        n += 1
    if n == 0:
        raise LabelError(f"{what}: no utterance has both labels and reference labels")
    return hs, rs, n


def label_quality(hyp: Mapping[str, Sequence], ref: Mapping[str, Sequence], *, tol: int = 2,
                  what: str = "labels") -> Quality:
    """PNMI and purities of `hyp` (utt -> cluster ids) against `ref` (utt -> reference symbols)."""
    hs, rs, n = pair_frames(hyp, ref, tol=tol, what=what)
    _, h_ids = np.unique(np.asarray(hs), return_inverse=True)
    _, r_ids = np.unique(np.asarray(rs), return_inverse=True)
    return quality_from_counts(contingency(r_ids, h_ids), num_utts=n)


def resample_labels(labels: Sequence, factor: int) -> list:
    """Repeat each label `factor` times (e.g. 50 Hz labels against a 100 Hz reference)."""
    return [x for x in labels for _ in range(factor)]
