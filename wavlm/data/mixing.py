"""Denoising by utterance mixing (WavLM, Sec. 3.2): with probability `prob` an utterance of the batch
gets an interfering signal added to a random region: a segment of another utterance of the batch
(at most `max_ratio` of the primary's length) at an SNR from U(utt_snr), or, with probability
`noise_prob` among the mixed ones, a noise clip (MUSAN-style data dir) at an SNR from U(noise_snr).
The primary utterance's labels are kept.

SNR here is 10 log10(E_primary / E_interference), both energies taken over the region where the
interference is added, so the primary speaker dominates its own region by the drawn amount.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class MixConfig:
    prob: float = 0.0  # the paper uses 0.2 for WavLM; 0 = no denoising (HuBERT)
    noise_prob: float = 0.0  # share of mixes that use noise instead of another utterance
    utt_snr: tuple[float, float] | list[float] = (-5.0, 5.0)
    noise_snr: tuple[float, float] | list[float] = (-5.0, 20.0)
    max_ratio: float = 0.5  # an interfering utterance segment is at most this share of the primary
    noise_data: str | None = None  # Kaldi data dir of noise recordings (required if noise_prob > 0)


@dataclass
class MixInfo:
    kind: str  # "none", "utterance", "noise"
    snr: float = float("nan")
    start: int = 0  # where the interference starts in the primary
    length: int = 0  # samples of interference added
    source: int = -1  # batch index of the interfering utterance
    extra: dict = field(default_factory=dict)


def scale_to_snr(primary: np.ndarray, interference: np.ndarray, snr_db: float) -> np.ndarray:
    """`interference` scaled so that 10 log10(E(primary) / E(scaled)) == snr_db."""
    ep = float(np.sum(primary.astype(np.float64) ** 2))
    ei = float(np.sum(interference.astype(np.float64) ** 2))
    if ei <= 0 or ep <= 0:
        return np.zeros_like(interference)
    return interference * np.sqrt(ep / (ei * 10 ** (snr_db / 10)))


def mix_batch(
    wavs: np.ndarray,
    lengths: np.ndarray,
    cfg: MixConfig,
    rng: np.random.Generator,
    noises: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, list[MixInfo]]:
    """Mix a cropped batch [B, S] (valid lengths [B]); returns the new batch and what was done."""
    out = wavs.copy()
    infos = [MixInfo("none") for _ in range(len(wavs))]
    if cfg.prob <= 0:
        return out, infos
    b = len(wavs)
    for i in range(b):
        if rng.random() >= cfg.prob:
            continue
        n_i = int(lengths[i])
        use_noise = noises and rng.random() < cfg.noise_prob
        if not use_noise and b < 2:
            continue
        max_len = max(1, int(n_i * cfg.max_ratio))
        length = int(rng.integers(1, max_len + 1))
        if use_noise:
            src = noises[int(rng.integers(len(noises)))]
            if len(src) < length:
                src = np.tile(src, length // max(len(src), 1) + 1)
            off = int(rng.integers(0, len(src) - length + 1))
            seg = src[off:off + length]
            snr = float(rng.uniform(*cfg.noise_snr))
            kind, source = "noise", -1
        else:
            source = int(rng.integers(b - 1))
            source += source >= i
            n_j = int(lengths[source])
            length = min(length, n_j)
            off = int(rng.integers(0, n_j - length + 1))
            seg = wavs[source, off:off + length]
            snr = float(rng.uniform(*cfg.utt_snr))
            kind = "utterance"
        start = int(rng.integers(0, n_i - length + 1))
        region = wavs[i, start:start + length]
        out[i, start:start + length] = region + scale_to_snr(region, seg, snr)
        infos[i] = MixInfo(kind, snr, start, length, source)
    return out, infos
