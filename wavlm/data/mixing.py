"""Denoising by utterance mixing (WavLM, Sec. III-B and Algorithm 1), as Microsoft's released implementation does
it: `mixing_collated_audios` in microsoft/UniSpeech UniSpeech-SAT/fairseq/data/audio/unispeech_sat_dataset.py,
the dataset code WavLM's pre-training shares (WavLM's own pre-training code was never released).

For each utterance i of the cropped batch (n samples), with probability `prob`:
* the interference is, with probability `noise_prob`, a noise recording, otherwise another utterance j of the batch;
* it covers L ~ U{1 .. floor(max_ratio * n)} samples of the primary (max_ratio 0.5: at most half of it, so the
  primary speaker dominates), at a uniform position of the primary, cut at a uniform position of the source; a
  noise shorter than L shortens L to the noise's length (the released code does the same; it does not loop noise);
* the energy ratio r ~ U(utt_snr) dB for utterances (released: U(-5, 5)), U(noise_snr) dB for noise (released:
  U(-5, 20)) fixes one scale s for the whole source: 10 log10(P(primary) / P(s * source)) = r, where P is the mean
  power over the whole primary and over the whole source, not over the mixed region only (as released). The
  labels stay the primary's.

Where we differ from the released code, on purpose:
* j != i. The released code draws the interfering utterance from the whole batch, the primary included, so 1/B of
  its utterance mixes (about one in six at the Base batch of ~6 crops) add a shifted copy of the primary's own
  speech; the paper's secondary utterance is another utterance.
* Segments are cut from the batch as it was before mixing. The released code mixes in place, so a source that was
  mixed earlier in the loop carries its own interference along; here the result does not depend on the order.
* L >= 1. The released code draws L from 0 .. T // 2, and L = 0 is a "mix" that changes nothing.
* No waveform normalisation after mixing. With `normalize` (Large) the released dataset layer-normalises each
  mixed utterance again; our model normalises its input in its forward, i.e. after mixing, to the same effect.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class MixConfig:
    prob: float = 0.0  # share of utterances mixed; the paper uses 0.2 for WavLM; 0 = no denoising (HuBERT)
    noise_prob: float = 0.0  # share of the mixed utterances that get noise instead of another utterance
    utt_snr: tuple[float, float] | list[float] = (-5.0, 5.0)  # energy ratio primary/interference, dB
    noise_snr: tuple[float, float] | list[float] = (-5.0, 20.0)
    max_ratio: float = 0.5  # the interference covers at most this share of the primary
    noise_data: str | None = None  # Kaldi data dir of noise recordings (required if noise_prob > 0)


@dataclass
class MixInfo:
    kind: str  # "none", "utterance", "noise"
    snr: float = float("nan")  # the drawn energy ratio, dB
    start: int = 0  # where the interference starts in the primary
    length: int = 0  # samples of interference added
    source: int = -1  # batch index of the interfering utterance, or index into `noises`
    source_start: int = 0  # where the added segment starts in its source


def mean_power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) if len(x) else 0.0


def energy_scale(primary: np.ndarray, source: np.ndarray, ratio_db: float) -> float:
    """The factor s with 10 log10(P(primary) / P(s * source)) == ratio_db, P the mean power (0 for silence)."""
    pp, ps = mean_power(primary), mean_power(source)
    if pp <= 0 or ps <= 0:
        return 0.0
    return float(np.sqrt(pp / (ps * 10 ** (ratio_db / 10))))


def scale_to_snr(primary: np.ndarray, interference: np.ndarray, snr_db: float) -> np.ndarray:
    """`interference` scaled so that 10 log10(P(primary) / P(scaled)) == snr_db (zeros if either is silent)."""
    return interference * energy_scale(primary, interference, snr_db)


def mix_batch(
    wavs: np.ndarray,
    lengths: np.ndarray,
    cfg: MixConfig,
    rng: np.random.Generator,
    noises: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, list[MixInfo]]:
    """Mix a cropped batch [B, S] (valid lengths [B]); returns the new batch and what was done to each utterance."""
    out = wavs.copy()
    infos = [MixInfo("none") for _ in range(len(wavs))]
    if cfg.prob <= 0:
        return out, infos
    b = len(wavs)
    for i in range(b):
        if rng.random() >= cfg.prob:
            continue
        n_i = int(lengths[i])
        use_noise = bool(noises) and rng.random() < cfg.noise_prob
        if (not use_noise and b < 2) or n_i < 2:
            continue
        length = int(rng.integers(1, max(1, int(n_i * cfg.max_ratio)) + 1))
        if use_noise:
            source = int(rng.integers(len(noises)))
            src = noises[source]
            lo, hi = cfg.noise_snr
            kind = "noise"
        else:
            source = int(rng.integers(b - 1))
            source += source >= i
            src = wavs[source, : int(lengths[source])]
            lo, hi = cfg.utt_snr
            kind = "utterance"
        length = min(length, len(src))
        if length < 1:
            continue
        ratio = float(rng.uniform(lo, hi))
        scale = energy_scale(wavs[i, :n_i], src, ratio)
        if scale == 0.0:
            continue
        off = int(rng.integers(0, len(src) - length + 1))
        start = int(rng.integers(0, n_i - length + 1))
        out[i, start:start + length] += (scale * src[off:off + length]).astype(out.dtype)
        infos[i] = MixInfo(kind, ratio, start, length, source, off)
    return out, infos
