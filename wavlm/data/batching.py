"""Dynamic batching by total samples (fairseq's `max_tokens`) and random cropping."""
from __future__ import annotations

import numpy as np


def make_batches(
    lengths: dict[str, int],
    max_tokens: int,
    max_sample_size: int,
    seed: int,
    epoch: int,
    shuffle: bool = True,
) -> list[list[str]]:
    """Group utterances of similar length so that `n_utts x min(longest, max_sample_size)` stays
    within `max_tokens`; batches come out in a random order (a function of seed and epoch).

    Utterances are sorted by length with ties broken randomly per epoch (as fairseq's ordered
    indices), so batches differ between epochs while each holds similar lengths.
    """
    if not lengths:
        return []
    rng = np.random.default_rng([seed, epoch])
    ids = list(lengths)
    tie = rng.permutation(len(ids)) if shuffle else np.arange(len(ids))
    order = sorted(range(len(ids)), key=lambda i: (min(lengths[ids[i]], max_sample_size), tie[i]))
    batches: list[list[str]] = []
    cur: list[str] = []
    longest = 0
    for i in order:
        size = min(lengths[ids[i]], max_sample_size)
        if size > max_tokens:
            raise ValueError(f"max_tokens {max_tokens} is smaller than one cropped utterance ({size} samples); "
                             "raise max_tokens or lower max_sample_size")
        if cur and (len(cur) + 1) * max(longest, size) > max_tokens:
            batches.append(cur)
            cur, longest = [], 0
        cur.append(ids[i])
        longest = max(longest, size)
    if cur:
        batches.append(cur)
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def crop_batch(
    wavs: list[np.ndarray], max_sample_size: int, rng: np.random.Generator, pad: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop utterances to a common length with random offsets (fairseq's HuBERT dataset, pad_audio=False):
    the target length is min(shortest, max_sample_size); with `pad`, the longest (capped) instead and
    shorter ones are zero-padded. Returns (audio [B, S] float32, lengths [B], start offsets [B])."""
    lens = np.array([len(w) for w in wavs])
    target = int(min(lens.max() if pad else lens.min(), max_sample_size))
    out = np.zeros((len(wavs), target), dtype=np.float32)
    starts = np.zeros(len(wavs), dtype=np.int64)
    out_lens = np.zeros(len(wavs), dtype=np.int64)
    for i, w in enumerate(wavs):
        if len(w) > target:
            starts[i] = rng.integers(0, len(w) - target + 1)
        seg = w[starts[i]:starts[i] + target]
        out[i, :len(seg)] = seg
        out_lens[i] = len(seg)
    return out, out_lens, starts


def bucket_batches(
    lengths: dict[str, int],
    batch_size: int,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    half_above: int = 0,
) -> list[list[str]]:
    """Batches of `batch_size` utterances of similar length (s3prl's bucketing): sorted by length with ties
    broken randomly per epoch, cut every batch_size; a batch whose longest utterance has more than `half_above`
    samples (0: never) is split in two (s3prl's half batch for long audio); batch order random per epoch."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    rng = np.random.default_rng([seed, epoch])
    ids = list(lengths)
    tie = rng.permutation(len(ids)) if shuffle else np.arange(len(ids))
    order = [ids[i] for i in sorted(range(len(ids)), key=lambda i: (lengths[ids[i]], tie[i]))]
    batches: list[list[str]] = []
    for i in range(0, len(order), batch_size):
        b = order[i:i + batch_size]
        if half_above and len(b) > 1 and lengths[b[-1]] > half_above:
            batches += [b[: len(b) // 2], b[len(b) // 2:]]
        else:
            batches.append(b)
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches
