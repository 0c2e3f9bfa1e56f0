"""Permutation-invariant binary cross-entropy for end-to-end diarization (EEND, Fujita et al. 2019)."""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

MAX_SPEAKERS = 4  # S! permutations are tried exhaustively (24 at 4 speakers)


def pit_bce(logits: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary cross-entropy minimised over the speaker permutations of each utterance.

    logits, labels: [B, T, S] (labels in {0, 1}); lengths: [B] valid frames (frames past them are ignored).
    For each utterance and permutation p the loss is the BCE-with-logits of output k against label speaker p[k]
    summed over valid frames and averaged over speakers; each utterance takes its best permutation, and the batch
    loss is the sum over utterances divided by the total number of valid frames, i.e. the mean over all valid
    frames of the batch. This is the reduction of s3prl's SUPERB SD loss (s3prl/downstream/diarization/utils.py,
    `pit_loss`: sum over frames of the mean over speakers, min over permutations, / sum(lengths)).

    Returns (loss, labels permuted to each utterance's best permutation [B, T, S], for scoring)."""
    if logits.dim() != 3 or logits.shape != labels.shape:
        raise ValueError(f"logits and labels must both be [batch, frames, speakers], got {tuple(logits.shape)} "
                         f"and {tuple(labels.shape)}")
    batch, frames, speakers = logits.shape
    if not 1 <= speakers <= MAX_SPEAKERS:
        raise ValueError(f"pit_bce tries all S! speaker permutations and supports 1 to {MAX_SPEAKERS} speakers, "
                         f"got {speakers}")
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must be [batch] = [{batch}], got {tuple(lengths.shape)}")
    lengths = lengths.to(logits.device)
    if bool((lengths < 0).any() | (lengths > frames).any()) or int(lengths.sum()) == 0:
        raise ValueError(f"lengths must lie in 0..{frames} (the padded frames) with at least one frame in all, "
                         f"got {lengths.tolist()}")
    valid = torch.arange(frames, device=logits.device)[None, :, None] < lengths[:, None, None]  # [B, T, 1]
    labels = labels.to(logits.dtype)
    perms = torch.tensor(list(itertools.permutations(range(speakers))), device=logits.device)  # [P, S]
    per_perm = []
    for perm in perms:
        bce = F.binary_cross_entropy_with_logits(logits, labels[:, :, perm], reduction="none")
        per_perm.append(torch.where(valid, bce, 0.0).sum(dim=(1, 2)) / speakers)  # [B]
    best_loss, best = torch.stack(per_perm).min(dim=0)  # over permutations: [B]
    loss = best_loss.sum() / lengths.sum()
    best_perm = perms[best]  # [B, S]
    permuted = labels.gather(2, best_perm[:, None, :].expand(batch, frames, speakers))
    return loss, permuted
